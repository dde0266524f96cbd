"""The Bernoulli keep mask the torch variants draw (see :mod:`dlcourse.torch`)."""

from __future__ import annotations

import torch
from torch import Tensor


def keep_mask(shape: tuple[int, ...], rate: float, like: Tensor,
              generator: torch.Generator | None) -> Tensor:
    """Boolean mask of ``shape``, ``True`` with probability ``1 - rate``, on ``like``'s device.

    ``True`` where a float32 uniform draw is ``>= rate``: the comparison of the
    NumPy reference and of Keras, drawn from ``generator`` (or torch's global
    generator when ``None``).
    """
    u = torch.rand(shape, generator=generator, device=like.device, dtype=torch.float32)
    return u >= rate
