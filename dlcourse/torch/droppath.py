"""DropPath (stochastic depth), the PyTorch form: torchvision's definition without torchvision."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dlcourse._checks import check_choice, check_rate
from dlcourse.torch._masks import keep_mask

MODES = ("row", "batch")


def stochastic_depth(x: Tensor, p: float, mode: str = "row", training: bool = True, *,
                     generator: torch.Generator | None = None) -> Tensor:
    """Torchvision's ``stochastic_depth`` definition (torchvision itself not required).

    ``mode="row"``: one Bernoulli(1 - p) draw per example (mask ``(N, 1, ..., 1)``),
    ``"batch"``: one draw for the whole batch; survivors divided by ``1 - p``
    (not when ``p == 1``: then the output is 0); identity if not training or
    ``p == 0``. The division, as torchvision's, gives the same bits as
    ``torchvision.ops.stochastic_depth`` given the same draw.

    Args:
        x: Input ``(N, ...)``, typically a residual branch ``f(x)``.
        p: Probability of dropping the branch, in ``[0, 1]``.
        mode: ``"row"`` or ``"batch"``.
        training: If ``False``, ``x`` is returned.
        generator: Optional ``torch.Generator`` for the draws.

    Returns:
        The shape and dtype of ``x``.

    References:
        Huang, Sun, Liu, Sedra & Weinberger (2016), "Deep Networks with
        Stochastic Depth", ECCV, arXiv:1603.09382.
    """
    p = check_rate(p, "p")
    mode = check_choice(mode, "mode", MODES)
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else (1,) * x.dim()
    noise = keep_mask(shape, p, x, generator).to(x.dtype)
    if survival > 0.0:
        noise = noise / survival
    return x * noise


class DropPath(nn.Module):
    """Drop a residual branch per example: ``x + DropPath(p)(f(x))``; :func:`stochastic_depth` as a module.

    Same arguments and behaviour as ``torchvision.ops.StochasticDepth(p, mode)``,
    plus ``generator``. Not DropConnect, which masks weights.

    Args:
        p: Probability of dropping the branch, in ``[0, 1]``.
        mode: ``"row"`` (one draw per example) or ``"batch"`` (one for the batch).
        generator: Optional ``torch.Generator`` for the draws.
    """

    def __init__(self, p: float, mode: str = "row", *, generator: torch.Generator | None = None):
        super().__init__()
        self.p = check_rate(p, "p")
        self.mode = check_choice(mode, "mode", MODES)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        """:func:`stochastic_depth` of ``x`` ``(N, ...)`` in training mode, ``x`` in eval mode."""
        return stochastic_depth(x, self.p, self.mode, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


#: torchvision's name for :class:`DropPath`.
StochasticDepth = DropPath
