"""Monte-Carlo dropout uncertainty in and out of distribution, and calibration.

Gal & Ghahramani (2016): keeping dropout on at test time and averaging T
passes approximates Bayesian model averaging; the spread of the passes
(predictive entropy, mutual information) should be larger on inputs unlike
the training data.

Here: a dropout MLP (64-256-256-10, ``rate=0.5``) on digits; predictions on
the test digits, on the same digits rotated by 90 degrees, inverted
(``1 - x``), and on uniform noise; deterministic (eval mode) vs MC dropout
(``T`` passes with :func:`dlcourse.scratch.mc.mc_predict`). Measured: mean
predictive entropy and mutual information per input set, and the reliability
diagram (accuracy against confidence in bins) with its expected calibration
error (ECE) on the test digits.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import train_classifier

NAME = "mc_ood"
TITLE = "MC dropout: uncertainty in vs out of distribution, and a reliability diagram"
PAPER = {
    "source": "Gal & Ghahramani (2016), ICML",
    "claim": ("MC dropout gives a predictive distribution whose uncertainty grows away from "
              "the training data, and averaging passes tends to improve calibration."),
}
CONFIG = {
    "hidden": 256,
    "rate": 0.5,
    "epochs": 40,
    "batch_size": 64,
    "lr": 1e-3,
    "samples": 100,
    "n_bins": 10,
    "seeds": [0, 1, 2],
}

INPUT_SETS = ("test digits", "rotated 90 degrees", "inverted", "uniform noise")


def input_sets(x_test: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The four input sets (flattened 8x8 images in [0, 1])."""
    images = x_test.reshape(-1, 8, 8)
    noise = np.random.default_rng([seed, 7]).random(x_test.shape, dtype=np.float32)
    return {
        "test digits": x_test,
        "rotated 90 degrees": np.rot90(images, k=1, axes=(1, 2)).reshape(len(x_test), 64).copy(),
        "inverted": (1.0 - x_test).astype(np.float32),
        "uniform noise": noise,
    }


def reliability(probs: np.ndarray, y: np.ndarray, n_bins: int) -> dict:
    """Reliability diagram data: per confidence bin the count, mean confidence, accuracy; and ECE."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(which, weights=correct.astype(float), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / np.maximum(count, 1), np.nan)
        accuracy = np.where(count > 0, acc_sum / np.maximum(count, 1), np.nan)
    ece = float(np.nansum(count * np.abs(accuracy - mean_conf)) / len(y))
    return {"count": count, "confidence": np.nan_to_num(mean_conf, nan=-1.0),
            "accuracy": np.nan_to_num(accuracy, nan=-1.0), "ece": ece}


def cells(config: dict) -> list[dict]:
    """One cell: the dropout network (the seeds vary it)."""
    return [{"rate": config["rate"]}]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one dropout MLP; return uncertainty per input set and calibration data."""
    from dlcourse.scratch.mc import mc_predict
    from dlcourse.uncertainty import entropy, softmax

    h = config["hidden"]
    model, _, split = train_classifier(
        sizes=[64, h, h, 10], rate=cell["rate"], input_rate=0.0, seed=seed,
        epochs=config["epochs"], batch_size=config["batch_size"], optimizer="adam",
        lr=config["lr"],
    )
    out = {"sets": {}}
    for name, x in input_sets(split.x_test, seed).items():
        model.eval()
        det = softmax(model.forward(x).astype(np.float64))
        mc = mc_predict(model, x, config["samples"], rng=np.random.default_rng([seed, 1]))
        out["sets"][name] = {
            "det_entropy": float(entropy(det).mean()),
            "mc_entropy": float(mc.entropy.mean()),
            "mc_mutual_information": float(mc.mutual_information.mean()),
            "det_max_prob": float(det.max(axis=1).mean()),
            "mc_max_prob": float(mc.mean.max(axis=1).mean()),
        }
        if name == "test digits":
            out["det_test_error"] = 100.0 * float(np.mean(det.argmax(1) != split.y_test))
            out["mc_test_error"] = 100.0 * float(np.mean(mc.predict() != split.y_test))
            out["det_reliability"] = reliability(det, split.y_test, config["n_bins"])
            out["mc_reliability"] = reliability(mc.mean.astype(np.float64), split.y_test,
                                                config["n_bins"])
    model.eval()
    return out


TEST_CELL = {"rate": 0.5}
