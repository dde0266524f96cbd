"""Grade one notebook: run it in a sandboxed kernel, then run the hidden tests.

Run as ``python -m dlcourse.grading.runner -`` (the job as JSON on stdin): the
worker process that ``dlcourse grade`` starts for each submission. It streams
JSON lines on its standard output (one per finished test, then the complete
result), so that a crash of the worker still leaves partial results to write.
``--collect`` only lists the hidden tests (``dlcourse grade`` does that first).
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import hashlib
import importlib.metadata
import inspect
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlcourse.grading.bounds import MAX_FEEDBACK, MAX_NAME, MAX_NOTE, clip
from dlcourse.grading.errors import GraderError, SubmissionError

HERE = Path(__file__).resolve().parent
DEFAULTS = {"cell_timeout": 60.0, "notebook_timeout": 600.0, "memory_mb": 4096}
#: Memory limit of a grader worker (``RLIMIT_DATA``, MiB): what it keeps from a kernel is
#: bounded (one reply of at most 64 MiB), so this is a backstop, not a budget.
WORKER_MEMORY_MB = 4096
_VERSION_PACKAGES = ("dlcourse", "numpy", "torch", "tensorflow-cpu", "tensorflow", "keras",
                     "scikit-learn", "pytest", "jupyter_client", "ipykernel", "nbformat")


# -- the exercise ---------------------------------------------------------------------
@dataclass
class Exercise:
    """An exercise's grading material.

    Attributes:
        name: The exercise name (notebook stem).
        hidden_dir: ``ROOT/tests/hidden/NAME``.
        student_notebook: ``ROOT/exercises/NAME.ipynb`` (may not exist).
        config: The contents of ``grading.json`` (may be empty).
    """

    name: str
    hidden_dir: Path
    student_notebook: Path
    config: dict

    @classmethod
    def find(cls, name: str, root: Path | None = None) -> Exercise:
        """Locate the exercise under ``root`` or, by default, the current folder's ancestors."""
        candidates = [Path(root)] if root else [Path.cwd(), *Path.cwd().parents,
                                                 HERE.parent.parent]
        for base in candidates:
            hidden = base / "tests" / "hidden" / name
            if hidden.is_dir():
                config_file = hidden / "grading.json"
                config = json.loads(config_file.read_text()) if config_file.is_file() else {}
                return cls(name, hidden.resolve(),
                           (base / "exercises" / f"{name}.ipynb").absolute(), config)
        raise GraderError(f"no hidden tests for exercise {name!r} (looked for tests/hidden/{name} "
                          f"under {', '.join(str(c) for c in candidates[:3])})")

    def bundle_files(self) -> list[str]:
        """The bundle's files: paths relative to ``hidden_dir``, in byte order.

        Every file below ``hidden_dir`` (symbolic links followed), except
        ``__pycache__`` folders and ``.pyc`` files.
        """
        names = []
        for folder, dirs, files in os.walk(self.hidden_dir, followlinks=True):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                path = Path(folder) / name
                if name.endswith(".pyc") or not path.is_file():
                    continue
                rel = path.relative_to(self.hidden_dir).as_posix()
                if "\n" in rel or "\\" in rel:
                    raise GraderError(f"hidden test file name {rel!r} holds a newline or a "
                                      "backslash: rename it")
                names.append(rel)
        return sorted(names, key=lambda name: name.encode())

    def bundle_sha256(self) -> str:
        """SHA-256 of the hidden-test bundle, as ``sha256sum`` would compute it.

        It is the SHA-256 of the text ``sha256sum`` prints for the bundle's
        files (:meth:`bundle_files`), one line ``HEX  PATH`` each, so anyone can
        recompute it without dlcourse::

            cd tests/hidden/NAME && find -L . -type f -not -path '*/__pycache__/*' \\
                -not -name '*.pyc' -printf '%P\\n' | LC_ALL=C sort \\
                | xargs -d '\\n' sha256sum | sha256sum
        """
        listing = "".join(
            f"{hashlib.sha256((self.hidden_dir / rel).read_bytes()).hexdigest()}  {rel}\n"
            for rel in self.bundle_files())
        return hashlib.sha256(listing.encode()).hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a grade depends on."""
    versions = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def bootstrap_code(config: dict) -> str:
    """The code run in the kernel before the notebook (see ``kernel_side``)."""
    codec_src = (HERE / "codec.py").read_text()
    side_src = (HERE / "kernel_side.py").read_text()
    return (
        "def __dlcourse_bootstrap__():\n"
        "    namespace = {'__name__': '__dlcourse_grader__'}\n"
        f"    exec(compile({codec_src!r}, '<dlcourse-grader-codec>', 'exec'), namespace)\n"
        f"    exec(compile({side_src!r}, '<dlcourse-grader>', 'exec'), namespace)\n"
        f"    namespace['setup'](__import__('json').loads({json.dumps(config)!r}))\n"
        "__dlcourse_bootstrap__()\n"
        "del __dlcourse_bootstrap__\n"
    )


# -- reading the submission ----------------------------------------------------------
def read_notebook(data: bytes):
    """Parse a submission; return ``(notebook, None)`` or ``(None, reason)``."""
    from dlcourse.grading._nbformat import nbformat

    nbformat = nbformat()

    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"the file is not a valid notebook (invalid JSON: {exc})"
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return None, "the file is not a Jupyter notebook (no cells)"
    version = raw.get("nbformat")
    if version != 4:
        return None, (f"notebook format version {version!r} is not supported: open it in "
                      "Jupyter and save it again (format 4)")
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        for cell in nb.cells:
            if not isinstance(cell.get("source"), str):
                raise ValueError("a cell has no text")
    except Exception as exc:
        return None, f"the notebook could not be read ({type(exc).__name__}: {exc})"
    return nb, None


def missing_answer_cells(nb, exercise: Exercise) -> list[str]:
    """Answer cells of the exercise notebook that the submission lacks.

    Matched by cell id. A notebook saved in a format without cell ids (nbformat
    4.0-4.4, older Jupyter and other editors) is matched by its cells tagged
    ``answer`` instead: it lacks the last ones when it has fewer; without any
    such tag nothing can be told, and nothing is reported.
    """
    if not exercise.student_notebook.is_file():
        return []
    import nbformat

    from dlcourse.grading.assign import answer_cell_ids

    expected = answer_cell_ids(nbformat.read(exercise.student_notebook, as_version=4))
    if any(c.get("id") is None for c in nb.cells):
        tagged = sum("answer" in (c.get("metadata", {}).get("tags") or []) for c in nb.cells)
        return expected[tagged:] if tagged else []
    present = {c.get("id") for c in nb.cells}
    return [cell_id for cell_id in expected if cell_id not in present]


def reference_imports(nb, blocked: list[str]) -> list[str]:
    """Blocked references the notebook's code imports or names (static, best effort)."""
    names = {ref.partition(":")[2] for ref in blocked}
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines()
                           if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlcourse"):
                found.update(a.name for a in node.names if a.name in names)
            elif isinstance(node, ast.Attribute) and node.attr in names:
                base = node.value
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name) and base.id == "dlcourse":
                    found.add(node.attr)
    return sorted(found)


