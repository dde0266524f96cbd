"""``dlcourse grade``: grade a batch of notebooks, each in a process of its own.

Before any notebook runs, the hidden tests are collected (in a separate
process) so the grader knows every test and its points: a submission whose
grading breaks off still lists every test, with its max_score and, for what it
did not earn, 0 and the reason. Every submission is then graded by a process
of its own that starts the student's sandboxed kernel, forked by one of
``--jobs`` serving workers (``python -I -m dlcourse.grading.worker --serve``,
see :class:`Servers`), which import what grading needs once. A notebook's
process that crashes or hangs costs only its own submission (recorded as a
failure with its partial results).

Student ids
    A notebook's student id is its path below the *submissions root*, without
    ``.ipynb``, folders joined by ``__``: ``subs/alice/ex1.ipynb`` with root
    ``subs`` is ``alice__ex1``, ``subs/carol.ipynb`` is ``carol``. The root is
    ``--submissions-root`` when given; else the root remembered in
    ``OUT/batch.json`` from the first grading into ``OUT`` (when the notebooks
    lie below it); else the folder named on the command line (several: their
    common folder; a notebook file: its folder). So ``dlcourse grade subs/``
    followed by ``dlcourse grade subs/alice/ex1.ipynb`` (same ``--out``)
    regrades ``alice__ex1`` and replaces just that row of ``grades.csv``.

    An id is one safe folder name: characters other than letters, digits, ``-``,
    ``_`` and ``.`` become ``_``; an id that changed that way, starts with a dot,
    is too long, or is one of the grader's own file names (``grades.csv``,
    ``batch.json``, ...) gets ``-`` and 8 hex digits of the SHA-256 of its raw
    form appended (``...ipynb`` is ``student-<hash>``, ``grades.csv.ipynb`` is
    ``grades.csv-<hash>``). So no submission writes outside ``OUT/<student>/``.

Submissions that are not graded
    A notebook that resolves (through a symbolic link) to a file outside the
    submissions root, is not a regular file, or is larger than
    :data:`MAX_NOTEBOOK_BYTES` gets a row of its own with status ``refused``,
    0 points and the reason; a symbolic link to a notebook inside the root is
    graded with a note. Nothing of a refused file is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from dlcourse.grading.errors import GraderError
from dlcourse.grading.exercise import Exercise
from dlcourse.grading.report import (
    CSV_FILE,
    CSV_UNREADABLE,
    MalformedCsv,
    read_csv,
    summary,
    write_csv,
)
from dlcourse.grading.results import Job, Outcome, results_json, write_json
from dlcourse.grading.sandbox import WORKER_MEMORY_MB, Isolation, Limits, neutral_folder, report

#: Remembers, in the results folder, the exercise and the submissions root.
STATE_FILE = "batch.json"
#: The grader's own names in the results folder: never a student id.
RESERVED = {CSV_FILE, STATE_FILE, CSV_FILE + ".tmp", CSV_UNREADABLE}
#: A larger submission is refused without being read.
MAX_NOTEBOOK_BYTES = 64 * 2**20
_MAX_ID_BYTES = 100
#: The module a worker runs (:mod:`dlcourse.grading.worker`), started by name: the batch
#: never imports it.
WORKER_MODULE = "dlcourse.grading.worker"
#: Workers run isolated (-I: no current folder, PYTHONPATH or user site on sys.path), from
#: a neutral folder: they import the same dlcourse as the kernels, whatever folder
#: ``dlcourse grade`` was started from.
WORKER_FLAGS = ("-I",)


def find_submissions(paths: list[Path]) -> list[Path]:
    """Expand files and folders into a sorted list of ``.ipynb`` files."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.ipynb"))
                         if ".ipynb_checkpoints" not in p.parts)
        elif path.exists() or path.is_symlink():
            found.append(path)  # files that cannot be graded get a row saying why
        else:
            raise GraderError(f"submissions must be notebooks or folders; {path} does not exist")
    # Absolute, symbolic links kept: a link's id is its own path (see admit()).
    unique = list(dict.fromkeys(Path(os.path.abspath(p)) for p in found))
    if not unique:
        raise GraderError("no notebooks to grade")
    return unique


