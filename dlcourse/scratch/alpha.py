"""Alpha dropout: dropout that keeps SELU activations normalised.

SELU networks keep activations near mean 0, variance 1. Setting dropped
units to 0 would shift both moments, because 0 is not the activation's
"resting" value. Alpha dropout sets dropped units to the SELU saturation
value :math:`\\alpha' = -\\lambda\\alpha` and then applies an affine map that
restores mean 0 and variance 1 for a standard-normal input:

.. math::

    \\tilde a = A\\,\\bigl(a\\,m + \\alpha'(1 - m)\\bigr) + B,\\qquad
    m \\sim \\text{Bernoulli}(q),\\ q = 1 - \\text{rate},

    A = \\bigl(q\\,(1 + \\text{rate}\\,\\alpha'^2)\\bigr)^{-1/2},\\qquad
    B = -A\\,\\alpha'\\,\\text{rate}.

Inference is the identity. ``rate`` must be below 1 (``A`` is infinite at 1).
Framework forms: ``torch.nn.AlphaDropout`` and ``keras.layers.AlphaDropout``.

References:
    Klambauer et al. (2017), "Self-Normalizing Neural Networks", NeurIPS,
    arXiv:1706.02515, section "New Dropout Technique".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlcourse._checks import as_float_array, as_rng, check_rate
from dlcourse.scratch.dropout import bernoulli_keep_mask, dropout_backward, resolve_noise_shape
from dlcourse.scratch.layers import StochasticLayer

#: SELU constants (Klambauer et al. 2017, eq. 14).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946
#: The value dropped units are set to, ``-lambda * alpha``.
ALPHA_PRIME = -SELU_LAMBDA * SELU_ALPHA


def alpha_dropout_affine(rate: float) -> tuple[float, float]:
    """Return the affine correction ``(A, B)`` of alpha dropout.

    Args:
        rate: Drop probability, in ``[0, 1)``.

    Returns:
        ``(A, B)`` with ``A = (q (1 + rate alpha'^2))^(-1/2)``,
        ``B = -A alpha' rate``, ``q = 1 - rate``, ``alpha' = -lambda alpha``
        (:data:`ALPHA_PRIME`); ``A = 1``, ``B = 0`` at ``rate == 0``.

    Raises:
        ValueError: ``rate`` is outside ``[0, 1)``.

    References:
        Klambauer et al. (2017), arXiv:1706.02515, section "New Dropout Technique".
    """
    rate = check_rate(rate, allow_one=False)
    keep = 1.0 - rate
    a = (keep * (1.0 + rate * ALPHA_PRIME**2)) ** -0.5
    return a, -a * ALPHA_PRIME * rate


def alpha_dropout_forward(
    x: np.ndarray,
    rate: float,
    *,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    noise_shape: Sequence[int | None] | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply alpha dropout (see the module docstring for the formula).

    Args:
        x: Input of any shape, e.g. ``(N, D)``; floating dtype is preserved.
        rate: Drop probability, in ``[0, 1)``.
        training: Drop (``True``) or return ``x`` (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        noise_shape: Mask shape broadcast over axes of size 1 (as in Keras).
        mask: Optional boolean keep mask (broadcastable to ``x``) to use instead
            of drawing one, to compare with another implementation.

    Returns:
        ``(out, cache)``; ``cache`` holds the keep mask and ``A`` (as ``scale``).
    """
    rate = check_rate(rate, allow_one=False)
    x = as_float_array(x)
    if not training or (rate == 0.0 and mask is None):
        return x, {"mask": None, "scale": 1.0, "shape": x.shape}
    if mask is None:
        mask = bernoulli_keep_mask(resolve_noise_shape(x.shape, noise_shape), rate, as_rng(rng))
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim > x.ndim or any(m not in (1, n) for m, n in zip(mask.shape[::-1], x.shape[::-1], strict=False)):
        raise ValueError(f"mask must broadcast to x of shape {x.shape}; received mask of shape {mask.shape}")
    a, b = alpha_dropout_affine(rate)
    t = x.dtype.type
    out = np.where(mask, x * t(a), t(a * ALPHA_PRIME)) + t(b)
    return out.astype(x.dtype, copy=False), {"mask": mask, "scale": a, "shape": x.shape}


def alpha_dropout_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Backward pass of :func:`alpha_dropout_forward`: ``dx = dout * A * m``.

    Args:
        dout: Upstream gradient ``dL/dout``, the shape of the forward input ``x``.
        cache: From :func:`alpha_dropout_forward`.

    Returns:
        ``dx``, the shape and floating dtype of ``dout``: ``dout * A * m`` (the
        dropped units, set to a constant, get zero gradient); ``dout`` itself
        when nothing was dropped (inference or ``rate == 0``).

    Raises:
        ValueError: ``dout`` does not have the forward input's shape.

    The affine map is linear in ``x`` with slope ``A m``: this is
    :func:`~dlcourse.scratch.dropout.dropout_backward` with ``scale = A``.
    """
    return dropout_backward(dout, cache)


class AlphaDropout(StochasticLayer):
    """Alpha dropout layer for SELU networks (see :func:`alpha_dropout_forward`).

    Args:
        rate: Drop probability, in ``[0, 1)``.
        rng: Generator or seed for the masks.
        noise_shape: Mask shape broadcast over axes of size 1.

    :meth:`freeze` / :meth:`unfreeze` hold the mask fixed (see
    :class:`~dlcourse.scratch.layers.StochasticLayer`).
    """

    def __init__(self, rate: float, *, rng: np.random.Generator | int | None = None,
                 noise_shape: Sequence[int | None] | None = None) -> None:
        super().__init__()
        self.rate = check_rate(rate, allow_one=False)
        self.rng = as_rng(rng)
        self.noise_shape = noise_shape
        self.cache: dict[str, Any] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply alpha dropout and remember the mask for :meth:`backward`.

        Args:
            x: Input of any shape, e.g. ``(N, D)``.

        Returns:
            ``A (x m + alpha' (1 - m)) + B`` in training, ``x`` itself in
            inference; the shape and floating dtype of ``x``.
        """
        out, self.cache = alpha_dropout_forward(
            x, self.rate, training=self.training, rng=self.rng, noise_shape=self.noise_shape,
            mask=self._held_draw(self.training),
        )
        self._remember_draw(self.cache["mask"], self.training)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dx = dout * A * m`` for the last forward input (see :func:`alpha_dropout_backward`)."""
        return alpha_dropout_backward(dout, self._cached("cache"))
