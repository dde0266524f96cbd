"""``dlcourse release``: the student bundle and the Gradescope autograder zips.

* ``dlcourse-student.zip``: the student notebooks (generated from the
  solutions exactly as ``dlcourse assign`` writes them), the ``dlcourse``
  package (reference code and public self-checks) and
  ``requirements/student.txt``. No solution notebook and no hidden test goes
  in; ``tests/test_grading*.py`` opens the zip and checks.
* ``autograder-NAME.zip`` per exercise with hidden tests (``release`` warns
  about and skips one without): Gradescope's ``setup.sh`` and
  ``run_autograder``, the package with what ``pip install .`` needs, that
  exercise's hidden tests and ``requirements/autograder.txt``, what its grading
  needs: dlcourse's dependencies, pytest and the frameworks ``grading.json``
  declares (:mod:`dlcourse.grading.frameworks`), pinned by the lock. A
  NumPy-only exercise's image has neither torch nor TensorFlow, and no image
  has jupyter-book, ruff or hypothesis.

``setup.sh`` uses the image's ``python3`` if it is 3.11+, else installs Python
with ``apt-get`` (Gradescope's default base image, Ubuntu 22.04, has 3.10; a
bare Debian has none), makes a venv in ``/autograder/venv`` and installs
``autograder.txt`` and the package there. ``run_autograder`` calls ``dlcourse
grade`` on the submission with that venv's Python and always writes
``results/results.json`` (a failure with a message when the grader could not
grade). ``tests/test_release_image.py`` runs both in a clean Debian root made
with debootstrap; ``tests/test_grading*.py`` builds a wheel from each zip and
runs ``run_autograder`` in a fake ``/autograder``.
"""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path

import nbformat

import dlcourse
from dlcourse.grading.assign import exercise_names, render, student_notebook
from dlcourse.grading.frameworks import FRAMEWORKS, exercise_frameworks, pinned
from dlcourse.grading.results import fallback_json

