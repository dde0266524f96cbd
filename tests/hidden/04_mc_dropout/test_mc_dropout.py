"""Hidden tests of exercise 4, Monte-Carlo dropout.

The student's ``mc_predict`` runs on the student's trained ``model`` (the
notebook's given model, passed by reference) and on a test model built here
in the kernel from builtins only (never from the notebook's names): a
network with a BatchNorm layer, whose weights the grader sends, so that
"only the dropout layers in train mode" can be told apart from "the whole
model in train mode". Every summary is recomputed here with NumPy oracles.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.data import load_digits
from dlcourse.grading import SubmissionDied, SubmissionError, SubmissionTimeout, points
from dlcourse.grading.kernel_objects import answer, number


def digits_subset(n=120):
    return load_digits().x_test[:n]


def oracle_entropy(probs):
    mean = np.asarray(probs, dtype=np.float64).mean(axis=0)
    logs = np.log(np.where(mean > 0, mean, 1.0))
    return -np.sum(mean * logs, axis=1)


def oracle_mutual_information(probs):
    probs = np.asarray(probs, dtype=np.float64)
    per_pass = -np.sum(probs * np.log(np.where(probs > 0, probs, 1.0)), axis=2)
    return oracle_entropy(probs) - per_pass.mean(axis=0)


def check_probabilities(probs, t, n, what="mc_predict"):
    assert probs.shape == (t, n, 10), (
        f"{what} with T={t} on {n} inputs: expected shape ({t}, {n}, 10), received {probs.shape}."
    )
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=2), 1.0, atol=1e-5), (
        f"{what}: each pass should give probabilities (non-negative, summing to 1 over the "
        f"classes); received sums between {probs.sum(axis=2).min():.3g} and "
        f"{probs.sum(axis=2).max():.3g}: apply torch.softmax(logits, dim=1)."
    )


def mc(submission, x, t, seed, model=None):
    model = submission.ref("model") if model is None else model
    probs = np.asarray(submission.call("mc_predict", model, x, T=t, seed=seed, timeout=60))
    check_probabilities(probs, t, len(x))
    return probs


def varies(probs) -> float:
    """Fraction of inputs whose probabilities differ between the passes."""
    return float(np.mean(np.ptp(probs, axis=0).max(axis=1) > 1e-7))


# -- a model built in the kernel, from builtins only --------------------------------------
def kernel_attr(submission, obj, *names):
    for name in names:
        obj = submission.new("__builtins__.getattr", obj, name)
    return obj


def kernel_call(submission, func, *args):
    """A handle to ``func(*args)``, called in the kernel through builtins (map/iter, next)."""
    calls = (submission.new("__builtins__.map", func, *[[a] for a in args]) if args
             else submission.new("__builtins__.iter", func, None))  # iter(f, None) calls f()
    return submission.new("__builtins__.next", calls)


def ignore_result(handle, method, *args):
    """Call a method whose result cannot travel (a module, a NamedTuple)."""
    try:
        handle.call(method, *args)
    except (SubmissionTimeout, SubmissionDied):
        raise
    except SubmissionError as err:
        if err.ename is not None:
            raise


def batchnorm_model(submission, rate, seed=5):
    """The same Linear-BatchNorm-ReLU-Dropout-Linear network here and in the kernel (eval mode)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    here = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(rate),
                         nn.Linear(32, 10))
    with torch.no_grad():  # running statistics far from any batch's: train-mode BN is visible
        here[1].running_mean.copy_(torch.randn(32) * 2.0)
        here[1].running_var.copy_(torch.rand(32) * 3.0 + 0.5)
    here.eval()
    nn_k = kernel_attr(submission, submission.new("__builtins__.__import__", "torch"), "nn")
    layers = [kernel_call(submission, kernel_attr(submission, nn_k, "Linear"), 64, 32),
              kernel_call(submission, kernel_attr(submission, nn_k, "BatchNorm1d"), 32),
              kernel_call(submission, kernel_attr(submission, nn_k, "ReLU")),
              kernel_call(submission, kernel_attr(submission, nn_k, "Dropout"), rate),
              kernel_call(submission, kernel_attr(submission, nn_k, "Linear"), 32, 10)]
    there = kernel_call(submission, kernel_attr(submission, nn_k, "Sequential"), *layers)
    state = {key: submission.tensor(value.numpy()) for key, value in here.state_dict().items()}
    ignore_result(there, "load_state_dict", state)
    ignore_result(there, "eval")
    return here, there, layers


def modes(submission, model, layers):
    return [model.get("training")] + [layer.get("training") for layer in layers]


# -- Q1: mc_predict -----------------------------------------------------------------------
@points(1)
def test_mc_predict_returns_probabilities(submission):
    """Q1: mc_predict returns (T, N, C) softmax probabilities"""
    probs = mc(submission, digits_subset(50), 7, 0)
    assert varies(probs) > 0.5, (
        "the passes of mc_predict should differ (dropout on); they agree on "
        f"{1 - varies(probs):.0%} of the inputs."
    )


