"""Gradient checking with centred finite differences.

An analytic backward pass is checked against

    ``df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)``

whose error is ``O(h^2)``. Run checks in float64: in float32 the rounding
error of ``f`` divided by ``2h`` swamps the comparison.

Dropout draws a new mask on every forward pass, so the function being
differentiated would change between evaluations; the checks below hold every
dropout mask fixed (:meth:`StochasticLayer.freeze
<dlcourse.scratch.layers.StochasticLayer.freeze>`), which makes the network an
ordinary deterministic function of its inputs and weights: a layer already
frozen keeps its held draw, any other draws afresh for the checked input.
The layers and models passed in are never modified: the checks run on
float64 deep copies.

References:
    CS231n, "Gradient checks" (Stanford course notes); Goodfellow, Bengio &
    Courville (2016), *Deep Learning*, §11.5.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from dlcourse._checks import as_float_array, as_rng
from dlcourse.scratch.losses import Loss, SoftmaxCrossEntropy

if TYPE_CHECKING:  # annotations only: model.py need not be imported here
    from dlcourse.scratch.layers import Layer
    from dlcourse.scratch.model import Sequential


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, *,
                       h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of the scalar function ``f`` at ``x``.

    ``x`` is perturbed **in place**, one element at a time, and ``f(x)`` is
    called after each perturbation (so ``f`` may also ignore its argument and
    read ``x`` through a layer's ``params``); every element is restored exactly.

    Args:
        f: Scalar function of the array.
        x: A writable floating array (float64 for meaningful results).
        h: Step size.

    Returns:
        ``grad`` of the shape of ``x`` (float64):
        ``grad_i = (f(x + h e_i) - f(x - h e_i)) / (2h)``.

    Raises:
        TypeError: ``x`` is not a floating NumPy array.

    References:
        CS231n, "Gradient checks" (Stanford course notes); Goodfellow, Bengio &
        Courville (2016), *Deep Learning*, §11.5.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating numpy array; received x={type(x).__name__}")
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = float(f(x))
        x[i] = old - h
        minus = float(f(x))
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error ``||a - b|| / max(||a|| + ||b||, 1e-300)`` (L2 norms).

    A norm ratio rather than an elementwise maximum, so that entries that are
    zero up to rounding (e.g. gradients of dropped units) do not dominate.
    Two zero arrays have error 0.

    Args:
        a: An array, e.g. the analytic gradient.
        b: An array of the same shape, e.g. the numerical gradient.

    Returns:
        A float in ``[0, 1]``; below ``1e-6`` is a pass in float64.

    Raises:
        ValueError: ``a`` and ``b`` differ in shape.

    References:
        CS231n, "Gradient checks" (Stanford course notes), "use relative error".
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape; received {a.shape} and {b.shape}")
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    if denom == 0:
        return 0.0
    return float(np.linalg.norm(a - b) / max(denom, 1e-300))


def _to_float64(obj):
    """A float64 deep copy of a layer or model, dropout masks frozen."""
    clone = copy.deepcopy(obj)
    layers = getattr(clone, "layers", [clone])
    for layer in layers:
        for name, value in list(layer.params.items()):
            layer.params[name] = value.astype(np.float64)
        if hasattr(layer, "freeze"):
            if not getattr(layer, "frozen", False):
                # forget the last draw (it may not fit x): the check's first
                # forward draws one that fits, held from then on
                layer.unfreeze()
            layer.freeze()
    return clone


def check_layer(layer: Layer, x: np.ndarray, *, rng: np.random.Generator | int | None = None,
                h: float = 1e-5) -> dict[str, float]:
    """Compare a layer's backward pass with finite differences.

    The scalar checked is ``f = sum(forward(x) * g)`` for a fixed random
    upstream gradient ``g``, so ``backward(g)`` must equal ``df/dx``; the same
    for every parameter. Runs on a float64 copy (mode kept; dropout masks held fixed).

    Args:
        layer: Any layer of :mod:`dlcourse.scratch` (or with the same interface).
        x: An input of the shape the layer expects, e.g. ``(N, D)``.
        rng: Generator or seed of ``g``.
        h: Finite-difference step.

    Returns:
        ``{"x": err, **{name: err for each parameter}}``, relative errors
        (see :func:`relative_error`).

    References:
        CS231n, "Gradient checks" (Stanford course notes); Goodfellow, Bengio &
        Courville (2016), *Deep Learning*, §11.5.
    """
    work = _to_float64(layer)
    x = np.array(as_float_array(x), dtype=np.float64)  # a copy we may perturb
    out = work.forward(x)  # draws (and freezes) any dropout mask
    g = as_rng(rng).standard_normal(np.shape(out))

    def f(_: np.ndarray) -> float:
        return float(np.sum(work.forward(x) * g))

    work.forward(x)
    dx = work.backward(g)
    analytic = {"x": dx, **{k: v.copy() for k, v in work.grads.items()}}
    errors = {"x": relative_error(analytic["x"], numerical_gradient(f, x, h=h))}
    for name, p in work.params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(f, p, h=h))
    return errors


def check_model(model: Sequential, x: np.ndarray, y: np.ndarray, *,
                loss: Loss | None = None, h: float = 1e-5) -> dict[str, float]:
    """Compare a whole model's backward pass (loss included) with finite differences.

    Every dropout mask is drawn once and then held fixed, so the check is of
    the same thinned network that the analytic gradient describes.

    Args:
        model: A :class:`~dlcourse.scratch.model.Sequential` (in training mode
            to include dropout).
        x: Inputs ``(N, D)``.
        y: Integer labels ``(N,)``.
        loss: Loss with ``forward(logits, y)``/``backward()``; default softmax cross-entropy.
        h: Finite-difference step.

    Returns:
        ``{"x": err, "<i>.<name>": err, ...}`` with ``i`` the layer's index in
        ``model.layers`` (e.g. ``"0.W"``).

    References:
        CS231n, "Gradient checks" (Stanford course notes); Goodfellow, Bengio &
        Courville (2016), *Deep Learning*, §11.5.
    """
    work = _to_float64(model)
    loss = SoftmaxCrossEntropy() if loss is None else copy.deepcopy(loss)
    x = np.array(as_float_array(x), dtype=np.float64)

    def f(_: np.ndarray) -> float:
        return float(loss.forward(work.forward(x), y))

    f(x)
    dx = work.backward(loss.backward())
    analytic = {"x": dx}
    for i, layer in enumerate(work.layers):
        for name, g in layer.grads.items():
            analytic[f"{i}.{name}"] = g.copy()
    errors = {"x": relative_error(dx, numerical_gradient(f, x, h=h))}
    for i, layer in enumerate(work.layers):
        for name, p in layer.params.items():
            key = f"{i}.{name}"
            errors[key] = relative_error(analytic[key], numerical_gradient(f, p, h=h))
    return errors
