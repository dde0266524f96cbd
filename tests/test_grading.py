"""Unit tests of the grader's parts: codec, proxy, assign, check, launcher, release, CSV."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dlcourse.cli import main as cli_main
from dlcourse.grading import SubmissionDied, SubmissionError, codec, points, visibility
from dlcourse.grading.assign import MarkupError, student_notebook
from dlcourse.grading.exercise import answer_cell_ids
from dlcourse.grading.kernel import ExecResult
from dlcourse.grading.proxy import Submission
from dlcourse.grading.public import check
from dlcourse.grading.report import write_csv
from dlcourse.grading.sandbox import LAUNCHER

FIXTURES = Path(__file__).resolve().parent / "grading_fixtures"
COURSE = FIXTURES / "course"
sys.path.insert(0, str(FIXTURES))
from make_submissions import processes_with  # noqa: E402


# -- codec ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool", "uint8", "complex64"])
def test_codec_round_trips_arrays_exactly(dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 2)) * 10).astype(dtype)
    back = codec.decode(codec.loads(codec.dumps(codec.encode(array))))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_codec_round_trips_nested_structures_and_types():
    value = {0.1: [1, 2.5, None, "s", True], "t": (np.float32(1.5), np.int64(3)),
             (1, "a"): {"nan": float("nan")}}
    back = codec.decode(codec.loads(codec.dumps(codec.encode(value))))
    assert set(back) == set(value)
    assert back[0.1] == value[0.1]
    assert isinstance(back["t"], tuple) and back["t"][0].dtype == np.float32
    assert np.isnan(back[(1, "a")]["nan"])


@pytest.mark.parametrize("value", [object(), {1, 2}, np.array([object()]), b"bytes"])
def test_codec_refuses_other_types(value):
    with pytest.raises(codec.Unsupported):
        codec.encode(value)


def test_codec_never_unpickles():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    payload = {"__ndarray__": base64.b64encode(buffer.getvalue()).decode()}
    with pytest.raises(ValueError):
        codec.decode(payload)


@pytest.mark.parametrize("data", [{"__weird__": 1}, {"a": 1, "b": 2}, {"__ndarray__": "%%%"}])
def test_codec_rejects_malformed_data(data):
    with pytest.raises((ValueError, TypeError)):
        codec.decode(data)


# -- proxy, with a stand-in kernel ----------------------------------------------------
class FakeKernel:
    """Replies with fixed payloads, like a (possibly hostile) kernel would."""

    def __init__(self, payloads, status="ok"):
        self.payloads = payloads
        self.status = status
        self.dead_reason = None
        self.sent = []

    def execute(self, code, *, timeout, store_history=True):
        self.sent.append(code)
        return ExecResult(self.status, payloads=list(self.payloads))


def test_proxy_decodes_the_last_reply_only():
    good = codec.dumps({"ok": codec.encode(np.arange(3))})
    sub = Submission(FakeKernel(['{"ok": 1}', good]))
    np.testing.assert_array_equal(sub.call("f", np.ones(2)), np.arange(3))


@pytest.mark.parametrize("payload, phrase", [
    ("not json", "could not be read"),
    ('{"ok": {"__pickle__": "x"}}', "could not be read"),
    ('{"unsupported": {"type": "Foo", "where": "the result"}}', "object of type Foo"),
    ('{"error": {"ename": "ValueError", "evalue": "bad rate", "line": 3}}', "ValueError: bad rate"),
    ('{"missing": "your notebook does not define \'f\'"}', "does not define"),
    ('[1, 2]', "could not be read"),
])
def test_proxy_turns_every_bad_reply_into_a_submission_error(payload, phrase):
    sub = Submission(FakeKernel([payload]))
    with pytest.raises(SubmissionError, match=phrase):
        sub.call("f")


def test_proxy_without_reply_is_a_failure_not_a_pass():
    with pytest.raises(SubmissionError, match="could not run"):
        Submission(FakeKernel([])).call("f")
    with pytest.raises(SubmissionError):
        Submission(FakeKernel(['{"ok": 1}'], status="error")).call("f")


def test_proxy_dead_kernel_fails_every_request():
    kernel = FakeKernel(['{"ok": 1}'])
    kernel.dead_reason = "the kernel exited with status 1"
    with pytest.raises(SubmissionDied, match="exited with status 1"):
        Submission(kernel).get("x")
    with pytest.raises(SubmissionDied, match="could not be read"):
        Submission(None, reason="the file could not be read").call("f")


def test_proxy_sends_refs_and_tensors_as_markers():
    kernel = FakeKernel(['{"ok": null}'])
    sub = Submission(kernel)
    sub.call("f", sub.ref("model.fc"), sub.tensor(np.zeros(2)), rate=0.5)
    request = json.loads(eval(kernel.sent[0][len("__dlcourse_rpc__("):-1]))
    assert request["args"][0] == {"__ref__": "model.fc"}
    assert "__tensor__" in request["args"][1]
    assert request["kwargs"] == {"__dict__": [["rate", 0.5]]}


# -- decorators -----------------------------------------------------------------------
def test_points_and_visibility_are_recorded_and_validated():
    @points(2.5)
    @visibility("hidden")
    def test_x():
        pass

    assert test_x.__dlcourse_points__ == 2.5 and test_x.__dlcourse_visibility__ == "hidden"
    with pytest.raises(ValueError, match="points"):
        points(-1)
    with pytest.raises(ValueError, match="visibility"):
        visibility("secret")


# -- assign ---------------------------------------------------------------------------
def _solution():
    return new_notebook(cells=[
        new_markdown_cell("Why? <!-- BEGIN SOLUTION -->Because.<!-- END SOLUTION -->"),
        new_code_cell("def f(x):\n    y = 1\n    # BEGIN SOLUTION\n    return x + y\n"
                      "    # END SOLUTION", metadata={"tags": ["answer"]},
                      execution_count=3, outputs=[nbformat.v4.new_output("stream", text="hi")]),
        new_code_cell("secret = 42", metadata={"tags": ["solution-only"]}),
    ])


def test_student_notebook_replaces_answers_and_drops_solution_cells():
    solution = _solution()
    student = student_notebook(solution)
    sources = [c.source for c in student.cells]
    assert sources[0] == "Why? *Write your answer here.*"
    assert sources[1] == ('def f(x):\n    y = 1\n'
                          '    raise NotImplementedError("Write your answer here.")')
    assert len(student.cells) == 2 and "secret" not in json.dumps(student)
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert answer_cell_ids(student) == [solution.cells[1].id]
    assert solution.cells[1].outputs  # the input is untouched
    namespace: dict = {}
    exec(sources[1], namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


@pytest.mark.parametrize("source", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION",
                                    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_unpaired_markers_are_errors(source):
    with pytest.raises(MarkupError):
        student_notebook(new_notebook(cells=[new_code_cell(source)]))


def test_assign_check_flags_stale_exercises(tmp_path, monkeypatch, capsys):
    (tmp_path / "solutions").mkdir()
    nbformat.write(_solution(), tmp_path / "solutions" / "ex.ipynb")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["assign", "--check"]) == 1
    assert cli_main(["assign"]) == 0
    assert cli_main(["assign", "--check"]) == 0
    nb = nbformat.read(tmp_path / "exercises" / "ex.ipynb", 4)
    nb.cells[1].source += "\n# edited by hand"
    nbformat.write(nb, tmp_path / "exercises" / "ex.ipynb")
    assert cli_main(["assign", "--check"]) == 1
    assert "ex" in capsys.readouterr().err


def test_fixture_exercise_is_up_to_date():
    assert cli_main(["assign", "--check", "--solutions", str(COURSE / "solutions"),
                     "--exercises", str(COURSE / "exercises")]) == 0


# -- public self-checks ---------------------------------------------------------------
@pytest.fixture
def fake_checks(monkeypatch):
    def shape_kept(ns):
        """double keeps the shape"""
        assert ns["double"](np.ones(3)).shape == (3,), "double must keep the shape"

    def values(ns):
        """double doubles"""
        secret_expected = np.arange(3) * 2.0
        assert np.allclose(ns["double"](np.arange(3.0)), secret_expected), \
            "double(x) should be 2 * x"

    module = types.ModuleType("dlcourse.grading.public_checks.fake_ex")
    module.CHECKS = {"q1": [shape_kept, values]}
    monkeypatch.setitem(sys.modules, "dlcourse.grading.public_checks.fake_ex", module)


def _run_check(namespace):
    exec("from dlcourse.grading import check\ncheck('q1')", namespace)


def test_check_reports_each_failure_without_showing_code(fake_checks, capsys):
    namespace = {"EXERCISE": "fake_ex", "double": lambda x: x + 1}
    _run_check(namespace)
    out = capsys.readouterr().out
    assert "\u2714 double keeps the shape" in out
    assert "\u2718 double doubles" in out and "double(x) should be 2 * x" in out
    assert "1 of 2 public checks failed" in out and "hidden tests not run" in out
    assert "secret_expected" not in out and "allclose" not in out


def test_check_passes_and_says_hidden_tests_not_run(fake_checks, capsys):
    _run_check({"EXERCISE": "fake_ex", "double": lambda x: 2 * x})
    assert "all 2 public checks passed \u2014 hidden tests not run" in capsys.readouterr().out


def test_check_reports_stubs_and_crashes(fake_checks, capsys):
    def stub(x):
        raise NotImplementedError

    _run_check({"EXERCISE": "fake_ex", "double": stub})
    assert "not answered yet" in capsys.readouterr().out
    _run_check({"EXERCISE": "fake_ex", "double": lambda x: x["a"]})
    assert "your code raised IndexError" in capsys.readouterr().out


def test_check_needs_the_exercise():
    with pytest.raises(ValueError, match="EXERCISE"):
        check("q1")


# -- launcher: what the sandbox enforces at the OS level ------------------------------
def _launch(tmp_path, code, **config):
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    cfg = {"workdir": str(workdir), "env": {"PATH": "/usr/bin:/bin"}, "limits": {}}
    cfg.update(config)
    python = config.pop("python", sys.executable)
    cfg.pop("python", None)
    cmd = [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(cfg), "--", python, "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def _landlock_abi():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))


def test_launcher_scrubs_environment_and_limits_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    code = ("import os, resource\n"
            "print(sorted(os.environ))\n"
            "print(resource.getrlimit(resource.RLIMIT_DATA)[0])\n"
            "print(os.getcwd())\n"
            "try:\n    b = bytearray(400 * 2**20)\n    print('allocated')\n"
            "except MemoryError:\n    print('MemoryError')")
    proc = _launch(tmp_path, code, limits={"data": 200 * 2**20})
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr
    assert set(eval(lines[0])) <= {"PATH", "LC_CTYPE"}  # LC_CTYPE: Python's own PEP 538
    assert lines[1] == str(200 * 2**20)
    assert lines[2] == str(tmp_path / "work")
    assert lines[3] == "MemoryError"


@pytest.mark.skipif(_landlock_abi() < 1, reason="the Linux kernel has no Landlock")
def test_landlock_confines_reads_writes_and_network(tmp_path):
    secret = tmp_path / "hidden_tests.py"
    secret.write_text("EXPECTED = 42")
    import site

    read = sorted({sys.prefix, sys.base_prefix, *site.getsitepackages(), "/usr", "/lib",
                   "/lib64", "/etc", "/proc", "/sys"})
    code = ("import socket\n"
            f"try:\n    open({str(secret)!r}).read(); print('read')\n"
            "except PermissionError:\n    print('no read')\n"
            f"try:\n    open({str(tmp_path / 'out.json')!r}, 'w'); print('wrote')\n"
            "except PermissionError:\n    print('no write')\n"
            "open('mine.txt', 'w').write('ok'); print('own folder ok')\n"
            "s = socket.socket()\n"
            "try:\n    s.connect(('127.0.0.1', 9)); print('connected')\n"
            "except PermissionError:\n    print('no network')\n"
            "except OSError:\n    print('connect attempted')\n")
    proc = _launch(tmp_path, code, read_paths=read, write_paths=[str(tmp_path / "work")],
                   require_landlock=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[:3] == ["no read", "no write", "own folder ok"]
    if _landlock_abi() >= 4:
        assert out[3] == "no network"


@pytest.mark.skipif(_landlock_abi() < 1, reason="the Linux kernel has no Landlock")
def test_kernel_sandbox_writes_only_its_folder_and_dev_null(tmp_path):
    """The paths the kernel gets: no /dev/shm (memory outside RLIMIT_DATA that outlives it)."""
    from dlcourse.grading.sandbox import sandbox_read_paths, sandbox_write_paths

    workdir = tmp_path / "work"
    (workdir / "tmp").mkdir(parents=True)
    code = ("import os, tempfile\n"
            "for path in ('/dev/shm/dlcourse-test-probe', '/dev/mqueue/x', '/dev/probe'):\n"
            "    try:\n        open(path, 'w').close(); print('wrote', path)\n"
            "    except OSError as e:\n        print('refused', path, type(e).__name__)\n"
            "open('/dev/null', 'w').write('x')\n"
            "assert len(open('/dev/urandom', 'rb').read(8)) == 8\n"
            "fd, name = tempfile.mkstemp(); os.write(fd, b'ok'); print('temp', name)\n")
    proc = _launch(tmp_path, code, read_paths=sandbox_read_paths(),
                   write_paths=sandbox_write_paths(workdir), require_landlock=True,
                   env={"PATH": "/usr/bin:/bin", "TMPDIR": str(workdir / "tmp")})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["refused"] * 3, lines
    assert lines[3] == f"temp {workdir / 'tmp'}/" + lines[3].rsplit("/", 1)[1]
    assert not os.path.exists("/dev/shm/dlcourse-test-probe")


def _live_processes_of(uid, wait=5.0):
    """Pids of ``uid`` that are not zombies, after up to ``wait`` s for SIGKILL to land."""
    import time

    deadline = time.monotonic() + wait
    while True:
        live = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
                    live.append(pid)
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.1)


SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def shared_tmp():
    """A folder other users can enter (pytest's tmp is root-only), for the uid-switch tests."""
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("switching user needs root")
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs a system Python that other users can run")
    path = Path(tempfile.mkdtemp(prefix="dlcourse-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_uid_lease_kills_and_removes_what_the_sandbox_user_left(shared_tmp):
    from dlcourse.grading.sandbox import UidLease

    lease = UidLease()
    left = [f"/dev/shm/dlcourse-lease-test-{lease.uid}", f"/tmp/dlcourse-lease-test-{lease.uid}"]
    code = ("import os, time\n"
            f"for path in {left!r}:\n    open(path, 'w').write('x')\n"
            "if os.fork() == 0:\n    os.setsid()\n    null = os.open('/dev/null', os.O_RDWR)\n"
            "    for fd in (0, 1, 2):\n        os.dup2(null, fd)\n"
            "    time.sleep(300)\n    os._exit(0)\n"
            "print(os.getpid())")
    try:
        proc = _launch(shared_tmp, code, uid=lease.uid, gid=lease.uid, python=SYSTEM_PYTHON)
        assert proc.returncode == 0, proc.stderr
        assert all(os.path.exists(p) for p in left)
        lease.release()
        assert not [p for p in left if os.path.exists(p)]
        assert _live_processes_of(lease.uid) == [], "a process of the sandbox uid outlived its lease"
    finally:
        lease.release()
        for path in left:
            with contextlib.suppress(OSError):
                os.unlink(path)


def test_launcher_drops_root_to_the_sandbox_user(shared_tmp):
    secret = shared_tmp / "root_only.txt"
    secret.write_text("secret")
    secret.chmod(0o600)
    code = ("import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"
            f"try:\n    open({str(secret)!r}).read(); print('read')\n"
            "except PermissionError:\n    print('no read')\n"
            "try:\n    os.setuid(0); print('regained root')\n"
            "except PermissionError:\n    print('stays unprivileged')")
    proc = _launch(shared_tmp, code, uid=61999, gid=61999, python=SYSTEM_PYTHON)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["61999 61999 []", "no read", "stays unprivileged"]


# -- CSV: regrading one student replaces only that row --------------------------------
def _result(score, status="graded"):
    return {"score": score, "max_score": 2.0, "tests": [
        {"name": "t1", "score": min(score, 1.0), "max_score": 1.0}],
        "extra_data": {"status": status, "notes": [], "notebook": "x.ipynb"}}


def test_csv_update_keeps_other_students(tmp_path):
    path = tmp_path / "grades.csv"
    write_csv(path, {"alice": _result(2.0), "bob": _result(0.0, "kernel died")})
    write_csv(path, {"bob": _result(1.0)})
    import csv

    rows = {r["student"]: r for r in csv.DictReader(path.open())}
    assert rows["alice"]["score"] == "2" and rows["bob"]["score"] == "1"
    assert rows["bob"]["status"] == "graded" and rows["alice"]["t1"] == "1"


# -- release --------------------------------------------------------------------------
def test_release_bundle_has_no_solutions_and_no_hidden_tests(tmp_path):
    paths = cli_main(["release", "--root", str(COURSE), "--out", str(tmp_path)])
    assert paths == 0
    student = zipfile.ZipFile(tmp_path / "dlcourse-student.zip")
    names = student.namelist()
    assert "exercises/fixture_ex.ipynb" in names
    assert any(n.startswith("dlcourse/grading/") for n in names)
    assert not [n for n in names if n.startswith(("solutions/", "tests/")) or "hidden" in n]
    solution = nbformat.read(COURSE / "solutions" / "fixture_ex.ipynb", 4)
    answers = [line.strip() for cell in solution.cells for line in cell.source.splitlines()
               if "BEGIN SOLUTION" not in cell.source or "return" in line or "+=" in line]
    secret_lines = [a for a in answers if a.startswith(("return x * 2", "self.total += n"))]
    hidden_source = (COURSE / "tests/hidden/fixture_ex/test_fixture.py").read_text()
    for name in names:
        text = student.read(name).decode("utf-8", errors="replace")
        assert "BEGIN SOLUTION" not in text or name.startswith("dlcourse/grading/")
        assert "solution-only cell" not in text
        assert hidden_source not in text and "SECRET_EXPECTED" not in text
        if name.endswith(".ipynb"):
            assert not any(line in text for line in secret_lines), name
    exercise = (COURSE / "exercises" / "fixture_ex.ipynb").read_text()
    assert student.read("exercises/fixture_ex.ipynb").decode() == exercise

    grader = zipfile.ZipFile(tmp_path / "autograder-fixture_ex.zip")
    gnames = grader.namelist()
    assert {"setup.sh", "run_autograder", "tests/hidden/fixture_ex/test_fixture.py",
            "exercises/fixture_ex.ipynb"} <= set(gnames)
    assert not [n for n in gnames if n.startswith("solutions/")]
    run = grader.read("run_autograder").decode()
    assert "dlcourse grade" in run and "--exercise fixture_ex" in run
    assert grader.getinfo("run_autograder").external_attr >> 16 & 0o111


def test_release_zips_hold_what_pip_install_needs(tmp_path):
    """`pip install .` from either zip: pyproject.toml, the README.md it names, the package."""
    assert cli_main(["release", "--root", str(COURSE), "--out", str(tmp_path / "dist")]) == 0
    for name in ("dlcourse-student.zip", "autograder-fixture_ex.zip"):
        src = tmp_path / name.removesuffix(".zip")
        zipfile.ZipFile(tmp_path / "dist" / name).extractall(src)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--no-index", "-w", str(tmp_path / "wheels" / src.name), str(src)],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # setuptools only warns about a missing readme; pip would then install a package
        # without its description, so the file pyproject.toml names must be in the zip.
        assert "cannot be found" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        (wheel,) = (tmp_path / "wheels" / src.name).glob("dlcourse-*.whl")
        names = zipfile.ZipFile(wheel).namelist()
        assert {"dlcourse/grading/launcher.py", "dlcourse/grading/kernel_side.py",
                "dlcourse/cli.py"} <= set(names)
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        assert "dlcourse" in zipfile.ZipFile(wheel).read(metadata).decode().split("\n\n", 1)[1]


# -- command line ---------------------------------------------------------------------
def test_student_ids_are_paths_below_the_submissions_root(tmp_path):
    from dlcourse.grading.batch import student_ids, submissions_root
    from dlcourse.grading.errors import GraderError

    paths = [tmp_path / "alice" / "ex1.ipynb", tmp_path / "bob" / "ex1.ipynb",
             tmp_path / "carol.ipynb"]
    for path in paths:
        path.parent.mkdir(exist_ok=True)
        path.write_text("{}")
    root = submissions_root([tmp_path], paths)
    assert root == tmp_path
    assert sorted(student_ids(paths, root).values()) == ["alice__ex1", "bob__ex1", "carol"]
    # Graded alone, a notebook keeps its id when the root is given or remembered ...
    alone = paths[:1]
    for kwargs in ({"explicit": tmp_path}, {"remembered": tmp_path}):
        assert student_ids(alone, submissions_root(alone, alone, **kwargs)) == {
            paths[0]: "alice__ex1"}
    # ... and it does not depend on what else is in the batch.
    assert student_ids(paths[:2], root)[paths[0]] == student_ids(alone, root)[paths[0]]
    assert student_ids(paths[2:], root) == {paths[2]: "carol"}
    # A remembered root that does not hold the notebook is not used; a given one is an error.
    other = tmp_path / "other"
    other.mkdir()
    assert submissions_root(alone, alone, remembered=other) == paths[0].parent
    with pytest.raises(GraderError, match="does not hold"):
        submissions_root(alone, alone, explicit=other)
    (tmp_path / "alice__ex1.ipynb").write_text("{}")
    with pytest.raises(GraderError, match="would both be student 'alice__ex1'"):
        student_ids([paths[0], tmp_path / "alice__ex1.ipynb"], tmp_path)


def test_strict_isolation_refuses_to_grade_without_a_user_switch(tmp_path, capsys):
    """The builtin sandbox switches user only where other users can run the kernel's Python."""
    from dlcourse.grading.sandbox import probe_unprivileged

    if probe_unprivileged() is None:
        pytest.skip("an unprivileged user can run the kernel here")
    status = cli_main(["grade", str(FIXTURES / "submissions" / "full.ipynb"), "--exercise",
                       "fixture_ex", "--root", str(COURSE), "--out", str(tmp_path),
                       "--isolation", "user", "--sandbox", "builtin", "--no-progress"])
    assert status == 2
    assert "--isolation user" in capsys.readouterr().err
    assert not (tmp_path / "grades.csv").exists()


def test_unknown_exercise_is_a_grader_error(tmp_path, capsys):
    status = cli_main(["grade", str(FIXTURES / "submissions" / "full.ipynb"), "--exercise",
                       "no_such_exercise", "--root", str(COURSE), "--out", str(tmp_path)])
    assert status == 2 and "no hidden tests" in capsys.readouterr().err


# -- the sandbox's promises, at the launcher ------------------------------------------
ATTACKS = """\
import json, os, socket, sys, time
grader = int(sys.argv[1])
out = {}
try:
    open(f"/proc/{grader}/environ", "rb").read()
    out["environ"] = "read"
except OSError as e:
    out["environ"] = type(e).__name__
try:
    os.setpriority(os.PRIO_PROCESS, grader, os.getpriority(os.PRIO_PROCESS, grader))
    out["renice"] = "done"
except OSError as e:
    out["renice"] = type(e).__name__
try:
    os.kill(grader, 0)
    out["signal"] = "done"
except OSError as e:
    out["signal"] = type(e).__name__
for name, args in (("raw", (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
                   ("packet", (socket.AF_PACKET, socket.SOCK_RAW, 0))):
    try:
        socket.socket(*args).close()
        out[name] = "opened"
    except OSError as e:
        out[name] = type(e).__name__
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hi", ("127.0.0.1", int(sys.argv[2])))
    out["udp"] = "sent"
except OSError as e:
    out["udp"] = type(e).__name__
if os.fork() == 0:
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", sys.argv[3]])
time.sleep(0.3)
print(json.dumps(out))
"""


def _attack(iso, tmp_path):
    """Run ATTACKS under ``iso`` as a kernel is run; return what it managed, whether the
    grader got its UDP datagram, and the daemons left behind (killed here)."""
    import socket
    import tempfile
    import time
    import uuid

    from dlcourse.grading.sandbox import UidLease, launcher_config

    marker = f"dlcourse-test-daemon-{uuid.uuid4().hex[:8]}"
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    lease = UidLease() if iso.unprivileged else None
    workdir = Path(tempfile.mkdtemp(prefix="dlcourse-sandbox-"))
    try:
        config = launcher_config(workdir, env={"PATH": "/usr/bin:/bin"}, memory=2**31, cpu=60,
                                 uid=lease.uid if lease else None, bwrap=iso.bwrap,
                                 dlcourse_dir=iso.dlcourse_dir)
        cmd = [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config), "--",
               sys.executable, "-I", "-c", ATTACKS, str(os.getpid()),
               str(listener.getsockname()[1]), marker]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        if lease is not None:
            lease.release()
        time.sleep(0.5)
        left = processes_with(marker)
        for pid in left:
            os.kill(pid, 9)
        try:
            received = listener.recv(10) == b"hi"
        except BlockingIOError:
            received = False
        return json.loads(proc.stdout), received, left
    finally:
        listener.close()
        if lease is not None:
            lease.release()
        shutil.rmtree(workdir, ignore_errors=True)


def _isolation(tool):
    from dlcourse.grading.sandbox import Isolation, kernel_dlcourse_dir, landlock_abi

    if tool == "bwrap" and not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (make test installs it where it may)")
    return Isolation(tool=tool, bwrap=shutil.which("bwrap") if tool == "bwrap" else None,
                     unprivileged=tool == "bwrap" and os.geteuid() == 0,
                     landlock_abi=landlock_abi(), dlcourse_dir=kernel_dlcourse_dir())


def test_bubblewrap_sandbox_keeps_every_promise(tmp_path):
    """The grader's /proc/PID/environ, renice, signal, raw/packet sockets, UDP to the
    grader's machine, a setsid daemon: all fail in bubblewrap."""
    from dlcourse.grading.probe import probe_sandbox
    from dlcourse.grading.sandbox import promises

    iso = _isolation("bwrap")
    problem = probe_sandbox(iso)
    if problem is not None:
        pytest.skip(f"bubblewrap does not work here: {problem}")
    assert [key for key, _, why in promises(iso) if why] == []
    out, received, left = _attack(iso, tmp_path)
    assert out["environ"] in ("FileNotFoundError", "PermissionError", "ProcessLookupError"), out
    assert out["renice"] != "done" and out["signal"] != "done", out
    assert out["raw"] == out["packet"] == "PermissionError", out
    assert not received, "a UDP datagram reached the grader's machine"
    assert left == [], "a process of the sandbox outlived it"


def test_builtin_sandbox_as_root_reports_exactly_what_it_cannot_promise(tmp_path):
    """Without bubblewrap and without a user switch, the attacks work, and the report
    says each of those promises does not hold (it does not claim what it cannot keep)."""
    from dlcourse.grading.sandbox import promises, report

    if os.geteuid() != 0:
        pytest.skip("the root-without-user-switch case needs root")
    iso = _isolation("builtin")
    not_held = {key for key, _, why in promises(iso) if why}
    assert not_held == {"proc", "signals", "network", "lifetime"}
    lines = "\n".join(report(iso))
    assert lines.count("NOT HELD on this machine") == 4 and "renice" in lines
    out, received, left = _attack(iso, tmp_path)
    assert out["environ"] == "read" and out["renice"] == "done" and out["raw"] == "opened"
    assert received and left


def test_grade_help_says_what_the_sandbox_promises_here():
    from dlcourse.grading.sandbox import PROMISES

    proc = subprocess.run([sys.executable, "-m", "dlcourse", "grade", "--help"],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert "sandbox on this machine" in proc.stdout
    for text in PROMISES.values():
        assert text in proc.stdout


def test_a_python_without_dlcourse_is_a_grader_error():
    from dlcourse.grading.errors import GraderError
    from dlcourse.grading.sandbox import kernel_dlcourse_dir

    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs a Python without dlcourse")
    with pytest.raises(GraderError, match="cannot import dlcourse"):
        kernel_dlcourse_dir(SYSTEM_PYTHON)


def test_kernel_that_imports_another_dlcourse_fails_its_bootstrap(tmp_path):
    """The bootstrap, before any student code, checks the kernel's dlcourse: a mismatch
    is a GraderError (the worker reports it as a grader error, exit status 1)."""
    from dlcourse.grading.errors import GraderError
    from dlcourse.grading.kernel import Limits, SandboxKernel
    from dlcourse.grading.worker import bootstrap_code

    notebook = FIXTURES / "submissions" / "full.ipynb"
    kernel = SandboxKernel(notebook, Limits(memory_mb=1024), unprivileged=False)
    try:
        with pytest.raises(GraderError, match="finds dlcourse in"):
            kernel.start(bootstrap_code({"dlcourse_dir": str(tmp_path / "dlcourse")}))
    finally:
        kernel.close()


# -- names, paths, CSV, text bounds ---------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("alice__ex1", "alice__ex1"), ("José", "José"), ("a-b_c.d", "a-b_c.d")])
def test_plain_student_ids_are_kept(raw, expected):
    from dlcourse.grading.batch import safe_student_id

    assert safe_student_id(raw) == expected


@pytest.mark.parametrize("raw", ["..", ".", "", ".hidden", "grades.csv", "batch.json",
                                 "GRADES.CSV", "a b", "a/b", "x" * 300, "é" * 90, "a\nb"])
def test_unsafe_student_ids_become_safe_folder_names(raw):
    from dlcourse.grading.batch import safe_student_id

    student = safe_student_id(raw)
    assert student != raw and not student.startswith(".") and "/" not in student
    assert len(student.encode()) <= 110 and student.isprintable()
    assert student.lower() not in ("grades.csv", "batch.json")
    assert safe_student_id(raw) == student  # deterministic
    assert safe_student_id(raw + "!") != student  # the hash keeps them apart


def test_admit_resolves_links_inside_and_refuses_the_rest(tmp_path):
    from dlcourse.grading.batch import MAX_NOTEBOOK_BYTES, admit

    root = tmp_path / "subs"
    root.mkdir()
    (root / "real.ipynb").write_text("{}")
    (root / "in.ipynb").symlink_to(root / "real.ipynb")
    (tmp_path / "secret.py").write_text("ANSWER = 42")
    (root / "out.ipynb").symlink_to(tmp_path / "secret.py")
    (root / "dangling.ipynb").symlink_to(root / "nothing")
    os.mkfifo(root / "fifo.ipynb")
    with open(root / "huge.ipynb", "wb") as handle:
        handle.truncate(MAX_NOTEBOOK_BYTES + 1)
    assert admit(root / "real.ipynb", root) == (root / "real.ipynb", None, None)
    target, note, refusal = admit(root / "in.ipynb", root)
    assert target == root / "real.ipynb" and "symbolic link" in note and refusal is None
    for name, phrase in (("out", "outside the submissions folder"), ("dangling", "cannot be"),
                         ("fifo", "not a regular file"), ("huge", "at most 64 MiB")):
        target, note, refusal = admit(root / f"{name}.ipynb", root)
        assert target is None and phrase in refusal, (name, refusal)


def test_clip_marks_what_it_cut():
    from dlcourse.grading.bounds import clip

    assert clip("short", 100) == "short"
    cut = clip("E" * 200_000, 300)
    assert len(cut) == 300 and cut.endswith("[truncated: 200000 characters in all]")
    with pytest.raises(ValueError, match="limit must be >= 40; received limit=10"):
        clip("x", 10)


def test_proxy_cuts_huge_names_and_refuses_huge_replies():
    from dlcourse.grading.codec import MAX_REPLY_CHARS

    payload = codec.dumps({"error": {"ename": "E" * 200_000, "evalue": "v" * 200_000}})
    with pytest.raises(SubmissionError) as info:
        Submission(FakeKernel([payload])).call("f")
    assert len(str(info.value)) < 5000 and "truncated" in str(info.value)
    kernel = FakeKernel([])
    kernel.execute = lambda code, **kw: ExecResult("ok", oversized=MAX_REPLY_CHARS + 1)
    with pytest.raises(SubmissionError, match="the grader reads at most 64 MB"):
        Submission(kernel).call("f")


def test_csv_with_huge_or_broken_fields_is_rebuilt_not_fatal(tmp_path):
    from dlcourse.grading.report import read_csv
    from dlcourse.grading.results import write_json

    path = tmp_path / "grades.csv"
    write_csv(path, {"alice": _result(2.0)})
    header = path.read_text().splitlines()[0]
    path.write_text(f"{header}\nbob,ex,bob.ipynb,1,2,50.0,graded,{'n' * 200_000},,,1\n")
    assert write_csv(path, {"alice": _result(2.0)}) is None  # long, but valid: read and cut
    rows, _ = read_csv(path)
    assert set(rows) == {"alice", "bob"} and len(rows["bob"]["notes"]) == 4000
    (tmp_path / "carol").mkdir()
    write_json(tmp_path / "carol" / "results.json",
               dict(_result(1.0), extra_data={"student": "carol", "notes": [], "status": "graded"}))
    path.write_bytes(b"student,score\x00\n\xff\xfe\x00\n")
    warning = write_csv(path, {"alice": _result(2.0)})
    assert "could not be read" in warning and (tmp_path / "grades.csv.unreadable").exists()
    rows, _ = read_csv(path)
    assert set(rows) == {"alice", "carol"}  # carol's row rebuilt from her results.json


def test_notebooks_without_cell_ids_are_matched_by_their_answer_tags():
    from dlcourse.grading.exercise import Exercise
    from dlcourse.grading.worker import missing_answer_cells, read_notebook

    exercise = Exercise.find("fixture_ex", COURSE)
    data = (FIXTURES / "submissions" / "nbformat42.ipynb").read_bytes()
    nb, reason = read_notebook(data)
    assert reason is None and nb.nbformat_minor == 2
    assert missing_answer_cells(nb, exercise) == []
    del nb.cells[2]  # the Counter cell
    assert len(missing_answer_cells(nb, exercise)) == 1
    for cell in nb.cells:
        cell.metadata.pop("tags", None)
    assert missing_answer_cells(nb, exercise) == []  # nothing to tell by: say nothing


def test_codec_sends_a_lying_ndarray_subclass_as_what_it_really_is():
    """An ndarray subclass whose dtype property lies arrives with its real dtype and values."""

    class Liar(np.ndarray):
        @property
        def dtype(self):
            return np.dtype(np.float32)

    x = np.arange(4, dtype=np.float64).view(Liar)
    assert x.dtype == np.float32  # the lie
    back = codec.decode(codec.encode(x))
    assert type(back) is np.ndarray and back.dtype == np.float64
    np.testing.assert_array_equal(back, np.arange(4.0))