# -- pytest plugin --------------------------------------------------------------------
def _title(item) -> str:
    func = getattr(item, "function", None)
    doc = inspect.getdoc(func) if func is not None else None
    title = doc.strip().splitlines()[0] if doc else item.name
    callspec = getattr(item, "callspec", None)
    if callspec is not None and doc:
        title += f" [{callspec.id}]"
    return title


def _feedback(excinfo) -> str:
    return clip(_feedback_text(excinfo.value), MAX_FEEDBACK)


def _feedback_text(exc) -> str:
    if isinstance(exc, AssertionError):
        return str(exc).strip() or "this test failed"
    if isinstance(exc, SubmissionError):
        return str(exc)
    name = type(exc).__name__
    if name in ("Skipped", "XFailed"):
        return f"skipped: {getattr(exc, 'msg', '') or exc}"
    return f"the test could not check your answer: {name}: {exc}"


def test_record(item, number: int) -> dict:
    """A test's entry in ``results.json`` before it ran (no points earned yet)."""
    func = getattr(item, "function", None)
    return {
        "name": _title(item),
        "number": str(number),
        "score": 0.0,
        "max_score": float(getattr(func, "__dlcourse_points__", 1.0)),
        "status": "not run",
        "output": "",
        "visibility": getattr(func, "__dlcourse_visibility__", "visible"),
        "nodeid": item.nodeid,
    }


