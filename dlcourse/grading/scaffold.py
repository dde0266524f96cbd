"""``dlcourse new-exercise NAME``: the files a new exercise needs, in the four places.

1. ``solutions/NAME.ipynb``: the notebook (title, setup cell, the ``EXERCISE``
   cell, one question with a marked answer and its ``check("q1")`` cell);
   ``exercises/NAME.ipynb`` is generated from it (``dlcourse assign``);
2. ``dlcourse/grading/public_checks/NAME.py``: the public self-checks;
3. ``tests/hidden/NAME/``: the hidden tests and ``grading.json`` (what grading
   needs: ``requires``);
4. ``_toc.yml``: the exercise listed on the website.

The tests find exercises from ``solutions/`` (``tests/test_exercises.py``), so
nothing else needs registering. Every generated file is a working example: the
solution earns full marks, the blank exercise zero.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from dlcourse.grading.assign import ANSWER, CODE_BEGIN, CODE_END, KERNELSPEC, assign
from dlcourse.grading.frameworks import FRAMEWORKS

NAME_PATTERN = re.compile(r"^[0-9]{2}_[a-z][a-z0-9_]*$")
SETUP_TAG = "dlcourse-setup"

PUBLIC_CHECKS = '''\
"""Public self-checks of exercise {name} (weaker than the hidden tests)."""

from __future__ import annotations

import numpy as np

from dlcourse.grading.public_checks import attempt, need


def _double(ns):
    """double(x) returns twice its input, with its shape"""
    double = need(ns, "double")
    x = np.arange(6.0).reshape(2, 3)
    out = np.asarray(attempt(double, x, what="double(x)"))
    assert out.shape == x.shape, f"double(x) should have the shape of x {{x.shape}}; it has {{out.shape}}."
    assert np.allclose(out, 2 * x), "double(x) should be 2 * x."


CHECKS = {{
    "q1": [_double],
}}
'''

HIDDEN_TESTS = '''\
"""Hidden tests of exercise {name}: graded by properties, one fault per test."""

from __future__ import annotations

import numpy as np

from dlcourse.grading import points


@points(1)
def test_doubles(submission):
    """double(x) returns 2 * x"""
    x = np.random.default_rng(0).normal(size=(4, 5))
    assert np.allclose(np.asarray(submission.call("double", x)), 2 * x), "double(x) is not 2 * x"


@points(1)
def test_keeps_dtype(submission):
    """double keeps float32 as float32"""
    x = np.ones((3,), dtype=np.float32)
    out = np.asarray(submission.call("double", x))
    assert out.dtype == np.float32, f"float32 in should give float32 out; got {{out.dtype}}"
'''

ANSWER_CODE = f'''def double(x):
    """Return 2 * x (same shape and dtype)."""
    {CODE_BEGIN}
    return x * 2
    {CODE_END}'''


def _solution_notebook(name: str, title: str, setup_source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    setup = code(setup_source, metadata={"tags": [SETUP_TAG, "hide-input"]})
    answer = code(ANSWER_CODE, metadata={"tags": [ANSWER]})
    nb.cells = [
        md(f"# {title}\n\nWhat this exercise is about, and what the student will practise."),
        setup,
        code(f'EXERCISE = "{name}"  # tells check() which public checks to run\n\n'
             "import numpy as np\n\nfrom dlcourse.grading import check"),
        md("## Q1 — Double it (2 points)\n\nWrite `double(x)` that returns `2 * x`."),
        answer,
        code('check("q1")'),
    ]
    for index, cell in enumerate(nb.cells):
        cell.id = SETUP_TAG if cell is setup else f"c{index:02d}"
    return nb


def _add_to_toc(toc: Path, name: str) -> bool:
    """List ``exercises/NAME`` after the last exercise of ``_toc.yml``; False if no place."""
    lines = toc.read_text(encoding="utf-8").splitlines(keepends=True)
    entry = f"exercises/{name}"
    if any(line.strip() == f"- file: {entry}" for line in lines):
        return True
    last = max((i for i, line in enumerate(lines) if line.strip().startswith("- file: exercises/")),
               default=None)
    if last is None:
        return False
    indent = lines[last][: len(lines[last]) - len(lines[last].lstrip())]
    lines.insert(last + 1, f"{indent}- file: {entry}\n")
    toc.write_text("".join(lines), encoding="utf-8")
    return True


def new_exercise(name: str, root: Path | str = ".", *, title: str | None = None,
                 requires: list[str] | None = None,
                 package_dir: Path | str | None = None) -> list[Path]:
    """Scaffold exercise ``name`` under the course folder ``root``.

    Args:
        name: ``NN_words`` (two digits, lower-case words joined by ``_``), e.g.
            ``06_dropconnect``: it is the notebook stem and the module name of the
            public checks.
        root: The course folder (``solutions/``, ``tests/hidden/``, ``_toc.yml``).
        title: The notebook's title (default: from the name).
        requires: Frameworks the exercise's grading needs (keys of
            :data:`dlcourse.grading.frameworks.FRAMEWORKS`).
        package_dir: Where the ``dlcourse`` package's source lies (default:
            ``root/dlcourse``).

    Returns:
        The files written (``_toc.yml`` included when it was changed).

    Raises:
        ValueError: For a bad name, an unknown framework, a root that is not a
            course folder, or an exercise that already exists (nothing is written).
    """
    root = Path(root)
    if not NAME_PATTERN.match(name):
        raise ValueError(f"name must look like 06_dropconnect (two digits, then lower-case "
                         f"words joined by _); received name={name!r}")
    requires = sorted(set(requires or []))
    unknown = [r for r in requires if r not in FRAMEWORKS]
    if unknown:
        raise ValueError(f"requires must be among {sorted(FRAMEWORKS)}; received {unknown}")
    package = Path(package_dir) if package_dir else root / "dlcourse"
    if not (root / "solutions").is_dir() or not (package / "grading" / "public_checks").is_dir():
        raise ValueError(f"root must be the course folder (with solutions/ and "
                         f"dlcourse/grading/public_checks/); received root={str(root)!r}")
    solution = root / "solutions" / f"{name}.ipynb"
    checks = package / "grading" / "public_checks" / f"{name}.py"
    hidden = root / "tests" / "hidden" / name
    existing = [str(p) for p in (solution, checks, hidden) if p.exists()]
    if existing:
        raise ValueError(f"exercise {name!r} already exists: {', '.join(existing)}")

    from dlcourse.grading.setup_cell import setup_source

    title = title or f"Exercise {int(name[:2])} — {name[3:].replace('_', ' ').capitalize()}"
    nb = _solution_notebook(name, title, setup_source(requires, root=root))
    solution.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    checks.write_text(PUBLIC_CHECKS.format(name=name), encoding="utf-8")
    hidden.mkdir(parents=True)
    short = name[3:]
    (hidden / f"test_{short}.py").write_text(HIDDEN_TESTS.format(name=name), encoding="utf-8")
    (hidden / "grading.json").write_text(
        '{\n  "requires": [' + ", ".join(f'"{r}"' for r in requires) + "],\n"
        '  "blocked": [],\n  "cell_timeout": 60\n}\n', encoding="utf-8")
    assign([name], solutions_dir=root / "solutions", exercises_dir=root / "exercises")
    written = [solution, root / "exercises" / f"{name}.ipynb", checks,
               hidden / f"test_{short}.py", hidden / "grading.json"]
    toc = root / "_toc.yml"
    if toc.is_file() and _add_to_toc(toc, name):
        written.append(toc)
    return written
