"""Keras forms of the dropout variants, cross-checked against the NumPy references."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

from properties import Z, assert_binomial, assert_dropblock_of_ones  # noqa: E402

from dlcourse.keras import DropBlock2D, DropConnectDense, DropPath  # noqa: E402
from dlcourse.scratch import (  # noqa: E402
    alpha_dropout_forward,
    drop_path_forward,
    dropconnect_backward,
    dropconnect_forward,
    rnn_forward,
    spatial_dropout_forward,
)
from dlcourse.scratch.alpha import ALPHA_PRIME, alpha_dropout_affine  # noqa: E402
from dlcourse.scratch.dropblock import blocks_from_seeds, dropblock_expected_fraction  # noqa: E402

pytestmark = pytest.mark.keras
RATES = [0.2, 0.7]


def run(layer, x, training=True):
    return keras.ops.convert_to_numpy(layer(x, training=training))


def positive(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape).astype(np.float32)


# ---------------------------------------------------------------- spatial: built-ins
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("cls", "shape", "data_format"), [
    ("SpatialDropout1D", (40, 5, 30), None),
    ("SpatialDropout2D", (30, 4, 3, 20), "channels_last"),
    ("SpatialDropout2D", (30, 20, 4, 3), "channels_first"),
    ("SpatialDropout3D", (20, 3, 2, 2, 15), "channels_last"),
    ("SpatialDropout3D", (20, 15, 3, 2, 2), "channels_first"),
])
def test_keras_spatial_dropout_agrees_with_numpy(cls, shape, data_format, rate):
    kwargs = {} if data_format is None else {"data_format": data_format}
    layer = getattr(keras.layers, cls)(rate, seed=1, **kwargs)
    fmt = data_format or "channels_last"
    x = positive(shape)
    out = run(layer, x)
    kept = out != 0
    chan = np.moveaxis(kept, -1, 1) if fmt == "channels_last" else kept
    flat = chan.reshape(shape[0], chan.shape[1], -1)
    assert np.all(flat == flat[..., :1])  # constant over the spatial axes
    assert_binomial(int((~flat[..., 0]).sum()), flat[..., 0].size, rate)
    mask_shape = ((shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],) if fmt == "channels_last"
                  else shape[:2] + (1,) * (len(shape) - 2))
    mask = kept.reshape(shape).any(axis=tuple(i for i, s in enumerate(mask_shape) if s == 1), keepdims=True)
    ref, _ = spatial_dropout_forward(x, rate, data_format=fmt, mask=mask)
    assert np.allclose(ref, out, rtol=1e-6)


# ---------------------------------------------------------------- Gaussian: built-in
@pytest.mark.parametrize("rate", RATES)
def test_keras_gaussian_dropout_distribution(rate):
    n = 200_000
    out = run(keras.layers.GaussianDropout(rate, seed=2), np.ones(n, dtype=np.float32))
    sigma = math.sqrt(rate / (1 - rate))  # the NumPy reference's noise std
    assert abs(out.mean() - 1) <= Z * sigma / math.sqrt(n)
    assert abs(out.std() - sigma) <= Z * sigma / math.sqrt(2 * n)


# ---------------------------------------------------------------- alpha: built-in
@pytest.mark.parametrize("rate", RATES)
def test_keras_alpha_dropout_agrees_with_numpy(rate):
    n = 200_000
    x = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    out = run(keras.layers.AlphaDropout(rate, seed=3), x)
    a, b = alpha_dropout_affine(rate)
    mask = ~np.isclose(out, a * ALPHA_PRIME + b, rtol=0, atol=1e-6)
    assert_binomial(int((~mask).sum()), n, rate)
    ref, _ = alpha_dropout_forward(x, rate, mask=mask)
    assert np.allclose(ref, out, atol=1e-5)
    assert abs(out.mean()) <= Z / math.sqrt(n)
    assert abs(out.var() - 1) <= Z * math.sqrt(np.mean(out.astype(np.float64) ** 4) / n)


# ---------------------------------------------------------------- variational recurrent: built-in
def test_keras_simple_rnn_dropout_mask_is_time_shared():
    layer = keras.layers.SimpleRNN(4, dropout=0.5, return_sequences=True, seed=4,
                                   recurrent_initializer="zeros")
    x = np.repeat(np.random.default_rng(4).standard_normal((50, 1, 3)), 6, axis=1).astype(np.float32)
    out = run(layer, x)
    assert np.allclose(out, out[:, :1], atol=1e-6)  # same input, no recurrence: one mask


def test_keras_simple_rnn_recurrent_dropout_mask_is_time_shared():
    """Keras 3 draws the recurrent mask once per call (``DropoutRNNCell`` caches it
    before the time loop) and applies it to ``h_{t-1}`` at every step, scaled by
    ``1/keep``: Gal & Ghahramani's variational dropout on the state."""
    rate, n, t, h = 0.5, 64, 6, 5
    x = np.random.default_rng(5).standard_normal((n, t, 3)).astype(np.float32)
    # linear cell, no input, bias 1, identity recurrence: h_1 = 1, h_t = 1 + m * h_{t-1}
    probe = keras.layers.SimpleRNN(h, activation="linear", recurrent_dropout=rate, seed=6,
                                   return_sequences=True, kernel_initializer="zeros",
                                   recurrent_initializer="identity", bias_initializer="ones")
    out = run(probe, x)
    m = out[:, 1] - 1.0  # the mask (values 0 or 1/keep) read at step 2
    assert np.all((m == 0) | (m == 1 / (1 - rate)))
    assert_binomial(int((m == 0).sum()), m.size, rate)
    for step in range(1, t):  # the same mask at every later step (exact: powers of 2)
        assert np.array_equal(out[:, step], 1.0 + m * out[:, step - 1]), step
    # the same seed and shapes draw the same mask: cross-check a tanh RNN with NumPy
    layer = keras.layers.SimpleRNN(h, recurrent_dropout=rate, seed=6, return_sequences=True,
                                   bias_initializer="random_normal")
    got = run(layer, x)
    Wx, Wh, b = (v.numpy().astype(np.float64) for v in layer.weights)
    ref, _ = rnn_forward(x.astype(np.float64), None, Wx, Wh, b, recurrent_rate=rate,
                         masks=(np.ones((n, 3), bool), m != 0))
    assert np.allclose(got, ref, atol=1e-5)


