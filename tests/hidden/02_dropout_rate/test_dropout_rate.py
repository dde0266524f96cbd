"""Hidden tests of exercise 2, choosing the dropout rate.

The student's training runs in their kernel; here we check what it reports
(thresholds, structure, determinism) and that the choice follows from the
student's own numbers.
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading import SubmissionError, points

CURVES = ("accuracy", "val_accuracy", "loss", "val_loss")


def run(submission, rate, seed, epochs=None):
    kwargs = {} if epochs is None else {"epochs": epochs}
    result = submission.call("train_at_rate", rate, seed=seed, timeout=120, **kwargs)
    assert isinstance(result, dict), (
        f"train_at_rate must return a dict; it returned {type(result).__name__}."
    )
    missing = {"rate", "seed", "train_accuracy", "val_accuracy", "history"} - set(result)
    assert not missing, f"the dict returned by train_at_rate lacks the keys {sorted(missing)}."
    return result


def oracle_choice(results):
    best = max(float(r["val_accuracy"]) for r in results)
    return min(float(r["rate"]) for r in results if float(r["val_accuracy"]) == best)


@points(1)
def test_history_has_one_value_per_epoch(submission):
    """Q1: history holds per-epoch curves that end at the reported accuracies"""
    result = run(submission, 0.2, 0, epochs=4)
    history = result["history"]
    assert isinstance(history, dict), "result['history'] must be a dict of per-epoch lists."
    for key in CURVES:
        assert key in history and len(history[key]) == 4, (
            f"result['history'][{key!r}] must hold one value per epoch (4 for epochs=4)."
        )
    assert math.isclose(float(result["val_accuracy"]), float(history["val_accuracy"][-1])), (
        "result['val_accuracy'] must be the validation accuracy after the last epoch."
    )
    assert math.isclose(float(result["train_accuracy"]), float(history["accuracy"][-1])), (
        "result['train_accuracy'] must be the training accuracy after the last epoch."
    )


@points(1)
def test_training_is_reproducible(submission):
    """Q1: the same rate and seed give the same numbers; another seed other numbers"""
    first = run(submission, 0.5, 2, epochs=3)
    again = run(submission, 0.5, 2, epochs=3)
    other = run(submission, 0.5, 3, epochs=3)
    assert np.allclose(first["history"]["val_loss"], again["history"]["val_loss"]), (
        "two runs with the same rate and seed gave different curves: pass the seed to both "
        "mlp(..., rng=seed) and fit(..., rng=seed)."
    )
    assert not np.allclose(first["history"]["val_loss"], other["history"]["val_loss"]), (
        "runs with seeds 2 and 3 gave identical curves: use the seed argument."
    )


@points(1)
def test_rate_is_used(submission):
    """Q1: the rate changes the training"""
    none = run(submission, 0.0, 4, epochs=3)
    heavy = run(submission, 0.6, 4, epochs=3)
    assert not np.allclose(none["history"]["loss"], heavy["history"]["loss"]), (
        "rate 0 and rate 0.6 gave identical training curves: pass rate to mlp(..., rate=rate)."
    )


@points(2)
def test_training_reaches_threshold(submission):
    """Q1: a run at rate 0.3 learns the digits"""
    result = run(submission, 0.3, 1)
    val, train = float(result["val_accuracy"]), float(result["train_accuracy"])
    assert 0 <= val <= 1 and 0 <= train <= 1, "accuracies must be fractions in [0, 1]."
    assert val >= 0.88, (
        f"train_at_rate(0.3, seed=1) reached a validation accuracy of {val:.3f}; at least 0.88 "
        "is expected: check the network, the optimiser (Adam, lr=2e-3), batch_size=50 and the "
        "number of epochs."
    )
    history = result["history"]
    assert isinstance(history, dict) and math.isclose(val, float(history["val_accuracy"][-1])) \
        and math.isclose(train, float(history["accuracy"][-1])), (
        "train_accuracy and val_accuracy should be the values after the LAST epoch "
        f"(history[...][-1]); received val_accuracy {val:.4f} for a last epoch of "
        f"{float(history['val_accuracy'][-1]) if isinstance(history, dict) else float('nan'):.4f}."
    )
    assert train >= 0.95, (
        f"train_at_rate(0.3, seed=1) reached a training accuracy of {train:.3f}; at least 0.95 "
        "is expected (accuracy measured in eval mode after the last epoch)."
    )


@points(1)
def test_sweep_structure(submission):
    """Q2: sweep returns one train_at_rate result per rate, in order"""
    results = submission.call("sweep", [0.5, 0.1], seed=5, timeout=240)
    assert isinstance(results, list) and len(results) == 2, (
        "sweep([0.5, 0.1], seed=5) must return a list of 2 results."
    )
    assert [float(r["rate"]) for r in results] == [0.5, 0.1], (
        "the results of sweep must follow the order of the rates given."
    )
    single = run(submission, 0.1, 5)
    assert np.allclose(results[1]["history"]["val_loss"], single["history"]["val_loss"]), (
        "sweep(rates, seed) must return train_at_rate(rate, seed) for each rate: the result "
        "for rate 0.1 differs from train_at_rate(0.1, seed=5)."
    )


@points(1)
def test_notebook_sweep_covers_the_rates(submission):
    """Q2: results covers no dropout up to heavy dropout"""
    results = submission.get("results")
    epochs = submission.get("EPOCHS")
    assert isinstance(results, list) and len(results) >= 4, (
        "results must be the list returned by sweep(RATES), with at least 4 rates."
    )
    rates = sorted(float(r["rate"]) for r in results)
    assert rates[0] == 0.0 and rates[-1] >= 0.7, (
        f"the sweep must go from no dropout (0.0) to heavy dropout (>= 0.7); it covers {rates}."
    )
    for r in results:
        assert len(r["history"]["val_accuracy"]) == epochs, (
            f"each run of the sweep must train for EPOCHS = {epochs} epochs."
        )


def fake_results(val_accuracies, rates):
    return [
        {"rate": rate, "seed": 0, "train_accuracy": 1.0, "val_accuracy": val,
         "history": {key: [val] for key in CURVES}}
        for rate, val in zip(rates, val_accuracies, strict=True)
    ]


@points(1)
def test_choose_rate_picks_best_validation_accuracy(submission):
    """Q3: choose_rate returns the rate with the best validation accuracy"""
    cases = [
        ([0.90, 0.93, 0.95, 0.91, 0.70], [0.0, 0.2, 0.4, 0.6, 0.8]),
        ([0.81, 0.80, 0.79], [0.3, 0.1, 0.5]),
        ([0.5, 0.6, 0.99], [0.0, 0.25, 0.9]),
    ]
    for vals, rates in cases:
        results = fake_results(vals, rates)
        chosen = submission.call("choose_rate", results)
        expected = oracle_choice(results)
        assert chosen is not None and math.isclose(float(chosen), expected), (
            f"for validation accuracies {vals} at rates {rates}, choose_rate returned {chosen}; "
            f"the best validation accuracy is at rate {expected}."
        )


@points(1)
def test_choose_rate_breaks_ties_with_the_smallest_rate(submission):
    """Q3: on a tie, choose_rate returns the smallest rate"""
    results = fake_results([0.90, 0.94, 0.94, 0.94], [0.6, 0.4, 0.2, 0.8])
    chosen = submission.call("choose_rate", results)
    assert chosen is not None and math.isclose(float(chosen), 0.2), (
        f"rates 0.4, 0.2 and 0.8 tie on validation accuracy 0.94; choose_rate returned {chosen}, "
        "but on a tie it must return the smallest of the tied rates."
    )


@points(1)
def test_choice_follows_from_own_results(submission):
    """Q3: chosen_rate follows from your own sweep"""
    results = submission.get("results")
    chosen = submission.get("chosen_rate")
    expected = oracle_choice(results)
    assert chosen is not None and math.isclose(float(chosen), expected), (
        f"chosen_rate is {chosen}, but in your own results the best validation accuracy is at "
        f"rate {expected}: set chosen_rate = choose_rate(results)."
    )


# -- Q4: the design -----------------------------------------------------------------------
def answer(submission, name, question):
    if not submission.has(name):
        raise AssertionError(f"set the variable {name} in the answer cell of {question}.")
    return submission.get(name)


FACTORS = {"rate", "seed", "architecture", "optimizer", "learning_rate", "batch_size", "epochs",
           "training_set", "validation_set"}


@points(1)
def test_design_varies_the_rate(submission):
    """Q4: the experiment varies the rate"""
    value = answer(submission, "DESIGN_VARY", "Q4")
    assert isinstance(value, str) and value in FACTORS, (
        f"DESIGN_VARY should be one of FACTORS; received {value!r}."
    )
    assert value == "rate", f"DESIGN_VARY = {value!r} is not the factor this experiment is about."


@points(1)
def test_design_holds_the_rest_fixed(submission):
    """Q4: everything but the rate and the seed is held fixed"""
    if not submission.has("DESIGN_HOLD_FIXED"):
        raise AssertionError("set the variable DESIGN_HOLD_FIXED in the answer cell of Q4.")
    try:  # a set cannot travel back as it is: ask for its sorted items
        value = submission.call("__builtins__.sorted", submission.ref("DESIGN_HOLD_FIXED"))
    except SubmissionError as err:
        raise AssertionError(f"DESIGN_HOLD_FIXED should be a set of names from FACTORS ({err}).") from None
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
        f"DESIGN_HOLD_FIXED should be a set of names from FACTORS; received {type(value).__name__}."
    )
    chosen = set(value)
    unknown = chosen - FACTORS
    assert not unknown, f"DESIGN_HOLD_FIXED holds names that are not in FACTORS: {sorted(unknown)}."
    assert "rate" not in chosen, "DESIGN_HOLD_FIXED holds the rate, which the experiment varies."
    missing = FACTORS - {"rate", "seed"} - chosen
    assert not missing and "seed" not in chosen, (
        f"DESIGN_HOLD_FIXED is not right: {len(missing)} factor(s) that would also change the "
        "result are left free" + (", and the seed is held fixed" if "seed" in chosen else "") + "."
    )


@points(1)
def test_design_number_of_seeds(submission):
    """Q4: the number of seeds for a standard error of 0.5 points"""
    value = answer(submission, "DESIGN_SEEDS", "Q4")
    assert isinstance(value, (int, float)) and not isinstance(value, bool), (
        f"DESIGN_SEEDS should be a number; received {value!r}."
    )
    assert value == math.ceil((1.5 / 0.5) ** 2), (
        f"DESIGN_SEEDS = {value:g} is not right: the standard error of a mean of n runs is "
        "std / sqrt(n)."
    )


# -- Q5: concepts -------------------------------------------------------------------------
@points(1)
def test_concept_points_per_image(submission):
    """Q5: one validation image in percentage points"""
    value = answer(submission, "q5_points_per_image", "Q5")
    assert isinstance(value, (int, float)) and not isinstance(value, bool), (
        f"q5_points_per_image should be a number; received {value!r}."
    )
    assert math.isclose(float(value), 100 / 360, rel_tol=1e-3), (
        f"q5_points_per_image = {value:g} is not right."
    )


@points(1)
def test_concept_choose_on(submission):
    """Q5: the data the rate is chosen on"""
    value = answer(submission, "q5_choose_on", "Q5")
    assert isinstance(value, str) and value.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_choose_on should be one of 'a', 'b', 'c', 'd'; received {value!r}."
    )
    assert value.strip().lower() == "b", f"q5_choose_on = {value!r} is not right."
