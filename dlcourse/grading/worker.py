"""Grade one notebook: run it in a sandboxed kernel, then run the hidden tests.

Run as ``python -I -m dlcourse.grading.worker -`` (a
:class:`~dlcourse.grading.results.Job` as JSON on stdin) it grades that one
notebook. It streams events, one JSON line each (:mod:`dlcourse.grading.results`),
on its standard output: the kernel it started, each finished test, then the
complete result; so a crash of the worker still leaves partial results to
write. With ``--collect`` it only lists the hidden tests (``dlcourse grade``
does that first). With ``--serve`` (what ``dlcourse grade`` starts, one per
``--jobs``) it imports everything once, then grades one notebook per request,
each in a process of its own forked from it (:func:`serve`).

In order, for one notebook: read it (:func:`read_notebook`), note what can be
seen without running it (missing answer cells, imports of blocked references),
start its kernel and run its code cells (:func:`run_cells`), run the hidden
tests with pytest in this process against a proxy to that kernel
(:mod:`dlcourse.grading.suite`), and build ``results.json``
(:func:`~dlcourse.grading.results.results_json`).
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import gc
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from dlcourse.grading.bounds import MAX_NAME, MAX_NOTE, clip
from dlcourse.grading.errors import GraderError
from dlcourse.grading.exercise import Exercise, answer_cell_ids
from dlcourse.grading.results import Job, event_line, results_json
from dlcourse.grading.sandbox import Isolation, Limits, promises
from dlcourse.grading.suite import Emit, collect_tests, ignore_events, run_hidden_tests

HERE = Path(__file__).resolve().parent


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
    from dlcourse.grading._nbformat import nbformat

    expected = answer_cell_ids(nbformat().read(exercise.student_notebook, as_version=4))
    if any(c.get("id") is None for c in nb.cells):
        tagged = sum("answer" in (c.get("metadata", {}).get("tags") or []) for c in nb.cells)
        return expected[tagged:] if tagged else []
    present = {c.get("id") for c in nb.cells}
    return [cell_id for cell_id in expected if cell_id not in present]


def reference_imports(nb, blocked: list[str]) -> list[str]:
    """Blocked references the notebook's code imports or names (static, best effort)."""
    names = {ref.partition(":")[2] for ref in blocked}
    found: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines()
                           if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        found.update(_named_references(tree, names))
    return sorted(found)


def _named_references(tree: ast.AST, names: set[str]) -> set[str]:
    """Which of ``names`` the code imports from dlcourse or reads as ``dlcourse....name``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlcourse"):
            found.update(a.name for a in node.names if a.name in names)
        elif isinstance(node, ast.Attribute) and node.attr in names:
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id == "dlcourse":
                found.add(node.attr)
    return found


def static_notes(nb, exercise: Exercise) -> list[str]:
    """What the notebook's source shows before it runs: missing answer cells, imports of
    the references the student must write."""
    notes = [f"answer cell {cell_id!r} is missing from the notebook (deleted?); its "
             "questions are graded on what the notebook defines"
             for cell_id in missing_answer_cells(nb, exercise)]
    notes += [f"the notebook uses dlcourse's reference {name}: calling it earns no credit"
              for name in reference_imports(nb, exercise.blocked)]
    return notes


# -- one submission -------------------------------------------------------------------
def grade_notebook(path: Path, exercise: Exercise, limits: Limits, *,
                   unprivileged: bool | None = None, emit: Emit = ignore_events,
                   hidden_sha256: str | None = None, all_tests: list[dict] | None = None,
                   isolation: Isolation | dict | None = None) -> dict:
    """Grade one notebook; return its Gradescope ``results.json`` as a dict.

    Args:
        unprivileged: Run the kernel as a leased sandbox uid (default: as
            ``isolation`` says).
        emit: Called as ``emit(kind, **fields)`` with each event.
        isolation: The batch's :class:`~dlcourse.grading.sandbox.Isolation`
            (default: the builtin sandbox, Landlock only).
        hidden_sha256: The bundle hash the batch started with: checked again
            before the tests are imported and after they ran (a change is a
            :class:`GraderError`); recorded in the results.
        all_tests: The tests collected before grading (:func:`collect_tests`):
            any that did not report is listed at 0 points with a reason.
    """
    from dlcourse.grading.proxy import Submission

    if not isinstance(isolation, Isolation):
        isolation = Isolation.from_json(isolation)
    if unprivileged is None:
        unprivileged = isolation.unprivileged
    start = time.monotonic()
    data = Path(path).read_bytes()
    nb, reason = read_notebook(data)
    notes = static_notes(nb, exercise) if nb is not None else [reason]
    kernel = None
    if nb is not None:
        kernel = _start_kernel(Path(path), exercise, limits, unprivileged, isolation, emit)
        reason = run_cells(kernel, nb, limits, notes)
    bundle = hidden_sha256 or exercise.bundle_sha256()
    status = "graded" if nb is not None else "unreadable"
    confined = None
    try:
        # Checked again here, after the notebook ran and just before the tests are imported,
        # and once more after they ran: the grade is against exactly this bundle.
        exercise.check_bundle(bundle)
        submission = Submission(kernel, reason=reason, timeout=limits.cell_timeout)
        tests, collected = run_hidden_tests(exercise, submission, nb, emit)
        exercise.check_bundle(bundle)
    finally:
        if kernel is not None:
            status, confined = _close_kernel(kernel, status, notes)
    sandbox = _sandbox_record(isolation, limits, unprivileged=unprivileged, confined=confined)
    return results_json(
        exercise.name, tests, all_tests=all_tests or collected, status=status,
        notes=[clip(note, MAX_NOTE) for note in notes], notebook=Path(path).name,
        notebook_sha256=hashlib.sha256(data).hexdigest(), hidden_sha256=bundle,
        execution_time=time.monotonic() - start, worker_max_rss_mb=_max_rss_mb(),
        sandbox=sandbox)


def _start_kernel(path: Path, exercise: Exercise, limits: Limits, unprivileged: bool,
                  isolation: Isolation, emit: Emit):
    """Start the notebook's sandboxed kernel, bootstrapped; emit its ``kernel`` event."""
    from dlcourse.grading.kernel import SandboxKernel, process_start_time

    kernel = SandboxKernel(path, limits, unprivileged=unprivileged,
                           bwrap=isolation.bwrap if isolation.tool == "bwrap" else None,
                           dlcourse_dir=isolation.dlcourse_dir)
    config = {"seed": limits.seed, "blocked": exercise.blocked,
              "dlcourse_dir": isolation.dlcourse_dir}
    kernel.start(bootstrap_code(config), on_started=lambda pid, folders: emit(
        "kernel", pid=pid, start=process_start_time(pid), folders=folders))
    return kernel


