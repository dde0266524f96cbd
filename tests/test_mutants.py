"""Mutation suites: every mutant of every solution loses points in the hidden tests.

The mutants (``tests/mutants/exNN.py``, at least 20 per exercise) are written
from each exercise's statement. Here they are graded in-process
(:mod:`tests.mutants.harness`: the notebook's cells run in this process and
the real hidden tests talk to them through the same codec round trip as the
grader), which keeps the whole suite to about a minute. ``test_exercises.py``
grades each exercise's ``GRADED_MUTANTS`` through the real ``dlcourse grade``.

Commands::

    .venv/bin/python -m pytest tests/test_mutants.py -q -p no:cacheprovider
    .venv/bin/python -m pytest tests/test_mutants.py -q -k 01_dropout
"""

from __future__ import annotations

import importlib

import pytest
from mutants import harness

from dlcourse.grading.public import _load_checks, run_checks

SUITES = {
    "01_dropout_from_scratch": "ex01",
    "02_dropout_rate": "ex02",
    "03_spatial_dropout": "ex03",
    "04_mc_dropout": "ex04",
    "05_regularisers": "ex05",
}
NEEDS_TORCH = {"03_spatial_dropout", "04_mc_dropout"}
MIN_MUTANTS = 20

pytestmark = pytest.mark.slow


def suite(exercise: str):
    return importlib.import_module(f"mutants.{SUITES[exercise]}")


def marks(exercise: str):
    return [pytest.mark.torch] if exercise in NEEDS_TORCH else []


def mutant_params():
    for exercise in SUITES:
        for mutant in suite(exercise).MUTANTS:
            yield pytest.param(exercise, mutant, id=f"{exercise}-{mutant.name}",
                               marks=marks(exercise))


def exercise_params():
    return [pytest.param(e, id=e, marks=marks(e)) for e in SUITES]


@pytest.fixture(scope="module")
def prepared():
    """{exercise: (solution Notebook, hidden test module)}, each built once, lazily."""
    cache: dict[str, tuple[harness.Notebook, object]] = {}

    def get(exercise: str):
        if exercise not in cache:
            if exercise in NEEDS_TORCH:
                pytest.importorskip("torch")
            cache[exercise] = (harness.Notebook(exercise), harness.hidden_module(exercise))
        return cache[exercise]

    return get


@pytest.mark.parametrize("exercise", exercise_params())
def test_suite_has_enough_distinct_mutants(exercise):
    mutants = suite(exercise).MUTANTS + getattr(suite(exercise), "GRADED_MUTANTS", [])
    names = [m.name for m in mutants]
    assert len(suite(exercise).MUTANTS) >= MIN_MUTANTS, f"{exercise}: {len(names)} mutants"
    assert len(set(names)) == len(names), "mutant names must be unique"
    edits = [m.edits for m in mutants]
    assert len(set(edits)) == len(edits), "two mutants make the same edits"


@pytest.mark.parametrize("exercise", exercise_params())
def test_solution_earns_every_point_in_process(prepared, exercise):
    notebook, hidden = prepared(exercise)
    report = harness.grade(hidden, notebook.namespace)
    assert not report.lost, [(o.title, o.feedback) for o in report.lost]
    assert len(report.outcomes) == len(harness.tests_of(hidden))


@pytest.mark.parametrize("exercise", exercise_params())
def test_solution_passes_every_public_check(prepared, exercise):
    notebook, _ = prepared(exercise)
    for question in _load_checks(exercise):
        failed = [(o.title, o.message) for o in run_checks(question, notebook.namespace, exercise)
                  if not o.passed]
        assert not failed, (question, failed)


@pytest.mark.parametrize(("exercise", "mutant"), list(mutant_params()))
def test_mutant_loses_points(prepared, exercise, mutant):
    notebook, hidden = prepared(exercise)
    namespace = notebook.mutate(mutant)
    report = harness.grade(hidden, namespace, stop_at_first_loss=not mutant.zero,
                           only=mutant.questions)
    assert report.lost, f"{mutant.name} ({mutant.why}) earned every point"
    earned = [o.title for o in report.outcomes if o.score > 0 and mutant.must_score_zero(o.name, o.title)]
    assert not earned, f"{mutant.name} ({mutant.why}) still earns points for {earned}"
    if mutant.zero:
        assert any(mutant.must_score_zero(o.name, o.title) for o in report.outcomes), mutant.zero
    for outcome in report.lost:
        assert len(outcome.feedback) > 20 and "Traceback" not in outcome.feedback, outcome


@pytest.mark.parametrize(("exercise", "mutant"),
                         [p for p in mutant_params() if not p.values[1].hidden_only])
def test_public_checks_notice_mutant(prepared, exercise, mutant):
    """The public checks cover the statement: they fail on every mutant not marked hidden_only."""
    notebook, _ = prepared(exercise)
    namespace = notebook.mutate(mutant)
    questions = [q.lower() for q in mutant.questions] or list(_load_checks(exercise))
    failed = []
    for question in questions:  # stop at the first question whose checks notice the fault
        failed = [o for o in run_checks(question, namespace, exercise) if not o.passed]
        if failed:
            break
    assert failed, f"{mutant.name} ({mutant.why}) passes every public check"
    for outcome in failed:
        assert "expected" in outcome.message or "stub" in outcome.message \
            or "raised" in outcome.message or "not defined" in outcome.message, outcome.message
