"""Optimisers: SGD with momentum and Adam, with L2 weight decay and max-norm.

Both update a model in place from the gradients of its last ``backward``:
``optimizer.step(model)`` for a :class:`~dlcourse.scratch.model.Sequential`
(or any object with ``parameters()`` yielding ``(layer, name)``).

Two regularisers of the dropout paper's recipe are built in:

* ``weight_decay`` is the coefficient ``lambda`` of the L2 penalty
  ``(lambda/2) * ||W||^2`` on the **weights** (parameters with two or more
  axes, e.g. ``Linear``'s ``W``), never on biases: it adds ``lambda * W`` to
  the gradient;
* ``max_norm`` is the paper's constraint ``||w_j||_2 <= c`` on each unit's
  incoming weight vector (column ``j`` of ``W`` of shape ``(D, H)``): after
  each step, columns longer than ``c`` are scaled back onto the ball.

References:
    Srivastava et al. (2014), JMLR 15, §5.1 (max-norm with dropout) and
    Appendix A.2; Kingma & Ba (2015), "Adam: A Method for Stochastic
    Optimization", ICLR; Sutskever et al. (2013), "On the importance of
    initialization and momentum in deep learning", ICML.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from dlcourse.scratch.layers import Layer


def _check_nonneg(value: object, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; received {name}={value!r}")
    v = float(value)
    if math.isnan(v) or v < 0 or (positive and v == 0) or math.isinf(v):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}; received {name}={value!r}")
    return v


def _is_weight(array: np.ndarray) -> bool:
    return array.ndim >= 2


def apply_max_norm(w: np.ndarray, max_norm: float) -> None:
    """Rescale, in place, each column of ``w`` whose L2 norm exceeds ``max_norm``.

    Formula: ``w_j <- w_j * min(1, c / ||w_j||_2)`` for every unit ``j`` (the
    norm is taken over all axes but the last); columns inside the ball are
    left exactly as they are.

    Args:
        w: Weights ``(D, H)`` (column ``j`` is unit ``j``'s incoming weights),
            or any shape whose last axis indexes the units; a writable
            floating array, modified in place (dtype kept).
        max_norm: The bound ``c > 0``.

    Returns:
        ``None``; ``w`` itself is updated.

    References:
        Srivastava et al. (2014), JMLR 15, §5.1.
    """
    norms = np.sqrt((w.reshape(-1, w.shape[-1]) ** 2).sum(axis=0))
    factor = np.minimum(1.0, max_norm / np.maximum(norms, 1e-12)).astype(w.dtype)
    w *= factor


class HasParameters(Protocol):
    """What :meth:`Optimizer.step` needs of a model, e.g. a ``Sequential``."""

    def parameters(self) -> Iterable[tuple[Layer, str]]:
        """The parameters to update.

        Returns:
            ``(layer, name)`` for every ``layer.params[name]`` (with ``layer.grads[name]``).
        """
        ...


class Optimizer:
    """Shared logic: gradient with weight decay, max-norm, per-parameter state.

    Args:
        lr: Learning rate ``> 0``.
        weight_decay: L2 penalty coefficient on the weights (not the biases).
        max_norm: Max-norm bound ``c`` on each unit's incoming weights, or ``None``.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0, max_norm: float | None = None):
        self.lr = _check_nonneg(lr, "lr", positive=True)
        self.weight_decay = _check_nonneg(weight_decay, "weight_decay")
        self.max_norm = None if max_norm is None else _check_nonneg(
            max_norm, "max_norm", positive=True)
        self.state: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        self.iterations = 0

    def _grad(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        if self.weight_decay and _is_weight(p):
            return g + p.dtype.type(self.weight_decay) * p
        return g

    def step(self, model: HasParameters) -> None:
        """Update every parameter of ``model`` in place from its ``grads``.

        For each ``(layer, name)``: ``g = grads[name] (+ weight_decay * W)``,
        ``params[name] -= update(g)`` (the subclass' rule), then the max-norm
        projection on weights. State (momentum, moments) is kept per parameter.

        Args:
            model: Anything whose ``parameters()`` yields ``(layer, name)``
                pairs, after a ``backward`` has filled the gradients.

        Returns:
            ``None``; the parameters are updated in place.
        """
        self.iterations += 1
        for layer, name in model.parameters():
            p = layer.params[name]
            g = self._grad(p, layer.grads[name])
            state = self.state.setdefault((id(layer), name), {})
            p -= self._update(g, state).astype(p.dtype, copy=False)
            if self.max_norm is not None and _is_weight(p):
                apply_max_norm(p, self.max_norm)

    def _update(self, g: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - interface


class SGD(Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum.

    Formula (``g`` includes the weight-decay term):
        ``v <- momentum * v + g``;  ``theta <- theta - lr * v``
        (with ``momentum = 0``: ``theta <- theta - lr * g``).

    Args:
        lr: Learning rate.
        momentum: Momentum coefficient in ``[0, 1)``.
        weight_decay: L2 penalty coefficient on the weights.
        max_norm: Max-norm bound on each unit's incoming weights, or ``None``.

    References:
        Sutskever et al. (2013), ICML; Srivastava et al. (2014), JMLR 15, Appendix A.
    """

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, weight_decay: float = 0.0,
                 max_norm: float | None = None):
        super().__init__(lr, weight_decay, max_norm)
        self.momentum = _check_nonneg(momentum, "momentum")
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1); received momentum={momentum!r}")

    def _update(self, g, state):
        if not self.momentum:
            return self.lr * g
        v = state.get("v")
        v = g.copy() if v is None else self.momentum * v + g
        state["v"] = v
        return self.lr * v

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}, "
                f"max_norm={self.max_norm})")


class Adam(Optimizer):
    """Adam: per-parameter step sizes from running moments of the gradient.

    Formula (step ``t``, ``g`` includes the weight-decay term):
        ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
        ``theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)`` with
        ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``.

    Args:
        lr: Learning rate.
        beta1, beta2: Decay rates of the first and second moments, in ``[0, 1)``.
        eps: Added to the denominator for stability.
        weight_decay: L2 penalty coefficient on the weights (added to the
            gradient, as in the classic L2 form, not decoupled AdamW).
        max_norm: Max-norm bound on each unit's incoming weights, or ``None``.

    References:
        Kingma & Ba (2015), ICLR.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, max_norm: float | None = None):
        super().__init__(lr, weight_decay, max_norm)
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if _check_nonneg(value, name) >= 1:
                raise ValueError(f"{name} must be in [0, 1); received {name}={value!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = _check_nonneg(eps, "eps", positive=True)

    def _update(self, g, state):
        t = state["t"] = state.get("t", 0) + 1
        m = state["m"] = self.beta1 * state.get("m", 0.0) + (1 - self.beta1) * g
        v = state["v"] = self.beta2 * state.get("v", 0.0) + (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}, max_norm={self.max_norm})")
