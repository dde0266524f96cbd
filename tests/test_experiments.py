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
    """A small file in MNIST's format in an empty Keras cache (nothing downloads)."""
    home = tmp_path / "keras"
    (home / "datasets").mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = lambda n: np.arange(n) % 10  # noqa: E731  every class present
    np.savez(home / "datasets" / "mnist.npz",
             x_train=rng.integers(0, 256, (300, 28, 28), dtype=np.uint8), y_train=labels(300),
             x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), y_test=labels(50))
    monkeypatch.setenv("KERAS_HOME", str(home))
    from dlcourse.experiments import _common

    _common._mnist.cache_clear()
    yield home
    _common._mnist.cache_clear()


def test_command_line_runs_the_paper_experiments_on_mnist(fake_mnist, tmp_path, monkeypatch):
    from dlcourse.experiments.__main__ import main

    for name, overrides in (("rate", {"rates": [0.5], "epochs": 1}),
                            ("data_size", {"updates": 2}),
                            ("sparsity", {"epochs": 1, "n_filters": 2})):
        for key, value in overrides.items():
            monkeypatch.setitem(get(name).CONFIG, key, value)
    monkeypatch.setattr(get("data_size"), "MNIST_CONFIG", {"sizes": [20]})
    for name in ("rate", "data_size", "sparsity"):
        assert main([name, "--dataset", "mnist", "--no-download", "--out", str(tmp_path),
                     "--seeds", "1"]) == 0
        data = load_result(name, tmp_path, dataset="mnist")
        assert data["config"]["dataset"] == "mnist" and data["split"]["dataset"] == "mnist"
        assert data["command"] == f"python -m dlcourse.experiments {name} --dataset mnist"
        assert not (tmp_path / f"{name}.json").exists()  # the digits caches are left alone
    assert [r["cell"]["n_train"] for r in load_result("data_size", tmp_path, "mnist")["records"]] \
        == [20, 20]
    filters = load_result("sparsity", tmp_path, "mnist")["records"][0]["metrics"]["filters"]
    assert np.shape(filters) == (2, 784)


def test_mnist_unavailable_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    from dlcourse.experiments import _common
    from dlcourse.experiments.__main__ import main

    _common._mnist.cache_clear()
    assert main(["mc", "--dataset", "mnist", "--no-download", "--out", str(tmp_path)]) == 2
    assert "MNIST is not cached" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bn_order", "--dataset", "mnist"])
    assert "runs only the paper's experiments" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="--dataset mnist"):
        load_result("rate", tmp_path, dataset="mnist")


def test_command_line_rejects_bad_seeds():
    proc = subprocess.run([sys.executable, "-m", "dlcourse.experiments", "rate", "--seeds", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--seeds must be >= 1" in proc.stderr
