"""End-to-end: `dlcourse grade` on a class of fixture notebooks, hostile ones included.

One batch (``--jobs 2``, 3-second limits, 512 MiB) grades every notebook in
``tests/grading_fixtures/submissions`` against the fixture exercise; the tests
then read what it wrote. ``make_submissions.EXPECTED`` says what each notebook
must earn.
"""

from __future__ import annotations

import csv
import glob
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
HIDDEN = COURSE / "tests" / "hidden" / "fixture_ex"
sys.path.insert(0, str(FIXTURES))
from make_submissions import (  # noqa: E402
    DAEMON_MARKER,
    EXPECTED,
    EXPECTED_FLOOD,
    EXPECTED_SEEDING,
    EXPECTED_TIME_LIMITS,
    SANDBOX_ATTACKS,
    SHM_PREFIX,
    TIME_LIMITS,
    UDP_PORT,
    processes_with,
)

pytestmark = pytest.mark.slow

FAST = ["--exercise", "fixture_ex", "--root", str(COURSE), "--timeout", "3",
        "--notebook-timeout", "60", "--memory-mb", "512", "--no-progress"]


def _grade(*args, root=COURSE):
    fast = [str(root) if a == str(COURSE) else a for a in FAST]
    return subprocess.run([sys.executable, "-m", "dlcourse", "grade", *args, *fast],
                          capture_output=True, text=True, timeout=600)


def _course_copy(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    return course


def _rows(out):
    with open(out / "grades.csv", newline="") as handle:
        return {r["student"]: r for r in csv.DictReader(handle)}


def sha256sum_of_folder(folder):
    """The bundle hash as the documented shell pipeline computes it (no dlcourse code)."""
    script = ("find -L . -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -printf '%P\\n'"
              " | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum")
    out = subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True,
                         check=True).stdout
    return out.split()[0]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    import os
    import socket
    import time

    out = tmp_path_factory.mktemp("grades")
    hidden = COURSE / "tests/hidden/fixture_ex/test_fixture.py"
    before = hidden.read_bytes()
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # raw_socket sends here
    try:
        listener.bind(("127.0.0.1", UDP_PORT))
        listener.setblocking(False)
    except OSError:
        listener.close()
        listener = None
    proc = _grade(str(SUBMISSIONS), "--out", str(out), "--jobs", "2")
    after = hidden.read_bytes()
    received = None
    if listener is not None:
        try:
            received = listener.recv(100)
        except BlockingIOError:
            received = b""
        listener.close()
    results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/results.json")}
    shm_left = sorted(glob.glob(SHM_PREFIX + "*"))
    for path in shm_left:  # where the sandbox let them through: do not leave them behind
        Path(path).unlink()
    time.sleep(1)  # SIGKILL is asynchronous
    daemons = processes_with(DAEMON_MARKER)
    for pid in daemons:  # where the sandbox let one outlive its grading: do not keep it
        os.kill(pid, 9)
    return {"out": out, "proc": proc, "results": results, "hidden_unchanged": before == after,
            "shm_left": shm_left, "udp_received": received, "daemons": daemons}


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
    if student == "writes_shm" and not sandbox["landlock"]:
        pytest.skip("no Landlock here: /dev/shm is writable by every user")
    if SANDBOX_ATTACKS.get(student) in sandbox["not_held"]:
        pytest.skip(f"the sandbox here does not promise {SANDBOX_ATTACKS[student]!r} "
                    "(the summary says so; see test_sandbox_promises_hold_or_are_reported)")
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
    assert extra["hidden_tests_sha256"] == sha256sum_of_folder(HIDDEN)
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


def test_dev_shm_gives_nothing_and_keeps_nothing(batch):
    result = batch["results"]["writes_shm"]
    if not result["extra_data"]["sandbox"]["landlock"]:
        pytest.skip("no Landlock here: /dev/shm is writable by every user")
    assert batch["shm_left"] == [], "a submission left files in /dev/shm"
    assert result["score"] == 5  # RESULT came only through /dev/shm: no point for it
    assert result["extra_data"]["status"] == "graded"


