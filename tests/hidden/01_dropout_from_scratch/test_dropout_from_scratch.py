"""Hidden tests of exercise 1, dropout from scratch.

Graded by properties, never by particular random draws. Each test names one
fault, so that a submission loses the points of exactly the faults it has.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading import (
    SubmissionDied,
    SubmissionError,
    SubmissionTimeout,
    points,
    visibility,
)

Z = 5.0  # binomial bounds at five standard deviations: a correct answer fails ~1 in 10^6


def forward(submission, x, rate, **kwargs):
    result = submission.call("dropout_forward", x, rate, **kwargs)
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        "dropout_forward must return a pair (out, cache); it returned "
        f"{type(result).__name__}"
    )
    return np.asarray(result[0]), result[1]


def call_method(handle, name):
    """Call a method whose result we do not need (it may return ``self``, which cannot travel)."""
    try:
        handle.call(name)
    except (SubmissionTimeout, SubmissionDied):
        raise
    except SubmissionError as err:
        if err.ename is not None:  # the student's method raised
            raise


def binomial_bound(p: float, n: int) -> float:
    return Z * math.sqrt(p * (1.0 - p) / n)


@points(1)
@visibility("visible")
def test_rate_is_drop_probability(submission):
    """Q1: rate is the probability of dropping a unit"""
    n = 40_000
    x = np.ones(n)
    for rate in (0.2, 0.7):
        out, _ = forward(submission, x, rate, training=True, rng=11)
        dropped = float(np.mean(out == 0))
        assert abs(dropped - rate) <= binomial_bound(rate, n), (
            f"with rate={rate} about {rate:.0%} of the entries should be zero (rate is the DROP "
            f"probability, keep = 1 - rate), but {dropped:.1%} were: are keep and drop swapped?"
        )


@points(1)
@visibility("visible")
def test_survivors_scaled_by_inverse_keep(submission):
    """Q1: survivors are scaled by 1/keep (inverted dropout)"""
    x = np.random.default_rng(5).uniform(1.0, 2.0, size=(200, 50))
    for rate in (0.2, 0.7):
        out, _ = forward(submission, x, rate, training=True, rng=12)
        kept = out != 0
        assert kept.any(), f"with rate={rate} some entries should survive; none did."
        ratio = out[kept] / x[kept]
        expected = 1.0 / (1.0 - rate)
        assert np.allclose(ratio, expected, rtol=1e-5), (
            "survivors must be scaled by 1/keep = 1/(1 - rate); with "
            f"rate={rate} we expected out = {expected:.4g} * x but got out = "
            f"{np.median(ratio):.4g} * x"
        )


@points(1)
@visibility("visible")
def test_eval_mode_is_identity(submission):
    """Q1: training=False returns the input unchanged"""
    x = np.random.default_rng(6).normal(size=(64, 32))
    for rate in (0.3, 0.8):
        out, _ = forward(submission, x, rate, training=False, rng=13)
        assert out.shape == x.shape and np.allclose(out, x, rtol=0, atol=0), (
            f"with training=False (inference) dropout must return x unchanged; with rate={rate} "
            f"{np.mean(out != x):.0%} of the entries changed: do not drop or scale in eval mode."
        )


@points(1)
@visibility("visible")
def test_rate_zero_and_rate_one(submission):
    """Q1: rate=0 keeps everything, rate=1 drops everything"""
    x = np.random.default_rng(7).normal(size=(20, 30))
    out, _ = forward(submission, x, 0.0, training=True, rng=14)
    assert np.array_equal(out, x), "with rate=0 nothing is dropped: out must equal x."
    out, _ = forward(submission, x, 1.0, training=True, rng=15)
    assert np.all(np.isfinite(out)), (
        "with rate=1 the output contains nan or inf: keep = 0, so do not divide by it."
    )
    assert np.all(out == 0), "with rate=1 every entry is dropped: out must be all zeros."


@points(1)
@visibility("visible")
def test_invalid_rate_raises_value_error(submission):
    """Q1: a rate outside [0, 1] raises ValueError"""
    for rate in (1.5, -0.1):
        try:
            submission.call("dropout_forward", np.ones(4), rate)
        except SubmissionError as err:
            assert err.ename == "ValueError", (
                f"dropout_forward(x, rate={rate}) should raise ValueError; it raised "
                f"{err.ename}: {err.evalue}"
            )
        else:
            raise AssertionError(
                f"dropout_forward(x, rate={rate}) should raise ValueError (rate must be in "
                "[0, 1]); it returned normally."
            )


@points(1)
@visibility("visible")
def test_float32_stays_float32(submission):
    """Q1/Q2: float32 input gives float32 output"""
    x = np.random.default_rng(8).normal(size=(50, 20)).astype(np.float32)
    for training in (True, False):
        out, cache = forward(submission, x, 0.4, training=training, rng=16)
        assert out.dtype == np.float32, (
            f"dropout_forward(training={training}) turned float32 input into {out.dtype} output: "
            "multiply by a boolean mask and a Python float, or cast back with .astype(x.dtype)."
        )
    out, cache = forward(submission, x, 0.4, training=True, rng=17)
    dx = np.asarray(submission.call("dropout_backward", np.ones_like(x), cache))
    assert dx.dtype == np.float32, (
        f"dropout_backward turned a float32 gradient into {dx.dtype}: keep the dtype of dout."
    )


@points(1)
@visibility("visible")
def test_input_not_modified(submission):
    """Q1: dropout_forward never modifies its input"""
    x = np.random.default_rng(9).uniform(1.0, 2.0, size=(40, 40))
    kernel_x = submission.new("np.array", x)  # an array that lives in the student's kernel
    submission.call("dropout_forward", kernel_x, 0.5, training=True, rng=18)
    after = np.asarray(submission.call("np.array", kernel_x))
    assert np.array_equal(after, x), (
        "dropout_forward modified its input x in place "
        f"({np.mean(after != x):.0%} of the entries changed): build a new array "
        "(out = x * mask * scale) instead of writing into x."
    )


@points(2)
@visibility("visible")
def test_backward_uses_forward_mask(submission):
    """Q2: the gradient flows only through kept units, scaled by 1/keep"""
    x = np.random.default_rng(10).uniform(1.0, 2.0, size=(100, 40))
    dout = np.random.default_rng(11).uniform(1.0, 2.0, size=x.shape)
    for rate in (0.25, 0.6):
        out, cache = forward(submission, x, rate, training=True, rng=19)
        dx = np.asarray(submission.call("dropout_backward", dout, cache))
        assert dx.shape == x.shape, f"dx must have the shape of x {x.shape}; it has {dx.shape}."
        dropped = out == 0
        assert np.all(dx[dropped] == 0), (
            f"the gradient must be zero where the forward pass dropped a unit; with rate={rate} "
            f"it is nonzero at {np.mean(dx[dropped] != 0):.0%} of the dropped units: multiply "
            "dout by the forward mask."
        )
        expected = dout[~dropped] / (1.0 - rate)
        assert np.allclose(dx[~dropped], expected, rtol=1e-5), (
            "where a unit was kept the gradient is dout / keep, the same scale as the forward pass."
        )


@points(1)
@visibility("visible")
def test_layer_train_and_eval_modes(submission):
    """Q3: Dropout layer starts in training mode; eval() gives the identity, train() drops again"""
    layer = submission.new("Dropout", 0.5, rng=20)
    assert layer.get("training") is True, "a new Dropout layer must have training == True."
    x = np.random.default_rng(12).uniform(1.0, 2.0, size=(60, 60))
    out = np.asarray(layer.call("forward", x))
    assert np.any(out == 0), "in training mode Dropout(0.5).forward must drop some entries."
    call_method(layer, "eval")
    assert layer.get("training") is False, "after eval() the attribute training must be False."
    out = np.asarray(layer.call("forward", x))
    assert np.array_equal(out, x), (
        "after eval() the layer must return its input unchanged: pass training=self.training "
        "to the forward function, and do not drop in eval mode."
    )
    call_method(layer, "train")
    assert layer.get("training") is True, "after train() the attribute training must be True."
    out = np.asarray(layer.call("forward", x))
    assert np.any(out == 0), "after train() the layer must drop entries again."


@points(1)
@visibility("visible")
def test_layer_backward_uses_last_mask(submission):
    """Q3: Dropout.backward uses the mask of the last forward pass"""
    layer = submission.new("Dropout", 0.4, rng=21)
    x = np.random.default_rng(13).uniform(1.0, 2.0, size=(50, 50))
    dout = np.random.default_rng(14).uniform(1.0, 2.0, size=x.shape)
    layer.call("forward", x)
    out = np.asarray(layer.call("forward", x))
    dx = np.asarray(layer.call("backward", dout))
    dropped = out == 0
    assert np.all(dx[dropped] == 0) and np.allclose(dx[~dropped], dout[~dropped] / 0.6, rtol=1e-5), (
        "Dropout.backward must return dout * mask / keep with the mask of the LAST forward "
        "pass: store the cache in forward and use it in backward."
    )


@points(1)
@visibility("visible")
def test_layer_draws_fresh_masks(submission):
    """Q3: successive forward passes draw different masks"""
    layer = submission.new("Dropout", 0.5, rng=22)
    x = np.ones((40, 40))
    first = np.asarray(layer.call("forward", x)) == 0
    second = np.asarray(layer.call("forward", x)) == 0
    assert not np.array_equal(first, second), (
        "two forward passes of the same layer drew the same mask: create the generator once "
        "in __init__ (np.random.default_rng(rng)) and reuse it, instead of re-seeding each call."
    )
