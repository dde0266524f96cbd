"""The one PyTorch training loop the PyTorch experiments share, and their error measure.

Seeded the same way everywhere: the caller seeds torch (weights, dropout masks)
and passes a NumPy generator for the minibatch order, so one seed fixes a run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def train_epochs(model, optimizer, x, y, *, epochs: int, batch_size: int,
                 rng: np.random.Generator, min_batch: int = 1,
                 after_epoch: Callable[[], None] | None = None) -> None:
    """Minimise the cross-entropy of ``model`` on tensors ``x`` (N, ...) and labels ``y`` (N,).

    Each epoch: ``model.train()``, one pass over a fresh permutation from
    ``rng`` in minibatches of ``batch_size`` (batches smaller than ``min_batch``
    skipped: batch norm needs two rows), then ``after_epoch()`` if given. The
    model is left in eval mode.
    """
    import torch

    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(y)))
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < min_batch:
                continue
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
        if after_epoch is not None:
            after_epoch()
    model.eval()


def error_percent(model, x: np.ndarray, y: np.ndarray) -> float:
    """Classification error (percent) of ``model`` in eval mode on NumPy inputs and labels."""
    import torch

    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return 100.0 * float(np.mean(pred != y))
