"""Hidden tests of exercise 3, spatial dropout (Dropout2D).

Graded by properties and against torch.nn.Dropout2d run here, in the grader's
process, never by particular random draws. Each test also checks that the
function did its work (no points for doing nothing or always raising), and
the masks are compared with those of dlcourse's own spatial dropout for the
same seed: calling the package's implementation, by any route, earns nothing.
Kernel-side objects are built from Python's builtins, never from the
notebook's names.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading import SubmissionError, points
from dlcourse.grading.kernel_objects import (
    answer,
    in_kernel,
    kernel_generator,
    number,
    read_back,
)

Z = 5.0  # five-sigma binomial bounds


# -- calling the student's functions -----------------------------------------------------
def map_mask(out):
    """(N, C) booleans: True where the whole feature map is zero."""
    return np.all(out.reshape(out.shape[0], out.shape[1], -1) == 0, axis=2)


def not_the_reference(out, x, rate, seed):
    """Fail when the kept maps are exactly those of dlcourse's reference draw for ``seed``."""
    from dlcourse.scratch.dropout import fast_keep_mask

    if not isinstance(seed, int) or not 0.0 < rate < 1.0 or x.shape[0] * x.shape[1] < 64:
        return
    kept = ~map_mask(out)
    reference = fast_keep_mask((x.shape[0], x.shape[1], 1, 1), rate, np.random.default_rng(seed))
    if np.array_equal(kept, reference[:, :, 0, 0]):
        raise AssertionError(
            "dropout2d_forward returned exactly the masks of dlcourse's reference spatial "
            "dropout for the same seed: calling the package (by any route) earns no credit."
        )


def forward(submission, x, rate, **kwargs):
    result = submission.call("dropout2d_forward", x, rate, **kwargs)
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        f"dropout2d_forward must return a pair (out, cache); it returned {type(result).__name__}"
    )
    out = np.asarray(result[0])
    assert out.shape == x.shape, f"out: expected shape {x.shape}, received {out.shape}."
    if kwargs.get("training", True):
        not_the_reference(out, x, rate, kwargs.get("rng"))
    return out, result[1]


def positive_maps(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).uniform(1.0, 2.0, size=shape).astype(dtype)


def bound(rate, n):
    return Z * math.sqrt(rate * (1 - rate) / n)


def drops_maps(submission, x, rate=0.5, seed=99):
    """Precondition of the tests of other properties: training mode drops whole maps."""
    out, _ = forward(submission, x, rate, training=True, rng=seed)
    maps = (out != 0).reshape(x.shape[0], x.shape[1], -1)
    dropped = float(np.mean(~maps.any(axis=2)))
    partial = float(np.mean(maps.any(axis=2) & ~maps.all(axis=2)))
    assert partial == 0 and abs(dropped - rate) <= max(bound(rate, x.shape[0] * x.shape[1]), 0.1), (
        f"in training mode with rate={rate} expected about {rate:.0%} of the feature maps dropped "
        f"whole; received {dropped:.0%} dropped and {partial:.0%} partly dropped (so this "
        "property cannot earn points yet)."
    )
    return out


# -- Q1: the forward pass ----------------------------------------------------------------
@points(1)
def test_whole_feature_maps_are_dropped(submission):
    """Q1: each feature map is dropped or kept as a whole"""
    x = positive_maps((64, 12, 5, 7), 1)
    out, _ = forward(submission, x, 0.4, training=True, rng=1)
    maps = (out != 0).reshape(64, 12, -1)
    partial = np.mean(maps.any(axis=2) & ~maps.all(axis=2))
    dropped = np.mean(~maps.any(axis=2))
    assert partial == 0 and dropped > 0.2, (
        f"expected every feature map entirely kept or entirely zero, about 40% of them zero; "
        f"received {partial:.0%} partly zero and {dropped:.0%} entirely zero: spatial dropout "
        "draws ONE decision per (sample, channel), a mask of shape (N, C, 1, 1)."
    )


