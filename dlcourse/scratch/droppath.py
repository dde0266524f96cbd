"""DropPath (stochastic depth): drop a whole residual branch per example.

In a residual block ``y = x + f(x)``, DropPath replaces ``f(x)`` by
``f(x) * m / keep`` where one Bernoulli(keep) draw ``m`` is made per example
(``mode="row"``) or one for the whole batch (``mode="batch"``). It is dropout
with ``noise_shape = (N, 1, ..., 1)`` or ``(1, ..., 1)``: the shared mask
mechanism of :func:`dlcourse.scratch.dropout.dropout_forward`.

The definition is the one of torchvision's ``stochastic_depth(input, p, mode,
training)``: ``p`` is the drop probability of the branch, survivors are
divided by ``1 - p`` (nothing is divided when ``p == 1``: the output is 0),
and ``training=False`` or ``p == 0`` returns the input. (Huang et al. used a
rate that grows linearly with depth; the layer takes one rate, a model sets
one per block.)

Not to be confused with DropConnect, which masks weights.

References:
    Huang et al. (2016), "Deep Networks with Stochastic Depth", ECCV,
    arXiv:1603.09382. Larsson et al. (2017), "FractalNet", ICLR (drop-path).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcourse._checks import as_float_array, check_choice
from dlcourse.scratch.dropout import Dropout, dropout_backward, dropout_forward

DROP_PATH_MODES = ("row", "batch")


def drop_path_noise_shape(shape: tuple[int, ...], mode: str = "row") -> tuple[int, ...]:
    """Return the DropPath mask shape for an input of ``shape``.

    Args:
        shape: Input shape ``(N, ...)``, at least the batch axis.
        mode: ``"row"`` (one draw per example) or ``"batch"`` (one draw in all).

    Returns:
        ``(N, 1, ..., 1)`` for ``"row"``, ``(1, ..., 1)`` for ``"batch"``, with
        as many axes as ``shape``.

    Raises:
        ValueError: ``shape`` has no axis, or ``mode`` is unknown.
    """
    mode = check_choice(mode, "mode", DROP_PATH_MODES)
    if len(shape) < 1:
        raise ValueError(f"x must have a batch axis; received x of shape {tuple(shape)}")
    if mode == "row":
        return (shape[0],) + (1,) * (len(shape) - 1)
    return (1,) * len(shape)


def drop_path_forward(
    x: np.ndarray,
    rate: float,
    *,
    mode: str = "row",
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Drop the residual branch output ``x`` per example (``"row"``) or per batch.

    Args:
        x: Branch output ``(N, ...)``; floating dtype is preserved.
        rate: Probability of dropping the branch, in ``[0, 1]``.
        mode: ``"row"`` (one draw per example) or ``"batch"`` (one draw in all).
        training: Drop (``True``) or return ``x`` (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        mask: Optional boolean keep mask of shape :func:`drop_path_noise_shape`.

    Returns:
        ``(out, cache)``: ``out = x * m / keep`` with ``m`` of
        :func:`drop_path_noise_shape`; ``cache`` as :func:`dropout_forward`.
    """
    x = as_float_array(x)
    noise_shape = drop_path_noise_shape(x.shape, mode)
    return dropout_forward(x, rate, training=training, rng=rng, noise_shape=noise_shape, mask=mask)


def drop_path_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Backward pass of :func:`drop_path_forward` (the dropout backward pass).

    Args:
        dout: Upstream gradient ``dL/dout``, ``(N, ...)`` like the forward input.
        cache: From :func:`drop_path_forward`.

    Returns:
        ``dx = dout * m / keep``, the shape of ``dout``: zero for every example
        whose branch was dropped (all zeros when ``rate == 1``).
    """
    return dropout_backward(dout, cache)


class DropPath(Dropout):
    """DropPath layer, applied to a residual branch's output (see :func:`drop_path_forward`).

    Args:
        rate: Probability of dropping the branch, in ``[0, 1]``.
        mode: ``"row"`` (default) or ``"batch"``.
        rng: Generator or seed for the masks.
    """

    def __init__(self, rate: float, *, mode: str = "row",
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__(rate, rng=rng)
        self.path_mode = check_choice(mode, "mode", DROP_PATH_MODES)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Drop the branch for some examples (or the whole batch).

        Args:
            x: Branch output ``(N, ...)``.

        Returns:
            ``x * m / keep`` with ``m`` of :func:`drop_path_noise_shape` in
            training, ``x`` itself in inference; the shape of ``x``.
        """
        x = as_float_array(x)
        self.noise_shape = drop_path_noise_shape(x.shape, self.path_mode)
        return super().forward(x)

    def __repr__(self) -> str:
        return f"DropPath(rate={self.rate}, mode={self.path_mode!r}, training={self.training})"
