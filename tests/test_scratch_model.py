"""Sequential, mlp, the optimisers and the training loop."""

from __future__ import annotations

import numpy as np
import pytest

from dlcourse.scratch import (
    SGD,
    Adam,
    Dropout,
    History,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    fit,
    mlp,
)
from dlcourse.scratch.optim import apply_max_norm


def data(n=60, d=4, c=3, seed=0):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, d)).astype(np.float32)
    y = gen.integers(0, c, n)
    return x, y


# --------------------------------------------------------------------------- Sequential / mlp


def test_mlp_structure():
    model = mlp([64, 128, 64, 10], rate=0.5, rng=0)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear]
    assert [layer.rate for layer in model.layers if isinstance(layer, Dropout)] == [0.5, 0.5]
    assert [layer.params["W"].shape for layer in model.layers if isinstance(layer, Linear)] == [
        (64, 128), (128, 64), (64, 10)]
    model = mlp([8, 5, 3], rate=0.3, input_rate=0.2, activation="tanh", dtype=np.float64)
    assert [type(layer) for layer in model.layers] == [Dropout, Linear, Tanh, Dropout, Linear]
    assert model.layers[0].rate == 0.2 and model.layers[1].params["W"].dtype == np.float64
    assert [type(layer) for layer in mlp([8, 5, 3], activation="sigmoid").layers] == [
        Linear, Sigmoid, Linear]
    assert [type(layer) for layer in mlp([8, 3]).layers] == [Linear]


def test_mlp_seed_fixes_weights_and_masks():
    x = np.ones((50, 8), np.float32)
    a, b = mlp([8, 16, 3], rate=0.5, rng=1), mlp([8, 16, 3], rate=0.5, rng=1)
    for (la, n), (lb, _) in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(la.params[n], lb.params[n])
    assert np.array_equal(a.forward(x), b.forward(x))
    c = mlp([8, 16, 3], rate=0.5, rng=2)
    assert not np.array_equal(a.layers[0].params["W"], c.layers[0].params["W"])
    # the dropout layers of one model draw independent masks
    d = mlp([8, 8, 8, 3], rate=0.5, rng=3)
    m1 = d.layers[2](np.ones((100, 8)))
    m2 = d.layers[5](np.ones((100, 8)))
    assert not np.array_equal(m1, m2)


def test_train_and_eval_reach_every_layer():
    model = mlp([4, 6, 6, 2], rate=0.5, input_rate=0.2, rng=0)
    assert model.eval() is model and model.training is False
    assert all(layer.training is False for layer in model.layers)
    x = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(model.forward(x), model.forward(x))  # deterministic in eval
    assert model.train() is model
    assert all(layer.training is True for layer in model.layers)
    assert not np.array_equal(model.forward(x), model.forward(x))


def test_parameters_predict_and_evaluate_restore_the_mode():
    model = mlp([4, 6, 3], rate=0.5, rng=0)
    params = list(model.parameters())
    assert [(type(layer), n) for layer, n in params] == [
        (Linear, "W"), (Linear, "b"), (Linear, "W"), (Linear, "b")]
    x, y = data()
    proba = model.predict_proba(x)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(model.predict(x), proba.argmax(axis=1))
    assert model.training is True and model.layers[2].training is True
    np.testing.assert_allclose(model.predict_proba(x, batch_size=7), proba, rtol=1e-6)
    result = model.evaluate(x, y)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(np.mean(model.predict(x) == y))
    assert model.training is True and model.layers[2].training is True
    model.eval()
    model.predict_proba(x, training=True)  # one Monte-Carlo sample
    assert model.training is False and model.layers[2].training is False


def test_sequential_backward_matches_layer_by_layer():
    layers = [Linear(4, 5, rng=0, dtype=np.float64), ReLU(), Linear(5, 2, rng=1, dtype=np.float64)]
    model = Sequential(*layers)
    x = np.random.default_rng(0).standard_normal((3, 4))
    out = model(x)
    np.testing.assert_allclose(out, layers[2](layers[1](layers[0](x))))
    dout = np.ones_like(out)
    dx = model.backward(dout)
    np.testing.assert_allclose(dx, layers[0].backward(layers[1].backward(layers[2].backward(dout))))
    assert len(model) == 3 and model[1] is layers[1]
    assert "Linear(4, 5" in repr(model)


def test_sequential_and_mlp_errors():
    with pytest.raises(TypeError, match=r"layers\[1\]=.*without forward"):
        Sequential(ReLU(), object())
    with pytest.raises(ValueError, match=r"sizes must list at least an input and an output size"):
        mlp([4])
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\); received rate=1.0"):
        mlp([4, 3], rate=1.0)
    with pytest.raises(ValueError, match=r"input_rate must be in \[0, 1\); received input_rate=2"):
        mlp([4, 3], input_rate=2)
    with pytest.raises(ValueError, match=r"activation must be one of .*received activation='gelu'"):
        mlp([4, 3, 2], activation="gelu")
    with pytest.raises(ValueError, match=r"sizes\[1\] must be an integer >= 1; received sizes\[1\]=0"):
        mlp([4, 0, 2])


# --------------------------------------------------------------------------- optimisers


def one_linear(dtype=np.float64):
    layer = Linear(3, 2, rng=0, dtype=dtype)
    layer.params["b"][:] = [0.5, -0.5]
    return Sequential(layer), layer


def set_grads(layer, gw, gb):
    layer.grads["W"] = np.full_like(layer.params["W"], gw)
    layer.grads["b"] = np.full_like(layer.params["b"], gb)