@pytest.mark.parametrize("student", sorted(SANDBOX_ATTACKS))
def test_sandbox_promises_hold_or_are_reported(batch, student):
    """/proc/PID/environ, renice/signal, raw/packet/UDP sockets, a setsid daemon: each
    attack fails, or the summary names the promise that does not hold on this machine."""
    from dlcourse.grading.sandbox import PROMISES

    promise = SANDBOX_ATTACKS[student]
    sandbox = batch["results"][student]["extra_data"]["sandbox"]
    if promise in sandbox["not_held"]:
        assert f"NOT HELD on this machine: a graded kernel {PROMISES[promise]}" \
            in batch["proc"].stdout
        pytest.skip(f"{promise!r} does not hold here, and the summary says so")
    assert not [line for line in batch["proc"].stdout.splitlines()
                if "NOT HELD" in line and PROMISES[promise] in line]
    # The attack would have defined RESULT (1 point): it did not.
    assert batch["results"][student]["score"] == 5 + (student == "daemon")
    if student == "daemon":
        assert batch["daemons"] == [], "a process of the submission outlived its grading"
    if student == "raw_socket" and batch["udp_received"] is not None:
        assert batch["udp_received"] == b"", "a UDP datagram reached the grader's machine"


def test_flood_of_messages_does_not_grow_the_worker(tmp_path):
    """40 display messages of 8 MB in the RPC's type: the worker keeps one reply at most,
    so it holds no more than for a plain notebook; a 68 MB reply is refused with its size."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "dlcourse", "grade", str(FIXTURES / "flood"), "--exercise",
         "fixture_ex", "--root", str(COURSE), "--out", str(out), "--timeout", "120",
         "--notebook-timeout", "300", "--memory-mb", "1024", "--jobs", "2", "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/results.json")}
    for student, (score, phrase) in EXPECTED_FLOOD.items():
        result = results[student]
        assert result["score"] == score, (student, result["output"], result["tests"])
        if phrase:
            assert phrase in " ".join(t["output"] for t in result["tests"])
    rss = {s: r["extra_data"]["worker_max_rss_mb"] for s, r in results.items()}
    # Keeping the 40 messages would take 320 MB more (more, decoded). What the worker holds
    # at its peak besides the one reply it keeps is the messages in flight, which ZeroMQ
    # has received and the worker has not read yet: about 45 MB on an idle machine, and
    # up to about 150 MB measured when the worker shared two cores with a whole test run.
    assert rss["flood"] < rss["full"] + 250, rss


def test_huge_exception_names_are_cut_everywhere(batch):
    """A 200,000-character exception class name: truncated in notes, feedback and the CSV,
    and the CSV stays readable with Python's default field size limit."""
    from dlcourse.grading.bounds import MAX_CSV_FIELD, MAX_FEEDBACK, MAX_NOTE

    result = batch["results"]["long_exception"]
    assert all(len(n) <= MAX_NOTE for n in result["extra_data"]["notes"])
    assert any("truncated" in n for n in result["extra_data"]["notes"])
    assert all(len(t["output"]) <= MAX_FEEDBACK for t in result["tests"])
    assert len(json.dumps(result)) < 50_000
    with open(batch["out"] / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))  # csv.Error past 131,072 characters a field
    assert all(len(v) <= MAX_CSV_FIELD for row in rows for v in row.values())


def test_nbformat_42_without_cell_ids_has_no_false_notes(batch):
    result = batch["results"]["nbformat42"]
    assert result["score"] == 6
    assert not [n for n in result["extra_data"]["notes"] if "missing" in n]


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


def test_grades_csv_tells_exercise_and_bundle_apart(batch):
    rows = _rows(batch["out"])
    bundle = sha256sum_of_folder(HIDDEN)
    for student, row in rows.items():
        assert row["exercise"] == "fixture_ex"
        assert row["hidden_tests_sha256"] == bundle, student
        assert row["notebook_sha256"] == batch["results"][student]["extra_data"][
            "notebook_sha256"]


def test_one_out_folder_holds_one_exercise(batch, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch["out"], out)
    course = _course_copy(tmp_path)
    shutil.copytree(course / "tests/hidden/fixture_ex", course / "tests/hidden/other_ex")
    before = (out / "grades.csv").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "dlcourse", "grade",
                           str(SUBMISSIONS / "full.ipynb"), "--exercise", "other_ex",
                           "--root", str(course), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "holds grades of exercise fixture_ex" in proc.stderr
    assert (out / "grades.csv").read_bytes() == before


