"""Sub-commands ``dlcourse grade``, ``assign``, ``release`` and ``new-exercise``.

Heavy imports (jupyter_client, pytest) happen inside the handlers so that
``dlcourse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlcourse.grading.sandbox import WORKER_MEMORY_MB, Limits

GRADE_DESCRIPTION = """\
Grade notebooks (files or folders of .ipynb) against the hidden tests of one
exercise. Each submission runs in its own sandboxed kernel. Writes
OUT/<student>/results.json (Gradescope format) and OUT/grades.csv (one row per
student, with the exercise and the SHA-256 of the notebook and of the hidden
tests), and prints a summary. One results folder holds one exercise.

student ids:
  A notebook's id is its path below the submissions root, without .ipynb,
  folders joined by "__": with root subs/, subs/alice/ex1.ipynb is alice__ex1
  and subs/carol.ipynb is carol. The root is --submissions-root if given; else
  the root remembered in OUT/batch.json from the first grading into OUT (if
  the notebooks lie below it); else the folder named on the command line
  (several: their common folder; a notebook file: its own folder). So after
  `dlcourse grade subs/ --out OUT`, `dlcourse grade subs/alice/ex1.ipynb --out
  OUT` regrades alice__ex1 alone and replaces just that row of grades.csv.

exit status:
  0  every submission was graded (whatever its score)
  1  the grader failed on some or all submissions (a worker crashed or hung,
     the hidden tests could not be collected or changed during grading): they
     are listed under GRADER ERRORS; their results.json and CSV row say
     "grading failed" and list every hidden test with its points, 0 earned
     for what did not run, with the reason
  2  it could not grade at all (bad arguments, unknown exercise, no hidden
     tests, the kernel's Python cannot import dlcourse or the sandbox cannot
     read it, ...): nothing is written

