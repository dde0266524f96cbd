"""``dlcourse assign``: write the student notebooks from the solution notebooks.

``solutions/NAME.ipynb`` is the single source; ``exercises/NAME.ipynb`` is
generated from it (the markup is described in :mod:`dlcourse.grading`).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from dlcourse.grading.exercise import ANSWER as ANSWER  # the tag scaffold writes

STUB_MESSAGE = "Write your answer here."
CODE_BEGIN = "# BEGIN SOLUTION"
CODE_END = "# END SOLUTION"
MD_BEGIN = "<!-- BEGIN SOLUTION -->"
MD_END = "<!-- END SOLUTION -->"
SOLUTION_ONLY = "solution-only"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
_VOLATILE_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


class MarkupError(ValueError):
    """A solution notebook's solution markers do not pair up."""


def _strip_code(source: str, where: str) -> str:
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == CODE_BEGIN:
            if inside:
                raise MarkupError(f"{where}: nested {CODE_BEGIN!r}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{STUB_MESSAGE}")')
        elif stripped == CODE_END:
            if not inside:
                raise MarkupError(f"{where}: {CODE_END!r} without {CODE_BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkupError(f"{where}: {CODE_BEGIN!r} is never closed")
    return "\n".join(out)


def _strip_markdown(source: str, where: str) -> str:
    pattern = re.compile(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END), re.S)
    result = pattern.sub(f"*{STUB_MESSAGE}*", source)
    if MD_BEGIN in result or MD_END in result:
        raise MarkupError(f"{where}: unpaired {MD_BEGIN!r}/{MD_END!r}")
    return result


def student_notebook(solution: nbformat.NotebookNode, name: str = "notebook"):
    """Return the student version of a solution notebook (the input is untouched).

    Args:
        solution: The solution notebook.
        name: Used in error messages.

    Returns:
        A new notebook: answers replaced by stubs, ``solution-only`` cells
        dropped, outputs cleared.

    Raises:
        MarkupError: When solution markers do not pair up.
    """
    nb = copy.deepcopy(solution)
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_ONLY in tags:
            continue
        where = f"{name}, cell {index}"
        if cell.cell_type == "code":
            cell.source = _strip_code(cell.source, where)
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = _strip_markdown(cell.source, where)
        for key in _VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.pop("widgets", None)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """Serialise a notebook exactly as ``assign`` writes it."""
    return nbformat.writes(nb, version=4) + "\n"


def exercise_names(solutions_dir: Path) -> list[str]:
    """The exercise names, i.e. the stems of ``solutions/*.ipynb``."""
    return sorted(p.stem for p in Path(solutions_dir).glob("*.ipynb"))


def assign(
    names: list[str] | None = None,
    *,
    solutions_dir: Path | str = "solutions",
    exercises_dir: Path | str = "exercises",
    check: bool = False,
) -> list[str]:
    """Generate (or check) the student notebooks.

    Args:
        names: Exercises to process; all of ``solutions_dir`` when empty.
        solutions_dir: Folder of the solution notebooks.
        exercises_dir: Folder the student notebooks are written to.
        check: When true, write nothing and report the stale notebooks.

    Returns:
        The exercise names whose student notebook was written (or, with
        ``check``, is missing or out of date).
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    names = list(names) if names else exercise_names(solutions_dir)
    if not names:
        raise ValueError(f"no solution notebooks found in {solutions_dir}")
    changed = []
    unknown = [n for n in names if not (solutions_dir / f"{n}.ipynb").is_file()]
    if unknown:
        raise ValueError(f"unknown exercise {', '.join(map(repr, unknown))}; the exercises in "
                         f"{solutions_dir} are: {', '.join(exercise_names(solutions_dir))}")
    for name in names:
        source = solutions_dir / f"{name}.ipynb"
        text = render(student_notebook(nbformat.read(source, as_version=4), name))
        target = exercises_dir / f"{name}.ipynb"
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not check:
            exercises_dir.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return changed
