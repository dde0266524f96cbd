"""Hidden tests of exercise 1, dropout from scratch.

Graded by properties, never by particular random draws. Each test names one
fault and also checks that the function did its work (so a function that
does nothing, or always raises, earns nothing). The tests only call the
notebook's graded functions and read its answer variables; kernel-side
objects they need (an array whose in-place change we watch, a generator, a
NumPy function) are built from Python's builtins, never from the notebook's
own names (a notebook may import NumPy under any name).
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
from dlcourse.grading.kernel_objects import (
    answer,
    in_kernel,
    kernel_generator,
    kernel_numpy,
    number,
    read_back,
)

Z = 5.0  # binomial bounds at five standard deviations: a correct answer fails ~1 in 10^6


# -- calling the student's functions -----------------------------------------------------
def reference_masks(shape, rate, seed):
    """dlcourse's reference draws for an int seed (a delegating notebook reproduces them)."""
    from dlcourse.scratch.dropout import fast_keep_mask

    return [fast_keep_mask(tuple(shape), rate, np.random.default_rng(seed))]


def not_the_reference(out, x, rate, seed, what="dropout_forward"):
    """Fail when the kept entries are exactly those of dlcourse's reference draw."""
    if not isinstance(seed, int) or not 0.0 < rate < 1.0 or np.size(x) < 64:
        return
    nonzero = np.asarray(x) != 0
    kept = np.asarray(out) != 0
    for mask in reference_masks(np.shape(x), rate, seed):
        if np.array_equal(kept[nonzero], np.broadcast_to(mask, np.shape(x))[nonzero]):
            raise AssertionError(
                f"{what} returned exactly the masks of dlcourse's reference implementation for "
                "the same seed: calling the reference (by any route) earns no credit."
            )


def forward(submission, x, rate, **kwargs):
    result = submission.call("dropout_forward", x, rate, **kwargs)
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        "dropout_forward must return a pair (out, cache); it returned "
        f"{type(result).__name__}"
    )
    out = np.asarray(result[0])
    assert out.shape == np.shape(x), (
        f"out must have the shape of x: expected {np.shape(x)}, received {out.shape}."
    )
    if kwargs.get("training", True):
        not_the_reference(out, x, rate, kwargs.get("rng"))
    return out, result[1]


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


def positive(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).uniform(1.0, 2.0, size=shape).astype(dtype)


def drops_something(submission, x, rate=0.5, seed=99):
    """Precondition of the tests of other properties: training mode really drops."""
    out, _ = forward(submission, x, rate, training=True, rng=seed)
    dropped = float(np.mean(out == 0))
    assert abs(dropped - rate) <= max(binomial_bound(rate, out.size), 0.05), (
        f"in training mode with rate={rate} about {rate:.0%} of the entries should be dropped; "
        f"{dropped:.1%} were (so this property cannot earn points yet)."
    )
    return out


# -- Q1: the forward pass ----------------------------------------------------------------
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
            f"with rate={rate} the fraction of zeros should be {rate:.3f} (+- "
            f"{binomial_bound(rate, n):.3f}); received {dropped:.3f}: rate is the DROP "
            "probability, keep = 1 - rate."
        )


@points(1)
@visibility("visible")
def test_survivors_scaled_by_inverse_keep(submission):
    """Q1: survivors are scaled by 1/keep (inverted dropout)"""
    x = positive((200, 50), 5)
    for rate in (0.2, 0.7):
        out, _ = forward(submission, x, rate, training=True, rng=12)
        kept = out != 0
        dropped = 1.0 - float(np.mean(kept))
        assert abs(dropped - rate) <= binomial_bound(rate, x.size), (
            f"with rate={rate} expected {rate:.0%} of the entries dropped; received {dropped:.1%}."
        )
        ratio = out[kept] / x[kept]
        expected = 1.0 / (1.0 - rate)
        assert np.allclose(ratio, expected, rtol=1e-6), (
            f"survivors must be scaled by 1/keep: with rate={rate} expected out = "
            f"{expected:.4g} * x; received out between {ratio.min():.4g} * x and "
            f"{ratio.max():.4g} * x."
        )