@points(1)
def test_mc_predict_keeps_dropout_on(submission):
    """Q1: the passes use independent dropout masks"""
    probs = mc(submission, digits_subset(80), 10, 1)
    fraction = varies(probs)
    assert fraction >= 0.9, (
        f"expected the T passes to differ on (nearly) every input; they agree exactly on "
        f"{1 - fraction:.0%} of them: dropout must be ON during the passes (nn.Dropout "
        "modules in train mode), with a new mask in every pass."
    )
    distinct = len({probs[t].tobytes() for t in range(len(probs))})
    assert distinct == len(probs), (
        f"expected {len(probs)} different passes; received {distinct} distinct ones."
    )


@points(1)
def test_mc_predict_is_seeded(submission):
    """Q1: the same seed gives the same passes, another seed other passes"""
    x = digits_subset(40)
    first, again, other = mc(submission, x, 5, 3), mc(submission, x, 5, 3), mc(submission, x, 5, 4)
    assert varies(first) > 0.5, (
        "the passes do not vary (dropout off), so seeding cannot be checked: no point yet."
    )
    assert np.allclose(first, again), (
        "mc_predict with seed=3 twice: expected the same passes, received different ones: "
        "call torch.manual_seed(seed) before the passes."
    )
    assert not np.allclose(first, other), (
        "mc_predict with seeds 3 and 4: expected different passes, received the same: use "
        "the seed argument."
    )


@points(1)
def test_mc_predict_restores_the_modes(submission):
    """Q1: every module is back in the mode it was in before"""
    import torch

    probs = mc(submission, digits_subset(10), 3, 0)
    assert varies(probs) > 0.5, "the passes do not vary (dropout off): no point yet."
    after = [submission.get("model.training")] + [submission.get(f"model.{i}.training")
                                                  for i in (2, 5)]
    assert not any(after), (
        "the notebook's model was in eval mode; after mc_predict expected every module in eval "
        f"mode, received training = {after} (model, dropout 1, dropout 2)."
    )
    _, there, layers = batchnorm_model(submission, 0.5)
    ignore_result(there, "train")  # found in train mode: must be left in train mode
    x = np.asarray(torch.rand(16, 64, generator=torch.Generator().manual_seed(1)))
    probs = mc(submission, x, 3, 0, model=there)
    after = modes(submission, there, layers)
    assert all(after), (
        "a model in TRAIN mode before mc_predict should be left in train mode; received "
        f"training = {after} (model and its 5 layers): restore each module's own mode."
    )