def test_sgd_plain_and_momentum_steps():
    model, layer = one_linear()
    w0, b0 = layer.params["W"].copy(), layer.params["b"].copy()
    set_grads(layer, 1.0, 2.0)
    SGD(lr=0.1).step(model)
    np.testing.assert_allclose(layer.params["W"], w0 - 0.1)
    np.testing.assert_allclose(layer.params["b"], b0 - 0.2)
    model, layer = one_linear()
    opt = SGD(lr=0.1, momentum=0.9)
    for _ in range(2):
        set_grads(layer, 1.0, 0.0)
        opt.step(model)
    # v1 = g, v2 = 0.9 g + g: total displacement lr * (1 + 1.9) g
    np.testing.assert_allclose(layer.params["W"], w0 - 0.1 * 2.9)


def test_weight_decay_is_l2_on_weights_not_biases():
    model, layer = one_linear()
    w0, b0 = layer.params["W"].copy(), layer.params["b"].copy()
    set_grads(layer, 0.0, 0.0)
    SGD(lr=0.1, weight_decay=0.5).step(model)
    np.testing.assert_allclose(layer.params["W"], w0 * (1 - 0.1 * 0.5))
    np.testing.assert_array_equal(layer.params["b"], b0)


def test_max_norm_projects_each_unit_incoming_weights():
    w = np.array([[3.0, 0.1], [4.0, 0.2]])  # column norms 5 and ~0.22
    apply_max_norm(w, 2.0)
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), [2.0, np.sqrt(0.05)])
    np.testing.assert_allclose(w[:, 0], [1.2, 1.6])  # same direction
    model, layer = one_linear()
    layer.params["W"] *= 100
    set_grads(layer, 0.0, 0.0)
    b0 = layer.params["b"].copy()
    Adam(lr=1e-3, max_norm=1.5).step(model)
    assert np.all(np.linalg.norm(layer.params["W"], axis=0) <= 1.5 + 1e-12)
    np.testing.assert_array_equal(layer.params["b"], b0)


def test_adam_first_step_moves_each_parameter_by_lr():
    model, layer = one_linear(np.float32)
    w0 = layer.params["W"].copy()
    gen = np.random.default_rng(0)
    layer.grads["W"] = gen.standard_normal(w0.shape).astype(np.float32)
    layer.grads["b"] = np.zeros(2, np.float32)
    Adam(lr=0.01).step(model)
    step = w0 - layer.params["W"]
    # m_hat / sqrt(v_hat) = g / |g| on the first step
    np.testing.assert_allclose(step, 0.01 * np.sign(layer.grads["W"]), rtol=1e-4)
    assert layer.params["W"].dtype == np.float32


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SGD(lr=0), r"lr must be a finite number > 0; received lr=0"),
        (lambda: SGD(lr=0.1, momentum=1.0), r"momentum must be in \[0, 1\); received momentum=1.0"),
        (lambda: SGD(weight_decay=-1), r"weight_decay must be a finite number >= 0"),
        (lambda: Adam(beta2=1.0), r"beta2 must be in \[0, 1\); received beta2=1.0"),
        (lambda: Adam(max_norm=0.0), r"max_norm must be a finite number > 0; received max_norm=0.0"),
        (lambda: Adam(lr=float("nan")), r"lr must be a finite number > 0; received lr=nan"),
    ],
)
def test_optimizer_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --------------------------------------------------------------------------- fit


def test_fit_history_and_mode_restored():
    x, y = data(n=90)
    xv, yv = data(n=30, seed=1)
    model = mlp([4, 16, 3], rate=0.2, rng=0)
    history = fit(model, x, y, optimizer=SGD(0.1, momentum=0.9), epochs=4, batch_size=16,
                  validation_data=(xv, yv), rng=0)
    assert isinstance(history, History)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "batch_loss"}
    assert all(len(v) == 4 for v in history.history.values())
    assert history.epoch == [1, 2, 3, 4]
    assert model.training is True
    # "loss" is measured on the training set in inference mode after the epoch
    assert history.history["loss"][-1] == pytest.approx(model.evaluate(x, y)["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == pytest.approx(model.evaluate(xv, yv)["accuracy"])
    model.eval()
    history = fit(model, x, y, optimizer=SGD(0.1), epochs=1)
    assert model.training is False and set(history.history) == {"loss", "accuracy", "batch_loss"}


def test_fit_is_deterministic_and_learns():
    x, y = data(n=120)

    def run():
        model = mlp([4, 32, 3], rate=0.3, rng=5)
        history = fit(model, x, y, optimizer=Adam(0.01), epochs=15, batch_size=32, rng=7)
        return model, history

    (m1, h1), (m2, h2) = run(), run()
    assert h1.history == h2.history
    for (la, n), (lb, _) in zip(m1.parameters(), m2.parameters(), strict=True):
        assert np.array_equal(la.params[n], lb.params[n])
    assert h1.history["loss"][-1] < 0.8 * h1.history["loss"][0]


def test_fit_progress_bar_and_errors(capsys):
    x, y = data(n=20)
    fit(mlp([4, 3], rng=0), x, y, optimizer=SGD(0.1), epochs=2, progress=True)
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "accuracy=" in out
    fit(mlp([4, 3], rng=0), x, y, optimizer=SGD(0.1), epochs=2)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match=r"same number of rows; received 20 and 19"):
        fit(mlp([4, 3]), x, y[:-1], optimizer=SGD())
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1; received epochs=0"):
        fit(mlp([4, 3]), x, y, optimizer=SGD(), epochs=0)
