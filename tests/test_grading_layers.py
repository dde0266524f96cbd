"""The grading package's imports run one way: from the command line down to the leaves.

Every module of ``dlcourse/grading/`` has a place in :data:`LAYERS` (top first); a
module may import only modules of lower layers, at the top of the file or inside a
function alike. The book's instructors' guide draws the same picture.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

GRADING = Path(__file__).resolve().parents[1] / "dlcourse" / "grading"

#: The layers, top first. ``__init__`` is the package's public API (``check``, ``points``,
#: the exceptions); ``public_checks.*`` are the exercises' public self-checks.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("batch", "release", "scaffold"),
    ("worker", "report", "probe", "assign", "setup_cell"),
    ("proxy", "suite"),
    ("kernel", "results"),
    ("sandbox", "exercise", "execution", "frameworks", "kernel_objects", "public_checks.*"),
    ("__init__",),
    ("public", "public_checks"),
    ("errors", "bounds", "codec", "kernel_side", "launcher", "_nbformat"),
)


def module_name(path: Path) -> str:
    """``kernel`` for ``grading/kernel.py``, ``public_checks`` for its ``__init__.py``."""
    parts = list(path.relative_to(GRADING).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def layer(name: str) -> int:
    """The index of ``name``'s layer in :data:`LAYERS` (0 is the top)."""
    for index, names in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in names):
            return index
    raise KeyError(f"{name} has no layer: add it to LAYERS in {Path(__file__).name}")


