"""Public self-checks of exercise 4, Monte-Carlo dropout.

Every property the statement asks for is checked here on small inputs; the
hidden tests check the same properties on other inputs and models.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading.public_checks import attempt, need


def _passes(ns, model, x, t, seed):
    mc_predict = need(ns, "mc_predict")
    probs = np.asarray(attempt(mc_predict, model, x, T=t, seed=seed,
                               what=f"mc_predict(model, x, T={t}, seed={seed})"))
    expected = (t, len(x), 10)
    assert probs.shape == expected, f"expected shape (T, N, C) = {expected}; received {probs.shape}."
    sums = probs.sum(axis=2)
    assert np.all(probs >= 0) and np.allclose(sums, 1.0, atol=1e-5), (
        "expected probabilities (each pass sums to 1 over the classes); received sums in "
        f"[{sums.min():.3g}, {sums.max():.3g}]: apply a softmax."
    )
    return probs


def _mc_passes(ns):
    """mc_predict returns (T, N, C) probabilities that vary between passes and follow the seed"""
    model = need(ns, "model", kind="variable")
    x = need(ns, "digits", kind="variable").x_val[:20]
    probs = _passes(ns, model, x, 5, 0)
    assert not np.allclose(probs[0], probs[1]), (
        "expected passes 0 and 1 to differ (dropout on); received identical passes."
    )
    again = _passes(ns, model, x, 5, 0)
    other = _passes(ns, model, x, 5, 1)
    assert np.allclose(probs, again), "seed=0 twice: expected the same passes, received different ones."
    assert not np.allclose(probs, other), "seeds 0 and 1: expected different passes, received the same."


def _tiny_batchnorm_model(rate):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(rate),
                          nn.Linear(8, 10))
    with torch.no_grad():
        model[1].running_mean.fill_(3.0)
    return model.eval()


def _mc_modes(ns):
    """only the dropout modules go to train mode, and every module's mode is restored"""
    import torch

    model = need(ns, "model", kind="variable")
    x = need(ns, "digits", kind="variable").x_val[:4]
    _passes(ns, model, x, 2, 0)
    left = [m for m in model.modules() if m.training]
    assert not left, (
        f"the model was in eval mode: expected every module in eval mode afterwards; received "
        f"{len(left)} module(s) left in train mode."
    )
    tiny = _tiny_batchnorm_model(0.0)
    with torch.no_grad():
        expected = torch.softmax(tiny(torch.from_numpy(x)), dim=1).numpy()
    probs = _passes(ns, tiny, x, 2, 0)
    assert np.allclose(probs, expected[None], atol=1e-5), (
        "a Linear-BatchNorm-ReLU-Dropout(0.0)-Linear model in eval mode: expected every pass to "
        "equal its eval-mode prediction (BatchNorm keeps its running statistics); received "
        f"passes off by up to {np.max(np.abs(probs - expected[None])):.3g}: switch only the "
        "nn.Dropout modules to train mode."
    )
    tiny.train()
    _passes(ns, tiny, x, 2, 0)
    still = [m.training for m in tiny.modules()]
    assert all(still), (
        "a model in train mode before mc_predict: expected it in train mode afterwards; received "
        f"{still.count(False)} module(s) switched to eval mode."
    )


def _summary(ns):
    """predictive_summary: mean, std (ddof=0), entropy and mutual information, 0 log 0 = 0"""
    summary_fn = need(ns, "predictive_summary")
    probs = np.zeros((2, 2, 10))
    probs[0, 0, 3] = probs[1, 0, 5] = 1.0  # input 0: two passes that disagree completely
    probs[:, 1, :2] = 0.5  # input 1: two identical, uncertain passes
    summary = attempt(summary_fn, probs, what="predictive_summary")
    assert isinstance(summary, dict), f"expected a dict; received {type(summary).__name__}."
    missing = {"mean", "std", "entropy", "mutual_information"} - set(summary)
    assert not missing, f"expected the keys mean, std, entropy, mutual_information; missing {sorted(missing)}."
    mean, std, entropy, mi = (np.asarray(summary[k], dtype=float)
                              for k in ("mean", "std", "entropy", "mutual_information"))
    shapes = [a.shape for a in (mean, std, entropy, mi)]
    assert shapes == [(2, 10), (2, 10), (2,), (2,)], (
        f"expected shapes mean (N, C), std (N, C), entropy (N,), mutual_information (N,) = "
        f"[(2, 10), (2, 10), (2,), (2,)]; received {shapes}."
    )
    assert np.allclose(mean, probs.mean(axis=0)) and np.allclose(std, probs.std(axis=0)), (
        "expected mean and std (ddof=0) over the passes (axis 0); received other values."
    )
    assert np.all(np.isfinite(entropy)) and np.all(np.isfinite(mi)), (
        "expected finite values; received nan or inf: probabilities that are exactly 0 "
        "contribute 0 (0 log 0 = 0)."
    )
    expected = [math.log(2), math.log(2)]
    assert np.allclose(entropy, expected, rtol=1e-6), (
        f"expected entropies {np.round(expected, 4).tolist()}; received {np.round(entropy, 4).tolist()}."
    )
    assert np.allclose(mi, [math.log(2), 0.0], atol=1e-9), (
        "expected mutual information [0.6931, 0] (the passes of input 0 disagree, those of input 1 "
        f"agree); received {np.round(mi, 4).tolist()}."
    )