def _close_kernel(kernel, status: str, notes: list[str]) -> tuple[str, bool | None]:
    """Close the kernel; return the status (``kernel died`` if it had) and whether
    Landlock confined it."""
    confined = kernel.confined()
    if kernel.dead_reason is not None and status == "graded":
        status = "kernel died"
        notes.append(f"stopped early: {kernel.dead_reason}")
    kernel.close()
    return status, confined


def _sandbox_record(isolation: Isolation, limits: Limits, *, unprivileged: bool,
                    confined: bool | None) -> dict:
    """``extra_data.sandbox``: the sandbox and limits the kernel ran under."""
    return {"tool": isolation.tool, "unprivileged_user": unprivileged,
            "landlock": confined, "landlock_abi": isolation.landlock_abi,
            "not_held": [key for key, _, why in promises(isolation) if why],
            "memory_mb": limits.memory_mb,
            "cell_timeout_s": limits.cell_timeout,
            "notebook_timeout_s": limits.notebook_timeout, "seed": limits.seed}


def _max_rss_mb() -> float:
    """The most memory this process has held so far (MiB): what the kernel made it keep."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_cells(kernel, nb, limits: Limits, notes: list[str]) -> str | None:
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


def _limit_memory(memory_mb: int | None) -> None:
    """This process's own memory limit (soft ``RLIMIT_DATA``): the kernel it starts sets
    its own, maybe higher, limit."""
    import resource

    if not memory_mb:
        return
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    soft = int(memory_mb) * 2**20
    if hard == resource.RLIM_INFINITY or soft <= hard:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _check_dlcourse(expected: str | None) -> None:
    """A :class:`GraderError` unless this worker imported the dlcourse the sandbox exposes."""
    here = str(HERE.parent)
    if expected and os.path.realpath(expected) != here:
        raise GraderError(f"the grader's worker imported dlcourse from {here}, not from "
                          f"{expected} (the package the sandbox was built for)")


def _event_stream() -> Emit:
    """An ``emit`` that writes to this process's standard output, which from now on
    carries nothing else (anything printed goes to standard error, the log)."""
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def emit(kind: str, **fields) -> None:
        events.write(event_line(kind, **fields))
        events.flush()

    return emit


def _preload() -> None:
    """Import what grading a notebook needs, once, in the serving process."""
    import pytest  # noqa: F401

    from dlcourse.grading._nbformat import nbformat

    nbformat()

    from dlcourse.grading import execution, kernel, proxy, suite  # noqa: F401


def _setup_process() -> None:
    _not_dumpable()
    sys.dont_write_bytecode = True
    # Hidden tests need no third-party pytest plugin; loading them all costs ~1 s.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"


def run_job(text: str, *, collect: bool = False) -> int:
    """Run one job (JSON text): report its events on standard output; the exit status.

    With ``collect`` it only collects the hidden tests and emits one
    ``collected`` event (see :func:`collect_tests`). Status 2 after a
    ``grader_error`` event.
    """
    job = Job.from_json(text)
    emit = _event_stream()
    _limit_memory(job.worker_memory_mb)
    try:
        _check_dlcourse(job.isolation.dlcourse_dir)
        job.exercise.check_bundle(job.hidden_sha256)
        if collect:
            tests, errors = collect_tests(job.exercise)
            emit("collected", tests=tests, errors=errors)
            return 0
        result = grade_notebook(Path(job.notebook), job.exercise, job.limits, emit=emit,
                                hidden_sha256=job.hidden_sha256, all_tests=job.all_tests,
                                isolation=job.isolation)
    except GraderError as exc:
        emit("grader_error", message=str(exc))
        return 2
    emit("done", result=result)
    return 0


def worker_main(argv: list[str]) -> int:
    """Entry point of ``python -m dlcourse.grading.worker [--collect] JOB_JSON|-``
    (one job, read from the argument or, with ``-``, from standard input), or of
    ``python -m dlcourse.grading.worker --serve`` (see :func:`serve`)."""
    _setup_process()
    if argv[:1] == ["--serve"]:
        return serve(sys.stdin, os.fdopen(os.dup(1), "w", buffering=1))
    # The job comes on stdin ("-"; it holds the list of tests, which may be long) or as argv.
    text = sys.stdin.read() if argv[-1] == "-" else argv[-1]
    return run_job(text, collect=argv[:1] == ["--collect"])


# -- serving a batch: one forked process per notebook ---------------------------------
def serve(requests, replies) -> int:
    """Grade one notebook per request line, each in a process forked from this one.

    The imports (about 0.6 s of CPU) happen once, here; every notebook still gets
    a process of its own, as with ``worker_main``: forked, in a new session, with
    its own memory limit, its standard error in the request's ``log`` file and
    its events on this process's standard output. A request is a JSON line
    ``{"job": JOB_JSON, "log": PATH, "limit": SECONDS}``; after the process ends
    (killed with its whole group after ``limit`` seconds), one ``exit`` event
    ``{"status": ..., "hung": ...}`` follows its events. End of input ends.
    """
    _preload()
    os.dup2(2, 1)  # anything this process prints goes to its stderr; replies are the stream
    warmed: set[str] = set()
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        _warm(request["job"], warmed)
        sys.stdout.flush()
        sys.stderr.flush()
        # What this process holds goes to the collector's permanent generation: the forked
        # process's collections then skip it (and do not copy its pages to mark it).
        gc.freeze()
        pid = os.fork()
        if pid == 0:  # the notebook's process
            os._exit(_child(request, replies.fileno()))
        status, hung = _wait(pid, float(request["limit"]))
        replies.write(event_line("exit", status=status, hung=hung))
        replies.flush()
    return 0


def _warm(text: str, warmed: set[str]) -> None:
    """Before the first notebook of an exercise: collect its hidden tests here once, so that
    pytest's modules and those the tests import are imported before the fork, and import
    the reference modules the tests may compare against. Only a speed-up: any failure is
    left for the notebook's own process to meet and report."""
    import importlib
    import io

    try:
        job = Job.from_json(text)
        if job.exercise.name in warmed:
            return
        warmed.add(job.exercise.name)
        with contextlib.redirect_stderr(io.StringIO()):
            collect_tests(job.exercise)
        for ref in job.exercise.blocked:
            importlib.import_module(ref.partition(":")[0])
    except Exception:  # noqa: BLE001, S110 (see the docstring)
        pass


def _child(request: dict, events: int) -> int:
    try:
        os.setsid()
        os.dup2(events, 1)  # the events stream (run_job moves it off fd 1 again)
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin = open(os.devnull)  # noqa: SIM115
        code = run_job(request["job"])
    except BaseException:  # noqa: BLE001 (reported in the log; the batch sees the status)
        import traceback

        traceback.print_exc()
        code = 70
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _wait(pid: int, limit: float) -> tuple[int, bool]:
    """Wait for the notebook's process (killed after ``limit`` s); kill what is left of its
    session; reap it. ``(exit status or -signal, whether it ran past the limit)``."""
    deadline = time.monotonic() + limit
    hung = False
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        if time.monotonic() > deadline:
            hung = True
            with contextlib.suppress(OSError):
                os.killpg(pid, 9)
            break
        time.sleep(0.01)
    # Not reaped yet, so the pid still names this process's group: stop what it left.
    with contextlib.suppress(OSError):
        os.killpg(pid, 9)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), hung


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
