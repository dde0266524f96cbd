"""(d) Monte-Carlo model averaging over k masks vs weight scaling (paper Fig. 11).

Paper, Fig. 11: for a dropout net on MNIST, averaging the predictions of k
networks with random dropout masks reaches the test error of the weight-scaling
approximation at about k = 50; beyond that Monte-Carlo averaging is slightly
better, but within one standard deviation of it.

Here: a 64-256-256-10 MLP with ``rate=0.5`` (and ``input_rate=0.2``) on digits.
Weight scaling = eval mode of inverted dropout (the same network). Monte-Carlo:
the mean of the softmax outputs of k passes in training mode, repeated with
``repeats`` independent sets of masks to give an error bar.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import (
    MNIST_TRAINING,
    classifier_metrics,
    n_inputs,
    train_classifier,
)

NAME = "mc"
TITLE = "Monte-Carlo averaging over k samples vs weight scaling (paper Fig. 11)"
PAPER = {
    "figure": "Fig. 11",
    "dataset": "MNIST",
    "claim": ("Monte-Carlo averaging of k dropout networks matches the weight-scaling "
              "approximation at about k = 50 and is slightly better beyond, within one "
              "standard deviation."),
    "k_match": 50,
}
CONFIG = {
    "hidden": 256,
    "rate": 0.5,
    "input_rate": 0.2,
    "epochs": 60,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "ks": [1, 2, 5, 10, 20, 50, 100, 200],
    "repeats": 5,
    "seeds": [0, 1, 2],
}


#: With ``--dataset mnist``: a 784-1024-1024-10 dropout net, k up to 100.
MNIST_CONFIG = {**MNIST_TRAINING, "hidden": 1024, "ks": [1, 2, 5, 10, 20, 50, 100]}


def set_dropout_rng(model, rng: np.random.Generator) -> None:
    """Make every dropout layer of ``model`` draw its masks from ``rng``."""
    for layer in model.layers:
        if hasattr(layer, "rate") and hasattr(layer, "rng"):
            layer.rng = rng


def mc_error_curve(model, x: np.ndarray, y: np.ndarray, ks: list[int], repeats: int,
                   seed: int) -> np.ndarray:
    """Test error (percent) ``(repeats, len(ks))`` of Monte-Carlo averaging.

    Each repeat draws ``max(ks)`` passes once and reads the running mean at each
    k, so the curve for one repeat is a single averaging process growing in k.
    """
    from dlcourse.scratch import softmax

    errors = np.empty((repeats, len(ks)))
    for r in range(repeats):
        set_dropout_rng(model, np.random.default_rng([seed, r]))
        model.train()
        running = np.zeros((len(x), 10))
        done = 0
        for j, k in enumerate(ks):
            while done < k:
                running += softmax(model.forward(x)).astype(np.float64)
                done += 1
            errors[r, j] = 100.0 * np.mean(running.argmax(axis=1) != y)
        model.eval()
    return errors


def cells(config: dict) -> list[dict]:
    """One cell: the dropout network (the seeds vary it)."""
    return [{"rate": config["rate"], "input_rate": config["input_rate"]}]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one dropout net; return weight-scaling error and the Monte-Carlo curve."""
    h = config["hidden"]
    model, _, split = train_classifier(
        sizes=[n_inputs(config), h, h, 10], rate=cell["rate"], input_rate=cell["input_rate"],
        seed=seed, epochs=config["epochs"], batch_size=config["batch_size"],
        optimizer=config["optimizer"], lr=config["lr"], momentum=config.get("momentum", 0.0),
        config=config,
    )
    errors = mc_error_curve(model, split.x_test, split.y_test, config["ks"],
                            config["repeats"], seed)
    return {
        **classifier_metrics(model, split),
        "ks": config["ks"],
        "mc_error_mean": errors.mean(axis=0),
        "mc_error_std": errors.std(axis=0, ddof=1),
        "mc_errors": errors,
    }


TEST_CELL = {"rate": 0.5, "input_rate": 0.2}
