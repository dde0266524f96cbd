"""Dropout variants as PyTorch functions and modules (see :mod:`dlcourse.torch`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlcourse._checks import check_choice, check_positive_int, check_rate
from dlcourse.scratch.dropblock import dropblock_gamma, linear_rate_schedule


def _keep_mask(shape, rate: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Boolean mask, ``True`` with probability ``1 - rate`` (uniform >= rate, as NumPy/Keras)."""
    u = torch.rand(shape, generator=generator, device=like.device, dtype=torch.float32)
    return u >= rate


# --------------------------------------------------------------------------- Gaussian
def gaussian_dropout(x: Tensor, rate: float, *, training: bool = True,
                     generator: torch.Generator | None = None) -> Tensor:
    """Gaussian dropout: ``x * eps`` with ``eps ~ N(1, rate / (1 - rate))``.

    The noise has the mean (1) and variance (``rate / keep``) of the inverted
    Bernoulli factor ``m / keep``; see :mod:`dlcourse.scratch.gaussian`.

    Args:
        x: Input of any shape.
        rate: Equivalent drop rate, in ``[0, 1)`` (the variance is infinite at 1).
        training: If ``False``, ``x`` is returned unchanged (also at ``rate == 0``).
        generator: Optional ``torch.Generator`` for the noise.

    Returns:
        ``x * eps``, the shape and dtype of ``x``.

    Raises:
        ValueError: ``rate`` is outside ``[0, 1)``.

    References:
        Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov (2014),
        "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
        JMLR 15, section 10 ("Multiplicative Gaussian noise").
    """
    rate = check_rate(rate, allow_one=False)
    if not training or rate == 0.0:
        return x
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x * (1.0 + math.sqrt(rate / (1.0 - rate)) * eps)


class GaussianDropout(nn.Module):
    """Gaussian multiplicative noise, the PyTorch twin of ``keras.layers.GaussianDropout``.

    Args:
        rate: Equivalent drop rate in ``[0, 1)``; noise variance ``rate / (1 - rate)``.
        generator: Optional ``torch.Generator`` for the noise.

    Raises:
        ValueError: ``rate`` is outside ``[0, 1)`` (``rate == 1`` cannot work).

    References:
        Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov (2014),
        "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
        JMLR 15, section 10 ("Multiplicative Gaussian noise").
    """

    def __init__(self, rate: float, generator: torch.Generator | None = None):
        super().__init__()
        self.rate = check_rate(rate, allow_one=False)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        """``x * eps`` in training mode, ``x`` in eval mode; the shape and dtype of ``x``."""
        return gaussian_dropout(x, self.rate, training=self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


# --------------------------------------------------------------------------- DropConnect
def dropconnect_linear(x: Tensor, weight: Tensor, bias: Tensor | None, rate: float, *,
                       training: bool = True, sampling: str = "batch",
                       generator: torch.Generator | None = None,
                       mask: Tensor | None = None) -> Tensor:
    """Linear map with DropConnect on ``weight`` (``(out, in)``, as ``nn.Linear``).

    Training: ``x (M * W)^T / keep + b`` with ``M`` of shape ``(out, in)``
    (``sampling="batch"``) or ``(N, out, in)`` (``"example"``); inference:
    ``x W^T + b``. ``mask`` (boolean) replaces the random draw. At
    ``rate == 1`` every weight is dropped: the output is ``b`` (0 without
    bias). See :mod:`dlcourse.scratch.dropconnect`.

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
        Networks using DropConnect", ICML, sections 2-3.
    """
    rate = check_rate(rate)
    sampling = check_choice(sampling, "sampling", ("batch", "example"))
    if not training or (rate == 0.0 and mask is None):
        return F.linear(x, weight, bias)
    shape = tuple(weight.shape) if sampling == "batch" else (x.shape[0], *weight.shape)
    if mask is None:
        mask = _keep_mask(shape, rate, x, generator)
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {shape}; received mask of shape {tuple(mask.shape)}")
    keep = 1.0 - rate
    w = weight * mask.to(weight.dtype) * (1.0 / keep if keep > 0 else 0.0)
    out = F.linear(x, w) if sampling == "batch" else torch.einsum("ni,noi->no", x, w)
    return out if bias is None else out + bias


def dropconnect_gaussian_inference(x: Tensor, weight: Tensor, bias: Tensor | None, rate: float, *,
                                   activation: Callable[[Tensor], Tensor], n_samples: int = 256,
                                   generator: torch.Generator | None = None) -> Tensor:
    """The paper's inference rule: average ``activation(u)`` over a moment-matched Gaussian.

    ``u ~ N(x W^T + b, (rate / keep) (x*x)(W*W)^T)``, the mean and variance of
    the training pre-activation over masks; returns the mean of
    ``activation(u)`` over ``n_samples`` draws, ``(N, out)``. As
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

    References:
        Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of Neural
        Networks using DropConnect", ICML, section 3.1 and Algorithm 2.
    """
    rate = check_rate(rate, allow_one=False)
    n_samples = check_positive_int(n_samples, "n_samples")
    keep = 1.0 - rate
    mean = F.linear(x, weight, bias)
    std = torch.sqrt((rate / keep) * F.linear(x * x, weight * weight))
    eps = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype,
                      device=mean.device)
    return activation(mean + std * eps).mean(dim=0)


