"""Monte-Carlo dropout prediction for Keras models."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dlcourse._checks import check_choice, check_positive_int  # noqa: E402
from dlcourse.uncertainty import MCPrediction, softmax, summarize  # noqa: E402


def _layer_state(model) -> tuple[list, list]:
    """The model's ``SeedGenerator`` objects and scheduled ``step`` variables (depth first)."""
    generators, steps, seen = [], [], set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator) and id(value) not in seen:
                seen.add(id(value))
                generators.append(value)
        if isinstance(getattr(layer, "step", None), keras.Variable):
            steps.append(layer.step)
    return generators, steps


def mc_predict(model, x, n_samples: int = 50, *, seed: int | None = None,
               output: str = "probs") -> MCPrediction:
    """Monte-Carlo dropout predictions of a Keras classifier.

    The model is called ``n_samples`` times as ``model(x, training=True)``.
    Careful: that switches *every* layer to training behaviour, BatchNorm
    included (it then normalises with the batch's statistics, without
    updating its moving averages); :func:`dlcourse.torch.mc_predict` keeps
    BatchNorm in inference mode instead.

    Args:
        model: A Keras model or layer returning ``(N, C)`` class scores.
        x: Input batch (array or tensor).
        n_samples: Number ``T`` of stochastic forward passes.
        seed: If given, the state of every layer's ``SeedGenerator`` is set
            from ``seed`` for the passes and restored afterwards: the same
            seed gives the same result, and the layers' own streams are untouched.
            Step counters of scheduled layers (``DropBlock2D(schedule_steps=...)``)
            are restored too: Monte-Carlo passes are not training steps.
        output: ``"probs"`` (default: Keras classifiers usually end with a
            softmax) or ``"logits"`` (a softmax is applied).

    Returns:
        :class:`dlcourse.uncertainty.MCPrediction` of the samples ``(T, N, C)``
        (NumPy arrays; the fields and their shapes are in its docstring).

    References:
        Gal & Ghahramani (2016), arXiv:1506.02142 (the full entry in :mod:`dlcourse.uncertainty`).
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    output = check_choice(output, "output", ("logits", "probs"))
    generators, steps = _layer_state(model)
    if seed is None:
        generators = []  # unseeded: the layers' own streams advance as in any call
    saved = [g.state.numpy() for g in generators]
    # training calls advance schedules such as DropBlock2D's step counter: restore them
    saved_steps = [v.numpy() for v in steps]
    try:
        for i, g in enumerate(generators):
            # a distinct (key, counter) pair per generator; stateless draws hash it
            key = (int(seed) * 9973 + i) % 2**31
            g.state.assign(np.array([key, 0], dtype=saved[i].dtype))
        samples = []
        for _ in range(n_samples):
            out = keras.ops.convert_to_numpy(model(x, training=True))
            samples.append(softmax(out) if output == "logits" else out)
    finally:
        for g, state in zip(generators, saved, strict=True):
            g.state.assign(state)
        for v, value in zip(steps, saved_steps, strict=True):
            v.assign(value)
    return summarize(np.stack(samples))
