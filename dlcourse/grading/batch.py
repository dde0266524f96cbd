"""``dlcourse grade``: grade a batch of notebooks, one worker process each.

Before any notebook runs, the hidden tests are collected (in a separate
process) so the grader knows every test and its points: a submission whose
grading breaks off still lists every test, with its max_score and, for what it
did not earn, 0 and the reason. Every submission is then graded by its own
worker process (``python -m dlcourse.grading.runner``) that starts the
student's sandboxed kernel; ``--jobs`` workers run at once. A worker that
crashes or hangs costs only its own submission (recorded as a failure with its
partial results).

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
import csv
import hashlib
import json
import os
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from dlcourse.grading.bounds import MAX_CSV_FIELD, clip
from dlcourse.grading.errors import GraderError
from dlcourse.grading.kernel import Limits
from dlcourse.grading.runner import DEFAULTS, WORKER_MEMORY_MB, Exercise, complete_tests
from dlcourse.grading.sandbox import Isolation, neutral_folder, report

CSV_FIXED = ["student", "exercise", "notebook", "score", "max_score", "percent", "status",
             "notes", "notebook_sha256", "hidden_tests_sha256"]
#: Remembers, in the results folder, the exercise and the submissions root.
STATE_FILE = "batch.json"
CSV_FILE = "grades.csv"
#: Where an unreadable grades.csv is moved before it is rebuilt from the results.json files.
CSV_UNREADABLE = "grades.csv.unreadable"
#: The grader's own names in the results folder: never a student id.
RESERVED = {CSV_FILE, STATE_FILE, CSV_FILE + ".tmp", CSV_UNREADABLE}
#: A larger submission is refused without being read.
MAX_NOTEBOOK_BYTES = 64 * 2**20
_MAX_ID_BYTES = 100
#: Workers run isolated (-I: no current folder, PYTHONPATH or user site on sys.path), from
#: a neutral folder: they import the same dlcourse as the kernels, whatever folder
#: ``dlcourse grade`` was started from.
WORKER_FLAGS = ("-I",)


class MalformedCsv(ValueError):
    """An earlier grades.csv that cannot be read."""


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


def failure_result(exercise: Exercise, notebook: Path, tests: list[dict], reason: str,
                   all_tests: list[dict] | None = None, *,
                   hidden_sha256: str | None = None, status: str = "grading failed") -> dict:
    """Results of a submission whose grading broke off: what finished, the rest at zero.

    ``all_tests`` is the exercise's full list of tests (collected before
    grading): every one of them is reported, with its max_score. With
    ``status="refused"`` the submission was not read at all (see :func:`admit`).
    """
    from dlcourse.grading.runner import complete_tests, package_versions

    tests = complete_tests(tests, all_tests, reason)
    notebook_sha256 = ""
    if status != "refused":
        with contextlib.suppress(OSError):
            notebook_sha256 = hashlib.sha256(Path(notebook).read_bytes()).hexdigest()
    return {
        "score": sum(t["score"] for t in tests),
        "max_score": sum(t["max_score"] for t in tests),
        "output": f"Grading stopped: {reason}" if status != "refused" else reason,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "exercise": exercise.name,
            "status": status,
            "notes": [reason],
            "notebook": Path(notebook).name,
            "notebook_sha256": notebook_sha256,
            "hidden_tests_sha256": hidden_sha256 or exercise.bundle_sha256(),
            "versions": package_versions(),
        },
    }


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
        self.all_tests: list[dict] | None = None  # the collecting job sends none
        self.all_tests, self.collect_errors = self._collect()
        if not self.all_tests and not self.collect_errors:
            raise GraderError(f"no hidden tests found in {exercise.hidden_dir}")

    def _job(self, notebook: Path | None = None) -> str:
        return json.dumps({
            "exercise": self.exercise.name,
            "hidden_dir": str(self.exercise.hidden_dir),
            "student_notebook": str(self.exercise.student_notebook),
            "config": self.exercise.config,
            "hidden_sha256": self.hidden_sha256,
            "limits": asdict(self.limits),
            "unprivileged": self.unprivileged,
            "isolation": self.isolation.to_json(),
            "worker_memory_mb": self.worker_memory_mb,
            "notebook": None if notebook is None else str(notebook),
            "all_tests": self.all_tests,
        })

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        return env

    def _collect(self) -> tuple[list[dict], list[str]]:
        """Collect the hidden tests in a separate process: ``(tests, errors)``."""
        try:
            proc = subprocess.run(
                [sys.executable, *WORKER_FLAGS, "-m", "dlcourse.grading.runner", "--collect", "-"],
                input=self._job(), capture_output=True, text=True, env=self._env(),
                timeout=600, cwd=neutral_folder())
        except subprocess.TimeoutExpired:
            return [], ["collecting the hidden tests took more than 600 s"]
        for line in proc.stdout.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                if event.get("event") == "collected":
                    return event["tests"], event["errors"]
                if event.get("event") == "grader_error":
                    raise GraderError(event["message"])
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return [], [f"collecting the hidden tests stopped (exit status {proc.returncode}): {tail}"]

    def _failure(self, notebook: Path, tests: list[dict], reason: str, **kwargs) -> dict:
        return failure_result(self.exercise, notebook, tests, reason, self.all_tests,
                              hidden_sha256=self.hidden_sha256, **kwargs)

    def _folder(self, student: str) -> Path:
        folder = self.out / student
        if student in ("", ".", "..") or "/" in student or folder.parent != self.out:
            raise GraderError(f"unsafe student id {student!r}")  # safe_student_id prevents it
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def refuse(self, notebook: Path, student: str, reason: str) -> dict:
        """The row of a submission that is not graded (:func:`admit`)."""
        result = self._failure(notebook, [], reason, status="refused")
        result["extra_data"]["student"] = student
        write_json(self._folder(student) / "results.json", result)
        return result

    def grade_one(self, notebook: Path, student: str, note: str | None = None) -> dict:
        """Grade one submission in a worker; always returns a results dict."""
        folder = self._folder(student)
        log = folder / "grader.log"
        tests: list[dict] = []
        result = None
        error = None
        kernel = None
        hung = threading.Event()
        limit = self.limits.notebook_timeout + self.worker_slack
        with open(log, "w") as log_handle:
            proc = subprocess.Popen(
                [sys.executable, *WORKER_FLAGS, "-m", "dlcourse.grading.runner", "-"],
                stdout=subprocess.PIPE, stderr=log_handle, stdin=subprocess.PIPE,
                text=True, env=self._env(), start_new_session=True, cwd=neutral_folder())

            def stop():
                hung.set()
                proc.kill()

            timer = threading.Timer(limit, stop)
            timer.start()
            try:
                with contextlib.suppress(OSError):  # a worker that died at once: reported below
                    proc.stdin.write(self._job(notebook))
                    proc.stdin.close()
                for line in proc.stdout:
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if event.get("event") == "kernel":
                        kernel = event
                    elif event.get("event") == "test":
                        tests.append(event["test"])
                    elif event.get("event") == "done":
                        result = event["result"]
                    elif event.get("event") == "grader_error":
                        error = event["message"]
                # Wait without reaping, so that the pid still names this worker's group.
                with contextlib.suppress(ChildProcessError):
                    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            finally:
                timer.cancel()
                if proc.returncode is None:  # not reaped: the group is still the worker's
                    with contextlib.suppress(OSError):
                        os.killpg(proc.pid, 9)
                proc.wait()
        if result is None and error is None and kernel is not None:
            _remove_kernel(kernel)
        if error is not None:
            reason = f"grader error (not your fault): {error}"
        elif result is None and hung.is_set():
            reason = (f"grader error (not your fault): the grader's worker ran past {limit:g} s "
                      f"and was stopped; see {log}")
        elif result is None:
            reason = (f"grader error (not your fault): the grader's worker stopped "
                      f"(exit status {proc.returncode}); see {log}")
        if error is not None or result is None:
            with self._lock:
                self.grader_errors.append(f"{student}: {reason}")
            result = self._failure(notebook, tests, reason)
        else:
            # The parent has the last word: every collected test is in the results.
            result["tests"] = complete_tests(result.get("tests", []), self.all_tests,
                                             "this test did not run")
            result["score"] = sum(t["score"] for t in result["tests"])
            result["max_score"] = sum(t["max_score"] for t in result["tests"])
        extra = result.setdefault("extra_data", {})
        extra["student"] = student
        if note:
            extra.setdefault("notes", []).insert(0, note)
        write_json(folder / "results.json", result)
        return result

    def _not_collected(self, notebook: Path, student: str) -> dict:
        reason = ("grader error (not your fault): the hidden tests could not be collected: "
                  + "; ".join(self.collect_errors))
        result = self._failure(notebook, [], reason)
        result["extra_data"]["student"] = student
        write_json(self._folder(student) / "results.json", result)
        return result

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
                admitted[nb] = (target, note)
        notebooks = list(admitted)
        if self.collect_errors:
            # No notebook is run against a bundle that does not load.
            self.grader_errors.append(f"all {len(notebooks)} submission(s): the hidden tests "
                                      "could not be collected: " + "; ".join(self.collect_errors))
            results.update({ids[nb]: self._not_collected(admitted[nb][0], ids[nb])
                            for nb in notebooks})
            return results
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(notebooks), desc=f"grading {self.exercise.name}", unit="nb",
                       file=sys.stderr, dynamic_ncols=True)
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(self.grade_one, admitted[nb][0], ids[nb], admitted[nb][1]):
                       ids[nb] for nb in notebooks}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        if self.exercise.bundle_sha256() != self.hidden_sha256:
            self.grader_errors.append("the hidden tests changed during grading: regrade")
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


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def read_csv(path: Path) -> tuple[dict[str, dict], list[str]]:
    """Rows (by student) and columns of an earlier ``grades.csv``; ``({}, [])`` if none.

    Raises:
        MalformedCsv: When it cannot be read as this grader's CSV.
    """
    path = Path(path)
    if not path.exists():
        return {}, []
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # an older grader wrote fields of any length
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = {}
            for row in reader:
                row.pop(None, None)  # extra fields without a column
                if not isinstance(row.get("student"), str) or not row["student"]:
                    raise MalformedCsv(f"{path}: a row without a student id")
                rows[row["student"]] = row
            columns = list(reader.fieldnames or [])
        if rows and "student" not in columns:
            raise MalformedCsv(f"{path}: no 'student' column")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MalformedCsv(f"{path}: {type(exc).__name__}: {clip(exc, 300)}") from exc
    finally:
        csv.field_size_limit(limit)
    return rows, columns


def _row(student: str, result: dict) -> dict:
    extra = result.get("extra_data", {})
    score, max_score = result.get("score", 0.0), result.get("max_score", 0.0)
    row = {
        "student": student,
        "exercise": extra.get("exercise", ""),
        "notebook": extra.get("notebook", ""),
        "score": f"{score:g}",
        "max_score": f"{max_score:g}",
        "percent": f"{100 * score / max_score:.1f}" if max_score else "0.0",
        "status": extra.get("status", ""),
        "notes": " | ".join(extra.get("notes", [])),
        "notebook_sha256": extra.get("notebook_sha256", ""),
        "hidden_tests_sha256": extra.get("hidden_tests_sha256", ""),
    }
    for test in result.get("tests", []):
        row[test["name"]] = f"{test['score']:g}"
    return row


def _rows_from_results(out: Path) -> dict[str, dict]:
    """Rows rebuilt from ``OUT/*/results.json`` (for an unreadable grades.csv)."""
    rows = {}
    for path in sorted(Path(out).glob("*/results.json")):
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
            result = json.loads(path.read_text())
            student = result.get("extra_data", {}).get("student") or path.parent.name
            rows[student] = _row(student, result)
    return rows