def _ood(ns):
    """make_ood: inverted = 1 - x, seeded uniform noise of x's shape and dtype, ValueError otherwise"""
    make_ood = need(ns, "make_ood")
    x = np.zeros((3, 64), dtype=np.float32)
    inverted = np.asarray(attempt(make_ood, x, "inverted", what="make_ood(x, 'inverted')"))
    assert inverted.shape == x.shape and np.allclose(inverted, 1.0), (
        "inverting an all-black image: expected all pixels 1.0; received values in "
        f"[{inverted.min():.3g}, {inverted.max():.3g}] with shape {inverted.shape}."
    )
    noise = np.asarray(attempt(make_ood, x, "noise", seed=1, what="make_ood(x, 'noise', seed=1)"))
    assert noise.shape == x.shape and noise.dtype == x.dtype, (
        f"noise: expected shape {x.shape} and dtype {x.dtype}; received {noise.shape}, {noise.dtype}."
    )
    assert noise.min() >= 0 and noise.max() < 1 and noise.std() > 0.2, (
        f"noise: expected uniform values in [0, 1); received values in [{noise.min():.3g}, {noise.max():.3g}]."
    )
    again = np.asarray(make_ood(x, "noise", seed=1))
    other = np.asarray(make_ood(x, "noise", seed=2))
    assert np.array_equal(noise, again) and not np.array_equal(noise, other), (
        "expected the same noise for the same seed and other noise for another seed."
    )
    try:
        make_ood(x, "rotated")
    except ValueError:
        return
    except Exception as err:
        raise AssertionError(f"kind='rotated': expected ValueError, received {type(err).__name__}.") from None
    raise AssertionError("kind='rotated': expected ValueError, received no exception.")


def _table(ns):
    """uncertainty holds the mean entropies on test, noise and inverted inputs"""
    table = need(ns, "uncertainty", kind="variable")
    assert isinstance(table, dict), f"expected a dict; received {type(table).__name__}."
    missing = {"test", "noise", "inverted"} - set(table)
    assert not missing, f"expected the keys test, noise, inverted; missing {sorted(missing)}."
    values = {k: float(v) for k, v in table.items()}
    assert all(0.0 <= v <= math.log(10) + 1e-9 for v in values.values()), (
        f"expected mean entropies between 0 and log 10 = 2.303 nats; received {values}."
    )
    for name in ("noise", "inverted"):
        assert values[name] > values["test"], (
            f"expected more uncertainty on {name} inputs than on test digits; received "
            f"{values[name]:.3f} vs {values['test']:.3f}."
        )
    model, digits = need(ns, "model", kind="variable"), need(ns, "digits", kind="variable")
    make_ood, summary_fn = need(ns, "make_ood"), need(ns, "predictive_summary")
    for name, inputs in (("test", digits.x_test), ("noise", make_ood(digits.x_test, "noise")),
                         ("inverted", make_ood(digits.x_test, "inverted"))):
        passes = _passes(ns, model, inputs, 50, 0)
        expected = float(np.mean(np.asarray(summary_fn(passes)["entropy"])))
        assert math.isclose(values[name], expected, abs_tol=1e-3), (
            f"uncertainty[{name!r}]: expected {expected:.4f} (your functions, T=50, seed=0, on the "
            f"{name} inputs of the test set); received {values[name]:.4f}."
        )


def _concepts(ns):
    """the three answers are set, with the right types (the hidden tests check the values)"""
    for name in ("q5_max_entropy", "q5_two_pass_mutual_information"):
        value = need(ns, name, kind="variable")
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"{name}: expected a number, received {value!r}."
        )
    choice = need(ns, "q5_train_mode_layers", kind="variable")
    assert isinstance(choice, str) and choice.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_train_mode_layers: expected one of 'a', 'b', 'c', 'd', received {choice!r}."
    )


CHECKS = {"q1": [_mc_passes, _mc_modes], "q2": [_summary], "q3": [_ood], "q4": [_table],
          "q5": [_concepts]}