@points(1)
def test_fraction_of_maps_dropped_matches_rate(submission):
    """Q1: about rate of the feature maps are dropped (as with torch.nn.Dropout2d)"""
    n, c = 500, 40
    x = positive_maps((n, c, 2, 2), 2)
    for rate in (0.25, 0.6):
        out, _ = forward(submission, x, rate, training=True, rng=2)
        dropped = float(np.mean(map_mask(out)))
        limit = bound(rate, n * c)
        if abs(dropped - rate) <= limit:
            continue
        if abs(float(np.mean(out == 0)) - rate) <= 0.05 and dropped < rate / 2:
            why = "single entries are dropped instead of whole maps: draw a (N, C, 1, 1) mask."
        elif abs(dropped - (1 - rate)) <= limit:
            why = "that is 1 - rate: rate is the DROP probability, keep = 1 - rate."
        else:
            why = "rate is the probability of dropping each (sample, channel) map."
        raise AssertionError(
            f"with rate={rate} expected {rate:.1%} +- {limit:.1%} of the feature maps dropped "
            f"(as torch.nn.Dropout2d does); received {dropped:.1%}: {why}"
        )


@points(1)
def test_survivors_scaled_like_torch(submission):
    """Q1: kept feature maps are scaled by 1/keep, like torch.nn.Dropout2d"""
    import torch

    x = positive_maps((40, 16, 3, 3), 3)
    for rate in (0.2, 0.7):
        torch.manual_seed(0)
        reference = torch.nn.Dropout2d(rate).train()(torch.from_numpy(x)).numpy()
        kept_ref = reference != 0
        torch_scale = float(np.median(reference[kept_ref] / x[kept_ref]))
        out, _ = forward(submission, x, rate, training=True, rng=3)
        kept = out != 0
        dropped = float(np.mean(map_mask(out)))
        assert abs(dropped - rate) <= bound(rate, 640), (
            f"with rate={rate} expected {rate:.0%} of the maps dropped; received {dropped:.0%}."
        )
        ratio = out[kept] / x[kept]
        assert np.allclose(ratio, torch_scale, rtol=1e-6), (
            f"kept maps must be scaled by 1/keep: with rate={rate} torch.nn.Dropout2d gives "
            f"out = {torch_scale:.4g} * x; received out between {ratio.min():.4g} * x and "
            f"{ratio.max():.4g} * x."
        )


@points(1)
def test_masks_independent_across_samples_and_channels(submission):
    """Q1: samples and channels get independent decisions"""
    n, c = 200, 50
    x = positive_maps((n, c, 2, 2), 4)
    out, _ = forward(submission, x, 0.5, training=True, rng=4)
    dropped = map_mask(out).astype(float)
    assert abs(dropped.mean() - 0.5) <= bound(0.5, n * c), (
        f"expected 50% of the maps dropped; received {dropped.mean():.1%}."
    )
    for axis, name, other in ((0, "channel", "samples"), (1, "sample", "channels")):
        fractions = dropped.mean(axis=axis)
        spread = Z * math.sqrt(0.25 / dropped.shape[axis])
        worst = fractions[np.argmax(np.abs(fractions - 0.5))]
        assert abs(worst - 0.5) <= spread, (
            f"expected each {name} to be dropped in 50% +- {spread:.0%} of the {other}; one was "
            f"dropped in {worst:.0%}: draw independent decisions with a mask of shape "
            "(N, C, 1, 1), not (1, C, 1, 1) or (N, 1, 1, 1)."
        )
    a, b = dropped[:, :-1].ravel(), dropped[:, 1:].ravel()
    corr = float(np.corrcoef(a, b)[0, 1])
    assert abs(corr) <= Z / math.sqrt(a.size), (
        f"the decisions of neighbouring channels are correlated ({corr:.3f}, expected 0 +- "
        f"{Z / math.sqrt(a.size):.3f}): draw independent decisions."
    )


