"""Hidden tests of exercise 5, regularisers compared.

The pieces (L2 penalty and gradient, early-stopping rule, shift augmentation)
are checked against oracles computed here; the training loop and the results
table by properties (thresholds, weight shrinkage, consistency).
"""

from __future__ import annotations

import math

import numpy as np

from dlcourse.grading import points
from dlcourse.grading.kernel_objects import answer, in_kernel, number, read_back
from dlcourse.grading.kernel_objects import kernel_generator as generator


def weights(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(dtype) for s in ((5, 4), (4, 7), (7, 3))]


def oracle_stop(losses, patience):
    best_epoch, best = None, math.inf
    for epoch, loss in enumerate(losses):
        if loss < best:
            best_epoch, best = epoch, loss
        elif epoch - best_epoch >= patience:
            return best_epoch, epoch
    return best_epoch, None


@points(1)
def test_l2_penalty_value(submission):
    """Q1: the L2 penalty is (lam / 2) * the sum of the squared weights"""
    ws = weights(0)
    for lam in (0.0, 0.01, 0.3):
        value = submission.call("l2_penalty", ws, lam)
        expected = 0.5 * lam * sum(float(np.sum(w**2)) for w in ws)
        assert isinstance(value, (int, float)), f"l2_penalty must return a float; it returned {type(value).__name__}."
        if lam > 0 and math.isclose(float(value), 2 * expected, rel_tol=1e-6):
            raise AssertionError("the penalty is missing the factor 1/2: it is (lam / 2) * sum(W**2).")
        assert math.isclose(float(value), expected, rel_tol=1e-6, abs_tol=1e-12), (
            f"with lam={lam} the penalty of three random matrices should be {expected:.6g}; got "
            f"{float(value):.6g}: sum the squares of ALL entries of EVERY matrix, times lam / 2."
        )


@points(1)
def test_l2_gradient_is_lambda_times_w(submission):
    """Q1: the gradient of the penalty is lam * W for each matrix"""
    ws = weights(1)
    grads = submission.call("l2_gradient", ws, 0.05)
    assert isinstance(grads, (list, tuple)) and len(grads) == len(ws), (
        "l2_gradient must return a list with one array per weight matrix."
    )
    for i, (g, w) in enumerate(zip(grads, ws, strict=True)):
        g = np.asarray(g)
        assert g.shape == w.shape, f"gradient {i} must have the shape of its matrix {w.shape}; got {g.shape}."
        if np.allclose(g, 0.1 * w):
            raise AssertionError("the gradient of (lam / 2) * sum(W**2) is lam * W, not 2 * lam * W.")
        assert np.allclose(g, 0.05 * w, rtol=1e-6), (
            f"gradient {i} is not lam * W: the derivative of (lam / 2) * W**2 is lam * W."
        )


@points(1)
def test_l2_gradient_keeps_dtype_and_weights(submission):
    """Q1: the gradient keeps float32 and leaves the weights unchanged"""
    ws = weights(2, np.float32)
    kernel_ws = [in_kernel(submission, w) for w in ws]  # matrices living in the kernel
    grads = submission.call("l2_gradient", kernel_ws, 0.1)
    assert isinstance(grads, (list, tuple)) and len(grads) == len(ws), (
        f"expected a list of {len(ws)} gradients; received {type(grads).__name__}."
    )
    for g, w in zip(grads, ws, strict=True):
        g = np.asarray(g)
        assert g.dtype == np.float32, (
            f"float32 weights: expected a float32 gradient, received {g.dtype}: keep the dtype of W."
        )
        assert g.shape == w.shape and np.allclose(g, np.float32(0.1) * w, rtol=1e-6), (
            "expected the gradient lam * W (checked on float32 weights); received other values."
        )
    for i, (handle, w) in enumerate(zip(kernel_ws, ws, strict=True)):
        after = read_back(submission, handle)
        assert np.array_equal(after, w), (
            f"l2_gradient modified weight matrix {i} in place: return new arrays (lam * W) "
            "instead of scaling W itself."
        )


@points(1)
def test_early_stopping_stops_after_patience(submission):
    """Q2: training stops `patience` epochs after the last improvement"""
    cases = [
        ([1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.74, 0.6], 3),
        ([2.0, 1.5, 1.6, 1.4, 1.45, 1.46, 1.3, 1.31, 1.35], 2),
        ([0.5, 0.6, 0.7, 0.8], 1),
        ([0.9, 0.7, 0.8, 0.85, 0.65, 0.66, 0.67, 0.68, 0.69, 0.7], 4),
    ]
    for losses, patience in cases:
        result = submission.call("early_stopping", losses, patience)
        best, stop = oracle_stop(losses, patience)
        got = (result.get("best_epoch"), result.get("stop_epoch")) if isinstance(result, dict) else None
        assert got == (best, stop), (
            f"for losses {losses} and patience {patience} training stops at epoch {stop} with best "
            f"epoch {best} (epochs count from 0); you returned {result}."
        )