def submissions_root(args: list[Path], notebooks: list[Path], *, explicit: Path | None = None,
                     remembered: Path | None = None) -> Path:
    """The folder student ids are relative to (see the module docstring)."""
    if explicit is not None:
        root = Path(os.path.abspath(explicit))
        if not root.is_dir():
            raise GraderError(f"--submissions-root {explicit} is not a folder")
        outside = [str(nb) for nb in notebooks if not nb.is_relative_to(root)]
        if outside:
            raise GraderError(f"--submissions-root {explicit} does not hold "
                              + ", ".join(outside[:3]))
        return root
    if remembered is not None and all(nb.is_relative_to(remembered) for nb in notebooks):
        return Path(remembered)
    folders = [Path(os.path.abspath(a)) if Path(a).is_dir()
               else Path(os.path.abspath(a)).parent for a in args]
    return Path(os.path.commonpath(folders))


def safe_student_id(raw: str) -> str:
    """``raw`` as one safe folder name (see the module docstring)."""
    clean = "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)
    if (clean == raw and clean and not clean.startswith(".")
            and clean.casefold() not in RESERVED and len(clean.encode()) <= _MAX_ID_BYTES):
        return clean
    base = clean.lstrip(".") or "student"
    while len(base.encode()) > _MAX_ID_BYTES:
        base = base[:-1]
    return f"{base}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def student_ids(paths: list[Path], root: Path) -> dict[Path, str]:
    """Each notebook's student id: its path below ``root``, without ``.ipynb``, joined by
    ``__``, made safe by :func:`safe_student_id`.

    The id depends only on the notebook's place below ``root``, never on what
    else is graded with it.
    """
    ids: dict[Path, str] = {}
    for path in paths:
        rel = Path(path).relative_to(root)
        parts = list(rel.parts)
        if parts and parts[-1].endswith(".ipynb"):
            parts[-1] = parts[-1].removesuffix(".ipynb")
        ids[path] = safe_student_id("__".join(parts))
    seen: dict[str, Path] = {}
    for path, student in ids.items():
        if student in seen:
            raise GraderError(f"{seen[student]} and {path} would both be student {student!r}: "
                              "rename one")
        seen[student] = path
    return ids


def admit(path: Path, root: Path) -> tuple[Path | None, str | None, str | None]:
    """Whether a submission can be graded: ``(file to read, note, None)`` or
    ``(None, None, reason)``; nothing of a refused file is read.

    A path that resolves through a symbolic link to a file inside ``root`` is
    graded (the note says so); outside ``root``, not a regular file, or larger
    than :data:`MAX_NOTEBOOK_BYTES`, it is refused.
    """
    real = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    note = None
    if not real.is_relative_to(real_root):
        return None, None, (f"not graded: the submission is a symbolic link to {real}, "
                            f"outside the submissions folder {root}; submit the notebook itself")
    here = Path(os.path.abspath(path))
    if not here.is_relative_to(root) or real.relative_to(real_root) != here.relative_to(root):
        note = f"graded {real.relative_to(real_root)}, where the symbolic link points"
    try:
        info = os.stat(real)
    except OSError as exc:
        return None, None, f"not graded: the submission cannot be read ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return None, None, "not graded: the submission is not a regular file"
    if info.st_size > MAX_NOTEBOOK_BYTES:
        return None, None, (f"not graded: the notebook is {info.st_size / 2**20:.0f} MiB; the "
                            f"grader reads at most {MAX_NOTEBOOK_BYTES / 2**20:.0f} MiB (clear "
                            "the outputs and submit again)")
    return real, note, None