INFERENCE = ("mean", "gaussian")


class DropConnectLinear(nn.Linear):
    """``nn.Linear`` whose weights are dropped in training (Wan et al. 2013).

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

    References:
        Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of Neural
        Networks using DropConnect", ICML, sections 2-3.
    """

    def __init__(self, in_features: int, out_features: int, rate: float, bias: bool = True, *,
                 sampling: str = "batch", activation: Callable[[Tensor], Tensor] | None = None,
                 inference: str = "mean", n_samples: int = 256,
                 generator: torch.Generator | None = None):
        super().__init__(in_features, out_features, bias=bias)
        self.rate = check_rate(rate)
        self.sampling = check_choice(sampling, "sampling", ("batch", "example"))
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


# --------------------------------------------------------------------------- DropBlock
def drop_block2d(x: Tensor, rate: float, block_size: int, *, training: bool = True,
                 generator: torch.Generator | None = None, seeds: Tensor | None = None) -> Tensor:
    """DropBlock on ``(N, C, H, W)`` (see :mod:`dlcourse.scratch.dropblock`).

    Seeds ``Bernoulli(gamma)`` of shape ``(N, C, H - bs + 1, W - bs + 1)`` (or
    the given boolean ``seeds``) each drop the ``bs x bs`` block they start;
    survivors are scaled by ``numel / count_kept`` over the whole tensor.
    ``gamma`` is the paper's, with the tolerance on the fraction dropped
    stated in :mod:`dlcourse.scratch.dropblock`; ``rate == 1`` drops everything
    (output 0, never a division by zero).

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
    kept = keep.sum()
    scale = torch.where(kept > 0, keep.numel() / kept.clamp(min=1.0), torch.zeros_like(kept))
    return x * keep * scale


class DropBlock2d(nn.Module):
    """DropBlock module with the paper's linear schedule.

    Args:
        rate: Final target drop rate, in ``[0, 1]``.
        block_size: Side of the square blocks.
        schedule_steps: If given, the rate grows linearly from 0 to ``rate``
            over this many training forward passes.
        generator: Optional ``torch.Generator`` for the seeds.

    References:
        Ghiasi, Lin & Le (2018), "DropBlock: A regularization method for
        convolutional networks", NeurIPS, arXiv:1810.12890 (Algorithm 1, eq. 1).
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


# --------------------------------------------------------------------------- variational RNN
def _check_shape(t: Tensor, name: str, expected: tuple[int, ...], symbols: str) -> None:
    """Raise a ValueError naming ``name`` unless ``t`` has shape ``expected``."""
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {symbols} = {tuple(expected)}; "
                         f"received {name} of shape {tuple(t.shape)}")


