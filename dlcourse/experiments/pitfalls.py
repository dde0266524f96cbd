"""Pitfalls measured: forgetting ``eval()`` and dropout on the logits.

* Forgetting ``eval()``: predicting with dropout still on gives a worse and
  *random* answer (two calls disagree).
* Dropout placed after the output layer (on the logits) instead of on the
  last hidden layer: the classifier's own output is zeroed at random in
  training, and the loss it is trained on no longer matches the one it is
  evaluated on.

(Too much dropout, the third pitfall, is read off the ``rate`` experiment.)
Here: 64-256-256-10 MLPs on digits with Adam; ``rate=0.5``.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import classifier_metrics, digits, make_optimizer

NAME = "pitfalls"
TITLE = "Pitfalls: forgetting eval() and dropout on the logits"
PAPER = {
    "claim": ("No dropout after the output layer (the paper drops input and hidden units "
              "only); predictions are made with the deterministic (weight-scaled) network."),
}
CONFIG = {
    "hidden": 256,
    "rate": 0.5,
    "epochs": 40,
    "batch_size": 64,
    "lr": 1e-3,
    "placements": ["none", "hidden", "logits", "hidden + logits"],
    "seeds": [0, 1, 2],
}


def build(placement: str, hidden: int, rate: float, seed: int):
    """A 64-h-h-10 ReLU MLP with dropout on the hidden layers and/or on the logits."""
    from dlcourse.scratch import Dropout, Linear, ReLU, Sequential

    rng = np.random.default_rng(seed)
    on_hidden = "hidden" in placement
    on_logits = "logits" in placement
    layers = []
    for n_in, n_out in ((64, hidden), (hidden, hidden)):
        layers += [Linear(n_in, n_out, rng=rng), ReLU()]
        if on_hidden:
            layers.append(Dropout(rate, rng=rng))
    layers.append(Linear(hidden, 10, init="glorot", rng=rng))
    if on_logits:
        layers.append(Dropout(rate, rng=rng))
    return Sequential(*layers)


def cells(config: dict) -> list[dict]:
    """One cell per dropout placement."""
    return [{"placement": p} for p in config["placements"]]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one network; return eval-mode and train-mode errors and their disagreement."""
    from dlcourse.scratch import fit

    split = digits()
    model = build(cell["placement"], config["hidden"], config["rate"], seed)
    history = fit(model, split.x_train, split.y_train,
                  optimizer=make_optimizer("adam", lr=config["lr"]),
                  epochs=config["epochs"], batch_size=config["batch_size"], rng=seed + 10_000)
    metrics = classifier_metrics(model, split)
    model.train()  # the bug: predicting in training mode
    first = model.forward(split.x_test).argmax(axis=1)
    second = model.forward(split.x_test).argmax(axis=1)
    model.eval()
    return {
        **metrics,
        "final_batch_loss": float(history.history["batch_loss"][-1]),
        "final_train_loss_eval": float(history.history["loss"][-1]),
        "test_error_train_mode": 100.0 * float(np.mean(first != split.y_test)),
        "train_mode_disagreement": 100.0 * float(np.mean(first != second)),
    }


TEST_CELL = {"placement": "logits"}