def grading_imports(name: str, source: str, modules: set[str]) -> set[str]:
    """The grading modules that module ``name`` imports anywhere in ``source`` (function
    bodies included); ``from dlcourse.grading import X`` is module X when X is one, else
    the package's ``__init__``."""
    package = name.rpartition(".")[0] if name != "__init__" else ""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_grading_module(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from .x import y
                base = ".".join(["dlcourse", "grading", *filter(None, [package])])
                target = ".".join(filter(None, [base, node.module]))
            else:
                target = node.module or ""
            for alias in node.names:  # a submodule (from PACKAGE import MODULE), else target
                found.add(_grading_module(f"{target}.{alias.name}", modules))
    found.discard(None)
    found.discard(name)
    return found


def _grading_module(dotted: str, modules: set[str]) -> str | None:
    if dotted == "dlcourse.grading":
        return "__init__"
    if not dotted.startswith("dlcourse.grading."):
        return None
    rest = dotted.removeprefix("dlcourse.grading.")
    while rest and rest not in modules:
        rest = rest.rpartition(".")[0]
    return rest or "__init__"


def upward_imports(sources: dict[str, str]) -> list[str]:
    """``"A imports B"`` for each import of a module B that is not in a layer below A."""
    modules = set(sources)
    wrong = []
    for name, source in sorted(sources.items()):
        own = layer(name)
        for target in sorted(grading_imports(name, source, modules)):
            if layer(target) <= own:
                wrong.append(f"{name} (layer {own}) imports {target} (layer {layer(target)})")
    return wrong


def package_sources() -> dict[str, str]:
    return {module_name(path): path.read_text() for path in sorted(GRADING.rglob("*.py"))}


def test_every_grading_module_has_a_layer():
    for name in package_sources():
        layer(name)  # a KeyError names the module


def test_no_grading_module_imports_upward():
    assert upward_imports(package_sources()) == []


@pytest.mark.parametrize("source", [
    "from dlcourse.grading.batch import Batch\n",
    "def detect():\n    from dlcourse.grading import worker\n    return worker\n",
    "import dlcourse.grading.report as report\n",
    "def f():\n    from dlcourse.grading.kernel import UidLease\n",
])
def test_an_upward_import_is_caught(source):
    """A deliberate upward import in sandbox (at the top, in a function, by any form)."""
    sources = package_sources()
    sources["sandbox"] += "\n" + source
    assert [line for line in upward_imports(sources) if line.startswith("sandbox ")]


def test_an_import_within_a_layer_is_caught():
    sources = package_sources()
    sources["report"] += "\nfrom dlcourse.grading.worker import run_cells\n"
    assert upward_imports(sources) == ["report (layer 2) imports worker (layer 2)"]


def test_a_module_without_a_layer_is_caught():
    with pytest.raises(KeyError, match="newcomer has no layer"):
        upward_imports({**package_sources(), "newcomer": "import os\n"})


def test_relative_and_package_imports_resolve():
    modules = set(package_sources())
    assert grading_imports("proxy", "from dlcourse.grading import codec\n", modules) == {"codec"}
    assert grading_imports("worker", "from dlcourse.grading import points\n",
                           modules) == {"__init__"}
    assert grading_imports("public_checks.x", "from . import attempt\n",
                           modules) == {"public_checks"}
    assert grading_imports("batch", "from .sandbox import Limits\n", modules) == {"sandbox"}


# -- one definition of each thing ------------------------------------------------------
def test_limits_defaults_are_defined_once_and_reach_the_command_line():
    import argparse

    from dlcourse.grading.cli import register
    from dlcourse.grading.sandbox import WORKER_MEMORY_MB, Limits

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    grade = parser._subparsers._group_actions[0].choices["grade"]
    helps = {a.dest: a.help for a in grade._actions}
    assert f"default {Limits.cell_timeout:g}," in helps["timeout"]
    assert f"default {Limits.notebook_timeout:g})" in helps["notebook_timeout"]
    assert f"default {Limits.memory_mb})" in helps["memory_mb"]
    assert f"default {WORKER_MEMORY_MB})" in helps["worker_memory_mb"]


def test_limits_resolve_command_line_then_grading_json_then_defaults():
    from dlcourse.grading.sandbox import Limits

    config = {"cell_timeout": 5, "memory_mb": 1024}
    limits = Limits.resolve(config, cell_timeout=None, notebook_timeout=None, memory_mb=2048)
    assert (limits.cell_timeout, limits.notebook_timeout, limits.memory_mb) == (5.0, 600.0, 2048)
    assert isinstance(limits.cell_timeout, float) and isinstance(limits.memory_mb, int)
    assert Limits.resolve({}, cell_timeout=0) == Limits()  # 0: not given
    with pytest.raises(TypeError, match="unknown limits \\['cell_timout'\\]"):
        Limits.resolve({}, cell_timout=3)


def test_results_json_lists_every_collected_test_once_and_totals_them():
    from dlcourse.grading.results import finished, results_json, test_entry

    collected = [test_entry(f"t{i}", i, i, "visible", f"n{i}") for i in (1, 2, 3)]
    ran = [finished(collected[2], None), finished(collected[0], "wrong")]
    result = results_json("ex", ran, all_tests=collected, reason="stopped", status="graded",
                          notes=["a note"])
    assert [t["nodeid"] for t in result["tests"]] == ["n1", "n2", "n3"]
    assert [t["score"] for t in result["tests"]] == [0.0, 0.0, 3.0]
    assert [t["output"] for t in result["tests"]] == ["wrong", "stopped", ""]
    assert (result["score"], result["max_score"]) == (3.0, 6.0)
    assert result["output"] == "Score: 3 / 6\na note"
    assert result["extra_data"]["status"] == "graded" and "python" in result["extra_data"]["versions"]


def test_run_autograder_writes_results_through_the_package(tmp_path):
    """run_autograder writes no JSON of its own but the one fallback results.py makes."""
    import json
    import subprocess
    import sys

    from dlcourse.grading.release import FALLBACK_MESSAGE, run_autograder
    from dlcourse.grading.results import fallback_json

    script = run_autograder("ex")
    assert script.count('"score"') == 1  # one JSON text: the fallback
    assert fallback_json(FALLBACK_MESSAGE) in script and "@EXERCISE@" not in script
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, "-m", "dlcourse.grading.results", str(out), "--exercise",
                    "ex", "--message", "no notebook", "--status", "not submitted"], check=True)
    result = json.loads(out.read_text())
    assert (result["score"], result["output"], result["tests"]) == (0.0, "no notebook", [])
    assert result["extra_data"]["status"] == "not submitted"
    assert result["extra_data"]["exercise"] == "ex"


def test_the_instructors_guide_draws_the_same_layers():
    """Each row ``| N | `module`, ... |`` of book/grading.md's table is in layer N - 1."""
    import re

    page = (GRADING.parents[1] / "book" / "grading.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ((?:`[\w.]+`(?:, )?)+) \|", page, flags=re.MULTILINE)
    assert len(rows) >= 10
    for number, names in rows:
        for name in re.findall(r"`([\w.]+)`", names):
            assert layer(name) == int(number) - 1, f"book/grading.md puts {name} in layer {number}"
