"""DropBlock, the PyTorch form (the formulas and tolerance: :mod:`dlcourse.scratch.dropblock`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlcourse._checks import check_positive_int, check_rate
from dlcourse.scratch.dropblock import dropblock_gamma, linear_rate_schedule


def drop_block2d(x: Tensor, rate: float, block_size: int, *, training: bool = True,
                 generator: torch.Generator | None = None, seeds: Tensor | None = None) -> Tensor:
    """DropBlock on ``(N, C, H, W)``.

    Seeds ``Bernoulli(gamma)`` of shape ``(N, C, H - bs + 1, W - bs + 1)`` (or
    the given boolean ``seeds``) each drop the ``bs x bs`` block they start;
    survivors are scaled by ``numel / count_kept`` over the whole tensor.
    ``gamma`` is the paper's (:func:`dlcourse.scratch.dropblock.dropblock_gamma`),
    with the tolerance on the fraction dropped stated in
    :mod:`dlcourse.scratch.dropblock`; ``rate == 1`` drops everything (output
    0, never a division by zero). The count and the scale are computed in
    float32 (float64 for float64 input) whatever the dtype of ``x``: a float16
    count overflows past 65,504 elements (torchvision's ``drop_block2d`` then
    returns zeros), a bfloat16 one is rounded.

    Args:
        x: Feature maps ``(N, C, H, W)``.
        rate: Target drop rate, in ``[0, 1]``.
        block_size: Side ``bs`` of the square blocks, at most ``min(H, W)``.
        training: If ``False`` (or ``rate == 0`` with no ``seeds``), ``x`` is returned.
        generator: Optional ``torch.Generator`` for the seeds.
        seeds: Optional boolean seeds ``(N, C, H - bs + 1, W - bs + 1)``.

    Returns:
        The shape and dtype of ``x``.

    Raises:
        ValueError: ``x`` is not 4-D, ``block_size`` does not fit, bad ``rate``,
            or ``seeds`` of the wrong shape.

    References:
        Ghiasi, Lin & Le (2018), "DropBlock: A regularization method for
        convolutional networks", NeurIPS, arXiv:1810.12890 (Algorithm 1, eq. 1).
    """
    rate = check_rate(rate)
    if x.dim() != 4:
        raise ValueError(f"x must have shape (N, C, H, W); received x of shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    gamma = dropblock_gamma(rate, block_size, h, w)  # also checks block_size
    if not training or (rate == 0.0 and seeds is None):
        return x
    bs = int(block_size)
    seed_shape = (n, c, h - bs + 1, w - bs + 1)
    if seeds is None:
        u = torch.rand(seed_shape, generator=generator, device=x.device, dtype=torch.float64)
        seeds = u < gamma
    if tuple(seeds.shape) != seed_shape:
        raise ValueError(f"seeds must have shape {seed_shape}; received seeds of shape {tuple(seeds.shape)}")
    # padding bs-1 on every side then a bs x bs max-pool = the union of blocks
    drop = F.max_pool2d(F.pad(seeds.to(x.dtype), (bs - 1,) * 4), bs, stride=1)
    keep = 1.0 - drop
    kept = keep.sum(dtype=torch.promote_types(x.dtype, torch.float32))
    scale = torch.where(kept > 0, keep.numel() / kept.clamp(min=1.0), torch.zeros_like(kept))
    return x * keep * scale


class DropBlock2d(nn.Module):
    """:func:`drop_block2d` as a module, with the paper's linear schedule.

    Args:
        rate: Final target drop rate, in ``[0, 1]``.
        block_size: Side of the square blocks.
        schedule_steps: If given, the rate grows linearly from 0 to ``rate``
            over this many training forward passes
            (:func:`dlcourse.scratch.dropblock.linear_rate_schedule`).
        generator: Optional ``torch.Generator`` for the seeds.
    """

    def __init__(self, rate: float, block_size: int, *, schedule_steps: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.rate = check_rate(rate)
        self.block_size = check_positive_int(block_size, "block_size")
        self.schedule_steps = (None if schedule_steps is None
                               else check_positive_int(schedule_steps, "schedule_steps"))
        self.generator = generator
        self.step = 0

    @property
    def current_rate(self) -> float:
        """The rate the next training forward pass uses."""
        if self.schedule_steps is None:
            return self.rate
        return linear_rate_schedule(self.step, self.schedule_steps, self.rate)

    def forward(self, x: Tensor) -> Tensor:
        """DropBlock at :attr:`current_rate` on ``(N, C, H, W)``; a training pass advances the schedule."""
        out = drop_block2d(x, self.current_rate, self.block_size, training=self.training,
                           generator=self.generator)
        if self.training:
            self.step += 1
        return out

    def extra_repr(self) -> str:
        return f"rate={self.rate}, block_size={self.block_size}"
