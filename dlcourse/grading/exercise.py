"""What an exercise is to the grader: its hidden tests, their hash, its answer cells.

Exercise ``NAME`` is ``tests/hidden/NAME/`` (the hidden tests and an optional
``grading.json``) and ``exercises/NAME.ipynb`` (the student notebook, whose
cells tagged ``answer`` a submission should keep) under the course folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from dlcourse.grading.errors import GraderError

#: The package folder: the last place :meth:`Exercise.find` looks (a source checkout).
_COURSE_GUESS = Path(__file__).resolve().parent.parent.parent
#: The tag of a student's answer cells (``dlcourse assign`` keeps it).
ANSWER = "answer"
_VERSION_PACKAGES = ("dlcourse", "numpy", "torch", "tensorflow-cpu", "tensorflow", "keras",
                     "scikit-learn", "pytest", "jupyter_client", "ipykernel", "nbformat")


@dataclass
class Exercise:
    """An exercise's grading material.

    Attributes:
        name: The exercise name (notebook stem).
        hidden_dir: ``ROOT/tests/hidden/NAME``.
        student_notebook: ``ROOT/exercises/NAME.ipynb`` (may not exist).
        config: The contents of ``grading.json`` (may be empty).
    """

    name: str
    hidden_dir: Path
    student_notebook: Path
    config: dict

    @classmethod
    def find(cls, name: str, root: Path | None = None) -> Exercise:
        """Locate the exercise under ``root`` or, by default, the current folder's ancestors."""
        candidates = [Path(root)] if root else [Path.cwd(), *Path.cwd().parents, _COURSE_GUESS]
        for base in candidates:
            hidden = base / "tests" / "hidden" / name
            if hidden.is_dir():
                config_file = hidden / "grading.json"
                config = json.loads(config_file.read_text()) if config_file.is_file() else {}
                return cls(name, hidden.resolve(),
                           (base / "exercises" / f"{name}.ipynb").absolute(), config)
        raise GraderError(f"no hidden tests for exercise {name!r} (looked for tests/hidden/{name} "
                          f"under {', '.join(str(c) for c in candidates[:3])})")

    @property
    def blocked(self) -> list[str]:
        """The ``module:attribute`` references the student must write themselves."""
        return self.config.get("blocked", [])

    def bundle_files(self) -> list[str]:
        """The bundle's files: paths relative to ``hidden_dir``, in byte order.

        Every file below ``hidden_dir`` (symbolic links followed), except
        ``__pycache__`` folders and ``.pyc`` files.
        """
        names = []
        for folder, dirs, files in os.walk(self.hidden_dir, followlinks=True):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                path = Path(folder) / name
                if name.endswith(".pyc") or not path.is_file():
                    continue
                rel = path.relative_to(self.hidden_dir).as_posix()
                if "\n" in rel or "\\" in rel:
                    raise GraderError(f"hidden test file name {rel!r} holds a newline or a "
                                      "backslash: rename it")
                names.append(rel)
        return sorted(names, key=lambda name: name.encode())

    def bundle_sha256(self) -> str:
        """SHA-256 of the hidden-test bundle, as ``sha256sum`` would compute it.

        It is the SHA-256 of the text ``sha256sum`` prints for the bundle's
        files (:meth:`bundle_files`), one line ``HEX  PATH`` each, so anyone can
        recompute it without dlcourse::

            cd tests/hidden/NAME && find -L . -type f -not -path '*/__pycache__/*' \\
                -not -name '*.pyc' -printf '%P\\n' | LC_ALL=C sort \\
                | xargs -d '\\n' sha256sum | sha256sum
        """
        listing = "".join(
            f"{hashlib.sha256((self.hidden_dir / rel).read_bytes()).hexdigest()}  {rel}\n"
            for rel in self.bundle_files())
        return hashlib.sha256(listing.encode()).hexdigest()

    def check_bundle(self, expected: str) -> None:
        """Raise :class:`GraderError` unless the bundle's hash is still ``expected``."""
        if self.bundle_sha256() != expected:
            raise GraderError("the hidden tests changed during grading (their SHA-256 is not "
                              "the one the batch started with): regrade")

    def to_json(self) -> dict:
        return {"exercise": self.name, "hidden_dir": str(self.hidden_dir),
                "student_notebook": str(self.student_notebook), "config": self.config}

    @classmethod
    def from_json(cls, data: dict) -> Exercise:
        return cls(data["exercise"], Path(data["hidden_dir"]), Path(data["student_notebook"]),
                   data["config"])


def answer_cell_ids(nb) -> list[str]:
    """Ids of the cells of notebook ``nb`` tagged ``answer``, in order."""
    return [
        cell.get("id", f"#{i}")
        for i, cell in enumerate(nb.cells)
        if ANSWER in cell.get("metadata", {}).get("tags", [])
    ]


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a grade depends on."""
    versions = {"python": platform.python_version()}
    for name in _VERSION_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions
