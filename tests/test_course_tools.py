"""The instructor's commands: clean errors (assign, release), what release puts in the
Gradescope images, and ``dlcourse new-exercise``."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from dlcourse.cli import main as cli_main
from dlcourse.grading.assign import student_notebook
from dlcourse.grading.frameworks import exercise_frameworks, imported_modules
from dlcourse.grading.public import run_checks
from dlcourse.grading.release import autograder_requirements
from dlcourse.grading.scaffold import new_exercise

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_COURSE = ROOT / "tests" / "grading_fixtures" / "course"
EXERCISES = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
NOT_FOR_GRADING = ("jupyter-book", "jupyter_book", "ruff", "hypothesis", "sphinx", "nbval")


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dlcourse {command}: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


# -- clean errors ---------------------------------------------------------------------
def test_assign_unknown_exercise_lists_the_valid_ones(tmp_path, capsys):
    status = cli_main(["assign", "01_dropout", "--solutions", str(ROOT / "solutions"),
                       "--exercises", str(tmp_path)])
    assert status == 2
    err = _one_line_error(capsys, "assign")
    assert "unknown exercise '01_dropout'" in err and all(name in err for name in EXERCISES)
    assert not list(tmp_path.iterdir())  # nothing written


def test_assign_and_release_on_an_empty_root(tmp_path, capsys):
    assert cli_main(["assign", "--solutions", str(tmp_path / "solutions"),
                     "--exercises", str(tmp_path / "ex")]) == 2
    assert "no solution notebooks" in _one_line_error(capsys, "assign")
    assert cli_main(["release", "--root", str(tmp_path), "--out", str(tmp_path / "dist")]) == 2
    assert "no solution notebooks" in _one_line_error(capsys, "release")
    assert not (tmp_path / "dist").exists()


def test_assign_reports_broken_markup_in_one_line(tmp_path, capsys):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# BEGIN SOLUTION\nx = 1")])
    nbformat.write(nb, solutions / "ex.ipynb")
    assert cli_main(["assign", "--solutions", str(solutions),
                     "--exercises", str(tmp_path / "ex")]) == 2
    assert "never closed" in _one_line_error(capsys, "assign")


def test_release_unknown_exercise_lists_the_valid_ones(tmp_path, capsys):
    assert cli_main(["release", "nope", "--root", str(ROOT), "--out", str(tmp_path)]) == 2
    err = _one_line_error(capsys, "release")
    assert "unknown exercise 'nope'" in err and all(name in err for name in EXERCISES)


def _fixture_course(tmp_path) -> Path:
    course = tmp_path / "course"
    shutil.copytree(FIXTURE_COURSE, course)
    return course


def test_release_warns_when_it_skips_an_exercise_without_hidden_tests(tmp_path, capsys):
    course = _fixture_course(tmp_path)
    shutil.copy(course / "solutions" / "fixture_ex.ipynb", course / "solutions" / "no_tests.ipynb")
    assert cli_main(["release", "--root", str(course), "--out", str(tmp_path / "dist")]) == 0
    out = capsys.readouterr()
    assert "dlcourse release: warning: no_tests: no hidden tests" in out.err
    assert not (tmp_path / "dist" / "autograder-no_tests.zip").exists()
    assert (tmp_path / "dist" / "autograder-fixture_ex.zip").is_file()
    student = zipfile.ZipFile(tmp_path / "dist" / "dlcourse-student.zip").namelist()
    assert "exercises/no_tests.ipynb" in student


def test_release_refuses_a_grading_json_that_forgets_a_framework(tmp_path, capsys):
    course = _fixture_course(tmp_path)
    hidden = course / "tests" / "hidden" / "fixture_ex"
    config = hidden / "grading.json"
    data = json.loads(config.read_text()) if config.is_file() else {}
    assert exercise_frameworks(course, "fixture_ex") == []
    (hidden / "test_zz_oracle.py").write_text("import torch.nn.functional as F\n")
    assert exercise_frameworks(course, "fixture_ex") == ["torch"]  # undeclared: detected
    config.write_text(json.dumps({**data, "requires": []}))
    assert cli_main(["release", "--root", str(course), "--out", str(tmp_path / "dist")]) == 2
    err = _one_line_error(capsys, "release")
    assert "leaves out ['torch']" in err and "fixture_ex" in err
    config.write_text(json.dumps({**data, "requires": ["torch"]}))
    assert cli_main(["release", "--root", str(course), "--out", str(tmp_path / "dist")]) == 0
    capsys.readouterr()
    config.write_text(json.dumps({**data, "requires": ["tensorflow"]}))
    assert cli_main(["release", "--root", str(course), "--out", str(tmp_path / "dist")]) == 2
    assert "requires must be a list of" in _one_line_error(capsys, "release")


def test_check_without_public_checks_says_where_they_belong():
    with pytest.raises(ValueError, match=r"dlcourse/grading/public_checks/99_none\.py.*CHECKS"):
        run_checks("q1", {}, "99_none")


# -- what the Gradescope images install -----------------------------------------------
@pytest.mark.parametrize("name", EXERCISES)
def test_autograder_installs_only_what_the_exercise_needs(name):
    text = autograder_requirements(ROOT, name)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    pins = {line.split("==")[0].lower() for line in lines if "==" in line}
    assert all("==" in line or line.startswith("--extra-index-url") for line in lines), lines
    assert {"numpy", "pytest", "nbclient", "ipykernel"} <= pins
    assert not pins & set(NOT_FOR_GRADING), pins
    needs = exercise_frameworks(ROOT, name)
    assert ("torch" in pins) == ("torch" in needs)
    assert ("tensorflow-cpu" in pins) == ("keras" in needs)
    assert any("download.pytorch.org/whl/cpu" in line for line in lines) == ("torch" in needs)
    # The declaration covers what the solution and the hidden tests really import.
    solution = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", 4)
    modules = {m for c in solution.cells if c.cell_type == "code"
               for m in imported_modules(c.source)}
    for path in (ROOT / "tests" / "hidden" / name).rglob("*.py"):
        modules |= imported_modules(path.read_text())
    assert any(m.split(".")[0] == "torch" or m.startswith("dlcourse.torch")
               for m in modules) == ("torch" in needs)


def test_exercises_with_the_same_needs_install_the_same():
    """The README measures the image of exercises 1 and 4 for all: that holds while exercises
    with the same frameworks install the same pinned requirements."""
    by_needs: dict[tuple, set] = {}
    for name in EXERCISES:
        body = autograder_requirements(ROOT, name).split("\n", 1)[1]  # past the comment
        by_needs.setdefault(tuple(exercise_frameworks(ROOT, name)), set()).add(body)
    assert set(by_needs) == {(), ("torch",)}
    assert all(len(bodies) == 1 for bodies in by_needs.values())


def test_numpy_only_exercises_exist_and_ship_light_zips(tmp_path):
    light = [n for n in EXERCISES if not exercise_frameworks(ROOT, n)]
    assert "01_dropout_from_scratch" in light
    assert cli_main(["release", light[0], "--root", str(ROOT), "--out", str(tmp_path)]) == 0
    zf = zipfile.ZipFile(tmp_path / f"autograder-{light[0]}.zip")
    names = set(zf.namelist())
    assert {"setup.sh", "run_autograder", "requirements/autograder.txt",
            "requirements/constraints.txt", f"tests/hidden/{light[0]}/grading.json"} <= names
    assert "requirements/requirements.txt" not in names  # the developer's 3 GB environment
    setup = zf.read("setup.sh").decode()
    assert "requirements/autograder.txt" in setup and "requirements.txt " not in setup
    student = zipfile.ZipFile(tmp_path / "dlcourse-student.zip")
    assert "requirements/student.txt" in student.namelist()
    assert "requirements/student.txt" in student.read("README.md").decode()


# -- new-exercise ---------------------------------------------------------------------
def _scaffold_course(tmp_path) -> Path:
    course = tmp_path / "course"
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder, course / folder)
    (course / "tests" / "hidden").mkdir(parents=True)
    (course / "dlcourse" / "grading" / "public_checks").mkdir(parents=True)
    shutil.copy(ROOT / "_toc.yml", course / "_toc.yml")
    return course


def _load_checks(path: Path):
    spec = importlib.util.spec_from_file_location("scaffolded_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CHECKS


def _namespace(nb) -> dict:
    ns: dict = {}
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and "check(" not in cell.source and "dlcourse-setup" not in tags:
            exec(compile(cell.source, "cell", "exec"), ns)  # noqa: S102 -- our own scaffold
    return ns


def test_new_exercise_scaffolds_the_four_places(tmp_path, capsys):
    course = _scaffold_course(tmp_path)
    assert cli_main(["new-exercise", "06_dropconnect", "--root", str(course),
                     "--requires", "torch"]) == 0
    out = capsys.readouterr().out
    solution = course / "solutions" / "06_dropconnect.ipynb"
    checks_file = course / "dlcourse" / "grading" / "public_checks" / "06_dropconnect.py"
    hidden = course / "tests" / "hidden" / "06_dropconnect"
    for path in (solution, course / "exercises" / "06_dropconnect.ipynb", checks_file,
                 hidden / "test_dropconnect.py", hidden / "grading.json"):
        assert path.is_file() and str(path) in out, path
    assert json.loads((hidden / "grading.json").read_text())["requires"] == ["torch"]
    toc = (course / "_toc.yml").read_text().splitlines()
    index = toc.index("      - file: exercises/06_dropconnect")
    assert toc[index - 1].strip() == "- file: exercises/05_regularisers"
    # The solution passes its public checks; the generated exercise does not.
    nb = nbformat.read(solution, 4)
    checks = _load_checks(checks_file)
    assert set(checks) == {"q1"}
    assert all(o.passed for o in _run(checks["q1"], _namespace(nb)))
    blank = _namespace(student_notebook(nb, "06_dropconnect"))
    assert not any(o.passed for o in _run(checks["q1"], blank))
    assert nbformat.read(course / "exercises" / "06_dropconnect.ipynb", 4).cells[1].metadata[
        "tags"][0] == "dlcourse-setup"
    # A second time: refused, nothing changed.
    before = solution.read_text()
    assert cli_main(["new-exercise", "06_dropconnect", "--root", str(course)]) == 2
    assert "already exists" in _one_line_error(capsys, "new-exercise")
    assert solution.read_text() == before


def _run(checks, ns):
    from dlcourse.grading.public import CheckOutcome

    outcomes = []
    for func in checks:
        try:
            func(ns)
        except Exception as exc:  # noqa: BLE001 -- any failure is a failed check here
            outcomes.append(CheckOutcome(func.__name__, False, str(exc)))
        else:
            outcomes.append(CheckOutcome(func.__name__, True))
    return outcomes


@pytest.mark.parametrize("args, message", [
    (["6_x"], "name must look like 06_dropconnect"),
    (["06_Bad"], "name must look like"),
    (["06_x", "--requires", "jax"], "requires must be among"),
])
def test_new_exercise_rejects_bad_arguments_in_one_line(tmp_path, capsys, args, message):
    course = _scaffold_course(tmp_path)
    assert cli_main(["new-exercise", *args, "--root", str(course)]) == 2
    assert message in _one_line_error(capsys, "new-exercise")


def test_new_exercise_outside_a_course_folder(tmp_path, capsys):
    assert cli_main(["new-exercise", "06_x", "--root", str(tmp_path)]) == 2
    assert "root must be the course folder" in _one_line_error(capsys, "new-exercise")


@pytest.mark.slow
def test_scaffolded_exercise_grades_solution_full_and_blank_zero(tmp_path):
    course = _scaffold_course(tmp_path)
    new_exercise("06_double", course)
    results = {}
    for kind in ("solutions", "exercises"):
        out = tmp_path / f"out-{kind}"
        proc = subprocess.run(
            [sys.executable, "-m", "dlcourse", "grade", str(course / kind / "06_double.ipynb"),
             "--exercise", "06_double", "--root", str(course), "--out", str(out),
             "--no-progress", "--isolation", "none"],
            capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
        (path,) = out.glob("*/results.json")
        results[kind] = json.loads(path.read_text())
    assert results["solutions"]["score"] == results["solutions"]["max_score"] == 2
    assert results["exercises"]["score"] == 0
