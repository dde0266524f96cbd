"""Public self-checks of exercise 2, choosing the dropout rate.

Every property the statement asks for is checked here on short runs and made-up
sweeps; the hidden tests check the same properties on full runs.
"""

from __future__ import annotations

from dlcourse.grading.public_checks import attempt, need

CURVES = ("accuracy", "val_accuracy", "loss", "val_loss")


def _check_result(result, rate, epochs, what):
    assert isinstance(result, dict), f"{what}: expected a dict, received {type(result).__name__}."
    missing = {"rate", "seed", "train_accuracy", "val_accuracy", "history"} - set(result)
    assert not missing, f"{what}: expected the keys rate, seed, train_accuracy, val_accuracy, history; missing {sorted(missing)}."
    assert result["rate"] == rate, f"result['rate']: expected {rate}, received {result['rate']!r}."
    for key in ("train_accuracy", "val_accuracy"):
        assert 0.0 <= float(result[key]) <= 1.0, f"result[{key!r}]: expected a fraction in [0, 1], received {result[key]!r}."
    history = result["history"]
    assert isinstance(history, dict), f"result['history']: expected a dict of per-epoch lists, received {type(history).__name__}."
    for key in CURVES:
        assert key in history, f"result['history']: expected the curve {key!r}, missing."
        assert len(history[key]) == epochs, (
            f"result['history'][{key!r}]: expected {epochs} values (one per epoch), "
            f"received {len(history[key])}."
        )


def _one_run(ns):
    """train_at_rate returns accuracies and per-epoch curves"""
    train_at_rate = need(ns, "train_at_rate")
    result = attempt(train_at_rate, 0.1, seed=0, epochs=3, what="train_at_rate(0.1, seed=0, epochs=3)")
    _check_result(result, 0.1, 3, "train_at_rate")
    assert float(result["val_accuracy"]) == float(result["history"]["val_accuracy"][-1]), (
        "result['val_accuracy']: expected the last value of history['val_accuracy'] "
        f"({float(result['history']['val_accuracy'][-1]):.4f}), received {float(result['val_accuracy']):.4f}."
    )
    assert float(result["train_accuracy"]) == float(result["history"]["accuracy"][-1]), (
        "result['train_accuracy']: expected the last value of history['accuracy'] "
        f"({float(result['history']['accuracy'][-1]):.4f}), received {float(result['train_accuracy']):.4f}."
    )
    again = attempt(train_at_rate, 0.1, seed=0, epochs=3, what="train_at_rate(0.1, seed=0, epochs=3)")
    other = attempt(train_at_rate, 0.1, seed=1, epochs=3, what="train_at_rate(0.1, seed=1, epochs=3)")
    assert again["history"]["loss"] == result["history"]["loss"], (
        "the same rate and seed twice: expected the same curves, received different ones."
    )
    assert other["history"]["loss"] != result["history"]["loss"], (
        "seeds 0 and 1: expected different curves, received the same: use the seed."
    )
    heavy = attempt(train_at_rate, 0.6, seed=0, epochs=3, what="train_at_rate(0.6, seed=0, epochs=3)")
    assert heavy["history"]["loss"] != result["history"]["loss"], (
        "rates 0.1 and 0.6: expected different curves, received the same: pass the rate to mlp."
    )


def _sweep(ns):
    """results holds one run per rate of RATES, in order"""
    results = need(ns, "results", kind="variable")
    rates = need(ns, "RATES", kind="variable")
    epochs = need(ns, "EPOCHS", kind="variable")
    assert isinstance(results, list), "results (the value of sweep(RATES)) should be a list."
    assert [r.get("rate") if isinstance(r, dict) else None for r in results] == list(rates), (
        f"results: expected one result per rate of RATES {list(rates)}, in order; received rates "
        f"{[r.get('rate') if isinstance(r, dict) else None for r in results]}."
    )
    for r in results:
        _check_result(r, r["rate"], epochs, "sweep")
    sweep = need(ns, "sweep")
    small = attempt(sweep, [0.3, 0.0], seed=1, what="sweep([0.3, 0.0], seed=1)")
    assert isinstance(small, list) and [r.get("rate") for r in small] == [0.3, 0.0], (
        "sweep([0.3, 0.0], seed=1): expected a list of 2 results with rates [0.3, 0.0]; received "
        f"{[r.get('rate') for r in small] if isinstance(small, list) else type(small).__name__}."
    )
    single = attempt(need(ns, "train_at_rate"), 0.0, seed=1, what="train_at_rate(0.0, seed=1)")
    assert small[1]["history"]["val_loss"] == single["history"]["val_loss"], (
        "sweep([0.3, 0.0], seed=1)[1]: expected exactly train_at_rate(0.0, seed=1); received other curves."
    )


def _choose(ns):
    """choose_rate picks the rate with the best validation accuracy"""
    choose_rate = need(ns, "choose_rate")
    fake = [{"rate": 0.1, "val_accuracy": 0.80}, {"rate": 0.3, "val_accuracy": 0.91},
            {"rate": 0.7, "val_accuracy": 0.85}]
    chosen = attempt(choose_rate, fake, what="choose_rate")
    assert chosen == 0.3, f"a made-up sweep whose best val_accuracy is at rate 0.3: expected 0.3, received {chosen!r}."
    tie = [{"rate": 0.5, "val_accuracy": 0.9}, {"rate": 0.2, "val_accuracy": 0.9}]
    chosen = attempt(choose_rate, tie, what="choose_rate")
    assert chosen == 0.2, f"rates 0.5 and 0.2 tie: expected the smaller, 0.2; received {chosen!r}."
    chosen_rate = need(ns, "chosen_rate", kind="variable")
    results = need(ns, "results", kind="variable")
    expected = choose_rate(results)
    assert chosen_rate == expected, f"chosen_rate: expected choose_rate(results) = {expected!r}, received {chosen_rate!r}."


CHECKS = {"q1": [_one_run], "q2": [_sweep], "q3": [_choose]}


def _design(ns):
    """the design: one factor varied, a set of factors held fixed, a number of seeds"""
    factors = set(need(ns, "FACTORS", kind="variable"))
    vary = need(ns, "DESIGN_VARY", kind="variable")
    assert isinstance(vary, str) and vary in factors, (
        f"DESIGN_VARY: expected one name of FACTORS, received {vary!r}."
    )
    fixed = need(ns, "DESIGN_HOLD_FIXED", kind="variable")
    assert isinstance(fixed, (set, list, tuple)) and set(fixed) <= factors, (
        f"DESIGN_HOLD_FIXED: expected a set of names from FACTORS, received {fixed!r}."
    )
    assert vary not in set(fixed), (
        f"DESIGN_HOLD_FIXED: expected it not to hold the varied factor {vary!r}; it does."
    )
    seeds = need(ns, "DESIGN_SEEDS", kind="variable")
    assert isinstance(seeds, (int, float)) and not isinstance(seeds, bool) and seeds >= 1, (
        f"DESIGN_SEEDS: expected a positive number, received {seeds!r}."
    )


def _concepts(ns):
    """the two answers are set, with the right types (the hidden tests check the values)"""
    value = need(ns, "q5_points_per_image", kind="variable")
    assert isinstance(value, (int, float)) and not isinstance(value, bool), (
        f"q5_points_per_image: expected a number, received {value!r}."
    )
    choice = need(ns, "q5_choose_on", kind="variable")
    assert isinstance(choice, str) and choice.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_choose_on: expected one of 'a', 'b', 'c', 'd', received {choice!r}."
    )


CHECKS["q4"] = [_design]
CHECKS["q5"] = [_concepts]