@points(1)
def test_rng_is_honoured(submission):
    """Q1: rng is honoured: a seed fixes the mask, a Generator advances"""
    x = positive_maps((30, 12, 2, 2), 5)
    first, _ = forward(submission, x, 0.5, training=True, rng=21)
    again, _ = forward(submission, x, 0.5, training=True, rng=21)
    other, _ = forward(submission, x, 0.5, training=True, rng=22)
    assert 0.3 < map_mask(first).mean() < 0.7, (
        f"expected 50% of the maps dropped; received {map_mask(first).mean():.0%}."
    )
    assert np.array_equal(first, again), (
        "rng=21 twice: expected the same mask, received different ones: build the generator "
        "with np.random.default_rng(rng)."
    )
    assert not np.array_equal(first, other), "rng=21 and rng=22: expected different masks, received the same."
    generator = kernel_generator(submission, 21)
    a = np.asarray(submission.call("dropout2d_forward", x, 0.5, training=True, rng=generator)[0])
    b = np.asarray(submission.call("dropout2d_forward", x, 0.5, training=True, rng=generator)[0])
    assert np.array_equal(a, first), (
        "rng=np.random.default_rng(21): expected the same mask as rng=21, received another."
    )
    assert not np.array_equal(a, b), (
        "one Generator used twice: expected two different masks (it advances), received the same."
    )


@points(1)
def test_eval_mode_and_rate_zero_are_identity(submission):
    """Q1: training=False and rate=0 return the input unchanged; rate=1 gives zeros"""
    x = positive_maps((16, 8, 3, 3), 5)
    drops_maps(submission, x)
    out, _ = forward(submission, x, 0.5, training=False, rng=5)
    assert np.array_equal(out, x), (
        f"training=False: expected out == x; {np.mean(out != x):.0%} of the entries changed."
    )
    out, _ = forward(submission, x, 0.0, training=True, rng=5)
    assert np.array_equal(out, x), f"rate=0: expected out == x; {np.mean(out != x):.0%} changed."
    out, _ = forward(submission, x, 1.0, training=True, rng=5)
    assert np.all(np.isfinite(out)) and np.all(out == 0), (
        "rate=1: expected all zeros (no division by keep = 0); received "
        f"{np.sum(out != 0)} nonzero or nan entries."
    )


@points(1)
def test_rejects_bad_shapes_and_rates(submission):
    """Q1: inputs that are not (N, C, H, W), and rates outside [0, 1], raise ValueError"""
    drops_maps(submission, positive_maps((16, 8, 2, 2), 6))
    cases = [((10, 8), 0.5, "the shape"), ((2, 3, 4), 0.5, "the shape"),
             ((2, 3, 4, 4, 1), 0.5, "the shape"), ((2, 3, 4, 4), 1.5, "1.5"),
             ((2, 3, 4, 4), -0.2, "-0.2")]
    for shape, rate, named in cases:
        try:
            submission.call("dropout2d_forward", np.ones(shape), rate)
        except SubmissionError as err:
            assert err.ename == "ValueError", (
                f"shape {shape}, rate {rate}: expected ValueError, received {err.ename}: {err.evalue}"
            )
            if named != "the shape":
                assert named in (err.evalue or ""), (
                    f"rate {rate}: expected the message to name the rate; received {err.evalue!r}."
                )
            else:
                assert str(shape) in (err.evalue or ""), (
                    f"shape {shape}: expected the message to report the shape received; "
                    f"received {err.evalue!r}."
                )
        else:
            raise AssertionError(
                f"dropout2d_forward(np.ones({shape}), {rate}): expected ValueError, received no exception."
            )


@points(1)
def test_dtype_is_preserved(submission):
    """Q1: the output has the dtype of x (float32 and float64)"""
    for dtype in (np.float32, np.float64):
        x = positive_maps((20, 8, 4, 4), 6, dtype)
        for training in (True, False):
            out, _ = forward(submission, x, 0.3, training=training, rng=6)
            assert out.dtype == dtype, (
                f"training={training}, {np.dtype(dtype).name} input: expected "
                f"{np.dtype(dtype).name} output, received {out.dtype}."
            )
            kept = out != 0
            scale = 1.0 / 0.7 if training else 1.0
            assert kept.any() and np.allclose(out[kept], x[kept] * scale, rtol=1e-6, atol=0), (
                f"{np.dtype(dtype).name} input: expected kept entries x * {scale:.4g}; received others."
            )
            if training:
                assert 0.1 < map_mask(out).mean() < 0.5, (
                    f"expected 30% of the maps dropped; received {map_mask(out).mean():.0%}."
                )


