"""``dlcourse release``: the student bundle and the Gradescope autograder zips.

* ``dlcourse-student.zip``: the student notebooks (generated from the
  solutions exactly as ``dlcourse assign`` writes them), the ``dlcourse``
  package (reference code and public self-checks) and install files. No
  solution notebook and no hidden test goes in; ``tests/test_grading*.py``
  opens the zip and checks.
* ``autograder-NAME.zip`` per exercise: Gradescope's ``setup.sh`` and
  ``run_autograder`` (which calls ``dlcourse grade`` on the submission), the
  package, and that exercise's hidden tests.
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
       python -m pip install -r requirements/requirements.txt
       python -m pip install -e .
2. Open exercises/NAME.ipynb in Jupyter, fill in the cells that raise
   NotImplementedError, and run the public self-checks (check("q1"), ...).
   Passing them is a good sign, not a grade: hidden tests decide the score.
3. Submit the notebook file (.ipynb) itself.
"""

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
cd /autograder/source
python3 -m pip install --quiet -r requirements/requirements.txt
python3 -m pip install --quiet --no-deps .
python3 -m ipykernel install --name python3 >/dev/null
# Only root (the grader) may read the hidden tests and the exercise notebook.
chmod -R go-rwx /autograder/source/tests /autograder/source/exercises
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission; it writes /autograder/results/results.json.
set -uo pipefail
cd /autograder/source
chmod -R go-rwx /autograder/source/tests /autograder/source/exercises
shopt -s nullglob
notebooks=(/autograder/submission/{name}.ipynb)
[ ${{#notebooks[@]}} -eq 0 ] && notebooks=(/autograder/submission/*.ipynb)
if [ ${{#notebooks[@]}} -eq 0 ]; then
  echo '{{"score": 0, "output": "No .ipynb file was submitted.", "tests": []}}' \\
    > /autograder/results/results.json
  exit 0
fi
dlcourse grade "${{notebooks[0]}}" --exercise {name} --root /autograder/source \\
  --out /autograder/results/dlcourse --results-json /autograder/results/results.json \\
  --no-progress --isolation auto
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
    for name in ("pyproject.toml", "requirements/requirements.txt",
                 "requirements/constraints.txt"):
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
        _write(zf, "README.txt", STUDENT_README)
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
            _write(zf, "run_autograder", RUN_AUTOGRADER.format(name=name), 0o755)
            _write(zf, f"exercises/{name}.ipynb", text)
            for arcname, path in _package_files() + _project_files(root):
                _write(zf, arcname, path.read_bytes())
            for path in sorted(hidden.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    rel = path.relative_to(root).as_posix()
                    _write(zf, rel, path.read_bytes())
        written.append(target)
    return written
