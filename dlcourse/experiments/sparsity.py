"""(c) Sparsity of the hidden activations with and without dropout (paper Fig. 8).

Paper, Fig. 8: an autoencoder on MNIST with one hidden layer of 256 rectified
linear units. Without dropout the mean activation of the hidden units is about
2.0 and many units are active for most images; with dropout (p = 0.5 on the
hidden layer) the mean activation falls to about 0.7 and most units are zero
for most images: dropout makes the code sparse without any sparsity penalty.

Here: the same autoencoder on digits (64-256-64, ReLU hidden layer, linear
output, squared error), trained with Adam, with and without ``rate=0.5`` on the
hidden layer. Activations are measured in eval mode on the test images.
"""

from __future__ import annotations

import numpy as np

from dlcourse.experiments._common import make_optimizer, n_inputs, split_of

NAME = "sparsity"
TITLE = "Sparsity of hidden activations with and without dropout (paper Fig. 8)"
PAPER = {
    "figure": "Fig. 8",
    "dataset": "MNIST",
    "architecture": "autoencoder, one hidden layer of 256 ReLU units",
    "claim": ("Dropout makes hidden activations sparse: the mean activation drops from "
              "about 2.0 without dropout to about 0.7 with dropout, and most units are "
              "inactive for most images."),
    "mean_activation_without": 2.0,
    "mean_activation_with": 0.7,
}
CONFIG = {
    "hidden": 256,
    "rate": 0.5,
    "epochs": 100,
    "batch_size": 64,
    "lr": 1e-3,
    "bins": [0.0, 0.01, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0],
    "n_filters": 24,
    "seeds": [0, 1, 2],
}


#: With ``--dataset mnist``: the paper's 784-256-784 autoencoder, 50 epochs.
MNIST_CONFIG = {"epochs": 50}


def build_autoencoder(hidden: int, rate: float, seed: int, n_in: int = 64):
    """``Linear(n_in, hidden) - ReLU - Dropout(rate) - Linear(hidden, n_in)`` (64 for digits)."""
    from dlcourse.scratch import Dropout, Linear, ReLU, Sequential

    rng = np.random.default_rng(seed)
    return Sequential(Linear(n_in, hidden, rng=rng), ReLU(), Dropout(rate, rng=rng),
                      Linear(hidden, n_in, init="glorot", rng=rng))


def train_autoencoder(model, x: np.ndarray, *, epochs: int, batch_size: int, lr: float,
                      seed: int) -> list[float]:
    """Minimise ``0.5 * mean_n ||model(x_n) - x_n||^2`` with Adam; return per-epoch losses."""
    opt = make_optimizer("adam", lr=lr)
    rng = np.random.default_rng(seed + 10_000)
    losses = []
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch_size):
            xb = x[order[start:start + batch_size]]
            diff = model.forward(xb) - xb
            total += 0.5 * float(np.sum(diff * diff))
            model.backward(diff / np.float32(len(xb)))
            opt.step(model)
        losses.append(total / len(x))
    return losses


def hidden_activations(model, x: np.ndarray) -> np.ndarray:
    """Activations ``(N, hidden)`` of the ReLU layer in eval mode."""
    model.eval()
    h = x
    for layer in model.layers[:2]:
        h = layer.forward(h)
    return h


def cells(config: dict) -> list[dict]:
    """Two cells: without and with dropout on the hidden layer."""
    return [{"rate": 0.0}, {"rate": config["rate"]}]


def run_cell(cell: dict, seed: int, config: dict) -> dict:
    """Train one autoencoder; return activation statistics on the test images."""
    split = split_of(config)
    model = build_autoencoder(config["hidden"], cell["rate"], seed, n_inputs(config))
    losses = train_autoencoder(model, split.x_train, epochs=config["epochs"],
                               batch_size=config["batch_size"], lr=config["lr"], seed=seed)
    h = hidden_activations(model, split.x_test)
    model.eval()
    recon = model.forward(split.x_test)
    per_image_mean = h.mean(axis=1)
    bins = np.asarray(config["bins"])
    hist, _ = np.histogram(np.clip(h, 0, bins[-1]), bins=bins)
    mean_hist, _ = np.histogram(np.clip(per_image_mean, 0, bins[-1]), bins=bins)
    w = model.layers[0].params["W"][:, : config["n_filters"]]
    return {
        "mean_activation": float(h.mean()),
        "fraction_zero": float(np.mean(h <= 0.0)),
        "active_units_per_image": float(np.mean(np.sum(h > 0.0, axis=1))),
        "dead_units": int(np.sum(h.max(axis=0) <= 0.0)),
        "test_reconstruction_mse": float(np.mean((recon - split.x_test) ** 2)),
        "final_train_loss": losses[-1],
        "activation_hist": hist / h.size,
        "per_image_mean_hist": mean_hist / len(h),
        "filters": w.T if seed == config["seeds"][0] else [],
    }


TEST_CELL = {"rate": 0.5}