class GradingPlugin:
    """Provides the fixtures, lists the tests collected and records each test's outcome."""

    def __init__(self, submission, notebook, emit):
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
            self._failed[item.nodeid] = _feedback(call.excinfo)

    def pytest_runtest_teardown(self, item):
        record = dict(self.collected.get(item.nodeid)
                      or test_record(item, len(self.collected) + 1))
        message = self._failed.get(item.nodeid)
        record.update(score=0.0 if message is not None else record["max_score"],
                      status="failed" if message is not None else "passed",
                      output=message or "")
        self.tests.append(record)
        self._emit({"event": "test", "test": record})


def _pytest(exercise: Exercise, plugin: GradingPlugin, *extra: str) -> int:
    """Run pytest on the exercise's hidden tests with ``plugin``; return its exit code."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dlcourse-pytest-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\naddopts =\n")
        args = [str(exercise.hidden_dir), "-c", str(ini), "--rootdir", str(exercise.hidden_dir),
                "--confcutdir", str(exercise.hidden_dir), "-p", "no:cacheprovider",
                "--assert=plain", "-q", "--no-header", "-p", "no:randomly",
                "--import-mode=importlib", "-W", "ignore::DeprecationWarning", *extra]
        with contextlib.redirect_stdout(sys.stderr):
            return pytest.main(args, plugins=[plugin])


def collect_tests(exercise: Exercise) -> tuple[list[dict], list[str]]:
    """The exercise's hidden tests with their points, before any submission runs.

    Returns:
        ``(tests, errors)``: one ``results.json`` test entry per collected test
        (score 0, status ``"not run"``) and the collection errors (a file that
        does not import, ...); the tests of a file that failed are unknown.
    """
    plugin = GradingPlugin(None, None, lambda event: None)
    code = _pytest(exercise, plugin, "--collect-only")
    errors = list(plugin.collect_errors)
    if not errors and code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        errors.append(f"pytest exit code {code}")
    return list(plugin.collected.values()), errors


def complete_tests(tests: list[dict], all_tests: list[dict] | None, reason: str) -> list[dict]:
    """``tests`` plus, at 0 points with ``reason``, every test of ``all_tests`` not in it.

    The result keeps the order of ``all_tests`` (the collection order); tests
    that are only in ``tests`` come last.
    """
    done = {t["nodeid"]: t for t in tests}
    out = [done.pop(t["nodeid"], None)
           or dict(t, score=0.0, status="failed", output=reason) for t in all_tests or []]
    return out + [t for t in tests if t["nodeid"] in done]


def run_hidden_tests(exercise: Exercise, submission, notebook, emit) -> list[dict]:
    """Run the exercise's hidden tests in this process against ``submission``."""
    plugin = GradingPlugin(submission, notebook, emit)
    code = _pytest(exercise, plugin)
    if plugin.collect_errors or code in (pytest.ExitCode.INTERNAL_ERROR,
                                         pytest.ExitCode.USAGE_ERROR):
        raise GraderError("the hidden tests could not be collected: "
                          + "; ".join(plugin.collect_errors or [f"pytest exit code {code}"]))
    if not plugin.tests:
        raise GraderError(f"no hidden tests found in {exercise.hidden_dir}")
    return complete_tests(plugin.tests, list(plugin.collected.values()),
                          "this test did not run (the test run stopped before it)")


