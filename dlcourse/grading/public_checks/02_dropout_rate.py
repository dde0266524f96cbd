"""Public self-checks of exercise 2, choosing the dropout rate (weaker than the hidden tests)."""

from __future__ import annotations

from dlcourse.grading.public_checks import attempt, need

CURVES = ("accuracy", "val_accuracy", "loss", "val_loss")


def _check_result(result, rate, epochs, what):
    assert isinstance(result, dict), f"{what} should return a dict; it returned {type(result).__name__}."
    missing = {"rate", "seed", "train_accuracy", "val_accuracy", "history"} - set(result)
    assert not missing, f"the dict returned by {what} lacks the keys {sorted(missing)}."
    assert result["rate"] == rate, f"result['rate'] should be the rate asked for ({rate})."
    for key in ("train_accuracy", "val_accuracy"):
        assert 0.0 <= float(result[key]) <= 1.0, f"result[{key!r}] should be a fraction in [0, 1]."
    history = result["history"]
    assert isinstance(history, dict), "result['history'] should be a dict of per-epoch lists."
    for key in CURVES:
        assert key in history, f"result['history'] lacks the curve {key!r}."
        assert len(history[key]) == epochs, (
            f"result['history'][{key!r}] should hold one value per epoch ({epochs}); "
            f"it holds {len(history[key])}."
        )


def _one_run(ns):
    """train_at_rate returns accuracies and per-epoch curves"""
    train_at_rate = need(ns, "train_at_rate")
    result = attempt(train_at_rate, 0.1, seed=0, epochs=3, what="train_at_rate(0.1, seed=0, epochs=3)")
    _check_result(result, 0.1, 3, "train_at_rate")
    assert float(result["val_accuracy"]) == float(result["history"]["val_accuracy"][-1]), (
        "result['val_accuracy'] should be the validation accuracy after the last epoch."
    )


def _sweep(ns):
    """results holds one run per rate of RATES, in order"""
    results = need(ns, "results", kind="variable")
    rates = need(ns, "RATES", kind="variable")
    epochs = need(ns, "EPOCHS", kind="variable")
    assert isinstance(results, list), "results (the value of sweep(RATES)) should be a list."
    assert [r.get("rate") if isinstance(r, dict) else None for r in results] == list(rates), (
        "results should hold one result dict per rate of RATES, in the same order."
    )
    for r in results:
        _check_result(r, r["rate"], epochs, "sweep")


def _choose(ns):
    """choose_rate picks the rate with the best validation accuracy"""
    choose_rate = need(ns, "choose_rate")
    fake = [{"rate": 0.1, "val_accuracy": 0.80}, {"rate": 0.3, "val_accuracy": 0.91},
            {"rate": 0.7, "val_accuracy": 0.85}]
    chosen = attempt(choose_rate, fake, what="choose_rate")
    assert chosen == 0.3, "on a made-up sweep, choose_rate did not return the rate with the best val_accuracy."
    assert "chosen_rate" in ns, "store your choice in the variable chosen_rate."


CHECKS = {"q1": [_one_run], "q2": [_sweep], "q3": [_choose]}
