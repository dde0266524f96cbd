"""Softmax and the softmax cross-entropy loss.

References:
    Goodfellow, Bengio & Courville (2016), *Deep Learning*, §6.2.2.3 (softmax units).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from dlcourse._checks import as_float_array


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax ``p_ij = exp(z_ij) / sum_k exp(z_ik)``.

    The row maximum is subtracted first, which changes nothing mathematically
    and keeps ``exp`` from overflowing.

    Args:
        logits: ``(N, C)`` scores (any shape; the last axis is normalised).

    Returns:
        Probabilities of the same shape and floating dtype, each row summing to 1.

    References:
        Bridle (1990), "Probabilistic Interpretation of Feedforward
        Classification Network Outputs", in *Neurocomputing*; Goodfellow,
        Bengio & Courville (2016), *Deep Learning*, §6.2.2.3.
    """
    z = as_float_array(logits, "logits")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _check_labels(y: object, n: int, c: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != n:
        raise ValueError(
            f"y must be a 1-D array of {n} integer labels; received y of shape {y.shape} "
            f"and dtype {y.dtype}"
        )
    if n and (y.min() < 0 or y.max() >= c):
        raise ValueError(
            f"y must hold labels in [0, {c}); received labels from {int(y.min())} to {int(y.max())}"
        )
    return y


class Loss(Protocol):
    """What :func:`~dlcourse.scratch.training.fit` and ``evaluate`` need of a loss."""

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        """Mean loss over the batch, caching what :meth:`backward` needs.

        Args:
            logits: ``(N, C)`` scores.
            y: Integer labels ``(N,)``.

        Returns:
            The mean loss, a Python float.
        """
        ...

    def backward(self) -> np.ndarray:
        """Gradient of the last :meth:`forward`'s loss.

        Returns:
            ``dL/dlogits``, shape ``(N, C)``.
        """
        ...


class SoftmaxCrossEntropy:
    """Mean cross-entropy of a softmax over logits, with its gradient.

    Formula:
        ``L = -(1/N) sum_n log softmax(z_n)[y_n]``, computed as
        ``logsumexp(z_n) - z_n[y_n]`` for stability; the gradient is
        ``dL/dz = (softmax(z) - onehot(y)) / N``.

    Example:
        >>> loss = SoftmaxCrossEntropy()
        >>> value = loss.forward(np.zeros((2, 4)), np.array([0, 3]))
        >>> round(value, 6) == round(float(np.log(4)), 6)
        True

    References:
        Goodfellow, Bengio & Courville (2016), *Deep Learning*, §6.2.2.3.
    """

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy ``L = (1/N) sum_n (logsumexp(z_n) - z_n[y_n])``.

        Caches ``softmax(logits)`` and ``y`` for :meth:`backward`.

        Args:
            logits: Scores ``z`` of shape ``(N, C)``.
            y: Integer labels ``(N,)`` in ``[0, C)``.

        Returns:
            ``L`` as a Python float (``0.0`` for ``N == 0``).

        Raises:
            ValueError: ``logits`` is not 2-D, or ``y`` is not ``N`` integer labels in ``[0, C)``.
        """
        z = as_float_array(logits, "logits")
        if z.ndim != 2:
            raise ValueError(f"logits must have shape (N, C); received logits of shape {z.shape}")
        y = _check_labels(y, z.shape[0], z.shape[1])
        shifted = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        log_probs_true = shifted[np.arange(len(y)), y] - log_norm
        self._probs = np.exp(shifted - log_norm[:, None])
        self._y = y
        return float(-log_probs_true.mean()) if len(y) else 0.0

    __call__ = forward

    def backward(self) -> np.ndarray:
        """Gradient of the last :meth:`forward`'s loss with respect to its logits.

        Returns:
            ``dL/dz = (softmax(z) - onehot(y)) / N``, shape ``(N, C)``.

        Raises:
            RuntimeError: Called before :meth:`forward`.
        """
        if self._probs is None or self._y is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        d = self._probs.copy()
        n = len(self._y)
        d[np.arange(n), self._y] -= 1
        return d / max(n, 1)

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
