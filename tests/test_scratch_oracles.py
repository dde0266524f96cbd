"""Oracle tests: the NumPy dropout agrees with PyTorch's and Keras' built-ins.

The frameworks draw their own masks, so each test first reads the framework's
mask off its output on an input with no zeros, then runs the NumPy reference
with that same mask (``dropout_forward(..., mask=...)``) and compares outputs
and gradients. Both frameworks use the drop-rate convention and inverted
scaling ``1/(1 - rate)`` in training, and the identity at inference.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from dlcourse.scratch import dropout_backward, dropout_forward

RATES = [0.2, 0.7]


def positive(shape, seed=0):
    return (1.0 + np.random.default_rng(seed).random(shape)).astype(np.float32)


@pytest.mark.torch
@pytest.mark.parametrize("rate", RATES)
def test_torch_functional_dropout_given_the_same_mask(rate):
    torch = pytest.importorskip("torch")
    x = positive((64, 50))
    dout = positive((64, 50), seed=1)
    xt = torch.tensor(x, requires_grad=True)
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(123)
        out_t = torch.nn.functional.dropout(xt, p=rate, training=True)
        out_t.backward(torch.tensor(dout))
    finally:
        torch.random.set_rng_state(gen_state)
    out_t = out_t.detach().numpy()
    mask = out_t != 0
    assert 0 < mask.mean() < 1
    out, cache = dropout_forward(x, rate, mask=mask)
    assert out.dtype == out_t.dtype == np.float32
    np.testing.assert_allclose(out, out_t, rtol=1e-6, atol=0)
    np.testing.assert_allclose(dropout_backward(dout, cache), xt.grad.numpy(), rtol=1e-6, atol=0)
    # inference: identity in both
    out_eval = torch.nn.functional.dropout(torch.tensor(x), p=rate, training=False).numpy()
    np.testing.assert_array_equal(dropout_forward(x, rate, training=False)[0], out_eval)


@pytest.mark.torch
def test_torch_rate_edges():
    torch = pytest.importorskip("torch")
    x = positive((10, 10))
    for rate in (0.0, 1.0):
        expected = torch.nn.functional.dropout(torch.tensor(x), p=rate, training=True).numpy()
        np.testing.assert_array_equal(dropout_forward(x, rate, rng=0)[0], expected)


@pytest.mark.keras
@pytest.mark.parametrize("rate", RATES)
def test_keras_dropout_layer_given_the_same_mask(rate):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    x = positive((64, 50))
    dout = positive((64, 50), seed=1)
    layer = keras.layers.Dropout(rate, seed=7)
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        out_k = layer(xv, training=True)
    grad_k = tape.gradient(out_k, xv, output_gradients=tf.constant(dout)).numpy()
    out_k = np.asarray(out_k)
    mask = out_k != 0
    assert 0 < mask.mean() < 1
    out, cache = dropout_forward(x, rate, mask=mask)
    assert out.dtype == out_k.dtype == np.float32
    np.testing.assert_allclose(out, out_k, rtol=1e-6, atol=0)
    np.testing.assert_allclose(dropout_backward(dout, cache), grad_k, rtol=1e-6, atol=0)
    out_eval = np.asarray(layer(x, training=False))
    np.testing.assert_array_equal(dropout_forward(x, rate, training=False)[0], out_eval)


@pytest.mark.keras
def test_keras_noise_shape_matches():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    x = positive((8, 5, 6))
    out_k = np.asarray(keras.layers.Dropout(0.5, noise_shape=(8, 1, 6), seed=3)(x, training=True))
    mask3 = out_k != 0
    # Keras broadcasts one draw along axis 1, as resolve_noise_shape does
    assert np.array_equal(mask3, np.broadcast_to(mask3[:, :1, :], mask3.shape))
    out, _ = dropout_forward(x, 0.5, noise_shape=(None, 1, None), mask=mask3[:, :1, :])
    np.testing.assert_allclose(out, out_k, rtol=1e-6, atol=0)
