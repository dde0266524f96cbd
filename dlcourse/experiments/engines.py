"""Where the training runs of an experiment execute: here, in joblib workers, or on Dask.

Every (cell, seed) run is independent and fully seeded, so any engine gives the
same numbers (each run limits BLAS to one thread, which also fixes the order
of its sums). :func:`execute` yields finished runs as they complete, so the
caller can write each one to disk at once.

* ``jobs=1``: in this process, one run after the other.
* ``jobs=N``: joblib's ``loky`` processes (``N`` of them, one BLAS thread each).
* ``scheduler="tcp://host:8786"``: a ``dask.distributed`` cluster (optional
  extra ``pip install 'dlcourse[dask]'``); one task per run, gathered as they
  finish. This is the path for paper-scale runs on machines an instructor has.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

#: One run: ``(index, experiment name, cell, seed, config)``.
Task = tuple[int, str, dict, int, dict]


def run_task(task: Task) -> dict[str, Any]:
    """Run one (cell, seed) of an experiment with one BLAS thread; time it.

    Module-level (picklable) so that loky and Dask workers can call it; it
    imports the experiment by name inside the worker.

    Returns:
        ``{"index", "cell", "seed", "metrics", "elapsed_s", "cpu_s"}``.
    """
    from dlcourse.experiments import get
    from dlcourse.experiments._common import single_thread

    index, name, cell, seed, config = task
    t0, c0 = time.perf_counter(), time.process_time()
    with single_thread():
        metrics = get(name).run_cell(cell, seed, config)
    return {"index": index, "cell": cell, "seed": seed, "metrics": metrics,
            "elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def execute(tasks: Iterable[Task], *, jobs: int = 1,
            scheduler: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the result of every task (:func:`run_task`) as it finishes, in any order.

    Args:
        tasks: The runs to do.
        jobs: Worker processes for joblib (``1``: run here, no workers).
        scheduler: Address of a ``dask.distributed`` scheduler; overrides ``jobs``.

    Raises:
        ValueError: ``jobs`` is not a positive integer.
        ImportError: ``scheduler`` is given but ``distributed`` is not installed
            (the message says which extra to install).
    """
    from dlcourse._checks import check_positive_int

    jobs = check_positive_int(jobs, "jobs")
    tasks = list(tasks)
    if scheduler is not None:
        yield from _dask(tasks, scheduler)
    elif jobs == 1 or len(tasks) <= 1:
        yield from map(run_task, tasks)
    else:
        yield from _joblib(tasks, jobs)


def _joblib(tasks: list[Task], jobs: int) -> Iterator[dict[str, Any]]:
    from joblib import Parallel, delayed, parallel_config

    # inner_max_num_threads=1: every loky worker starts with one BLAS thread
    with parallel_config(backend="loky", inner_max_num_threads=1):
        parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
        yield from parallel(delayed(run_task)(t) for t in tasks)


def _dask(tasks: list[Task], scheduler: str) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError as err:
        raise ImportError("scheduler= needs dask.distributed: pip install 'dlcourse[dask]' "
                          f"({err})") from err
    with Client(scheduler) as client:
        futures = [client.submit(run_task, t, pure=False, key=f"dlcourse-run-{t[1]}-{t[0]}")
                   for t in tasks]
        for future in as_completed(futures):
            yield future.result()
