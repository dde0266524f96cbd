"""Gaussian dropout, the PyTorch form (PyTorch has no built-in; Keras has ``GaussianDropout``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dlcourse._checks import check_rate


def gaussian_dropout(x: Tensor, rate: float, *, training: bool = True,
                     generator: torch.Generator | None = None) -> Tensor:
    """Gaussian dropout: ``x * eps`` with ``eps ~ N(1, rate / (1 - rate))``.

    The noise has the mean (1) and variance (``rate / keep``) of the inverted
    Bernoulli factor ``m / keep``; see :mod:`dlcourse.scratch.gaussian`.

    Args:
        x: Input of any shape.
        rate: Equivalent drop rate, in ``[0, 1)`` (the variance is infinite at 1).
        training: If ``False``, ``x`` is returned unchanged (also at ``rate == 0``).
        generator: Optional ``torch.Generator`` for the noise.

    Returns:
        ``x * eps``, the shape and dtype of ``x``.

    Raises:
        ValueError: ``rate`` is outside ``[0, 1)``.

    References:
        Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov (2014),
        "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
        JMLR 15, section 10 ("Multiplicative Gaussian noise").
    """
    rate = check_rate(rate, allow_one=False)
    if not training or rate == 0.0:
        return x
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x * (1.0 + math.sqrt(rate / (1.0 - rate)) * eps)


class GaussianDropout(nn.Module):
    """:func:`gaussian_dropout` as a module, the PyTorch twin of ``keras.layers.GaussianDropout``.

    Args:
        rate: Equivalent drop rate in ``[0, 1)``; noise variance ``rate / (1 - rate)``.
        generator: Optional ``torch.Generator`` for the noise.

    Raises:
        ValueError: ``rate`` is outside ``[0, 1)`` (``rate == 1`` cannot work).
    """

    def __init__(self, rate: float, generator: torch.Generator | None = None):
        super().__init__()
        self.rate = check_rate(rate, allow_one=False)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        """``x * eps`` in training mode, ``x`` in eval mode; the shape and dtype of ``x``."""
        return gaussian_dropout(x, self.rate, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"
