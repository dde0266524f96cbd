"""Variational (time-shared) dropout in a recurrent network.

Naive dropout in an RNN draws a new mask at every time step, which injects
fresh noise into the recurrent state at each step and wrecks long-range
memory. Gal & Ghahramani's variational dropout draws **one** mask per
sequence and reuses it at every time step, for the inputs and for the
recurrent state. For a tanh RNN cell:

.. math::

    h_t = \\tanh\\bigl((x_t \\odot m_x / q_x) W_x
                      + (h_{t-1} \\odot m_h / q_h) W_h + b\\bigr),

with ``m_x ~ Bernoulli(q_x)`` of shape ``(N, D)``, ``m_h ~ Bernoulli(q_h)``
of shape ``(N, H)``, ``q_x = 1 - rate``, ``q_h = 1 - recurrent_rate``, the
same for every ``t``. On a whole ``(N, T, D)`` sequence this is dropout with
``noise_shape = (N, 1, D)``: see :func:`time_shared_dropout_forward` (use it
between stacked recurrent layers).

**Keras:** ``keras.layers.SimpleRNN/GRU/LSTM(dropout=..., recurrent_dropout=...)``
are this scheme: ``dropout`` is ``rate`` (the mask on ``x_t``) and
``recurrent_dropout`` is ``recurrent_rate`` (the mask on ``h_{t-1}``); each
is drawn once per batch of sequences in a call and reused at every step.
**PyTorch:** ``nn.RNN/LSTM(dropout=...)`` only drops *between* stacked
layers, with a new mask per step; there is no recurrent-state dropout, hence
:class:`dlcourse.torch.VariationalRNN`.

References:
    Gal & Ghahramani (2016), "A Theoretically Grounded Application of Dropout
    in Recurrent Neural Networks", NeurIPS, arXiv:1512.05287.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from dlcourse._checks import as_float_array, as_rng, check_positive_int, check_rate
from dlcourse._scale import inverted_scale
from dlcourse.scratch.dropout import bernoulli_keep_mask, dropout_forward
from dlcourse.scratch.layers import StochasticLayer


def time_shared_dropout_forward(
    x: np.ndarray, rate: float, *, training: bool = True, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Dropout on a sequence ``(N, T, D)`` with one mask per sequence, shared over ``T``.

    Exactly :func:`dlcourse.scratch.dropout.dropout_forward` with
    ``noise_shape=(N, 1, D)``; its backward pass is ``dropout_backward``.

    Args:
        x: Sequence ``(N, T, D)``.
        rate: Probability of dropping each feature of each sequence, in ``[0, 1]``.
        training: Drop (``True``) or return ``x`` (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.

    Returns:
        ``(out, cache)`` as :func:`dlcourse.scratch.dropout.dropout_forward`:
        ``out = x * m / keep`` of shape ``(N, T, D)`` with ``m`` of shape
        ``(N, 1, D)`` (the same for every time step).

    Raises:
        ValueError: ``x`` does not have 3 axes.
    """
    x = as_float_array(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, D); received x of shape {x.shape}")
    return dropout_forward(x, rate, training=training, rng=rng, noise_shape=(x.shape[0], 1, x.shape[2]))


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    Wx: np.ndarray,
    Wh: np.ndarray,
    b: np.ndarray,
    *,
    rate: float = 0.0,
    recurrent_rate: float = 0.0,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    masks: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run a tanh RNN over a sequence with variational dropout.

    Args:
        x: Inputs ``(N, T, D)``.
        h0: Initial state ``(N, H)`` or ``None`` (zeros).
        Wx: Input weights ``(D, H)``.
        Wh: Recurrent weights ``(H, H)``.
        b: Bias ``(H,)``.
        rate: Drop rate of the input mask ``m_x`` in ``[0, 1]``.
        recurrent_rate: Drop rate of the recurrent-state mask ``m_h`` in ``[0, 1]``.
        training: Use the masks (``True``) or not (``False``: the deterministic RNN).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        masks: Optional boolean keep masks ``(m_x (N, D), m_h (N, H))``.

    Returns:
        ``(h, cache)`` with all hidden states ``h`` of shape ``(N, T, H)``.
    """
    rate = check_rate(rate)
    recurrent_rate = check_rate(recurrent_rate, "recurrent_rate")
    x, Wx, Wh, b = (as_float_array(x), as_float_array(Wx, "Wx"),
                    as_float_array(Wh, "Wh"), as_float_array(b, "b"))
    if x.ndim != 3 or Wx.shape[0] != x.shape[2] or Wh.shape != (Wx.shape[1],) * 2 or b.shape != (Wx.shape[1],):
        raise ValueError(
            f"expected x (N, T, D), Wx (D, H), Wh (H, H), b (H,); received x {x.shape}, "
            f"Wx {Wx.shape}, Wh {Wh.shape}, b {b.shape}")
    n, steps, d = x.shape
    hdim = Wx.shape[1]
    dtype = np.result_type(x, Wx)
    h0 = np.zeros((n, hdim), dtype=dtype) if h0 is None else as_float_array(h0, "h0")
    if h0.shape != (n, hdim):
        raise ValueError(f"h0 must have shape {(n, hdim)}; received h0 of shape {h0.shape}")
    if training and masks is None:
        gen = as_rng(rng)
        masks = (bernoulli_keep_mask((n, d), rate, gen), bernoulli_keep_mask((n, hdim), recurrent_rate, gen))
    if training:
        mx, mh = (np.asarray(m, dtype=bool) for m in masks)
        if mx.shape != (n, d) or mh.shape != (n, hdim):
            raise ValueError(f"masks must have shapes {(n, d)} and {(n, hdim)}; received {mx.shape} and {mh.shape}")
        fx = (mx * inverted_scale(rate)).astype(dtype)
        fh = (mh * inverted_scale(recurrent_rate)).astype(dtype)
    else:
        mx = mh = None
        fx = np.ones((1, d), dtype=dtype)
        fh = np.ones((1, hdim), dtype=dtype)
    h = np.empty((n, steps, hdim), dtype=dtype)
    prev = h0
    for t in range(steps):
        prev = np.tanh((x[:, t] * fx) @ Wx + (prev * fh) @ Wh + b)
        h[:, t] = prev
    cache = {"x": x, "h0": h0, "h": h, "Wx": Wx, "Wh": Wh, "fx": fx, "fh": fh, "masks": (mx, mh)}
    return h, cache


def rnn_backward(dh: np.ndarray, cache: dict[str, Any]) -> dict[str, np.ndarray]:
    """Backpropagation through time for :func:`rnn_forward`.

    Args:
        dh: Gradient of the loss with respect to every hidden state, ``(N, T, H)``.
        cache: From :func:`rnn_forward`.

    Returns:
        ``{"x": dx (N, T, D), "h0": dh0 (N, H), "Wx": ..., "Wh": ..., "b": ...}``.
        The same masks multiply the gradients at every step, so a dropped
        input feature or state unit gets zero gradient over the whole sequence.
    """
    dh = as_float_array(dh, "dh")
    x, h0, h, Wx, Wh, fx, fh = (cache[k] for k in ("x", "h0", "h", "Wx", "Wh", "fx", "fh"))
    if dh.shape != h.shape:
        raise ValueError(f"dh must have shape {h.shape}; received dh of shape {dh.shape}")
    dx = np.empty_like(x)
    dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
    db = np.zeros(Wx.shape[1], dtype=Wx.dtype)
    carry = np.zeros_like(h0)
    for t in range(x.shape[1] - 1, -1, -1):
        prev = h[:, t - 1] if t > 0 else h0
        da = (dh[:, t] + carry) * (1.0 - h[:, t] ** 2)
        dWx += (x[:, t] * fx).T @ da
        dWh += (prev * fh).T @ da
        db += da.sum(axis=0)
        dx[:, t] = (da @ Wx.T) * fx
        carry = (da @ Wh.T) * fh
    return {"x": dx, "h0": carry, "Wx": dWx, "Wh": dWh, "b": db}


class VariationalRNN(StochasticLayer):
    """A tanh RNN layer with variational input and recurrent dropout.

    Args:
        input_size: ``D``.
        hidden_size: ``H``.
        rate: Drop rate of the (time-shared) input mask.
        recurrent_rate: Drop rate of the (time-shared) recurrent-state mask.
        rng: Generator or seed (initialisation and masks).
        dtype: Parameter dtype.

    Attributes:
        params: ``{"Wx": (D, H), "Wh": (H, H), "b": (H,)}``; grads: same keys.

    ``forward(x)`` maps ``(N, T, D)`` to all hidden states ``(N, T, H)`` from
    ``h0 = 0``; ``backward(dh)`` returns ``dx``. :meth:`freeze` /
    :meth:`unfreeze` hold both masks fixed (see
    :class:`~dlcourse.scratch.layers.StochasticLayer`).
    """

    def __init__(self, input_size: int, hidden_size: int, *, rate: float = 0.0,
                 recurrent_rate: float = 0.0,
                 rng: np.random.Generator | int | None = None,
                 dtype: npt.DTypeLike = np.float32) -> None:
        super().__init__()
        d = check_positive_int(input_size, "input_size")
        h = check_positive_int(hidden_size, "hidden_size")
        self.rate = check_rate(rate)
        self.recurrent_rate = check_rate(recurrent_rate, "recurrent_rate")
        self.rng = as_rng(rng)
        bound = 1.0 / np.sqrt(h)  # PyTorch's RNN initialisation
        self.params = {
            "Wx": self.rng.uniform(-bound, bound, (d, h)).astype(dtype),
            "Wh": self.rng.uniform(-bound, bound, (h, h)).astype(dtype),
            "b": np.zeros(h, dtype=dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache: dict[str, Any] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """All hidden states ``(N, T, H)`` for inputs ``(N, T, D)``.

        Args:
            x: Inputs ``(N, T, D)``; the initial state is ``h0 = 0``.

        Returns:
            Hidden states ``h`` ``(N, T, H)`` of :func:`rnn_forward`, with one
            input and one recurrent mask per sequence in training.
        """
        p = self.params
        out, self.cache = rnn_forward(x, None, p["Wx"], p["Wh"], p["b"], rate=self.rate,
                                      recurrent_rate=self.recurrent_rate, training=self.training,
                                      rng=self.rng, masks=self._held_draw(self.training))
        self._remember_draw(self.cache["masks"], self.training)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Store the parameter gradients and return ``dx`` ``(N, T, D)``.

        Args:
            dout: ``dL/dh``, gradient with respect to every hidden state ``(N, T, H)``.

        Returns:
            ``dx`` ``(N, T, D)``; ``grads`` (``"Wx"``, ``"Wh"``, ``"b"``) are set
            as a side effect (see :func:`rnn_backward`).

        Raises:
            RuntimeError: Called before :meth:`forward`.
        """
        if self.cache is None:
            raise RuntimeError("VariationalRNN.backward called before forward")
        g = rnn_backward(dout, self.cache)
        self.grads = {k: g[k] for k in self.params}
        return g["x"]

    def __repr__(self) -> str:
        d, h = self.params["Wx"].shape
        return (f"VariationalRNN({d}, {h}, rate={self.rate}, "
                f"recurrent_rate={self.recurrent_rate}, training={self.training})")
