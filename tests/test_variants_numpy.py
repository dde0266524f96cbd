"""NumPy references of the dropout variants: statistics, gradients, conventions.

Statistical bounds are z = 5 standard errors (seeded, so deterministic; wide
enough that a correct implementation passes whatever the seed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlcourse.scratch import (
    AlphaDropout,
    DropBlock2D,
    DropConnect,
    DropPath,
    GaussianDropout,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    VariationalRNN,
    alpha_dropout_forward,
    drop_path_forward,
    dropblock_backward,
    dropblock_forward,
    dropconnect_backward,
    dropconnect_forward,
    dropconnect_gaussian_inference,
    gaussian_dropout_forward,
    linear_rate_schedule,
    rnn_backward,
    rnn_forward,
    spatial_dropout_forward,
)
from dlcourse.scratch.alpha import ALPHA_PRIME, alpha_dropout_affine
from dlcourse.scratch.dropblock import (
    blocks_from_seeds,
    dropblock_expected_fraction,
    dropblock_gamma,
)
from dlcourse.scratch.gradcheck import check_layer, numerical_gradient, relative_error
from dlcourse.scratch.recurrent import time_shared_dropout_forward

Z = 5.0
RATES = [0.2, 0.7]


def assert_binomial(k: int, n: int, p: float) -> None:
    """``k`` successes out of ``n`` is within Z standard deviations of ``n p``."""
    sd = math.sqrt(n * p * (1 - p))
    assert abs(k - n * p) <= Z * sd + 1, f"{k}/{n} vs p={p}"


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- spatial
SPATIAL = [(SpatialDropout1D, (40, 30, 5)), (SpatialDropout2D, (30, 20, 4, 3)),
           (SpatialDropout3D, (20, 15, 3, 2, 2))]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize(("cls", "shape"), SPATIAL)
def test_spatial_drops_whole_channels(cls, shape, data_format, rate):
    x = rng(1).uniform(0.5, 1.5, shape).astype(np.float32)
    if data_format == "channels_last":
        x = np.moveaxis(x, 1, -1).copy()
    layer = cls(rate, data_format=data_format, rng=2)
    out = layer(x)
    ratio = np.moveaxis(out / x, -1, 1) if data_format == "channels_last" else out / x
    per_channel = ratio.reshape(ratio.shape[0], ratio.shape[1], -1)
    # one value per (example, channel), shared by every spatial position
    assert np.allclose(per_channel, per_channel[..., :1], rtol=1e-6)
    values = per_channel[..., 0]
    kept = np.isclose(values, 1 / (1 - rate), rtol=1e-6)
    assert np.all(kept | (values == 0))
    assert_binomial(int((~kept).sum()), kept.size, rate)
    assert out.dtype == np.float32


def test_spatial_is_dropout_with_given_mask():
    x = rng(0).standard_normal((3, 4, 5, 5))
    mask = rng(1).random((3, 4, 1, 1)) > 0.5
    out, cache = spatial_dropout_forward(x, 0.5, mask=mask)
    assert np.array_equal(out, x * mask * 2.0)
    assert cache["mask"].shape == (3, 4, 1, 1) and cache["mask"].dtype == np.bool_


def test_spatial_errors_name_the_argument():
    with pytest.raises(ValueError, match="x must have 4 axes"):
        SpatialDropout2D(0.5)(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="data_format"):
        SpatialDropout2D(0.5, data_format="nchw")
    with pytest.raises(ValueError, match=r"rate=1\.5"):
        SpatialDropout1D(1.5)


# ---------------------------------------------------------------- Gaussian
@pytest.mark.parametrize("rate", RATES)
def test_gaussian_noise_moments(rate):
    n = 200_000
    out, cache = gaussian_dropout_forward(np.ones(n), rate, rng=3)
    sigma = math.sqrt(rate / (1 - rate))
    assert abs(out.mean() - 1.0) <= Z * sigma / math.sqrt(n)
    assert abs(out.std() - sigma) <= Z * sigma / math.sqrt(2 * n)
    assert np.array_equal(out, cache["noise"])


def test_gaussian_rate_one_is_an_error():
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\); received rate=1"):
        gaussian_dropout_forward(np.ones(3), 1.0)


# ---------------------------------------------------------------- alpha
@pytest.mark.parametrize("rate", RATES)
def test_alpha_dropout_keeps_standard_normal_moments(rate):
    n = 200_000
    x = rng(4).standard_normal(n)
    out, cache = alpha_dropout_forward(x, rate, rng=5)
    assert_binomial(int((~cache["mask"]).sum()), n, rate)
    m4 = np.mean(out**4)
    assert abs(out.mean()) <= Z / math.sqrt(n)
    assert abs(out.var() - 1.0) <= Z * math.sqrt(m4 / n)


def test_alpha_dropout_values():
    x = rng(0).standard_normal((50, 20))
    rate = 0.3
    out, cache = alpha_dropout_forward(x, rate, rng=1)
    a, b = alpha_dropout_affine(rate)
    m = cache["mask"]
    assert np.allclose(out[m], a * x[m] + b)
    assert np.allclose(out[~m], a * ALPHA_PRIME + b)
    with pytest.raises(ValueError, match="rate"):
        alpha_dropout_forward(x, 1.0)


# ---------------------------------------------------------------- DropConnect
def _linear(seed=0, n=6, d=5, h=4):
    g = rng(seed)
    return g.standard_normal((n, d)), g.standard_normal((d, h)), g.standard_normal(h)


@pytest.mark.parametrize("rate", RATES)
def test_dropconnect_masks_weights(rate):
    x, W, b = _linear()
    u, cache = dropconnect_forward(x, W, b, rate, rng=1)
    m = cache["mask"]
    assert m.shape == W.shape
    assert np.allclose(u, x @ (W * m) / (1 - rate) + b)
    # per example: one mask per row
    u, cache = dropconnect_forward(x, W, b, rate, rng=1, sampling="example")
    m = cache["mask"]
    assert m.shape == (x.shape[0], *W.shape)
    rows = [x[i] @ (W * m[i]) / (1 - rate) + b for i in range(x.shape[0])]
    assert np.allclose(u, np.stack(rows))
    big = dropconnect_forward(np.ones((50, 40)), np.ones((40, 30)), np.zeros(30), rate,
                              rng=2, sampling="example")[1]["mask"]
    assert_binomial(int((~big).sum()), big.size, rate)


@pytest.mark.parametrize("rate", RATES)
def test_dropconnect_mean_and_variance(rate):
    """Over masks, u has mean x W + b and variance (rate/keep)(x*x)(W*W): the
    moments the Gaussian inference matches."""
    _, W, b = _linear(1, d=10, h=3)
    x1 = rng(2).standard_normal((1, 10))
    n = 40_000
    u, _ = dropconnect_forward(np.repeat(x1, n, axis=0), W, b, rate, rng=3, sampling="example")
    mean = (x1 @ W + b)[0]
    var = (rate / (1 - rate) * (x1**2) @ (W**2))[0]
    assert np.all(np.abs(u.mean(0) - mean) <= Z * np.sqrt(var / n))
    m4 = np.mean((u - mean) ** 4, axis=0)
    assert np.all(np.abs(u.var(0) - var) <= Z * np.sqrt((m4 - var**2) / n))


def test_dropconnect_gaussian_inference_matches_closed_form():
    x, W, b = _linear(3, n=4, d=6, h=3)
    rate, n = 0.4, 100_000
    got = dropconnect_gaussian_inference(x, W, b, rate, activation="relu", n_samples=n, rng=0)
    mu = x @ W + b
    s = np.sqrt(rate / (1 - rate) * (x**2) @ (W**2))
    from math import erf
    phi = np.exp(-0.5 * (mu / s) ** 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(erf)(mu / s / math.sqrt(2)))
    expected = mu * cdf + s * phi  # E[relu(u)], u ~ N(mu, s^2)
    assert np.all(np.abs(got - expected) <= Z * np.sqrt(mu**2 + s**2) / math.sqrt(n))
    linear = dropconnect_gaussian_inference(x, W, b, rate, activation="linear", n_samples=n, rng=0)
    assert np.all(np.abs(linear - mu) <= Z * s / math.sqrt(n))


def test_dropconnect_layer_modes():
    layer = DropConnect(5, 4, 0.5, activation="relu", inference="gaussian", n_samples=20_000, rng=0)
    x = rng(1).standard_normal((3, 5)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32 and out.shape == (3, 4)
    W, b = layer.params["W"], layer.params["b"]
    mean_rule = DropConnect(5, 4, 0.5, activation="relu", rng=0).eval()
    assert np.allclose(mean_rule(x), np.maximum(x @ W + b, 0), atol=1e-6)
    gauss = layer.eval()(x)
    assert np.all(gauss >= np.maximum(x @ W + b, 0) - 0.05)  # Jensen: E relu(u) >= relu(E u)
    with pytest.raises(RuntimeError):
        layer.backward(np.ones((3, 4)))
    with pytest.raises(ValueError, match="sampling"):
        DropConnect(5, 4, 0.5, sampling="layer")


@pytest.mark.parametrize("sampling", ["batch", "example"])
def test_dropconnect_backward_zero_on_dropped_weights(sampling):
    x, W, b = _linear()
    u, cache = dropconnect_forward(x, W, b, 0.5, rng=0, sampling=sampling)
    dx, dW, db = dropconnect_backward(np.ones_like(u), cache)
    if sampling == "batch":
        assert np.all(dW[~cache["mask"]] == 0)
    else:
        assert np.all(dW[~cache["mask"].any(axis=0)] == 0)


# ---------------------------------------------------------------- DropBlock
def _blocks_are_whole(drop: np.ndarray, bs: int) -> bool:
    """Every dropped pixel lies in a fully dropped bs x bs window inside the map."""
    win = np.lib.stride_tricks.sliding_window_view(drop, (bs, bs), axis=(2, 3)).all(axis=(-1, -2))
    return np.array_equal(blocks_from_seeds(win, bs), drop)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("bs", [1, 3])
def test_dropblock_structure_and_scale(rate, bs):
    x = rng(0).uniform(0.5, 1.5, (4, 3, 12, 10))
    out, cache = dropblock_forward(x, rate, bs, rng=1)
    keep = cache["mask"]
    assert _blocks_are_whole(~keep, bs)
    scale = keep.size / keep.sum()
    assert np.allclose(out, x * keep * scale)
    assert cache["seeds"].shape == (4, 3, 12 - bs + 1, 10 - bs + 1)


def test_dropblock_gamma_formula():
    for rate, bs, h, w in [(0.1, 3, 16, 16), (0.2, 5, 12, 20), (0.7, 1, 7, 9)]:
        g = dropblock_gamma(rate, bs, h, w)
        # expected number of dropped pixels, overlaps counted twice, equals rate * H * W
        assert math.isclose(g * bs * bs * (h - bs + 1) * (w - bs + 1), rate * h * w)


@pytest.mark.parametrize(("rate", "bs", "hw"), [(0.2, 3, 12), (0.7, 3, 12), (0.2, 5, 16)])
def test_dropblock_fraction_within_stated_tolerance(rate, bs, hw):
    expected = dropblock_expected_fraction(rate, bs, hw, hw)
    r_prime = bs * bs * dropblock_gamma(rate, bs, hw, hw)
    assert rate * (1 - r_prime / 2) <= expected <= rate  # the docstring's tolerance
    _, cache = dropblock_forward(np.ones((50, 40, hw, hw)), rate, bs, rng=7)
    per_map = 1.0 - cache["mask"].mean(axis=(2, 3)).ravel()  # iid across maps
    se = per_map.std() / math.sqrt(per_map.size)
    assert abs(per_map.mean() - expected) <= Z * se


@pytest.mark.parametrize(("bs", "hw"), [(2, 4), (3, 12), (1, 5)])
def test_dropblock_rate_one_drops_everything(bs, hw):
    assert dropblock_gamma(1.0, bs, hw, hw) == 1.0
    assert dropblock_expected_fraction(1.0, bs, hw, hw) == 1.0
    with np.errstate(all="raise"):
        out, cache = dropblock_forward(np.ones((2, 3, hw, hw), np.float32), 1.0, bs, rng=0)
    assert out.dtype == np.float32 and np.all(out == 0) and cache["scale"] == 0.0
    assert np.all(dropblock_backward(np.ones_like(out), cache) == 0)


def test_dropblock_channels_last_matches_channels_first():
    x = rng(0).standard_normal((2, 3, 8, 8))
    seeds = rng(1).random((2, 3, 6, 6)) < 0.1
    first, _ = dropblock_forward(x, 0.3, 3, seeds=seeds)
    last, _ = dropblock_forward(np.moveaxis(x, 1, -1), 0.3, 3, seeds=seeds, data_format="channels_last")
    assert np.allclose(np.moveaxis(last, -1, 1), first)


def test_dropblock_block_as_large_as_map_drops_all_or_nothing():
    out, cache = dropblock_forward(np.ones((200, 1, 5, 5)), 0.5, 5, rng=0)
    per_map = cache["mask"].reshape(200, -1)
    assert np.all(per_map.all(axis=1) | ~per_map.any(axis=1))


def test_dropblock_schedule():
    assert linear_rate_schedule(0, 10, 0.3) == 0.0
    assert math.isclose(linear_rate_schedule(5, 10, 0.3), 0.15)
    assert linear_rate_schedule(25, 10, 0.3) == 0.3
    layer = DropBlock2D(0.4, 3, schedule_steps=4, rng=0)
    x = np.ones((1, 1, 6, 6))
    rates = []
    for _ in range(6):
        rates.append(layer.current_rate)
        layer(x)
    assert np.allclose(rates, [0.0, 0.1, 0.2, 0.3, 0.4, 0.4])
    layer.eval()(x)
    assert layer.step == 6  # inference is not a training step
    with pytest.raises(ValueError, match="block_size"):
        dropblock_forward(x, 0.1, 7)


# ---------------------------------------------------------------- variational RNN
def _rnn_params(d=3, h=4, seed=0):
    g = rng(seed)
    return g.standard_normal((d, h)) * 0.5, g.standard_normal((h, h)) * 0.5, g.standard_normal(h) * 0.1


def test_rnn_input_mask_is_shared_across_time():
    Wx, _, _ = _rnn_params()
    x = np.repeat(rng(1).standard_normal((50, 1, 3)), 6, axis=1)  # same input at every step
    h, cache = rnn_forward(x, None, Wx, np.zeros((4, 4)), np.zeros(4), rate=0.5, rng=2)
    assert np.allclose(h, h[:, :1])  # no recurrence: identical steps iff one mask
    assert_binomial(int((~cache["masks"][0]).sum()), 150, 0.5)


def test_rnn_recurrent_mask_is_shared_across_time():
    Wx, Wh, b = _rnn_params()
    x = rng(1).standard_normal((1, 8, 3))
    h, cache = rnn_forward(x, None, Wx, Wh, b, recurrent_rate=0.5, rng=3)
    g = rnn_backward(np.ones_like(h), cache)
    dropped = ~cache["masks"][1][0]
    assert dropped.any() and not dropped.all()
    # a dropped state unit never feeds the recurrence, at any step
    assert np.all(g["Wh"][dropped] == 0)


def test_rnn_backward_through_time_gradcheck():
    Wx, Wh, b = _rnn_params()
    g = rng(5)
    x, h0 = g.standard_normal((2, 5, 3)), g.standard_normal((2, 4))
    _, cache = rnn_forward(x, h0, Wx, Wh, b, rate=0.3, recurrent_rate=0.4, rng=6)
    masks = cache["masks"]
    up = g.standard_normal((2, 5, 4))

    grads = rnn_backward(up, cache)
    args = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "b": b}

    def f(_: np.ndarray) -> float:  # numerical_gradient perturbs the arrays in args in place
        h, _ = rnn_forward(args["x"], args["h0"], args["Wx"], args["Wh"], args["b"],
                           rate=0.3, recurrent_rate=0.4, masks=masks)
        return float(np.sum(h * up))

    for name, value in args.items():
        assert relative_error(grads[name], numerical_gradient(f, value)) < 1e-6, name


def test_time_shared_dropout_noise_shape():
    out, cache = time_shared_dropout_forward(np.ones((4, 7, 5)), 0.5, rng=0)
    assert cache["mask"].shape == (4, 1, 5)
    assert np.all(out == out[:, :1])


# ---------------------------------------------------------------- DropPath
@pytest.mark.parametrize("rate", RATES)
def test_drop_path_row_mode(rate):
    x = rng(0).uniform(0.5, 1.5, (4000, 3, 2))
    out, cache = drop_path_forward(x, rate, rng=1)
    dropped = np.all(out == 0, axis=(1, 2))
    assert np.allclose(out[~dropped], x[~dropped] / (1 - rate))
    assert_binomial(int(dropped.sum()), 4000, rate)
    assert cache["mask"].shape == (4000, 1, 1)


@pytest.mark.parametrize("rate", RATES)
def test_drop_path_batch_mode(rate):
    g = rng(2)
    x = np.ones((8, 3))
    dropped = 0
    for _ in range(400):
        out, cache = drop_path_forward(x, rate, mode="batch", rng=g)
        assert cache["mask"].shape == (1, 1)
        assert np.all(out == 0) or np.allclose(out, 1 / (1 - rate))
        dropped += int(np.all(out == 0))
    assert_binomial(dropped, 400, rate)


def test_drop_path_rate_one_and_errors():
    with np.errstate(all="raise"):
        out, _ = drop_path_forward(np.ones((3, 2)), 1.0, rng=0)
    assert np.all(out == 0)
    with pytest.raises(ValueError, match="mode"):
        DropPath(0.1, mode="col")


# ---------------------------------------------------------------- shared conventions
LAYERS = {
    "spatial1d": (lambda: SpatialDropout1D(0.3, rng=0), (3, 4, 5)),
    "spatial2d_last": (lambda: SpatialDropout2D(0.3, data_format="channels_last", rng=0), (2, 4, 4, 3)),
    "spatial3d": (lambda: SpatialDropout3D(0.3, rng=0), (2, 3, 2, 3, 2)),
    "gaussian": (lambda: GaussianDropout(0.3, rng=0), (4, 5)),
    "alpha": (lambda: AlphaDropout(0.3, rng=0), (4, 5)),
    "dropconnect_batch": (lambda: DropConnect(5, 3, 0.4, activation="tanh", rng=0), (4, 5)),
    "dropconnect_example": (lambda: DropConnect(5, 3, 0.4, activation="sigmoid", sampling="example", rng=0), (4, 5)),
    "dropconnect_relu": (lambda: DropConnect(5, 3, 0.4, activation="relu", rng=0), (4, 5)),
    "dropblock": (lambda: DropBlock2D(0.3, 3, rng=0), (2, 2, 6, 5)),
    "dropblock_last": (lambda: DropBlock2D(0.3, 2, data_format="channels_last", rng=0), (2, 5, 6, 2)),
    "rnn": (lambda: VariationalRNN(3, 4, rate=0.3, recurrent_rate=0.4, rng=0), (2, 5, 3)),
    "droppath_row": (lambda: DropPath(0.5, rng=0), (6, 3, 2)),
    "droppath_batch": (lambda: DropPath(0.3, mode="batch", rng=1), (6, 3)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_gradient_check(name):
    make, shape = LAYERS[name]
    errors = check_layer(make(), rng(1).standard_normal(shape), rng=2)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("name", list(LAYERS))
def test_dtype_preserved_and_input_untouched(name):
    make, shape = LAYERS[name]
    x = rng(3).standard_normal(shape).astype(np.float32)
    before = x.copy()
    layer = make()
    out = layer(x)
    assert out.dtype == np.float32 and out.shape[:-1] == x.shape[:-1]
    dx = layer.backward(np.ones_like(out))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert np.array_equal(x, before)


@pytest.mark.parametrize("name", [n for n in LAYERS if not n.startswith(("dropconnect", "rnn"))])
def test_eval_is_identity(name):
    make, shape = LAYERS[name]
    x = rng(4).standard_normal(shape)
    layer = make().eval()
    assert np.array_equal(layer(x), x)
    assert np.array_equal(layer.backward(np.ones(shape)), np.ones(shape))


def test_eval_rnn_is_the_deterministic_rnn():
    layer = VariationalRNN(3, 4, rate=0.5, recurrent_rate=0.5, rng=0).eval()
    x = rng(1).standard_normal((2, 4, 3))
    p = layer.params
    expected, _ = rnn_forward(x, None, p["Wx"], p["Wh"], p["b"], training=False)
    assert np.array_equal(layer(x), expected)
    out, _ = rnn_forward(x, None, p["Wx"], p["Wh"], p["b"], rate=0.0, recurrent_rate=0.0, rng=0)
    assert np.allclose(out, expected)


@pytest.mark.parametrize("make", [
    lambda r: SpatialDropout2D(r), lambda r: GaussianDropout(r), lambda r: AlphaDropout(r),
    lambda r: DropConnect(2, 2, r), lambda r: DropBlock2D(r, 2), lambda r: DropPath(r),
    lambda r: VariationalRNN(2, 2, rate=r),
])
def test_bad_rate_is_named(make):
    with pytest.raises(ValueError, match=r"rate.*received rate=-0\.1"):
        make(-0.1)
    with pytest.raises(TypeError, match="rate"):
        make("0.5")


# ---------------------------------------------------------------- rate 0 and rate 1
# masking variants: rate 0 is the identity (forward and backward), rate 1 gives zeros
MASKING = {
    "spatial1d": (lambda r: SpatialDropout1D(r, rng=0), (3, 4, 5)),
    "spatial1d_last": (lambda r: SpatialDropout1D(r, data_format="channels_last", rng=0), (3, 5, 4)),
    "spatial2d": (lambda r: SpatialDropout2D(r, rng=0), (2, 3, 4, 4)),
    "spatial2d_last": (lambda r: SpatialDropout2D(r, data_format="channels_last", rng=0), (2, 4, 4, 3)),
    "spatial3d": (lambda r: SpatialDropout3D(r, rng=0), (2, 3, 2, 3, 2)),
    "spatial3d_last": (lambda r: SpatialDropout3D(r, data_format="channels_last", rng=0), (2, 2, 3, 2, 3)),
    "dropblock": (lambda r: DropBlock2D(r, 3, rng=0), (2, 2, 6, 5)),
    "dropblock_last": (lambda r: DropBlock2D(r, 2, data_format="channels_last", rng=0), (2, 5, 6, 2)),
    "droppath_row": (lambda r: DropPath(r, rng=0), (6, 3, 2)),
    "droppath_batch": (lambda r: DropPath(r, mode="batch", rng=0), (6, 3)),
}
# multiplicative-noise variants: rate 0 is the identity, rate 1 cannot work
NOISE = {
    "gaussian": (lambda r: GaussianDropout(r, rng=0), (4, 5)),
    "alpha": (lambda r: AlphaDropout(r, rng=0), (4, 5)),
}


@pytest.mark.parametrize("name", [*MASKING, *NOISE])
def test_rate_zero_is_identity_in_training(name):
    make, shape = {**MASKING, **NOISE}[name]
    x = rng(5).standard_normal(shape).astype(np.float32)
    layer = make(0.0).train()
    out = layer(x)
    assert out.dtype == x.dtype and np.array_equal(out, x)
    dout = rng(6).standard_normal(shape).astype(np.float32)
    assert np.array_equal(layer.backward(dout), dout)


def test_rate_zero_functional_forms_are_identity():
    x = rng(7).standard_normal((2, 3, 6, 6))
    seq = x.reshape(2, 3, 36)
    assert np.array_equal(spatial_dropout_forward(x, 0.0, rng=0)[0], x)
    assert np.array_equal(gaussian_dropout_forward(x, 0.0, rng=0)[0], x)
    assert np.array_equal(alpha_dropout_forward(x, 0.0, rng=0)[0], x)
    assert np.array_equal(dropblock_forward(x, 0.0, 3, rng=0)[0], x)
    assert np.array_equal(drop_path_forward(x, 0.0, mode="batch", rng=0)[0], x)
    assert np.array_equal(time_shared_dropout_forward(seq, 0.0, rng=0)[0], seq)


def test_rate_zero_weight_layers_compute_their_deterministic_function():
    x, W, b = _linear(4)
    for sampling in ("batch", "example"):
        u, _ = dropconnect_forward(x, W, b, 0.0, rng=0, sampling=sampling)
        assert np.allclose(u, x @ W + b, rtol=1e-12)
    layer = DropConnect(5, 4, 0.0, activation="tanh", rng=0)
    xf = x.astype(np.float32)
    assert np.array_equal(layer.train()(xf), layer.eval()(xf))
    Wx, Wh, bh = _rnn_params()
    seq = rng(8).standard_normal((2, 5, 3))
    det, _ = rnn_forward(seq, None, Wx, Wh, bh, training=False)
    h, _ = rnn_forward(seq, None, Wx, Wh, bh, rate=0.0, recurrent_rate=0.0, rng=0)
    assert np.allclose(h, det, rtol=1e-12)


@pytest.mark.parametrize("name", list(MASKING))
def test_rate_one_gives_zeros_forward_and_backward(name):
    make, shape = MASKING[name]
    x = rng(9).standard_normal(shape).astype(np.float32)
    layer = make(1.0).train()
    with np.errstate(all="raise"):  # never a division by zero
        out = layer(x)
        dx = layer.backward(np.ones_like(out))
    assert out.dtype == np.float32 and np.all(out == 0) and np.all(dx == 0)


def test_rate_one_functional_masking_forms_give_zeros():
    x = rng(10).standard_normal((2, 3, 6, 6))
    with np.errstate(all="raise"):
        outs = [spatial_dropout_forward(x, 1.0, rng=0)[0], dropblock_forward(x, 1.0, 6, rng=0)[0],
                drop_path_forward(x, 1.0, mode="batch", rng=0)[0],
                time_shared_dropout_forward(x.reshape(2, 3, 36), 1.0, rng=0)[0]]
    assert all(np.all(o == 0) for o in outs)


@pytest.mark.parametrize("name", list(NOISE))
def test_rate_one_noise_variants_raise_naming_the_value(name):
    make, _ = NOISE[name]
    forward = {"gaussian": gaussian_dropout_forward, "alpha": alpha_dropout_forward}[name]
    message = r"rate must be in \[0, 1\); received rate=1"
    with pytest.raises(ValueError, match=message):
        make(1.0)
    with pytest.raises(ValueError, match=message):
        forward(np.ones(3), 1.0)


def test_rate_one_weight_layers():
    x, W, b = _linear(5)
    for sampling in ("batch", "example"):
        with np.errstate(all="raise"):
            u, cache = dropconnect_forward(x, W, b, 1.0, rng=0, sampling=sampling)
            dx, dW, db = dropconnect_backward(np.ones_like(u), cache)
        # every weight dropped: the pre-activation is the (never dropped) bias
        assert np.array_equal(u, np.broadcast_to(b, u.shape))
        assert np.all(dx == 0) and np.all(dW == 0) and np.allclose(db, x.shape[0])
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\); received rate=1"):
        dropconnect_gaussian_inference(x, W, b, 1.0, activation="relu", rng=0)
    layer = DropConnect(5, 4, 1.0, activation="tanh", rng=0)
    layer.params["b"][...] = b
    assert np.allclose(layer(x), np.tanh(b) * np.ones((x.shape[0], 1)), atol=1e-6)
    # variational RNN with both rates 1: no input, no recurrence, h_t = tanh(b) at every step
    Wx, Wh, bh = _rnn_params()
    seq = rng(11).standard_normal((2, 5, 3))
    with np.errstate(all="raise"):
        h, cache = rnn_forward(seq, None, Wx, Wh, bh, rate=1.0, recurrent_rate=1.0, rng=0)
        grads = rnn_backward(np.ones_like(h), cache)
    assert np.allclose(h, np.tanh(bh))
    assert np.all(grads["x"] == 0) and np.all(grads["Wx"] == 0) and np.all(grads["Wh"] == 0)