@points(1)
def test_mc_predict_switches_only_dropout_layers(submission):
    """Q1: only the dropout layers go to train mode; BatchNorm keeps its running statistics"""
    import torch

    here, there, layers = batchnorm_model(submission, 0.0)  # dropout that drops nothing
    x = np.asarray(torch.rand(24, 64, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        expected = torch.softmax(here(torch.from_numpy(x)), dim=1).numpy()
    probs = mc(submission, x, 4, 0, model=there)
    error = float(np.max(np.abs(probs - expected[None])))
    assert error < 1e-5, (
        "on a model Linear-BatchNorm-ReLU-Dropout(0.0)-Linear in eval mode every pass should "
        "equal the eval-mode prediction (BatchNorm keeps its running statistics, dropout with "
        f"rate 0 changes nothing); received passes off by up to {error:.3g}: put ONLY the "
        "nn.Dropout modules in train mode, not the whole model."
    )
    after = modes(submission, there, layers)
    assert not any(after), (
        f"the model was in eval mode; after mc_predict received training = {after}."
    )


# -- Q2: the summary ----------------------------------------------------------------------
def random_probs(rng, t, n, c, zeros=False):
    logits = rng.normal(scale=2.0, size=(t, n, c))
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    if zeros:
        probs[:, ::2, 1:] = 0.0  # some inputs: every pass is certain of class 0
        probs[:, ::2, 0] = 1.0
        probs[:, 1::4, 3] = 0.0
        probs /= probs.sum(axis=2, keepdims=True)
    return probs


def summarise(submission, probs, key):
    summary = submission.call("predictive_summary", probs)
    assert isinstance(summary, dict), (
        f"predictive_summary should return a dict; received {type(summary).__name__}."
    )
    assert key in summary, f"the dict of predictive_summary lacks the key {key!r}."
    return np.asarray(summary[key])


@points(1)
def test_summary_mean_and_std(submission):
    """Q2: the predictive mean and standard deviation over the passes"""
    probs = random_probs(np.random.default_rng(0), 9, 12, 6)
    mean = summarise(submission, probs, "mean")
    std = summarise(submission, probs, "std")
    assert mean.shape == (12, 6) and np.allclose(mean, probs.mean(axis=0), atol=1e-8), (
        f"summary['mean']: expected the average over the T passes, shape (12, 6); received shape "
        f"{mean.shape}."
    )
    assert std.shape == (12, 6) and np.allclose(std, probs.std(axis=0), atol=1e-8), (
        "summary['std']: expected the standard deviation over the T passes (axis 0, ddof=0), "
        f"shape (12, 6); received shape {std.shape}"
        + (", and the values of ddof=1" if std.shape == (12, 6)
           and np.allclose(std, probs.std(axis=0, ddof=1)) else "") + "."
    )


@points(1)
def test_summary_entropy(submission):
    """Q2: the predictive entropy of the mean, in nats"""
    probs = random_probs(np.random.default_rng(1), 6, 15, 10)
    entropy = summarise(submission, probs, "entropy")
    expected = oracle_entropy(probs)
    assert entropy.shape == (15,), f"summary['entropy']: expected shape (15,), received {entropy.shape}."
    if np.allclose(entropy, expected / math.log(2), atol=1e-6):
        raise AssertionError("the entropy is in bits: use the natural logarithm (nats).")
    assert np.allclose(entropy, expected, atol=1e-6), (
        "summary['entropy'] should be the entropy of the MEAN probabilities, "
        f"-sum_c mean_c log mean_c: expected e.g. {expected[0]:.4f}, received {entropy[0]:.4f}."
    )


@points(1)
def test_summary_with_zero_probabilities(submission):
    """Q2: probabilities that are exactly zero contribute nothing (0 log 0 = 0)"""
    probs = random_probs(np.random.default_rng(2), 4, 16, 5, zeros=True)
    for key, oracle in (("entropy", oracle_entropy), ("mutual_information", oracle_mutual_information)):
        value = summarise(submission, probs, key)
        assert value.shape == (16,) and np.all(np.isfinite(value)), (
            f"summary[{key!r}] is nan where some probabilities are exactly 0: treat 0 log 0 "
            "as 0 (e.g. np.log(np.where(p > 0, p, 1)))."
        )
        assert np.allclose(value, oracle(probs), atol=1e-6), (
            f"summary[{key!r}] with some zero probabilities: expected "
            f"{np.round(oracle(probs)[:3], 4).tolist()}..., received {np.round(value[:3], 4).tolist()}..."
        )
    assert np.allclose(summarise(submission, probs, "entropy")[::2], 0.0, atol=1e-9), (
        "inputs whose every pass is certain (probability 1 for one class) have entropy 0."
    )


@points(1)
def test_summary_mutual_information(submission):
    """Q2: the mutual information (BALD): entropy of the mean minus the mean entropy"""
    probs = random_probs(np.random.default_rng(3), 8, 14, 7)
    value = summarise(submission, probs, "mutual_information")
    expected = oracle_mutual_information(probs)
    assert value.shape == (14,), f"summary['mutual_information']: expected shape (14,), received {value.shape}."
    assert np.allclose(value, expected, atol=1e-6), (
        "summary['mutual_information'] should be H[mean] - mean_t H[p_t]: expected e.g. "
        f"{expected[0]:.4f}, received {value[0]:.4f}."
    )


@points(1)
def test_mutual_information_is_zero_when_the_passes_agree(submission):
    """Q2: the mutual information is 0 when every pass agrees, whatever the entropy"""
    one = random_probs(np.random.default_rng(4), 1, 10, 6)
    probs = np.repeat(one, 5, axis=0)  # five identical passes: uncertain, but not about the weights
    value = summarise(submission, probs, "mutual_information")
    entropy = summarise(submission, probs, "entropy")
    assert np.all(entropy > 0.1), "the entropy of these predictions is positive."
    assert value.shape == (10,) and np.allclose(value, 0.0, atol=1e-9), (
        "five identical passes: expected a mutual information of 0 for every input; received "
        f"values up to {np.max(np.abs(value)) if value.size else float('nan'):.3g}."
    )


# -- Q3: out-of-distribution inputs -------------------------------------------------------
@points(1)
def test_make_ood_inverted_and_unknown_kind(submission):
    """Q3: inverted digits are 1 - x; an unknown kind raises ValueError"""
    x = digits_subset(30).astype(np.float32)
    inverted = np.asarray(submission.call("make_ood", x, "inverted"))
    assert inverted.shape == x.shape and inverted.dtype == x.dtype, (
        f"make_ood(x, 'inverted'): expected shape {x.shape} and dtype {x.dtype}; received "
        f"{inverted.shape}, {inverted.dtype}."
    )
    assert np.allclose(inverted, 1.0 - x, atol=1e-6), "make_ood(x, 'inverted') should return 1 - x."
    try:
        submission.call("make_ood", x, "rotated")
    except SubmissionError as err:
        assert err.ename == "ValueError", (
            f"make_ood(x, 'rotated'): expected ValueError, received {err.ename}."
        )
    else:
        raise AssertionError("make_ood(x, 'rotated'): expected ValueError, received no exception.")


@points(1)
def test_make_ood_noise(submission):
    """Q3: noise is uniform in [0, 1), seeded, of the shape and dtype of x"""
    x = digits_subset(30).astype(np.float32)
    noise = np.asarray(submission.call("make_ood", x, "noise", seed=5))
    assert noise.shape == x.shape and noise.dtype == x.dtype, (
        f"noise: expected shape {x.shape} and dtype {x.dtype}; received {noise.shape}, {noise.dtype}."
    )
    assert noise.min() >= 0 and noise.max() < 1 and abs(noise.mean() - 0.5) < 0.05 \
        and abs(noise.std() - math.sqrt(1 / 12)) < 0.03, (
            "noise should be uniform random pixels in [0, 1): expected mean 0.5 and standard "
            f"deviation 0.289; received {noise.mean():.3f} and {noise.std():.3f}."
        )
    again = np.asarray(submission.call("make_ood", x, "noise", seed=5))
    other = np.asarray(submission.call("make_ood", x, "noise", seed=6))
    assert np.array_equal(noise, again) and not np.array_equal(noise, other), (
        "make_ood(x, 'noise', seed): expected the same noise for the same seed and other noise "
        "for another seed (np.random.default_rng(seed))."
    )


# -- Q4: the table ------------------------------------------------------------------------
@points(1)
def test_out_of_distribution_is_more_uncertain(submission):
    """Q4: noise and inverted digits are more uncertain than test digits"""
    x = digits_subset(150)
    noise = np.random.default_rng(7).random(x.shape).astype(np.float32)
    passes = {name: mc(submission, inputs, 30, 0)
              for name, inputs in (("test", x), ("noise", noise), ("inverted", 1.0 - x))}
    assert varies(passes["test"]) > 0.5, "the passes do not vary (dropout off): no point yet."
    entropies = {name: float(oracle_entropy(p).mean()) for name, p in passes.items()}
    for name in ("noise", "inverted"):
        assert entropies[name] > entropies["test"], (
            f"with your mc_predict the mean predictive entropy on {name} inputs "
            f"({entropies[name]:.3f}) should exceed that on test digits ({entropies['test']:.3f}): "
            "check that dropout is on during the passes and that you average probabilities."
        )


@points(1)
def test_uncertainty_table_follows_from_the_functions(submission):
    """Q4: the uncertainty table holds what your functions compute"""
    table = submission.get("uncertainty")
    assert isinstance(table, dict) and {"test", "noise", "inverted"} <= set(table), (
        "uncertainty should be a dict with the keys 'test', 'noise' and 'inverted'."
    )
    x = load_digits().x_test
    inputs = {
        "test": x,
        "noise": np.asarray(submission.call("make_ood", x, "noise")),
        "inverted": np.asarray(submission.call("make_ood", x, "inverted")),
    }
    for name, data in inputs.items():
        # recomputed with the student's own functions: this test is about the table, not them
        passes = mc(submission, data, 50, 0)
        assert varies(passes) > 0.5, "the passes do not vary (dropout off): no point yet."
        expected = float(np.mean(summarise(submission, passes, "entropy")))
        assert math.isclose(float(table[name]), expected, abs_tol=1e-3), (
            f"uncertainty[{name!r}]: expected {expected:.4f} (your predictive_summary of "
            f"mc_predict(model, ..., T=50, seed=0) on the {name} inputs of the whole test set), "
            f"received {float(table[name]):.4f}."
        )


# -- Q5: concepts -------------------------------------------------------------------------
@points(1)
def test_concept_largest_entropy(submission):
    """Q5: the largest predictive entropy over 10 classes"""
    value = number(submission, "q5_max_entropy")
    assert math.isclose(value, math.log(10), rel_tol=1e-3), (
        f"q5_max_entropy = {value:g} is not right (in nats)."
    )


@points(1)
def test_concept_mutual_information_of_two_passes(submission):
    """Q5: the mutual information of two passes that disagree completely"""
    value = number(submission, "q5_two_pass_mutual_information")
    assert math.isclose(value, math.log(2), rel_tol=1e-3), (
        f"q5_two_pass_mutual_information = {value:g} is not right (in nats)."
    )


@points(1)
def test_concept_which_layers(submission):
    """Q5: which layers MC dropout puts in training mode"""
    value = answer(submission, "q5_train_mode_layers")
    assert isinstance(value, str) and value.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_train_mode_layers should be one of 'a', 'b', 'c', 'd'; received {value!r}."
    )
    assert value.strip().lower() == "b", f"q5_train_mode_layers = {value!r} is not right."