def variational_rnn(x: Tensor, h0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
                    bias: Tensor | None, *, rate: float = 0.0, recurrent_rate: float = 0.0,
                    training: bool = True, generator: torch.Generator | None = None,
                    masks: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Tanh RNN over ``x`` ``(N, T, D)`` with time-shared input and state masks.

    ``h_t = tanh((x_t * m_x / q_x) W_ih^T + (h_{t-1} * m_h / q_h) W_hh^T + b)``,
    ``weight_ih`` ``(H, D)`` and ``weight_hh`` ``(H, H)`` as in ``nn.RNN``;
    ``m_x`` ``(N, D)`` and ``m_h`` ``(N, H)`` drawn once (or given as ``masks``).
    Returns all hidden states ``(N, T, H)``. See :mod:`dlcourse.scratch.recurrent`.

    Args:
        x: Input sequences ``(N, T, D)``.
        h0: Initial state ``(N, H)``, or ``None`` for zeros.
        weight_ih: ``(H, D)``.
        weight_hh: ``(H, H)``.
        bias: ``(H,)`` (``b_ih + b_hh`` of ``nn.RNN``) or ``None``.
        rate: Drop rate of the input mask ``m_x``, in ``[0, 1]``.
        recurrent_rate: Drop rate of the state mask ``m_h``, in ``[0, 1]``.
        training: If ``False`` (or both rates 0 and no ``masks``), no mask:
            the plain tanh RNN.
        generator: Optional ``torch.Generator`` for the masks.
        masks: Optional keep masks ``(m_x, m_h)`` of shapes ``(N, D)`` and ``(N, H)``.

    Returns:
        Hidden states ``(N, T, H)``. At ``rate == recurrent_rate == 1``,
        ``h_t = tanh(b)`` at every step.

    Raises:
        ValueError: bad rates, or ``x``, ``h0``, the weights or ``masks`` of
            the wrong shape (the message names the argument, the expected and
            the received shape).

    References:
        Gal & Ghahramani (2016), "A Theoretically Grounded Application of
        Dropout in Recurrent Neural Networks", NeurIPS, arXiv:1512.05287.
    """
    rate = check_rate(rate)
    recurrent_rate = check_rate(recurrent_rate, "recurrent_rate")
    if x.dim() != 3:
        raise ValueError(f"x must have shape (N, T, D); received x of shape {tuple(x.shape)}")
    n, steps, d = x.shape
    hdim = weight_hh.shape[0]
    _check_shape(weight_hh, "weight_hh", (hdim, hdim), "(H, H)")
    _check_shape(weight_ih, "weight_ih", (hdim, d), "(H, D)")
    if bias is not None:
        _check_shape(bias, "bias", (hdim,), "(H,)")
    if h0 is not None:
        _check_shape(h0, "h0", (n, hdim), "(N, H)")
    h = x.new_zeros(n, hdim) if h0 is None else h0
    masked = training and (masks is not None or rate > 0.0 or recurrent_rate > 0.0)
    if masked:
        if masks is None:
            masks = (_keep_mask((n, d), rate, x, generator), _keep_mask((n, hdim), recurrent_rate, x, generator))
        if not isinstance(masks, (tuple, list)) or len(masks) != 2:
            raise ValueError(f"masks must be a pair (m_x, m_h); received {type(masks).__name__}"
                             + (f" of length {len(masks)}" if isinstance(masks, (tuple, list)) else ""))
        _check_shape(masks[0], "masks[0]", (n, d), "(N, D)")
        _check_shape(masks[1], "masks[1]", (n, hdim), "(N, H)")
        fx = masks[0].to(x.dtype) * (1.0 / (1.0 - rate) if rate < 1 else 0.0)
        fh = masks[1].to(x.dtype) * (1.0 / (1.0 - recurrent_rate) if recurrent_rate < 1 else 0.0)
    xw = F.linear(x * fx.unsqueeze(1) if masked else x, weight_ih, bias)  # all steps at once
    outputs = []
    for t in range(steps):
        h = torch.tanh(xw[:, t] + F.linear(h * fh if masked else h, weight_hh))
        outputs.append(h)
    return torch.stack(outputs, dim=1)


class VariationalRNN(nn.Module):
    """Single-layer tanh RNN (batch first) with variational dropout.

    Parameters are named as ``nn.RNN``'s (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``), so an ``nn.RNN(batch_first=True)`` state
    dict loads into it; with both rates 0 the two compute the same function.

    Args:
        input_size, hidden_size: ``D`` and ``H``.
        rate: Drop rate of the input mask (Keras ``dropout``).
        recurrent_rate: Drop rate of the recurrent-state mask (Keras ``recurrent_dropout``).
        generator: Optional ``torch.Generator`` for the masks.

    ``forward(x, h0=None)`` maps ``(N, T, D)`` to all hidden states ``(N, T, H)``.

    References:
        Gal & Ghahramani (2016), "A Theoretically Grounded Application of
        Dropout in Recurrent Neural Networks", NeurIPS, arXiv:1512.05287.
    """

    def __init__(self, input_size: int, hidden_size: int, *, rate: float = 0.0,
                 recurrent_rate: float = 0.0, generator: torch.Generator | None = None):
        super().__init__()
        d = check_positive_int(input_size, "input_size")
        h = check_positive_int(hidden_size, "hidden_size")
        self.rate = check_rate(rate)
        self.recurrent_rate = check_rate(recurrent_rate, "recurrent_rate")
        self.generator = generator
        bound = 1.0 / math.sqrt(h)
        self.weight_ih_l0 = nn.Parameter(torch.empty(h, d).uniform_(-bound, bound))
        self.weight_hh_l0 = nn.Parameter(torch.empty(h, h).uniform_(-bound, bound))
        self.bias_ih_l0 = nn.Parameter(torch.empty(h).uniform_(-bound, bound))
        self.bias_hh_l0 = nn.Parameter(torch.empty(h).uniform_(-bound, bound))

    def forward(self, x: Tensor, h0: Tensor | None = None) -> Tensor:
        """Hidden states ``(N, T, H)`` of ``x`` ``(N, T, D)`` from ``h0`` ``(N, H)`` (default zeros)."""
        return variational_rnn(x, h0, self.weight_ih_l0, self.weight_hh_l0,
                               self.bias_ih_l0 + self.bias_hh_l0, rate=self.rate,
                               recurrent_rate=self.recurrent_rate, training=self.training,
                               generator=self.generator)

    def extra_repr(self) -> str:
        h, d = self.weight_ih_l0.shape
        return f"{d}, {h}, rate={self.rate}, recurrent_rate={self.recurrent_rate}"


# --------------------------------------------------------------------------- DropPath
def stochastic_depth(x: Tensor, p: float, mode: str = "row", training: bool = True, *,
                     generator: torch.Generator | None = None) -> Tensor:
    """Torchvision's ``stochastic_depth`` definition (torchvision itself not required).

    ``mode="row"``: one Bernoulli(1 - p) draw per example (mask ``(N, 1, ..., 1)``),
    ``"batch"``: one draw for the whole batch; survivors divided by ``1 - p``
    (not when ``p == 1``: then the output is 0); identity if not training or ``p == 0``.

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
    mode = check_choice(mode, "mode", ("row", "batch"))
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.dim() - 1) if mode == "row" else (1,) * x.dim()
    noise = _keep_mask(shape, p, x, generator).to(x.dtype)
    if survival > 0.0:
        noise = noise / survival
    return x * noise


class DropPath(nn.Module):
    """Drop a residual branch per example: ``x + DropPath(p)(f(x))``.

    Same arguments and behaviour as ``torchvision.ops.StochasticDepth(p, mode)``,
    plus ``generator``; see :func:`stochastic_depth`. Not DropConnect, which
    masks weights.

    Args:
        p: Probability of dropping the branch, in ``[0, 1]``.
        mode: ``"row"`` (one draw per example) or ``"batch"`` (one for the batch).
        generator: Optional ``torch.Generator`` for the draws.

    References:
        Huang, Sun, Liu, Sedra & Weinberger (2016), "Deep Networks with
        Stochastic Depth", ECCV, arXiv:1603.09382.
    """

    def __init__(self, p: float, mode: str = "row", *, generator: torch.Generator | None = None):
        super().__init__()
        self.p = check_rate(p, "p")
        self.mode = check_choice(mode, "mode", ("row", "batch"))
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        """:func:`stochastic_depth` of ``x`` ``(N, ...)`` in training mode, ``x`` in eval mode."""
        return stochastic_depth(x, self.p, self.mode, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


StochasticDepth = DropPath
