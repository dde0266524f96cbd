"""Spatial dropout: drop whole feature maps (channels), not single activations.

Neighbouring activations of a convolutional feature map are strongly
correlated, so dropping single pixels barely removes information. Spatial
dropout draws one keep/drop decision per ``(example, channel)`` and
broadcasts it over the spatial axes. It is not a new algorithm: it is
:func:`dlcourse.scratch.dropout.dropout_forward` with a ``noise_shape`` whose
spatial axes are 1::

    channels_first (N, C, *S)  ->  noise_shape (N, C, 1, ..., 1)
    channels_last  (N, *S, C)  ->  noise_shape (N, 1, ..., 1, C)

Formula (inverted): ``out[n, c, ...] = x[n, c, ...] * m[n, c] / keep`` with
``m[n, c] ~ Bernoulli(keep)``, ``keep = 1 - rate``.

Framework forms: ``torch.nn.Dropout1d/2d/3d`` (channels first) and
``keras.layers.SpatialDropout1D/2D/3D`` (``SpatialDropout1D`` is channels last
only; 2D/3D take ``data_format``).

References:
    Tompson et al. (2015), "Efficient Object Localization Using Convolutional
    Networks", CVPR, arXiv:1411.4280.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlcourse._checks import as_float_array, check_choice
from dlcourse.scratch.dropout import Dropout, dropout_backward, dropout_forward

DATA_FORMATS = ("channels_first", "channels_last")


def spatial_noise_shape(shape: tuple[int, ...], data_format: str = "channels_first") -> tuple[int, ...]:
    """Return the mask shape that drops whole channels of an input of ``shape``.

    Args:
        shape: Input shape ``(N, C, *S)`` or ``(N, *S, C)``, at least 3 axes.
        data_format: ``"channels_first"`` or ``"channels_last"``.

    Returns:
        ``(N, C, 1, ..., 1)`` or ``(N, 1, ..., 1, C)``.
    """
    data_format = check_choice(data_format, "data_format", DATA_FORMATS)
    if len(shape) < 3:
        raise ValueError(
            "x must have a batch, a channel and at least one spatial axis; "
            f"received x of shape {tuple(shape)}"
        )
    ones = (1,) * (len(shape) - 2)
    if data_format == "channels_first":
        return (shape[0], shape[1], *ones)
    return (shape[0], *ones, shape[-1])


def spatial_dropout_forward(
    x: np.ndarray,
    rate: float,
    *,
    training: bool = True,
    rng: np.random.Generator | int | None = None,
    data_format: str = "channels_first",
    mode: str = "inverted",
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Drop whole channels of ``x`` (see the module docstring for the formula).

    Args:
        x: Input ``(N, C, *S)`` (channels first) or ``(N, *S, C)`` (channels last).
        rate: Probability of dropping each channel of each example, in ``[0, 1]``.
        training: Drop channels (``True``) or return ``x`` (``False``).
        rng: A ``numpy.random.Generator``, an int seed, or ``None``.
        data_format: ``"channels_first"`` (NumPy/PyTorch) or ``"channels_last"`` (Keras).
        mode: ``"inverted"`` or ``"weight_scaling"`` (see :func:`dropout_forward`).
        mask: Optional boolean keep mask of shape :func:`spatial_noise_shape`
            instead of drawing one (to compare with another implementation).

    Returns:
        ``(out, cache)`` as :func:`dropout_forward`; the cached mask has shape
        :func:`spatial_noise_shape`.
    """
    x = as_float_array(x)
    noise_shape = spatial_noise_shape(x.shape, data_format)
    return dropout_forward(x, rate, training=training, rng=rng, noise_shape=noise_shape, mode=mode,
                           mask=mask)


def spatial_dropout_backward(dout: np.ndarray, cache: dict[str, Any]) -> np.ndarray:
    """Backward pass of :func:`spatial_dropout_forward` (the dropout backward pass).

    Args:
        dout: Upstream gradient ``dL/dout``, the shape of the forward input.
        cache: From :func:`spatial_dropout_forward`.

    Returns:
        ``dx = dout * m * scale``, the shape of ``dout``, with the per-channel
        mask ``m`` broadcast over the spatial axes (zero on dropped channels).
    """
    return dropout_backward(dout, cache)


class SpatialDropout(Dropout):
    """Spatial dropout layer for inputs with ``spatial_dims`` spatial axes.

    A :class:`~dlcourse.scratch.dropout.Dropout` whose mask shape is computed
    from each input (one draw per example and channel).

    Args:
        rate: Probability of dropping each channel, in ``[0, 1]``.
        spatial_dims: Number of spatial axes (1, 2 or 3).
        data_format: ``"channels_first"`` (default, like PyTorch) or ``"channels_last"``.
        rng: Generator or seed for the masks.
        mode: ``"inverted"`` (default) or ``"weight_scaling"``.
    """

    spatial_dims = 2

    def __init__(self, rate: float, *, spatial_dims: int | None = None,
                 data_format: str = "channels_first",
                 rng: np.random.Generator | int | None = None,
                 mode: str = "inverted") -> None:
        super().__init__(rate, rng=rng, mode=mode)
        if spatial_dims is not None:
            if spatial_dims not in (1, 2, 3):
                raise ValueError(f"spatial_dims must be 1, 2 or 3; received spatial_dims={spatial_dims!r}")
            self.spatial_dims = spatial_dims
        self.data_format = check_choice(data_format, "data_format", DATA_FORMATS)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Drop whole channels of ``x`` of shape ``(N, C, *S)`` / ``(N, *S, C)``.

        Args:
            x: Input with ``spatial_dims + 2`` axes, laid out as ``data_format``.

        Returns:
            ``x * m * scale`` with ``m`` of :func:`spatial_noise_shape` in
            training (``scale = 1/keep`` inverted, ``1`` weight scaling; see
            :func:`dropout_forward` for inference); the shape of ``x``.

        Raises:
            ValueError: ``x`` does not have ``spatial_dims + 2`` axes.
        """
        x = as_float_array(x)
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"x must have {self.spatial_dims + 2} axes (batch, channel and "
                f"{self.spatial_dims} spatial); received x of shape {x.shape}"
            )
        # the whole variant is this one line: a mask shape, then plain Dropout
        self.noise_shape = spatial_noise_shape(x.shape, self.data_format)
        return super().forward(x)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rate={self.rate}, data_format={self.data_format!r}, "
                f"training={self.training})")


class SpatialDropout1D(SpatialDropout):
    """Spatial dropout for ``(N, C, L)`` / ``(N, L, C)`` inputs (see :class:`SpatialDropout`)."""

    spatial_dims = 1


class SpatialDropout2D(SpatialDropout):
    """Spatial dropout for ``(N, C, H, W)`` / ``(N, H, W, C)`` inputs (see :class:`SpatialDropout`)."""

    spatial_dims = 2


class SpatialDropout3D(SpatialDropout):
    """Spatial dropout for ``(N, C, D, H, W)`` / ``(N, D, H, W, C)`` inputs (see :class:`SpatialDropout`)."""

    spatial_dims = 3
