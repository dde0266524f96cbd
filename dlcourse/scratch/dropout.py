"""Dropout from scratch: a functional core and a thin layer around it.

The core is a pair of functions in the CS231n style::

    out, cache = dropout_forward(x, rate, training=True, rng=0)
    dx = dropout_backward(dout, cache)

and :class:`Dropout` keeps the hyper-parameters and calls them.

Two forms are implemented (``mode``):

* ``"inverted"`` (the default, as in Keras and PyTorch): in training
  :math:`\\tilde a = m \\odot a / \\text{keep}`, at inference :math:`\\tilde a = a`;
* ``"weight_scaling"`` (the original paper's form): in training
  :math:`\\tilde a = m \\odot a`, at inference :math:`\\tilde a = \\text{keep}\\cdot a`,

with :math:`m_i \\sim \\text{Bernoulli}(\\text{keep})` and ``keep = 1 - rate``.
Both preserve the expectation of what the next layer sees at inference.

References:
    Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural
    Networks from Overfitting", JMLR 15. Hinton et al. (2012), arXiv:1207.0580.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcourse._checks import as_float_array, as_rng, check_choice, check_rate
from dlcourse.scratch.layers import Layer

MODES = ("inverted", "weight_scaling")


def resolve_noise_shape(shape: tuple[int, ...], noise_shape) -> tuple[int, ...]:
    """Return the shape of the mask for an input of ``shape``.

    ``noise_shape`` follows Keras: one entry per axis, each either the axis'
    size (an independent draw along it), ``1`` (one draw broadcast along it),
    or ``None`` (the axis' size). ``None`` for the whole argument means one
    draw per element. Spatial, variational and drop-path dropout are all this
    one mechanism with some axes set to 1.

    Raises:
        ValueError: ``noise_shape`` has the wrong length or an entry that is
            neither the axis' size nor 1.
    """
    if noise_shape is None:
        return tuple(shape)
    noise_shape = tuple(noise_shape)
    if len(noise_shape) != len(shape):
        raise ValueError(
            f"noise_shape must have one entry per axis of x ({len(shape)}); "
            f"received noise_shape={noise_shape} for x of shape {tuple(shape)}"
        )
    resolved = []
    for size, entry in zip(shape, noise_shape, strict=True):
        entry = size if entry is None else entry
        if entry not in (1, size):
            raise ValueError(
                f"noise_shape entries must be 1 or the size of the axis; received "
                f"noise_shape={noise_shape} for x of shape {tuple(shape)}"
            )
        resolved.append(int(entry))
    return tuple(resolved)


def bernoulli_keep_mask(shape: tuple[int, ...], rate: float, rng: np.random.Generator) -> np.ndarray:
    """Draw a boolean mask that is ``True`` (kept) with probability ``1 - rate``.

    The readable definition: one uniform number per element, kept where it is
    not below ``rate``. One byte per element (``bool``).

    Args:
        shape: The mask's shape.
        rate: The drop probability in ``[0, 1]``.
        rng: The generator to draw from.

    Returns:
        A ``bool`` array of ``shape``.
    """
    return rng.random(shape, dtype=np.float32) >= np.float32(rate)


def dropout_forward(
    x: np.ndarray,
    rate: float,
    *,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    noise_shape=None,
    mode: str = "inverted",
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply dropout to ``x``.

    Args:
        x: Input of any shape, e.g. ``(N, D)``. Floating input keeps its dtype;
            integer or boolean input is converted to float64.
        rate: Probability of dropping each unit, in ``[0, 1]``.
        training: Drop units (``True``) or run the inference rule (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        noise_shape: Shape of the mask, broadcast over axes of size 1
            (see :func:`resolve_noise_shape`).
        mode: ``"inverted"`` (scale survivors by ``1/keep`` in training) or
            ``"weight_scaling"`` (no scaling in training, multiply by ``keep``
            at inference).
        mask: A given boolean keep mask of the (resolved) ``noise_shape``
            instead of a random draw, e.g. to compare with another library on
            the same mask, or to hold the mask fixed in a gradient check.

    Returns:
        ``(out, cache)``: ``out`` has the shape and (floating) dtype of ``x``;
        ``cache`` holds what :func:`dropout_backward` needs: the boolean mask
        (one byte per element of ``noise_shape``) and the scale.

    Formula:
        ``out = x * m * scale`` with ``m ~ Bernoulli(keep)``, ``keep = 1 - rate``,
        ``scale = 1/keep`` (inverted) or ``1`` (weight scaling); ``rate == 1``
        gives zeros, never a division by zero. ``x`` is never modified.
    """
    rate = check_rate(rate)
    mode = check_choice(mode, "mode", MODES)
    x = as_float_array(x)
    keep = 1.0 - rate
    if not training or rate == 0.0:
        scale = keep if (mode == "weight_scaling" and not training) else 1.0
        out = x if scale == 1.0 else x * x.dtype.type(scale)
        return out, {"mask": None, "scale": scale, "shape": x.shape}
    shape = resolve_noise_shape(x.shape, noise_shape)
    if mask is None:
        mask = bernoulli_keep_mask(shape, rate, as_rng(rng))
    else:
        mask = _check_mask(mask, shape)
    scale = (1.0 / keep if keep > 0.0 else 0.0) if mode == "inverted" else 1.0
    out = np.multiply(x, mask, dtype=x.dtype)
    if scale != 1.0:
        out *= x.dtype.type(scale)
    return out, {"mask": mask, "scale": scale, "shape": x.shape}


def _check_mask(mask: object, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != tuple(shape):
        raise ValueError(
            f"mask must be a boolean array of shape {tuple(shape)}; received mask of "
            f"shape {mask.shape} and dtype {mask.dtype}"
        )
    return mask


def dropout_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Backward pass of :func:`dropout_forward`.

    Args:
        dout: Upstream gradient, same shape as the forward output.
        cache: The ``cache`` returned by :func:`dropout_forward`.

    Returns:
        ``dx = dout * m * scale``: zero exactly where the forward pass dropped,
        ``dout * scale`` elsewhere (``dout * scale`` everywhere in eval mode).
    """
    dout = as_float_array(dout, "dout")
    if dout.shape != tuple(cache["shape"]):
        raise ValueError(
            f"dout must have the shape of the forward input {tuple(cache['shape'])}; "
            f"received dout of shape {dout.shape}"
        )
    mask, scale = cache["mask"], cache["scale"]
    dx = dout if mask is None else np.multiply(dout, mask, dtype=dout.dtype)
    if scale != 1.0:
        dx = dx * dout.dtype.type(scale)
    return dx


class Dropout(Layer):
    """A dropout layer: keeps hyper-parameters and a cache, calls the functional core.

    Args:
        rate: Probability of dropping each unit, in ``[0, 1]``.
        rng: Generator or seed for the masks (one generator reused across calls).
        noise_shape: Mask shape broadcast over axes of size 1 (see
            :func:`resolve_noise_shape`).
        mode: ``"inverted"`` (default) or ``"weight_scaling"``.

    Attributes:
        training: ``True`` after :meth:`train` (the default), ``False`` after :meth:`eval`.
        params, grads: Empty dicts (dropout has no parameters); present so that
            every layer has the same interface.
        frozen: While ``True`` (see :meth:`freeze`), training-mode forward passes
            reuse one mask instead of drawing a new one.

    Holding the mask fixed:
        A gradient check evaluates the network many times with perturbed inputs
        and must see the *same* function each time, i.e. the same mask. Call
        :meth:`freeze`: the next training-mode forward draws a mask (unless
        one is already cached) and every later one reuses it, until
        :meth:`unfreeze`. :func:`dlcourse.scratch.gradcheck.check_model` does this
        for every dropout layer of a model.

    Example:
        >>> layer = Dropout(0.2, rng=0)
        >>> out = layer.forward(np.ones((2, 3), dtype=np.float32))
        >>> layer.eval().forward(np.ones(3)).tolist()
        [1.0, 1.0, 1.0]

    References:
        Srivastava et al. (2014), JMLR 15.
    """

    def __init__(self, rate: float, *, rng=None, noise_shape=None, mode: str = "inverted"):
        super().__init__()
        self.rate = check_rate(rate)
        self.mode = check_choice(mode, "mode", MODES)
        self.noise_shape = noise_shape
        self.rng = as_rng(rng)
        self.cache: dict[str, Any] | None = None
        self.frozen = False
        self._held_mask: np.ndarray | None = None

    @property
    def keep(self) -> float:
        """The keep probability ``1 - rate``."""
        return 1.0 - self.rate

    def freeze(self) -> Dropout:
        """Hold the mask fixed (see the class docstring); returns ``self``."""
        self.frozen = True
        if self._held_mask is None and self.cache is not None:
            self._held_mask = self.cache["mask"]
        return self

    def unfreeze(self) -> Dropout:
        """Draw a fresh mask on every training-mode forward again; returns ``self``."""
        self.frozen = False
        self._held_mask = None
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply dropout (see :func:`dropout_forward`) and remember the mask."""
        held = self._held_mask if (self.frozen and self.training) else None
        out, self.cache = dropout_forward(
            x, self.rate, training=self.training, rng=self.rng,
            noise_shape=self.noise_shape, mode=self.mode, mask=held,
        )
        if self.frozen and self.training and self._held_mask is None:
            self._held_mask = self.cache["mask"]
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Gradient with respect to the last forward input (see :func:`dropout_backward`)."""
        if self.cache is None:
            raise RuntimeError("Dropout.backward called before forward")
        return dropout_backward(dout, self.cache)

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate}, mode={self.mode!r}, training={self.training})"
