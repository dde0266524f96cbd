"""Public self-checks of exercise 4, Monte-Carlo dropout (weaker than the hidden tests)."""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading.public_checks import attempt, need


def _mc_shape(ns):
    """mc_predict returns (T, N, C) probabilities that vary between passes"""
    mc_predict = need(ns, "mc_predict")
    model = need(ns, "model", kind="variable")
    digits = need(ns, "digits", kind="variable")
    x = digits.x_val[:20]
    probs = np.asarray(attempt(mc_predict, model, x, T=5, seed=0, what="mc_predict(model, x, T=5)"))
    assert probs.shape == (5, 20, 10), f"expected shape (T, N, C) = (5, 20, 10); got {probs.shape}."
    assert np.allclose(probs.sum(axis=2), 1.0, atol=1e-5), (
        "each pass should give probabilities that sum to 1 over the classes: apply a softmax."
    )
    assert not np.allclose(probs[0], probs[1]), (
        "two passes gave the same probabilities: dropout is not active during the passes."
    )


def _summary(ns):
    """predictive_summary gives the mean, the spread and the entropy"""
    summary_fn = need(ns, "predictive_summary")
    probs = np.zeros((2, 1, 10))
    probs[0, 0, 3] = 1.0
    probs[1, 0, 5] = 1.0  # two passes that disagree completely
    summary = attempt(summary_fn, probs, what="predictive_summary")
    assert isinstance(summary, dict), "predictive_summary should return a dict."
    missing = {"mean", "std", "entropy"} - set(summary)
    assert not missing, f"the dict lacks the keys {sorted(missing)}."
    mean, std, entropy = (np.asarray(summary[k]) for k in ("mean", "std", "entropy"))
    assert mean.shape == (1, 10) and std.shape == (1, 10) and entropy.shape == (1,), (
        "expected shapes: mean (N, C), std (N, C), entropy (N,); got "
        f"{mean.shape}, {std.shape}, {entropy.shape}."
    )
    assert np.all(np.isfinite(entropy)), (
        "the entropy is nan or inf: probabilities that are exactly 0 contribute 0 (0 log 0 = 0)."
    )
    assert math.isclose(float(entropy[0]), math.log(2), rel_tol=1e-6), (
        "two passes split evenly between two classes: the mean is 1/2, 1/2, so the entropy "
        f"should be log 2 = 0.693 nats; got {float(entropy[0]):.4f}."
    )


def _ood(ns):
    """make_ood makes noise and inverted digits of the right shape"""
    make_ood = need(ns, "make_ood")
    x = np.zeros((3, 64), dtype=np.float32)
    inverted = np.asarray(attempt(make_ood, x, "inverted", what="make_ood(x, 'inverted')"))
    assert inverted.shape == x.shape and np.allclose(inverted, 1.0), (
        "inverting an all-black image should give an all-white one (pixel value 1)."
    )
    noise = np.asarray(attempt(make_ood, x, "noise", what="make_ood(x, 'noise')"))
    assert noise.shape == x.shape, f"noise should have the shape of x {x.shape}; got {noise.shape}."
    assert noise.dtype == x.dtype, f"noise should have the dtype of x ({x.dtype}); got {noise.dtype}."


def _table(ns):
    """uncertainty holds the mean entropies on test, noise and inverted inputs"""
    table = need(ns, "uncertainty", kind="variable")
    assert isinstance(table, dict), "uncertainty should be a dict."
    missing = {"test", "noise", "inverted"} - set(table)
    assert not missing, f"uncertainty lacks the keys {sorted(missing)}."
    assert all(0.0 <= float(v) <= math.log(10) + 1e-9 for v in table.values()), (
        "mean entropies over 10 classes lie between 0 and log 10 = 2.303 nats."
    )
    assert float(table["noise"]) > float(table["test"]), (
        "the network should be more uncertain on noise than on real test digits; check "
        "that your entries are computed on the right inputs."
    )


CHECKS = {"q1": [_mc_shape], "q2": [_summary], "q3": [_ood], "q4": [_table]}