@points(1)
def test_input_not_modified(submission):
    """Q1: dropout2d_forward never modifies its input"""
    x = positive_maps((20, 10, 3, 3), 7)
    kernel_x = in_kernel(submission, x)
    out = np.asarray(submission.call("dropout2d_forward", kernel_x, 0.5, training=True, rng=8)[0])
    not_the_reference(out, x, 0.5, 8)
    assert np.array_equal(read_back(submission, kernel_x), x), (
        "dropout2d_forward modified its input x in place: build a new array."
    )
    assert 0.3 < map_mask(out).mean() < 0.7, (
        f"expected 50% of the maps dropped; received {map_mask(out).mean():.0%}."
    )


# -- Q2: the backward pass ----------------------------------------------------------------
@points(1)
def test_backward_zero_on_dropped_maps(submission):
    """Q2: the gradient is zero on dropped maps and dout/keep on kept ones"""
    x = positive_maps((30, 10, 4, 4), 7)
    x[:, :, 0, :] = 0.0  # zeros in x: "kept" cannot be read off the output there
    probe = positive_maps(x.shape, 9)
    dout = np.random.default_rng(8).uniform(-2.0, 2.0, size=x.shape)
    for rate in (0.3, 0.65):
        seen, _ = forward(submission, probe, rate, training=True, rng=7)
        kept = seen != 0
        assert abs(map_mask(seen).mean() - rate) <= bound(rate, 300), (
            f"expected {rate:.0%} of the maps dropped; received {map_mask(seen).mean():.0%}."
        )
        _, cache = forward(submission, x, rate, training=True, rng=7)
        dx = np.asarray(submission.call("dropout2d_backward", dout, cache))
        assert dx.shape == x.shape, f"dx: expected shape {x.shape}, received {dx.shape}."
        expected = dout * kept / (1 - rate)
        wrong = ~np.isclose(dx, expected, rtol=1e-6, atol=1e-12)
        assert not wrong.any(), (
            f"with rate={rate} expected dx = dout * mask / keep on every entry (also where x is 0); "
            f"{wrong.mean():.0%} differ: multiply dout by the (N, C, 1, 1) mask of the cache."
        )


@points(1)
def test_backward_dtype_eval_and_dout(submission):
    """Q2: dx keeps the dtype of dout, leaves dout unchanged, and equals dout in eval mode"""
    x = positive_maps((10, 6, 4, 4), 6, np.float32)
    dout = positive_maps(x.shape, 10, np.float32)
    out, cache = forward(submission, x, 0.3, training=True, rng=6)
    kernel_dout = in_kernel(submission, dout)
    dx = np.asarray(submission.call("dropout2d_backward", kernel_dout, cache))
    assert dx.dtype == np.float32, f"a float32 dout: expected a float32 dx, received {dx.dtype}."
    assert np.allclose(dx, dout * (out != 0) / np.float32(0.7), rtol=1e-6), (
        "expected dx = dout * mask / keep."
    )
    assert np.array_equal(read_back(submission, kernel_dout), dout), (
        "dropout2d_backward modified dout in place: return a new array."
    )
    _, cache = forward(submission, x, 0.3, training=False)
    dx = np.asarray(submission.call("dropout2d_backward", dout, cache))
    assert np.allclose(dx, dout), "after training=False: expected dx == dout."


# -- Q3: measuring ------------------------------------------------------------------------
@points(1)
def test_dropped_channel_fraction(submission):
    """Q3: dropped_channel_fraction counts the maps that are zero everywhere"""
    rng = np.random.default_rng(9)
    out = rng.uniform(1.0, 2.0, size=(7, 9, 3, 4))
    dropped = rng.random((7, 9)) < 0.35
    out[dropped] = 0.0
    # stray zero pixels inside kept maps must not count
    out[~dropped] *= rng.random((int((~dropped).sum()), 3, 4)) > 0.2
    out[0, 0] = 1.0
    expected = float(np.mean(np.all(out.reshape(7, 9, -1) == 0, axis=2)))
    value = float(submission.call("dropped_channel_fraction", out))
    assert math.isclose(value, expected, abs_tol=1e-9), (
        f"expected the fraction of maps that are zero at every pixel ({expected:.4f}); received "
        f"{value:.4f}: a map with some zero pixels is not a dropped map."
    )


