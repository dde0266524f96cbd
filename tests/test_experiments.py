"""The cached experiment results: well-formed, and reproduced by recomputing a cell.

Each experiment's cache (``book/data/<name>.json``) must hold its config, seeds
and one record per (cell, seed); recomputing one small cell with the cached
config and first seed must give the cached metrics (the runs are seeded end to
end, so on the same software the numbers agree to float tolerance).
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


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_cached_cell_is_reproduced(name):
    if name in TORCH_EXPERIMENTS:
        pytest.importorskip("torch")
    data = _cached(name)
    cell, seed = get(name).TEST_CELL, data["seeds"][0]
    cached = next(r["metrics"] for r in data["records"] if r["cell"] == cell and r["seed"] == seed)
    _close(recompute_cell(name, cell, seed, data["config"]), cached)


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
    assert experiments.DATA_DIR.name == "data"


def test_command_line_rejects_bad_seeds():
    proc = subprocess.run([sys.executable, "-m", "dlcourse.experiments", "rate", "--seeds", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "--seeds must be >= 1" in proc.stderr