@points(1)
def test_early_stopping_never_fires_while_improving(submission):
    """Q2: no stop while the loss keeps improving, or before patience runs out"""
    cases = [([1.0, 0.9, 0.8, 0.7, 0.6], 1), ([1.0, 1.1, 1.2, 0.9, 1.0, 1.1], 3), ([0.4], 2)]
    for losses, patience in cases:
        result = submission.call("early_stopping", losses, patience)
        best, _ = oracle_stop(losses, patience)
        assert isinstance(result, dict) and result.get("stop_epoch") is None, (
            f"for losses {losses} and patience {patience} the rule never fires: stop_epoch must be None."
        )
        assert result.get("best_epoch") == best, (
            f"for losses {losses} the best epoch is {best}; you returned {result.get('best_epoch')}."
        )


@points(1)
def test_early_stopping_equal_loss_is_not_an_improvement(submission):
    """Q2: an equal loss does not count as an improvement"""
    losses, patience = [1.0, 0.5, 0.5, 0.5, 0.5, 0.4], 3
    result = submission.call("early_stopping", losses, patience)
    assert isinstance(result, dict) and (result.get("best_epoch"), result.get("stop_epoch")) == (1, 4), (
        f"for losses {losses} and patience {patience}: only epoch 1 improves (equal losses do not), so "
        f"training stops at epoch 4 with best epoch 1; you returned {result}."
    )


def find_shift(image, out):
    padded = np.pad(image, 1)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if np.array_equal(padded[1 - dy: 9 - dy, 1 - dx: 9 - dx], out):
                return dy, dx
    return None


@points(1)
def test_shift_digits_makes_one_pixel_shifts(submission):
    """Q3: each image is shifted by at most one pixel, zero-filled"""
    from dlcourse.data import load_digits

    x = load_digits(seed=3).x_test[:150]
    kernel_x = in_kernel(submission, x)
    out = np.asarray(submission.call("shift_digits", kernel_x, generator(submission, 4)))
    assert out.shape == x.shape and out.dtype == x.dtype, (
        f"shift_digits: expected shape {x.shape} and dtype {x.dtype}; received {out.shape}, {out.dtype}."
    )
    assert np.array_equal(read_back(submission, kernel_x), x), (
        "shift_digits modified its input: return a new array."
    )
    moved = float(np.mean(np.any(out != x, axis=1)))
    assert moved >= 0.6, (
        f"expected most images moved (8 of the 9 shifts move the image); received {moved:.0%} "
        "changed."
    )
    bad = [i for i in range(len(x)) if find_shift(x[i].reshape(8, 8), out[i].reshape(8, 8)) is None]
    assert not bad, (
        f"{len(bad)} of {len(x)} outputs are not the input image shifted by dy, dx in {{-1, 0, 1}} with "
        f"zeros shifted in (e.g. image {bad[0]}): check the window and the zero padding."
    )


@points(1)
def test_shift_digits_draws_varied_seeded_shifts(submission):
    """Q3: images get independent random shifts from the generator"""
    x = np.zeros((300, 64), np.float32)
    x[:, 27] = 1.0  # one bright pixel at (3, 3): its new place reveals the shift
    out = np.asarray(submission.call("shift_digits", x, generator(submission, 11))).reshape(300, 8, 8)
    again = np.asarray(submission.call("shift_digits", x, generator(submission, 11)))
    assert np.array_equal(out.reshape(300, 64), again), (
        "the same seed must give the same shifts: draw them with np.random.default_rng(rng)."
    )
    assert np.allclose(out.sum(axis=(1, 2)), 1.0), "a pixel in the middle must survive a one-pixel shift."
    positions = [tuple(np.argwhere(img)[0]) for img in out]
    counts = {p: positions.count(p) for p in set(positions)}
    assert len(counts) == 9 and min(counts.values()) >= 10, (
        f"over 300 images we saw {len(counts)} of the 9 possible shifts (the rarest {min(counts.values())} "
        "times): draw dy and dx independently for EACH image, uniformly from {-1, 0, 1}."
    )