# ---------------------------------------------------------------- DropConnect
@pytest.mark.parametrize("rate", RATES)
def test_keras_dropconnect_dense_matches_numpy(rate):
    layer = DropConnectDense(20, rate, seed=5)
    xr = np.random.default_rng(5).standard_normal((6, 30)).astype(np.float32)
    x = np.concatenate([np.eye(30, dtype=np.float32), xr])
    out = run(layer, x)
    W, b = (v.numpy() for v in (layer.kernel, layer.bias))
    w_eff = out[:30] - b  # identity rows read back the masked, rescaled kernel
    mask = np.abs(w_eff) > 1e-7
    assert np.allclose(w_eff[mask], W[mask] / (1 - rate), rtol=1e-5)
    assert_binomial(int((~mask).sum()), mask.size, rate)
    ref, _ = dropconnect_forward(xr, W, b, rate, mask=mask)
    assert np.allclose(out[30:], ref, atol=1e-5)
    assert np.allclose(run(layer, xr, training=False), xr @ W + b, atol=1e-5)


def test_keras_dropconnect_dense_gradients_match_numpy_backward():
    import tensorflow as tf

    rate = 0.4
    g = np.random.default_rng(8)
    layer = DropConnectDense(6, rate, seed=9)
    layer.build((None, 8))
    layer.bias.assign(g.standard_normal(6).astype(np.float32))
    x = np.concatenate([np.eye(8), g.standard_normal((5, 8))]).astype(np.float32)
    up = g.standard_normal((13, 6)).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = layer(xt, training=True)
        loss = tf.reduce_sum(out * up)
    dW, db, dx = (t.numpy() for t in tape.gradient(loss, [layer.kernel, layer.bias, xt]))
    W, b = (v.numpy().astype(np.float64) for v in (layer.kernel, layer.bias))
    mask = np.abs(out.numpy()[:8] - b) > 1e-7  # the identity rows read the mask back
    assert 0 < mask.sum() < mask.size
    ref, cache = dropconnect_forward(x.astype(np.float64), W, b, rate, mask=mask)
    assert np.allclose(out.numpy(), ref, atol=1e-5)
    ref_dx, ref_dW, ref_db = dropconnect_backward(up.astype(np.float64), cache)
    assert np.allclose(dW, ref_dW, atol=1e-5) and np.all(dW[~mask] == 0)
    assert np.allclose(db, ref_db, atol=1e-5) and np.allclose(dx, ref_dx, atol=1e-5)


