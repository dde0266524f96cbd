"""``dlcourse grade``: grade a batch of notebooks, one worker process each.

Every submission is graded by its own worker process
(``python -m dlcourse.grading.runner``) that starts the student's sandboxed
kernel; ``--jobs`` workers run at once. A worker that crashes or hangs costs
only its own submission (recorded as a failure with its partial results).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from dlcourse.grading.errors import GraderError
from dlcourse.grading.kernel import Limits, probe_unprivileged
from dlcourse.grading.runner import DEFAULTS, Exercise

CSV_FIXED = ["student", "notebook", "score", "max_score", "percent", "status", "notes",
             "notebook_sha256"]


def find_submissions(paths: list[Path]) -> list[Path]:
    """Expand files and folders into a sorted list of ``.ipynb`` files."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.ipynb"))
                         if ".ipynb_checkpoints" not in p.parts)
        elif path.is_file():
            found.append(path)
        else:
            raise GraderError(f"submissions must be notebooks or folders; {path} does not exist")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise GraderError("no notebooks to grade")
    return unique


def student_ids(paths: list[Path]) -> dict[Path, str]:
    """A readable, unique id per submission: the file stem, else its relative path."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return {p: p.stem for p in paths}
    # Otherwise the fewest trailing path parts that tell them apart ("alice__ex1").
    for depth in range(2, max(len(p.parts) for p in paths) + 1):
        ids = {p: "__".join(p.with_suffix("").parts[-depth:]) for p in paths}
        if len(set(ids.values())) == len(ids):
            return ids
    return {p: "__".join(p.with_suffix("").parts[1:]) for p in paths}


def failure_result(exercise: Exercise, notebook: Path, tests: list[dict], reason: str,
                   all_tests: list[dict] | None = None) -> dict:
    """Results of a submission whose grading broke off: what finished, the rest at zero."""
    import hashlib

    from dlcourse.grading.runner import package_versions

    done = {t["nodeid"] for t in tests}
    rest = [dict(t, score=0.0, status="failed", output=reason)
            for t in (all_tests or []) if t["nodeid"] not in done]
    tests = tests + rest
    return {
        "score": sum(t["score"] for t in tests),
        "max_score": sum(t["max_score"] for t in tests),
        "output": f"Grading stopped: {reason}",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "exercise": exercise.name,
            "status": "grading failed",
            "notes": [reason],
            "notebook": notebook.name,
            "notebook_sha256": hashlib.sha256(notebook.read_bytes()).hexdigest(),
            "hidden_tests_sha256": exercise.bundle_sha256(),
            "versions": package_versions(),
        },
    }


class Batch:
    """Grades submissions with ``jobs`` worker processes."""

    def __init__(self, exercise: Exercise, limits: Limits, *, out: Path, jobs: int = 1,
                 unprivileged: bool = False, progress: bool = True):
        self.exercise = exercise
        self.limits = limits
        self.out = Path(out)
        self.jobs = max(1, int(jobs))
        self.unprivileged = unprivileged
        self.progress = progress
        self.hidden_sha256 = exercise.bundle_sha256()
        self.grader_errors: list[str] = []
        self._lock = threading.Lock()

    def _job(self, notebook: Path) -> str:
        return json.dumps({
            "exercise": self.exercise.name,
            "hidden_dir": str(self.exercise.hidden_dir),
            "student_notebook": str(self.exercise.student_notebook),
            "config": self.exercise.config,
            "hidden_sha256": self.hidden_sha256,
            "limits": asdict(self.limits),
            "unprivileged": self.unprivileged,
            "notebook": str(notebook),
        })

    def grade_one(self, notebook: Path, student: str) -> dict:
        """Grade one submission in a worker; always returns a results dict."""
        folder = self.out / student
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "grader.log"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        tests: list[dict] = []
        result = None
        error = None
        slack = 120.0
        with open(log, "w") as log_handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dlcourse.grading.runner", self._job(notebook)],
                stdout=subprocess.PIPE, stderr=log_handle, stdin=subprocess.DEVNULL,
                text=True, env=env, start_new_session=True)
            timer = threading.Timer(self.limits.notebook_timeout + slack, proc.kill)
            timer.start()
            try:
                for line in proc.stdout:
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if event.get("event") == "test":
                        tests.append(event["test"])
                    elif event.get("event") == "done":
                        result = event["result"]
                    elif event.get("event") == "grader_error":
                        error = event["message"]
                proc.wait()
            finally:
                timer.cancel()
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, 9)
        if error is not None:
            with self._lock:
                self.grader_errors.append(f"{student}: {error}")
            result = failure_result(self.exercise, notebook, tests,
                                    f"grader error (not your fault): {error}")
        elif result is None:
            reason = (f"the grader's worker stopped (exit status {proc.returncode}); "
                      f"see {log}")
            with self._lock:
                self.grader_errors.append(f"{student}: {reason}")
            result = failure_result(self.exercise, notebook, tests, reason)
        result.setdefault("extra_data", {})["student"] = student
        write_json(folder / "results.json", result)
        return result

    def run(self, notebooks: list[Path]) -> dict[str, dict]:
        """Grade all notebooks; return ``{student: results}``."""
        ids = student_ids(notebooks)
        results: dict[str, dict] = {}
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(notebooks), desc=f"grading {self.exercise.name}", unit="nb",
                       file=sys.stderr, dynamic_ncols=True)
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(self.grade_one, nb, ids[nb]): ids[nb] for nb in notebooks}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        if self.exercise.bundle_sha256() != self.hidden_sha256:
            self.grader_errors.append("the hidden tests changed during grading: regrade")
        return results


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def _row(student: str, result: dict) -> dict:
    extra = result.get("extra_data", {})
    score, max_score = result.get("score", 0.0), result.get("max_score", 0.0)
    row = {
        "student": student,
        "notebook": extra.get("notebook", ""),
        "score": f"{score:g}",
        "max_score": f"{max_score:g}",
        "percent": f"{100 * score / max_score:.1f}" if max_score else "0.0",
        "status": extra.get("status", ""),
        "notes": " | ".join(extra.get("notes", [])),
        "notebook_sha256": extra.get("notebook_sha256", ""),
    }
    for test in result.get("tests", []):
        row[test["name"]] = f"{test['score']:g}"
    return row


def write_csv(path: Path, results: dict[str, dict]) -> None:
    """Write or update ``grades.csv``: rows of students graded now replace their old rows."""
    rows: dict[str, dict] = {}
    columns: list[str] = list(CSV_FIXED)
    if path.is_file():
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                rows[row["student"]] = row
            for name in reader.fieldnames or []:
                if name not in columns:
                    columns.append(name)
    for student, result in results.items():
        rows[student] = _row(student, result)
        for name in rows[student]:
            if name not in columns:
                columns.append(name)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for student in sorted(rows):
            writer.writerow(rows[student])
    os.replace(tmp, path)


def summary(exercise: Exercise, results: dict[str, dict], errors: list[str]) -> str:
    """A readable summary of a batch."""
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
    if unconfined:
        lines.append(f"WARNING: {len(unconfined)} kernel(s) ran without Landlock and as the "
                     "grader's own user (weaker sandbox; see dlcourse.grading's docstring)")
    if errors:
        lines.append("GRADER ERRORS (not the students' fault):")
        lines.extend(f"  {e}" for e in errors)
    return "\n".join(lines)


def resolve_isolation(mode: str) -> tuple[bool, str | None]:
    """Decide whether kernels run as an unprivileged user; return (flag, warning)."""
    if mode == "none":
        return False, None
    problem = probe_unprivileged()
    if problem is None:
        return True, None
    if mode == "user":
        raise GraderError(f"--isolation user: {problem}")
    if os.geteuid() == 0:
        return False, (f"WARNING: kernels run as root because {problem}; make the Python "
                       "installation readable by other users to get the unprivileged sandbox")
    return False, None


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
        unprivileged, warning = resolve_isolation(args.isolation)
        if warning:
            print(warning, file=sys.stderr)
        args.out.mkdir(parents=True, exist_ok=True)
        batch = Batch(exercise, limits, out=args.out, jobs=args.jobs,
                      unprivileged=unprivileged, progress=not args.no_progress)
        results = batch.run(notebooks)
        write_csv(args.out / "grades.csv", results)
        if args.results_json:
            write_json(args.results_json, next(iter(results.values())))
    except GraderError as exc:
        print(f"dlcourse grade: error: {exc}", file=sys.stderr)
        return 2
    print(summary(exercise, results, batch.grader_errors))
    print(f"results in {args.out}/ (grades.csv, <student>/results.json)")
    return 1 if batch.grader_errors else 0
