"""What a notebook or an exercise needs beyond dlcourse's own dependencies: PyTorch, Keras.

``dlcourse`` itself needs NumPy, scikit-learn and matplotlib only; PyTorch and
TensorFlow (for Keras) are installed where a notebook uses them. Two things read
this module:

* the notebooks' setup cell (``tools/setup_cells.py``), which installs the
  frameworks a chapter or an exercise imports when it runs outside the course
  environment (Colab, a bare Jupyter);
* ``dlcourse release``, whose autograder image for an exercise installs only
  the frameworks that exercise's grading needs.

An exercise declares its needs in ``tests/hidden/NAME/grading.json``::

    {"requires": ["torch"]}

and :func:`exercise_frameworks` checks the declaration against what the
solution notebook and the hidden tests import, so a framework can be neither
forgotten (the image could not grade) nor installed for nothing.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat


@dataclass(frozen=True)
class Framework:
    """A deep-learning framework a notebook may need.

    Attributes:
        name: The key used in ``grading.json``'s ``requires``.
        modules: Imported modules (and their sub-modules) that need it.
        distribution: The pip distribution that provides it.
        probe: The module whose presence means it is installed.
        index_url: An extra package index to install it from, or ``None``.
    """

    name: str
    modules: tuple[str, ...]
    distribution: str
    probe: str
    index_url: str | None = None


#: PyPI's Linux torch wheel pulls several GB of CUDA libraries: the CPU build of the
#: same release lives on PyTorch's own index.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

FRAMEWORKS: dict[str, Framework] = {
    "torch": Framework("torch", ("torch", "torchvision", "dlcourse.torch"), "torch", "torch",
                       TORCH_CPU_INDEX),
    "keras": Framework("keras", ("keras", "tensorflow", "dlcourse.keras"), "tensorflow-cpu",
                       "keras"),
}

_MAGIC = re.compile(r"^\s*[%!?]")


def imported_modules(source: str) -> set[str]:
    """The dotted names a piece of Python (or notebook cell) imports.

    IPython magics and shell lines (``%pip``, ``!ls``) are skipped; a cell that
    still does not parse contributes nothing.
    """
    code = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def frameworks_of(modules: set[str]) -> list[str]:
    """The :data:`FRAMEWORKS` keys the imported ``modules`` need, sorted."""
    needed = set()
    for framework in FRAMEWORKS.values():
        for module in modules:
            if any(module == m or module.startswith(m + ".") for m in framework.modules):
                needed.add(framework.name)
    return sorted(needed)


def notebook_frameworks(nb: nbformat.NotebookNode) -> list[str]:
    """The frameworks a notebook's code cells import."""
    modules: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            modules |= imported_modules(cell.source)
    return frameworks_of(modules)


def detected_exercise_frameworks(root: Path | str, name: str) -> list[str]:
    """What exercise ``name``'s solution notebook and hidden tests import."""
    root = Path(root)
    modules: set[str] = set()
    solution = root / "solutions" / f"{name}.ipynb"
    if solution.is_file():
        nb = nbformat.read(solution, as_version=4)
        modules |= {m for cell in nb.cells if cell.cell_type == "code"
                    for m in imported_modules(cell.source)}
    for path in sorted((root / "tests" / "hidden" / name).rglob("*.py")):
        modules |= imported_modules(path.read_text(encoding="utf-8"))
    return frameworks_of(modules)


def exercise_frameworks(root: Path | str, name: str) -> list[str]:
    """The frameworks exercise ``name`` declares its grading needs.

    Args:
        root: The course folder (``solutions/``, ``tests/hidden/``).
        name: The exercise name.

    Returns:
        The sorted :data:`FRAMEWORKS` keys of ``grading.json``'s ``requires``
        (what the solution and the hidden tests import when it has none).

    Raises:
        ValueError: When ``requires`` is not a list of known framework names,
            or leaves out a framework the solution or the hidden tests import.
    """
    detected = detected_exercise_frameworks(root, name)
    config_file = Path(root) / "tests" / "hidden" / name / "grading.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    if "requires" not in config:
        return detected
    declared = config["requires"]
    if not isinstance(declared, list) or not all(d in FRAMEWORKS for d in declared):
        raise ValueError(f"{config_file}: requires must be a list of {sorted(FRAMEWORKS)}; "
                         f"received requires={declared!r}")
    missing = sorted(set(detected) - set(declared))
    if missing:
        raise ValueError(f"{config_file}: requires={declared!r} leaves out {missing}, which "
                         f"the solution notebook or the hidden tests of {name!r} import")
    return sorted(set(declared))


def pinned(distribution: str, requirements: Path | str) -> str:
    """``distribution==version`` as pinned in a requirements or constraints file.

    Raises:
        ValueError: When the file pins no version of ``distribution``.
    """
    want = _normalise(distribution)
    for line in Path(requirements).read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match and _normalise(match.group(1)) == want:
            return f"{distribution}=={match.group(2).removesuffix('+cpu')}"
    raise ValueError(f"{requirements} pins no version of {distribution!r}")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
