"""Mutants of exercise 2 (choosing the dropout rate), written from the statement."""

from mutants.harness import Mutant

EXERCISE = "02_dropout_rate"

MLP = "    model = mlp([64, 128, 128, 10], rate=rate, rng=seed)\n"
FIT = "        batch_size=50, validation_data=(data.x_val, data.y_val), rng=seed,\n"
RESULT_TRAIN = '        "train_accuracy": curves["accuracy"][-1],\n'
RESULT_VAL = '        "val_accuracy": curves["val_accuracy"][-1],\n'
SWEEP = "    return [train_at_rate(rate, seed) for rate in rates]\n"
BEST = '    best = max(r["val_accuracy"] for r in results)\n'
PICK = '    return min(r["rate"] for r in results if r["val_accuracy"] == best)\n'
Q1, Q2, Q3, Q4, Q5 = ("Q1",), ("Q2",), ("Q3",), ("Q4",), ("Q5",)

MUTANTS = [
    Mutant("rate_not_passed", "mlp built without dropout", ((MLP, MLP.replace("rate=rate", "rate=0.0")),), focus=Q1),
    Mutant("fit_not_seeded", "fit without rng=seed", ((FIT, FIT.replace("rng=seed", "rng=None")),), focus=Q1),
    Mutant("seed_ignored", "always seed 0",
           ((MLP, MLP.replace("rng=seed", "rng=0")), (FIT, FIT.replace("rng=seed", "rng=0"))), focus=Q1),
    Mutant("epochs_ignored", "always EPOCHS epochs",
           (("optimizer=Adam(lr=2e-3), epochs=epochs,", "optimizer=Adam(lr=2e-3), epochs=EPOCHS,"),), focus=Q1),
    Mutant("train_accuracy_is_validation", "reports the validation accuracy as training accuracy",
           ((RESULT_TRAIN, '        "train_accuracy": curves["val_accuracy"][-1],\n'),), focus=Q1),
    Mutant("first_epoch_accuracy", "reports the accuracy after the first epoch",
           ((RESULT_VAL, '        "val_accuracy": curves["val_accuracy"][0],\n'),), focus=Q1),
    Mutant("best_epoch_accuracy", "reports the best epoch instead of the last",
           ((RESULT_VAL, '        "val_accuracy": max(curves["val_accuracy"]),\n'),), focus=Q1,
           hidden_only=True),
    Mutant("history_without_losses", "history lacks loss and val_loss",
           (('for key in ("accuracy", "val_accuracy", "loss", "val_loss")}', 'for key in ("accuracy", "val_accuracy")}'),),
           focus=Q1),
    Mutant("always_raising_train_at_rate", "train_at_rate raises",
           ((MLP, "    raise RuntimeError('no time')\n" + MLP),), zero=Q1),
    Mutant("sweep_reversed", "results in reverse order",
           ((SWEEP, "    return [train_at_rate(rate, seed) for rate in reversed(rates)]\n"),), focus=Q2),
    Mutant("sweep_ignores_seed", "sweep trains with seed 0",
           ((SWEEP, "    return [train_at_rate(rate) for rate in rates]\n"),), focus=Q2),
    Mutant("sweep_first_rate_only", "trains the first rate for every entry",
           ((SWEEP, "    return [train_at_rate(rates[0], seed) for rate in rates]\n"),), focus=Q2),
    Mutant("sweep_without_heavy_dropout", "the notebook's sweep stops at rate 0.4",
           (("results = sweep(RATES)\n", "results = sweep(RATES[:3])\n"),), focus=Q2),
    Mutant("choose_on_training_accuracy", "picks the best training accuracy",
           ((BEST, BEST.replace("val_accuracy", "train_accuracy")),
            (PICK, PICK.replace("val_accuracy", "train_accuracy"))), focus=Q3),
    Mutant("ties_to_the_largest_rate", "max instead of min on ties", ((PICK, PICK.replace("min(", "max(")),),
           focus=Q3),
    Mutant("choose_the_worst", "lowest validation accuracy", ((BEST, BEST.replace("max(", "min(")),), focus=Q3),
    Mutant("choose_returns_index", "returns the position, not the rate",
           ((PICK, '    return [r["val_accuracy"] for r in results].index(best)\n'),), focus=Q3),
    Mutant("do_nothing_choose_rate", "returns None", ((BEST, "    return None\n" + BEST),), zero=Q3),
    Mutant("chosen_rate_typed_by_hand", "chosen_rate not from choose_rate",
           (("chosen_rate = choose_rate(results)\n", "chosen_rate = RATES[-1]\n"),), focus=Q3),
    Mutant("design_varies_seed", "DESIGN_VARY is the seed",
           (('DESIGN_VARY = "rate"', 'DESIGN_VARY = "seed"'),), focus=Q4, hidden_only=True),
    Mutant("design_holds_seed_fixed", "the seed held fixed too",
           (('DESIGN_HOLD_FIXED = set(FACTORS) - {"rate", "seed"}', 'DESIGN_HOLD_FIXED = set(FACTORS) - {"rate"}'),),
           focus=Q4, hidden_only=True),
    Mutant("design_forgets_epochs", "epochs left free",
           (('DESIGN_HOLD_FIXED = set(FACTORS) - {"rate", "seed"}',
             'DESIGN_HOLD_FIXED = set(FACTORS) - {"rate", "seed", "epochs"}'),), focus=Q4, hidden_only=True),
    Mutant("design_seeds_not_squared", "std / se = 3 seeds",
           (("DESIGN_SEEDS = 9", "DESIGN_SEEDS = 3"),), focus=Q4, hidden_only=True),
    Mutant("concept_fraction_not_points", "1/360 instead of percentage points",
           (("q5_points_per_image = 100 / 360", "q5_points_per_image = 1 / 360"),), focus=Q5, hidden_only=True),
    Mutant("concept_choose_on_test", "chooses on the test set",
           (('q5_choose_on = "b"', 'q5_choose_on = "c"'),), focus=Q5, hidden_only=True),
]
