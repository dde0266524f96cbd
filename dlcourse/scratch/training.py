"""``fit``: the minibatch training loop, and the ``History`` it returns.

References:
    Goodfellow, Bengio & Courville (2016), *Deep Learning*, §8.1.3 (minibatch SGD).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dlcourse._checks import as_float_array, as_rng, check_positive_int
from dlcourse.scratch.losses import Loss, SoftmaxCrossEntropy

if TYPE_CHECKING:  # annotations only; any object with the same methods works
    from dlcourse.scratch.model import Sequential
    from dlcourse.scratch.optim import Optimizer


@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch (as Keras' ``History``).

    Attributes:
        history: ``"loss"``/``"accuracy"`` on the full training set in
            inference mode at the end of each epoch; ``"val_loss"``/
            ``"val_accuracy"`` the same on the validation data (when given);
            ``"batch_loss"`` the mean minibatch loss during the epoch, with
            dropout on (what the optimiser actually saw).
        epoch: Epoch numbers ``1..epochs``.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def last(self) -> dict[str, float]:
        """The metrics of the last epoch.

        Returns:
            ``{name: value}`` for every metric recorded so far (empty before the first epoch).
        """
        return {k: v[-1] for k, v in self.history.items() if v}


def _progress(epoch: int, epochs: int, metrics: dict[str, float], stream=None) -> None:
    stream = sys.stdout if stream is None else stream
    width = 20
    done = int(width * epoch / epochs)
    text = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    end = "\n" if epoch == epochs else ""
    stream.write(f"\r[{'#' * done}{'.' * (width - done)}] epoch {epoch}/{epochs} {text}{end}")
    stream.flush()


def fit(
    model: Sequential,
    x: np.ndarray,
    y: np.ndarray,
    *,
    optimizer: Optimizer,
    loss: Loss | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    rng: np.random.Generator | int | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` with minibatches; returns the per-epoch :class:`History`.

    Each epoch shuffles the rows with ``rng``, and for each minibatch runs
    ``model.train()``, forward, ``loss.forward``, ``model.backward(loss.backward())``
    and ``optimizer.step(model)``; then evaluates the training set (and the
    validation data) in inference mode. The model's mode is restored at the end.
    For a given ``rng`` and a model built from a seed, the result is the same
    on every run.

    Args:
        model: A :class:`~dlcourse.scratch.model.Sequential` (or anything with
            ``forward``, ``backward``, ``train``, ``eval``, ``evaluate``, ``parameters``).
        x: Training inputs ``(N, D)``.
        y: Integer labels ``(N,)``.
        optimizer: An optimiser with ``step(model)``
            (:class:`~dlcourse.scratch.optim.SGD`, :class:`~dlcourse.scratch.optim.Adam`).
        loss: Loss with ``forward(logits, y)`` and ``backward()``; default
            :class:`~dlcourse.scratch.losses.SoftmaxCrossEntropy`.
        epochs: Number of passes over the data.
        batch_size: Rows per minibatch (the last one may be smaller).
        validation_data: ``(x_val, y_val)`` evaluated after each epoch, or ``None``.
        rng: Generator or seed of the shuffling.
        progress: Print a one-line progress bar with the epoch's metrics.

    Returns:
        A :class:`History`.

    References:
        Goodfellow, Bengio & Courville (2016), *Deep Learning*, §8.1.3.
    """
    x = as_float_array(x)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same number of rows; received {len(x)} and "
                         f"{len(y)}")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    gen = as_rng(rng)
    loss = SoftmaxCrossEntropy() if loss is None else loss
    keys = ["loss", "accuracy", "batch_loss"]
    if validation_data is not None:
        x_val, y_val = validation_data
        keys[2:2] = ["val_loss", "val_accuracy"]
    history = History({k: [] for k in keys})
    previous = getattr(model, "training", True)
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            order = gen.permutation(len(x))
            total, count = 0.0, 0
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                value = loss.forward(model.forward(x[idx]), y[idx])
                model.backward(loss.backward())
                optimizer.step(model)
                total += value * len(idx)
                count += len(idx)
            train = model.evaluate(x, y, loss=loss)
            history.history["loss"].append(train["loss"])
            history.history["accuracy"].append(train["accuracy"])
            if validation_data is not None:
                val = model.evaluate(x_val, y_val, loss=loss)
                history.history["val_loss"].append(val["loss"])
                history.history["val_accuracy"].append(val["accuracy"])
            history.history["batch_loss"].append(total / max(count, 1))
            history.epoch.append(epoch)
            if progress:
                _progress(epoch, epochs, history.last())
    finally:
        if previous:
            model.train()
        else:
            model.eval()
    return history
