"""Variational (time-shared) dropout in a tanh RNN, the PyTorch form (see :mod:`dlcourse.scratch.recurrent`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlcourse._checks import check_positive_int, check_rate
from dlcourse._scale import inverted_scale
from dlcourse.torch._masks import keep_mask


def _check_shape(t: Tensor, name: str, expected: tuple[int, ...], symbols: str) -> None:
    """Raise a ValueError naming ``name`` unless ``t`` has shape ``expected``."""
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {symbols} = {tuple(expected)}; "
                         f"received {name} of shape {tuple(t.shape)}")


def _scaled_masks(masks: tuple[Tensor, Tensor] | None, shapes: tuple[tuple[int, int], ...],
                  rates: tuple[float, float], like: Tensor,
                  generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """The input and state masks ``(m_x / q_x, m_h / q_h)``, drawn unless ``masks`` are given."""
    if masks is None:
        masks = tuple(keep_mask(shape, rate, like, generator) for shape, rate in zip(shapes, rates, strict=True))
    if not isinstance(masks, (tuple, list)) or len(masks) != 2:
        raise ValueError(f"masks must be a pair (m_x, m_h); received {type(masks).__name__}"
                         + (f" of length {len(masks)}" if isinstance(masks, (tuple, list)) else ""))
    _check_shape(masks[0], "masks[0]", shapes[0], "(N, D)")
    _check_shape(masks[1], "masks[1]", shapes[1], "(N, H)")
    return tuple(m.to(like.dtype) * inverted_scale(rate) for m, rate in zip(masks, rates, strict=True))


def variational_rnn(x: Tensor, h0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
                    bias: Tensor | None, *, rate: float = 0.0, recurrent_rate: float = 0.0,
                    training: bool = True, generator: torch.Generator | None = None,
                    masks: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Tanh RNN over ``x`` ``(N, T, D)`` with time-shared input and state masks.

    ``h_t = tanh((x_t * m_x / q_x) W_ih^T + (h_{t-1} * m_h / q_h) W_hh^T + b)``,
    ``weight_ih`` ``(H, D)`` and ``weight_hh`` ``(H, H)`` as in ``nn.RNN``;
    ``m_x`` ``(N, D)`` and ``m_h`` ``(N, H)`` drawn once (or given as ``masks``).
    Returns all hidden states ``(N, T, H)``.

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
        fx, fh = _scaled_masks(masks, ((n, d), (n, hdim)), (rate, recurrent_rate), x, generator)
    xw = F.linear(x * fx.unsqueeze(1) if masked else x, weight_ih, bias)  # all steps at once
    outputs = []
    for t in range(steps):
        h = torch.tanh(xw[:, t] + F.linear(h * fh if masked else h, weight_hh))
        outputs.append(h)
    return torch.stack(outputs, dim=1)


class VariationalRNN(nn.Module):
    """Single-layer tanh RNN (batch first) with variational dropout: :func:`variational_rnn` as a module.

    Parameters are named as ``nn.RNN``'s (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``), so an ``nn.RNN(batch_first=True)`` state
    dict loads into it; with both rates 0 the two compute the same function.

    Args:
        input_size, hidden_size: ``D`` and ``H``.
        rate: Drop rate of the input mask (Keras ``dropout``).
        recurrent_rate: Drop rate of the recurrent-state mask (Keras ``recurrent_dropout``).
        generator: Optional ``torch.Generator`` for the masks.

    ``forward(x, h0=None)`` maps ``(N, T, D)`` to all hidden states ``(N, T, H)``.
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
