"""DropConnect: drop weights of a fully connected layer, not activations.

Dropout zeroes whole units (rows of the next weight matrix at once);
DropConnect zeroes single connections. For a Linear layer ``u = x W + b``
with ``W`` of shape ``(D, H)`` it draws a Bernoulli(keep) mask ``M`` of the
weights' shape and computes (inverted form, like the rest of this package):

.. math::

    u = x\\,(M \\odot W) / q + b, \\qquad q = \\text{keep} = 1 - \\text{rate}.

**Mask sampling** (``sampling``): ``"batch"`` (the default) draws one ``(D, H)``
mask per forward call, shared by the whole minibatch (what most library
implementations do; one byte per weight); ``"example"`` draws one mask per
example, ``(N, D, H)``, as in the paper's own implementation (N times the
memory and an ``einsum`` instead of a matrix product).

**Inference** (``inference``):

* ``"mean"``: the expectation of the pre-activation, ``u = x W + b`` (with the
  inverted scaling this *is* the weight-scaling rule: training divided by
  ``q``, so nothing is multiplied at test time);
* ``"gaussian"``: the paper's moment matching. Over masks, ``u`` has mean
  ``x W + b`` and variance ``(rate / q) (x \\odot x)(W \\odot W)``; draw
  ``u`` from that Gaussian ``n_samples`` times, apply the activation, and
  average. This differs from ``"mean"`` only through the non-linearity.

References:
    Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of Neural
    Networks using DropConnect", ICML, sections 2-3 (inference: section 3.1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from dlcourse._checks import (
    as_float_array,
    as_rng,
    check_choice,
    check_positive_int,
    check_rate,
)
from dlcourse._scale import inverted_scale
from dlcourse.scratch.dropout import bernoulli_keep_mask
from dlcourse.scratch.layers import StochasticLayer

SAMPLING = ("batch", "example")
INFERENCE = ("mean", "gaussian")


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # overflow-free logistic


#: activation name -> (f(u), f'(u) written with u and f(u)).
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda u: u, lambda u, y: np.ones_like(u)),
    "relu": (lambda u: np.maximum(u, 0), lambda u, y: (u > 0).astype(u.dtype)),
    "tanh": (np.tanh, lambda u, y: 1 - y * y),
    "sigmoid": (_sigmoid, lambda u, y: y * (1 - y)),
}


def _check_linear_args(x, W, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, W, b = as_float_array(x), as_float_array(W, "W"), as_float_array(b, "b")
    if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0] or b.shape != (W.shape[1],):
        raise ValueError(
            "expected x (N, D), W (D, H), b (H,); received x of shape "
            f"{x.shape}, W of shape {W.shape}, b of shape {b.shape}"
        )
    return x, W, b


def dropconnect_forward(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    rate: float,
    *,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    sampling: str = "batch",
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Linear layer with DropConnect on the weights (pre-activation only).

    Args:
        x: Input ``(N, D)``.
        W: Weights ``(D, H)``.
        b: Bias ``(H,)`` (never dropped).
        rate: Probability of dropping each weight, in ``[0, 1]``.
        training: Drop weights (``True``) or use the mean rule ``x W + b`` (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        sampling: ``"batch"`` (one ``(D, H)`` mask) or ``"example"`` (``(N, D, H)``).
        mask: Optional boolean keep mask to use instead of drawing one.

    Returns:
        ``(u, cache)`` with ``u = x (M * W) / keep + b`` of shape ``(N, H)``.
    """
    rate = check_rate(rate)
    sampling = check_choice(sampling, "sampling", SAMPLING)
    x, W, b = _check_linear_args(x, W, b)
    dtype = np.result_type(x, W)
    cache = {"x": x, "W": W, "mask": None, "scale": 1.0, "sampling": sampling}
    if not training or (rate == 0.0 and mask is None):
        return (x @ W + b).astype(dtype, copy=False), cache
    shape = W.shape if sampling == "batch" else (x.shape[0], *W.shape)
    if mask is None:
        mask = bernoulli_keep_mask(shape, rate, as_rng(rng))
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask must have shape {shape} for sampling={sampling!r}; received mask of shape {mask.shape}")
    scale = inverted_scale(rate)
    w_eff = np.multiply(W, mask, dtype=dtype) * dtype.type(scale)
    u = x @ w_eff if sampling == "batch" else np.einsum("nd,ndh->nh", x, w_eff)
    cache.update(mask=mask, scale=scale)
    return (u + b).astype(dtype, copy=False), cache


