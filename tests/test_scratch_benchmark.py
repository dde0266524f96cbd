"""The dropout benchmark script runs and reports what the issue asks for."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "dropout_speed.py"


@pytest.mark.torch
def test_dropout_benchmark_smoke(capsys):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("dropout_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--log2n", "12", "--repeats", "2", "--rate", "0.2"])
    out = capsys.readouterr().out
    for text in ("np.copy", "x np.copy", "x torch", "bytes/element", "[fast]", "[readable]"):
        assert text in out
    assert results["mask_bytes_per_element"] <= 1.0
    assert {"copy", "dlcourse_fast", "dlcourse_readable", "torch_default", "torch_1thread"} <= set(
        results)
