"""DropBlock: drop contiguous square regions of convolutional feature maps.

Dropout on single pixels of a feature map is weak (neighbours carry the same
information). DropBlock drops ``block_size x block_size`` squares:

1. draw *seeds* ``Bernoulli(gamma)`` only at positions where a whole block
   fits inside the map (the ``(H - bs + 1) x (W - bs + 1)`` top-left corners);
2. drop the ``bs x bs`` block that starts at each seed (blocks may overlap);
3. rescale the survivors by ``count(M) / count_ones(M)`` over the whole tensor
   (the kept fraction actually realised, not ``1/keep``).

The seed probability is the paper's formula, written for an ``H x W`` map:

.. math::

    \\gamma = \\frac{\\text{rate}}{bs^2}\\,
              \\frac{H\\,W}{(H - bs + 1)(W - bs + 1)},

chosen so that, if blocks never overlapped, the expected fraction dropped
would be exactly ``rate``. **Tolerance (stated and tested):** overlaps make
the expected fraction dropped ``E`` slightly smaller; with
``rate' = bs^2 gamma`` it satisfies

.. math::

    \\text{rate}\\,(1 - \\text{rate}'/2) \\le E \\le \\text{rate}

(for ``gamma <= 1``; a ``gamma`` above 1 is clipped to 1). For example
``rate=0.1``, ``bs=3`` on a 16x16 map gives ``E`` in ``[0.0935, 0.1]``. The
bound is tight for the small rates the paper uses (0.05 to 0.25); at large
rates overlaps are frequent and the fraction dropped falls well short of
``rate`` (0.7 with ``bs=3`` on 12x12 drops about 0.5), so use
:func:`dropblock_expected_fraction` there. ``rate == 1`` drops everything.
:func:`dropblock_expected_fraction` computes ``E`` exactly; the measured
fraction matches it within sampling error.

The paper ramps the keep probability linearly from 1 to its final value
during training: :func:`linear_rate_schedule` (and ``schedule_steps`` of
:class:`DropBlock2D`).

References:
    Ghiasi, Lin & Le (2018), "DropBlock: A regularization method for
    convolutional networks", NeurIPS, arXiv:1810.12890 (Algorithm 1, eq. 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcourse._checks import as_float_array, as_rng, check_choice, check_positive_int, check_rate
from dlcourse.scratch.dropout import dropout_backward
from dlcourse.scratch.layers import StochasticLayer

DATA_FORMATS = ("channels_first", "channels_last")


def _check_block(block_size: object, height: int, width: int) -> int:
    bs = check_positive_int(block_size, "block_size")
    if bs > height or bs > width:
        raise ValueError(
            f"block_size must fit in the feature map ({height}x{width}); received block_size={bs}"
        )
    return bs


def dropblock_gamma(rate: float, block_size: int, height: int, width: int) -> float:
    """The seed probability ``gamma`` of the paper (see module docstring), clipped to 1.

    ``rate == 1`` gives ``gamma = 1``: every position seeds a block, the blocks
    cover the whole map and everything is dropped (the formula alone would give
    less whenever blocks overlap).

    Args:
        rate: Target drop rate, in ``[0, 1]``.
        block_size: Side ``bs`` of the square blocks, ``1 <= bs <= min(H, W)``.
        height: Feature-map height ``H``.
        width: Feature-map width ``W``.

    Returns:
        ``gamma = min(1, rate / bs^2 * H W / ((H - bs + 1) (W - bs + 1)))``.

    Raises:
        ValueError: ``rate`` is not in ``[0, 1]`` or the block does not fit the map.

    References:
        Ghiasi, Lin & Le (2018), arXiv:1810.12890, eq. 1.
    """
    rate = check_rate(rate)
    bs = _check_block(block_size, height, width)
    if rate == 1.0:
        return 1.0
    valid = (height - bs + 1) * (width - bs + 1)
    return min(1.0, rate / bs**2 * (height * width) / valid)


def dropblock_expected_fraction(rate: float, block_size: int, height: int, width: int) -> float:
    """Exact expected fraction of an ``H x W`` map that DropBlock drops.

    A pixel covered by ``c`` possible seed positions survives with probability
    ``(1 - gamma)^c``; the expectation is the mean of ``1 - (1 - gamma)^c``.

    Args:
        rate, block_size, height, width: As for :func:`dropblock_gamma`.

    Returns:
        ``E = mean_ij (1 - (1 - gamma)^c_ij)`` in ``[0, 1]``, with ``gamma`` of
        :func:`dropblock_gamma` (bounds in the module docstring).
    """
    gamma = dropblock_gamma(rate, block_size, height, width)
    bs = int(block_size)

    def cover(n: int) -> np.ndarray:
        i = np.arange(n)
        return np.minimum(i, n - bs) - np.maximum(0, i - bs + 1) + 1

    c = np.outer(cover(height), cover(width))
    return float(np.mean(1.0 - (1.0 - gamma) ** c))


def linear_rate_schedule(step: int, total_steps: int, final_rate: float, initial_rate: float = 0.0) -> float:
    """Drop rate at ``step`` of a linear ramp (keep probability falling linearly from 1).

    Args:
        step: Current step, ``>= 0``.
        total_steps: Length of the ramp, ``>= 1``; the rate stays at
            ``final_rate`` from then on.
        final_rate: Rate reached at ``total_steps``, in ``[0, 1]``.
        initial_rate: Rate at step 0, in ``[0, 1]``.

    Returns:
        ``initial_rate + (final_rate - initial_rate) * min(step / total_steps, 1)``.

    References:
        Ghiasi, Lin & Le (2018), arXiv:1810.12890 ("Scheduled DropBlock").
    """
    final_rate = check_rate(final_rate, "final_rate")
    initial_rate = check_rate(initial_rate, "initial_rate")
    total_steps = check_positive_int(total_steps, "total_steps")
    step = check_positive_int(step, "step", minimum=0)
    return initial_rate + (final_rate - initial_rate) * min(step / total_steps, 1.0)


def blocks_from_seeds(seeds: np.ndarray, block_size: int) -> np.ndarray:
    """Drop mask ``(N, C, H, W)`` from seeds ``(N, C, H - bs + 1, W - bs + 1)``.

    Each ``True`` seed at ``(i, j)`` drops the block ``[i:i+bs, j:j+bs]``.

    Args:
        seeds: Boolean (or 0/1) seeds ``(N, C, H - bs + 1, W - bs + 1)``.
        block_size: Side ``bs`` of the square blocks, ``>= 1``.

    Returns:
        Boolean **drop** mask ``(N, C, H, W)``: ``True`` inside any block (the
        union of the overlapping blocks).
    """
    seeds = np.asarray(seeds, dtype=bool)
    n, c, hs, ws = seeds.shape
    bs = block_size
    drop = np.zeros((n, c, hs + bs - 1, ws + bs - 1), dtype=bool)
    for di in range(bs):  # bs^2 shifted ORs: exact, and cheap for small blocks
        for dj in range(bs):
            drop[:, :, di:di + hs, dj:dj + ws] |= seeds
    return drop


def dropblock_forward(
    x: np.ndarray,
    rate: float,
    block_size: int,
    *,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    data_format: str = "channels_first",
    seeds: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply DropBlock to a batch of feature maps.

    Args:
        x: ``(N, C, H, W)`` (channels first) or ``(N, H, W, C)`` (channels last).
        rate: Target fraction of activations to drop, in ``[0, 1]``.
        block_size: Side ``bs`` of the square blocks, ``1 <= bs <= min(H, W)``
            (``bs = 1`` is ordinary dropout with the realised-fraction rescaling).
        training: Drop blocks (``True``) or return ``x`` (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        data_format: ``"channels_first"`` or ``"channels_last"``.
        seeds: Optional boolean seeds ``(N, C, H - bs + 1, W - bs + 1)`` (channels
            first layout whatever ``data_format``) instead of drawing them.

    Returns:
        ``(out, cache)``: ``out = x * M * count(M) / count_ones(M)`` (0 where
        everything is dropped); ``cache`` holds the keep mask ``M`` and the scale.
    """
    rate = check_rate(rate)
    data_format = check_choice(data_format, "data_format", DATA_FORMATS)
    x = as_float_array(x)
    if x.ndim != 4:
        raise ValueError(f"x must have 4 axes (N, C, H, W) or (N, H, W, C); received x of shape {x.shape}")
    xf = x if data_format == "channels_first" else np.moveaxis(x, -1, 1)
    n, c, h, w = xf.shape
    bs = _check_block(block_size, h, w)
    if not training or (rate == 0.0 and seeds is None):
        return x, {"mask": None, "scale": 1.0, "shape": x.shape, "seeds": None}
    seed_shape = (n, c, h - bs + 1, w - bs + 1)
    if seeds is None:
        gamma = dropblock_gamma(rate, bs, h, w)
        seeds = as_rng(rng).random(seed_shape) < gamma
    seeds = np.asarray(seeds, dtype=bool)
    if seeds.shape != seed_shape:
        raise ValueError(f"seeds must have shape {seed_shape}; received seeds of shape {seeds.shape}")
    keep_mask = ~blocks_from_seeds(seeds, bs)
    if data_format == "channels_last":
        keep_mask = np.moveaxis(keep_mask, 1, -1)
    kept = int(keep_mask.sum())
    scale = keep_mask.size / kept if kept else 0.0
    out = np.multiply(x, keep_mask, dtype=x.dtype) * x.dtype.type(scale)
    return out, {"mask": keep_mask, "scale": scale, "shape": x.shape, "seeds": seeds}


