"""Dropout and batch normalisation: where dropout goes, measured with PyTorch.

Li et al. (2019): dropout in front of a batch-norm layer changes the variance
of that layer's input between training (units dropped, survivors scaled by
1/keep) and inference (nothing dropped), so the running variance batch norm
learned in training is wrong at test time ("variance shift"). Their remedy:
put dropout after the last batch-norm layer only.

Here: small PyTorch MLPs on digits (64-256-256-10, Adam), five arrangements:

* ``bn``: Linear-BN-ReLU x 2, no dropout;
* ``dropout``: Linear-ReLU-Dropout x 2, no batch norm;
* ``bn-relu-dropout``: Linear-BN-ReLU-Dropout x 2 (each dropout feeds the next BN);
* ``dropout-bn``: Linear-Dropout-BN-ReLU x 2 (dropout straight into BN);
* ``dropout-after-last-bn``: Linear-BN-ReLU x 2, then Dropout before the output.

Measured: test error, and the variance shift of every BN layer: the mean over
units of running variance / actual variance of its input at inference.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import digits
from dlcourse.experiments.torch_loop import error_percent, train_epochs

NAME = "bn_order"
TITLE = "Dropout and batch normalisation order (PyTorch, Li et al. 2019)"
PAPER = {
    "source": "Li et al. (2019), Understanding the Disharmony between Dropout and Batch "
              "Normalization by Variance Shift, CVPR",
    "claim": ("Dropout before a batch-norm layer shifts the variance its running statistics "
              "expect at inference; dropout after the last batch-norm layer avoids it."),
}
CONFIG = {
    "hidden": 256,
    "rate": 0.5,
    "epochs": 30,
    "batch_size": 64,
    "lr": 1e-3,
    "arrangements": ["bn", "dropout", "bn-relu-dropout", "dropout-bn", "dropout-after-last-bn"],
    "seeds": [0, 1, 2],
}


def build(arrangement: str, hidden: int, rate: float):
    """The PyTorch ``nn.Sequential`` of one arrangement."""
    from torch import nn

    def block(n_in: int) -> list:
        lin = nn.Linear(n_in, hidden)
        if arrangement == "dropout":
            return [lin, nn.ReLU(), nn.Dropout(rate)]
        if arrangement == "bn-relu-dropout":
            return [lin, nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(rate)]
        if arrangement == "dropout-bn":
            return [lin, nn.Dropout(rate), nn.BatchNorm1d(hidden), nn.ReLU()]
        return [lin, nn.BatchNorm1d(hidden), nn.ReLU()]

    layers = block(64) + block(hidden)
    if arrangement == "dropout-after-last-bn":
        layers.append(nn.Dropout(rate))
    layers.append(nn.Linear(hidden, 10))
    return nn.Sequential(*layers)


def variance_shift(model, x) -> list[float]:
    """For each BN layer: mean over units of running_var / variance of its eval-mode input."""
    import torch
    from torch import nn

    ratios = []
    model.eval()
    h = x
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.BatchNorm1d):
                actual = h.var(dim=0, unbiased=True)
                ratios.append(float((layer.running_var / (actual + 1e-8)).mean()))
            h = layer(h)
    return ratios


def cells(config: dict) -> list[dict]:
    """One cell per arrangement."""
    return [{"arrangement": a} for a in config["arrangements"]]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one PyTorch MLP; return errors (percent) and the variance shifts."""
    import torch

    torch.set_num_threads(1)  # one thread: the same sums in the same order on every run
    torch.manual_seed(seed)
    split = digits()
    model = build(cell["arrangement"], config["hidden"], config["rate"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    train_epochs(model, opt, torch.from_numpy(split.x_train), torch.from_numpy(split.y_train),
                 epochs=config["epochs"], batch_size=config["batch_size"],
                 rng=np.random.default_rng(seed + 10_000), min_batch=2)
    return {
        "train_error": error_percent(model, split.x_train, split.y_train),
        "val_error": error_percent(model, split.x_val, split.y_val),
        "test_error": error_percent(model, split.x_test, split.y_test),
        "variance_shift": variance_shift(model, torch.from_numpy(split.x_test)),
    }

TEST_CELL = {"arrangement": "dropout-bn"}