@points(1)
@visibility("visible")
def test_entries_dropped_independently(submission):
    """Q1: every entry gets its own independent keep/drop decision"""
    rate, n = 0.5, 256
    x = np.ones((n, n))
    out, _ = forward(submission, x, rate, training=True, rng=13)
    dropped = (out == 0).astype(float)
    overall = float(dropped.mean())
    assert abs(overall - rate) <= binomial_bound(rate, x.size), (
        f"expected {rate:.0%} of the entries dropped; received {overall:.1%}."
    )
    rows, cols = dropped.mean(axis=1), dropped.mean(axis=0)
    spread = Z * math.sqrt(rate * (1 - rate) / n)
    for name, fractions in (("row", rows), ("column", cols)):
        worst = fractions[np.argmax(np.abs(fractions - rate))]
        assert abs(worst - rate) <= spread, (
            f"expected every {name} to lose {rate:.0%} +- {spread:.0%} of its entries; one "
            f"lost {worst:.0%}: draw one decision per ENTRY (a mask of shape x.shape), not one "
            f"per {name}."
        )
    for axis, name in ((0, "vertically"), (1, "horizontally")):
        a = np.take(dropped, np.arange(n - 1), axis=axis).ravel()
        b = np.take(dropped, np.arange(1, n), axis=axis).ravel()
        corr = float(np.corrcoef(a, b)[0, 1])
        assert abs(corr) <= Z / math.sqrt(a.size), (
            f"the decisions of {name} neighbouring entries are correlated (correlation "
            f"{corr:.3f}, expected 0 +- {Z / math.sqrt(a.size):.3f}): draw independent decisions."
        )
    twice, _ = forward(submission, np.ones((2, n)), rate, training=True, rng=14)
    assert not np.array_equal(twice[0] == 0, twice[1] == 0), (
        "two rows of one batch got the same mask: draw the mask with the shape of x."
    )
    # independent decisions: the NUMBER dropped varies from call to call (binomially)
    size, calls = 400, 20  # a correct draw fails this with probability 1.4e-7
    counts = np.array([np.sum(forward(submission, np.ones(size), rate, training=True,
                                      rng=100 + k)[0] == 0) for k in range(calls)])
    expected_sd = math.sqrt(size * rate * (1 - rate))
    assert np.std(counts) > 0.3 * expected_sd, (
        f"over {calls} calls on {size} entries the number dropped should vary with a standard "
        f"deviation near {expected_sd:.1f}; received {np.std(counts):.1f} (counts {sorted(set(counts))[:5]}): "
        "decide each entry independently instead of dropping a fixed number."
    )


@points(1)
@visibility("visible")
def test_rng_is_honoured(submission):
    """Q1: rng is honoured: a seed fixes the mask, a Generator advances"""
    x = positive((60, 40), 6)
    first, _ = forward(submission, x, 0.5, training=True, rng=21)
    again, _ = forward(submission, x, 0.5, training=True, rng=21)
    other, _ = forward(submission, x, 0.5, training=True, rng=22)
    assert np.array_equal(first, again), (
        "two calls with rng=21 gave different masks: expected the same mask for the same "
        "seed; build the generator with np.random.default_rng(rng)."
    )
    assert not np.array_equal(first, other), (
        "rng=21 and rng=22 gave the same mask: expected different masks for different seeds."
    )
    generator = kernel_generator(submission, 21)
    from_generator = np.asarray(submission.call("dropout_forward", x, 0.5, training=True,
                                                rng=generator)[0])
    assert np.array_equal(from_generator, first), (
        "rng=np.random.default_rng(21) gave another mask than rng=21: expected the same "
        "(np.random.default_rng(rng) accepts a seed or a Generator)."
    )
    second = np.asarray(submission.call("dropout_forward", x, 0.5, training=True,
                                        rng=generator)[0])
    assert not np.array_equal(second, from_generator), (
        "two calls with the same Generator gave the same mask: expected the generator to "
        "advance (do not re-seed it)."
    )


