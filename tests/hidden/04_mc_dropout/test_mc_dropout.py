"""Hidden tests of exercise 4, Monte-Carlo dropout.

The student's ``mc_predict`` runs on the student's trained ``model`` (a
kernel-side object passed by reference); every summary is recomputed here
with NumPy oracles.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.data import load_digits
from dlcourse.grading import SubmissionError, points


def digits_subset(n=120):
    return load_digits().x_test[:n]



def oracle_entropy(probs):
    mean = np.asarray(probs, dtype=np.float64).mean(axis=0)
    logs = np.log(np.where(mean > 0, mean, 1.0))
    return -np.sum(mean * logs, axis=1)


def mc(submission, x, T, seed):
    probs = np.asarray(submission.call("mc_predict", submission.ref("model"), x, T=T, seed=seed,
                                       timeout=60))
    return probs


@points(1)
def test_mc_predict_returns_probabilities(submission):
    """Q1: mc_predict returns (T, N, C) softmax probabilities"""
    x = digits_subset(50)
    probs = mc(submission, x, 7, 0)
    assert probs.shape == (7, 50, 10), (
        f"mc_predict(model, x, T=7) with x of shape (50, 64) should return shape (7, 50, 10); "
        f"got {probs.shape}."
    )
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=2), 1.0, atol=1e-5), (
        "each pass should give probabilities (non-negative, summing to 1 over the classes): "
        "apply torch.softmax(logits, dim=1) — not the raw logits."
    )


@points(1)
def test_mc_predict_keeps_dropout_on(submission):
    """Q1: the passes use independent dropout masks"""
    probs = mc(submission, digits_subset(80), 10, 1)
    spread = np.ptp(probs, axis=0).max(axis=1)
    varies = float(np.mean(spread > 1e-7))
    assert varies >= 0.9, (
        f"the T passes agree exactly on {1 - varies:.0%} of the inputs: dropout must be ON "
        "during the passes (put the nn.Dropout modules in train mode)."
    )


@points(1)
def test_mc_predict_is_seeded(submission):
    """Q1: the same seed gives the same passes, another seed other passes"""
    x = digits_subset(40)
    first, again, other = mc(submission, x, 5, 3), mc(submission, x, 5, 3), mc(submission, x, 5, 4)
    assert np.allclose(first, again), (
        "mc_predict with the same seed returned different passes: call torch.manual_seed(seed) "
        "before the passes."
    )
    if np.allclose(first, first[:1]):
        return  # the passes do not vary at all: dropout is off, which another test reports
    assert not np.allclose(first, other), (
        "mc_predict with different seeds returned the same passes: use the seed argument."
    )


@points(1)
def test_mc_predict_restores_eval_mode(submission):
    """Q1: the model is back in its previous (eval) mode afterwards"""
    mc(submission, digits_subset(10), 3, 0)
    modes = [submission.get("model.training")]
    modes += [submission.get(f"model.{i}.training") for i in (2, 5)]
    assert not any(modes), (
        "after mc_predict the model (or its dropout layers) stayed in training mode: remember "
        "each module's mode and restore it, so that an ordinary model(x) is deterministic again."
    )


def random_probs(rng, t, n, c, zeros=False):
    logits = rng.normal(scale=2.0, size=(t, n, c))
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    if zeros:
        probs[:, ::2, 1:] = 0.0  # some inputs: every pass is certain of class 0
        probs[:, ::2, 0] = 1.0
        probs[:, 1::4, 3] = 0.0
        probs /= probs.sum(axis=2, keepdims=True)
    return probs


@points(1)
def test_summary_mean_and_std(submission):
    """Q2: the predictive mean and standard deviation over the passes"""
    probs = random_probs(np.random.default_rng(0), 9, 12, 6)
    summary = submission.call("predictive_summary", probs)
    assert isinstance(summary, dict), f"predictive_summary must return a dict; got {type(summary).__name__}."
    mean, std = np.asarray(summary.get("mean")), np.asarray(summary.get("std"))
    assert mean.shape == (12, 6) and np.allclose(mean, probs.mean(axis=0), atol=1e-8), (
        "summary['mean'] must be the average of the T passes, shape (N, C): average over axis 0."
    )
    assert std.shape == (12, 6) and np.allclose(std, probs.std(axis=0), atol=1e-8), (
        "summary['std'] must be the standard deviation over the T passes (axis 0, ddof=0), shape (N, C)."
    )


@points(1)
def test_summary_entropy(submission):
    """Q2: the predictive entropy of the mean, in nats"""
    probs = random_probs(np.random.default_rng(1), 6, 15, 10)
    entropy = np.asarray(submission.call("predictive_summary", probs).get("entropy"))
    expected = oracle_entropy(probs)
    assert entropy.shape == (15,), f"summary['entropy'] must have shape (N,) = (15,); got {entropy.shape}."
    if np.allclose(entropy, expected / math.log(2), atol=1e-6):
        raise AssertionError("the entropy is in bits: use the natural logarithm (nats).")
    assert np.allclose(entropy, expected, atol=1e-6), (
        "summary['entropy'] must be the entropy of the MEAN probabilities, "
        "-sum_c mean_c * log(mean_c) (not the mean of the per-pass entropies)."
    )


@points(1)
def test_summary_entropy_with_zero_probabilities(submission):
    """Q2: probabilities that are exactly zero contribute nothing (0 log 0 = 0)"""
    probs = random_probs(np.random.default_rng(2), 4, 16, 5, zeros=True)
    entropy = np.asarray(submission.call("predictive_summary", probs).get("entropy"))
    assert np.all(np.isfinite(entropy)), (
        "the entropy is nan where some probabilities are exactly 0: treat 0 * log 0 as 0 "
        "(e.g. np.log(np.where(p > 0, p, 1)))."
    )
    certain = slice(0, None, 2)  # these inputs get probability 1 for class 0 in every pass
    assert np.allclose(entropy[certain], 0.0, atol=1e-6), (
        "a prediction that is certain in every pass (probability 1 for one class, exactly 0 for the "
        "others) must have entropy 0: treat 0 * log 0 as 0."
    )


@points(1)
def test_make_ood(submission):
    """Q3: noise and inverted inputs"""
    x = digits_subset(30).astype(np.float32)
    inverted = np.asarray(submission.call("make_ood", x, "inverted"))
    assert inverted.shape == x.shape and np.allclose(inverted, 1.0 - x, atol=1e-6), (
        "make_ood(x, 'inverted') must return 1 - x."
    )
    noise = np.asarray(submission.call("make_ood", x, "noise", seed=5))
    assert noise.shape == x.shape and noise.dtype == x.dtype, (
        f"noise must have the shape and dtype of x {x.shape}, {x.dtype}; got {noise.shape}, {noise.dtype}."
    )
    assert noise.min() >= 0 and noise.max() < 1 and noise.std() > 0.2, (
        "noise must be uniform random pixels in [0, 1)."
    )
    again = np.asarray(submission.call("make_ood", x, "noise", seed=5))
    other = np.asarray(submission.call("make_ood", x, "noise", seed=6))
    assert np.array_equal(noise, again) and not np.array_equal(noise, other), (
        "make_ood(x, 'noise', seed) must draw with np.random.default_rng(seed): the same seed, "
        "the same noise; another seed, other noise."
    )
    try:
        submission.call("make_ood", x, "rotated")
    except SubmissionError as err:
        assert err.ename == "ValueError", f"an unknown kind should raise ValueError; got {err.ename}."
    else:
        raise AssertionError("make_ood(x, 'rotated') should raise ValueError.")


@points(1)
def test_out_of_distribution_is_more_uncertain(submission):
    """Q4: noise and inverted digits are more uncertain than test digits"""
    x = digits_subset(150)
    noise = np.random.default_rng(7).random(x.shape).astype(np.float32)
    entropies = {
        name: float(oracle_entropy(mc(submission, inputs, 30, 0)).mean())
        for name, inputs in (("test", x), ("noise", noise), ("inverted", 1.0 - x))
    }
    for name in ("noise", "inverted"):
        assert entropies[name] > entropies["test"], (
            f"with your mc_predict the mean predictive entropy on {name} inputs "
            f"({entropies[name]:.3f}) is not above that on test digits ({entropies['test']:.3f}): "
            "check that dropout is on during the passes and that you average probabilities."
        )


@points(1)
def test_uncertainty_table_follows_from_the_functions(submission):
    """Q4: the uncertainty table holds what your functions compute"""
    table = submission.get("uncertainty")
    assert isinstance(table, dict) and {"test", "noise", "inverted"} <= set(table), (
        "uncertainty must be a dict with the keys 'test', 'noise' and 'inverted'."
    )
    x = load_digits().x_test
    inputs = {
        "test": x,
        "noise": np.asarray(submission.call("make_ood", x, "noise")),
        "inverted": np.asarray(submission.call("make_ood", x, "inverted")),
    }
    for name, data in inputs.items():
        # recomputed with the student's own functions: this test is about the table, not them
        summary = submission.call("predictive_summary", mc(submission, data, 50, 0))
        expected = float(np.mean(summary["entropy"]))
        assert math.isclose(float(table[name]), expected, abs_tol=1e-3), (
            f"uncertainty[{name!r}] is {float(table[name]):.4f}, but your predictive_summary of "
            f"mc_predict(model, ..., T=50, seed=0) on the {name} inputs of the whole test set gives "
            f"a mean entropy of {expected:.4f}."
        )
