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

Two ways of drawing the mask ``m`` are kept side by side (``draw``):
:func:`bernoulli_keep_mask` is the readable definition (a float32 uniform per
unit, kept where it is not below ``rate``); :func:`fast_keep_mask`, the
default, splits raw 64-bit random words into 16-bit integers and compares
them with an integer threshold, about three times faster, with the drop
probability off by at most ``2**-17`` (see its docstring and
``benchmarks/dropout_speed.py``). Both cache a ``bool`` mask: one byte per unit.

References:
    Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural
    Networks from Overfitting", JMLR 15. Hinton et al. (2012), arXiv:1207.0580.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from dlcourse._checks import as_float_array, as_rng, check_choice, check_rate
from dlcourse._scale import inverted_scale
from dlcourse.scratch.layers import StochasticLayer, as_upstream_gradient

MODES = ("inverted", "weight_scaling")


def resolve_noise_shape(
    shape: tuple[int, ...], noise_shape: Sequence[int | None] | None
) -> tuple[int, ...]:
    """Return the shape of the mask for an input of ``shape``.

    ``noise_shape`` follows Keras: one entry per axis, each either the axis'
    size (an independent draw along it), ``1`` (one draw broadcast along it),
    or ``None`` (the axis' size). ``None`` for the whole argument means one
    draw per element. Spatial, variational and drop-path dropout are all this
    one mechanism with some axes set to 1.

    Args:
        shape: Shape of the input, e.g. ``(N, C, H, W)``.
        noise_shape: ``None`` or a sequence with one entry per axis, e.g.
            ``(None, None, 1, 1)`` for one draw per (sample, channel).

    Returns:
        The mask's shape, e.g. ``(N, C, 1, 1)``.

    Raises:
        TypeError: ``noise_shape`` is not a sequence.
        ValueError: ``noise_shape`` has the wrong length or an entry that is
            neither the axis' size, 1, nor ``None``.

    References:
        ``keras.layers.Dropout(noise_shape=...)``; Tompson et al. (2015), CVPR
        (spatial dropout); Gal & Ghahramani (2016), NeurIPS (time-shared masks).
    """
    if noise_shape is None:
        return tuple(shape)
    try:
        entries = tuple(noise_shape)
    except TypeError:
        raise TypeError(
            f"noise_shape must be None or a sequence with one entry per axis; "
            f"received noise_shape={noise_shape!r}"
        ) from None
    if len(entries) != len(shape):
        raise ValueError(
            f"noise_shape must have one entry per axis of x ({len(shape)}); "
            f"received noise_shape={entries} for x of shape {tuple(shape)}"
        )
    resolved = []
    for size, entry in zip(shape, entries, strict=True):
        entry = size if entry is None else entry
        if isinstance(entry, bool) or not isinstance(entry, numbers.Integral) or entry not in (
            1, size
        ):
            raise ValueError(
                f"noise_shape entries must be None, 1 or the size of the axis; received "
                f"noise_shape={entries} for x of shape {tuple(shape)}"
            )
        resolved.append(int(entry))
    return tuple(resolved)


def bernoulli_keep_mask(shape: tuple[int, ...], rate: float, rng: np.random.Generator) -> np.ndarray:
    """Draw a boolean mask that is ``True`` (kept) with probability ``1 - rate``.

    The readable definition: one uniform number ``u`` in ``[0, 1)`` per
    element, kept where ``u >= rate``, so ``P(kept) = 1 - rate``. The
    float32 uniforms have a resolution of ``2**-24``. One byte per element
    (``bool``) is kept; the uniforms (4 bytes per element) are temporary.

    Args:
        shape: The mask's shape.
        rate: The drop probability in ``[0, 1]``.
        rng: The generator to draw from.

    Returns:
        A ``bool`` array of ``shape``.

    References:
        Srivastava et al. (2014), JMLR 15, §4 (``r_j ~ Bernoulli(p)``, ``p`` the
        keep probability there).
    """
    return rng.random(shape, dtype=np.float32) >= np.float32(rate)


