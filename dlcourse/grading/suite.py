"""An exercise's hidden test suite, run with pytest in the grader's worker process.

:func:`collect_tests` lists them with their points before any notebook runs;
:func:`run_hidden_tests` runs them against one submission, reporting each
finished test as an event. pytest runs with assertion rewriting off (a student
reads exactly the assertion message, never the test's code) and without
third-party plugins; :class:`GradingPlugin` provides the ``submission`` and
``notebook`` fixtures and turns each outcome into a ``results.json`` entry
(:mod:`dlcourse.grading.results`).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dlcourse.grading.bounds import MAX_FEEDBACK, clip
from dlcourse.grading.errors import GraderError, SubmissionError
from dlcourse.grading.exercise import Exercise
from dlcourse.grading.results import finished, test_entry

#: ``emit(kind, **fields)``: sends one event to the batch.
Emit = Callable[..., None]


def ignore_events(kind: str, **fields) -> None:
    """An ``emit`` that sends nothing."""


def _title(item) -> str:
    func = getattr(item, "function", None)
    doc = inspect.getdoc(func) if func is not None else None
    title = doc.strip().splitlines()[0] if doc else item.name
    callspec = getattr(item, "callspec", None)
    if callspec is not None and doc:
        title += f" [{callspec.id}]"
    return title


def _feedback(exc: BaseException) -> str:
    """What the student reads about a failed test (never the test's code)."""
    if isinstance(exc, AssertionError):
        text = str(exc).strip() or "this test failed"
    elif isinstance(exc, SubmissionError):
        text = str(exc)
    elif type(exc).__name__ in ("Skipped", "XFailed"):
        text = f"skipped: {getattr(exc, 'msg', '') or exc}"
    else:
        text = f"the test could not check your answer: {type(exc).__name__}: {exc}"
    return clip(text, MAX_FEEDBACK)


def test_record(item, number: int) -> dict:
    """A test's entry in ``results.json`` before it ran (no points earned yet)."""
    func = getattr(item, "function", None)
    return test_entry(_title(item), number, getattr(func, "__dlcourse_points__", 1.0),
                      getattr(func, "__dlcourse_visibility__", "visible"), item.nodeid)


class GradingPlugin:
    """Provides the fixtures, lists the tests collected and records each test's outcome."""

    def __init__(self, submission, notebook, emit: Emit):
        self._submission = submission
        self._notebook = notebook
        self._emit = emit
        self.tests: list[dict] = []
        self.collected: dict[str, dict] = {}
        self.collect_errors: list[str] = []
        self._failed: dict[str, str] = {}

    @pytest.fixture(scope="session")
    def submission(self):
        """The proxy to the student's kernel."""
        return self._submission

    @pytest.fixture(scope="session")
    def notebook(self):
        """The submitted notebook (``nbformat.NotebookNode``, or None if unreadable)."""
        return self._notebook

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")

    def pytest_collection_finish(self, session):
        self.collected = {item.nodeid: test_record(item, number)
                          for number, item in enumerate(session.items, 1)}

    def pytest_runtest_makereport(self, item, call):
        if call.excinfo is not None and item.nodeid not in self._failed:
            self._failed[item.nodeid] = _feedback(call.excinfo.value)

    def pytest_runtest_teardown(self, item):
        entry = (self.collected.get(item.nodeid)
                 or test_record(item, len(self.collected) + 1))
        record = finished(entry, self._failed.get(item.nodeid))
        self.tests.append(record)
        self._emit("test", test=record)

    def problems(self, code: int) -> list[str]:
        """Why the hidden tests could not be run (given pytest's exit ``code``); [] if
        nothing stopped them."""
        if not self.collect_errors and code in (pytest.ExitCode.INTERNAL_ERROR,
                                                pytest.ExitCode.USAGE_ERROR):
            return [f"pytest exit code {code}"]
        return list(self.collect_errors)


#: pytest's plugins hidden tests never need; off, they are not imported, and the
#: unraisable/thread-exception plugins' garbage collections at the end of every run go too.
UNUSED_PLUGINS = tuple(arg for name in (
    "unraisableexception", "threadexception", "junitxml", "doctest", "pastebin", "debugging",
    "unittest", "legacypath", "faulthandler") for arg in ("-p", f"no:{name}"))


def _pytest(exercise: Exercise, plugin: GradingPlugin, *extra: str) -> int:
    """Run pytest on the exercise's hidden tests with ``plugin``; return its exit code."""
    with tempfile.TemporaryDirectory(prefix="dlcourse-pytest-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\naddopts =\n")
        args = [str(exercise.hidden_dir), "-c", str(ini), "--rootdir", str(exercise.hidden_dir),
                "--confcutdir", str(exercise.hidden_dir), "-p", "no:cacheprovider",
                "--assert=plain", "-q", "--no-header", "-p", "no:randomly",
                "--import-mode=importlib", "-W", "ignore::DeprecationWarning",
                *UNUSED_PLUGINS, *extra]
        with contextlib.redirect_stdout(sys.stderr):
            return pytest.main(args, plugins=[plugin])


def collect_tests(exercise: Exercise) -> tuple[list[dict], list[str]]:
    """The exercise's hidden tests with their points, before any submission runs.

    Returns:
        ``(tests, errors)``: one ``results.json`` test entry per collected test
        (score 0, status ``"not run"``) and the collection errors (a file that
        does not import, ...); the tests of a file that failed are unknown.
    """
    plugin = GradingPlugin(None, None, ignore_events)
    problems = plugin.problems(_pytest(exercise, plugin, "--collect-only"))
    return list(plugin.collected.values()), problems


def run_hidden_tests(exercise: Exercise, submission, notebook,
                     emit: Emit) -> tuple[list[dict], list[dict]]:
    """Run the exercise's hidden tests in this process against ``submission``.

    Returns:
        ``(tests, collected)``: the entries of the tests that ran, and of every
        test collected.
    """
    plugin = GradingPlugin(submission, notebook, emit)
    problems = plugin.problems(_pytest(exercise, plugin))
    if problems:
        raise GraderError("the hidden tests could not be collected: " + "; ".join(problems))
    if not plugin.tests:
        raise GraderError(f"no hidden tests found in {exercise.hidden_dir}")
    return plugin.tests, list(plugin.collected.values())