sandbox:
  Each kernel runs in bubblewrap (bwrap) where it works: own PID, network, IPC
  and mount namespaces, no capabilities, a leased unprivileged uid as root,
  Landlock inside; else in the builtin launcher (Landlock, and the uid switch
  where an unprivileged user can run the kernel's Python). The summary says
  which sandbox ran and which of its promises do not hold; so does the end of
  this help, for this machine. Workers start isolated (python -I) from /, so
  the folder you grade from never changes which dlcourse the kernels import.
"""


class _GradeHelp(argparse.RawDescriptionHelpFormatter):
    """Ends ``dlcourse grade --help`` with what the sandbox guarantees on this machine
    (probed only when the help is shown)."""

    def format_help(self) -> str:
        from dlcourse.grading.probe import machine_report

        return super().format_help() + "\n" + machine_report() + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Attach the grading sub-commands to the ``dlcourse`` parser."""
    grade = subparsers.add_parser(
        "grade",
        help="grade submitted notebooks against an exercise's hidden tests",
        description=GRADE_DESCRIPTION,
        formatter_class=_GradeHelp,
    )
    grade.add_argument("submissions", nargs="+", type=Path, help="notebooks or folders")
    grade.add_argument("--exercise", required=True, help="exercise name, e.g. 01_dropout_from_scratch")
    grade.add_argument("--out", type=Path, default=Path("grading-out"),
                       help="results folder (default: grading-out)")
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: 1)")
    grade.add_argument("--timeout", type=float, default=None,
                       help=f"seconds per cell and per call (default {Limits.cell_timeout:g}, or the "
                            "exercise's grading.json)")
    grade.add_argument("--notebook-timeout", type=float, default=None,
                       help=f"seconds per notebook, all cells and tests together (default "
                            f"{Limits.notebook_timeout:g})")
    grade.add_argument("--memory-mb", type=int, default=None,
                       help=f"memory limit of each kernel in MiB (default {Limits.memory_mb})")
    grade.add_argument("--isolation", choices=("auto", "user", "none"), default="auto",
                       help="'user': run kernels as an unprivileged user (needs root; fails if it "
                            "cannot); 'auto' (default): do so when possible, warn otherwise; "
                            "'none': run kernels as the current user")
    grade.add_argument("--sandbox", choices=("auto", "bwrap", "builtin"), default="auto",
                       help="'bwrap': run kernels in bubblewrap (fails if it does not work here); "
                            "'builtin': the launcher's own Landlock rules and uid switch; "
                            "'auto' (default): bubblewrap when it works, else builtin")
    grade.add_argument("--worker-memory-mb", type=int, default=None,
                       help=f"memory limit of each grader worker in MiB (default {WORKER_MEMORY_MB})")
    grade.add_argument("--root", type=Path, default=None,
                       help="course folder holding tests/hidden/ and exercises/ (default: found "
                            "from the current folder)")
    grade.add_argument("--submissions-root", type=Path, default=None,
                       help="folder that student ids are relative to (see STUDENT IDS); "
                            "remembered in OUT/batch.json")
    grade.add_argument("--results-json", type=Path, default=None,
                       help="also write the single submission's results.json here (Gradescope)")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar")
    grade.set_defaults(handler=_grade)

    assign = subparsers.add_parser(
        "assign",
        help="write exercises/NAME.ipynb from solutions/NAME.ipynb",
        description="Generate the student notebooks from the solution notebooks.",
    )
    assign.add_argument("names", nargs="*", help="exercises (default: all)")
    assign.add_argument("--solutions", type=Path, default=Path("solutions"))
    assign.add_argument("--exercises", type=Path, default=Path("exercises"))
    assign.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a student notebook is out of date")
    assign.set_defaults(handler=_assign)

    release = subparsers.add_parser(
        "release",
        help="build the student bundle and the Gradescope autograder zips",
        description=(
            "Build OUT/dlcourse-student.zip (exercise notebooks, public checks and the "
            "dlcourse package; no solutions, no hidden tests) and one Gradescope "
            "autograder zip per exercise, OUT/autograder-NAME.zip."
        ),
    )
    release.add_argument("names", nargs="*", help="exercises (default: all)")
    release.add_argument("--out", type=Path, default=Path("dist"))
    release.add_argument("--root", type=Path, default=Path("."))
    release.set_defaults(handler=_release)

    scaffold = subparsers.add_parser(
        "new-exercise",
        help="scaffold a new exercise (solution, public checks, hidden tests, table of contents)",
        description=(
            "Write solutions/NAME.ipynb (with a worked example question), exercises/NAME.ipynb, "
            "dlcourse/grading/public_checks/NAME.py, tests/hidden/NAME/ (a hidden test and "
            "grading.json) and list the exercise in _toc.yml. Then edit them; see the "
            "instructors' guide (book/instructors.md)."
        ),
    )
    scaffold.add_argument("name", help="NN_words, e.g. 06_dropconnect")
    scaffold.add_argument("--title", default=None, help="the notebook's title")
    scaffold.add_argument("--requires", action="append", default=[], metavar="FRAMEWORK",
                          help="a framework grading needs: torch or keras (repeatable)")
    scaffold.add_argument("--root", type=Path, default=Path("."))
    scaffold.set_defaults(handler=_new_exercise)


def _error(command: str, exc: Exception) -> int:
    """A user's mistake: one line on stderr, exit status 2 (as `dlcourse grade`)."""
    print(f"dlcourse {command}: error: {exc}", file=sys.stderr)
    return 2


def _assign(args: argparse.Namespace) -> int:
    from dlcourse.grading.assign import assign

    try:
        changed = assign(args.names, solutions_dir=args.solutions, exercises_dir=args.exercises,
                         check=args.check)
    except (OSError, ValueError) as exc:  # MarkupError is a ValueError
        return _error("assign", exc)
    if args.check:
        if changed:
            print("out of date (run `dlcourse assign`): " + ", ".join(changed), file=sys.stderr)
            return 1
        print("exercises/ is up to date")
        return 0
    print("wrote: " + (", ".join(changed) if changed else "nothing (already up to date)"))
    return 0


def _grade(args: argparse.Namespace) -> int:
    from dlcourse.grading.batch import grade_command

    return grade_command(args)


def _release(args: argparse.Namespace) -> int:
    from dlcourse.grading.release import release

    try:
        paths = release(root=args.root, out=args.out, names=args.names)
    except (OSError, ValueError) as exc:
        return _error("release", exc)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _new_exercise(args: argparse.Namespace) -> int:
    from dlcourse.grading.scaffold import new_exercise

    try:
        paths = new_exercise(args.name, args.root, title=args.title, requires=args.requires)
    except (OSError, ValueError) as exc:
        return _error("new-exercise", exc)
    for path in paths:
        print(f"wrote {path}")
    print(f"next: write the question in {paths[0]}, run `dlcourse assign {args.name}`, and "
          f"grade the solution: dlcourse grade {paths[0]} --exercise {args.name}")
    return 0
