"""Public self-checks of exercise 5, regularisers compared.

Every property the statement asks for is checked here on small inputs (and
short training runs); the hidden tests check the same properties on other
inputs and full runs.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading.public_checks import attempt, need


def _penalty(ns):
    """l2_penalty is (lam / 2) * the sum of the squared entries of every matrix, a float"""
    l2_penalty = need(ns, "l2_penalty")
    w = [np.ones((2, 3)), np.full((3, 1), 2.0)]
    value = attempt(l2_penalty, w, 0.0, what="l2_penalty(weights, 0.0)")
    assert float(value) == 0.0, f"lam = 0: expected 0.0, received {value!r}."
    value = attempt(l2_penalty, w, 1.0, what="l2_penalty(weights, 1.0)")
    assert isinstance(value, float), f"expected a Python float, received {type(value).__name__}."
    total = 6 * 1.0 + 3 * 4.0
    assert math.isclose(value, total / 2), (
        f"lam = 1 on matrices whose squares sum to {total:g}: expected (lam / 2) * {total:g} = "
        f"{total / 2:g}, received {value:g}."
    )


def _gradient(ns):
    """l2_gradient returns lam * W for each matrix, in its dtype, without modifying W"""
    l2_gradient = need(ns, "l2_gradient")
    w = [np.ones((2, 3), np.float32), np.full((3, 1), 2.0, np.float32)]
    grads = attempt(l2_gradient, w, 0.5, what="l2_gradient(weights, 0.5)")
    assert isinstance(grads, list) and len(grads) == 2, (
        f"expected a list of 2 arrays (one per matrix), received {type(grads).__name__}."
    )
    for g, wi in zip(grads, w, strict=True):
        g = np.asarray(g)
        assert g.shape == wi.shape and g.dtype == wi.dtype, (
            f"expected shape {wi.shape} and dtype {wi.dtype}; received {g.shape}, {g.dtype}."
        )
        assert np.allclose(g, 0.5 * wi), (
            f"expected lam * W = {np.unique(0.5 * wi).tolist()}; received {np.unique(g).tolist()}."
        )
    assert np.all(w[0] == 1.0) and np.all(w[1] == 2.0), "expected the weights unchanged; l2_gradient modified them."


def _early(ns):
    """early_stopping: the example of the instructions, no stop while improving, ties do not improve"""
    early_stopping = need(ns, "early_stopping")
    cases = [([3.0, 2.0, 2.5, 2.1, 1.0], 2, (1, 3)), ([5.0, 4.0, 3.0], 2, (2, None)),
             ([1.0, 0.5, 0.5, 0.5, 0.2], 2, (1, 3))]
    for losses, patience, expected in cases:
        result = attempt(early_stopping, losses, patience, what=f"early_stopping({losses}, {patience})")
        assert isinstance(result, dict) and {"best_epoch", "stop_epoch"} <= set(result), (
            f"expected a dict with the keys best_epoch and stop_epoch; received {result!r}."
        )
        got = (result["best_epoch"], result["stop_epoch"])
        assert got == expected, (
            f"losses {losses}, patience {patience}: expected (best_epoch, stop_epoch) = {expected}; "
            f"received {got}."
        )


def _shift(ns):
    """shift_digits: independent seeded one-pixel shifts, zero-filled, shape and dtype kept"""
    shift_digits = need(ns, "shift_digits")
    x = np.zeros((40, 64), np.float32)
    x[:, 27] = 1.0  # one bright pixel at row 3, column 3
    before = x.copy()
    out = np.asarray(attempt(shift_digits, x, np.random.default_rng(0), what="shift_digits"))
    assert out.shape == x.shape and out.dtype == x.dtype, (
        f"expected shape {x.shape} and dtype {x.dtype}; received {out.shape}, {out.dtype}."
    )
    assert np.array_equal(x, before), "expected x unchanged; shift_digits modified it."
    assert np.allclose(out.sum(axis=1), 1.0), (
        "expected the bright pixel to survive a one-pixel shift in every image; some lost it."
    )
    rows, cols = np.nonzero(out.reshape(40, 8, 8))[1:]
    assert np.all(np.abs(rows - 3) <= 1) and np.all(np.abs(cols - 3) <= 1), (
        "expected every image moved by at most one pixel in each direction; some moved further."
    )
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) >= 5, (
        "expected varied shifts over 40 images (each image its own dy, dx); received "
        f"{len(set(zip(rows.tolist(), cols.tolist(), strict=True)))} distinct ones."
    )
    again = np.asarray(shift_digits(x, np.random.default_rng(0)))
    assert np.array_equal(out, again), "the same seed: expected the same shifts, received others."
    edge = np.zeros((30, 64), np.float32)
    edge[:, 0] = 1.0  # the top-left pixel: shifted out (up or left) it must vanish, no wrap-around
    moved = np.asarray(shift_digits(edge, np.random.default_rng(1))).reshape(30, 8, 8)
    assert np.all(moved[:, 7, :] == 0) and np.all(moved[:, :, 7] == 0), (
        "expected zeros shifted in from outside the image; received pixels wrapped around (np.roll?)."
    )


def _train(ns):
    """train_model returns the dict of the instructions (two short runs)"""
    train_model = need(ns, "train_model")
    for method in ("l2", "early_stopping"):
        result = attempt(train_model, method, seed=0, epochs=2, what=f"train_model({method!r}, epochs=2)")
        assert isinstance(result, dict), f"expected a dict; received {type(result).__name__}."
        keys = {"method", "train_accuracy", "val_accuracy", "test_accuracy", "epochs_run", "weight_norm"}
        assert keys <= set(result), f"expected the keys {sorted(keys)}; missing {sorted(keys - set(result))}."
        assert result["epochs_run"] == 2, f"epochs=2: expected epochs_run 2, received {result['epochs_run']}."
        assert float(result["val_accuracy"]) > 0.3, (
            f"expected a validation accuracy above 0.3 after 2 epochs; received {float(result['val_accuracy']):.3f}."
        )
    base = float(train_model("baseline", seed=0, epochs=5)["weight_norm"])
    l2 = float(train_model("l2", seed=0, epochs=5)["weight_norm"])
    assert l2 < 0.95 * base, (
        f"5 epochs, seed 0: expected the L2 run's sum of squared weights well below the baseline's "
        f"({base:.1f}); received {l2:.1f}: add l2_gradient to the grads of the Linear layers."
    )
    early = train_model("early_stopping", seed=0)
    epochs = need(ns, "EPOCHS", kind="variable")
    assert early["epochs_run"] < epochs, (
        f"the early-stopping run: expected it to stop before epoch {epochs}; received "
        f"epochs_run = {early['epochs_run']}."
    )
    try:
        train_model("magic", epochs=1)
    except ValueError:
        pass
    else:
        raise AssertionError("method='magic': expected ValueError, received no exception.")


def _table(ns):
    """results covers every method and best_method is chosen on validation"""
    results = need(ns, "results", kind="variable")
    methods = need(ns, "METHODS", kind="variable")
    assert isinstance(results, dict) and set(results) == set(methods), (
        f"expected a dict with one entry per method of METHODS; received keys "
        f"{sorted(results) if isinstance(results, dict) else type(results).__name__}."
    )
    for method, row in results.items():
        for key in ("train_accuracy", "val_accuracy", "test_accuracy", "epochs_run", "weight_norm"):
            assert key in row, f"results[{method!r}]: expected the key {key!r}, missing."
    train_model = need(ns, "train_model")
    again = attempt(train_model, "dropout", what="train_model('dropout')")
    assert math.isclose(float(again["val_accuracy"]), float(results["dropout"]["val_accuracy"])), (
        f"results['dropout']: expected what train_model('dropout') returns (val_accuracy "
        f"{float(again['val_accuracy']):.4f}); received {float(results['dropout']['val_accuracy']):.4f}."
    )
    best = need(ns, "best_method", kind="variable")
    expected = next(m for m in methods
                    if results[m]["val_accuracy"] == max(r["val_accuracy"] for r in results.values()))
    assert best == expected, (
        f"expected best_method {expected!r} (highest validation accuracy, first on ties); received {best!r}."
    )


def _concepts(ns):
    """the three answers are set, with the right types (the hidden tests check the values)"""
    for name in ("q5_decay_factor", "q5_epochs_trained"):
        value = need(ns, name, kind="variable")
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"{name}: expected a number, received {value!r}."
        )
    choice = need(ns, "q5_choose_by", kind="variable")
    assert isinstance(choice, str) and choice.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_choose_by: expected one of 'a', 'b', 'c', 'd', received {choice!r}."
    )


CHECKS = {"q1": [_penalty, _gradient], "q2": [_early], "q3": [_shift], "q4": [_train, _table],
          "q5": [_concepts]}