def test_keras_dropconnect_gaussian_inference_agrees_with_numpy():
    from dlcourse.scratch.dropconnect import dropconnect_gaussian_inference

    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    rate, n = 0.4, 100_000
    layer = DropConnectDense(3, rate, activation="relu", inference="gaussian", n_samples=n,
                             seed=2)
    layer.build((None, 6))
    layer.bias.assign(rng.standard_normal(3).astype(np.float32))
    W, b = (v.numpy().astype(np.float64) for v in (layer.kernel, layer.bias))
    ref = dropconnect_gaussian_inference(x.astype(np.float64), W, b, rate, activation="relu",
                                         n_samples=n, rng=0)
    got = run(layer, x, training=False)
    sd = np.sqrt((x @ W + b) ** 2 + rate / (1 - rate) * (x**2) @ (W**2))
    assert np.all(np.abs(got - ref) <= Z * np.sqrt(2 / n) * sd + 1e-5)
    assert np.abs(got - np.maximum(x @ W + b, 0)).max() > 0.05
    assert DropConnectDense.from_config(layer.get_config()).inference == "gaussian"
    with pytest.raises(ValueError, match="inference"):
        DropConnectDense(3, 0.5, inference="moments")


# ---------------------------------------------------------------- DropBlock
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_keras_dropblock(rate, data_format):
    hw, bs = 12, 3
    shape = (20, hw, hw, 40) if data_format == "channels_last" else (20, 40, hw, hw)
    out = run(DropBlock2D(rate, bs, data_format=data_format, seed=6), np.ones(shape, np.float32))
    kept = out != 0
    assert np.allclose(out[kept], out.size / kept.sum(), rtol=1e-5)
    drop = ~(np.moveaxis(kept, -1, 1) if data_format == "channels_last" else kept)
    windows = np.lib.stride_tricks.sliding_window_view(drop, (bs, bs), axis=(2, 3)).all(axis=(-1, -2))
    assert np.array_equal(blocks_from_seeds(windows, bs), drop)  # only whole blocks inside the map
    per_map = drop.mean(axis=(2, 3)).ravel()
    expected = dropblock_expected_fraction(rate, bs, hw, hw)
    assert abs(per_map.mean() - expected) <= Z * per_map.std() / math.sqrt(per_map.size)