def train(submission, method, seed):
    result = submission.call("train_model", method, seed=seed, timeout=120)
    assert isinstance(result, dict), f"train_model must return a dict; it returned {type(result).__name__}."
    missing = {"train_accuracy", "val_accuracy", "test_accuracy", "epochs_run", "weight_norm"} - set(result)
    assert not missing, f"the dict returned by train_model lacks the keys {sorted(missing)}."
    return result


@points(1)
def test_training_loop_learns(submission):
    """Q4: the training loop learns the digits"""
    result = train(submission, "baseline", 1)
    assert float(result["val_accuracy"]) >= 0.85, (
        f"train_model('baseline', seed=1) reached a validation accuracy of {float(result['val_accuracy']):.3f}; "
        "at least 0.85 is expected: check the minibatch loop (forward, loss, backward, optimizer.step)."
    )


@points(1)
def test_l2_shrinks_the_weights(submission):
    """Q4: the L2 run ends with smaller weights than the baseline"""
    base = train(submission, "baseline", 2)
    l2 = train(submission, "l2", 2)
    assert float(l2["weight_norm"]) < 0.8 * float(base["weight_norm"]), (
        f"with the L2 penalty the sum of squared weights ({float(l2['weight_norm']):.1f}) should be well "
        f"below the baseline's ({float(base['weight_norm']):.1f}): add l2_gradient(...) to the "
        "grads['W'] of every Linear layer before optimizer.step."
    )
    assert float(l2["val_accuracy"]) >= 0.85, "the L2 run should still learn (validation accuracy >= 0.85)."


@points(1)
def test_early_stopping_run_stops_early(submission):
    """Q4: the early-stopping run stops before the last epoch and keeps the best weights"""
    result = train(submission, "early_stopping", 1)
    epochs = submission.get("EPOCHS")
    assert int(result["epochs_run"]) < epochs, (
        f"the early-stopping run trained all {epochs} epochs: compute the validation loss after each "
        "epoch and stop when early_stopping(val_losses, PATIENCE)['stop_epoch'] is not None."
    )
    assert float(result["val_accuracy"]) >= 0.85, (
        "the early-stopping run should keep (restore) the weights of its best epoch: validation "
        f"accuracy {float(result['val_accuracy']):.3f} is too low."
    )


@points(1)
def test_results_table_and_choice(submission):
    """Q4: the results table is complete and best_method is chosen on validation"""
    methods = submission.get("METHODS")
    results = submission.get("results")
    assert isinstance(results, dict) and set(results) == set(methods), (
        "results must be a dict with one entry per method of METHODS."
    )
    for method in methods:
        for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
            value = float(results[method][key])
            assert 0.0 <= value <= 1.0, f"results[{method!r}][{key!r}] must be a fraction in [0, 1]."
    best_val = max(float(results[m]["val_accuracy"]) for m in methods)
    expected = next(m for m in methods if float(results[m]["val_accuracy"]) == best_val)
    chosen = submission.get("best_method")
    if chosen != expected:
        best_test = max(methods, key=lambda m: float(results[m]["test_accuracy"]))
        hint = " (it is the best on the TEST set: choose on validation)" if chosen == best_test else ""
        raise AssertionError(
            f"best_method is {chosen!r}, but in your table the highest validation accuracy is "
            f"{expected!r}'s{hint}."
        )
    rerun = train(submission, "dropout", 0)
    assert math.isclose(float(rerun["val_accuracy"]), float(results["dropout"]["val_accuracy"])), (
        "results['dropout'] differs from train_model('dropout', seed=0): fill the table with "
        "train_model(method) for each method."
    )


# -- Q5: concepts -------------------------------------------------------------------------
@points(1)
def test_concept_weight_decay_factor(submission):
    """Q5: the factor by which the L2 term alone shrinks a weight per SGD step"""
    value = number(submission, "q5_decay_factor")
    assert math.isclose(value, 1.0 - 0.1 * 0.01, rel_tol=1e-9), f"q5_decay_factor = {value:g} is not right."


@points(1)
def test_concept_epochs_trained_with_patience(submission):
    """Q5: how many epochs early stopping trains"""
    value = number(submission, "q5_epochs_trained")
    assert value == 18, f"q5_epochs_trained = {value:g} is not right (epochs count from 0)."


@points(1)
def test_concept_choose_on_validation(submission):
    """Q5: which number picks the best method"""
    value = answer(submission, "q5_choose_by")
    assert isinstance(value, str) and value.strip().lower() in ("a", "b", "c", "d"), (
        f"q5_choose_by should be one of 'a', 'b', 'c', 'd'; received {value!r}."
    )
    assert value.strip().lower() == "b", f"q5_choose_by = {value!r} is not right."