def read_state(out: Path) -> dict:
    """What ``OUT/batch.json`` remembers (``{}`` when there is none)."""
    try:
        state = json.loads((Path(out) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def check_out_folder(out: Path, exercise: str) -> None:
    """Refuse to mix the grades of two exercises in one results folder."""
    others = set()
    state = read_state(out)
    if state.get("exercise"):
        others.add(state["exercise"])
    with contextlib.suppress(MalformedCsv):  # rebuilt when the batch writes it
        rows, _ = read_csv(Path(out) / CSV_FILE)
        others.update(row["exercise"] for row in rows.values() if row.get("exercise"))
    others.discard(exercise)
    if others:
        raise GraderError(f"{out} holds grades of exercise {', '.join(sorted(others))}; grade "
                          f"{exercise} into another --out folder")


class Servers:
    """Serving workers (``python -I -m dlcourse.grading.worker --serve``), one per job slot.

    A serving worker imports what grading needs once, then forks one process per
    notebook (:func:`dlcourse.grading.worker.serve`): each notebook still has a
    process of its own (its own session, memory limit and log), without paying
    the interpreter's start and the imports (about 0.6 s of CPU) again. A
    serving worker whose stream breaks is replaced by a fresh one.

    Args:
        start: Starts one serving worker (a ``subprocess.Popen`` with pipes).
    """

    def __init__(self, start):
        self._start = start
        self._idle: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    def acquire(self) -> subprocess.Popen:
        with self._lock:
            while self._idle:
                server = self._idle.pop()
                if server.poll() is None:
                    return server
        return self._start()

    def release(self, server: subprocess.Popen, *, broken: bool = False) -> None:
        if broken:
            _stop(server)
            return
        with self._lock:
            self._idle.append(server)

    def close(self) -> None:
        """End every serving worker (end of input ends it; a stuck one is killed)."""
        with self._lock:
            servers, self._idle = self._idle, []
        for server in servers:
            with contextlib.suppress(OSError):
                server.stdin.close()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """Kill a serving worker and its group (it leads its own session), then reap it."""
    if server.returncode is None:
        with contextlib.suppress(OSError):
            os.killpg(server.pid, 9)
    server.wait()


class Batch:
    """Grades submissions with ``jobs`` worker processes.

    The hidden tests are hashed and collected when the batch is made (a
    :class:`GraderError` if there are none); see :attr:`all_tests`.
    """

    #: Seconds a worker may run beyond the notebook's time limit before it is killed.
    worker_slack = 120.0

    def __init__(self, exercise: Exercise, limits: Limits, *, out: Path, jobs: int = 1,
                 unprivileged: bool = False, progress: bool = True,
                 isolation: Isolation | None = None,
                 worker_memory_mb: int = WORKER_MEMORY_MB):
        self.exercise = exercise
        self.limits = limits
        self.out = Path(out).absolute()
        self.jobs = max(1, int(jobs))
        self.isolation = isolation or Isolation(unprivileged=unprivileged)
        self.unprivileged = self.isolation.unprivileged
        self.worker_memory_mb = worker_memory_mb
        self.progress = progress
        self.hidden_sha256 = exercise.bundle_sha256()
        self.grader_errors: list[str] = []
        self._lock = threading.Lock()
        self._servers = Servers(self._start_server)
        self.all_tests: list[dict] | None = None  # the collecting job sends none
        self.all_tests, self.collect_errors = self._collect()
        if not self.all_tests and not self.collect_errors:
            raise GraderError(f"no hidden tests found in {exercise.hidden_dir}")

    # -- workers ----------------------------------------------------------------------
    def _job(self, notebook: Path | None = None) -> str:
        return Job(self.exercise, self.hidden_sha256, self.limits, self.isolation,
                   self.worker_memory_mb, None if notebook is None else str(notebook),
                   self.all_tests).to_json()

    def _worker(self, *args: str, **popen) -> subprocess.Popen:
        """Start a worker process (isolated, from a neutral folder, without PYTHONPATH)."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        return subprocess.Popen([sys.executable, *WORKER_FLAGS, "-m", WORKER_MODULE, *args],
                                text=True, env=env, cwd=neutral_folder(), **popen)

    def _start_server(self) -> subprocess.Popen:
        """Start a serving worker (requests on stdin, events on stdout; its stderr is ours:
        it writes there only if it breaks), in its own session."""
        return self._worker("--serve", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)

    def _collect(self) -> tuple[list[dict], list[str]]:
        """Collect the hidden tests in a worker process: ``(tests, errors)``."""
        proc = self._worker("--collect", "-", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
        try:
            stdout, stderr = proc.communicate(self._job(), timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return [], ["collecting the hidden tests took more than 600 s"]
        outcome = Outcome()
        for line in stdout.splitlines():
            outcome.read(line)
        if outcome.error is not None:
            raise GraderError(outcome.error)
        if outcome.collected is not None:
            return outcome.collected
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        return [], [f"collecting the hidden tests stopped (exit status {proc.returncode}): {tail}"]

    def _run_worker(self, notebook: Path, log: Path) -> tuple[Outcome, str | None]:
        """Grade ``notebook`` in a process of its own whose stderr goes to ``log``; return
        what it reported and, when it did not finish, the reason (None when it did)."""
        outcome = Outcome()
        limit = self.limits.notebook_timeout + self.worker_slack
        log.write_text("")  # the notebook's process writes it; it exists even if none starts
        server = self._servers.acquire()
        # The serving worker stops the notebook's process after `limit`; this is for a
        # serving worker that would itself stop answering.
        timer = threading.Timer(limit + 60, _stop, (server,))
        timer.start()
        try:
            with contextlib.suppress(OSError):  # a server that died at once: reported below
                server.stdin.write(json.dumps({"job": self._job(notebook), "log": str(log),
                                               "limit": limit}) + "\n")
                server.stdin.flush()
            for line in iter(server.stdout.readline, ""):
                outcome.read(line)
                if outcome.exited is not None:
                    break
        finally:
            timer.cancel()
            self._servers.release(server, broken=outcome.exited is None)
        if outcome.error is not None:
            return outcome, f"grader error (not your fault): {outcome.error}"
        if outcome.result is not None:
            return outcome, None
        if outcome.kernel is not None:
            _remove_kernel(outcome.kernel)
        if outcome.exited is not None and outcome.exited["hung"]:
            return outcome, (f"grader error (not your fault): the grader's worker ran past "
                             f"{limit:g} s and was stopped; see {log}")
        status = "unknown" if outcome.exited is None else outcome.exited["status"]
        return outcome, (f"grader error (not your fault): the grader's worker stopped "
                         f"(exit status {status}); see {log}")

    # -- results ----------------------------------------------------------------------
    def failure(self, notebook: Path, tests: list[dict], reason: str, *,
                status: str = "grading failed") -> dict:
        """Results of a submission whose grading broke off: what finished, the rest at zero.

        Every test of :attr:`all_tests` is reported, with its max_score. With
        ``status="refused"`` the submission was not read at all (see :func:`admit`).
        """
        notebook_sha256 = ""
        if status != "refused":
            with contextlib.suppress(OSError):
                notebook_sha256 = hashlib.sha256(Path(notebook).read_bytes()).hexdigest()
        return results_json(
            self.exercise.name, tests, all_tests=self.all_tests, reason=reason, status=status,
            notes=[reason], output=f"Grading stopped: {reason}" if status != "refused" else reason,
            notebook=Path(notebook).name, notebook_sha256=notebook_sha256,
            hidden_sha256=self.hidden_sha256)

    def _folder(self, student: str) -> Path:
        folder = self.out / student
        if student in ("", ".", "..") or "/" in student or folder.parent != self.out:
            raise GraderError(f"unsafe student id {student!r}")  # safe_student_id prevents it
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _write(self, student: str, result: dict, note: str | None = None) -> dict:
        """Record the student id (and ``note``) in ``result``; write its results.json."""
        extra = result.setdefault("extra_data", {})
        extra["student"] = student
        if note:
            extra.setdefault("notes", []).insert(0, note)
        write_json(self._folder(student) / "results.json", result)
        return result

    def refuse(self, notebook: Path, student: str, reason: str) -> dict:
        """The row of a submission that is not graded (:func:`admit`)."""
        return self._write(student, self.failure(notebook, [], reason, status="refused"))

    def grade_one(self, notebook: Path, student: str, note: str | None = None) -> dict:
        """Grade one submission in a worker; always returns a results dict."""
        outcome, reason = self._run_worker(notebook, self._folder(student) / "grader.log")
        result = outcome.result
        if reason is not None:
            with self._lock:
                self.grader_errors.append(f"{student}: {reason}")
            result = self.failure(notebook, outcome.tests, reason)
        return self._write(student, result, note)

    def _not_collected(self, notebook: Path, student: str) -> dict:
        reason = ("grader error (not your fault): the hidden tests could not be collected: "
                  + "; ".join(self.collect_errors))
        return self._write(student, self.failure(notebook, [], reason))

    # -- the batch --------------------------------------------------------------------
    def run(self, notebooks: list[Path], ids: dict[Path, str] | None = None,
            root: Path | None = None) -> dict[str, dict]:
        """Grade all notebooks; return ``{student: results}``.

        Args:
            notebooks: The submissions.
            ids: Their student ids (default: relative to ``root``).
            root: The submissions root (default: the notebooks' common folder):
                what a symbolic link may point into (see :func:`admit`).
        """
        if root is None:
            root = submissions_root(notebooks, notebooks)
        if ids is None:
            ids = student_ids(notebooks, root)
        results: dict[str, dict] = {}
        admitted = {}
        for nb in notebooks:
            target, note, refusal = admit(nb, root)
            if refusal is not None:
                results[ids[nb]] = self.refuse(nb, ids[nb], refusal)
            else:
                admitted[ids[nb]] = (target, note)
        if self.collect_errors:
            # No notebook is run against a bundle that does not load.
            self.grader_errors.append(f"all {len(admitted)} submission(s): the hidden tests "
                                      "could not be collected: " + "; ".join(self.collect_errors))
            results.update({student: self._not_collected(target, student)
                            for student, (target, _) in admitted.items()})
            return results
        results.update(self._grade_all(admitted))
        if self.exercise.bundle_sha256() != self.hidden_sha256:
            self.grader_errors.append("the hidden tests changed during grading: regrade")
        return results

    def _grade_all(self, admitted: dict[str, tuple[Path, str | None]]) -> dict[str, dict]:
        """Grade ``{student: (notebook, note)}`` with :attr:`jobs` workers at once."""
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(admitted), desc=f"grading {self.exercise.name}", unit="nb",
                       file=sys.stderr, dynamic_ncols=True)
        results = {}
        try:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                futures = {pool.submit(self.grade_one, target, student, note): student
                           for student, (target, note) in admitted.items()}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    if bar is not None:
                        bar.update(1)
        finally:
            self._servers.close()
        if bar is not None:
            bar.close()
        return results


def _remove_kernel(event: dict) -> None:
    """Kill the kernel of a worker that died without closing it; remove its folders."""
    import shutil

    from dlcourse.grading.kernel import process_start_time

    pid = event.get("pid")
    # The kernel leads its own session and process group; the start time makes sure the
    # pid still names it (its parent died: someone else reaped it, the pid may be reused).
    start = event.get("start")
    if isinstance(pid, int) and pid > 1 and start is not None \
            and process_start_time(pid) == start:
        with contextlib.suppress(OSError):
            os.killpg(pid, 9)
    for folder in event.get("folders", []):
        if Path(folder).name.startswith(("dlcourse-sandbox-", "dlcourse-grader-")):
            shutil.rmtree(folder, ignore_errors=True)


def grade_command(args) -> int:
    """Handler of ``dlcourse grade``; returns the exit status."""
    try:
        exercise = Exercise.find(args.exercise, args.root)
        limits = Limits.resolve(exercise.config, cell_timeout=args.timeout,
                                notebook_timeout=args.notebook_timeout,
                                memory_mb=args.memory_mb)
        batch, notebooks, ids, root = _plan(args, exercise, limits)
        results = batch.run(notebooks, ids, root)
        csv_warning = write_csv(args.out / CSV_FILE, results)
        if args.results_json:
            write_json(args.results_json, next(iter(results.values())))
    except GraderError as exc:
        print(f"dlcourse grade: error: {exc}", file=sys.stderr)
        return 2
    print(summary(exercise, results, batch.grader_errors, batch.isolation))
    if csv_warning:
        print(csv_warning)
    print(f"results in {args.out}/ (grades.csv, <student>/results.json)")
    return 1 if batch.grader_errors else 0


def _plan(args, exercise: Exercise, limits: Limits):
    """Check the arguments and the results folder, decide the sandbox, make the batch:
    ``(batch, notebooks, ids, root)``; a :class:`GraderError` for any mistake."""
    from dlcourse.grading.probe import detect

    if args.jobs < 1:
        raise GraderError(f"--jobs must be >= 1; received {args.jobs}")
    notebooks = find_submissions(args.submissions)
    if args.results_json and len(notebooks) != 1:
        raise GraderError("--results-json needs exactly one submission")
    check_out_folder(args.out, exercise.name)
    state = read_state(args.out)
    remembered = Path(state["submissions_root"]) if state.get("submissions_root") else None
    explicit = getattr(args, "submissions_root", None)
    root = submissions_root(args.submissions, notebooks, explicit=explicit,
                            remembered=remembered)
    ids = student_ids(notebooks, root)
    isolation = detect(args.isolation, getattr(args, "sandbox", "auto"))
    for line in report(isolation)[1:]:
        print(f"WARNING: {line}", file=sys.stderr)
    worker_memory = getattr(args, "worker_memory_mb", None) or WORKER_MEMORY_MB
    if worker_memory < 256:
        raise GraderError(f"--worker-memory-mb must be >= 256; received {worker_memory}")
    batch = Batch(exercise, limits, out=args.out, jobs=args.jobs, isolation=isolation,
                  worker_memory_mb=worker_memory, progress=not args.no_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    if explicit is not None or remembered is None:
        write_json(args.out / STATE_FILE, {"exercise": exercise.name,
                                           "submissions_root": str(root)})
    return batch, notebooks, ids, root
