"""Grading throughput: `dlcourse grade` beside `otter run`, exercise 1.

    .venv/bin/python benchmarks/grading_throughput.py [--students 30] [--jobs 2]

Grades one notebook, then a class of ``--students`` copies of
``solutions/01_dropout_from_scratch.ipynb`` with ``--jobs`` parallel
submissions, and reports seconds per notebook (wall clock). Beside it, the
same notebooks go through ``otter run`` (otter-grader, installed only in
``benchmarks/.venv-otter``, never in ``.venv``), ``--jobs`` runs at a time,
with **the same checks**: one OK-format test per hidden test of
``tests/hidden/01_dropout_from_scratch`` (same names, same points), whose body
runs that very hidden test inside the student's kernel, in otter's way,
through ``benchmarks/otter_adapter/hidden_in_kernel.py`` (the in-process
stand-in for dlcourse's submission proxy that the mutation suites use, with
the same codec round trip). ``otter run`` grades one submission per call (``otter grade`` needs
Docker), so the class is graded by calling it once per notebook.

Set up otter first (from the repo root):

    python3 -m venv benchmarks/.venv-otter
    benchmarks/.venv-otter/bin/pip install otter-grader numpy

If that environment is missing, the otter column is reported as not run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXERCISE = "01_dropout_from_scratch"
OTTER_VENV = ROOT / "benchmarks" / ".venv-otter"

HIDDEN = ROOT / "tests" / "hidden" / EXERCISE
ADAPTER = ROOT / "benchmarks" / "otter_adapter"


def hidden_tests() -> list[tuple[str, int]]:
    """(name, points) of every hidden test of the exercise, read from its source."""
    found = []
    for path in sorted(HIDDEN.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                pts = [d.args[0].value for d in node.decorator_list
                       if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "points"]
                found.append((node.name, pts[0] if pts else 1))
    return found


def _ok_test(name: str, points: int) -> str:
    """An OK-format test that runs the hidden test ``name`` in the student's namespace."""
    code = (">>> from hidden_in_kernel import run_hidden\n"
            f">>> run_hidden(globals(), {name!r})\nTrue\n")
    test = {"name": name, "points": points, "suites": [{
        "cases": [{"code": code, "hidden": False, "locked": False}],
        "scored": True, "setup": "", "teardown": "", "type": "doctest"}]}
    return f"OK_FORMAT = True\n\ntest = {test!r}\n"


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def make_class(folder: Path, students: int) -> list[Path]:
    source = ROOT / "solutions" / f"{EXERCISE}.ipynb"
    paths = []
    for i in range(1, students + 1):
        path = folder / f"student{i:02d}.ipynb"
        shutil.copy(source, path)
        paths.append(path)
    return paths


def bench_dlcourse(notebooks: list[Path], jobs: int, work: Path) -> dict:
    dlcourse = [sys.executable, "-m", "dlcourse", "grade", "--exercise", EXERCISE,
                "--no-progress"]
    start = time.perf_counter()
    one = _run([*dlcourse, str(notebooks[0]), "--out", str(work / "one")], cwd=ROOT)
    single = time.perf_counter() - start
    if one.returncode != 0:
        raise RuntimeError(one.stderr[-3000:])
    start = time.perf_counter()
    batch = _run([*dlcourse, str(notebooks[0].parent), "--out", str(work / "class"),
                  "--jobs", str(jobs)], cwd=ROOT)
    total = time.perf_counter() - start
    if batch.returncode != 0:
        raise RuntimeError(batch.stderr[-3000:])
    scores = [json.loads((work / "class" / nb.stem / "results.json").read_text())["score"]
              for nb in notebooks]
    return {"single_s": single, "class_total_s": total, "class_per_notebook_s":
            total / len(notebooks), "scores": sorted(set(scores))}


def bench_otter(notebooks: list[Path], jobs: int, work: Path) -> dict:
    otter = OTTER_VENV / "bin" / "otter"
    if not otter.exists():
        return {"skipped": f"{otter} not installed"}
    tests = work / "otter" / "tests"
    tests.mkdir(parents=True)
    for name, points in hidden_tests():
        (tests / f"{name}.py").write_text(_ok_test(name, points))
    (work / "otter" / "requirements.txt").write_text("")
    # the notebook imports dlcourse; the tests import the adapter and read the hidden tests
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, (ROOT, ROOT / "tests", ADAPTER))),
               DLCOURSE_BENCH_EXERCISE=EXERCISE)
    gen = _run([str(otter), "generate", "-t", "tests", "-r", "requirements.txt",
                "-o", str(work / "otter" / "autograder.zip")], cwd=work / "otter", env=env)
    zipped = work / "otter" / "autograder.zip"
    if gen.returncode != 0 or not zipped.exists():
        return {"skipped": f"otter generate failed: {(gen.stderr or gen.stdout)[-1500:]}"}

    def run_one(nb: Path, tag: str = "class") -> tuple[float, float | None, str]:
        out = work / "otter" / "runs" / f"{tag}-{nb.stem}"
        out.mkdir(parents=True)
        start = time.perf_counter()
        proc = _run([str(otter), "run", "-a", str(zipped), "-o", str(out), "--no-logo",
                     str(nb)], env=env, cwd=out)
        elapsed = time.perf_counter() - start
        results = out / "results.json"
        score = None
        if results.exists():
            data = json.loads(results.read_text())
            score = data.get("score")
            if score is None:  # otter leaves the total out; Gradescope adds the tests up
                score = sum(t.get("score") or 0 for t in data.get("tests", []))
        return elapsed, score, (proc.stdout + proc.stderr)[-3000:]

    single, score, log = run_one(notebooks[0], "single")
    if score is None:
        return {"skipped": f"otter run produced no results.json: {log}"}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(run_one, _copies(notebooks, work)))
    total = time.perf_counter() - start
    return {"single_s": single, "class_total_s": total,
            "class_per_notebook_s": total / len(notebooks),
            "scores": sorted({r[1] for r in runs}, key=lambda s: (s is None, s))}


def _copies(notebooks: list[Path], work: Path) -> list[Path]:
    folder = work / "otter" / "class"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for nb in notebooks:
        target = folder / nb.name
        shutil.copy(nb, target)
        out.append(target)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        work = Path(tmp)
        (work / "class").mkdir()
        notebooks = make_class(work / "class", args.students)
        ours = bench_dlcourse(notebooks, args.jobs, work / "dl")
        print(f"dlcourse: {ours}", file=sys.stderr, flush=True)
        theirs = bench_otter(notebooks, args.jobs, work)
    report = {"exercise": EXERCISE, "students": args.students, "jobs": args.jobs,
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "dlcourse": ours, "otter": theirs}
    print(f"{EXERCISE}: {args.students} notebooks, --jobs {args.jobs}, {os.cpu_count()} CPUs")
    print(f"{'':<10}{'one notebook (s)':>18}{'class total (s)':>17}{'s / notebook':>14}  scores")
    for name, r in (("dlcourse", ours), ("otter", theirs)):
        if "skipped" in r:
            print(f"{name:<10}not run: {r['skipped']}")
            continue
        print(f"{name:<10}{r['single_s']:>18.2f}{r['class_total_s']:>17.1f}"
              f"{r['class_per_notebook_s']:>14.2f}  {r['scores']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