def write_csv(path: Path, results: dict[str, dict]) -> str | None:
    """Write or update ``grades.csv``: rows of students graded now replace their old rows.

    Every field is cut to :data:`~dlcourse.grading.bounds.MAX_CSV_FIELD` characters.
    An earlier file that cannot be read never stops the batch: it is moved to
    ``grades.csv.unreadable`` and the other students' rows are rebuilt from their
    ``results.json``.

    Returns:
        A warning for the summary when the earlier file was unreadable, else None.
    """
    path = Path(path)
    warning = None
    try:
        rows, old_columns = read_csv(path)
    except MalformedCsv as exc:
        os.replace(path, path.with_name(CSV_UNREADABLE))
        rows, old_columns = _rows_from_results(path.parent), []
        warning = (f"WARNING: the earlier {path.name} could not be read ({exc}); it was moved "
                   f"to {CSV_UNREADABLE} and rebuilt from the results.json files")
    columns: list[str] = list(CSV_FIXED)
    for name in old_columns:
        if name not in columns:
            columns.append(name)
    for student, result in results.items():
        rows[student] = _row(student, result)
    for row in rows.values():
        for name in row:
            if name not in columns:
                columns.append(name)
    tmp = path.with_name(CSV_FILE + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for student in sorted(rows):
            writer.writerow({k: clip(v if v is not None else "", MAX_CSV_FIELD)
                             for k, v in rows[student].items()})
    os.replace(tmp, path)
    return warning


def summary(exercise: Exercise, results: dict[str, dict], errors: list[str],
            isolation: Isolation | None = None) -> str:
    """A readable summary of a batch; with ``isolation``, the sandbox it ran in and each
    of its promises that does not hold on this machine."""
    lines = [f"{exercise.name}: {len(results)} submission(s)"]
    width = max([len(s) for s in results] + [7])
    for student in sorted(results):
        r = results[student]
        extra = r.get("extra_data", {})
        status = extra.get("status", "")
        note = f"  ({extra['notes'][0]})" if extra.get("notes") and status != "graded" else ""
        lines.append(f"  {student:<{width}}  {r['score']:>6g} / {r['max_score']:<6g} {status}{note}")
    scores = [r["score"] for r in results.values()]
    if scores:
        lines.append(f"mean {statistics.fmean(scores):.2f}, median {statistics.median(scores):g}")
    per_test: dict[str, list[bool]] = {}
    for r in results.values():
        for t in r.get("tests", []):
            per_test.setdefault(t["name"], []).append(t["score"] >= t["max_score"])
    if per_test:
        lines.append("tests passed by:")
        for name, passed in per_test.items():
            lines.append(f"  {sum(passed):>3}/{len(passed):<3} {name}")
    unconfined = [s for s, r in results.items()
                  if r.get("extra_data", {}).get("sandbox", {}).get("landlock") is False
                  and not r["extra_data"]["sandbox"].get("unprivileged_user")]
    if isolation is not None:
        lines.extend(report(isolation))
    if unconfined:
        lines.append(f"WARNING: {len(unconfined)} kernel(s) ran without Landlock and as the "
                     "grader's own user (weaker sandbox; see dlcourse.grading's docstring)")
    if errors:
        lines.append("GRADER ERRORS (not the students' fault):")
        lines.extend(f"  {e}" for e in errors)
    return "\n".join(lines)


def grade_command(args) -> int:
    """Handler of ``dlcourse grade``; returns the exit status."""
    try:
        exercise = Exercise.find(args.exercise, args.root)
        cfg = exercise.config
        limits = Limits(
            cell_timeout=float(args.timeout or cfg.get("cell_timeout", DEFAULTS["cell_timeout"])),
            notebook_timeout=float(args.notebook_timeout
                                   or cfg.get("notebook_timeout", DEFAULTS["notebook_timeout"])),
            memory_mb=int(args.memory_mb or cfg.get("memory_mb", DEFAULTS["memory_mb"])),
        )
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
        from dlcourse.grading.sandbox import detect

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
        results = batch.run(notebooks, ids, root)
        csv_warning = write_csv(args.out / CSV_FILE, results)
        if args.results_json:
            write_json(args.results_json, next(iter(results.values())))
    except GraderError as exc:
        print(f"dlcourse grade: error: {exc}", file=sys.stderr)
        return 2
    print(summary(exercise, results, batch.grader_errors, isolation))
    if csv_warning:
        print(csv_warning)
    print(f"results in {args.out}/ (grades.csv, <student>/results.json)")
    return 1 if batch.grader_errors else 0