def test_regrading_one_student_keeps_the_one_folder_per_student_id(tmp_path):
    subs = tmp_path / "subs"
    for student, notebook in (("alice", "blank"), ("bob", "full")):
        (subs / student).mkdir(parents=True)
        shutil.copy(SUBMISSIONS / f"{notebook}.ipynb", subs / student / "ex1.ipynb")
    out = tmp_path / "out"
    proc = _grade(str(subs), "--out", str(out), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {s: r["score"] for s, r in _rows(out).items()} == {"alice__ex1": "0",
                                                             "bob__ex1": "6"}
    # Alice resubmits; the instructor regrades her notebook alone.
    shutil.copy(SUBMISSIONS / "full.ipynb", subs / "alice" / "ex1.ipynb")
    proc = _grade(str(subs / "alice" / "ex1.ipynb"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {s: r["score"] for s, r in _rows(out).items()} == {"alice__ex1": "6",
                                                             "bob__ex1": "6"}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["alice__ex1", "bob__ex1"]
    result = json.loads((out / "alice__ex1" / "results.json").read_text())
    assert result["score"] == 6 and result["extra_data"]["student"] == "alice__ex1"
    # Without the remembered root, --submissions-root says the same.
    (out / "batch.json").unlink()
    proc = _grade(str(subs / "alice" / "ex1.ipynb"), "--out", str(out),
                  "--submissions-root", str(subs))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(_rows(out)) == {"alice__ex1", "bob__ex1"}


CRASH_TESTS = '''
import os

from dlcourse.grading import points


@points(3)
def test_worker_crash(submission):
    """the grader's worker dies here"""
    os.kill(os.getpid(), 9)


@points(1)
def test_after_the_crash(submission):
    """a test after the crash"""
'''


def _sandbox_leftovers(name):
    """Processes whose folder holds notebook ``name``, and sandbox folders holding it."""
    import glob
    import os
    import tempfile

    procs = []
    for cwd in glob.glob("/proc/[0-9]*/cwd"):
        try:
            if os.path.exists(os.path.join(os.readlink(cwd), name)):
                procs.append(cwd)
        except OSError:
            pass
    folders = glob.glob(os.path.join(tempfile.gettempdir(), "dlcourse-sandbox-*", name))
    return procs, folders


def test_worker_killed_part_way_reports_every_test_with_its_points(tmp_path):
    import uuid

    course = _course_copy(tmp_path)
    (course / "tests/hidden/fixture_ex/test_zz_crash.py").write_text(CRASH_TESTS)
    name = f"crash_{uuid.uuid4().hex[:8]}.ipynb"
    shutil.copy(SUBMISSIONS / "full.ipynb", tmp_path / name)
    out = tmp_path / "out"
    proc = _grade(str(tmp_path / name), "--out", str(out), root=course)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]  # as `dlcourse grade -h` says
    assert "GRADER ERRORS" in proc.stdout and "worker stopped" in proc.stdout
    student = name.removesuffix(".ipynb")
    result = json.loads((out / student / "results.json").read_text())
    assert result["max_score"] == 6 + 3 + 1  # every hidden test, including those not run
    assert result["score"] == 6  # what finished before the crash still counts
    by_name = {t["name"]: t for t in result["tests"]}
    for title in ("the grader's worker dies here", "a test after the crash"):
        assert by_name[title]["score"] == 0 and "worker stopped" in by_name[title]["output"]
    assert result["extra_data"]["status"] == "grading failed"
    row = _rows(out)[student]
    assert (row["max_score"], row["percent"], row["status"]) == ("10", "60.0", "grading failed")
    # The dead worker's kernel is killed and its sandbox folder removed.
    assert _sandbox_leftovers(name) == ([], [])


def test_time_limits_interrupt_then_kill_and_the_batch_goes_on(tmp_path):
    """A cell that swallows KeyboardInterrupt is killed; a notebook past its limit is stopped."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "dlcourse", "grade", str(FIXTURES / "time_limits"),
         "--exercise", "fixture_ex", "--root", str(COURSE), "--out", str(out), "--jobs", "3",
         "--timeout", str(TIME_LIMITS["cell_timeout"]),
         "--notebook-timeout", str(TIME_LIMITS["notebook_timeout"]), "--no-progress"],
        capture_output=True, text=True, timeout=300)
    # A student's time-out is the student's failure, not the grader's.
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/results.json")}
    assert set(results) == set(EXPECTED_TIME_LIMITS)
    for student, (score, phrase) in EXPECTED_TIME_LIMITS.items():
        result = results[student]
        assert result["score"] == score and result["max_score"] == 6, student
        if phrase is None:
            continue
        assert result["extra_data"]["status"] == "kernel died"
        assert phrase in " ".join(result["extra_data"]["notes"])
        for test in result["tests"]:  # every test: 0, and the time limit is the reason
            assert test["score"] == 0 and "time limit" in test["output"], test
            assert phrase in test["output"], test
        # Everything before the limit ran: the answers were defined, then the limit hit.
        assert result["execution_time"] < TIME_LIMITS["notebook_timeout"] + 15
    notes = " ".join(results["swallows_interrupt"]["extra_data"]["notes"])
    assert "ran past its time limit of 3 s and was interrupted" in notes
    assert _sandbox_leftovers("swallows_interrupt.ipynb")[0] == []


@pytest.mark.torch
def test_every_submission_starts_from_the_same_seeds(tmp_path):
    """random, NumPy's global generator, torch and str hashes: the same draws in every kernel."""
    pytest.importorskip("torch")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "dlcourse", "grade", str(FIXTURES / "seeding"), "--exercise",
         "fixture_seed", "--root", str(COURSE), "--out", str(out), "--jobs", "2",
         "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/results.json")}
    assert set(results) == set(EXPECTED_SEEDING)
    for student, score in EXPECTED_SEEDING.items():
        result = results[student]
        failed = {t["name"]: t["output"] for t in result["tests"] if t["score"] < t["max_score"]}
        assert result["score"] == score == result["max_score"], failed


