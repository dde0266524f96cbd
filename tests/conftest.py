"""Shared fixtures and collection rules of the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Hidden grading tests run only inside `dlcourse grade` (they need a submission),
# and the grader's fixture notebooks/exercise are data, not tests.
collect_ignore = ["hidden", "grading_fixtures"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The kernels nbval starts inherit this environment: without MPLBACKEND (or with an inline
# one) ipykernel draws inline, so the chapters' figures are produced and stored. Any other
# backend a shell exported is dropped here; this process itself draws off-screen with Agg.
if "inline" not in os.environ.get("MPLBACKEND", "inline"):
    del os.environ["MPLBACKEND"]
import matplotlib  # noqa: E402

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder."""
    return ROOT