@pytest.fixture
def mixed_float16():
    """The global ``mixed_float16`` policy for one test, the previous policy restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_keras_dropblock_mixed_float16_past_the_float16_range(mixed_float16):
    # 2 x 200 x 200 x 4 = 320,000 elements: a float16 count overflows (max 65,504),
    # which made every output NaN (inf / inf)
    layer = DropBlock2D(0.3, 5, seed=21)
    assert layer.compute_dtype == "float16"
    for _ in range(3):
        out = run(layer, np.ones((2, 200, 200, 4), np.float16))
        assert out.dtype == np.float16
        assert_dropblock_of_ones(out, 0.3, 5, (1, 2), float(np.finfo(np.float16).eps))


def test_keras_dropblock_linear_schedule():
    layer = DropBlock2D(0.4, 3, schedule_steps=4, seed=0)
    x = np.ones((8, 10, 10, 16), np.float32)
    assert np.array_equal(run(layer, x), x)  # step 0: rate 0
    rates = []
    for _ in range(5):
        rates.append(float(keras.ops.convert_to_numpy(layer.current_rate())))
        run(layer, x)
    assert np.allclose(rates, [0.1, 0.2, 0.3, 0.4, 0.4])
    run(layer, x, training=False)
    assert float(layer.step.numpy()) == 6.0  # inference is not a training step


def test_keras_dropblock_conventions():
    x = np.ones((1, 6, 6, 1), np.float32)
    assert np.array_equal(run(DropBlock2D(0.5, 3), x, training=False), x)
    with pytest.raises(ValueError, match="block_size"):
        DropBlock2D(0.1, 7, data_format="channels_last")(x, training=True)


def test_keras_dropblock_rate_one_drops_everything():
    # 4x4 maps, blocks of 2: the seed formula alone would drop only about 56 %
    out = run(DropBlock2D(1.0, 2, seed=0), np.ones((3, 4, 4, 2), np.float32))
    assert np.isfinite(out).all() and np.all(out == 0)


def test_keras_mc_predict_does_not_advance_the_dropblock_schedule():
    from dlcourse.keras import mc_predict

    inputs = keras.Input((6, 6, 2))
    x = DropBlock2D(0.3, 2, schedule_steps=10, seed=0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))
    block = model.layers[1]
    block.step.assign(4.0)
    mc_predict(model, np.ones((2, 6, 6, 2), np.float32), 5, seed=0)
    assert float(block.step.numpy()) == 4.0


# ---------------------------------------------------------------- DropPath
@pytest.mark.parametrize("rate", RATES)
def test_keras_droppath_rows(rate):
    x = positive((3000, 4, 2), seed=7)
    out = run(DropPath(rate, seed=7), x)
    mask = (out != 0).any(axis=(1, 2), keepdims=True)
    assert_binomial(int((~mask).sum()), 3000, rate)
    ref, _ = drop_path_forward(x, rate, mask=mask)
    assert np.allclose(ref, out, rtol=1e-6)


def test_keras_droppath_batch_mode_and_rate_one():
    layer = DropPath(0.3, mode="batch", seed=8)
    outs = [run(layer, np.ones((4, 2), np.float32)) for _ in range(300)]
    assert all(np.all(o == 0) or np.allclose(o, 1 / 0.7) for o in outs)
    assert_binomial(sum(int(np.all(o == 0)) for o in outs), 300, 0.3)
    assert np.all(run(DropPath(1.0, seed=0), np.ones((3, 2), np.float32)) == 0)
    with pytest.raises(ValueError, match="mode"):
        DropPath(0.1, mode="col")


# ---------------------------------------------------------------- inside fit / predict (graph mode)
def test_keras_layers_train_and_predict_in_a_compiled_model():
    """model.fit/predict trace the layers into a tf.function with a dynamic batch
    axis (``None``; batches of 4, 4, 2 and 3, 3, 3, 1): a static-shape bug such
    as ``inputs.shape[0]`` passes eager calls and fails here."""
    from dlcourse.keras import mc_predict

    inputs = keras.Input((4, 4, 2))
    block = DropBlock2D(0.3, 2, schedule_steps=3, seed=0)
    h = keras.layers.SpatialDropout2D(0.2, seed=1)(block(inputs))
    h = keras.layers.GaussianDropout(0.2, seed=2)(keras.layers.Flatten()(h))
    h = DropConnectDense(8, 0.3, activation="relu", inference="gaussian", n_samples=16, seed=3)(h)
    h = h + DropPath(0.5, seed=4)(keras.layers.Dense(8)(h))
    h = DropPath(0.2, mode="batch", seed=5)(keras.layers.AlphaDropout(0.1, seed=6)(h))
    h = DropConnectDense(3, 0.2, seed=7)(h)
    model = keras.Model(inputs, keras.layers.Softmax()(h))
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((10, 4, 4, 2)).astype(np.float32)
    y = np.arange(10) % 3
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert float(block.step.numpy()) == 3.0  # one schedule step per training batch
    probs = model.predict(x, batch_size=3, verbose=0)
    assert probs.shape == (10, 3) and np.isfinite(probs).all()
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert float(block.step.numpy()) == 3.0  # inference is not a training step
    pred = mc_predict(model, x[:5], 8, seed=0)
    assert pred.samples.shape == (8, 5, 3) and pred.std.max() > 0


# ---------------------------------------------------------------- conventions: rate 0 and rate 1
FORMS = {
    "SpatialDropout1D": (lambda r: keras.layers.SpatialDropout1D(r, seed=0), (3, 5, 4)),
    "SpatialDropout2D": (lambda r: keras.layers.SpatialDropout2D(r, seed=0), (3, 4, 4, 2)),
    "SpatialDropout3D": (lambda r: keras.layers.SpatialDropout3D(r, seed=0), (3, 2, 2, 2, 2)),
    "Dropout": (lambda r: keras.layers.Dropout(r, seed=0), (3, 4)),
    "DropBlock2D": (lambda r: DropBlock2D(r, 2, seed=0), (3, 4, 4, 2)),
    "DropBlock2D_first": (lambda r: DropBlock2D(r, 3, data_format="channels_first", seed=0), (3, 2, 5, 4)),
    "DropPath_row": (lambda r: DropPath(r, seed=0), (6, 3)),
    "DropPath_batch": (lambda r: DropPath(r, mode="batch", seed=0), (6, 3)),
}


@pytest.mark.parametrize("name", [*FORMS, "GaussianDropout", "AlphaDropout"])
def test_keras_rate_zero_is_identity(name):
    make, shape = FORMS.get(name, (lambda r: getattr(keras.layers, name)(r, seed=0), (3, 4)))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    assert np.array_equal(run(make(0.0), x), x)


@pytest.mark.parametrize("name", list(FORMS))
def test_keras_rate_one_is_zeros(name):
    make, shape = FORMS[name]
    with np.errstate(all="raise"):
        out = run(make(1.0), np.random.default_rng(2).standard_normal(shape).astype(np.float32))
    assert np.isfinite(out).all() and np.all(out == 0)


@pytest.mark.parametrize("name", ["GaussianDropout", "AlphaDropout"])
def test_keras_builtin_rate_one_fails(name):
    # Keras 3.15 accepts rate=1 and then divides by zero in call() (ZeroDivisionError,
    # not a ValueError naming the value); the NumPy references and
    # dlcourse.torch.GaussianDropout refuse rate=1 with a ValueError instead
    layer = getattr(keras.layers, name)(1.0, seed=0)
    with pytest.raises((ZeroDivisionError, ValueError)):
        run(layer, np.ones((3, 4), np.float32))


def test_keras_dropconnect_and_rnn_at_rate_zero_and_one():
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    for inference in ("mean", "gaussian"):
        layer = DropConnectDense(3, 0.0, activation="tanh", inference=inference, seed=0)
        assert np.array_equal(run(layer, x), run(layer, x, training=False))
        W, b = (v.numpy() for v in (layer.kernel, layer.bias))
        assert np.allclose(run(layer, x), np.tanh(x @ W + b), atol=1e-6)
    layer = DropConnectDense(3, 1.0, activation="tanh", seed=0)
    layer.build((None, 5))
    layer.bias.assign(np.array([0.5, -1.0, 2.0], np.float32))
    with np.errstate(all="raise"):
        out = run(layer, x)
    assert np.allclose(out, np.tanh(layer.bias.numpy()) * np.ones((4, 1)))  # every weight dropped
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\); received rate=1"):
        DropConnectDense(3, 1.0, inference="gaussian")
    seq = np.random.default_rng(4).standard_normal((3, 5, 2)).astype(np.float32)
    still = keras.layers.SimpleRNN(4, dropout=0.0, recurrent_dropout=0.0, return_sequences=True, seed=0)
    assert np.array_equal(run(still, seq), run(still, seq, training=False))
    cut = keras.layers.SimpleRNN(4, dropout=1.0, recurrent_dropout=1.0, return_sequences=True,
                                 seed=0, bias_initializer="ones")
    assert np.allclose(run(cut, seq), np.tanh(1.0))  # no input, no recurrence: h_t = tanh(b)
