"""Gaussian dropout: multiply by Gaussian noise instead of a Bernoulli mask.

Inverted Bernoulli dropout multiplies each unit by ``m / keep`` whose mean is
1 and variance ``rate / keep``. Gaussian dropout keeps those two moments and
replaces the distribution:

.. math::

    \\tilde a = a \\odot \\varepsilon,\\qquad
    \\varepsilon \\sim \\mathcal N\\left(1, \\sigma^2\\right),\\quad
    \\sigma^2 = \\frac{\\text{rate}}{1 - \\text{rate}}.

Nothing is zeroed, the expectation is preserved, so inference is the
identity. ``rate`` must be below 1 (the variance is infinite at 1).

Framework forms: ``keras.layers.GaussianDropout`` (same parametrisation);
PyTorch has no built-in, see :class:`dlcourse.torch.GaussianDropout`.

References:
    Srivastava et al. (2014), JMLR 15, section 10 ("Multiplicative Gaussian
    noise"). Wang & Manning (2013), "Fast dropout training", ICML.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlcourse._checks import as_float_array, as_rng, check_rate
from dlcourse.scratch.layers import StochasticLayer, as_upstream_gradient


def gaussian_std(rate: float) -> float:
    """Standard deviation of the multiplicative noise for an equivalent drop rate.

    Args:
        rate: The equivalent drop rate, in ``[0, 1)``.

    Returns:
        ``sigma = sqrt(rate / (1 - rate))`` (the standard deviation of the
        inverted Bernoulli factor ``m / keep``).

    Raises:
        ValueError: ``rate`` is outside ``[0, 1)``.
    """
    rate = check_rate(rate, allow_one=False)
    return math.sqrt(rate / (1.0 - rate))


def gaussian_dropout_forward(
    x: np.ndarray,
    rate: float,
    *,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    noise: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Multiply ``x`` by noise ``eps ~ N(1, rate / (1 - rate))``.

    Args:
        x: Input of any shape, e.g. ``(N, D)``; floating dtype is preserved.
        rate: The equivalent drop rate, in ``[0, 1)``.
        training: Add noise (``True``) or return ``x`` (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        noise: Optional noise array of ``x``'s shape to use instead of drawing
            one (to compare with another implementation given the same noise).

    Returns:
        ``(out, cache)``: ``out = x * eps``; ``cache`` holds ``eps`` (in ``x``'s dtype).
    """
    rate = check_rate(rate, allow_one=False)
    x = as_float_array(x)
    if not training or (rate == 0.0 and noise is None):
        return x, {"noise": None, "shape": x.shape}
    if noise is None:
        noise = 1.0 + gaussian_std(rate) * as_rng(rng).standard_normal(x.shape)
    noise = np.asarray(noise, dtype=x.dtype)
    if noise.shape != x.shape:
        raise ValueError(f"noise must have the shape of x {x.shape}; received noise of shape {noise.shape}")
    return x * noise, {"noise": noise, "shape": x.shape}


def gaussian_dropout_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Backward pass of :func:`gaussian_dropout_forward`: ``dx = dout * eps``.

    Args:
        dout: Upstream gradient ``dL/dout``, the shape of the forward input ``x``.
        cache: From :func:`gaussian_dropout_forward`.

    Returns:
        ``dx = dout * eps``, the shape and floating dtype of ``dout``; ``dout``
        itself when no noise was applied (inference or ``rate == 0``).

    Raises:
        ValueError: ``dout`` does not have the forward input's shape.
    """
    dout = as_upstream_gradient(dout, cache["shape"])
    return dout if cache["noise"] is None else dout * cache["noise"].astype(dout.dtype, copy=False)


class GaussianDropout(StochasticLayer):
    """Gaussian dropout layer (see :func:`gaussian_dropout_forward`).

    Args:
        rate: The equivalent drop rate, in ``[0, 1)``.
        rng: Generator or seed for the noise.

    :meth:`freeze` / :meth:`unfreeze` hold the noise fixed (see
    :class:`~dlcourse.scratch.layers.StochasticLayer`).
    """

    def __init__(self, rate: float, *, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.rate = check_rate(rate, allow_one=False)
        self.rng = as_rng(rng)
        self.cache: dict[str, Any] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the noise and remember it for :meth:`backward`.

        Args:
            x: Input of any shape, e.g. ``(N, D)``.

        Returns:
            ``x * eps`` in training, ``x`` itself in inference; the shape and
            floating dtype of ``x``.
        """
        out, self.cache = gaussian_dropout_forward(x, self.rate, training=self.training,
                                                   rng=self.rng, noise=self._held_draw(self.training))
        self._remember_draw(self.cache["noise"], self.training)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dx = dout * eps`` for the last forward input (see :func:`gaussian_dropout_backward`)."""
        return gaussian_dropout_backward(dout, self._cached("cache"))