# -- Q4: the CNN --------------------------------------------------------------------------
@points(1)
def test_make_cnn_layers(submission):
    """Q4: make_cnn uses Dropout2d for 'channel', Dropout for 'element', and maps (N,1,8,8) to (N,10)"""
    x = np.random.default_rng(11).random((5, 1, 8, 8)).astype(np.float32)
    for kind, wanted, unwanted in (("channel", "Dropout2d(", "Dropout("),
                                   ("element", "Dropout(", "Dropout2d(")):
        model = submission.new("make_cnn", kind, 0.3)
        text = submission.call("__builtins__.repr", model)
        assert text.count(wanted) == 2 and unwanted not in text.replace(wanted, ""), (
            f"make_cnn({kind!r}, 0.3): expected two {wanted[:-1]} layers and no other dropout; "
            f"received a model with {text.count('Dropout2d(')} Dropout2d and "
            f"{text.count('Dropout(')} Dropout layers."
        )
        assert text.count("Conv2d(") == 2 and "p=0.3" in text, (
            f"make_cnn({kind!r}, 0.3): expected two Conv2d layers and dropout with p=0.3."
        )
        logits = np.asarray(model.call("forward", submission.tensor(x)))
        assert logits.shape == (5, 10), (
            f"make_cnn({kind!r}, 0.3) on (5, 1, 8, 8): expected (5, 10) logits, received {logits.shape}."
        )
    try:
        submission.call("make_cnn", "everything", 0.3)
    except SubmissionError as err:
        assert err.ename == "ValueError", (
            f"make_cnn('everything', 0.3): expected ValueError, received {err.ename}."
        )
    else:
        raise AssertionError("make_cnn('everything', 0.3): expected ValueError, received no exception.")


@points(2)
def test_train_cnn_reaches_accuracy(submission):
    """Q4: the small CNN with spatial dropout learns the digits"""
    result = submission.call("train_cnn", "channel", 0.2, seed=1, timeout=120)
    assert isinstance(result, dict), f"train_cnn must return a dict; it returned {type(result).__name__}."
    missing = {"train_accuracy", "val_accuracy"} - set(result)
    assert not missing, f"the dict returned by train_cnn lacks the keys {sorted(missing)}."
    val = float(result["val_accuracy"])
    assert 0.0 <= val <= 1.0, f"val_accuracy must be a fraction in [0, 1]; received {val}."
    assert val >= 0.85, (
        f"train_cnn('channel', 0.2, seed=1): expected a validation accuracy of at least 0.85; "
        f"received {val:.3f}: check the architecture, the learning rate, that you train "
        "in train() mode and measure in eval() mode."
    )


# -- Q5: concepts -------------------------------------------------------------------------
@points(1)
def test_concept_number_of_decisions(submission):
    """Q5: the number of keep/drop decisions spatial dropout draws"""
    value = number(submission, "q5_decisions")
    assert value == 32 * 16, f"q5_decisions = {value:g} is not right."


@points(1)
def test_concept_whole_map_under_elementwise_dropout(submission):
    """Q5: the chance that element-wise dropout zeroes a whole map"""
    value = number(submission, "q5_whole_map_probability")
    assert math.isclose(value, 0.5**4, rel_tol=1e-6), (
        f"q5_whole_map_probability = {value:g} is not right."
    )


@points(1)
def test_concept_why_spatial(submission):
    """Q5: why spatial dropout suits convolutional feature maps"""
    value = answer(submission, "q5_why_spatial")
    assert isinstance(value, str) and value.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_why_spatial should be one of 'a', 'b', 'c', 'd'; received {value!r}."
    )
    assert value.strip().lower() == "b", f"q5_why_spatial = {value!r} is not right."