def dropblock_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Backward pass of :func:`dropblock_forward`: ``dx = dout * M * scale``.

    Args:
        dout: Upstream gradient ``dL/dout``, the shape (and layout) of the forward input.
        cache: From :func:`dropblock_forward`.

    Returns:
        ``dx = dout * M * count(M) / count_ones(M)``, the shape of ``dout``
        (zero inside dropped blocks); ``dout`` itself when nothing was dropped.

    Raises:
        ValueError: ``dout`` does not have the forward input's shape.

    The same masked, scaled product as
    :func:`~dlcourse.scratch.dropout.dropout_backward`, which computes it.
    """
    return dropout_backward(dout, cache)


class DropBlock2D(StochasticLayer):
    """DropBlock layer (see :func:`dropblock_forward`), with the linear schedule.

    Args:
        rate: Final target drop rate, in ``[0, 1]``.
        block_size: Side of the square blocks.
        data_format: ``"channels_first"`` (default) or ``"channels_last"``.
        schedule_steps: If given, the rate used grows linearly from 0 to ``rate``
            over this many training forward passes (the paper's schedule),
            then stays at ``rate``.
        rng: Generator or seed for the seeds.

    :meth:`freeze` / :meth:`unfreeze` hold the block seeds fixed (see
    :class:`~dlcourse.scratch.layers.StochasticLayer`); the schedule still
    advances, the held seeds do not change with it.
    """

    def __init__(self, rate: float, block_size: int, *, data_format: str = "channels_first",
                 schedule_steps: int | None = None,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.rate = check_rate(rate)
        self.block_size = check_positive_int(block_size, "block_size")
        self.data_format = check_choice(data_format, "data_format", DATA_FORMATS)
        self.schedule_steps = (None if schedule_steps is None
                               else check_positive_int(schedule_steps, "schedule_steps"))
        self.rng = as_rng(rng)
        self.step = 0
        self.cache: dict[str, Any] | None = None

    @property
    def current_rate(self) -> float:
        """The rate the next training forward pass uses (after the schedule)."""
        if self.schedule_steps is None:
            return self.rate
        return linear_rate_schedule(self.step, self.schedule_steps, self.rate)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Drop blocks of ``x`` and advance the schedule by one step (in training).

        Args:
            x: ``(N, C, H, W)`` or ``(N, H, W, C)``, as ``data_format``.

        Returns:
            ``x * M * count(M) / count_ones(M)`` at :attr:`current_rate` in
            training, ``x`` itself in inference; the shape of ``x``.
        """
        out, self.cache = dropblock_forward(
            x, self.current_rate, self.block_size, training=self.training,
            rng=self.rng, data_format=self.data_format, seeds=self._held_draw(self.training))
        self._remember_draw(self.cache["seeds"], self.training)
        if self.training:
            self.step += 1
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dx = dout * M * scale`` for the last forward input (see :func:`dropblock_backward`)."""
        return dropblock_backward(dout, self._cached("cache"))

    def __repr__(self) -> str:
        return (f"DropBlock2D(rate={self.rate}, block_size={self.block_size}, "
                f"data_format={self.data_format!r}, training={self.training})")
