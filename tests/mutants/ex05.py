"""Mutants of exercise 5 (regularisers compared), written from the statement."""

from mutants.harness import Mutant

EXERCISE = "05_regularisers"

PENALTY = "    return float(0.5 * lam * sum(float(np.sum(np.square(w, dtype=np.float64))) for w in weights))\n"
GRADIENT = "    return [np.asarray(w) * np.asarray(w).dtype.type(lam) for w in weights]\n"
EARLY_IMPROVES = "        if loss < best_loss:\n"
EARLY_FIRES = "        elif epoch - best_epoch >= patience:\n"
SHIFTS = "    shifts = rng.integers(-1, 2, size=(len(images), 2))\n"
WINDOW = "        out[i] = padded[i, 1 - dy: 9 - dy, 1 - dx: 9 - dx]\n"
RNG = "    rng = np.random.default_rng(rng)\n    images"
L2_ADD = '                    layer.grads["W"] = layer.grads["W"] + grad\n'
TRAIN_START = "    if method not in METHODS:\n        raise ValueError(f\"method must be one of"
TABLE = 'best_method = max(METHODS, key=lambda m: results[m]["val_accuracy"])\n'
Q4 = ("Q4",)

MUTANTS = [
    Mutant("penalty_without_half", "lam * sum(W**2)",
           ((PENALTY, PENALTY.replace("0.5 * lam", "lam")),)),
    Mutant("penalty_first_matrix_only", "only the first matrix",
           ((PENALTY, "    return float(0.5 * lam * float(np.sum(np.square(weights[0]))))\n"),)),
    Mutant("penalty_sum_not_squared", "sum of |W| instead of W**2",
           ((PENALTY, "    return float(0.5 * lam * sum(float(np.sum(np.abs(w))) for w in weights))\n"),)),
    Mutant("penalty_returns_array", "returns a NumPy array, not a float",
           ((PENALTY, "    return np.array([0.5 * lam * sum(float(np.sum(np.square(w))) for w in weights)])\n"),)),
    Mutant("gradient_twice_lambda", "2 * lam * W",
           ((GRADIENT, "    return [np.asarray(w) * np.asarray(w).dtype.type(2 * lam) for w in weights]\n"),)),
    Mutant("gradient_float64", "float32 weights give a float64 gradient",
           ((GRADIENT, "    return [np.asarray(w, dtype=np.float64) * lam for w in weights]\n"),)),
    Mutant("gradient_in_place", "scales the weights themselves",
           ((GRADIENT, "    return [np.multiply(w, lam, out=w) for w in weights]\n"),)),
    Mutant("gradient_returns_weights", "do-nothing: returns the weights",
           ((GRADIENT, "    return list(weights)\n"),), focus=("Q1",),
           zero=("test_l2_gradient",)),
    Mutant("equal_loss_improves", "an equal loss counts as an improvement",
           ((EARLY_IMPROVES, "        if loss <= best_loss:\n"),)),
    Mutant("stops_one_epoch_late", "fires at patience + 1",
           ((EARLY_FIRES, "        elif epoch - best_epoch > patience:\n"),)),
    Mutant("best_epoch_is_last", "reports the stop epoch as the best",
           (('            return {"best_epoch": best_epoch, "stop_epoch": epoch}\n',
             '            return {"best_epoch": epoch, "stop_epoch": epoch}\n'),)),
    Mutant("early_stopping_never_fires", "do-nothing rule",
           (('            return {"best_epoch": best_epoch, "stop_epoch": epoch}\n', "            pass\n"),)),
    Mutant("early_stopping_always_raises", "always raises",
           (("    if patience < 1:\n", "    if True:\n"),), zero=("Q2",)),
    Mutant("one_shift_for_the_batch", "every image gets the same shift",
           ((SHIFTS, "    shifts = np.repeat(rng.integers(-1, 2, size=(1, 2)), len(images), axis=0)\n"),)),
    Mutant("shifts_of_two_pixels", "shifts drawn from {-2..2}, clipped windows",
           ((SHIFTS, "    shifts = rng.integers(-1, 2, size=(len(images), 2)) * 2 // 1\n"
                     "    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))\n"),
            (WINDOW, "        out[i] = padded[i, 2 - dy: 10 - dy, 2 - dx: 10 - dx]\n"))),
    Mutant("wrap_around", "np.roll instead of zero fill",
           ((WINDOW, "        out[i] = np.roll(images[i], (dy, dx), axis=(0, 1))\n"),)),
    Mutant("shift_seed_ignored", "fresh entropy instead of rng",
           ((RNG, "    rng = np.random.default_rng()\n    images"),)),
    Mutant("no_shift", "do-nothing augmentation", ((SHIFTS, "    shifts = np.zeros((len(images), 2), int)\n"),),
           zero=("Q3",)),
    Mutant("only_horizontal_shifts", "dy always 0",
           ((SHIFTS, "    shifts = np.c_[np.zeros(len(images), int), rng.integers(-1, 2, size=len(images))]\n"),)),
    Mutant("l2_gradient_not_added", "the L2 run trains like the baseline", ((L2_ADD, "                    pass\n"),),
           focus=Q4),
    Mutant("l2_gradient_subtracted", "the L2 gradient is subtracted",
           ((L2_ADD, '                    layer.grads["W"] = layer.grads["W"] - grad\n'),), focus=Q4),
    Mutant("no_early_stop", "early stopping never breaks the loop",
           (("            if rule[\"stop_epoch\"] is not None:\n                break\n", ""),), focus=Q4),
    Mutant("no_training_steps", "optimizer.step missing", (("            optimizer.step(model)\n", ""),), focus=Q4),
    Mutant("table_chosen_on_training_accuracy", "best_method chosen on the training accuracy",
           ((TABLE, TABLE.replace("val_accuracy", "train_accuracy")),), focus=Q4),
    Mutant("table_with_other_seed", "the table uses seed 1",
           (("results = {method: train_model(method) for method in METHODS}\n",
             "results = {method: train_model(method, seed=1) for method in METHODS}\n"),), focus=Q4),
    Mutant("train_model_always_raises", "train_model raises",
           ((TRAIN_START, "    raise RuntimeError('no')\n" + TRAIN_START),), focus=Q4, zero=Q4),
    Mutant("concept_decay_without_lr", "forgets the learning rate",
           (("q5_decay_factor = 1 - 0.1 * 0.01", "q5_decay_factor = 1 - 0.01"),), focus=("Q5",), hidden_only=True),
    Mutant("concept_epochs_off_by_one", "counts the stop epoch, not the epochs trained",
           (("q5_epochs_trained = 18", "q5_epochs_trained = 17"),), focus=("Q5",), hidden_only=True),
    Mutant("concept_choose_on_test", "chooses on the test set",
           (('q5_choose_by = "b"', 'q5_choose_by = "c"'),), focus=("Q5",), hidden_only=True),
]