# -- one submission -------------------------------------------------------------------
def grade_notebook(path: Path, exercise: Exercise, limits, *, unprivileged: bool | None = None,
                   emit=lambda event: None, hidden_sha256: str | None = None,
                   all_tests: list[dict] | None = None, isolation=None) -> dict:
    """Grade one notebook; return its Gradescope ``results.json`` as a dict.

    Args:
        unprivileged: Run the kernel as a leased sandbox uid (default: as
            ``isolation`` says).
        isolation: The batch's :class:`~dlcourse.grading.sandbox.Isolation`
            (default: the builtin sandbox, Landlock only).
        hidden_sha256: The bundle hash the batch started with: checked again
            before the tests are imported and after they ran (a change is a
            :class:`GraderError`); recorded in the results.
        all_tests: The tests collected before grading (:func:`collect_tests`):
            any that did not report is listed at 0 points with a reason.
    """
    from dlcourse.grading.kernel import SandboxKernel, process_start_time
    from dlcourse.grading.proxy import Submission
    from dlcourse.grading.sandbox import Isolation, promises

    if not isinstance(isolation, Isolation):
        isolation = Isolation.from_json(isolation)
    if unprivileged is None:
        unprivileged = isolation.unprivileged
    start = time.monotonic()
    data = Path(path).read_bytes()
    notes: list[str] = []
    nb, reason = read_notebook(data)
    kernel = None
    status = "graded"
    if nb is not None:
        for cell_id in missing_answer_cells(nb, exercise):
            notes.append(f"answer cell {cell_id!r} is missing from the notebook (deleted?); "
                         "its questions are graded on what the notebook defines")
        for name in reference_imports(nb, exercise.config.get("blocked", [])):
            notes.append(f"the notebook uses dlcourse's reference {name}: calling it earns "
                         "no credit")
        kernel = SandboxKernel(Path(path), limits, unprivileged=unprivileged,
                               bwrap=isolation.bwrap if isolation.tool == "bwrap" else None,
                               dlcourse_dir=isolation.dlcourse_dir)
        config = {"seed": limits.seed, "blocked": exercise.config.get("blocked", []),
                  "dlcourse_dir": isolation.dlcourse_dir}
        kernel.start(bootstrap_code(config), on_started=lambda pid, folders: emit(
            {"event": "kernel", "pid": pid, "start": process_start_time(pid),
             "folders": folders}))
        reason = _run_cells(kernel, nb, limits, notes)
    else:
        status = "unreadable"
    bundle = hidden_sha256 or exercise.bundle_sha256()
    try:
        # Checked again here, after the notebook ran and just before the tests are imported,
        # and once more after they ran: the grade is against exactly this bundle.
        _check_bundle(exercise, bundle)
        submission = Submission(kernel, reason=reason, timeout=limits.cell_timeout)
        tests = run_hidden_tests(exercise, submission, nb, emit)
        _check_bundle(exercise, bundle)
        tests = complete_tests(tests, all_tests, "this test did not run")
    finally:
        confined = None
        if kernel is not None:
            confined = kernel.confined()
            if kernel.dead_reason is not None and status == "graded":
                status = "kernel died"
                notes.append(f"stopped early: {kernel.dead_reason}")
            kernel.close()
    score = sum(t["score"] for t in tests)
    max_score = sum(t["max_score"] for t in tests)
    if reason and nb is None:
        notes.insert(0, reason)
    notes = [clip(note, MAX_NOTE) for note in notes]
    summary = [f"Score: {score:g} / {max_score:g}", *notes]
    return {
        "score": score,
        "max_score": max_score,
        "output": "\n".join(summary),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "execution_time": round(time.monotonic() - start, 3),
        "tests": tests,
        "extra_data": {
            "exercise": exercise.name,
            "status": status,
            "notes": notes,
            "notebook": Path(path).name,
            "notebook_sha256": hashlib.sha256(data).hexdigest(),
            "hidden_tests_sha256": bundle,
            "versions": package_versions(),
            "worker_max_rss_mb": _max_rss_mb(),
            "sandbox": {"tool": isolation.tool, "unprivileged_user": unprivileged,
                        "landlock": confined, "landlock_abi": isolation.landlock_abi,
                        "not_held": [key for key, _, why in promises(isolation) if why],
                        "memory_mb": limits.memory_mb,
                        "cell_timeout_s": limits.cell_timeout,
                        "notebook_timeout_s": limits.notebook_timeout, "seed": limits.seed},
        },
    }


