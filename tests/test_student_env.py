"""A student's environment, made only from what the website publishes.

``make site-install`` (part of ``make book``) puts the dlcourse wheel and
``requirements/student.txt`` into the site. Here, as a student on their own
computer or in a bare Jupyter would: a fresh venv gets ``student.txt``, then the
notebooks run with ``jupyter nbconvert --execute`` outside the repository.
Exercise 1's setup cell installs the wheel (dlcourse is missing, as in Colab);
after that every setup cell is silent. Exercises 1 and 4 (solutions) pass all
their public checks, and a chapter runs. Also: the pins of ``student.txt`` and
Binder's agree with the lock, and the course environment has JupyterLab.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dlcourse._version import __version__
from dlcourse.grading.setup_cell import TAG, updated, wheel_url

ROOT = Path(__file__).resolve().parent.parent
STUDENT = ROOT / "requirements" / "student.txt"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
BINDER = ROOT / "binder"
NOTEBOOKS = ["solutions/01_dropout_from_scratch.ipynb", "solutions/04_mc_dropout.ipynb",
             "book/03_from_scratch.ipynb"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_student_requirements_are_pinned_as_the_lock():
    student, lock = _pins(STUDENT), _pins(CONSTRAINTS)
    lines = [ln for ln in STUDENT.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(student) == len(lines) - 1, "every line but the index is a name==version pin"
    assert {"numpy", "jupyterlab", "nbconvert", "torch", "ipykernel"} <= set(student)
    assert "tensorflow-cpu" not in student  # the Keras chapters' setup cell installs it
    assert {k: v for k, v in student.items() if lock.get(k) != v} == {}, "student.txt != lock"
    assert not {"jupyter-book", "ruff", "hypothesis", "pytest"} & set(student)


def test_binder_installs_the_student_environment_and_the_package():
    assert _pins(BINDER / "requirements.txt") == {**_pins(STUDENT),
                                                  "tensorflow-cpu": _pins(CONSTRAINTS)[
                                                      "tensorflow-cpu"]}
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in (
        BINDER / "requirements.txt").read_text()
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK) and "pip install --no-deps ." in post.read_text()


def test_launch_buttons_point_only_at_working_services():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())["launch_buttons"]
    assert config["binderhub_url"] == "https://mybinder.org"
    assert config["colab_url"] == "https://colab.research.google.com"
    assert "jupyterhub_url" not in config and "example.edu" not in str(config)


def test_course_environment_has_jupyterlab_and_nbconvert():
    bin_dir = Path(sys.executable).parent
    for args in (["jupyter", "lab", "--version"], ["jupyter", "nbconvert", "--version"]):
        proc = subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0 and re.match(r"\d+\.\d+", proc.stdout), proc.stderr


def test_running_page_links_the_published_files():
    page = (ROOT / "book" / "running.md").read_text()
    wheel = f"dlcourse-{__version__}-py3-none-any.whl"
    assert f'href="../install/{wheel}"' in page and 'href="../install/student.txt"' in page
    assert wheel_url(ROOT).endswith(f"/install/{wheel}")


def _site_install(tmp_path: Path) -> Path:
    install = tmp_path / "install"
    proc = subprocess.run(["make", "--no-print-directory", "site-install",
                           f"SITE_INSTALL={install}", f"BIN={Path(sys.executable).parent}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in install.iterdir()) == [
        f"dlcourse-{__version__}-py3-none-any.whl", "student.txt"]
    assert not (ROOT / "build").exists()
    return install


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") or str(out.get("data", {}).get("text/plain", "")))
        if out.get("output_type") == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.torch
def test_fresh_venv_from_the_published_files_runs_exercises_and_a_chapter(tmp_path):
    install = _site_install(tmp_path)
    wheel = next(install.glob("dlcourse-*.whl"))
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PIP_RETRIES": "0", "PYTHONWARNINGS": "ignore::DeprecationWarning",
           **{k: v for k, v in os.environ.items() if k.startswith("PIP_") and k != "PIP_RETRIES"}}
    proc = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
                           "-r", str(install / "student.txt")],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert subprocess.run([str(venv / "bin/jupyter"), "lab", "--version"], env=env,
                          capture_output=True, timeout=120).returncode == 0
    work = tmp_path / "notebooks"  # outside the repository: no dlcourse folder to import
    work.mkdir()
    for rel in NOTEBOOKS:
        nb = nbformat.read(ROOT / rel, 4)
        updated(nb, ROOT)  # the setup cell as tools/setup_cells.py writes it
        for cell in nb.cells:  # the site's URL, served from here
            if TAG in cell.metadata.get("tags", []):
                assert wheel_url(ROOT) in cell.source
                cell.source = cell.source.replace(wheel_url(ROOT), str(wheel))
        nbformat.write(nb, work / Path(rel).name)
    # The chapter runs twice: first its setup cell installs myst-nb (its glue), then nothing.
    for index, rel in enumerate([*NOTEBOOKS, NOTEBOOKS[-1]]):
        name = Path(rel).name
        proc = subprocess.run(
            [str(venv / "bin/jupyter"), "nbconvert", "--to", "notebook", "--execute",
             "--ExecutePreprocessor.timeout=600", "--output-dir", str(tmp_path / "out"), name],
            cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"{rel}: {proc.stderr[-3000:]}"
        nb = nbformat.read(tmp_path / "out" / name, 4)
        (setup,) = [c for c in nb.cells if TAG in c.metadata.get("tags", [])]
        if index in (1, len(NOTEBOOKS)):  # all there now: it installs nothing, silently
            assert setup.outputs == [], f"{rel}: {_outputs_text(setup)}"
        checks = [c for c in nb.cells
                  if c.cell_type == "code" and re.search(r"^check\(", c.source, re.M)]
        assert bool(checks) == rel.startswith("solutions/")
        for cell in checks:
            text = _outputs_text(cell)
            assert "passed" in text and "hidden tests not run" in text, f"{rel}: {text}"
            assert "\u2718" not in text and "failed" not in text, f"{rel}: {text}"  # no ✘
    # Every exercise's public checks load there (what check("q1") imports).
    names = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
    code = ("import importlib, sys\nfor name in sys.argv[1:]:\n"
            "    assert importlib.import_module('dlcourse.grading.public_checks.' + name).CHECKS")
    proc = subprocess.run([str(venv / "bin/python"), "-c", code, *names], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = subprocess.run([str(venv / "bin/python"), "-m", "pip", "list",
                             "--format=freeze"], env=env, capture_output=True, text=True).stdout
    assert f"dlcourse=={__version__}" in listed  # installed by exercise 1's setup cell
    shutil.rmtree(venv, ignore_errors=True)