def dropconnect_backward(du: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`dropconnect_forward`.

    Args:
        du: Upstream gradient ``(N, H)``.
        cache: From :func:`dropconnect_forward`.

    Returns:
        ``(dx, dW, db)``: ``dx = du (M * W / keep)^T``,
        ``dW = M * (x^T du) / keep`` (summed per example for ``"example"``),
        ``db = sum_n du``. Zero gradient reaches a dropped weight.
    """
    du = as_float_array(du, "du")
    x, W, mask, scale = cache["x"], cache["W"], cache["mask"], cache["scale"]
    if du.shape != (x.shape[0], W.shape[1]):
        raise ValueError(f"du must have shape {(x.shape[0], W.shape[1])}; received du of shape {du.shape}")
    db = du.sum(axis=0)
    if mask is None:
        return du @ W.T, x.T @ du, db
    s = du.dtype.type(scale)
    if cache["sampling"] == "batch":
        w_eff = W * mask * s
        return du @ w_eff.T, (x.T @ du) * mask * s, db
    w_eff = W * mask * s
    dx = np.einsum("nh,ndh->nd", du, w_eff)
    dW = np.einsum("nd,nh,ndh->dh", x, du, mask.astype(du.dtype)) * s
    return dx, dW, db


def dropconnect_gaussian_inference(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    rate: float,
    *,
    activation: str = "relu",
    n_samples: int = 256,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """The paper's inference: average the activation over a moment-matched Gaussian.

    ``u ~ N(x W + b, (rate / keep) (x*x)(W*W))``, returns the Monte-Carlo
    mean of ``activation(u)`` over ``n_samples`` draws, shape ``(N, H)``.
    The variance is the one of the training pre-activation under the
    inverted scaling, so the Gaussian matches what the layer saw in training.

    Args:
        x: Input ``(N, D)``.
        W: Weights ``(D, H)``.
        b: Bias ``(H,)``.
        rate: Probability of dropping each weight in training, in ``[0, 1)``.
        activation: ``"relu"`` (default), ``"linear"``, ``"tanh"`` or ``"sigmoid"``.
        n_samples: Number of Gaussian draws averaged.
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.

    Returns:
        ``mean_s activation(x W + b + std * eps_s)`` with
        ``std = sqrt((rate / keep) (x*x)(W*W))``, ``eps_s ~ N(0, 1)``; shape
        ``(N, H)``, dtype ``result_type(x, W)``.

    References:
        Wan et al. (2013), ICML, section 3.1.
    """
    rate = check_rate(rate, allow_one=False)
    activation = check_choice(activation, "activation", tuple(ACTIVATIONS))
    n_samples = check_positive_int(n_samples, "n_samples")
    x, W, b = _check_linear_args(x, W, b)
    dtype = np.result_type(x, W)
    keep = 1.0 - rate
    mean = x @ W + b
    std = np.sqrt((rate / keep) * ((x * x) @ (W * W)))
    eps = as_rng(rng).standard_normal((n_samples, *mean.shape)).astype(dtype, copy=False)
    f = ACTIVATIONS[activation][0]
    return f(mean + std * eps).mean(axis=0).astype(dtype, copy=False)


class DropConnect(StochasticLayer):
    """A Linear layer with DropConnect on its weights, and an optional activation.

    Args:
        in_features: ``D``.
        out_features: ``H``.
        rate: Probability of dropping each weight, in ``[0, 1]``.
        activation: ``"linear"`` (default), ``"relu"``, ``"tanh"`` or ``"sigmoid"``
            (part of the layer because the Gaussian inference averages after it).
        sampling: ``"batch"`` (default) or ``"example"`` (see the module docstring).
        inference: ``"mean"`` (default) or ``"gaussian"``.
        n_samples: Gaussian draws for ``inference="gaussian"``.
        init: ``"he"`` or ``"glorot"`` initialisation of ``W`` (``b = 0``).
        rng: Generator or seed (initialisation, masks and Gaussian draws).
        dtype: Parameter dtype.

    Attributes:
        params: ``{"W": (D, H), "b": (H,)}``; grads: same keys after :meth:`backward`.

    :meth:`freeze` / :meth:`unfreeze` hold the weight mask fixed (see
    :class:`~dlcourse.scratch.layers.StochasticLayer`).
    """

    def __init__(self, in_features: int, out_features: int, rate: float, *,
                 activation: str = "linear", sampling: str = "batch", inference: str = "mean",
                 n_samples: int = 256, init: str = "he",
                 rng: np.random.Generator | int | None = None,
                 dtype: npt.DTypeLike = np.float32) -> None:
        super().__init__()
        d = check_positive_int(in_features, "in_features")
        h = check_positive_int(out_features, "out_features")
        self.rate = check_rate(rate)
        self.activation = check_choice(activation, "activation", tuple(ACTIVATIONS))
        self.sampling = check_choice(sampling, "sampling", SAMPLING)
        self.inference = check_choice(inference, "inference", INFERENCE)
        self.n_samples = check_positive_int(n_samples, "n_samples")
        init = check_choice(init, "init", ("he", "glorot"))
        self.rng = as_rng(rng)
        std = np.sqrt(2.0 / d) if init == "he" else np.sqrt(2.0 / (d + h))
        self.params = {"W": (self.rng.standard_normal((d, h)) * std).astype(dtype),
                       "b": np.zeros(h, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache: dict[str, Any] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``activation(x (M * W) / keep + b)`` in training, the inference rule otherwise.

        Args:
            x: Input ``(N, D)``.

        Returns:
            Output ``(N, H)``. In inference: ``activation(x W + b)`` for
            ``"mean"``, :func:`dropconnect_gaussian_inference` for
            ``"gaussian"`` (with ``rate > 0``; it leaves no cache, so
            :meth:`backward` cannot follow it).
        """
        W, b = self.params["W"], self.params["b"]
        if not self.training and self.inference == "gaussian" and self.rate > 0:
            self.cache = None  # a Monte-Carlo average has no backward pass here
            return dropconnect_gaussian_inference(
                x, W, b, self.rate, activation=self.activation,
                n_samples=self.n_samples, rng=self.rng)
        u, lin_cache = dropconnect_forward(x, W, b, self.rate, training=self.training,
                                           rng=self.rng, sampling=self.sampling,
                                           mask=self._held_draw(self.training))
        self._remember_draw(lin_cache["mask"], self.training)
        y = ACTIVATIONS[self.activation][0](u)
        self.cache = {"lin": lin_cache, "u": u, "y": y}
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Store ``grads["W"]``, ``grads["b"]`` and return ``dx``.

        Args:
            dout: ``dL/dy``, gradient with respect to the layer's output ``(N, H)``
                (after the activation).

        Returns:
            ``dx`` ``(N, D)``; ``grads["W"]`` ``(D, H)`` and ``grads["b"]`` ``(H,)``
            are set as a side effect (see :func:`dropconnect_backward`).

        Raises:
            RuntimeError: No forward pass in training or ``"mean"`` mode before.
        """
        if self.cache is None:
            raise RuntimeError("DropConnect.backward needs a forward pass in training or 'mean' mode first")
        u, y = self.cache["u"], self.cache["y"]
        du = as_float_array(dout, "dout") * ACTIVATIONS[self.activation][1](u, y)
        dx, dW, db = dropconnect_backward(du, self.cache["lin"])
        self.grads = {"W": dW.astype(self.params["W"].dtype, copy=False),
                      "b": db.astype(self.params["b"].dtype, copy=False)}
        return dx

    def __repr__(self) -> str:
        d, h = self.params["W"].shape
        return (f"DropConnect({d}, {h}, rate={self.rate}, activation={self.activation!r}, "
                f"sampling={self.sampling!r}, inference={self.inference!r}, training={self.training})")
