"""PyTorch forms of the dropout variants, cross-checked against the NumPy references."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from properties import Z, assert_binomial, assert_dropblock_of_ones  # noqa: E402
from torch import nn  # noqa: E402

from dlcourse.scratch import (  # noqa: E402
    alpha_dropout_forward,
    drop_path_forward,
    dropblock_backward,
    dropblock_forward,
    dropconnect_backward,
    dropconnect_forward,
    dropconnect_gaussian_inference,
    rnn_backward,
    rnn_forward,
    spatial_dropout_forward,
)
from dlcourse.scratch.alpha import ALPHA_PRIME, alpha_dropout_affine  # noqa: E402
from dlcourse.scratch.dropblock import dropblock_expected_fraction  # noqa: E402
from dlcourse.torch import (  # noqa: E402
    DropBlock2d,
    DropConnectLinear,
    DropPath,
    GaussianDropout,
    VariationalRNN,
    drop_block2d,
    dropconnect_linear,
    gaussian_dropout,
    stochastic_depth,
    variational_rnn,
)

pytestmark = pytest.mark.torch
RATES = [0.2, 0.7]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- spatial: built-ins
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("module", "shape"), [
    (nn.Dropout1d, (40, 30, 5)), (nn.Dropout2d, (30, 20, 4, 3)), (nn.Dropout3d, (20, 15, 3, 2, 2))])
def test_torch_spatial_dropout_agrees_with_numpy(module, shape, rate):
    layer = module(rate)
    x = torch.randn(shape, generator=gen(1), dtype=torch.float64)
    torch.manual_seed(3)
    ones_out = layer(torch.ones(shape, dtype=torch.float64)).numpy()
    torch.manual_seed(3)
    out = layer(x).numpy()
    flat = ones_out.reshape(shape[0], shape[1], -1)
    assert np.all(flat == flat[..., :1])  # constant over the spatial axes
    mask = flat[..., 0] > 0
    assert np.allclose(flat[..., 0][mask], 1 / (1 - rate))
    assert_binomial(int((~mask).sum()), mask.size, rate)
    ref, _ = spatial_dropout_forward(x.numpy(), rate, mask=mask.reshape(shape[:2] + (1,) * (len(shape) - 2)))
    assert np.allclose(ref, out)


# ---------------------------------------------------------------- alpha: built-in
@pytest.mark.parametrize("rate", RATES)
def test_torch_alpha_dropout_agrees_with_numpy(rate):
    n = 200_000
    x = torch.randn(n, generator=gen(2), dtype=torch.float64)
    torch.manual_seed(4)
    out = nn.AlphaDropout(rate)(x).numpy()
    a, b = alpha_dropout_affine(rate)
    mask = ~np.isclose(out, a * ALPHA_PRIME + b, rtol=0, atol=1e-12)
    assert_binomial(int((~mask).sum()), n, rate)
    ref, _ = alpha_dropout_forward(x.numpy(), rate, mask=mask)
    assert np.allclose(ref, out)
    assert abs(out.mean()) <= Z / math.sqrt(n)
    assert abs(out.var() - 1) <= Z * math.sqrt(np.mean(out**4) / n)


# ---------------------------------------------------------------- Gaussian
@pytest.mark.parametrize("rate", RATES)
def test_torch_gaussian_dropout(rate):
    n = 200_000
    layer = GaussianDropout(rate, generator=gen(5))
    x = torch.ones(n, requires_grad=True)
    out = layer(x)
    sigma = math.sqrt(rate / (1 - rate))
    assert abs(out.mean().item() - 1) <= Z * sigma / math.sqrt(n)
    assert abs(out.std().item() - sigma) <= Z * sigma / math.sqrt(2 * n)
    out.sum().backward()
    assert torch.allclose(x.grad, out.detach())  # d(x * eps)/dx = eps
    assert layer.eval()(x) is x
    with pytest.raises(ValueError, match="rate"):
        GaussianDropout(1.0)


# ---------------------------------------------------------------- DropConnect
@pytest.mark.parametrize("sampling", ["batch", "example"])
def test_torch_dropconnect_matches_numpy_given_mask(sampling):
    g = np.random.default_rng(0)
    x, W, b = g.standard_normal((4, 5)), g.standard_normal((5, 3)), g.standard_normal(3)
    rate = 0.4
    mshape = W.shape if sampling == "batch" else (4, *W.shape)
    mask = g.random(mshape) >= rate
    ref, cache = dropconnect_forward(x, W, b, rate, mask=mask, sampling=sampling)
    tx = torch.tensor(x, requires_grad=True)
    tW = torch.tensor(W.T.copy(), requires_grad=True)  # torch stores (out, in)
    tb = torch.tensor(b, requires_grad=True)
    tmask = torch.tensor(np.swapaxes(mask, -1, -2).copy())
    out = dropconnect_linear(tx, tW, tb, rate, sampling=sampling, mask=tmask)
    assert np.allclose(out.detach().numpy(), ref)
    up = g.standard_normal(ref.shape)
    out.backward(torch.tensor(up))
    dx, dW, db = dropconnect_backward(up, cache)
    assert np.allclose(tx.grad.numpy(), dx)
    assert np.allclose(tW.grad.numpy().T, dW)
    assert np.allclose(tb.grad.numpy(), db)


@pytest.mark.parametrize("rate", RATES)
def test_torch_dropconnect_module(rate):
    layer = DropConnectLinear(30, 20, rate, generator=gen(6)).double()
    x = torch.cat([torch.eye(30, dtype=torch.float64), torch.randn(5, 30, dtype=torch.float64)])
    with torch.no_grad():
        out = layer(x)
        # the identity rows read the masked, rescaled weights back: one mask for the batch
        w_eff = (out[:30] - layer.bias).T
        mask = w_eff != 0
        assert torch.allclose(w_eff[mask], (layer.weight / (1 - rate))[mask])
        assert_binomial(int((~mask).sum()), mask.numel(), rate)
        ref, _ = dropconnect_forward(x[30:].numpy(), layer.weight.numpy().T, layer.bias.numpy(),
                                     rate, mask=mask.numpy().T)
        assert np.allclose(out[30:].numpy(), ref)
        layer.eval()
        assert torch.allclose(layer(x), nn.functional.linear(x, layer.weight, layer.bias))


def test_torch_dropconnect_gaussian_inference_agrees_with_numpy():
    rng = np.random.default_rng(4)
    x, W, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3)), rng.standard_normal(3)
    rate, n = 0.4, 200_000
    ref = dropconnect_gaussian_inference(x, W, b, rate, activation="relu", n_samples=n, rng=0)
    layer = DropConnectLinear(6, 3, rate, activation=torch.relu, inference="gaussian",
                              n_samples=n, generator=gen(1)).double().eval()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W.T))
        layer.bias.copy_(torch.from_numpy(b))
        got = layer(torch.from_numpy(x)).numpy()
    sd = np.sqrt((x @ W + b) ** 2 + rate / (1 - rate) * (x**2) @ (W**2))  # bounds sd of relu(u)
    assert np.all(np.abs(got - ref) <= Z * np.sqrt(2 / n) * sd)
    mean_rule = np.maximum(x @ W + b, 0)
    assert np.abs(got - mean_rule).max() > 0.05  # the non-linearity makes the rules differ
    layer.train()
    assert layer(torch.from_numpy(x)).shape == (4, 3)
    with pytest.raises(ValueError, match="inference"):
        DropConnectLinear(6, 3, 0.5, inference="moments")
    with pytest.raises(ValueError, match="rate"):
        DropConnectLinear(6, 3, 1.0, inference="gaussian")


# ---------------------------------------------------------------- DropBlock
def test_torch_dropblock_rate_one_drops_everything():
    x = torch.ones(3, 2, 4, 4, requires_grad=True)
    out = DropBlock2d(1.0, 2, generator=gen(0))(x)
    assert torch.isfinite(out).all() and torch.all(out == 0)
    out.sum().backward()
    assert torch.all(x.grad == 0)


def test_torch_dropblock_matches_numpy_given_seeds():
    g = np.random.default_rng(1)
    x = g.standard_normal((2, 3, 9, 8))
    seeds = g.random((2, 3, 7, 6)) < 0.15
    ref, cache = dropblock_forward(x, 0.3, 3, seeds=seeds)
    tx = torch.tensor(x, requires_grad=True)
    out = drop_block2d(tx, 0.3, 3, seeds=torch.tensor(seeds))
    assert np.allclose(out.detach().numpy(), ref)
    up = g.standard_normal(x.shape)
    out.backward(torch.tensor(up))
    assert np.allclose(tx.grad.numpy(), dropblock_backward(up, cache))


@pytest.mark.parametrize("rate", RATES)
def test_torch_dropblock_fraction(rate):
    hw, bs = 12, 3
    out = DropBlock2d(rate, bs, generator=gen(7))(torch.ones(50, 40, hw, hw, dtype=torch.float64))
    per_map = (out == 0).double().mean(dim=(2, 3)).flatten().numpy()
    expected = dropblock_expected_fraction(rate, bs, hw, hw)
    assert abs(per_map.mean() - expected) <= Z * per_map.std() / math.sqrt(per_map.size)
    kept = out[out != 0]
    assert torch.allclose(kept, torch.full_like(kept, out.numel() / kept.numel()))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_torch_dropblock_half_precision_past_the_float16_range(dtype):
    # 2 x 4 x 200 x 200 = 320,000 elements: a float16 count of the survivors overflows
    # (max 65,504; torchvision's drop_block2d then returns zeros), a bfloat16 one is rounded
    layer = DropBlock2d(0.3, 5, generator=gen(21))
    for _ in range(3):  # a rounded count is off by less than an ulp: three draws to see it
        out = layer(torch.ones(2, 4, 200, 200, dtype=dtype))
        assert out.dtype == dtype
        assert_dropblock_of_ones(out.float().numpy(), 0.3, 5, (2, 3), torch.finfo(dtype).eps)


def test_torch_dropblock_schedule_and_eval():
    layer = DropBlock2d(0.4, 3, schedule_steps=4, generator=gen(0))
    x = torch.ones(1, 1, 6, 6)
    rates = []
    for _ in range(5):
        rates.append(layer.current_rate)
        layer(x)
    assert np.allclose(rates, [0.0, 0.1, 0.2, 0.3, 0.4])
    assert layer.eval()(x) is x
    with pytest.raises(ValueError, match="block_size"):
        drop_block2d(x, 0.1, 7)


# ---------------------------------------------------------------- variational RNN
def test_torch_variational_rnn_without_dropout_is_nn_rnn():
    torch.manual_seed(0)
    ref = nn.RNN(3, 4, batch_first=True)
    ours = VariationalRNN(3, 4, rate=0.5, recurrent_rate=0.5)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, 3)
    assert torch.allclose(ours.eval()(x), ref(x)[0], atol=1e-6)


def test_torch_variational_rnn_matches_numpy_bptt():
    g = np.random.default_rng(2)
    n, t, d, h = 2, 5, 3, 4
    x, h0 = g.standard_normal((n, t, d)), g.standard_normal((n, h))
    Wih, Whh, b = g.standard_normal((h, d)) * 0.5, g.standard_normal((h, h)) * 0.5, g.standard_normal(h)
    masks = (g.random((n, d)) >= 0.3, g.random((n, h)) >= 0.4)
    ref, cache = rnn_forward(x, h0, Wih.T, Whh.T, b, rate=0.3, recurrent_rate=0.4, masks=masks)
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, h0, Wih, Whh, b)]
    out = variational_rnn(*tensors, rate=0.3, recurrent_rate=0.4,
                          masks=tuple(torch.tensor(m) for m in masks))
    assert np.allclose(out.detach().numpy(), ref)
    up = g.standard_normal(ref.shape)
    out.backward(torch.tensor(up))
    grads = rnn_backward(up, cache)
    for tensor, key, transpose in zip(tensors, ("x", "h0", "Wx", "Wh", "b"),
                                      (False, False, True, True, False), strict=True):
        got = tensor.grad.numpy()
        assert np.allclose(got.T if transpose else got, grads[key]), key


def test_torch_variational_rnn_masks_are_time_shared():
    layer = VariationalRNN(3, 4, rate=0.5, generator=gen(3))
    with torch.no_grad():
        layer.weight_hh_l0.zero_()
        x = torch.randn(50, 1, 3).repeat(1, 6, 1)
        out = layer(x)
    assert torch.allclose(out, out[:, :1].expand_as(out))


# ---------------------------------------------------------------- DropPath / stochastic depth
def torchvision_definition(x, p, mode, training, noise):
    """torchvision.ops.stochastic_depth, written from its documented definition,
    with the Bernoulli(1 - p) draw ``noise`` given."""
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    if survival > 0.0:
        noise = noise / survival
    return x * noise


@pytest.mark.parametrize("rate", RATES + [1.0])
@pytest.mark.parametrize("mode", ["row", "batch"])
def test_torch_stochastic_depth_definition(rate, mode):
    x = torch.rand(3000, 4, 2, dtype=torch.float64) + 0.5
    out = stochastic_depth(x, rate, mode, True, generator=gen(8))
    shape = (3000, 1, 1) if mode == "row" else (1, 1, 1)
    noise = (out[:, :1, :1] != 0).double() if mode == "row" else (out[:1, :1, :1] != 0).double()
    assert noise.shape == shape
    assert torch.allclose(out, torchvision_definition(x, rate, mode, True, noise))
    if mode == "row" and rate < 1:
        assert_binomial(int((noise == 0).sum()), 3000, rate)
    ref, _ = drop_path_forward(x.numpy(), rate, mode=mode, mask=noise.numpy().astype(bool))
    assert np.allclose(ref, out.numpy())


def test_torch_stochastic_depth_batch_mode_rate():
    g = gen(9)
    dropped = sum(int(stochastic_depth(torch.ones(4, 2), 0.2, "batch", generator=g).sum() == 0)
                  for _ in range(500))
    assert_binomial(dropped, 500, 0.2)


def test_torch_droppath_module_conventions():
    x = torch.randn(4, 3)
    assert DropPath(0.5).eval()(x) is x
    assert stochastic_depth(x, 0.0, "row") is x
    with pytest.raises(ValueError, match="mode"):
        DropPath(0.2, mode="col")
    with pytest.raises(ValueError, match=r"p=1\.5"):
        stochastic_depth(x, 1.5)
    out = DropPath(0.5, generator=gen(1))(x.double())
    assert out.dtype == torch.float64


# ---------------------------------------------------------------- variational RNN: bad shapes
def _rnn_args(n=2, t=5, d=3, h=4):
    g = gen(11)
    return (torch.randn(n, t, d, generator=g), torch.randn(h, d, generator=g),
            torch.randn(h, h, generator=g), torch.randn(h, generator=g))


@pytest.mark.parametrize(("what", "value", "message"), [
    ("masks", (torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)),
     r"masks\[0\] must have shape \(N, D\) = \(2, 3\); received masks\[0\] of shape \(2, 4\)"),
    # (1, H) would broadcast silently to one mask for the whole batch
    ("masks", (torch.ones(2, 3, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool)),
     r"masks\[1\] must have shape \(N, H\) = \(2, 4\); received masks\[1\] of shape \(1, 4\)"),
    ("masks", (torch.ones(2, 3, dtype=torch.bool),), r"masks must be a pair .* of length 1"),
    ("h0", torch.zeros(1, 4), r"h0 must have shape \(N, H\) = \(2, 4\); received h0 of shape \(1, 4\)"),
    ("h0", torch.zeros(2, 5), r"h0 must have shape \(N, H\) = \(2, 4\); received h0 of shape \(2, 5\)"),
    ("weight_ih", torch.zeros(4, 2), r"weight_ih must have shape \(H, D\) = \(4, 3\); received weight_ih"),
    ("weight_hh", torch.zeros(4, 3), r"weight_hh must have shape \(H, H\) = \(4, 4\); received weight_hh"),
    ("bias", torch.zeros(3), r"bias must have shape \(H,\) = \(4,\); received bias of shape \(3,\)"),
])
def test_torch_variational_rnn_checks_shapes(what, value, message):
    x, w_ih, w_hh, b = _rnn_args()
    kwargs = {"x": x, "h0": None, "weight_ih": w_ih, "weight_hh": w_hh, "bias": b,
              "rate": 0.3, "recurrent_rate": 0.3, "masks": None, what: value}
    with pytest.raises(ValueError, match=message):
        variational_rnn(**kwargs)


def test_torch_variational_rnn_h0_is_used():
    x, w_ih, w_hh, b = _rnn_args()
    h0 = torch.randn(2, 4, generator=gen(12))
    ref = nn.RNN(3, 4, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(w_ih), ref.weight_hh_l0.copy_(w_hh)
        ref.bias_ih_l0.copy_(b), ref.bias_hh_l0.zero_()
        expected = ref(x, h0.unsqueeze(0))[0]
    assert torch.allclose(variational_rnn(x, h0, w_ih, w_hh, b, training=False), expected, atol=1e-6)


# ---------------------------------------------------------------- conventions: rate 0 and rate 1
def test_torch_rate_zero_is_identity():
    x = torch.randn(3, 2, 6, 6, generator=gen(13))
    flat = x.flatten(1)
    for module in (nn.Dropout1d(0.0), nn.Dropout2d(0.0), nn.Dropout3d(0.0), nn.AlphaDropout(0.0),
                   GaussianDropout(0.0), DropBlock2d(0.0, 3), DropPath(0.0), DropPath(0.0, "batch")):
        inp = x[..., 0] if isinstance(module, nn.Dropout1d) else x
        inp = inp.unsqueeze(-1) if isinstance(module, nn.Dropout3d) else inp
        assert module.train()(inp) is inp, module
    assert gaussian_dropout(x, 0.0) is x
    assert drop_block2d(x, 0.0, 3) is x
    assert stochastic_depth(x, 0.0, "batch") is x
    # layers with weights compute their deterministic function
    dc = DropConnectLinear(72, 5, 0.0, activation=torch.tanh, generator=gen(0))
    with torch.no_grad():
        assert torch.equal(dc.train()(flat), torch.tanh(nn.functional.linear(flat, dc.weight, dc.bias)))
        assert torch.equal(dropconnect_linear(flat, dc.weight, dc.bias, 0.0, sampling="example"),
                           nn.functional.linear(flat, dc.weight, dc.bias))
        rnn = VariationalRNN(6, 4, rate=0.0, recurrent_rate=0.0, generator=gen(0))
        seq = x.flatten(1, 2)
        assert torch.equal(rnn.train()(seq), rnn.eval()(seq))
    assert rnn.generator.initial_seed() == 0 and torch.equal(rnn.generator.get_state(), gen(0).get_state())


def test_torch_rate_one_is_zeros_or_an_error():
    x = torch.randn(3, 2, 6, 6, generator=gen(14), requires_grad=True)
    for module in (nn.Dropout2d(1.0), nn.Dropout(1.0), DropBlock2d(1.0, 3), DropPath(1.0, "batch")):
        assert torch.all(module.train()(x) == 0), module
    assert torch.all(drop_block2d(x, 1.0, 6) == 0)
    # torch defines AlphaDropout(p=1) as zeros; the NumPy reference refuses rate=1
    assert torch.all(nn.AlphaDropout(1.0)(x) == 0)
    for make in (lambda: GaussianDropout(1.0), lambda: gaussian_dropout(x, 1.0)):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\); received rate=1\.0"):
            make()
    # DropConnect at rate 1 drops every weight: the output is activation(bias)
    flat = x.flatten(1)
    dc = DropConnectLinear(72, 5, 1.0, activation=torch.tanh, generator=gen(0))
    out = dc(flat)
    assert torch.isfinite(out).all() and torch.allclose(out, torch.tanh(dc.bias).expand(3, 5))
    out.sum().backward()
    assert torch.all(dc.weight.grad == 0) and torch.all(x.grad == 0)
    assert torch.equal(dropconnect_linear(flat, dc.weight, None, 1.0, sampling="example"),
                       torch.zeros(3, 5))
    # variational RNN with both rates 1: no input, no recurrence, h_t = tanh(b) at every step
    rnn = VariationalRNN(6, 4, rate=1.0, recurrent_rate=1.0, generator=gen(0))
    seq = x.detach().flatten(1, 2).requires_grad_()
    h = rnn(seq)
    b = rnn.bias_ih_l0 + rnn.bias_hh_l0
    assert torch.isfinite(h).all() and torch.allclose(h, torch.tanh(b).expand_as(h))
    h.sum().backward()
    assert torch.all(seq.grad == 0) and torch.all(rnn.weight_hh_l0.grad == 0)
