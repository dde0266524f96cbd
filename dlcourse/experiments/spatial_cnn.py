"""Element-wise vs spatial dropout (and DropBlock) in a small CNN on digits (PyTorch).

Tompson et al. (2015): neighbouring activations of a feature map are strongly
correlated, so element-wise dropout in convolutional layers removes little
information (a dropped pixel is predictable from its neighbours); dropping
whole feature maps (spatial dropout) regularises them. Ghiasi et al. (2018)
drop contiguous blocks instead (DropBlock).

Here: Conv(1->16, 3x3)-ReLU-[drop]-Conv(16->32, 3x3)-ReLU-[drop]-MaxPool-Linear
on the 8x8 digits, ``nn.Dropout`` (element-wise), ``nn.Dropout2d`` (spatial) or
:class:`dlcourse.torch.DropBlock2d` (3x3 blocks) at rate 0.2, Adam.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import digits
from dlcourse.experiments.torch_loop import error_percent, train_epochs

NAME = "spatial_cnn"
TITLE = "Element-wise vs spatial dropout vs DropBlock in a small CNN (PyTorch)"
PAPER = {
    "source": "Tompson et al. (2015), CVPR; Ghiasi et al. (2018), NeurIPS",
    "claim": ("In convolutional layers, dropping whole feature maps (or blocks) regularises "
              "better than dropping single activations, whose neighbours carry the same "
              "information."),
}
CONFIG = {
    "kinds": ["element-wise", "spatial", "dropblock"],
    "rates": [0.2],
    "block_size": 3,
    "epochs": 40,
    "batch_size": 64,
    "lr": 2e-3,
    "seeds": [0, 1, 2],
}


def build(kind: str, rate: float, block_size: int):
    """The CNN with ``kind`` dropout after each convolution (``"none"``: no dropout)."""
    from torch import nn

    def drop():
        if kind == "element-wise":
            return [nn.Dropout(rate)]
        if kind == "spatial":
            return [nn.Dropout2d(rate)]
        if kind == "dropblock":
            from dlcourse.torch import DropBlock2d

            return [DropBlock2d(rate, block_size)]
        return []

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), *drop(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), *drop(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def cells(config: dict) -> list[dict]:
    """No dropout, then every kind at every rate."""
    return [{"kind": "none", "rate": 0.0}] + [
        {"kind": k, "rate": r} for k in config["kinds"] for r in config["rates"]]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one CNN; return train/val/test error (percent)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    split = digits(flatten=False)
    model = build(cell["kind"], cell["rate"], config["block_size"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    train_epochs(model, opt, torch.from_numpy(split.x_train), torch.from_numpy(split.y_train),
                 epochs=config["epochs"], batch_size=config["batch_size"],
                 rng=np.random.default_rng(seed + 10_000))
    return {part: error_percent(model, x, y) for part, x, y in (
        ("train_error", split.x_train, split.y_train), ("val_error", split.x_val, split.y_val),
        ("test_error", split.x_test, split.y_test))}

TEST_CELL = {"kind": "spatial", "rate": 0.2}
