"""End-to-end: `dlcourse grade` on a class of fixture notebooks, hostile ones included.

One batch (``--jobs 2``, 3-second limits, 512 MiB) grades every notebook in
``tests/grading_fixtures/submissions`` against the fixture exercise; the tests
then read what it wrote. ``make_submissions.EXPECTED`` says what each notebook
must earn.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "grading_fixtures"
COURSE = FIXTURES / "course"
SUBMISSIONS = FIXTURES / "submissions"
sys.path.insert(0, str(FIXTURES))
from make_submissions import EXPECTED  # noqa: E402

pytestmark = pytest.mark.slow

FAST = ["--exercise", "fixture_ex", "--root", str(COURSE), "--timeout", "3",
        "--notebook-timeout", "60", "--memory-mb", "512", "--no-progress"]


def _grade(*args):
    return subprocess.run([sys.executable, "-m", "dlcourse", "grade", *args, *FAST],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    hidden = COURSE / "tests/hidden/fixture_ex/test_fixture.py"
    before = hidden.read_bytes()
    proc = _grade(str(SUBMISSIONS), "--out", str(out), "--jobs", "2")
    after = hidden.read_bytes()
    results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/results.json")}
    return {"out": out, "proc": proc, "results": results, "hidden_unchanged": before == after}


def test_batch_succeeds_and_grades_everyone(batch):
    assert batch["proc"].returncode == 0, batch["proc"].stderr[-3000:]
    assert set(batch["results"]) == set(EXPECTED)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_submission_earns_exactly_what_it_earns(batch, student):
    expected_score, phrase = EXPECTED[student]
    result = batch["results"][student]
    sandbox = result["extra_data"].get("sandbox", {})
    if student == "reads_outside" and not (sandbox["landlock"] or sandbox["unprivileged_user"]):
        pytest.skip("no Landlock and no root here: the kernel can read what the grader can")
    assert result["max_score"] == 6
    assert result["score"] == expected_score, json.dumps(result["tests"], indent=1)
    assert result["score"] == sum(t["score"] for t in result["tests"])
    if phrase is not None:
        text = result["output"] + "\n".join(t["output"] for t in result["tests"])
        assert phrase in text


def test_results_json_is_gradescope_shaped_and_auditable(batch):
    result = batch["results"]["full"]
    assert {"score", "max_score", "tests", "execution_time", "output"} <= set(result)
    for test in result["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
    visibilities = {t["name"]: t["visibility"] for t in result["tests"]}
    assert visibilities["Counter accumulates"] == "after_published"
    assert visibilities["the notebook stores its answer in RESULT"] == "hidden"
    extra = result["extra_data"]
    notebook = (SUBMISSIONS / "full.ipynb").read_bytes()
    assert extra["notebook_sha256"] == hashlib.sha256(notebook).hexdigest()
    assert len(extra["hidden_tests_sha256"]) == 64
    assert {"python", "numpy", "dlcourse", "pytest"} <= set(extra["versions"])
    assert extra["sandbox"]["landlock"] in (True, False)


def test_feedback_never_shows_hidden_test_code(batch):
    for result in batch["results"].values():
        text = json.dumps(result)
        assert "SECRET_EXPECTED" not in text and "submission.call" not in text


def test_hostile_notebooks_cannot_touch_results_or_hidden_tests(batch):
    assert batch["hidden_unchanged"]
    assert batch["results"]["fake_results"]["score"] == 5
    assert batch["results"]["prints_all_passed"]["score"] == 5
    reader = batch["results"]["reads_outside"]
    sandbox = reader["extra_data"]["sandbox"]
    if not (sandbox["landlock"] or sandbox["unprivileged_user"]):
        pytest.skip("no Landlock and no root here: the kernel can read what the grader can")
    # The hidden test file holds RESULT's expected value; reading it would earn a point.
    assert reader["score"] == 0, "the submission read the hidden tests"


def test_broken_notebooks_say_why(batch):
    assert batch["results"]["os_exit"]["extra_data"]["status"] == "kernel died"
    assert batch["results"]["invalid_json"]["extra_data"]["status"] == "unreadable"
    notes = " ".join(batch["results"]["missing_answer"]["extra_data"]["notes"])
    assert "is missing from the notebook" in notes
    notes = " ".join(batch["results"]["calls_reference"]["extra_data"]["notes"])
    assert "dlcourse's reference dropout_forward" in notes


def test_grades_csv_has_one_trustworthy_row_per_student(batch):
    rows = list(csv.DictReader((batch["out"] / "grades.csv").open()))
    assert sorted(r["student"] for r in rows) == sorted(EXPECTED)
    for row in rows:
        assert float(row["score"]) == EXPECTED[row["student"]][0]
        assert row["max_score"] == "6"
    assert "mean" in batch["proc"].stdout and "tests passed by" in batch["proc"].stdout


def test_regrading_one_student_reruns_only_that_one(batch, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch["out"], out)
    before = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    stamp = (out / "blank" / "results.json").stat().st_mtime_ns
    proc = _grade(str(SUBMISSIONS / "full.ipynb"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert after.keys() == before.keys()
    assert after["full"]["score"] == "6"
    assert (out / "blank" / "results.json").stat().st_mtime_ns == stamp
    assert "1 submission(s)" in proc.stdout


def test_broken_hidden_tests_are_a_grader_failure(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    (course / "tests/hidden/fixture_ex/test_broken.py").write_text("def test_x(:\n")
    proc = subprocess.run(
        [sys.executable, "-m", "dlcourse", "grade", str(SUBMISSIONS / "full.ipynb"),
         "--exercise", "fixture_ex", "--root", str(course), "--out", str(tmp_path / "out"),
         "--timeout", "3", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "GRADER ERRORS" in proc.stdout and "could not be collected" in proc.stdout
    result = json.loads((tmp_path / "out/full/results.json").read_text())
    assert result["score"] == 0 and "grader error" in result["output"]
