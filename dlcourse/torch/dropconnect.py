"""DropConnect for a linear layer, the PyTorch form (see :mod:`dlcourse.scratch.dropconnect`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlcourse._checks import check_choice, check_positive_int, check_rate
from dlcourse._scale import inverted_scale
from dlcourse.torch._masks import keep_mask

SAMPLING = ("batch", "example")
INFERENCE = ("mean", "gaussian")


def dropconnect_linear(x: Tensor, weight: Tensor, bias: Tensor | None, rate: float, *,
                       training: bool = True, sampling: str = "batch",
                       generator: torch.Generator | None = None,
                       mask: Tensor | None = None) -> Tensor:
    """Linear map with DropConnect on ``weight`` (``(out, in)``, as ``nn.Linear``).

    Training: ``x (M * W)^T / keep + b`` with ``M`` of shape ``(out, in)``
    (``sampling="batch"``) or ``(N, out, in)`` (``"example"``); inference:
    ``x W^T + b``. ``mask`` (boolean) replaces the random draw. At
    ``rate == 1`` every weight is dropped: the output is ``b`` (0 without
    bias).

    Args:
        x: Input ``(N, in)``.
        weight: ``(out, in)``.
        bias: ``(out,)`` or ``None``; never dropped.
        rate: Probability of dropping each weight, in ``[0, 1]``.
        training: If ``False`` (or ``rate == 0`` with no ``mask``), ``x W^T + b``.
        sampling: ``"batch"`` (one mask per call) or ``"example"`` (one per row of ``x``).
        generator: Optional ``torch.Generator`` for the mask.
        mask: Optional keep mask ``(out, in)`` or ``(N, out, in)``.

    Returns:
        The pre-activation ``(N, out)``.

    Raises:
        ValueError: bad ``rate`` or ``sampling``, or ``mask`` of the wrong shape.

    References:
        Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of Neural
        Networks using DropConnect", ICML, sections 2-3 (inference: section 3.1
        and Algorithm 2, :func:`dropconnect_gaussian_inference`).
    """
    rate = check_rate(rate)
    sampling = check_choice(sampling, "sampling", SAMPLING)
    if not training or (rate == 0.0 and mask is None):
        return F.linear(x, weight, bias)
    shape = tuple(weight.shape) if sampling == "batch" else (x.shape[0], *weight.shape)
    if mask is None:
        mask = keep_mask(shape, rate, x, generator)
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {shape}; received mask of shape {tuple(mask.shape)}")
    w = weight * mask.to(weight.dtype) * inverted_scale(rate)
    out = F.linear(x, w) if sampling == "batch" else torch.einsum("ni,noi->no", x, w)
    return out if bias is None else out + bias


def dropconnect_gaussian_inference(x: Tensor, weight: Tensor, bias: Tensor | None, rate: float, *,
                                   activation: Callable[[Tensor], Tensor], n_samples: int = 256,
                                   generator: torch.Generator | None = None) -> Tensor:
    """The paper's inference rule: average ``activation(u)`` over a moment-matched Gaussian.

    ``u ~ N(x W^T + b, (rate / keep) (x*x)(W*W)^T)``, the mean and variance of
    the training pre-activation over masks (:func:`dropconnect_linear`, whose
    docstring has the reference); returns the mean of ``activation(u)`` over
    ``n_samples`` draws. As
    :func:`dlcourse.scratch.dropconnect.dropconnect_gaussian_inference`.

    Args:
        x: Input ``(N, in)``.
        weight: ``(out, in)``.
        bias: ``(out,)`` or ``None``.
        rate: Training drop rate, in ``[0, 1)``.
        activation: Applied to each Gaussian draw before averaging.
        n_samples: Number of Gaussian draws.
        generator: Optional ``torch.Generator`` for the draws.

    Returns:
        ``(N, out)``, the Monte-Carlo estimate of ``E[activation(u)]``.
    """
    rate = check_rate(rate, allow_one=False)
    n_samples = check_positive_int(n_samples, "n_samples")
    keep = 1.0 - rate
    mean = F.linear(x, weight, bias)
    std = torch.sqrt((rate / keep) * F.linear(x * x, weight * weight))
    eps = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype,
                      device=mean.device)
    return activation(mean + std * eps).mean(dim=0)


class DropConnectLinear(nn.Linear):
    """``nn.Linear`` whose weights are dropped in training: :func:`dropconnect_linear` as a layer.

    Args:
        in_features, out_features, bias: As ``nn.Linear``.
        rate: Probability of dropping each weight, in ``[0, 1]``.
        sampling: ``"batch"`` (one mask per forward call, default) or ``"example"``.
        activation: Applied to the pre-activation (default: none). Part of the
            layer because the Gaussian inference averages *after* it.
        inference: ``"mean"`` (``activation(x W^T + b)``, the weight-scaling
            rule of the inverted form) or ``"gaussian"`` (the paper's moment
            matching, :func:`dropconnect_gaussian_inference`, with ``n_samples``).
        generator: Optional ``torch.Generator`` for the masks and the Gaussian draws.

    At ``rate == 1`` every weight is dropped in training (output
    ``activation(b)``); the Gaussian inference needs ``rate < 1``.
    """

    def __init__(self, in_features: int, out_features: int, rate: float, bias: bool = True, *,
                 sampling: str = "batch", activation: Callable[[Tensor], Tensor] | None = None,
                 inference: str = "mean", n_samples: int = 256,
                 generator: torch.Generator | None = None):
        super().__init__(in_features, out_features, bias=bias)
        self.rate = check_rate(rate)
        self.sampling = check_choice(sampling, "sampling", SAMPLING)
        self.inference = check_choice(inference, "inference", INFERENCE)
        if self.inference == "gaussian":
            check_rate(rate, allow_one=False)
        self.n_samples = check_positive_int(n_samples, "n_samples")
        self.activation = activation
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(N, in_features)`` to ``(N, out_features)`` (masked in training mode)."""
        f = self.activation or (lambda u: u)
        if not self.training and self.inference == "gaussian" and self.rate > 0:
            return dropconnect_gaussian_inference(x, self.weight, self.bias, self.rate,
                                                  activation=f, n_samples=self.n_samples,
                                                  generator=self.generator)
        return f(dropconnect_linear(x, self.weight, self.bias, self.rate, training=self.training,
                                    sampling=self.sampling, generator=self.generator))

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, rate={self.rate}, sampling={self.sampling!r}, "
                f"inference={self.inference!r}")
