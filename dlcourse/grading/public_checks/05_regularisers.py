"""Public self-checks of exercise 5, regularisers compared (weaker than the hidden tests)."""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading.public_checks import attempt, need


def _penalty(ns):
    """l2_penalty adds (lam / 2) * the squared weights"""
    l2_penalty = need(ns, "l2_penalty")
    w = [np.ones((2, 3)), np.full((3, 1), 2.0)]
    value = attempt(l2_penalty, w, 0.0, what="l2_penalty(weights, 0.0)")
    assert float(value) == 0.0, "with lam = 0 the penalty should be 0."
    value = float(attempt(l2_penalty, w, 1.0, what="l2_penalty(weights, 1.0)"))
    total = 6 * 1.0 + 3 * 4.0
    if math.isclose(value, total):
        raise AssertionError("the penalty is lam * sum(W**2): it should be HALF of that, (lam / 2) * sum(W**2).")
    assert math.isclose(value, total / 2), (
        "l2_penalty should sum the squares of the entries of every matrix and multiply by lam / 2."
    )


def _gradient(ns):
    """l2_gradient returns one array per weight matrix"""
    l2_gradient = need(ns, "l2_gradient")
    w = [np.ones((2, 3), np.float32), np.full((3, 1), 2.0, np.float32)]
    grads = attempt(l2_gradient, w, 0.5, what="l2_gradient(weights, 0.5)")
    assert isinstance(grads, list) and len(grads) == 2, "l2_gradient should return a list with one array per matrix."
    for g, wi in zip(grads, w, strict=True):
        g = np.asarray(g)
        assert g.shape == wi.shape, f"each gradient should have the shape of its matrix {wi.shape}; got {g.shape}."
    assert np.all(w[0] == 1.0) and np.all(w[1] == 2.0), "l2_gradient must not modify the weights."


def _early(ns):
    """early_stopping follows the example of the instructions"""
    early_stopping = need(ns, "early_stopping")
    result = attempt(early_stopping, [3.0, 2.0, 2.5, 2.1, 1.0], 2, what="early_stopping(losses, 2)")
    assert isinstance(result, dict) and {"best_epoch", "stop_epoch"} <= set(result), (
        "early_stopping should return a dict with the keys 'best_epoch' and 'stop_epoch'."
    )
    assert (result["best_epoch"], result["stop_epoch"]) == (1, 3), (
        "for the example of the instructions (patience 2, losses [3, 2, 2.5, 2.1, 1]) training stops "
        f"at epoch 3 with best epoch 1; you returned best {result['best_epoch']}, stop {result['stop_epoch']}."
    )
    result = attempt(early_stopping, [5.0, 4.0, 3.0], 2, what="early_stopping")
    assert result["stop_epoch"] is None, "when the loss improves at every epoch, stop_epoch should be None."


def _shift(ns):
    """shift_digits returns shifted images of the same shape and dtype"""
    shift_digits = need(ns, "shift_digits")
    x = np.zeros((20, 64), np.float32)
    x[:, 27] = 1.0  # one bright pixel at row 3, column 3
    before = x.copy()
    out = np.asarray(attempt(shift_digits, x, np.random.default_rng(0), what="shift_digits"))
    assert out.shape == x.shape and out.dtype == x.dtype, (
        f"the result should have the shape {x.shape} and dtype {x.dtype}; got {out.shape}, {out.dtype}."
    )
    assert np.array_equal(x, before), "shift_digits must not modify its input."
    assert np.allclose(out.sum(axis=1), 1.0), "a pixel in the middle of the image should survive a one-pixel shift."
    rows, cols = np.nonzero(out.reshape(20, 8, 8))[1:]
    assert np.all(np.abs(rows - 3) <= 1) and np.all(np.abs(cols - 3) <= 1), (
        "each image should move by at most one pixel in each direction."
    )


def _table(ns):
    """results covers every method and best_method is chosen on validation"""
    results = need(ns, "results", kind="variable")
    methods = need(ns, "METHODS", kind="variable")
    assert isinstance(results, dict) and set(results) == set(methods), (
        "results should be a dict with one entry per method of METHODS."
    )
    for method, row in results.items():
        for key in ("train_accuracy", "val_accuracy", "test_accuracy", "epochs_run", "weight_norm"):
            assert key in row, f"results[{method!r}] lacks the key {key!r}."
    best = need(ns, "best_method", kind="variable")
    assert best in methods, "best_method should be one of METHODS."
    assert results[best]["val_accuracy"] == max(r["val_accuracy"] for r in results.values()), (
        "best_method should be a method with the highest validation accuracy."
    )


CHECKS = {"q1": [_penalty, _gradient], "q2": [_early], "q3": [_shift], "q4": [_table]}
