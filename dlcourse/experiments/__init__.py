"""The paper's experiments, reproduced on digits with the NumPy toolkit.

Each experiment is a small module with a grid of cells, a seeded training run
per cell and seed, and a JSON cache committed beside the book
(``book/data/<name>.json``), so that the chapters render from the cache in
seconds while one command recomputes it::

    python -m dlcourse.experiments all                # every experiment
    python -m dlcourse.experiments rate --seeds 5     # one, with seeds 0..4
    python -m dlcourse.experiments mc --out /tmp/x    # write elsewhere
    python -m dlcourse.experiments all --dataset mnist  # the paper's five, on MNIST

``all`` runs the experiments one after the other in one process: about 8.5
minutes of CPU time (15 minutes of wall-clock time on a shared two-core
machine), and it reproduces every committed record exactly on that machine
(on another CPU, within the spread over seeds: see
:func:`dlcourse.experiments._common.environment`).

``--dataset mnist`` runs the five experiments of the paper (:data:`PAPER_NAMES`)
on the real MNIST (784 inputs; the official test set, a sixth of the training
set for validation) with the same configurations, except the paper's subset
sizes for ``data_size``, and writes ``<name>-mnist.json``. It needs MNIST in
Keras' cache or the network to download it; nothing here has it, so no MNIST
result is committed and its running time is not measured here (50,000
training images instead of 897 make each epoch about 56 times as long as on
digits).

==================  =====================================================
``rate``            dropout rate, width n fixed and (1 - rate) n fixed (Fig. 9)
``data_size``       training-set size (Fig. 10)
``sparsity``        hidden-activation sparsity with/without dropout (Fig. 8)
``mc``              Monte-Carlo averaging vs weight scaling (Fig. 11)
``regularizers``    L2, max-norm, dropout and combinations (Table 9)
``lr_momentum``     learning rate, momentum and max-norm with dropout (practice)
``pitfalls``        too much dropout, dropout on the logits (practice)
``bn_order``        dropout and batch normalisation order, PyTorch (practice)
``spatial_cnn``     element-wise vs spatial dropout vs DropBlock in a CNN, PyTorch (variants)
``mc_ood``          MC dropout uncertainty in/out of distribution, calibration (variants)
==================  =====================================================

Every cached file holds the configuration, the seeds, the split and one record
per (cell, seed) with its metrics; :func:`load_result` reads it and
:func:`summarize` gives means and standard deviations over seeds.

References:
    Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural
    Networks from Overfitting", JMLR 15 (Figs. 8-11, Table 9).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dlcourse.experiments._common import DATA_DIR, load_result, run_experiment, summarize

#: Experiment names, in the order ``all`` runs them.
NAMES = ("rate", "data_size", "sparsity", "mc", "regularizers", "lr_momentum", "pitfalls",
         "bn_order", "spatial_cnn", "mc_ood")

#: The paper's experiments (chapter 8): the ones that also run on MNIST.
PAPER_NAMES = ("rate", "data_size", "sparsity", "mc", "regularizers")

#: Experiments that run on MNIST only (chapters 4 and 5 read their caches).
MNIST_ONLY_NAMES = ("torch_mnist", "keras_mnist")

#: What ``all --dataset mnist`` runs: every ``<name>-mnist.json`` cache.
MNIST_NAMES = PAPER_NAMES + MNIST_ONLY_NAMES


def get(name: str) -> ModuleType:
    """The module of experiment ``name``."""
    if name not in NAMES + MNIST_ONLY_NAMES:
        raise ValueError(f"name must be one of {', '.join(NAMES + MNIST_ONLY_NAMES)}; "
                         f"received name={name!r}")
    return importlib.import_module(f"dlcourse.experiments.{name}")


def run(name: str, *, seeds=None, out=None, config=None, log=None, jobs: int = 1,
        scheduler: str | None = None) -> dict:
    """Recompute experiment ``name`` and write its cache (see :func:`run_experiment`)."""
    return run_experiment(get(name), seeds=seeds, out=out, config=config, log=log, jobs=jobs,
                          scheduler=scheduler)


def recompute_cell(name: str, cell: dict, seed: int, config: dict | None = None) -> dict:
    """Recompute one cached cell with the cached configuration; return its metrics (plain JSON)."""
    from dlcourse.experiments._common import _plain, single_thread

    module = get(name)
    config = {**module.CONFIG, **(config or {})}
    with single_thread():
        return _plain(module.run_cell(cell, seed, config))


__all__ = ["DATA_DIR", "MNIST_NAMES", "MNIST_ONLY_NAMES", "NAMES", "PAPER_NAMES", "get", "load_result", "recompute_cell", "run",
           "summarize"]
