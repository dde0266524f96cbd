"""``dlcourse release``: the student bundle and the Gradescope autograder zips.

* ``dlcourse-student.zip``: the student notebooks (generated from the
  solutions exactly as ``dlcourse assign`` writes them), the ``dlcourse``
  package (reference code and public self-checks) and install files. No
  solution notebook and no hidden test goes in; ``tests/test_grading*.py``
  opens the zip and checks.
* ``autograder-NAME.zip`` per exercise: Gradescope's ``setup.sh`` (installs
  the requirements, torch from PyTorch's CPU index, and the package) and
  ``run_autograder`` (calls ``dlcourse grade`` on the submission and always
  writes ``results/results.json``, a failure with a message when the grader
  could not grade), the package with what ``pip install .`` needs, and that
  exercise's hidden tests.

Both zips hold ``pyproject.toml`` and the ``README.md`` it names, so
``pip install .`` works from either; ``tests/test_grading*.py`` builds a wheel
from each and runs ``run_autograder`` in a fake ``/autograder``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import nbformat

import dlcourse
from dlcourse.grading.assign import exercise_names, render, student_notebook

PACKAGE_DIR = Path(dlcourse.__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
_STAMP = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same zip

STUDENT_README = """\
dlcourse exercises
==================

1. Install the companion package (Python 3.11+):
       python -m pip install --extra-index-url https://download.pytorch.org/whl/cpu \\
           -r requirements/requirements.txt
       python -m pip install -e .
2. Open exercises/NAME.ipynb in Jupyter, fill in the cells that raise
   NotImplementedError, and run the public self-checks (check("q1"), ...).
   Passing them is a good sign, not a grade: hidden tests decide the score.
3. Submit the notebook file (.ipynb) itself.
"""

AUTOGRADER_README = """\
dlcourse autograder
===================

Gradescope runs setup.sh once (building the image) and run_autograder for
each submission; both take the autograder folder from AUTOGRADER_ROOT
(default /autograder) and run_autograder the Python from DLCOURSE_PYTHON
(default python3), so they can be tried outside Gradescope.
"""

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (as root).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "dlcourse needs Python 3.11+ (python3 is $(python3 -V 2>&1)):" \\
       "choose a Gradescope base image whose python3 is 3.11 or newer" >&2
  exit 1
fi
# The image is the grader's own: pip may install into the system Python (PEP 668).
export PIP_BREAK_SYSTEM_PACKAGES=1
# PyTorch's CPU wheels: on Linux, PyPI's torch pulls several GB of CUDA libraries.
python3 -m pip install --quiet --extra-index-url https://download.pytorch.org/whl/cpu \\
    -r requirements/requirements.txt
python3 -m pip install --quiet --no-deps .
python3 -m ipykernel install --name python3 >/dev/null
# Only root (the grader) may read the hidden tests and the exercise notebook.
chmod -R go-rwx "$ROOT/source/tests" "$ROOT/source/exercises"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. It always writes results/results.json:
# the grade, or, when the grader could not grade, a failure that says so.
# AUTOGRADER_ROOT (default /autograder) and DLCOURSE_PYTHON (default python3) let it
# run outside Gradescope.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${DLCOURSE_PYTHON:-python3}"
RESULTS="$ROOT/results/results.json"
LOG="$ROOT/results/dlcourse-grade.log"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
chmod -R go-rwx "$ROOT/source/tests" "$ROOT/source/exercises"

# fail MESSAGE: a results.json with score 0 and MESSAGE for the student; the grader's
# log goes to stdout, which Gradescope shows to instructors only.
fail() {
  cat "$LOG" 2>/dev/null
  MESSAGE="$1" "$PYTHON" -c 'import json, os, sys
json.dump({"score": 0.0, "output": os.environ["MESSAGE"], "visibility": "visible",
           "stdout_visibility": "hidden", "tests": [],
           "extra_data": {"status": "grading failed"}}, open(sys.argv[1], "w"), indent=2)' \\
    "$RESULTS" 2>/dev/null \\
  || printf '{"score": 0.0, "output": "The autograder failed (not your fault): please tell your instructor.", "tests": []}\\n' > "$RESULTS"
}

shopt -s nullglob
notebooks=("$ROOT/submission/@EXERCISE@.ipynb")
[ -f "${notebooks[0]}" ] || notebooks=("$ROOT"/submission/*.ipynb)
if [ ${#notebooks[@]} -eq 0 ]; then
  echo '{"score": 0, "output": "No .ipynb file was submitted.", "tests": []}' > "$RESULTS"
  exit 0
fi
cd "$ROOT"  # not source/: the grader and the kernel import the installed dlcourse
"$PYTHON" -m dlcourse grade "${notebooks[0]}" --exercise @EXERCISE@ --root "$ROOT/source" \\
  --out "$ROOT/results/dlcourse" --results-json "$RESULTS" --no-progress --isolation auto \\
  >"$LOG" 2>&1
status=$?
if [ ! -s "$RESULTS" ]; then
  fail "The autograder could not grade this submission (dlcourse grade exit status $status). This is not your fault: please tell your instructor."
  exit 0
fi
cat "$LOG"
exit 0
"""


