"""Dropout from scratch: statistics, properties, conventions and error messages.

The statistical tests use asymmetric rates (0.2 and 0.7) so that confusing
the drop rate with the keep probability fails them, and compare the fraction
dropped with a binomial confidence bound (5 standard deviations: a correct
implementation fails with probability below 1e-6, the seeds are fixed anyway).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dlcourse._checks import ArgumentTypeError
from dlcourse.scratch import (
    Dropout,
    bernoulli_keep_mask,
    dropout_backward,
    dropout_forward,
    fast_keep_mask,
    resolve_noise_shape,
)

RATES = [0.2, 0.7]
N_STAT = 2**20
Z = 5.0


def binomial_bound(p: float, n: int, z: float = Z) -> float:
    """Half-width of a z-sigma confidence interval of a binomial fraction."""
    return z * math.sqrt(p * (1 - p) / n)


def positive_input(n: int, dtype=np.float32, seed: int = 123) -> np.ndarray:
    """Inputs that are never zero, so that ``out == 0`` means 'dropped'."""
    return (1.0 + np.random.default_rng(seed).random(n)).astype(dtype)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("draw", ["fast", "readable"])
@pytest.mark.parametrize("rate", RATES)
def test_fraction_dropped_within_binomial_bound(rate, draw):
    x = positive_input(N_STAT)
    out, cache = dropout_forward(x, rate, rng=0, draw=draw)
    dropped = np.mean(out == 0)
    assert abs(dropped - rate) <= binomial_bound(rate, N_STAT)
    assert np.array_equal(out == 0, ~cache["mask"])


@pytest.mark.parametrize("rate", RATES)
def test_survivors_scaled_by_exactly_one_over_keep(rate):
    keep = 1.0 - rate
    for dtype in (np.float32, np.float64):
        x = positive_input(10_000, dtype)
        out, cache = dropout_forward(x, rate, rng=1)
        kept = cache["mask"]
        assert out.dtype == dtype
        # the scale is 1/keep rounded once to the dtype, applied by one multiplication
        assert np.array_equal(out[kept], x[kept] * dtype(1.0 / keep))
        np.testing.assert_allclose(out[kept], x[kept] / keep, rtol=2 * np.finfo(dtype).eps)
        assert np.all(out[~kept] == 0)


@pytest.mark.parametrize("rate", RATES)
def test_mean_preserved(rate):
    keep = 1.0 - rate
    x = np.full(N_STAT, 3.0)
    out, _ = dropout_forward(x, rate, rng=2)
    # each output is 3/keep with probability keep, else 0: variance 9 * rate / keep
    std_of_mean = math.sqrt(9.0 * rate / keep / N_STAT)
    assert abs(out.mean() - 3.0) <= Z * std_of_mean


@pytest.mark.parametrize("rate", RATES)
def test_backward_zero_exactly_where_forward_dropped(rate):
    keep = 1.0 - rate
    x = positive_input(50_000, np.float64)
    out, cache = dropout_forward(x, rate, rng=3)
    dout = positive_input(50_000, np.float64, seed=7)
    dx = dropout_backward(dout, cache)
    assert np.array_equal(dx == 0, out == 0)
    kept = out != 0
    assert np.array_equal(dx[kept], dout[kept] * (1.0 / keep))


@pytest.mark.parametrize("rate", RATES)
def test_layer_fraction_and_fresh_masks(rate):
    layer = Dropout(rate, rng=4)
    x = positive_input(N_STAT)
    first = layer(x)
    second = layer(x)
    for out in (first, second):
        assert abs(np.mean(out == 0) - rate) <= binomial_bound(rate, N_STAT)
    # one generator reused: two calls draw two different masks
    assert not np.array_equal(first == 0, second == 0)


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
@pytest.mark.parametrize("rate", RATES)
def test_both_modes_preserve_the_expectation(rate, mode):
    """E[training output] equals the inference output, elementwise, in both forms."""
    x = np.linspace(-2.0, 3.0, 20)
    n_draws = 20_000
    gen = np.random.default_rng(5)
    batch = np.broadcast_to(x, (n_draws, x.size))
    train_out, _ = dropout_forward(batch, rate, rng=gen, mode=mode)
    infer_out, _ = dropout_forward(x, rate, training=False, mode=mode)
    keep = 1.0 - rate
    scale = 1.0 / keep if mode == "inverted" else 1.0
    # per element: scale*x with probability keep, else 0
    std = np.abs(x) * scale * math.sqrt(keep * rate / n_draws)
    assert np.all(np.abs(train_out.mean(axis=0) - infer_out) <= Z * std + 1e-12)
    expected_inference = x if mode == "inverted" else keep * x
    np.testing.assert_allclose(infer_out, expected_inference, rtol=1e-15)


def test_weight_scaling_trains_without_scaling():
    x = positive_input(1000, np.float64)
    out, cache = dropout_forward(x, 0.7, rng=6, mode="weight_scaling")
    kept = cache["mask"]
    assert np.array_equal(out[kept], x[kept])
    dx = dropout_backward(np.ones_like(x), cache)
    assert np.array_equal(dx, kept.astype(np.float64))


# --------------------------------------------------------------------------- fast vs readable draws


@pytest.mark.parametrize("rate", RATES)
def test_fast_draw_is_the_default_and_within_binomial_bound(rate):
    mask = fast_keep_mask((N_STAT,), rate, np.random.default_rng(8))
    assert mask.dtype == np.bool_ and mask.shape == (N_STAT,)
    assert abs(np.mean(~mask) - rate) <= binomial_bound(rate, N_STAT)
    _, cache = dropout_forward(np.ones(N_STAT, np.float32), rate, rng=8)
    assert np.array_equal(cache["mask"], mask)


@pytest.mark.parametrize("rate", RATES)
def test_readable_draw_stays_available_and_is_its_definition(rate):
    mask = bernoulli_keep_mask((1000,), rate, np.random.default_rng(9))
    expected = np.random.default_rng(9).random(1000, dtype=np.float32) >= np.float32(rate)
    assert np.array_equal(mask, expected)
    _, cache = dropout_forward(np.ones(1000), rate, rng=9, draw="readable")
    assert np.array_equal(cache["mask"], mask)
    layer = Dropout(rate, rng=9, draw="readable")
    layer(np.ones(1000))
    assert np.array_equal(layer.cache["mask"], mask)


class _EnumeratingRng:
    """Stands in for a Generator: its 64-bit words hold every 16-bit value once."""

    def integers(self, low, high, size, dtype):
        assert (low, high, dtype) == (0, 2**64, np.uint64)
        words = np.arange(2**16, dtype=np.uint16).view(np.uint64)
        assert size == words.size
        return words


@pytest.mark.parametrize("rate", [0.2, 0.7, 0.5, 0.1, 0.9, 1 / 3, 0.00391])
def test_fast_draw_bias_is_within_the_documented_bound(rate):
    """Over all 2**16 equally likely draws the drop probability is T/2**16, |T/2**16 - rate| <= 2**-17."""
    mask = fast_keep_mask((2**16,), rate, _EnumeratingRng())
    exact_drop_probability = np.mean(~mask)
    assert abs(exact_drop_probability - rate) <= 2.0**-17
    if rate in (0.5,):
        assert exact_drop_probability == rate


def test_fast_draw_uses_more_bits_for_extreme_rates():
    rate = 1e-3  # 16 bits would round it to 66/65536 (relative error 0.7 %)
    n = 2**22
    mask = fast_keep_mask((n,), rate, np.random.default_rng(10))
    assert abs(np.mean(~mask) - rate) <= binomial_bound(rate, n)
    mask = fast_keep_mask((n,), 1 - rate, np.random.default_rng(11))
    assert abs(np.mean(mask) - rate) <= binomial_bound(rate, n)


class _FixedWordsRng:
    """Stands in for a Generator: returns the given 64-bit words."""

    def __init__(self, words):
        self.words = words

    def integers(self, low, high, size, dtype):
        assert size == self.words.size
        return self.words


@pytest.mark.parametrize("rate", [1e-3, 1 - 1e-3, 2.0**-9])
def test_fast_draw_thresholds_at_32_bit_resolution_for_extreme_rates(rate):
    """Drop exactly the 32-bit values below T = round(rate * 2**32): P(drop) = T / 2**32."""
    t = round(rate * 2**32)
    values = np.array([t - 1, t, 0, 2**32 - 1], dtype=np.uint32)
    mask = fast_keep_mask((4,), rate, _FixedWordsRng(values.view(np.uint64)))
    assert mask.tolist() == [False, True, False, True]
    assert abs(t / 2**32 - rate) <= 2.0**-33


@pytest.mark.parametrize("rate", [float(np.nextafter(1.0, 0.0)), 1 - 1e-12, 1 - 2.0**-34,
                                  1e-12, 2.0**-40])
def test_rates_next_to_zero_and_one_are_defined(rate):
    """A rate within 2**-33 of 1 rounds the 32-bit threshold to 2**32: capped, not an overflow."""
    x = np.ones(1000, dtype=np.float32)
    with np.errstate(all="raise"):
        out, cache = dropout_forward(x, rate, rng=0)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    if rate > 0.5:
        assert not cache["mask"].any()  # P(kept) <= 2**-32 per element
        assert not out.any()
    else:
        assert cache["mask"].all() and np.allclose(out, 1.0)
    values = np.array([0, 2**32 - 2, 2**32 - 1, 5], dtype=np.uint32)
    mask = fast_keep_mask((4,), rate, _FixedWordsRng(values.view(np.uint64)))
    if rate > 0.5:
        assert mask.tolist() == [False, False, True, False]  # only the top value survives
    else:
        assert mask.all()


def test_fast_draw_edges_and_shapes():
    gen = np.random.default_rng(12)
    assert fast_keep_mask((3, 4), 0.0, gen).all()
    assert not fast_keep_mask((3, 4), 1.0, gen).any()
    for shape in [(), (0,), (1,), (5,), (3, 7), (2, 3, 5)]:
        assert fast_keep_mask(shape, 0.3, gen).shape == shape


# --------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_eval_mode_and_rate_zero_return_the_input(mode):
    x = positive_input(100)
    out, cache = dropout_forward(x, 0.7, training=False, mode=mode)
    if mode == "inverted":
        assert out is x
    else:
        assert out.dtype == x.dtype
        assert np.array_equal(out, x * np.float32(0.3))
    out, _ = dropout_forward(x, 0.0, rng=0, mode=mode)
    assert out is x
    dout = positive_input(100, seed=3)
    assert np.array_equal(dropout_backward(dout, dropout_forward(x, 0.0)[1]), dout)
    layer = Dropout(0.7, rng=0).eval()
    assert layer(x) is x
    assert np.array_equal(layer.backward(dout), dout)


def test_rate_one_gives_zeros_without_division_by_zero():
    x = np.array([1.0, -2.0, np.inf, np.nan], dtype=np.float32)
    with np.errstate(all="raise"):
        out, cache = dropout_forward(x, 1.0, rng=0)
        dx = dropout_backward(np.ones_like(x), cache)
    assert out.dtype == np.float32 and np.array_equal(out, np.zeros(4, np.float32))
    assert np.array_equal(dx, np.zeros(4, np.float32))
    assert not cache["mask"].any()
    out, _ = dropout_forward(x[:2], 1.0, training=False, mode="weight_scaling")
    assert np.array_equal(out, np.zeros(2, np.float32))
    assert np.array_equal(Dropout(1.0, rng=0)(np.ones((3, 3))), np.zeros((3, 3)))


def test_integer_input_is_converted_not_truncated():
    x = np.arange(1, 101)
    out, cache = dropout_forward(x, 0.2, rng=0)
    assert out.dtype == np.float64
    kept = cache["mask"]
    np.testing.assert_allclose(out[kept], x[kept] * 1.25)  # 1.25 is not an integer
    assert np.any(out[kept] != np.floor(out[kept]))
    out, _ = dropout_forward([True, False, True], 0.5, training=False)
    assert out.dtype == np.float64


def test_input_and_upstream_gradient_never_modified():
    for mode in ("inverted", "weight_scaling"):
        for training in (True, False):
            x = positive_input(1000)
            x_before = x.copy()
            out, cache = dropout_forward(x, 0.7, rng=0, mode=mode, training=training)
            dout = positive_input(1000, seed=1)
            dout_before = dout.copy()
            dx = dropout_backward(dout, cache)
            out *= 5  # an in-place edit of the outputs must not reach the inputs...
            dx *= 5  # ...when they are new arrays (training mode)
            if training:
                assert np.array_equal(x, x_before)
                assert np.array_equal(dout, dout_before)


def test_float32_stays_float32_and_mask_is_one_byte_per_element():
    x = positive_input(4096).reshape(64, 64)
    out, cache = dropout_forward(x, 0.2, rng=0)
    dx = dropout_backward(np.ones_like(x), cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    assert cache["mask"].dtype == np.bool_
    assert cache["mask"].nbytes <= x.size
    out16, _ = dropout_forward(x.astype(np.float16), 0.2, rng=0)
    assert out16.dtype == np.float16


@pytest.mark.parametrize("rate", RATES)
def test_noise_shape_broadcasts_one_mask(rate):
    n, d = 20_000, 6
    x = np.ones((n, d), np.float32)
    out, cache = dropout_forward(x, rate, rng=0, noise_shape=(None, 1))
    assert cache["mask"].shape == (n, 1) and cache["mask"].nbytes == n
    # every row is all dropped or all kept
    row_dropped = out[:, 0] == 0
    assert np.array_equal(out == 0, np.repeat(row_dropped[:, None], d, axis=1))
    assert abs(row_dropped.mean() - rate) <= binomial_bound(rate, n)
    dx = dropout_backward(np.ones_like(x), cache)
    assert np.array_equal(dx == 0, out == 0)
    # an axis given its own size draws independently along it
    out, cache = dropout_forward(np.ones((4, 5, 6)), rate, rng=0, noise_shape=(4, 1, 6))
    assert cache["mask"].shape == (4, 1, 6)
    assert np.array_equal(out, np.broadcast_to(out[:, :1, :], out.shape))


def test_resolve_noise_shape():
    assert resolve_noise_shape((2, 3, 4), None) == (2, 3, 4)
    assert resolve_noise_shape((2, 3, 4), (None, 3, 1)) == (2, 3, 1)
    assert resolve_noise_shape((2, 3, 4), [1, 1, 1]) == (1, 1, 1)


def test_seeded_draws_are_reproducible():
    x = np.ones(1000)
    a, _ = dropout_forward(x, 0.2, rng=42)
    b, _ = dropout_forward(x, 0.2, rng=np.random.default_rng(42))
    c, _ = dropout_forward(x, 0.2, rng=43)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(Dropout(0.2, rng=42)(x), a)


def test_given_mask_is_used():
    x = positive_input(6)
    mask = np.array([True, False, True, True, False, False])
    out, cache = dropout_forward(x, 0.5, mask=mask)
    assert np.array_equal(out, np.where(mask, x * np.float32(2.0), 0))
    assert cache["mask"] is mask


def test_freeze_holds_the_mask_until_unfreeze():
    layer = Dropout(0.5, rng=0).freeze()
    x = positive_input(1000)
    first = layer(x)
    assert np.array_equal(layer(x), first)
    assert np.array_equal(layer(x * 2) == 0, first == 0)
    layer.unfreeze()
    assert not np.array_equal(layer(x), first)
    # freezing after a forward holds that forward's mask
    layer = Dropout(0.5, rng=1)
    first = layer(x)
    layer.freeze()
    assert np.array_equal(layer(x), first)


def test_layer_interface():
    layer = Dropout(0.2, rng=0)
    assert layer.params == {} and layer.grads == {}
    assert layer.training is True and layer.keep == pytest.approx(0.8)
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True
    x = positive_input(100)
    assert layer(x, training=False) is x and layer.training is True
    assert "rate=0.2" in repr(layer)


# --------------------------------------------------------------------------- properties

float_dtypes = st.sampled_from([np.float16, np.float32, np.float64])
any_dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_])
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)
rates = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def arrays(draw, dtypes=any_dtypes):
    dtype = draw(dtypes)
    shape = draw(shapes)
    if dtype == np.bool_:
        elements = st.booleans()
    elif np.issubdtype(dtype, np.integer):
        elements = st.integers(-1000, 1000)
    else:
        elements = st.floats(-100, 100, width=np.dtype(dtype).itemsize * 8)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@settings(max_examples=80, deadline=None)
@given(x=arrays(), rate=rates, seed=st.integers(0, 2**32 - 1),
       mode=st.sampled_from(["inverted", "weight_scaling"]),
       draw=st.sampled_from(["fast", "readable"]))
def test_property_forward_backward(x, rate, seed, mode, draw):
    before = x.copy()
    out, cache = dropout_forward(x, rate, rng=seed, mode=mode, draw=draw)
    expected_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    assert out.shape == x.shape and out.dtype == expected_dtype
    assert np.array_equal(x, before)
    xf = x.astype(expected_dtype)
    keep = 1.0 - rate
    if rate == 0.0:
        assert np.array_equal(out, xf)
        return
    mask = cache["mask"]
    assert mask.dtype == np.bool_ and mask.nbytes <= max(x.size, 0)
    scale = (1.0 / keep if keep > 0 else 0.0) if mode == "inverted" else 1.0
    with np.errstate(over="ignore"):  # float16 * a large 1/keep may overflow to inf
        expected = np.where(mask, xf * xf.dtype.type(scale), 0) if keep > 0 else np.zeros_like(xf)
    assert np.array_equal(out, expected)
    dout = np.ones(x.shape, expected_dtype)
    dx = dropout_backward(dout, cache)
    assert dx.shape == x.shape and dx.dtype == expected_dtype
    assert np.array_equal(dx == 0, ~mask if keep > 0 else np.ones(x.shape, bool))


@settings(max_examples=40, deadline=None)
@given(x=arrays(float_dtypes), rate=rates, mode=st.sampled_from(["inverted", "weight_scaling"]))
def test_property_inference(x, rate, mode):
    out, _ = dropout_forward(x, rate, training=False, mode=mode)
    assert out.dtype == x.dtype and out.shape == x.shape
    if mode == "inverted":
        assert out is x
    else:
        assert np.array_equal(out, x * x.dtype.type(1.0 - rate))


@settings(max_examples=40, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5), data=st.data())
def test_property_noise_shape(shape, data):
    noise_shape = tuple(data.draw(st.sampled_from([None, 1, s])) for s in shape)
    x = np.ones(shape)
    out, cache = dropout_forward(x, 0.5, rng=data.draw(st.integers(0, 1000)),
                                 noise_shape=noise_shape)
    resolved = resolve_noise_shape(shape, noise_shape)
    assert cache["mask"].shape == resolved
    assert np.array_equal(out, np.broadcast_to(cache["mask"] * 2.0, shape))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("rate", "exc", "match"),
    [
        (1.5, ValueError, r"rate must be in \[0, 1\]; received rate=1.5"),
        (-0.1, ValueError, r"rate must be in \[0, 1\]; received rate=-0.1"),
        (float("nan"), ValueError, r"received rate=nan"),
        (float("inf"), ValueError, r"received rate=inf"),
        ("0.5", ValueError, r"rate must be a real number in \[0, 1\]; received rate='0.5'"),
        (None, TypeError, r"received rate=None"),
        (True, TypeError, r"received rate=True"),
        (np.array([0.5]), ValueError, r"rate must be a real number"),
    ],
)
def test_bad_rate_errors(rate, exc, match):
    with pytest.raises(exc, match=match):
        dropout_forward(np.ones(3), rate)
    with pytest.raises(exc, match=match):
        Dropout(rate)
    with pytest.raises(exc, match=match):
        fast_keep_mask((3,), rate, np.random.default_rng(0))


def test_non_number_rate_error_is_both_type_and_value_error():
    with pytest.raises(ArgumentTypeError) as info:
        dropout_forward(np.ones(3), "high")
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_other_argument_errors():
    x = np.ones((4, 5))
    with pytest.raises(ValueError, match=r"mode must be one of .*received mode='naive'"):
        dropout_forward(x, 0.5, mode="naive")
    with pytest.raises(ValueError, match=r"draw must be one of .*received draw='slow'"):
        Dropout(0.5, draw="slow")
    with pytest.raises(TypeError, match=r"training must be True or False; received training='yes'"):
        dropout_forward(x, 0.5, training="yes")
    with pytest.raises(ValueError, match=r"noise_shape must have one entry per axis of x \(2\)"):
        dropout_forward(x, 0.5, noise_shape=(4,))
    with pytest.raises(ValueError, match=r"noise_shape entries must be None, 1 or the size"):
        dropout_forward(x, 0.5, noise_shape=(4, 2))
    with pytest.raises(ValueError, match=r"noise_shape entries must be None, 1 or the size"):
        dropout_forward(x, 0.5, noise_shape=(4, 1.5))
    with pytest.raises(TypeError, match=r"noise_shape must be None or a sequence.*=5"):
        dropout_forward(x, 0.5, noise_shape=5)
    with pytest.raises(ValueError, match=r"mask must be a boolean array of shape \(4, 5\)"):
        dropout_forward(x, 0.5, mask=np.ones((4, 5)))
    with pytest.raises(TypeError, match=r"x must be an array of real numbers; received x with dtype"):
        dropout_forward(np.ones(3, complex), 0.5)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator.*received rng='a'"):
        dropout_forward(x, 0.5, rng="a")
    _, cache = dropout_forward(x, 0.5, rng=0)
    with pytest.raises(ValueError, match=r"dout must have the shape of the forward input \(4, 5\)"):
        dropout_backward(np.ones((5, 4)), cache)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Dropout(0.5).backward(x)