def _max_rss_mb() -> float:
    """The most memory this process has held so far (MiB): what the kernel made it keep."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _check_bundle(exercise: Exercise, expected: str) -> None:
    if exercise.bundle_sha256() != expected:
        raise GraderError("the hidden tests changed during grading (their SHA-256 is not the "
                          "one the batch started with): regrade")


def _run_cells(kernel, nb, limits, notes: list[str]) -> str | None:
    """Execute the code cells in order, going on after errors; return a death reason."""
    from dlcourse.grading.kernel import CellTimeout, KernelDied

    errors = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        try:
            result = kernel.execute(cell.source, timeout=limits.cell_timeout)
        except CellTimeout:
            notes.append(f"cell {index} ran past its time limit of {limits.cell_timeout:g} s "
                         "and was interrupted")
            if kernel.dead_reason is not None:
                return f"{kernel.dead_reason} (in cell {index})"
            continue
        except KernelDied as exc:
            notes.append(f"the kernel died in cell {index}: {exc}")
            return f"{exc} (in cell {index})"
        if result.status == "error" and result.ename != "NotImplementedError":
            errors += 1
            if errors <= 5:
                notes.append(f"cell {index} raised {clip(result.ename, MAX_NAME)}: "
                             f"{clip(result.evalue or '', 300)}")
    return None


# -- the worker process ---------------------------------------------------------------
def _not_dumpable() -> None:
    """Keep same-user processes (a submission run without a user switch) out of
    this process's memory and file descriptors (/proc, ptrace)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def worker_main(argv: list[str]) -> int:
    """Entry point of ``python -m dlcourse.grading.runner [--collect] JOB_JSON|-``.

    With ``--collect`` it only collects the hidden tests and prints one JSON
    line ``{"tests": [...], "errors": [...]}`` (see :func:`collect_tests`).
    """
    import resource

    from dlcourse.grading.kernel import Limits

    _not_dumpable()
    sys.dont_write_bytecode = True
    # Hidden tests need no third-party pytest plugin; loading them all costs ~1 s.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    collect = argv[:1] == ["--collect"]
    # The job comes on stdin ("-"; it holds the list of tests, which may be long) or as argv.
    job = json.loads(sys.stdin.read() if argv[-1] == "-" else argv[-1])
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to the log, not the result stream

    def emit(event):
        events.write(json.dumps(event) + "\n")
        events.flush()

    exercise = Exercise(job["exercise"], Path(job["hidden_dir"]),
                        Path(job["student_notebook"]), job["config"])
    memory = job.get("worker_memory_mb")
    if memory:
        # Soft limit only: the kernel it starts sets its own (maybe higher) limit.
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        soft = int(memory) * 2**20
        if hard == resource.RLIM_INFINITY or soft <= hard:
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    try:
        isolation = job.get("isolation") or {}
        expected = isolation.get("dlcourse_dir")
        here = str(Path(__file__).resolve().parent.parent)
        if expected and os.path.realpath(expected) != here:
            raise GraderError(f"the grader's worker imported dlcourse from {here}, not from "
                              f"{expected} (the package the sandbox was built for)")
        _check_bundle(exercise, job["hidden_sha256"])
        if collect:
            tests, errors = collect_tests(exercise)
            emit({"event": "collected", "tests": tests, "errors": errors})
            return 0
        limits = Limits(**job["limits"])
        result = grade_notebook(Path(job["notebook"]), exercise, limits,
                                unprivileged=job["unprivileged"], emit=emit,
                                hidden_sha256=job["hidden_sha256"],
                                all_tests=job.get("all_tests"), isolation=isolation)
    except GraderError as exc:
        emit({"event": "grader_error", "message": str(exc)})
        return 2
    emit({"event": "done", "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
