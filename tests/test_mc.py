"""Monte-Carlo dropout: uncertainty summaries and the NumPy, PyTorch and Keras mc_predict."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from dlcourse.scratch import DropBlock2D, Dropout, Linear, ReLU, Sequential, mc_predict, mlp
from dlcourse.uncertainty import entropy, softmax, summarize

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# ---------------------------------------------------------------- uncertainty (framework-free)
def test_summary_of_agreeing_samples_has_no_epistemic_part():
    p = softmax(np.random.default_rng(0).standard_normal((1, 5, 4)))
    s = summarize(np.repeat(p, 10, axis=0))
    assert np.allclose(s.mean, p[0]) and np.allclose(s.std, 0)
    assert np.allclose(s.entropy, entropy(p[0]))
    assert np.allclose(s.mutual_information, 0, atol=1e-12)


def test_summary_of_confident_disagreeing_samples_is_all_epistemic():
    probs = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two certain, opposite samples
    s = summarize(probs)
    assert np.allclose(s.mean, [[0.5, 0.5]]) and np.allclose(s.std, [[0.5, 0.5]])
    assert np.allclose(s.entropy, math.log(2)) and np.allclose(s.mutual_information, math.log(2))


def test_mutual_information_bounds():
    probs = np.random.default_rng(1).dirichlet(np.ones(5) * 0.5, size=(30, 40))
    s = summarize(probs)
    assert np.all(s.mutual_information >= 0)
    assert np.all(s.mutual_information <= s.entropy + 1e-12)
    assert np.all(s.entropy <= math.log(5) + 1e-12)
    assert np.array_equal(s.predict(), s.mean.argmax(-1))


def test_summary_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probs"):
        summarize(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="probs"):
        summarize(np.ones((3, 4)) / 4)


# ---------------------------------------------------------------- NumPy
def test_numpy_mc_predict_is_seeded_and_restores_state():
    model = mlp([6, 16, 3], rate=0.5, rng=0)
    x = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    drop = model.layers[2]
    state = drop.rng.bit_generator.state
    a = mc_predict(model, x, 20, rng=7)
    b = mc_predict(model, x, 20, rng=7)
    c = mc_predict(model, x, 20, rng=8)
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    assert drop.rng.bit_generator.state == state  # the layer's own stream is untouched
    assert model.training and all(layer.training for layer in model.layers)
    assert a.samples.shape == (20, 5, 3) and a.samples.dtype == np.float32
    assert np.all(a.std > 0) and np.all(a.mutual_information > 0)
    model.eval()
    mc_predict(model, x, 2, rng=0)
    assert not any(layer.training for layer in model.layers)


def test_numpy_mc_predict_without_dropout_is_the_deterministic_prediction():
    model = mlp([6, 8, 3], rate=0.0, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 6))
    still = mc_predict(model, x, 3, rng=0)
    assert np.allclose(still.std, 0) and np.allclose(still.mutual_information, 0, atol=1e-12)
    assert np.allclose(still.mean, model.predict_proba(x))


def test_numpy_mc_predict_only_dropout_layers_train():
    class Probe(ReLU):
        seen: list[bool] = []

        def forward(self, x):
            Probe.seen.append(self.training)
            return super().forward(x)

    block = DropBlock2D(0.3, 2, schedule_steps=10, rng=0)

    class Flat(ReLU):
        def forward(self, x):
            return x.reshape(x.shape[0], -1)

    model = Sequential(block, Flat(), Linear(16, 4, rng=0), Probe(), Dropout(0.5, rng=0),
                       Linear(4, 3, rng=1))
    model.train()
    mc_predict(model, np.ones((2, 1, 4, 4)), 3, rng=0)
    assert Probe.seen == [False, False, False]
    assert block.step == 0  # MC passes do not advance the DropBlock schedule
    with pytest.raises(ValueError, match="output"):
        mc_predict(model, np.ones((2, 1, 4, 4)), 3, output="proba")


# ---------------------------------------------------------------- PyTorch
@pytest.mark.torch
def test_torch_mc_predict_keeps_batchnorm_in_eval():
    torch = pytest.importorskip("torch")
    from torch import nn

    from dlcourse.torch import mc_predict as torch_mc

    torch.manual_seed(0)
    bn = nn.BatchNorm1d(8)
    net = nn.Sequential(nn.Linear(5, 8), bn, nn.ReLU(), nn.Dropout(0.0), nn.Linear(8, 3))
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(6, 5)
    stats = (bn.running_mean.clone(), bn.running_var.clone())
    net.train()
    pred = torch_mc(net, x, 4, seed=0)
    net.eval()
    expected = torch.softmax(net(x), -1).detach().numpy()
    # dropout rate 0: every sample is the eval network; batch statistics would differ
    assert np.allclose(pred.samples, expected, atol=1e-6)
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    net.train()
    torch_mc(net, x, 2, seed=0)
    assert all(m.training for m in net.modules())


@pytest.mark.torch
def test_torch_mc_predict_is_seeded():
    torch = pytest.importorskip("torch")
    from torch import nn

    from dlcourse.torch import DropConnectLinear
    from dlcourse.torch import mc_predict as torch_mc

    torch.manual_seed(0)
    net = nn.Sequential(DropConnectLinear(5, 16, 0.3), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    net.eval()
    x = torch.randn(4, 5)
    state = torch.get_rng_state()
    a, b, c = (torch_mc(net, x, 10, seed=s) for s in (1, 1, 2))
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    assert np.all(a.std > 0) and not any(m.training for m in net.modules())
    assert net[0].generator is None


# ---------------------------------------------------------------- Keras
@pytest.mark.keras
def test_keras_mc_predict_is_seeded_and_restores_state():
    keras = pytest.importorskip("keras")
    from dlcourse.keras import DropConnectDense
    from dlcourse.keras import mc_predict as keras_mc

    model = keras.Sequential([keras.Input((5,)), DropConnectDense(8, 0.3, activation="relu", seed=0),
                              keras.layers.Dropout(0.5, seed=1),
                              keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    states = [layer.seed_generator.state.numpy().copy() for layer in model.layers[:2]]
    a, b, c = (keras_mc(model, x, 8, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    for layer, state in zip(model.layers[:2], states, strict=True):
        assert np.array_equal(layer.seed_generator.state.numpy(), state)
    assert np.all(a.std > 0)
    det = keras.Sequential([keras.Input((5,)), keras.layers.Dropout(0.0), keras.layers.Dense(3)])
    still = keras_mc(det, x, 3, seed=0, output="logits")
    assert np.allclose(still.std, 0, atol=1e-7)
    assert np.allclose(still.mean, softmax(keras.ops.convert_to_numpy(det(x))), atol=1e-6)
