"""dlcourse.grading._nbformat: nbformat without jsonschema's costly format checkers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = f"""
import sys
from dlcourse.grading._nbformat import _FORMAT_CHECKERS, nbformat
nb = nbformat()
notebook = nb.read({str(ROOT / "solutions" / "01_dropout_from_scratch.ipynb")!r}, as_version=4)
nb.validate(notebook)
bad = nb.from_dict({{"nbformat": 4, "nbformat_minor": 5, "metadata": {{}}, "cells": [{{"cell_type": "nope"}}]}})
try:
    nb.validate(bad)
    raise SystemExit("an invalid notebook validated")
except nb.ValidationError:
    pass
loaded = [name for name in _FORMAT_CHECKERS if sys.modules.get(name) is not None]
left = [name for name in _FORMAT_CHECKERS if name in sys.modules and sys.modules[name] is None]
print("loaded", loaded, "left", left)
import importlib.util
for name in _FORMAT_CHECKERS:  # hidden only during the import: later imports work
    if importlib.util.find_spec(name) is not None:
        __import__(name)
"""


def test_nbformat_imports_without_format_checkers_and_still_validates():
    proc = subprocess.run([sys.executable, "-I", "-c", SCRIPT], capture_output=True, text=True,
                          cwd="/", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loaded [] left []" in proc.stdout, proc.stdout
