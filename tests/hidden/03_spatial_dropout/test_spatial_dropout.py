"""Hidden tests of exercise 3, spatial dropout (Dropout2D).

Graded by properties and against torch.nn.Dropout2d run here, in the grader's
process, never by particular random draws.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading import SubmissionError, points

Z = 5.0  # five-sigma binomial bounds


def forward(submission, x, rate, **kwargs):
    result = submission.call("dropout2d_forward", x, rate, **kwargs)
    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        f"dropout2d_forward must return a pair (out, cache); it returned {type(result).__name__}"
    )
    return np.asarray(result[0]), result[1]


def map_mask(out):
    """(N, C) booleans: True where the whole feature map is zero."""
    return np.all(out.reshape(out.shape[0], out.shape[1], -1) == 0, axis=2)


def positive_maps(shape, seed):
    return np.random.default_rng(seed).uniform(1.0, 2.0, size=shape)


@points(2)
def test_whole_feature_maps_are_dropped(submission):
    """Q1: each feature map is dropped or kept as a whole"""
    x = positive_maps((64, 12, 5, 7), 1)
    out, _ = forward(submission, x, 0.4, training=True, rng=1)
    assert out.shape == x.shape, f"out must have the shape of x {x.shape}; it has {out.shape}."
    maps = (out != 0).reshape(64, 12, -1)
    partial = np.mean(maps.any(axis=2) & ~maps.all(axis=2))
    assert partial == 0, (
        f"{partial:.0%} of the feature maps are partly zero and partly kept: spatial dropout "
        "draws ONE decision per (sample, channel), i.e. a mask of shape (N, C, 1, 1) broadcast "
        "over H and W."
    )


@points(1)
def test_fraction_of_maps_dropped_matches_rate(submission):
    """Q1: about rate of the feature maps are dropped (as with torch.nn.Dropout2d)"""
    n, c = 500, 40
    x = positive_maps((n, c, 2, 2), 2)
    for rate in (0.25, 0.6):
        out, _ = forward(submission, x, rate, training=True, rng=2)
        maps = map_mask(out)
        dropped = float(np.mean(maps))
        bound = Z * math.sqrt(rate * (1 - rate) / (n * c))
        if abs(dropped - rate) <= bound:
            continue
        if abs(float(np.mean(out == 0)) - rate) <= 0.05 and dropped < rate / 2:
            why = "single entries are dropped instead of whole maps: draw a (N, C, 1, 1) mask."
        elif np.all(maps == maps[:1]):
            why = "every sample shares one channel mask: draw a (N, C, 1, 1) mask, not (1, C, 1, 1)."
        elif abs(dropped - (1 - rate)) <= bound:
            why = "that is 1 - rate: rate is the DROP probability, keep = 1 - rate."
        else:
            why = "rate is the probability of dropping each (sample, channel) map."
        raise AssertionError(
            f"with rate={rate} about {rate:.0%} of the feature maps should be dropped (as "
            f"torch.nn.Dropout2d does), but {dropped:.1%} were: {why}"
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
        assert kept.any(), f"with rate={rate} some feature maps should be kept; none were."
        ratio = out[kept] / x[kept]
        assert np.allclose(ratio, torch_scale, rtol=1e-5), (
            f"kept maps must be scaled by 1/keep = 1/(1 - rate); with rate={rate} "
            f"torch.nn.Dropout2d gives out = {torch_scale:.4g} * x, yours gives "
            f"{np.median(ratio):.4g} * x."
        )


@points(1)
def test_masks_independent_across_samples_and_channels(submission):
    """Q1: samples and channels get independent decisions"""
    x = positive_maps((60, 30, 2, 2), 4)
    out, _ = forward(submission, x, 0.5, training=True, rng=4)
    dropped = map_mask(out)
    same_for_all_samples = np.all(dropped == dropped[:1], axis=0).all()
    same_for_all_channels = np.all(dropped == dropped[:, :1], axis=1).all()
    assert not same_for_all_samples, (
        "every sample in the batch got the same channel mask: draw the mask with shape "
        "(N, C, 1, 1), not (1, C, 1, 1)."
    )
    assert not same_for_all_channels, (
        "all channels of a sample are dropped or kept together: draw the mask with shape "
        "(N, C, 1, 1), not (N, 1, 1, 1)."
    )


@points(1)
def test_eval_mode_and_rate_zero_are_identity(submission):
    """Q1: training=False and rate=0 return the input unchanged; rate=1 gives zeros"""
    x = positive_maps((8, 4, 3, 3), 5)
    out, _ = forward(submission, x, 0.5, training=False, rng=5)
    assert np.array_equal(out, x), "with training=False the output must equal the input."
    out, _ = forward(submission, x, 0.0, training=True, rng=5)
    assert np.array_equal(out, x), "with rate=0 nothing is dropped: the output must equal the input."
    out, _ = forward(submission, x, 1.0, training=True, rng=5)
    assert np.all(np.isfinite(out)) and np.all(out == 0), (
        "with rate=1 every map is dropped: the output must be all zeros (no division by keep = 0)."
    )


@points(1)
def test_rejects_inputs_that_are_not_4d(submission):
    """Q1: inputs that are not (N, C, H, W) raise ValueError"""
    for shape in ((10, 8), (2, 3, 4)):
        try:
            submission.call("dropout2d_forward", np.ones(shape), 0.5)
        except SubmissionError as err:
            assert err.ename == "ValueError", (
                f"an input of shape {shape} should raise ValueError; it raised {err.ename}: {err.evalue}"
            )
        else:
            raise AssertionError(
                f"an input of shape {shape} should raise ValueError: spatial dropout needs (N, C, H, W)."
            )


@points(1)
def test_float32_stays_float32(submission):
    """Q1/Q2: float32 input gives float32 output and gradient"""
    x = positive_maps((10, 6, 4, 4), 6).astype(np.float32)
    out, cache = forward(submission, x, 0.3, training=True, rng=6)
    assert out.dtype == np.float32, (
        f"float32 input gave {out.dtype} output: multiply by a boolean mask and a Python float, "
        "or cast back with .astype(x.dtype)."
    )
    dx = np.asarray(submission.call("dropout2d_backward", np.ones_like(x), cache))
    assert dx.dtype == np.float32, f"a float32 gradient gave {dx.dtype} dx: keep the dtype of dout."


@points(2)
def test_backward_zero_on_dropped_maps(submission):
    """Q2: the gradient is zero on dropped maps and dout/keep on kept ones"""
    x = positive_maps((30, 10, 4, 4), 7)
    dout = positive_maps(x.shape, 8)
    for rate in (0.3, 0.65):
        out, cache = forward(submission, x, rate, training=True, rng=7)
        dx = np.asarray(submission.call("dropout2d_backward", dout, cache))
        assert dx.shape == x.shape, f"dx must have shape {x.shape}; it has {dx.shape}."
        dropped = out == 0
        assert np.all(dx[dropped] == 0), (
            f"with rate={rate} the gradient is nonzero on dropped feature maps: multiply dout by "
            "the same (N, C, 1, 1) mask as the forward pass."
        )
        assert np.allclose(dx[~dropped], dout[~dropped] / (1 - rate), rtol=1e-5), (
            "on kept feature maps the gradient is dout / keep, the scale of the forward pass."
        )


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
        f"expected the fraction of maps that are zero at every pixel ({expected:.4f}); got "
        f"{value:.4f}: a map with some zero pixels is not a dropped map."
    )


@points(2)
def test_train_cnn_reaches_accuracy(submission):
    """Q4: the small CNN with spatial dropout learns the digits"""
    result = submission.call("train_cnn", "channel", 0.2, seed=1, timeout=120)
    assert isinstance(result, dict), f"train_cnn must return a dict; it returned {type(result).__name__}."
    missing = {"train_accuracy", "val_accuracy"} - set(result)
    assert not missing, f"the dict returned by train_cnn lacks the keys {sorted(missing)}."
    val = float(result["val_accuracy"])
    assert 0.0 <= val <= 1.0, f"val_accuracy must be a fraction in [0, 1]; got {val}."
    assert val >= 0.85, (
        f"train_cnn('channel', 0.2, seed=1) reached a validation accuracy of {val:.3f}; "
        "at least 0.85 is expected: check the architecture, the learning rate, that you train "
        "in train() mode and measure in eval() mode."
    )


@points(1)
def test_make_cnn_rejects_unknown_kind(submission):
    """Q4: make_cnn rejects an unknown kind of dropout"""
    try:
        submission.call("make_cnn", "everything", 0.3)
    except SubmissionError as err:
        assert err.ename == "ValueError", (
            f"make_cnn('everything', 0.3) should raise ValueError; it raised {err.ename}."
        )
    else:
        raise AssertionError("make_cnn('everything', 0.3) should raise ValueError.")