@points(1)
@visibility("visible")
def test_eval_mode_is_identity(submission):
    """Q1: training=False returns the input unchanged"""
    for dtype in (np.float64, np.float32):
        x = np.random.default_rng(6).normal(size=(64, 32)).astype(dtype)
        drops_something(submission, x)
        for rate in (0.3, 0.8):
            out, _ = forward(submission, x, rate, training=False, rng=13)
            assert out.dtype == x.dtype and np.array_equal(out, x), (
                f"with training=False dropout must return x unchanged: with rate={rate} and "
                f"{np.dtype(dtype).name} input, {np.mean(out != x):.0%} of the entries changed "
                f"(received dtype {out.dtype}): do not drop or scale in eval mode."
            )


@points(1)
@visibility("visible")
def test_rate_zero_and_rate_one(submission):
    """Q1: rate=0 keeps everything, rate=1 drops everything"""
    x = positive((20, 30), 7)
    drops_something(submission, x)
    out, _ = forward(submission, x, 0.0, training=True, rng=14)
    assert np.array_equal(out, x), (
        f"with rate=0 nothing is dropped: expected out == x; {np.mean(out != x):.0%} of the "
        "entries differ."
    )
    out, _ = forward(submission, x, 1.0, training=True, rng=15)
    assert np.all(np.isfinite(out)), (
        "with rate=1 the output contains nan or inf: keep = 0, so do not divide by it."
    )
    assert np.all(out == 0), (
        f"with rate=1 every entry is dropped: expected all zeros; {np.mean(out != 0):.0%} "
        "are not zero."
    )


@points(1)
@visibility("visible")
def test_invalid_rate_raises_value_error(submission):
    """Q1: a rate outside [0, 1] raises ValueError naming the rate"""
    drops_something(submission, np.ones((16, 16)))
    for rate in (1.5, -0.1):
        try:
            submission.call("dropout_forward", np.ones(4), rate)
        except SubmissionError as err:
            assert err.ename == "ValueError", (
                f"dropout_forward(x, rate={rate}) should raise ValueError; it raised "
                f"{err.ename}: {err.evalue}"
            )
            assert str(rate) in (err.evalue or ""), (
                f"the ValueError should say which rate it received ({rate}); its message is "
                f"{err.evalue!r}."
            )
        else:
            raise AssertionError(
                f"dropout_forward(x, rate={rate}) should raise ValueError (rate must be in "
                "[0, 1]); it returned normally."
            )


@points(1)
@visibility("visible")
def test_dtype_is_preserved(submission):
    """Q1: the output has the dtype of x (float32 and float64)"""
    for dtype in (np.float32, np.float64):
        x = positive((50, 20), 8, dtype)
        for training in (True, False):
            out, _ = forward(submission, x, 0.4, training=training, rng=16)
            assert out.dtype == dtype, (
                f"dropout_forward(training={training}) on {np.dtype(dtype).name} input: "
                f"expected {np.dtype(dtype).name} output, received {out.dtype}."
            )
            kept = out != 0
            scale = 1.0 / 0.6 if training else 1.0
            tol = 1e-6 if dtype == np.float32 else 1e-12
            assert kept.any() and np.allclose(out[kept], x[kept] * scale, rtol=tol, atol=0), (
                f"on {np.dtype(dtype).name} input the kept entries should be x * {scale:.4g}; "
                "they are not (is the result really an array of that dtype?)."
            )
            if training:
                dropped = 1.0 - float(np.mean(kept))
                assert abs(dropped - 0.4) <= binomial_bound(0.4, x.size), (
                    f"expected 40% of the entries dropped; received {dropped:.1%}."
                )


