"""Every chapter, exercise and solution notebook has an up-to-date setup cell.

The cell (``dlcourse.grading.setup_cell``) installs, where they are missing, the
dlcourse wheel the site publishes and the frameworks the notebook imports. These
tests check the notebooks of the repository, and the generator itself on copies.
Fix a failure with ``.venv/bin/python tools/setup_cells.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dlcourse._version import __version__
from dlcourse.grading.assign import assign, student_notebook
from dlcourse.grading.setup_cell import (
    TAG,
    course_notebooks,
    setup_source,
    update_file,
    updated,
    wheel_url,
)

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "setup_cells.py"
NOTEBOOKS = course_notebooks(ROOT)


def _setup_cells(nb):
    return [c for c in nb.cells if TAG in c.get("metadata", {}).get("tags", [])]


def test_the_course_has_notebooks_of_every_kind():
    kinds = {p.parent.name for p in NOTEBOOKS}
    assert kinds == {"book", "exercises", "solutions"}, kinds


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_has_an_up_to_date_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert not updated(nb, ROOT), (
        f"{path.relative_to(ROOT)}: its setup cell is missing or stale "
        "(run `.venv/bin/python tools/setup_cells.py`)")


def _copy_course(tmp_path: Path) -> Path:
    course = tmp_path / "course"
    for folder in ("book", "exercises", "solutions"):
        shutil.copytree(ROOT / folder, course / folder,
                        ignore=shutil.ignore_patterns("data", "_ext", "*.md", "*.bib"))
    (course / "requirements").mkdir()
    shutil.copy(ROOT / "requirements" / "requirements.txt", course / "requirements")
    shutil.copy(ROOT / "pyproject.toml", course)
    return course


def test_tool_inserts_the_cell_where_and_as_it_should(tmp_path):
    course = _copy_course(tmp_path)
    before = {p.relative_to(course): nbformat.read(p, 4) for p in course_notebooks(course)}
    proc = subprocess.run([sys.executable, str(TOOL), "--root", str(course)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check = subprocess.run([sys.executable, str(TOOL), "--root", str(course), "--check"],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr  # idempotent: nothing left to do
    for rel, old in before.items():
        nb = nbformat.read(course / rel, 4)
        (cell,) = _setup_cells(nb)
        others = [c for c in nb.cells if c is not cell]
        # Only the setup cell was added (or refreshed); every other cell is untouched.
        assert [c.source for c in others] == [c.source for c in old.cells
                                              if TAG not in c.get("metadata", {}).get("tags", [])]
        index = nb.cells.index(cell)
        assert all(c.cell_type != "code" for c in nb.cells[:index]), f"{rel}: not the first code cell"
        assert cell.outputs == [] and cell.execution_count is None
        assert wheel_url(ROOT) in cell.source and f"dlcourse-{__version__}-" in cell.source
        text = "\n".join(c.source for c in others if c.cell_type == "code")
        assert ('"torch": "torch==2.13.0"' in cell.source) == ("import torch" in text
                                                              or "dlcourse.torch" in text), rel
        assert ('"keras": "tensorflow-cpu==' in cell.source) == ("import keras" in text
                                                                 or "dlcourse.keras" in text), rel
        compile(cell.source, str(rel), "exec")


def test_check_mode_fails_on_a_missing_or_edited_cell(tmp_path):
    course = _copy_course(tmp_path)
    subprocess.run([sys.executable, str(TOOL), "--root", str(course)], check=True,
                   capture_output=True, timeout=300)
    path = course / "solutions" / "04_mc_dropout.ipynb"
    nb = nbformat.read(path, 4)
    (cell,) = _setup_cells(nb)
    cell.source = cell.source.replace("torch==2.13.0", "torch==2.0.0")
    nbformat.write(nb, path)
    assert update_file(path, course, check=True)
    proc = subprocess.run([sys.executable, str(TOOL), "--root", str(course), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "04_mc_dropout" in proc.stderr
    nb.cells.remove(cell)
    nbformat.write(nb, path)
    assert update_file(path, course, check=True)
    assert update_file(path, course) and not update_file(path, course, check=True)


def test_assign_keeps_the_setup_cell(tmp_path):
    course = _copy_course(tmp_path)
    subprocess.run([sys.executable, str(TOOL), "--root", str(course)], check=True,
                   capture_output=True, timeout=300)
    for name in ("01_dropout_from_scratch", "04_mc_dropout"):
        solution = nbformat.read(course / "solutions" / f"{name}.ipynb", 4)
        student = student_notebook(solution, name)
        assert [c.source for c in _setup_cells(student)] == [
            c.source for c in _setup_cells(solution)]
        out = tmp_path / "exercises"
        assign([name], solutions_dir=course / "solutions", exercises_dir=out)
        written = nbformat.read(out / f"{name}.ipynb", 4)
        assert [c.source for c in _setup_cells(written)] == [
            c.source for c in _setup_cells(solution)]
        assert not updated(written, ROOT)  # generated exercises need no second pass


def test_setup_cell_installs_only_what_is_missing_and_is_silent_otherwise(tmp_path):
    """Run the cell with a stand-in pip: here (course env) it runs nothing and prints nothing;
    with a module missing it asks pip for exactly that one, and only once."""
    source = setup_source(["torch"], ROOT)
    log = tmp_path / "pip.log"
    fake = f'''
import builtins, importlib.util, subprocess, sys
calls = []
real_find_spec = importlib.util.find_spec
missing = set(sys.argv[1:])
importlib.util.find_spec = lambda name, *a: None if name in missing else real_find_spec(name, *a)
def run(cmd, check=False):
    calls.append(cmd)
    missing.clear()  # "installed"
subprocess.run = run
for _ in range(2):  # idempotent: a second run does nothing
    exec(compile({source!r}, "setup", "exec"), {{}})
open({str(log)!r}, "w").write(repr(calls))
'''
    for missing, expected in ([], []), (["torch"], ["torch==2.13.0"]), (
            ["dlcourse"], [wheel_url(ROOT)]):
        proc = subprocess.run([sys.executable, "-c", fake, *missing], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "" and proc.stderr == ""
        calls = eval(log.read_text())  # noqa: S307 -- our own repr of a list of lists
        if not expected:
            assert calls == []
            continue
        (cmd,) = calls
        assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and cmd[-len(expected):] == expected
        assert "https://download.pytorch.org/whl/cpu" in cmd  # the CPU build of torch


def test_tool_reports_a_bad_root_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(TOOL), "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("setup_cells: error: no notebooks")
    assert "Traceback" not in proc.stderr
