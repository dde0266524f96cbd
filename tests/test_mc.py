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
def test_torch_mc_predict_keeps_batchnorm_in_eval_while_dropout_is_active():
    torch = pytest.importorskip("torch")
    from torch import nn

    from dlcourse.torch import mc_predict as torch_mc

    torch.manual_seed(0)
    bn = nn.BatchNorm1d(8)
    drop = nn.Dropout(0.5)
    net = nn.Sequential(nn.Linear(5, 8), bn, nn.ReLU(), drop, nn.Linear(8, 3))
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    x = torch.randn(6, 5)
    stats = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, m.training, o)))
             for m in (bn, drop)]
    net.train()
    pred = torch_mc(net, x, 8, seed=0)
    for hook in hooks:
        hook.remove()
    assert {(name, mode) for name, mode, _ in seen} == {("BatchNorm1d", False), ("Dropout", True)}
    # dropout is active: the samples differ ...
    assert np.all(pred.std.max(axis=0) > 1e-3) and len({s.tobytes() for s in pred.samples}) == 8
    # ... while BatchNorm normalises with its running statistics, not the batch's ...
    h = net[0](x).detach()
    running = (h - stats[0]) / torch.sqrt(stats[1] + bn.eps) * bn.weight + bn.bias
    batch = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias
    for name, _, out in seen:
        if name == "BatchNorm1d":
            assert torch.allclose(out, running, atol=1e-5) and not torch.allclose(out, batch, atol=0.1)
    # ... and does not update them
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert torch.equal(bn.num_batches_tracked, stats[2])
    assert all(m.training for m in net.modules())  # modes restored
    net.eval()
    torch_mc(net, x, 2, seed=0)
    assert not any(m.training for m in net.modules())


@pytest.mark.torch
def test_torch_mc_predict_switches_on_only_the_module_not_its_children():
    torch = pytest.importorskip("torch")
    from torch import nn

    from dlcourse.torch import DropPath
    from dlcourse.torch import mc_predict as torch_mc

    class Branch(DropPath):  # a stochastic module holding a BatchNorm child
        def __init__(self):
            super().__init__(0.5)
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x):
            return super().forward(self.bn(x))

    net = nn.Sequential(nn.Linear(4, 3), Branch())
    net.train()
    torch_mc(net, torch.randn(5, 4), 3, seed=0)
    assert int(net[1].bn.num_batches_tracked) == 0  # the child BatchNorm stayed in eval


@pytest.mark.torch
def test_torch_mc_predict_switches_on_lstm_dropout_between_layers():
    torch = pytest.importorskip("torch")
    from torch import nn

    from dlcourse.torch import mc_predict as torch_mc

    class Net(nn.Module):
        def __init__(self, dropout):
            super().__init__()
            self.lstm = nn.LSTM(3, 6, num_layers=2, dropout=dropout, batch_first=True)
            self.head = nn.Linear(6, 4)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    x = torch.randn(5, 7, 3)
    net = Net(0.5).eval()
    state = torch.get_rng_state()
    a, b = (torch_mc(net, x, 6, seed=1) for _ in range(2))
    assert torch.equal(torch.get_rng_state(), state)
    assert np.array_equal(a.samples, b.samples)  # seeded
    assert np.all(a.std.max(axis=0) > 1e-4)  # the LSTM's dropout= is on
    assert not net.lstm.training  # mode restored
    still = Net(0.0)
    still.load_state_dict(net.state_dict())
    c = torch_mc(still.eval(), x, 3, seed=1)
    assert np.allclose(c.std, 0, atol=1e-6)  # one-layer or dropout=0: training mode changes nothing
    assert np.allclose(c.mean, torch.softmax(still(x), -1).detach().numpy(), atol=1e-6)


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
    state, initial = torch.get_rng_state(), torch.initial_seed()
    a, b, c = (torch_mc(net, x, 10, seed=s) for s in (1, 1, 2))
    assert torch.equal(torch.get_rng_state(), state) and torch.initial_seed() == initial
    assert np.array_equal(a.samples, b.samples) and not np.array_equal(a.samples, c.samples)
    assert np.all(a.std > 0) and not any(m.training for m in net.modules())
    assert net[0].generator is None


@pytest.mark.torch
def test_torch_mc_predict_seeds_no_device_it_does_not_restore(monkeypatch):
    """A CPU model must not (lazily) reseed the global CUDA/MPS generators: fork_rng
    restores only the devices it is given, so a seed sent elsewhere would stick."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from dlcourse.torch import mc_predict as torch_mc

    calls = []
    for module, name in [(torch.cuda, "manual_seed"), (torch.cuda, "manual_seed_all"),
                         (torch.mps, "manual_seed")]:
        monkeypatch.setattr(module, name, lambda *a, _n=name, **k: calls.append(_n))
    net = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 3))
    x = torch.randn(3, 4)
    state = torch.get_rng_state()
    pred = torch_mc(net, x, 4, seed=0)
    assert calls == []
    assert torch.equal(torch.get_rng_state(), state) and np.all(pred.std.max(axis=0) > 0)


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


@pytest.mark.torch
def test_torch_mc_predict_cuda_rng_handling_without_a_gpu(monkeypatch):
    """The CUDA path, checked on CPU with a fake torch.cuda RNG: the devices that
    hold x or the model are found, forked, seeded and restored; no other device is."""
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    from torch import nn

    from dlcourse.torch import mc as tmc

    fake_x = SimpleNamespace(device=torch.device("cuda", 1))
    assert tmc._accelerator_devices(nn.Linear(2, 2, device="meta"), fake_x) == {"cuda": [1]}
    assert tmc._accelerator_devices(nn.Linear(2, 2), torch.ones(1)) == {}

    class FakeGenerator:
        def __init__(self):
            self.seeds = []

        def manual_seed(self, seed):
            self.seeds.append(seed)
            return self

    generators = (FakeGenerator(), FakeGenerator(), FakeGenerator())
    restored = []
    monkeypatch.setattr(torch.cuda, "default_generators", generators, raising=False)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": f"state{device}")
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device="cuda": restored.append((device, state)))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: pytest.fail("seeds every GPU"))
    cpu = torch.get_rng_state()
    with tmc._seeded_global_rng(7, {"cuda": [1, 2]}):
        assert [g.seeds for g in generators] == [[], [7], [7]]
        assert torch.initial_seed() == 7
        torch.rand(3)
    assert sorted(restored) == [(1, "state1"), (2, "state2")]
    assert torch.equal(torch.get_rng_state(), cpu)