@points(1)
@visibility("visible")
def test_input_not_modified(submission):
    """Q1: dropout_forward never modifies its input"""
    x = positive((40, 40), 9)
    for dtype in (np.float64, np.float32):
        kernel_x = in_kernel(submission, x.astype(dtype))
        result = submission.call("dropout_forward", kernel_x, 0.5, training=True, rng=18)
        out = np.asarray(result[0])
        not_the_reference(out, x, 0.5, 18)
        after = read_back(submission, kernel_x)
        assert np.array_equal(after, x.astype(dtype)), (
            "dropout_forward modified its input x in place "
            f"({np.mean(after != x.astype(dtype)):.0%} of the entries changed): build a new "
            "array (out = x * mask / keep) instead of writing into x."
        )
        dropped = float(np.mean(out == 0))
        assert abs(dropped - 0.5) <= binomial_bound(0.5, x.size), (
            f"expected the output to drop 50% of the entries; received {dropped:.1%}."
        )


# -- Q2: the backward pass ----------------------------------------------------------------
def backward(submission, dout, cache):
    dx = np.asarray(submission.call("dropout_backward", dout, cache))
    assert dx.shape == np.shape(dout), (
        f"dx must have the shape of dout: expected {np.shape(dout)}, received {dx.shape}."
    )
    return dx


@points(1)
@visibility("visible")
def test_backward_uses_forward_mask(submission):
    """Q2: the gradient flows only through kept units, scaled by 1/keep"""
    x = positive((100, 40), 10)
    x[::3, ::2] = 0.0  # zeros in x: "kept" cannot be read off the output there
    probe = positive(x.shape, 30)
    dout = np.random.default_rng(11).uniform(-2.0, 2.0, size=x.shape)
    for rate in (0.25, 0.6):
        seen, _ = forward(submission, probe, rate, training=True, rng=19)
        kept = seen != 0  # the same seed draws the same mask
        dropped = 1.0 - float(np.mean(kept))
        assert abs(dropped - rate) <= binomial_bound(rate, x.size), (
            f"expected {rate:.0%} of the entries dropped; received {dropped:.1%}."
        )
        _, cache = forward(submission, x, rate, training=True, rng=19)
        dx = backward(submission, dout, cache)
        expected = dout * kept / (1.0 - rate)
        wrong = ~np.isclose(dx, expected, rtol=1e-6, atol=1e-12)
        assert not wrong.any(), (
            f"with rate={rate} expected dx = dout * mask / keep (zero where dropped, "
            f"dout / {1 - rate:g} where kept, also where x is 0); {wrong.mean():.1%} of the "
            f"entries differ, e.g. expected {expected[wrong][0]:.4g}, received {dx[wrong][0]:.4g}: "
            "keep the mask itself in the cache."
        )


@points(1)
@visibility("visible")
def test_backward_dtype_and_eval_mode(submission):
    """Q2: dx keeps the dtype of dout; in eval mode dx equals dout"""
    x = positive((30, 20), 12, np.float32)
    dout = positive(x.shape, 13, np.float32)
    out, cache = forward(submission, x, 0.4, training=True, rng=17)
    dx = backward(submission, dout, cache)
    assert dx.dtype == np.float32, (
        f"a float32 dout should give a float32 dx; received {dx.dtype}."
    )
    kept = out != 0
    assert np.allclose(dx, dout * kept / np.float32(0.6), rtol=1e-6), (
        "dx should be dout * mask / keep (checked on float32 arrays)."
    )
    _, cache = forward(submission, x, 0.4, training=False)
    dx = backward(submission, dout.astype(np.float64), cache)
    assert np.allclose(dx, dout), (
        "after a forward pass with training=False, dropout is the identity, so dx should "
        f"equal dout; {np.mean(~np.isclose(dx, dout)):.0%} of the entries differ."
    )


@points(1)
@visibility("visible")
def test_backward_does_not_modify_dout(submission):
    """Q2: dropout_backward returns a new array and leaves dout unchanged"""
    x = positive((30, 30), 14)
    dout = positive(x.shape, 15)
    out, cache = forward(submission, x, 0.5, training=True, rng=20)
    kernel_dout = in_kernel(submission, dout)
    dx = np.asarray(submission.call("dropout_backward", kernel_dout, cache))
    assert np.array_equal(read_back(submission, kernel_dout), dout), (
        "dropout_backward modified dout in place: return a new array."
    )
    assert np.allclose(dx, dout * (out != 0) / 0.5), (
        "dx should be dout * mask / keep."
    )