def _fake_autograder(tmp_path):
    """The autograder zip unpacked as Gradescope would: ROOT/source, submission, results."""
    import zipfile

    from dlcourse.grading.release import release

    release(root=COURSE, out=tmp_path / "dist")
    root = tmp_path / "autograder"
    zipfile.ZipFile(tmp_path / "dist" / "autograder-fixture_ex.zip").extractall(root / "source")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def _run_autograder(root):
    import os

    env = dict(os.environ, AUTOGRADER_ROOT=str(root), DLCOURSE_PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=600)
    return proc, json.loads((root / "results" / "results.json").read_text())


def test_run_autograder_grades_a_submission_in_a_fake_autograder_folder(tmp_path):
    root = _fake_autograder(tmp_path)
    shutil.copy(SUBMISSIONS / "full.ipynb", root / "submission" / "my_answers.ipynb")
    proc, result = _run_autograder(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["score"] == result["max_score"] == 6, result.get("output")
    assert len(result["tests"]) == 5 and all(t["visibility"] for t in result["tests"])
    extra = result["extra_data"]
    assert extra["hidden_tests_sha256"] == sha256sum_of_folder(
        root / "source/tests/hidden/fixture_ex") == sha256sum_of_folder(HIDDEN)
    assert "results in" in proc.stdout  # the grader's summary, for the instructor


def test_run_autograder_always_writes_results_json(tmp_path):
    root = _fake_autograder(tmp_path)
    proc, result = _run_autograder(root)  # nothing submitted
    assert proc.returncode == 0 and result["score"] == 0
    assert "No .ipynb file was submitted" in result["output"]
    # The grader cannot run at all (here: the hidden tests are missing, exit status 2).
    shutil.copy(SUBMISSIONS / "full.ipynb", root / "submission" / "fixture_ex.ipynb")
    shutil.rmtree(root / "source/tests/hidden/fixture_ex")
    proc, result = _run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert result["score"] == 0 and result["extra_data"]["status"] == "grading failed"
    assert "could not grade this submission" in result["output"]
    assert "exit status 2" in result["output"] and "not your fault" in result["output"]
    assert "no hidden tests" in proc.stdout  # the grader's own words, for the instructor


HANG_TESTS = '''
import time

from dlcourse.grading import points


@points(2)
def test_grader_hangs(submission):
    """the grader's worker hangs here"""
    time.sleep(600)
'''


def test_hung_worker_is_stopped_and_reports_every_test_with_its_points(tmp_path):
    import uuid

    from dlcourse.grading.batch import Batch
    from dlcourse.grading.exercise import Exercise
    from dlcourse.grading.kernel import Limits

    course = _course_copy(tmp_path)
    (course / "tests/hidden/fixture_ex/test_zz_hang.py").write_text(HANG_TESTS)
    batch = Batch(Exercise.find("fixture_ex", course),
                  Limits(cell_timeout=3, notebook_timeout=45, memory_mb=512),
                  out=tmp_path / "out", progress=False)
    batch.worker_slack = 5.0  # the worker may run 45 + 5 s (room for a loaded machine)
    assert [t["max_score"] for t in batch.all_tests] == [1, 1, 1, 2, 1, 2]
    name = f"hang_{uuid.uuid4().hex[:8]}.ipynb"
    shutil.copy(SUBMISSIONS / "full.ipynb", tmp_path / name)
    (result,) = batch.run([tmp_path / name]).values()
    assert _sandbox_leftovers(name) == ([], [])
    assert batch.grader_errors and "ran past 50 s and was stopped" in batch.grader_errors[0]
    assert result["max_score"] == 8 and result["score"] == 6
    hung = next(t for t in result["tests"] if t["name"] == "the grader's worker hangs here")
    assert hung["score"] == 0 and "ran past 50 s" in hung["output"]
    assert result["extra_data"]["status"] == "grading failed"


def test_broken_hidden_tests_are_a_grader_failure(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    (course / "tests/hidden/fixture_ex/test_broken.py").write_text("def test_x(:\n")
    proc = subprocess.run(
        [sys.executable, "-m", "dlcourse", "grade", str(SUBMISSIONS / "full.ipynb"),
         "--exercise", "fixture_ex", "--root", str(course), "--out", str(tmp_path / "out"),
         "--timeout", "3", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.returncode == 1  # as `dlcourse grade --help` documents
    assert "GRADER ERRORS" in proc.stdout and "could not be collected" in proc.stdout
    result = json.loads((tmp_path / "out/full/results.json").read_text())
    assert result["score"] == 0 and "grader error" in result["output"]
    # Every test that could be collected is listed with its points, at 0 with the reason.
    assert result["max_score"] == 6
    assert len(result["tests"]) == 5
    assert all(t["score"] == 0 and "could not be collected" in t["output"]
               for t in result["tests"])
    row = _rows(tmp_path / "out")["full"]
    assert (row["max_score"], row["percent"], row["status"]) == ("6", "0.0", "grading failed")


def test_hidden_tests_changed_during_grading_is_a_grader_failure(tmp_path):
    import time

    course = _course_copy(tmp_path)
    subs = tmp_path / "subs"
    subs.mkdir()
    nb = json.loads((SUBMISSIONS / "full.ipynb").read_text())
    nb["cells"].insert(1, {"cell_type": "code", "execution_count": None, "id": "slow0001",
                           "metadata": {}, "outputs": [], "source": "import time\ntime.sleep(4)"})
    (subs / "a_slow.ipynb").write_text(json.dumps(nb))
    shutil.copy(SUBMISSIONS / "full.ipynb", subs / "b_full.ipynb")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dlcourse", "grade", str(subs), "--exercise", "fixture_ex",
           "--root", str(course), "--out", str(out), "--timeout", "10", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hidden = course / "tests/hidden/fixture_ex/test_fixture.py"
    original = sha256sum_of_folder(hidden.parent)
    deadline = time.monotonic() + 120
    while not (out / "a_slow" / "grader.log").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    hidden.write_text(hidden.read_text() + "\n# edited while grading\n")  # the instructor edits
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stdout + stderr[-2000:]
    assert "GRADER ERRORS" in stdout and "hidden tests changed during grading" in stdout
    for student in ("a_slow", "b_full"):
        result = json.loads((out / student / "results.json").read_text())
        assert result["extra_data"]["status"] == "grading failed", student
        assert "changed during grading" in result["output"]
        assert result["max_score"] == 6 and result["score"] == 0
        assert result["extra_data"]["hidden_tests_sha256"] == original


def test_correct_solutions_earn_full_marks_from_inside_another_clone(tmp_path):
    """`python -m dlcourse grade` run from another copy of the course imports that copy;
    the workers and kernels import the installed package, and the sandbox is built for it."""
    clone = tmp_path / "clone"
    shutil.copytree(Path(__file__).resolve().parents[1] / "dlcourse", clone / "dlcourse",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(COURSE, clone / "course", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "dlcourse", "grade", str(SUBMISSIONS / "full.ipynb"),
         str(SUBMISSIONS / "uses_dlcourse.ipynb"), "--exercise", "fixture_ex", "--root",
         "course", "--out", str(out), "--timeout", "10", "--no-progress"],
        cwd=clone, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    for student in ("full", "uses_dlcourse"):
        result = json.loads((out / student / "results.json").read_text())
        assert result["score"] == result["max_score"] == 6, result["output"]
        assert result["extra_data"]["status"] == "graded"
        assert not [n for n in result["extra_data"]["notes"] if "Error" in n]


def test_a_sandbox_built_for_another_dlcourse_is_a_grader_error(tmp_path):
    """An environment fault (the workers and kernels would import another dlcourse than
    the sandbox exposes) stops the batch as a grader error before any notebook runs;
    `dlcourse grade` then exits with status 2 and writes nothing (see also
    test_kernel_that_imports_another_dlcourse_fails_its_bootstrap)."""
    from dlcourse.grading.batch import Batch
    from dlcourse.grading.errors import GraderError
    from dlcourse.grading.exercise import Exercise
    from dlcourse.grading.kernel import Limits
    from dlcourse.grading.sandbox import Isolation

    elsewhere = tmp_path / "dlcourse"
    shutil.copytree(Path(__file__).resolve().parents[1] / "dlcourse", elsewhere,
                    ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.raises(GraderError, match="imported dlcourse from .* not from"):
        Batch(Exercise.find("fixture_ex", COURSE), Limits(cell_timeout=5, memory_mb=512),
              out=tmp_path / "out", progress=False,
              isolation=Isolation(dlcourse_dir=str(elsewhere)))
    assert not (tmp_path / "out").exists()


def test_odd_names_and_links_each_get_their_own_row(tmp_path):
    """`...ipynb`, grades.csv.ipynb, batch.json.ipynb, spaces, a link inside the folder,
    a link outside it, a FIFO: the batch completes, nothing is written outside OUT/<id>/."""
    import os

    subs = tmp_path / "subs"
    subs.mkdir()
    full = (SUBMISSIONS / "full.ipynb").read_bytes()
    for name in ("...ipynb", "grades.csv.ipynb", "batch.json.ipynb", "a b.ipynb"):
        (subs / name).write_bytes(full)
    outside = tmp_path / "elsewhere.ipynb"
    outside.write_bytes(full)
    (subs / "link_out.ipynb").symlink_to(outside)
    (subs / "link_in.ipynb").symlink_to(subs / "a b.ipynb")
    os.mkfifo(subs / "fifo.ipynb")
    out = tmp_path / "grading" / "out"
    proc = _grade(str(subs), "--out", str(out), "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "grading").iterdir()) == ["out"]
    rows = _rows(out)
    assert len(rows) == 7
    assert {p.name for p in out.iterdir() if p.is_file()} == {"grades.csv", "batch.json"}
    assert {p.name for p in out.iterdir() if p.is_dir()} == set(rows)
    for student in rows:
        assert "/" not in student and not student.startswith(".")
        result = json.loads((out / student / "results.json").read_text())
        assert result["extra_data"]["student"] == student
    for prefix in ("student-", "grades.csv-", "batch.json-", "a_b-"):  # + 8 hex digits
        (student,) = [s for s in rows if s.startswith(prefix) and len(s) == len(prefix) + 8]
        assert rows[student]["score"] == "6", rows[student]
    linked = rows["link_in"]
    assert linked["score"] == "6" and "symbolic link" in linked["notes"]
    refused = {s: r for s, r in rows.items() if r["status"] == "refused"}
    assert set(refused) == {"link_out", "fifo"}
    assert "outside the submissions folder" in refused["link_out"]["notes"]
    assert "not a regular file" in refused["fifo"]["notes"]
    assert refused["link_out"]["max_score"] == "6" and refused["link_out"]["score"] == "0"


def test_an_unreadable_grades_csv_never_blocks_the_next_run(tmp_path):
    """A grades.csv with a 200,000-character field (as an older grader wrote) and one with
    NUL bytes: the next run, a one-student regrade, completes and rebuilds the CSV."""
    subs = tmp_path / "subs"
    subs.mkdir()
    for student in ("alice", "bob"):
        shutil.copy(SUBMISSIONS / "full.ipynb", subs / f"{student}.ipynb")
    out = tmp_path / "out"
    assert _grade(str(subs), "--out", str(out), "--jobs", "2").returncode == 0
    header = (out / "grades.csv").read_text().splitlines()[0]
    huge = "x" * 200_000
    (out / "grades.csv").write_text(f"{header}\nalice,fixture_ex,alice.ipynb,6,6,100.0,"
                                    f"graded,{huge},,\n")
    proc = _grade(str(subs / "bob.ipynb"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = _rows(out)
    assert set(rows) == {"alice", "bob"} and len(rows["alice"]["notes"]) <= 4000
    (out / "grades.csv").write_bytes(b"student,score\x00\n\xff\xfe garbage\x00\n")
    proc = _grade(str(subs / "bob.ipynb"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "could not be read" in proc.stdout and (out / "grades.csv.unreadable").exists()
    rows = _rows(out)
    assert {s: r["score"] for s, r in rows.items()} == {"alice": "6", "bob": "6"}