PACKAGE_DIR = Path(dlcourse.__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
#: What ``run_autograder`` writes when not even ``dlcourse.grading.results`` can run.
FALLBACK_MESSAGE = "The autograder failed (not your fault): please tell your instructor."
_STAMP = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same zip

STUDENT_README = """\
dlcourse exercises
==================

1. Install the companion package, JupyterLab and the frameworks (Python 3.11+):
       python -m venv .venv
       .venv/bin/python -m pip install -r requirements/student.txt .
   (requirements/student.txt takes torch's CPU build from PyTorch's index.)
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
(default: the venv setup.sh makes in AUTOGRADER_ROOT/venv), so they can be
tried outside Gradescope. setup.sh needs Python 3.11+ and installs it with
apt-get where the image's python3 is older (Ubuntu 22.04); it installs only
requirements/autograder.txt, what this exercise's grading needs.
"""

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (as root). It needs
# Python 3.11+: it uses the image's python3 when it is recent enough, else installs one
# with apt-get (Ubuntu 22.04's python3 is 3.10: it gets python3.11 from the archive), makes
# a virtual environment in $ROOT/venv and installs there only what this exercise's grading
# needs (requirements/autograder.txt, pinned by requirements/constraints.txt).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
VENV="$ROOT/venv"
cd "$ROOT/source"
export DEBIAN_FRONTEND=noninteractive

python_ok() {  # python_ok CMD: CMD is Python 3.11+ and can make a venv with pip
  command -v "$1" >/dev/null 2>&1 && "$1" -c 'import sys, ensurepip, venv
sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}
find_python() {
  for candidate in python3 python3.13 python3.12 python3.11; do
    if python_ok "$candidate"; then command -v "$candidate"; return 0; fi
  done
  return 1
}
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null && APT_UPDATED=1; }
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! PYTHON=$(find_python); then
  echo "setup.sh: no Python 3.11+ with venv here ($(python3 -V 2>&1 || echo 'no python3'));" \
       "installing one with apt-get" >&2
  # The image's own python3 with its venv module (Debian 12: 3.11, Ubuntu 24.04: 3.12) ...
  if command -v python3 >/dev/null 2>&1; then
    ver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    apt_install "python$ver-venv" || true
  else
    apt_install python3 python3-venv || true
  fi
  # ... or, where that is too old (Ubuntu 22.04: 3.10), Python 3.11 from the archive.
  PYTHON=$(find_python) || { apt_install python3.11 python3.11-venv || true; }
  PYTHON=$(find_python) || {
    echo "setup.sh: could not install Python 3.11+ (python3 is $(python3 -V 2>&1));" \
         "choose a base image with Python 3.11 or newer (Ubuntu 22.04 or 24.04)" >&2
    exit 1
  }
  # What apt downloaded is not needed any more (about 200 MB of the image).
  apt-get clean && rm -rf /var/lib/apt/lists/*
fi
echo "setup.sh: using $PYTHON ($("$PYTHON" -V 2>&1))"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip>=24"
"$VENV/bin/python" -m pip install --quiet -r requirements/autograder.txt \
    -c requirements/constraints.txt
"$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation .
"$VENV/bin/python" -m pip cache purge >/dev/null 2>&1 || true
# Only root (the grader) may read the hidden tests and the exercise notebook.
chmod -R go-rwx "$ROOT/source/tests" "$ROOT/source/exercises"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. It always writes results/results.json:
# the grade, or, when the grader could not grade, a failure that says so.
# AUTOGRADER_ROOT (default /autograder) and DLCOURSE_PYTHON (default: the Python of the
# venv setup.sh made, else python3) let it run outside Gradescope.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${DLCOURSE_PYTHON:-$ROOT/venv/bin/python}"
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
RESULTS="$ROOT/results/results.json"
LOG="$ROOT/results/dlcourse-grade.log"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
chmod -R go-rwx "$ROOT/source/tests" "$ROOT/source/exercises"

# fail MESSAGE [STATUS]: a results.json with score 0 and MESSAGE for the student, written by
# dlcourse.grading.results (a fixed line where even that cannot run); the grader's log goes
# to stdout, which Gradescope shows to instructors only.
fail() {
  cat "$LOG" 2>/dev/null
  "$PYTHON" -I -m dlcourse.grading.results "$RESULTS" --exercise @EXERCISE@ --message "$1" \\
    --status "${2:-grading failed}" 2>/dev/null \\
  || printf '%s\\n' @FALLBACK@ > "$RESULTS"
}

shopt -s nullglob
notebooks=("$ROOT/submission/@EXERCISE@.ipynb")
[ -f "${notebooks[0]}" ] || notebooks=("$ROOT"/submission/*.ipynb)
if [ ${#notebooks[@]} -eq 0 ]; then
  fail "No .ipynb file was submitted." "not submitted"
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


def _project_file(root: Path, name: str) -> Path | None:
    for base in (root, REPO_DIR):
        if (base / name).is_file():
            return base / name
    return None


def _project_files(root: Path, names: tuple[str, ...]) -> list[tuple[str, Path]]:
    # LICENSE: pyproject's license-files; README.md is written per zip.
    return [(name, path) for name in ("pyproject.toml", "LICENSE", *names)
            if (path := _project_file(root, name)) is not None]


def autograder_requirements(root: Path | str, name: str) -> str:
    """``requirements/autograder.txt`` of exercise ``name``: what grading it needs, pinned.

    dlcourse's own dependencies (``pyproject.toml``), pytest (the hidden tests),
    setuptools (to install dlcourse) and the frameworks the exercise declares
    (:func:`dlcourse.grading.frameworks.exercise_frameworks`); versions from
    ``requirements/constraints.txt``. Never jupyter-book, ruff or hypothesis.
    """
    root = Path(root)
    constraints = _project_file(root, "requirements/constraints.txt")
    pyproject = _project_file(root, "pyproject.toml")
    if constraints is None or pyproject is None:
        raise ValueError(f"root must hold pyproject.toml and requirements/constraints.txt; "
                         f"received root={str(root)!r}")
    project = tomllib.loads(pyproject.read_text())["project"]
    names = [re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0]
             for dep in project.get("dependencies", [])]
    names += ["jupyter_client", "pytest", "setuptools"]
    frameworks = [FRAMEWORKS[f] for f in exercise_frameworks(root, name)]
    lines = [f"# What grading {name} needs (written by `dlcourse release`); frameworks: "
             f"{', '.join(f.name for f in frameworks) or 'none (NumPy only)'}."]
    lines += sorted({f"--extra-index-url {f.index_url}" for f in frameworks if f.index_url})
    lines += [pinned(dist, constraints) for dist in names]
    lines += [pinned(f.distribution, constraints) for f in frameworks]
    return "\n".join(lines) + "\n"


def _student_notebooks(root: Path) -> dict[str, str]:
    solutions = root / "solutions"
    return {name: render(student_notebook(nbformat.read(solutions / f"{name}.ipynb", 4), name))
            for name in exercise_names(solutions)}


def _warn(message: str) -> None:
    print(f"dlcourse release: warning: {message}", file=sys.stderr)


def release(root: Path | str = ".", out: Path | str = "dist", names: list[str] | None = None,
            *, warn: Callable[[str], None] = _warn) -> list[Path]:
    """Build the student bundle and one autograder zip per exercise with hidden tests.

    Args:
        root: The course folder (``solutions/``, ``tests/hidden/``).
        out: Where the zips are written.
        names: The exercises to release (default: every ``solutions/*.ipynb``).
        warn: Called with a message for each exercise skipped for want of
            hidden tests (default: printed on stderr).

    Returns:
        The paths written.

    Raises:
        ValueError: When ``root`` holds no solution notebook, a name is not an
            exercise (the message lists the valid ones), or an exercise's
            ``grading.json`` declares its frameworks wrongly.
    """
    root, out = Path(root).resolve(), Path(out)
    notebooks = _select(_student_notebooks(root), names, root)
    requirements = {}
    for name in notebooks:
        if (root / "tests" / "hidden" / name).is_dir():
            requirements[name] = autograder_requirements(root, name)
        else:
            warn(f"{name}: no hidden tests in {root / 'tests' / 'hidden' / name}, so no "
                 f"autograder-{name}.zip (only the student bundle has it)")
    out.mkdir(parents=True, exist_ok=True)
    written = [_student_zip(root, out / "dlcourse-student.zip", notebooks)]
    for name, reqs in requirements.items():
        written.append(_autograder_zip(root, out / f"autograder-{name}.zip", name,
                                       notebooks[name], reqs))
    return written


def _select(notebooks: dict[str, str], names: list[str] | None, root: Path) -> dict[str, str]:
    """The student notebooks of the exercises ``names`` (default: all)."""
    if not notebooks:
        raise ValueError(f"no solution notebooks in {root / 'solutions'} (is --root "
                         f"{str(root)!r} the course folder?)")
    if not names:
        return notebooks
    unknown = [n for n in names if n not in notebooks]
    if unknown:
        raise ValueError(f"unknown exercise {', '.join(map(repr, unknown))}; the exercises "
                         f"in {root / 'solutions'} are: {', '.join(notebooks)}")
    return {n: notebooks[n] for n in names}


def run_autograder(name: str) -> str:
    """Exercise ``name``'s Gradescope ``run_autograder`` script."""
    fallback = shlex.quote(fallback_json(FALLBACK_MESSAGE))
    return RUN_AUTOGRADER.replace("@EXERCISE@", name).replace("@FALLBACK@", fallback)


def _student_zip(root: Path, target: Path, notebooks: dict[str, str]) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        _write(zf, "README.md", STUDENT_README)  # also pyproject.toml's readme
        for name, text in notebooks.items():
            _write(zf, f"exercises/{name}.ipynb", text)
        for arcname, path in _package_files() + _project_files(
                root, ("requirements/student.txt", "requirements/constraints.txt")):
            _write(zf, arcname, path.read_bytes())
    return target


def _autograder_zip(root: Path, target: Path, name: str, notebook: str, reqs: str) -> Path:
    hidden = root / "tests" / "hidden" / name
    with zipfile.ZipFile(target, "w") as zf:
        _write(zf, "setup.sh", SETUP_SH, 0o755)
        _write(zf, "run_autograder", run_autograder(name), 0o755)
        _write(zf, "README.md", AUTOGRADER_README)  # pyproject.toml's readme
        _write(zf, "requirements/autograder.txt", reqs)
        _write(zf, f"exercises/{name}.ipynb", notebook)
        for arcname, path in _package_files() + _project_files(
                root, ("requirements/constraints.txt",)):
            _write(zf, arcname, path.read_bytes())
        for path in sorted(hidden.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                _write(zf, path.relative_to(root).as_posix(), path.read_bytes())
    return target
