"""Monte-Carlo dropout prediction for the NumPy toolkit.

Keep dropout on at test time, run ``n_samples`` forward passes, and read
the spread of the predictions as uncertainty (see :mod:`dlcourse.uncertainty`
for what is returned). Only the dropout layers (:data:`STOCHASTIC_LAYERS`,
every :class:`~dlcourse.scratch.layers.StochasticLayer`) are switched to
training mode; every other layer stays in inference mode, and every layer's
mode is restored afterwards.

References:
    Gal & Ghahramani (2016), "Dropout as a Bayesian Approximation:
    Representing Model Uncertainty in Deep Learning", ICML, arXiv:1506.02142.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dlcourse._checks import as_float_array, as_rng, check_choice, check_positive_int
from dlcourse.scratch.layers import StochasticLayer
from dlcourse.uncertainty import MCPrediction, softmax, summarize

if TYPE_CHECKING:  # annotations only; any object with the same interface works
    from dlcourse.scratch.model import Sequential

#: Layers kept in training mode during MC prediction: every dropout layer
#: (Dropout and its subclasses, GaussianDropout, AlphaDropout, DropConnect,
#: DropBlock2D, VariationalRNN).
STOCHASTIC_LAYERS = (StochasticLayer,)


def mc_predict(
    model: Sequential,
    x: np.ndarray,
    n_samples: int = 50,
    *,
    rng: np.random.Generator | int | None = None,
    output: str = "logits",
) -> MCPrediction:
    """Monte-Carlo dropout predictions of a NumPy ``Sequential`` model.

    Args:
        model: An object with ``layers`` (each with ``train()``/``eval()``/
            ``training``) and ``forward(x)``, e.g. :class:`dlcourse.scratch.Sequential`.
        x: Inputs ``(N, ...)``.
        n_samples: Number ``T`` of stochastic forward passes.
        rng: Seed or generator. When given, every stochastic layer draws from a
            generator spawned from it (its own generator is restored afterwards),
            so the same ``rng`` gives the same result. ``None`` uses the layers'
            own generators.
        output: ``"logits"`` (the model's output goes through a softmax) or
            ``"probs"`` (it already holds probabilities).

    Returns:
        :class:`dlcourse.uncertainty.MCPrediction` with ``mean``, ``std``,
        ``entropy``, ``mutual_information`` and the ``samples`` ``(T, N, C)``.

    Raises:
        TypeError: ``n_samples`` is not an integer.
        ValueError: ``n_samples < 1``, ``output`` is unknown, or (with
            ``output="probs"``) the outputs are not probabilities.

    References:
        Gal & Ghahramani (2016), "Dropout as a Bayesian Approximation:
        Representing Model Uncertainty in Deep Learning", ICML, arXiv:1506.02142.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    output = check_choice(output, "output", ("logits", "probs"))
    x = as_float_array(x)
    layers = list(model.layers)
    stochastic = [layer for layer in layers if isinstance(layer, STOCHASTIC_LAYERS)]
    modes = [layer.training for layer in layers]
    saved_rngs = [layer.rng for layer in stochastic]
    saved_steps = [getattr(layer, "step", None) for layer in stochastic]
    try:
        for layer in layers:
            layer.eval()
        for layer in stochastic:
            layer.train()
        if rng is not None:
            children = as_rng(rng).spawn(len(stochastic))
            for layer, child in zip(stochastic, children, strict=True):
                layer.rng = child
        samples = []
        for _ in range(n_samples):
            out = np.asarray(model.forward(x))
            samples.append(softmax(out) if output == "logits" else out)
    finally:
        for layer, mode in zip(layers, modes, strict=True):
            layer.train() if mode else layer.eval()
        for layer, saved, step in zip(stochastic, saved_rngs, saved_steps, strict=True):
            layer.rng = saved
            if step is not None:
                layer.step = step  # MC passes are not training steps of a schedule
    return summarize(np.stack(samples))