# -- Q3: the layer ------------------------------------------------------------------------
def layer_forward(layer, x, rate=None, seed=None):
    """``layer.forward(x)``; give ``rate`` and ``seed`` on a new layer's first pass."""
    out = np.asarray(layer.call("forward", x))
    assert out.shape == x.shape, f"forward: expected shape {x.shape}, received {out.shape}."
    if seed is not None:
        not_the_reference(out, x, rate, seed, "Dropout.forward")
    return out


@points(1)
@visibility("visible")
def test_layer_train_and_eval_modes(submission):
    """Q3: Dropout layer starts in training mode; eval() gives the identity, train() drops again"""
    layer = submission.new("Dropout", 0.5, rng=20)
    assert layer.get("training") is True, "a new Dropout layer must have training == True."
    x = positive((60, 60), 12)
    out = layer_forward(layer, x, 0.5, 20)
    dropped = float(np.mean(out == 0))
    assert abs(dropped - 0.5) <= binomial_bound(0.5, x.size), (
        f"in training mode Dropout(0.5).forward should drop 50% of the entries; received {dropped:.1%}."
    )
    call_method(layer, "eval")
    assert layer.get("training") is False, "after eval() the attribute training must be False."
    out = layer_forward(layer, x)
    assert np.array_equal(out, x), (
        "after eval() the layer must return its input unchanged; "
        f"{np.mean(out != x):.0%} of the entries changed."
    )
    call_method(layer, "train")
    assert layer.get("training") is True, "after train() the attribute training must be True."
    out = layer_forward(layer, x)
    dropped = float(np.mean(out == 0))
    assert abs(dropped - 0.5) <= binomial_bound(0.5, x.size), (
        f"after train() the layer should drop 50% of the entries again; received {dropped:.1%}."
    )


@points(1)
@visibility("visible")
def test_layer_backward_uses_last_mask(submission):
    """Q3: Dropout.backward uses the mask of the last forward pass"""
    layer = submission.new("Dropout", 0.4, rng=21)
    x = positive((50, 50), 13)
    dout = positive(x.shape, 14)
    layer_forward(layer, x, 0.4, 21)
    out = layer_forward(layer, x)
    dx = np.asarray(layer.call("backward", dout))
    kept = out != 0
    assert 0.3 < 1 - kept.mean() < 0.5, f"expected 40% dropped; received {1 - kept.mean():.0%}."
    expected = dout * kept / 0.6
    assert dx.shape == x.shape and np.allclose(dx, expected, rtol=1e-6), (
        "Dropout.backward must return dout * mask / keep with the mask of the LAST forward "
        "pass: store the cache in forward and use it in backward."
    )


@points(1)
@visibility("visible")
def test_layer_draws_fresh_seeded_masks(submission):
    """Q3: successive forward passes draw different masks; the seed fixes the sequence"""
    x = np.ones((40, 40))
    layer = submission.new("Dropout", 0.5, rng=22)
    first = layer_forward(layer, x, 0.5, 22) == 0
    second = layer_forward(layer, x) == 0
    assert 0.4 < first.mean() < 0.6, f"expected 50% dropped; received {first.mean():.0%}."
    assert not np.array_equal(first, second), (
        "two forward passes of the same layer drew the same mask: create the generator once "
        "in __init__ (np.random.default_rng(rng)) and reuse it, instead of re-seeding each call."
    )
    twin = submission.new("Dropout", 0.5, rng=22)
    assert np.array_equal(layer_forward(twin, x) == 0, first), (
        "two layers built with rng=22 drew different first masks: pass rng to "
        "np.random.default_rng in __init__."
    )