def fast_keep_mask(shape: tuple[int, ...], rate: float, rng: np.random.Generator) -> np.ndarray:
    """The same Bernoulli(``1 - rate``) mask as :func:`bernoulli_keep_mask`, about 3x faster.

    Drawing the random numbers dominates the cost of dropout. Instead of one
    float32 uniform per element (32 random bits, then a conversion to float),
    this draws raw 64-bit integers and splits each into four 16-bit integers
    ``u`` uniform on ``{0, ..., 65535}``, and keeps an element where
    ``u >= T`` with ``T = round(rate * 2**16)``: half the random bits and no
    conversion to float.

    Resolution (the trade-off): the drop probability is exactly ``T / 2**16``,
    which differs from ``rate`` by at most ``2**-17 ~ 7.6e-6`` (zero for rates
    that are multiples of ``2**-16``, such as 0.5 or 0.25). For rates in
    [0.05, 0.95] that is at least 14 times smaller than the binomial noise of
    the fraction dropped in a whole 4-million element array (standard
    deviation ``sqrt(rate*keep/n) >= 1.06e-4``). Where the rate or the keep
    probability is below ``2**-8`` the relative error could exceed ``2**-9``,
    so 32-bit integers are used instead (error at most ``2**-33``, or
    ``2**-32`` for a rate within ``2**-33`` of 1, where the threshold is capped). Eight bits
    would be faster still, but their error of up to ``2**-9 ~ 0.002`` (0.2
    becomes 51/256 = 0.1992) shows in a single large array (about 4 standard
    deviations at 4 million elements), so they are not used.

    Args:
        shape: The mask's shape.
        rate: The drop probability in ``[0, 1]``.
        rng: The generator to draw from.

    Returns:
        A ``bool`` array of ``shape``, ``True`` where kept.

    References:
        O'Neill (2014), "PCG: A Family of Simple Fast Space-Efficient
        Statistically Good Algorithms for Random Number Generation" (NumPy's
        default generator, whose 64-bit outputs are uniform on all bits).
    """
    rate = check_rate(rate)
    shape = tuple(shape)
    if rate == 0.0 or rate == 1.0:
        return np.full(shape, rate == 0.0, dtype=bool)
    bits = 16 if min(rate, 1.0 - rate) >= 2.0**-8 else 32
    utype = np.uint16 if bits == 16 else np.uint32
    n = math.prod(shape)
    per_word = 64 // bits
    words = rng.integers(0, 2**64, size=-(-n // per_word), dtype=np.uint64)
    u = words.view(utype)[:n].reshape(shape)
    # a rate within 2**-(bits+1) of 1 rounds to 2**bits, which the integer type
    # cannot hold: cap at the largest threshold (drop probability 1 - 2**-bits)
    threshold = min(round(rate * 2.0**bits), 2**bits - 1)
    return u >= utype(threshold)


DRAWS = {"fast": fast_keep_mask, "readable": bernoulli_keep_mask}


def dropout_forward(
    x: np.ndarray,
    rate: float,
    *,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    noise_shape: Sequence[int | None] | None = None,
    mode: str = "inverted",
    mask: np.ndarray | None = None,
    draw: str = "fast",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply dropout to ``x``.

    Args:
        x: Input of any shape, e.g. ``(N, D)``. Floating input keeps its dtype
            (float32 stays float32); integer or boolean input is converted to
            float64 (never truncated back to integers). ``x`` is never modified.
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
        draw: How the mask is drawn: ``"fast"`` (:func:`fast_keep_mask`, 16-bit
            integer thresholds, the default) or ``"readable"``
            (:func:`bernoulli_keep_mask`, float32 uniforms). Both are
            Bernoulli(``keep``); they give different masks for the same seed.

    Returns:
        ``(out, cache)``: ``out`` has the shape and (floating) dtype of ``x``;
        ``cache`` holds what :func:`dropout_backward` needs: the boolean mask
        (one byte per element of ``noise_shape``; ``None`` when nothing is
        dropped), the scale and the input's shape.

    Formula:
        ``out = x * m * scale`` with ``m ~ Bernoulli(keep)``, ``keep = 1 - rate``,
        ``scale = 1/keep`` (inverted) or ``1`` (weight scaling). At inference
        ``out = x`` (inverted; the input itself is returned) or ``keep * x``
        (weight scaling). ``rate == 1`` gives zeros in training, never a
        division by zero.

    References:
        Srivastava et al. (2014), JMLR 15, §4 and §10; the inverted form as in
        ``keras.layers.Dropout`` and ``torch.nn.functional.dropout``.
    """
    rate = check_rate(rate)
    mode = check_choice(mode, "mode", MODES)
    draw = check_choice(draw, "draw", tuple(DRAWS))
    if not isinstance(training, bool | np.bool_):
        raise TypeError(f"training must be True or False; received training={training!r}")
    x = as_float_array(x)
    shape = resolve_noise_shape(x.shape, noise_shape)
    keep = 1.0 - rate
    if not training or rate == 0.0:
        scale = keep if (mode == "weight_scaling" and not training) else 1.0
        if scale == 1.0:
            out = x
        elif scale == 0.0:
            out = np.zeros_like(x)
        else:
            out = np.multiply(x, x.dtype.type(scale), out=np.empty_like(x))
        return out, {"mask": None, "scale": scale, "shape": x.shape}
    if mask is None:
        mask = DRAWS[draw](shape, rate, as_rng(rng))
    else:
        mask = _check_mask(mask, shape)
    scale = inverted_scale(rate) if mode == "inverted" else 1.0
    cache = {"mask": mask, "scale": scale, "shape": x.shape}
    if keep == 0.0:
        return np.zeros_like(x), cache
    # mask first (so a dropped unit is 0 even where x * scale would overflow), then
    # scale in place: two passes, no temporary; out= keeps 0-d input an array
    out = np.multiply(x, mask, out=np.empty_like(x))
    if scale != 1.0:
        np.multiply(out, x.dtype.type(scale), out=out)
    return out, cache


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
        ``dx = dout * m * scale`` (shape and floating dtype of ``dout``): zero
        exactly where the forward pass dropped, ``dout * scale`` elsewhere
        (``dout * scale`` everywhere at inference). ``dout`` is never modified.

    Formula:
        ``out = x * m * scale`` is linear in ``x``, so ``dL/dx = dL/dout * m * scale``.

    References:
        Srivastava et al. (2014), JMLR 15, §5.1 (backpropagation through the
        thinned network); CS231n, "Neural Networks Part 2" (course notes).
    """
    dout = as_upstream_gradient(dout, cache["shape"])
    mask, scale = cache["mask"], cache["scale"]
    if scale == 0.0:
        return np.zeros_like(dout)
    if mask is None:
        if scale == 1.0:
            return dout
        return np.multiply(dout, dout.dtype.type(scale), out=np.empty_like(dout))
    dx = np.multiply(dout, mask, out=np.empty_like(dout))
    if scale != 1.0:
        np.multiply(dx, dout.dtype.type(scale), out=dx)
    return dx


class Dropout(StochasticLayer):
    """A dropout layer: keeps hyper-parameters and a cache, calls the functional core.

    Args:
        rate: Probability of dropping each unit, in ``[0, 1]``.
        rng: Generator or seed for the masks (one generator reused across calls).
        noise_shape: Mask shape broadcast over axes of size 1 (see
            :func:`resolve_noise_shape`).
        mode: ``"inverted"`` (default) or ``"weight_scaling"``.
        draw: ``"fast"`` (default) or ``"readable"`` mask draws (see :func:`dropout_forward`).

    Attributes:
        training: ``True`` after :meth:`train` (the default), ``False`` after :meth:`eval`.
        params, grads: Empty dicts (dropout has no parameters); present so that
            every layer has the same interface.
        frozen: While ``True`` (see :meth:`freeze`), training-mode forward passes
            reuse one mask instead of drawing a new one.

    Holding the mask fixed:
        :meth:`freeze` holds the mask of the last training-mode forward (or,
        if there is none, of the next one) until :meth:`unfreeze`, as for
        every dropout layer (see :class:`~dlcourse.scratch.layers.StochasticLayer`).
        :func:`dlcourse.scratch.gradcheck.check_model` does this for every
        dropout layer of a model.

    Example:
        >>> layer = Dropout(0.2, rng=0)
        >>> out = layer.forward(np.ones((2, 3), dtype=np.float32))
        >>> layer.eval().forward(np.ones(3)).tolist()
        [1.0, 1.0, 1.0]

    References:
        Srivastava et al. (2014), JMLR 15.
    """

    def __init__(
        self,
        rate: float,
        *,
        rng: np.random.Generator | int | None = None,
        noise_shape: Sequence[int | None] | None = None,
        mode: str = "inverted",
        draw: str = "fast",
    ) -> None:
        super().__init__()
        self.rate = check_rate(rate)
        self.mode = check_choice(mode, "mode", MODES)
        self.draw = check_choice(draw, "draw", tuple(DRAWS))
        self.noise_shape = noise_shape
        self.rng = as_rng(rng)
        self.cache: dict[str, Any] | None = None

    @property
    def keep(self) -> float:
        """The keep probability ``1 - rate``."""
        return 1.0 - self.rate

    def forward(self, x: np.ndarray, *, training: bool | None = None) -> np.ndarray:
        """Apply dropout (see :func:`dropout_forward`) and remember the mask.

        Args:
            x: Input of any shape.
            training: Override the layer's mode for this call (Keras'
                ``layer(x, training=...)``); ``None`` uses :attr:`training`.

        Returns:
            ``out`` of :func:`dropout_forward`: the shape and floating dtype of ``x``.
        """
        training = self.training if training is None else training
        out, self.cache = dropout_forward(
            x, self.rate, training=training, rng=self.rng, noise_shape=self.noise_shape,
            mode=self.mode, mask=self._held_draw(training), draw=self.draw,
        )
        self._remember_draw(self.cache["mask"], training)
        return out

    def __call__(self, x: np.ndarray, *, training: bool | None = None) -> np.ndarray:
        # subclasses may override forward(x) without the keyword
        return self.forward(x) if training is None else self.forward(x, training=training)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dx = dout * m * scale`` for the last forward input (see :func:`dropout_backward`)."""
        return dropout_backward(dout, self._cached("cache"))

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate}, mode={self.mode!r}, training={self.training})"
