"""Learning rate, momentum and max-norm with dropout (the paper's practical advice).

Paper, Appendix A: a dropout net should use 10-100 times the learning rate
that is best for a standard net, with momentum 0.95-0.99 instead of 0.9, and
max-norm regularisation (c typically 3-4) keeps such large steps from letting
the weights blow up.

Here: a 64-256-256-10 MLP on digits, SGD with momentum, for a grid of
learning rates and momenta, without dropout and with ``input_rate=0.2,
rate=0.5``, all with ``max_norm=3``; and the dropout nets again without max-norm.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import classifier_metrics, train_classifier

NAME = "lr_momentum"
TITLE = "Learning rate, momentum and max-norm with dropout (paper Appendix A)"
PAPER = {
    "section": "Appendix A.2-A.3",
    "claim": ("Dropout nets should use 10-100 times the learning rate that is optimal for "
              "a standard net, momentum 0.95-0.99 instead of 0.9, and max-norm (c of 3-4) "
              "so that the large steps cannot make the weights grow without bound."),
    "lr_factor": [10, 100],
    "momentum": [0.95, 0.99],
    "max_norm_c": [3, 4],
}
CONFIG = {
    "hidden": 256,
    "rate": 0.5,
    "input_rate": 0.2,
    "lrs": [0.01, 0.03, 0.1, 0.3],
    "momenta": [0.9, 0.99],
    "max_norm": 3.0,
    "epochs": 30,
    "batch_size": 64,
    "seeds": [0, 1],
}


def cells(config: dict) -> list[dict]:
    """Grid: dropout x lr x momentum with max-norm, plus dropout without max-norm."""
    out = [{"dropout": d, "lr": lr, "momentum": m, "max_norm": config["max_norm"]}
           for d in (False, True) for m in config["momenta"] for lr in config["lrs"]]
    out += [{"dropout": True, "lr": lr, "momentum": m, "max_norm": None}
            for m in config["momenta"] for lr in config["lrs"]]
    return out


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one network; return its errors and the largest incoming-weight norm."""
    h = config["hidden"]
    with np.errstate(all="ignore"):  # a diverging run is a result, not an error
        model, history, split = train_classifier(
            sizes=[64, h, h, 10],
            rate=config["rate"] if cell["dropout"] else 0.0,
            input_rate=config["input_rate"] if cell["dropout"] else 0.0,
            seed=seed, epochs=config["epochs"], batch_size=config["batch_size"],
            optimizer="sgd", lr=cell["lr"], momentum=cell["momentum"],
            max_norm=cell["max_norm"],
        )
        metrics = classifier_metrics(model, split)
    weights = [p["W"] for p in (layer.params for layer in model.layers) if "W" in p]
    norms = [float(np.max(np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=0))))
             for w in weights]
    finite = bool(all(np.all(np.isfinite(w)) for w in weights))
    return {**metrics, "max_column_norm": max(norms) if finite else None, "finite": finite,
            "final_batch_loss": float(history.history["batch_loss"][-1]) if finite else None}


TEST_CELL = {"dropout": True, "lr": 0.03, "momentum": 0.9, "max_norm": 3.0}
