"""The exercises grade as they should: solutions full marks, blanks zero, mutants lose the named tests.

Each exercise is graded once, in one ``dlcourse grade --jobs 2`` batch that holds
its solution, its untouched student notebook and (for exercise 1) six mutants
of the solution, each with one classic dropout fault. Every test below reads
the ``results.json`` files of those batches.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = [
    "01_dropout_from_scratch",
    "02_dropout_rate",
    "03_spatial_dropout",
    "04_mc_dropout",
    "05_regularisers",
]
NEEDS_TORCH = {"03_spatial_dropout", "04_mc_dropout"}

# Exercise 1's mutants: (line of the solution, faulty replacement) and the
# hidden tests that name the fault, i.e. exactly the tests the mutant must fail.
MUTANTS = {
    "no_inverted_scaling": (
        ("    out = x * mask * scale\n", "    out = x * mask\n"),
        {"test_survivors_scaled_by_inverse_keep"},
    ),
    "drops_in_eval_mode": (
        ("    if not training or rate == 0.0:\n", "    if rate == 0.0:\n"),
        {"test_eval_mode_is_identity", "test_layer_train_and_eval_modes"},
    ),
    "backward_without_mask": (
        ('    dx = dout * np.asarray(cache["mask"], dtype=bool) * float(cache["scale"])\n',
         '    dx = dout * float(cache["scale"])\n'),
        {"test_backward_uses_forward_mask", "test_layer_backward_uses_last_mask"},
    ),
    "input_modified_in_place": (
        ("    out = x * mask * scale\n", "    out = np.multiply(x, mask * scale, out=x)\n"),
        {"test_input_not_modified"},
    ),
    "float64_output": (
        ("    out = x * mask * scale\n", "    out = x * mask.astype(np.float64) * scale\n"),
        {"test_float32_stays_float32"},
    ),
    "keep_and_drop_swapped": (
        ("    mask = rng.random(x.shape) < keep\n", "    mask = rng.random(x.shape) < rate\n"),
        {"test_rate_is_drop_probability"},
    ),
}

pytestmark = pytest.mark.slow


def exercise_param(name: str):
    marks = [pytest.mark.torch] if name in NEEDS_TORCH else []
    return pytest.param(name, marks=marks, id=name)


def mutate(source: nbformat.NotebookNode, old: str, new: str) -> nbformat.NotebookNode:
    """A copy of the solution with ``old`` replaced by ``new`` in exactly one code cell line."""
    nb = nbformat.reads(nbformat.writes(source), as_version=4)
    hits = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            hits += cell.source.count(old)
            cell.source = cell.source.replace(old, new)
    assert hits == 1, f"mutant line {old!r} found {hits} times in the solution (expected once)"
    return nb


#: Ways a student might reach dlcourse's reference dropout_forward (the blocked stand-in
#: must leave none open): a plain call, the original that functools.wraps would expose,
#: and the reference class's own forward pass (through a subclass, or its bases).
DELEGATIONS = {
    "calls_reference": "return reference(x, rate, training=training, rng=rng)",
    "calls_wrapped_reference": "return getattr(reference, '__wrapped__', reference)"
                               "(x, rate, training=training, rng=rng)",
    "calls_reference_class": "layer = [c for c in ReferenceDropout.__mro__ if c.__name__ == 'Dropout'][-1]"
                             "(rate, rng=rng)\n    layer.training = training\n"
                             "    return layer.forward(x), layer.cache",
}


def delegate_to_reference(source: nbformat.NotebookNode, body: str) -> nbformat.NotebookNode:
    """A copy of exercise 1's solution whose dropout_forward just calls dlcourse's reference."""
    nb = nbformat.reads(nbformat.writes(source), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "def dropout_forward" in c.source)
    head = cell.source.split("    # BEGIN SOLUTION")[0]
    cell.source = ("from dlcourse.scratch import Dropout as ReferenceDropout\n"
                   "from dlcourse.scratch import dropout_forward as reference\n" + head
                   + "    " + body + "\n")
    return nb


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
        if name == EXERCISES[0]:
            for mutant, ((old, new), _) in MUTANTS.items():
                nbformat.write(mutate(solution, old, new), batch / f"{mutant}.ipynb")
            for student, body in DELEGATIONS.items():
                nbformat.write(delegate_to_reference(solution, body), batch / f"{student}.ipynb")
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


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_mutant_loses_exactly_the_tests_naming_its_fault(graded, mutant):
    results = graded(EXERCISES[0])
    result, full = results[mutant], results["solution"]["max_score"]
    expected = MUTANTS[mutant][1]
    failed = failed_tests(result)
    assert set(failed) == expected, f"{mutant}: failed {sorted(failed)}, expected {sorted(expected)}"
    lost = sum(t["max_score"] for t in result["tests"] if t["nodeid"].split("::")[-1] in expected)
    assert result["score"] == full - lost
    for test, feedback in failed.items():
        assert len(feedback) > 40 and "Traceback" not in feedback, (test, feedback)


@pytest.mark.parametrize("student", list(DELEGATIONS))
def test_calling_the_reference_implementation_earns_nothing(graded, student):
    result = graded(EXERCISES[0])[student]
    assert result["score"] == 0
    assert all("reference implementation" in t["output"] for t in result["tests"])


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
