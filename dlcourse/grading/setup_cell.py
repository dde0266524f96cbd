"""The notebooks' setup cell: run anywhere, install only what is missing.

Every chapter and exercise notebook starts (before its first code cell) with
one code cell tagged ``dlcourse-setup``. In Colab or a bare Jupyter it installs
what the notebook needs and the kernel lacks: the ``dlcourse`` wheel the
website publishes (``install/`` on the site, see ``make book``) and the
frameworks the notebook imports, PyTorch (the CPU build, from PyTorch's index)
and TensorFlow for Keras. In the course environment everything is there: it
installs nothing and prints nothing. Run twice, it does nothing the second time.

Update the cells after changing a notebook's imports or dlcourse's version::

    python tools/setup_cells.py            # rewrite what is stale
    python tools/setup_cells.py --check    # exit 1 and list them (tests do this)
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import nbformat

from dlcourse._version import __version__
from dlcourse.grading.frameworks import (
    FRAMEWORKS,
    TORCH_CPU_INDEX,
    imported_modules,
    notebook_frameworks,
    pinned,
)

TAG = "dlcourse-setup"
TAGS = [TAG, "hide-input"]  # the website shows it folded
CELL_ID = TAG
REPO_DIR = Path(__file__).resolve().parents[2]
NOTEBOOK_GLOBS = ("book/0*.ipynb", "exercises/*.ipynb", "solutions/*.ipynb")


def _project_file(root: Path, name: str) -> Path:
    for base in (root, REPO_DIR):
        if (base / name).is_file():
            return base / name
    raise ValueError(f"root must hold {name} (the course repository); received root={str(root)!r}")


def wheel_url(root: Path | str = ".") -> str:
    """Where the website publishes this version's wheel (``pyproject.toml``'s Documentation URL)."""
    project = tomllib.loads(_project_file(Path(root), "pyproject.toml").read_text())["project"]
    site = project.get("urls", {}).get("Documentation")
    if not site:
        raise ValueError("pyproject.toml needs [project.urls] Documentation (the website's URL)")
    return f"{site.rstrip('/')}/install/dlcourse-{__version__}-py3-none-any.whl"


#: Other modules a chapter may import that neither dlcourse nor Colab provide:
#: ``myst_nb.glue`` (numbers glued into the prose), pinned by the lock.
EXTRA_MODULES = {"myst_nb": "myst-nb"}


def setup_source(frameworks: Sequence[str], root: Path | str = ".",
                 extras: Sequence[str] = ()) -> str:
    """The setup cell's code for a notebook that imports ``frameworks`` (and ``extras``,
    keys of :data:`EXTRA_MODULES`)."""
    requirements = _project_file(Path(root), "requirements/requirements.txt")
    needs = {"dlcourse": wheel_url(root)}
    for name in sorted(frameworks):
        framework = FRAMEWORKS[name]
        needs[framework.probe] = pinned(framework.distribution, requirements)
    if extras:
        constraints = _project_file(Path(root), "requirements/constraints.txt")
        for module in sorted(extras):
            needs[module] = pinned(EXTRA_MODULES[module], constraints)
    items = ["the course package",
             *({"torch": "PyTorch (CPU)", "keras": "TensorFlow (CPU, for Keras)"}[f]
               for f in sorted(frameworks)),
             *(EXTRA_MODULES[m] for m in sorted(extras))]
    what = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    head = [f"# Setup for Colab or a bare Jupyter: installs {what}",
            "# where missing. In the course environment it does nothing."]
    index = (f', "--extra-index-url", "{TORCH_CPU_INDEX}"' if "torch" in frameworks else "")
    lines = [
        *head,
        "import importlib.util",
        "import subprocess",
        "import sys",
        "",
        "_needs = {" + ", ".join(f'"{m}": "{spec}"' for m, spec in needs.items()) + "}",
        "_missing = [spec for module, spec in _needs.items() if importlib.util.find_spec(module) is None]",
        "if _missing:",
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet"{index}, *_missing],',
        "                   check=True)",
    ]
    return "\n".join(lines)


def _is_setup(cell) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", [])


def updated(nb: nbformat.NotebookNode, root: Path | str = ".") -> bool:
    """Insert or refresh ``nb``'s setup cell in place; return whether it changed.

    The cell goes right before the first other code cell; its code follows
    the frameworks the other cells import.
    """
    others = [cell for cell in nb.cells if not _is_setup(cell)]
    probe = nbformat.v4.new_notebook(cells=others)
    modules = {m.split(".")[0] for c in others if c.cell_type == "code"
               for m in imported_modules(c.source)}
    source = setup_source(notebook_frameworks(probe), root,
                          sorted(m for m in modules if m in EXTRA_MODULES))
    first_code = next((i for i, c in enumerate(others) if c.cell_type == "code"), len(others))
    current = [c for c in nb.cells if _is_setup(c)]
    if len(current) == 1:
        cell = current[0]
        index = nb.cells.index(cell)
        tags = cell.metadata.get("tags", [])
        if (index == first_code and cell.cell_type == "code" and cell.source == source
                and all(t in tags for t in TAGS) and not cell.get("outputs")):
            return False
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(TAGS)})
    if nb.get("nbformat_minor", 0) >= 5:
        cell.id = CELL_ID
    else:
        cell.pop("id", None)
    others.insert(first_code, cell)
    nb.cells = others
    return True


def update_file(path: Path | str, root: Path | str = ".", *, check: bool = False) -> bool:
    """Update one notebook file (write only when it changed); return whether it was stale."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    if not updated(nb, root):
        return False
    if not check:
        out = nbformat.writes(nb)
        path.write_text(out + ("\n" if text.endswith("\n") else ""), encoding="utf-8")
    return True


def course_notebooks(root: Path | str = ".") -> list[Path]:
    """The notebooks that carry a setup cell: chapters, exercises, solutions."""
    return sorted(p for pattern in NOTEBOOK_GLOBS for p in Path(root).glob(pattern))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="setup_cells",
        description="Insert or refresh the setup cell of the chapter, exercise and solution "
                    "notebooks (default: every book/0*.ipynb, exercises/*.ipynb, "
                    "solutions/*.ipynb under --root).")
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the course repository (default: .)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a notebook's setup cell is stale")
    args = parser.parse_args(argv)
    try:
        paths = args.notebooks or course_notebooks(args.root)
        if not paths:
            raise ValueError(f"no notebooks under {args.root} ({', '.join(NOTEBOOK_GLOBS)})")
        stale = [p for p in paths if update_file(p, args.root, check=args.check)]
    except (OSError, ValueError) as exc:
        print(f"setup_cells: error: {exc}", file=sys.stderr)
        return 2
    if args.check and stale:
        print("stale setup cell (run `python tools/setup_cells.py`): "
              + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(("updated: " if stale else "up to date: ")
          + (", ".join(map(str, stale)) if stale else f"{len(paths)} notebooks"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
