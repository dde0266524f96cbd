"""Monte-Carlo dropout prediction for PyTorch models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlcourse._checks import check_choice, check_positive_int
from dlcourse.torch.variants import (
    DropBlock2d,
    DropConnectLinear,
    DropPath,
    GaussianDropout,
    VariationalRNN,
)
from dlcourse.uncertainty import MCPrediction, summarize

#: Modules switched to training mode for MC prediction. ``_DropoutNd`` covers
#: ``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout`` and ``FeatureAlphaDropout``.
DROPOUT_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.dropout._DropoutNd, GaussianDropout, DropConnectLinear, DropBlock2d,
    DropPath, VariationalRNN,
)


@torch.no_grad()
def mc_predict(model: nn.Module, x: torch.Tensor, n_samples: int = 50, *, seed: int | None = None,
               output: str = "logits") -> MCPrediction:
    """Monte-Carlo dropout predictions of a PyTorch classifier.

    The model is put in ``eval()`` mode and then **only** its dropout modules
    (:data:`DROPOUT_MODULES`) in ``train()`` mode, so BatchNorm keeps using
    (and does not update) its running statistics. Every module's mode is
    restored afterwards.

    Args:
        model: A classifier returning ``(N, C)`` logits (or probabilities).
        x: Input batch.
        n_samples: Number ``T`` of stochastic forward passes.
        seed: If given, the passes run under ``torch.manual_seed(seed)`` in a
            forked RNG state (the global state is left as it was), and our
            modules' ``generator`` attributes are temporarily replaced by
            generators seeded from ``seed``: the same seed gives the same result.
        output: ``"logits"`` (softmax applied) or ``"probs"``.

    Returns:
        :class:`dlcourse.uncertainty.MCPrediction` (NumPy arrays).
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    output = check_choice(output, "output", ("logits", "probs"))
    modules = list(model.modules())
    modes = [m.training for m in modules]
    stochastic = [m for m in modules if isinstance(m, DROPOUT_MODULES)]
    generators = [getattr(m, "generator", None) for m in stochastic]
    steps = [getattr(m, "step", None) for m in stochastic]
    try:
        model.eval()
        for m in stochastic:
            m.train()
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
                for i, m in enumerate(stochastic):
                    if hasattr(m, "generator"):
                        m.generator = torch.Generator(device=x.device).manual_seed(seed + 1 + i)
            samples = []
            for _ in range(n_samples):
                out = model(x).float()
                samples.append(torch.softmax(out, dim=-1) if output == "logits" else out)
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.training = mode
        for m, gen, step in zip(stochastic, generators, steps, strict=True):
            if hasattr(m, "generator"):
                m.generator = gen
            if step is not None:
                m.step = step  # MC passes are not training steps of a schedule
    return summarize(np.stack([s.cpu().numpy() for s in samples]))