def _write(zf: zipfile.ZipFile, name: str, data: bytes | str, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=_STAMP)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def _package_files() -> list[tuple[str, Path]]:
    files = []
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((f"dlcourse/{path.relative_to(PACKAGE_DIR).as_posix()}", path))
    return files


def _project_files(root: Path) -> list[tuple[str, Path]]:
    files = []
    for name in ("pyproject.toml", "LICENSE", "requirements/requirements.txt",
                 "requirements/constraints.txt"):  # LICENSE: pyproject's license-files
        for base in (root, REPO_DIR):
            if (base / name).is_file():
                files.append((name, base / name))
                break
    return files


def _student_notebooks(root: Path) -> dict[str, str]:
    solutions = root / "solutions"
    return {name: render(student_notebook(nbformat.read(solutions / f"{name}.ipynb", 4), name))
            for name in exercise_names(solutions)}


def release(root: Path | str = ".", out: Path | str = "dist") -> list[Path]:
    """Build the student bundle and one autograder zip per exercise with hidden tests.

    Args:
        root: The course folder (``solutions/``, ``tests/hidden/``).
        out: Where the zips are written.

    Returns:
        The paths written.
    """
    root, out = Path(root).resolve(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notebooks = _student_notebooks(root)
    if not notebooks:
        raise ValueError(f"no solution notebooks in {root / 'solutions'}")
    written = []
    student = out / "dlcourse-student.zip"
    with zipfile.ZipFile(student, "w") as zf:
        _write(zf, "README.md", STUDENT_README)  # also pyproject.toml's readme
        for name, text in notebooks.items():
            _write(zf, f"exercises/{name}.ipynb", text)
        for arcname, path in _package_files() + _project_files(root):
            _write(zf, arcname, path.read_bytes())
    written.append(student)
    for name, text in notebooks.items():
        hidden = root / "tests" / "hidden" / name
        if not hidden.is_dir():
            continue
        target = out / f"autograder-{name}.zip"
        with zipfile.ZipFile(target, "w") as zf:
            _write(zf, "setup.sh", SETUP_SH, 0o755)
            _write(zf, "run_autograder", RUN_AUTOGRADER.replace("@EXERCISE@", name), 0o755)
            _write(zf, "README.md", AUTOGRADER_README)  # pyproject.toml's readme
            _write(zf, f"exercises/{name}.ipynb", text)
            for arcname, path in _package_files() + _project_files(root):
                _write(zf, arcname, path.read_bytes())
            for path in sorted(hidden.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    rel = path.relative_to(root).as_posix()
                    _write(zf, rel, path.read_bytes())
        written.append(target)
    return written
