"""The exercises grade as they should through the real ``dlcourse grade``.

Each exercise is graded once, in one ``dlcourse grade --jobs 2`` batch that holds
its solution, its untouched student notebook, the solution with ``import numpy``
instead of ``import numpy as np`` (a correct notebook: the hidden tests must not
depend on the notebook's own names), and the exercise's ``GRADED_MUTANTS``
(``tests/mutants/exNN.py``: faults only the real sandboxed kernel shows, e.g.
delegation through the grader's blocked stand-ins). The bulk of the mutation
suite runs in-process in ``tests/test_mutants.py``. Every test below reads the
``results.json`` files of those batches.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from mutants import harness

from dlcourse.grading.assign import exercise_names
from dlcourse.grading.frameworks import exercise_frameworks

ROOT = Path(__file__).resolve().parent.parent
# Every solutions/NAME.ipynb is an exercise (`dlcourse new-exercise` adds them); what its
# grading needs is declared in tests/hidden/NAME/grading.json ("requires").
EXERCISES = exercise_names(ROOT / "solutions")
NEEDS_TORCH = {name for name in EXERCISES if "torch" in exercise_frameworks(ROOT, name)}
SUITES = {name: f"ex{name[:2]}" for name in EXERCISES}

pytestmark = pytest.mark.slow


def exercise_param(name: str):
    marks = [pytest.mark.torch] if name in NEEDS_TORCH else []
    return pytest.param(name, marks=marks, id=name)


def graded_mutants(name: str) -> list:
    try:
        module = importlib.import_module(f"mutants.{SUITES[name]}")
    except ModuleNotFoundError:
        return []
    return list(getattr(module, "GRADED_MUTANTS", []))


def graded_mutant_params():
    for name in EXERCISES:
        for mutant in graded_mutants(name):
            yield pytest.param(name, mutant, id=f"{name}-{mutant.name}",
                               marks=exercise_param(name).marks)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade each exercise's batch once (lazily); return {exercise: {student: results}}."""
    cache: dict[str, dict[str, dict]] = {}

    def grade(name: str) -> dict[str, dict]:
        if name in cache:
            return cache[name]
        batch = tmp_path_factory.mktemp(f"submissions_{name}")
        solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        nbformat.write(solution, batch / "solution.ipynb")
        (batch / "blank.ipynb").write_bytes((ROOT / "exercises" / f"{name}.ipynb").read_bytes())
        nbformat.write(harness.without_numpy_alias(name), batch / "no_numpy_alias.ipynb")
        for mutant in graded_mutants(name):
            nbformat.write(harness.mutated_notebook(name, mutant), batch / f"{mutant.name}.ipynb")
        out = tmp_path_factory.mktemp(f"results_{name}")
        proc = subprocess.run(
            [sys.executable, "-m", "dlcourse", "grade", str(batch), "--exercise", name,
             "--out", str(out), "--jobs", "2", "--no-progress"],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
        )
        assert proc.returncode == 0, f"dlcourse grade failed:\n{proc.stdout}\n{proc.stderr}"
        results = {p.parent.name: json.loads(p.read_text())
                   for p in out.glob("*/results.json")}
        cache[name] = results
        return results

    return grade


def failed_tests(result: dict) -> dict[str, str]:
    """{test function name: feedback} of the tests that did not earn their points."""
    return {t["nodeid"].split("::")[-1]: t["output"]
            for t in result["tests"] if t["score"] < t["max_score"]}


@pytest.mark.parametrize("name", [exercise_param(n) for n in EXERCISES])
def test_solution_scores_full_marks(graded, name):
    result = graded(name)["solution"]
    assert result["max_score"] > 0
    assert result["score"] == result["max_score"], failed_tests(result)


@pytest.mark.parametrize("name", [exercise_param(n) for n in EXERCISES])
def test_untouched_exercise_scores_zero(graded, name):
    result = graded(name)["blank"]
    assert result["score"] == 0, {t["name"]: t["score"] for t in result["tests"] if t["score"]}
    assert all(t["output"] for t in result["tests"]), "every failed test must say why"


@pytest.mark.parametrize("name", [exercise_param(n) for n in EXERCISES])
def test_points_match_the_notebook_headings(graded, name):
    """The points announced in '## Qk — ... (N points)' are the points of the Qk tests."""
    solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    announced = {}
    for cell in solution.cells:
        if cell.cell_type == "markdown":
            for q, pts in re.findall(r"^## (Q\d+) .*\((\d+) points?\)", cell.source, flags=re.M):
                announced[q] = float(pts)
    assert announced, f"{name}: no '## Qk ... (N points)' headings"
    earned: dict[str, float] = {}
    for test in graded(name)["solution"]["tests"]:
        question = re.match(r"(Q\d+)", test["name"])
        assert question, f"test title {test['name']!r} must start with its question, e.g. 'Q1: ...'"
        earned[question.group(1)] = earned.get(question.group(1), 0.0) + test["max_score"]
    assert earned == announced


@pytest.mark.parametrize("name", [exercise_param(n) for n in EXERCISES])
def test_notebook_without_numpy_alias_scores_full_marks(graded, name):
    """The hidden tests never evaluate the notebook's own names (``np``) except graded ones."""
    result = graded(name)["no_numpy_alias"]
    assert result["score"] == result["max_score"], failed_tests(result)


@pytest.mark.parametrize(("name", "mutant"), list(graded_mutant_params()))
def test_graded_mutant_loses_points(graded, name, mutant):
    result = graded(name)[mutant.name]
    failed = failed_tests(result)
    assert failed and result["score"] < result["max_score"], f"{mutant.name} earned every point"
    earned = [t["name"] for t in result["tests"]
              if t["score"] > 0 and mutant.must_score_zero(t["nodeid"].split("::")[-1], t["name"])]
    assert not earned, f"{mutant.name} ({mutant.why}) still earns {earned}"
    for test, feedback in failed.items():
        assert len(feedback) > 20 and "Traceback" not in feedback, (test, feedback)


def test_student_notebooks_are_up_to_date():
    proc = subprocess.run([sys.executable, "-m", "dlcourse", "assign", "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", EXERCISES)
def test_every_check_call_has_public_checks(name):
    """Each check("qN") of the notebook has checks, and each exercise has hidden tests."""
    import importlib

    checks = importlib.import_module(f"dlcourse.grading.public_checks.{name}").CHECKS
    solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)
    called = {q for cell in solution.cells if cell.cell_type == "code"
              for q in re.findall(r'check\("(q\d+)"\)', cell.source)}
    assert called and called == set(checks), (sorted(called), sorted(checks))
    assert all(checks[q] for q in checks)
    assert list((ROOT / "tests" / "hidden" / name).glob("test_*.py"))
