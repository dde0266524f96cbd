"""(e) Regularisers compared: L2, max-norm, dropout and their combinations (paper Table 9).

Paper, Table 9 (MNIST, test classification error): L2 1.62 %, L2 + L1 towards
the end of training 1.60 %, L2 + KL-sparsity 1.55 %, max-norm 1.35 %,
dropout + L2 1.25 %, dropout + max-norm 1.05 %: dropout combined with max-norm
is best.

Here: a 64-256-256-10 MLP on digits trained with Adam, every
regulariser's strength chosen on the validation set from a small grid (the
grid is in the cache: the chapter shows the choice), test error reported for
the chosen one. Dropout is ``input_rate=0.2, rate=0.5`` as in the paper.
"""

from __future__ import annotations

from dlcourse.experiments._common import (
    MNIST_TRAINING,
    classifier_metrics,
    n_inputs,
    train_classifier,
)

NAME = "regularizers"
TITLE = "L2, max-norm, dropout and combinations (paper Table 9)"
PAPER = {
    "table": "Table 9",
    "dataset": "MNIST",
    "test_error_percent": {
        "L2": 1.62,
        "L2 + L1 applied towards the end of training": 1.60,
        "L2 + KL-sparsity": 1.55,
        "Max-norm": 1.35,
        "Dropout + L2": 1.25,
        "Dropout + Max-norm": 1.05,
    },
    "claim": "Dropout combined with max-norm gives the lowest error of the regularisers tried.",
}
CONFIG = {
    "hidden": 256,
    "rate": 0.5,
    "input_rate": 0.2,
    "l2_grid": [1e-4, 1e-3, 1e-2],
    "max_norm_grid": [1.0, 2.0, 4.0],
    "epochs": 50,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.0,
    "seeds": [0, 1, 2],
}

#: With ``--dataset mnist``: 784-1024-1024-10 nets, SGD with momentum for 30
#: epochs; two L2 strengths and the max-norm radius the paper's appendix suggests
#: (3 to 4), to fit two cores.
MNIST_CONFIG = {**MNIST_TRAINING, "hidden": 1024, "epochs": 30, "l2_grid": [1e-4, 1e-3],
                "max_norm_grid": [3.5]}

METHODS = ("none", "L2", "max-norm", "dropout", "dropout + L2", "dropout + max-norm")


def cells(config: dict) -> list[dict]:
    """Every method with every strength on its grid (``strength`` is None when there is none)."""
    out = []
    for method in METHODS:
        if method.endswith("L2"):
            grid = config["l2_grid"]
        elif method.endswith("max-norm"):
            grid = config["max_norm_grid"]
        else:
            grid = [None]
        out.extend({"method": method, "strength": s} for s in grid)
    return out


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one network with the cell's regulariser; return train/val/test error."""
    method, strength = cell["method"], cell["strength"]
    dropout = method.startswith("dropout")
    h = config["hidden"]
    model, _, split = train_classifier(
        sizes=[n_inputs(config), h, h, 10],
        rate=config["rate"] if dropout else 0.0,
        input_rate=config["input_rate"] if dropout else 0.0,
        seed=seed, epochs=config["epochs"], batch_size=config["batch_size"],
        optimizer=config["optimizer"], lr=config["lr"], momentum=config["momentum"],
        weight_decay=strength if method.endswith("L2") else 0.0,
        max_norm=strength if method.endswith("max-norm") else None, config=config,
    )
    return classifier_metrics(model, split)


def select(result: dict) -> list[dict]:
    """For each method, the strength with the lowest mean validation error, and its test error.

    Returns:
        One row per method: ``method``, ``strength``, ``val_mean``, ``test_mean``,
        ``test_std``, ``test_values``.
    """
    from dlcourse.experiments._common import summarize

    val = summarize(result, "val_error", ["method", "strength"])
    test = {(r["method"], r["strength"]): r for r in
            summarize(result, "test_error", ["method", "strength"])}
    rows = []
    for method in METHODS:
        candidates = [r for r in val if r["method"] == method]
        if not candidates:
            continue
        best = min(candidates, key=lambda r: r["mean"])
        t = test[(method, best["strength"])]
        rows.append({"method": method, "strength": best["strength"], "val_mean": best["mean"],
                     "test_mean": t["mean"], "test_std": t["std"], "test_values": t["values"]})
    return rows


TEST_CELL = {"method": "dropout + max-norm", "strength": 2.0}