# -- Q4: gradient checking ----------------------------------------------------------------
def numerical(submission, func, x, h):
    grad = np.asarray(submission.call("numerical_gradient", func, x, h=h))
    assert grad.shape == x.shape, (
        f"numerical_gradient must return an array of the shape of x: expected {x.shape}, "
        f"received {grad.shape}."
    )
    return grad


@points(1)
@visibility("visible")
def test_numerical_gradient_is_central_difference(submission):
    """Q4: numerical_gradient is the centred difference (f(x+h)-f(x-h))/2h of every entry"""
    x = np.random.default_rng(40).normal(size=(3, 4))
    var = kernel_numpy(submission, "var")
    h = 1e-2
    grad = numerical(submission, var, x, h)
    # var is quadratic: the centred difference is exact for any h, a one-sided one is not
    expected = 2.0 * (x - x.mean()) / x.size
    assert np.allclose(grad, expected, rtol=1e-7, atol=1e-9), (
        f"for f = np.var at a random x with h={h} the centred differences are exactly "
        f"2 (x - mean) / n; received values off by up to {np.max(np.abs(grad - expected)):.2g}: "
        "use (f(x + h e_i) - f(x - h e_i)) / (2 h) for EVERY entry i."
    )
    norm = kernel_numpy(submission, "linalg", "norm")
    y = np.random.default_rng(41).uniform(0.5, 1.5, size=(2, 3, 2))
    grad = numerical(submission, norm, y, 1e-6)
    assert np.allclose(grad, y / np.linalg.norm(y), rtol=1e-5, atol=1e-8), (
        "for f = np.linalg.norm of a 3-D array the gradient is x / ||x||; received another "
        "array (loop over every index of x, e.g. with np.ndindex)."
    )


@points(1)
@visibility("visible")
def test_numerical_gradient_leaves_x_unchanged(submission):
    """Q4: numerical_gradient leaves x unchanged and returns float64"""
    x = np.random.default_rng(42).uniform(0.5, 1.5, size=(4, 3))
    kernel_x = in_kernel(submission, x)
    norm = kernel_numpy(submission, "linalg", "norm")
    grad = np.asarray(submission.call("numerical_gradient", norm, kernel_x, h=1e-6))
    after = read_back(submission, kernel_x)
    assert np.array_equal(after, x), (
        "numerical_gradient changed x: perturb a copy, or restore each entry exactly "
        f"(largest change {np.max(np.abs(after - x)):.2g})."
    )
    assert grad.dtype == np.float64 and np.allclose(grad, x / np.linalg.norm(x), rtol=1e-5), (
        f"expected the float64 gradient x / ||x||; received dtype {grad.dtype}."
    )


# -- Q5: concepts -------------------------------------------------------------------------
@points(1)
@visibility("after_published")
def test_concept_naive_dropout_at_test_time(submission):
    """Q5: the output of a unit under naive dropout at test time"""
    value = number(submission, "q5_naive_test_output")
    assert math.isclose(value, 3.0 * (1.0 - 0.2), rel_tol=1e-6), (
        f"q5_naive_test_output = {value:g} is not right: under naive dropout the network is "
        "scaled at test time so that each unit outputs its expected training value."
    )


@points(1)
@visibility("after_published")
def test_concept_zero_gradient_fraction(submission):
    """Q5: the expected fraction of zero entries of dx"""
    value = number(submission, "q5_zero_gradient_fraction")
    assert math.isclose(value, 0.25, rel_tol=1e-6), (
        f"q5_zero_gradient_fraction = {value:g} is not right: which entries of dx are zero, "
        "and how often does that happen?"
    )


@points(1)
@visibility("after_published")
def test_concept_inverted_inference(submission):
    """Q5: what inverted dropout does at inference"""
    value = answer(submission, "q5_inverted_inference")
    assert isinstance(value, str) and value.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_inverted_inference should be one of 'a', 'b', 'c', 'd'; received {value!r}."
    )
    assert value.strip().lower() == "c", (
        f"q5_inverted_inference = {value!r} is not right."
    )
