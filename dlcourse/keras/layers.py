"""Keras 3 layers for DropConnect, DropBlock and DropPath (see :mod:`dlcourse.keras`)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from keras import ops  # noqa: E402

from dlcourse._checks import check_choice, check_positive_int, check_rate  # noqa: E402
from dlcourse._scale import inverted_scale  # noqa: E402
from dlcourse.scratch.dropblock import dropblock_gamma  # noqa: E402


@keras.saving.register_keras_serializable(package="dlcourse")
class DropConnectDense(keras.layers.Layer):
    """A Dense layer whose kernel is dropped in training (Wan et al. 2013).

    Training: ``activation(x (M * W) / keep + b)`` with one Bernoulli(keep)
    mask ``M`` of the kernel's shape per call (per batch, as the NumPy
    default ``sampling="batch"``; per-example masks are in the NumPy and
    torch forms only). Inference: ``activation(x W + b)`` (``"mean"``), or the
    paper's moment matching (``"gaussian"``): the mean of ``activation(u)``
    over ``n_samples`` draws of ``u ~ N(x W + b, (rate/keep) (x*x)(W*W))``.
    See :mod:`dlcourse.scratch.dropconnect` for the formulas.

    Args:
        units: Output size.
        rate: Probability of dropping each weight, in ``[0, 1]``.
        activation: Any Keras activation (``None`` = linear).
        use_bias: Add a bias (never dropped).
        inference: ``"mean"`` (default) or ``"gaussian"``.
        n_samples: Gaussian draws per inference call (``"gaussian"`` only).
        seed: Integer seed of the layer's ``SeedGenerator``.

    ``rate == 0`` computes ``activation(x W + b)`` in training too; at
    ``rate == 1`` every weight is dropped (output ``activation(b)``); the
    Gaussian inference needs ``rate < 1`` (``ValueError`` otherwise).

    References:
        Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of Neural
        Networks using DropConnect", ICML, sections 2-3.
    """

    def __init__(self, units: int, rate: float, activation=None, use_bias: bool = True,
                 inference: str = "mean", n_samples: int = 256, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units")
        self.rate = check_rate(rate)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.inference = check_choice(inference, "inference", ("mean", "gaussian"))
        if self.inference == "gaussian":
            check_rate(rate, allow_one=False)
        self.n_samples = check_positive_int(n_samples, "n_samples")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = (self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
                     if self.use_bias else None)

    def call(self, inputs, training=False):
        """Map ``(..., in)`` to ``(..., units)``: masked kernel in training, else the inference rule."""
        kernel = self.kernel
        if not training and self.inference == "gaussian" and self.rate > 0:
            return self._gaussian_inference(inputs)
        if training and self.rate > 0:
            u = keras.random.uniform(ops.shape(kernel), seed=self.seed_generator)
            mask = ops.cast(ops.greater_equal(u, self.rate), kernel.dtype)
            kernel = kernel * mask * inverted_scale(self.rate)
        out = ops.matmul(inputs, kernel)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def _gaussian_inference(self, inputs):
        keep = 1.0 - self.rate
        mean = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            mean = mean + self.bias
        std = ops.sqrt((self.rate / keep) * ops.matmul(inputs * inputs, self.kernel * self.kernel))
        eps = keras.random.normal((self.n_samples, *ops.shape(mean)), dtype=mean.dtype,
                                  seed=self.seed_generator)
        return ops.mean(self.activation(mean + std * eps), axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rate": self.rate,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias, "inference": self.inference,
                "n_samples": self.n_samples, "seed": self.seed}


@keras.saving.register_keras_serializable(package="dlcourse")
class DropBlock2D(keras.layers.Layer):
    """DropBlock on 4-D feature maps (Ghiasi et al. 2018).

    Seeds ``Bernoulli(gamma)`` where a whole ``block_size`` block fits, each
    seed drops its block, survivors scaled by ``count / count_kept`` over the
    whole batch (counted and divided in float32 or wider, also under
    ``mixed_float16``, where a float16 count would overflow past 65,504
    elements). ``gamma`` and the tolerance on the fraction dropped are in
    :mod:`dlcourse.scratch.dropblock`.

    Args:
        rate: Final target drop rate, in ``[0, 1]``.
        block_size: Side of the square blocks.
        data_format: ``"channels_last"`` (Keras default) or ``"channels_first"``.
        schedule_steps: If given, the paper's linear schedule: the rate used
            grows from 0 to ``rate`` over this many training calls (counted in
            the non-trainable variable ``step``, so it works inside ``fit``).
        seed: Integer seed of the layer's ``SeedGenerator``.

    ``rate == 0`` (or ``training=False``) returns the input; ``rate == 1``
    drops everything (output 0, never a division by zero). Works with a
    dynamic batch axis (``model.fit``/``predict``).

    References:
        Ghiasi, Lin & Le (2018), "DropBlock: A regularization method for
        convolutional networks", NeurIPS, arXiv:1810.12890 (Algorithm 1, eq. 1).
    """

    def __init__(self, rate: float, block_size: int, data_format: str | None = None,
                 schedule_steps: int | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate)
        self.block_size = check_positive_int(block_size, "block_size")
        self.data_format = check_choice(data_format or keras.config.image_data_format(),
                                        "data_format", ("channels_first", "channels_last"))
        self.schedule_steps = (None if schedule_steps is None
                               else check_positive_int(schedule_steps, "schedule_steps"))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.step = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                    name="step", dtype="float32")

    def current_rate(self):
        """The rate of the next training call (a scalar tensor)."""
        if self.schedule_steps is None:
            return ops.convert_to_tensor(self.rate, "float32")
        return self.rate * ops.minimum(self.step / self.schedule_steps, 1.0)

    def call(self, inputs, training=False):
        """DropBlock on 4-D ``inputs`` in training (advancing the schedule), else ``inputs``."""
        if not training or self.rate == 0:
            return inputs
        shape = ops.shape(inputs)
        if len(shape) != 4:
            raise ValueError(f"inputs must be 4-D; received inputs of shape {shape}")
        bs = self.block_size
        if self.data_format == "channels_last":
            n, h, w, c = shape
            seed_shape = (n, h - bs + 1, w - bs + 1, c)
            pad = [[0, 0], [bs - 1, bs - 1], [bs - 1, bs - 1], [0, 0]]
        else:
            n, c, h, w = shape
            seed_shape = (n, c, h - bs + 1, w - bs + 1)
            pad = [[0, 0], [0, 0], [bs - 1, bs - 1], [bs - 1, bs - 1]]
        dropblock_gamma(self.rate, bs, h, w)  # checks that a block fits
        rate = self.current_rate()
        if self.schedule_steps is not None:
            self.step.assign_add(1.0)
        # the paper's gamma (see dropblock_gamma), with a rate that may be a tensor
        gamma = ops.minimum(rate / bs**2 * (h * w) / ((h - bs + 1) * (w - bs + 1)), 1.0)
        gamma = ops.where(rate >= 1.0, 1.0, gamma)  # rate 1 drops everything
        u = keras.random.uniform(seed_shape, seed=self.seed_generator)
        seeds = ops.cast(ops.less(u, ops.cast(gamma, u.dtype)), inputs.dtype)
        # padding bs-1 on each side then a bs x bs max-pool = the union of blocks
        drop = ops.max_pool(ops.pad(seeds, pad), bs, strides=1, padding="valid",
                            data_format=self.data_format)
        keep = 1.0 - drop
        # count and scale in float32 or wider: a float16 count (mixed_float16) overflows past 65,504
        wide = keras.backend.result_type(keep.dtype, "float32")
        kept = ops.sum(ops.cast(keep, wide))
        total = ops.cast(ops.size(keep), wide)
        scale = ops.where(kept > 0, total / ops.maximum(kept, 1.0), 0.0)
        return inputs * keep * ops.cast(scale, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "block_size": self.block_size,
                "data_format": self.data_format, "schedule_steps": self.schedule_steps,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="dlcourse")
class DropPath(keras.layers.Layer):
    """Drop a residual branch per example (``mode="row"``) or per batch (``"batch"``).

    Same definition as torchvision's ``stochastic_depth``: survivors divided by
    ``1 - rate`` (output 0 when ``rate == 1``); identity when not training.
    Equivalent to ``keras.layers.Dropout(rate, noise_shape=(None, 1, ..., 1))``
    in row mode; this layer names the intent and adds the batch mode.

    Args:
        rate: Probability of dropping the branch, in ``[0, 1]``.
        mode: ``"row"`` or ``"batch"``.
        seed: Integer seed of the layer's ``SeedGenerator``.

    ``rate == 0`` (or ``training=False``) returns the input. Not DropConnect,
    which masks weights.

    References:
        Huang, Sun, Liu, Sedra & Weinberger (2016), "Deep Networks with
        Stochastic Depth", ECCV, arXiv:1603.09382.
    """

    def __init__(self, rate: float, mode: str = "row", seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate(rate)
        self.mode = check_choice(mode, "mode", ("row", "batch"))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        """``inputs * m / (1 - rate)`` with ``m`` per example or per batch in training, else ``inputs``."""
        if not training or self.rate == 0:
            return inputs
        ndim = len(ops.shape(inputs))
        shape = ((ops.shape(inputs)[0],) + (1,) * (ndim - 1)) if self.mode == "row" else (1,) * ndim
        u = keras.random.uniform(shape, seed=self.seed_generator)
        noise = ops.cast(ops.greater_equal(u, self.rate), inputs.dtype)
        if self.rate < 1:
            noise = noise / (1.0 - self.rate)
        return inputs * noise

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "mode": self.mode, "seed": self.seed}
