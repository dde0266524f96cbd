"""Layers, losses and gradient checking of the NumPy toolkit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlcourse.scratch import (
    Dropout,
    Linear,
    ReLU,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    check_layer,
    check_model,
    mlp,
    numerical_gradient,
    relative_error,
    softmax,
)

TOL = 1e-6


def inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize(
    "make",
    [
        lambda: Linear(5, 4, rng=0, dtype=np.float64),
        lambda: Linear(5, 4, init="glorot", rng=1, dtype=np.float32),
        ReLU,
        Sigmoid,
        Tanh,
        lambda: Dropout(0.2, rng=0),
        lambda: Dropout(0.7, rng=1),
        lambda: Dropout(0.5, rng=2, mode="weight_scaling"),
        lambda: Dropout(0.5, rng=3, noise_shape=(None, 1)),
        lambda: Dropout(0.5, rng=4).eval(),
    ],
)
def test_gradient_check_every_layer(make):
    layer = make()
    x = inputs((6, 5)) + 0.01  # keeps ReLU's kink away from the sample points
    errors = check_layer(layer, x, rng=1)
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("rates", [(0.5, 0.2), (0.7, 0.0), (0.2, 0.5)])
def test_gradient_check_dropout_mlp(activation, rates):
    rate, input_rate = rates
    model = mlp([6, 9, 7, 4], rate=rate, input_rate=input_rate, activation=activation, rng=3,
                dtype=np.float64)
    # non-zero biases: a row dropped entirely would otherwise put ReLU exactly on its kink
    gen = np.random.default_rng(7)
    for layer, name in model.parameters():
        if name == "b":
            layer.params[name][:] = gen.uniform(0.05, 0.2, layer.params[name].shape)
    x = inputs((8, 6), seed=5)
    y = np.array([0, 1, 2, 3, 3, 2, 1, 0])
    errors = check_model(model, x, y)
    assert set(errors) == {"x"} | {f"{i}.{n}" for i, lay in enumerate(model.layers) for n in lay.params}
    assert max(errors.values()) < TOL, errors


def test_check_model_really_holds_a_dropout_mask_and_leaves_the_model_alone():
    model = mlp([6, 30, 3], rate=0.5, rng=0)  # float32: the check works on a float64 copy
    before = {(id(layer), n): layer.params[n].copy() for layer, n in model.parameters()}
    x, y = inputs((5, 6)), np.array([0, 1, 2, 0, 1])
    assert max(check_model(model, x, y).values()) < TOL
    for layer, n in model.parameters():
        assert layer.params[n].dtype == np.float32
        assert np.array_equal(layer.params[n], before[(id(layer), n)])
    assert not model.layers[2].frozen
    # without a fixed mask the two evaluations differ: the check needs freezing
    a, b = model.forward(x), model.forward(x)
    assert not np.allclose(a, b)


class _WrongReLU(ReLU):
    def backward(self, dout):
        return dout  # forgets the mask of negative inputs


class _WrongLinear(Linear):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = self.grads["b"] * 2.0
        return dx


def test_gradient_checks_can_fail():
    x = inputs((6, 5))
    assert check_layer(_WrongReLU(), x)["x"] > 1e-2
    errors = check_layer(_WrongLinear(5, 3, rng=0), x)
    assert errors["b"] > 1e-2 and errors["W"] < TOL


def test_numerical_gradient_of_a_known_function_restores_x():
    x = inputs((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda a: float(np.sum(a**3)), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-7, atol=1e-9)
    assert np.array_equal(x, before)
    with pytest.raises(TypeError, match="x must be a floating numpy array"):
        numerical_gradient(lambda a: 0.0, [1.0, 2.0])


def test_relative_error():
    a = np.array([1.0, 2.0, 3.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, -a) == pytest.approx(1.0)
    assert relative_error(a, a * (1 + 1e-8)) == pytest.approx(5e-9, rel=1e-3)
    with pytest.raises(ValueError, match=r"same shape; received \(3,\) and \(2,\)"):
        relative_error(a, a[:2])


# --------------------------------------------------------------------------- Linear


def test_linear_forward_and_shapes():
    layer = Linear(3, 2, rng=0)
    assert layer.params["W"].shape == (3, 2) and layer.params["b"].shape == (2,)
    assert set(layer.grads) == {"W", "b"}
    assert layer.params["W"].dtype == np.float32
    layer.params["b"][:] = [1.0, -1.0]
    x = inputs((4, 3)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32 and out.shape == (4, 2)
    np.testing.assert_allclose(out, x @ layer.params["W"] + layer.params["b"], rtol=1e-6)
    dx = layer.backward(np.ones((4, 2), np.float32))
    assert dx.shape == (4, 3) and layer.grads["W"].dtype == np.float32
    np.testing.assert_allclose(layer.grads["b"], [4.0, 4.0])


@pytest.mark.parametrize("init", ["he", "glorot"])
def test_linear_initialisation_statistics(init):
    d, h = 400, 300
    w = Linear(d, h, init=init, rng=0, dtype=np.float64).params["W"]
    if init == "he":
        expected_std = math.sqrt(2.0 / d)
    else:
        limit = math.sqrt(6.0 / (d + h))
        assert np.abs(w).max() <= limit
        expected_std = limit / math.sqrt(3.0)
    # the sample std of 120,000 draws is within 1 % (about 4 standard errors)
    assert abs(w.std() / expected_std - 1) < 0.01
    assert abs(w.mean()) < 5 * expected_std / math.sqrt(w.size)
    assert np.array_equal(Linear(d, h, init=init, rng=0, dtype=np.float64).params["W"], w)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"in_features must be an integer >= 1; received in_features=0"):
        Linear(0, 3)
    with pytest.raises(ValueError, match=r"init must be one of 'he', 'glorot'; received init='xavier'"):
        Linear(2, 3, init="xavier")
    with pytest.raises(TypeError, match=r"dtype must be a floating dtype; received dtype=int64"):
        Linear(2, 3, dtype=np.int64)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\); received x of shape \(4, 3\)"):
        Linear(2, 3)(np.ones((4, 3)))
    layer = Linear(2, 3)
    with pytest.raises(RuntimeError, match="Linear.backward called before forward"):
        layer.backward(np.ones((4, 3)))
    layer(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 3\); received dout of shape"):
        layer.backward(np.ones((4, 2)))


@pytest.mark.parametrize(
    ("rng", "exc", "match"),
    [
        (-1, ValueError, r"rng must be a numpy.random.Generator, a non-negative int seed or None; "
                         r"received rng=-1"),
        (1.5, TypeError, r"rng must be a numpy.random.Generator, an int seed or None; "
                         r"received rng=1.5"),
        (True, TypeError, r"received rng=True"),
    ],
)
def test_rng_errors_name_the_argument_and_value(rng, exc, match):
    """A seed of the right type but a bad value is a ValueError, a wrong type a TypeError."""
    with pytest.raises(exc, match=match) as info:
        Linear(2, 3, rng=rng)
    assert isinstance(info.value, TypeError) == (exc is TypeError)
    with pytest.raises(exc, match=match):
        Dropout(0.2, rng=rng)


# --------------------------------------------------------------------------- activations


def test_activation_values_dtype_and_stability():
    x = np.array([-1000.0, -2.0, 0.0, 3.0, 1000.0], np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = Sigmoid()(x)
        t = Tanh()(x)
        r = ReLU()(x)
    for out in (s, t, r):
        assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x.astype(np.float64).clip(-50, 50))), atol=1e-7)
    np.testing.assert_allclose(t, np.tanh(x), rtol=1e-6)
    assert r.tolist() == [0.0, 0.0, 0.0, 3.0, 1000.0]
    assert ReLU()(np.arange(-2, 3)).dtype == np.float64  # integers are converted, not kept


@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh])
def test_activations_share_the_interface(cls):
    layer = cls()
    assert layer.params == {} and layer.grads == {}
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    x = inputs((3, 4))
    before = x.copy()
    layer(x)
    layer.backward(np.ones_like(x))
    assert np.array_equal(x, before)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        cls().backward(x)


# --------------------------------------------------------------------------- softmax and loss


def test_softmax_rows_sum_to_one_and_are_shift_invariant():
    z = inputs((5, 7)) * 10
    p = softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(softmax(z + 1000.0), p, rtol=1e-12)
    assert np.all(np.isfinite(softmax(np.array([[1e4, 0.0, -1e4]]))))


def test_cross_entropy_value_gradient_and_stability():
    loss = SoftmaxCrossEntropy()
    assert loss.forward(np.zeros((3, 4)), np.array([0, 1, 3])) == pytest.approx(math.log(4))
    z = inputs((6, 5))
    y = np.array([0, 4, 2, 2, 1, 3])
    value = loss.forward(z, y)
    expected = -np.mean(np.log(softmax(z)[np.arange(6), y]))
    assert value == pytest.approx(expected, rel=1e-12)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda a: SoftmaxCrossEntropy().forward(a, y), z.copy())
    assert relative_error(analytic, numeric) < TOL
    big = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        assert loss.forward(big, np.array([1, 1])) == pytest.approx(500.0)


def test_cross_entropy_errors():
    loss = SoftmaxCrossEntropy()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        loss.backward()
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        loss.forward(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match=r"y must be a 1-D array of 2 integer labels"):
        loss.forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\); received labels from 0 to 3"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
