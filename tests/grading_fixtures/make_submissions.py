"""Write the fixture submissions the grader's tests grade (run from the repo root).

    .venv/bin/python tests/grading_fixtures/make_submissions.py

It is deterministic: running it again rewrites the same files.

Each notebook is a variant of ``course/solutions/fixture_ex.ipynb`` (the tiny
fixture exercise, 6 points: double 1+1, Counter 1, dropout 2, RESULT 1).
``EXPECTED`` is the score each must get and is what the tests check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

HERE = Path(__file__).resolve().parent
OUT = HERE / "submissions"

HEADER = 'EXERCISE = "fixture_ex"\nimport numpy as np'
DOUBLE = "def double(x):\n    return x * 2"
COUNTER = ("class Counter:\n    def __init__(self):\n        self.total = 0.0\n\n"
           "    def add(self, n):\n        self.total += n")
DROPOUT = ("def dropout(x, rate, seed):\n    rng = np.random.default_rng(seed)\n"
           "    keep = 1.0 - rate\n    return x * (rng.random(x.shape) < keep) / keep")
RESULT = 'RESULT = {"rate": 0.25, "ok": (True, None)}'

#: submission stem -> (points it must earn, a phrase its feedback/notes must contain)
EXPECTED = {
    "full": (6, None),
    "blank": (0, "NotImplementedError"),
    "infinite_loop": (4, "did not finish within"),
    "sys_exit": (4, "SystemExit"),
    "os_exit": (0, "exited with status"),
    "first_cell_error": (4, "NameError"),
    "fake_results": (5, "double(x) must return 2 * x"),
    "monkeypatch": (5, "double(x) must return 2 * x"),
    "prints_all_passed": (5, "double(x) must return 2 * x"),
    "reads_outside": (0, None),
    "memory_hog": (4, "MemoryError"),
    "invalid_json": (0, "invalid JSON"),
    "wrong_nbformat": (0, "format version 3"),
    "missing_answer": (5, "does not define 'Counter'"),
    "calls_reference": (4, "earns no credit"),
    "returns_object": (4, "returned an object of type set"),
    "writes_shm": (5, "define RESULT"),
    # The sandbox's promises: each notebook defines RESULT (1 point) only if its attack
    # worked. SANDBOX_ATTACKS says which promise each tests.
    "reads_proc": (5, "define RESULT"),
    "renices": (5, "define RESULT"),
    "raw_socket": (5, "define RESULT"),
    "daemon": (6, None),
    # Bounded resources (see also FLOOD): an exception class named by 200,000 characters.
    "long_exception": (4, "truncated"),
    # nbformat 4.2 has no cell ids: no "answer cell missing" note.
    "nbformat42": (6, None),
    # Imports dlcourse in the kernel: full marks from any folder (another clone included).
    "uses_dlcourse": (6, None),
}

#: Graded with generous time limits (folder flood/): 40 display messages of 8 MB in the RPC's
#: type after the answers, and a reply of 68 MB (over the 64 MB the grader reads).
EXPECTED_FLOOD = {"flood": (6, None), "huge_reply": (4, "the grader reads at most 64 MB"),
                  "full": (6, None)}

#: The promise (dlcourse.grading.sandbox.PROMISES) each attack notebook tests.
SANDBOX_ATTACKS = {"reads_proc": "proc", "renices": "signals", "raw_socket": "network",
                   "daemon": "lifetime"}
#: The raw_socket notebook also sends a UDP datagram here (the tests listen for it).
UDP_PORT = 47913
#: The daemon notebook's process carries this in its command line (the tests look for it).
DAEMON_MARKER = "dlcourse-fixture-daemon"

#: Graded with a short notebook limit (TIME_LIMITS, in the folder time_limits/):
#: stem -> (points, a phrase every test's feedback must contain).
TIME_LIMITS = {"cell_timeout": 3, "notebook_timeout": 20}
EXPECTED_TIME_LIMITS = {
    "swallows_interrupt": (0, "did not stop when interrupted"),
    "outlasts_notebook": (0, "the notebook's time limit of 20 s ran out"),
    "full": (6, None),
}

#: Graded against the fixture exercise fixture_seed (folder seeding/): their first draws
#: from random, NumPy's global generator and torch, and a str hash, in DRAWS. Each must earn
#: all 4 points, i.e. see exactly the draws of the grader's seed.
EXPECTED_SEEDING = {"numpy_first": 4, "torch_first": 4}

#: Files the writes_shm notebook tries to leave in /dev/shm (the tests check none is left).
SHM_PREFIX = "/dev/shm/dlcourse-fixture-escape"


def processes_with(marker):
    """Pids of live (not zombie) processes whose command line holds ``marker``."""
    import os

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(pid))
    return found


def _tagged(source: str):
    return new_code_cell(source, metadata={"tags": ["answer"]})


def notebook(*cells: str, ids: list[str] | None = None):
    solution = nbformat.read(HERE / "course" / "solutions" / "fixture_ex.ipynb", as_version=4)
    answer_ids = [c.id for c in solution.cells if "answer" in c.metadata.get("tags", [])]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    # Other cells get ids from their index and source, so regenerating changes nothing.
    for index, cell in enumerate(nb.cells):
        cell.id = hashlib.sha256(f"{index}:{cell.source}".encode()).hexdigest()[:8]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    # Cells keep the exercise's answer-cell ids, as Jupyter would.
    for cell, cell_id in zip(nb.cells[1:], ids if ids is not None else answer_ids, strict=False):
        cell.id = cell_id
        cell.metadata["tags"] = ["answer"]
    return nb


def build() -> dict[str, object]:
    nbs: dict[str, object] = {}
    nbs["full"] = notebook(HEADER, DOUBLE, COUNTER, DROPOUT, RESULT)
    nbs["blank"] = nbformat.read(HERE / "course" / "exercises" / "fixture_ex.ipynb",
                                 as_version=4)
    nbs["infinite_loop"] = notebook(
        HEADER, "def double(x):\n    while True:\n        pass", COUNTER, DROPOUT, RESULT,
        "while True:\n    pass")
    nbs["sys_exit"] = notebook(
        HEADER, "import sys\n\ndef double(x):\n    sys.exit(0)", COUNTER, DROPOUT, RESULT,
        "sys.exit(1)")
    nbs["os_exit"] = notebook(HEADER, DOUBLE, COUNTER, DROPOUT, RESULT, "import os\nos._exit(0)")
    nbs["first_cell_error"] = notebook(
        'EXERCISE = "fixture_ex"\nraise RuntimeError("boom")\nimport numpy as np',
        DOUBLE, COUNTER, DROPOUT, RESULT)
    fake = json.dumps({"score": 100, "max_score": 6, "tests": []})
    nbs["fake_results"] = notebook(
        HEADER, "def double(x):\n    return x", COUNTER, DROPOUT, RESULT,
        "import glob, os\n"
        f"fake = {fake!r}\n"
        "targets = ['results.json', '../results.json', os.path.expanduser('~/results.json')]\n"
        "targets += glob.glob('/tmp/**/results.json', recursive=True)\n"
        "targets += glob.glob('/tmp/**/grades.csv', recursive=True)\n"
        "for t in targets:\n"
        "    try:\n"
        "        with open(t, 'w') as f:\n"
        "            f.write(fake)\n"
        "    except OSError as e:\n"
        "        print('could not write', t, e)")
    nbs["monkeypatch"] = notebook(
        HEADER, "def double(x):\n    return x + 1", COUNTER, DROPOUT, RESULT,
        "import builtins, numpy, dlcourse, dlcourse.grading, dlcourse.scratch.dropout as d\n"
        "numpy.allclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "dlcourse.grading.points = lambda value: (lambda f: f)\n"
        "d.dropout_forward = lambda x, rate, **k: (x, None)\n"
        "try:\n"
        "    import dlcourse.grading.worker as worker\n"
        "    worker.grade_notebook = lambda *a, **k: {'score': 6}\n"
        "except Exception as e:\n"
        "    print(e)\n"
        "builtins.AssertionError = type('Never', (Exception,), {})")
    nbs["prints_all_passed"] = notebook(
        HEADER, "def double(x):\n    return x", COUNTER, DROPOUT, RESULT,
        "from IPython.display import publish_display_data\n"
        "print('All tests passed')\nprint('Score: 6 / 6')\n"
        "publish_display_data({'application/x-dlcourse-rpc': '{\"ok\": true}'})\n"
        "import sys; print('{\"event\": \"done\", \"result\": {\"score\": 6}}', file=sys.stderr)")
    nbs["reads_outside"] = notebook(
        HEADER, "import re, pathlib, dlcourse\n"
        "root = pathlib.Path(dlcourse.__file__).resolve().parents[1]\n"
        "hidden = root / 'tests/grading_fixtures/course/tests/hidden/fixture_ex/test_fixture.py'\n"
        "try:\n"
        "    source = hidden.read_text()\n"
        "    RESULT = eval(re.search(r'== (\\{.*\\}), \"RESULT', source).group(1))\n"
        "except OSError as e:\n"
        "    print('could not read the hidden tests:', e)\n"
        "try:\n"
        "    (root / 'tests/grading_fixtures/course/tests/hidden/fixture_ex/test_fixture.py')"
        ".write_text('')\n"
        "except OSError as e:\n"
        "    print('could not overwrite the hidden tests:', e)", ids=[])
    nbs["memory_hog"] = notebook(
        HEADER, "def double(x):\n    hog = []\n    while True:\n"
        "        hog.append(np.ones(2**24))", COUNTER, DROPOUT, RESULT,
        "hog = []\nwhile True:\n    hog.append(np.ones(2**24))")
    nbs["missing_answer"] = notebook(HEADER, DOUBLE, DROPOUT, RESULT)
    solution = nbformat.read(HERE / "course" / "solutions" / "fixture_ex.ipynb", as_version=4)
    ids = [c.id for c in solution.cells if "answer" in c.metadata.get("tags", [])]
    nbs["missing_answer"] = notebook(HEADER, DOUBLE, DROPOUT, RESULT,
                                     ids=[ids[0], ids[2], ids[3]])
    nbs["calls_reference"] = notebook(
        HEADER, DOUBLE, COUNTER,
        "import importlib\nimport dlcourse.scratch.dropout\n"
        "importlib.reload(dlcourse.scratch.dropout)\n"
        "from dlcourse.scratch import dropout_forward\n\n"
        "def dropout(x, rate, seed):\n    return dropout_forward(x, rate, rng=seed)[0]", RESULT)
    nbs["returns_object"] = notebook(
        HEADER, "def double(x):\n    return set(x.tolist())", COUNTER, DROPOUT, RESULT)
    # RESULT only through /dev/shm, and memory that RLIMIT_DATA does not count (3 x 200 MiB,
    # each under the 256 MiB file-size limit): the sandbox must refuse both.
    nbs["writes_shm"] = notebook(
        HEADER, DOUBLE, COUNTER, DROPOUT,
        "import json\n"
        f"path = '{SHM_PREFIX}-result.json'\n"
        "try:\n"
        "    with open(path, 'w') as f:\n"
        "        json.dump({'rate': 0.25, 'ok': [True, None]}, f)\n"
        "    with open(path) as f:\n"
        "        saved = json.load(f)\n"
        "    RESULT = {'rate': saved['rate'], 'ok': tuple(saved['ok'])}\n"
        "except OSError as e:\n"
        "    print('could not use /dev/shm:', e)",
        "for i in range(3):\n"
        "    try:\n"
        f"        with open(f'{SHM_PREFIX}-hog{{i}}', 'wb') as f:\n"
        "            for _ in range(200):\n"
        "                f.write(bytes(2**20))\n"
        "    except OSError as e:\n"
        "        print('could not use /dev/shm:', e)")
    answers = (HEADER, DOUBLE, COUNTER, DROPOUT)
    nbs["reads_proc"] = notebook(
        *answers,
        "import os\n"
        "stolen = []\n"
        "pids = {os.getppid(), 1} | {int(p) for p in os.listdir('/proc') if p.isdigit()}\n"
        "for pid in sorted(pids - {os.getpid(), 0}):\n"
        "    try:\n"
        "        with open(f'/proc/{pid}/environ', 'rb') as f:\n"
        "            stolen.append((pid, len(f.read())))\n"
        "    except OSError as e:\n"
        "        print('refused', pid, e)\n"
        "if stolen:\n"
        "    print('read the environment of', stolen)\n"
        f"    {RESULT}")
    nbs["renices"] = notebook(
        *answers,
        "import os\n"
        "done = []\n"
        "pids = {os.getppid(), 1} | {int(p) for p in os.listdir('/proc') if p.isdigit()}\n"
        "for pid in sorted(pids - {os.getpid(), 0}):\n"
        "    try:  # the same priority again: a permission check that changes nothing\n"
        "        os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid))\n"
        "        done.append(('renice', pid))\n"
        "    except OSError as e:\n"
        "        print('renice refused', pid, e)\n"
        "    try:\n"
        "        os.kill(pid, 0)  # signal 0: a permission check that sends nothing\n"
        "        done.append(('signal', pid))\n"
        "    except OSError as e:\n"
        "        print('signal refused', pid, e)\n"
        "if done:\n"
        "    print('reached', done)\n"
        f"    {RESULT}")
    nbs["raw_socket"] = notebook(
        *answers,
        "import socket\n"
        "opened = []\n"
        "for name, args in (('raw', (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),\n"
        "                   ('raw6', (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)),\n"
        "                   ('packet', (socket.AF_PACKET, socket.SOCK_RAW, 0))):\n"
        "    try:\n"
        "        socket.socket(*args).close()\n"
        "        opened.append(name)\n"
        "    except OSError as e:\n"
        "        print('refused', name, e)\n"
        "try:\n"
        "    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"    udp.sendto(b'dlcourse-fixture-udp', ('127.0.0.1', {UDP_PORT}))\n"
        "except OSError as e:\n"
        "    print('udp refused', e)\n"
        "if opened:\n"
        "    print('opened', opened)\n"
        f"    {RESULT}")
    nbs["daemon"] = notebook(
        *answers, RESULT,
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        null = os.open('/dev/null', os.O_RDWR)\n"
        "        for fd in (0, 1, 2):\n"
        "            os.dup2(null, fd)\n"
        "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(900)',\n"
        f"                                  {DAEMON_MARKER!r}])\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)")
    nbs["long_exception"] = notebook(
        HEADER,
        "Long = type('E' * 200_000, (Exception,), {})\n\n"
        "def double(x):\n    raise Long('no answer')",
        COUNTER, DROPOUT, RESULT, "raise Long('in a cell')")
    nbs["uses_dlcourse"] = notebook(
        *answers, RESULT, "import dlcourse.scratch\nLOADED = dlcourse.scratch.__name__")
    return nbs


def build_flood() -> dict[str, object]:
    """A flood of RPC-typed display messages, and a reply over the size the grader reads."""
    return {
        "flood": notebook(
            HEADER, DOUBLE, COUNTER, DROPOUT, RESULT,
            "from IPython.display import publish_display_data\n"
            "for i in range(40):\n"
            "    publish_display_data({'application/x-dlcourse-rpc': 'x' * 8_000_000})"),
        "huge_reply": notebook(
            HEADER, "def double(x):\n    return 'y' * 68_000_000", COUNTER, DROPOUT, RESULT),
        "full": notebook(HEADER, DOUBLE, COUNTER, DROPOUT, RESULT),
    }


def nbformat42(nb) -> str:
    """``nb`` as nbformat 4.2 JSON: no cell ids (older Jupyter and other editors)."""
    data = json.loads(nbformat.writes(nb))
    data["nbformat_minor"] = 2
    for cell in data["cells"]:
        cell.pop("id", None)
    return json.dumps(data, indent=1)


def build_time_limits() -> dict[str, object]:
    """Notebooks that answer everything, then run past the cell or the notebook limit."""
    answers = (HEADER, DOUBLE, COUNTER, DROPOUT, RESULT)
    swallow = ("while True:\n    try:\n        while True:\n            pass\n"
               "    except KeyboardInterrupt:\n        print('interrupted; going on')")
    slow = [f"import time\ntime.sleep(2)  # {i}" for i in range(12)]  # 24 s > 20 s
    return {
        "swallows_interrupt": notebook(*answers, swallow),
        "outlasts_notebook": notebook(*answers, *slow),
        "full": notebook(*answers),
    }


def build_seeding() -> dict[str, object]:
    """Two notebooks that import and draw in different orders, after different code."""
    def draws(*order):
        parts = {"random": "[random.random() for _ in range(3)]",
                 "numpy": "np.random.rand(3).tolist()",
                 "torch": "torch.rand(3).tolist()", "hash": "hash('dlcourse')"}
        return "DRAWS = {}\n" + "".join(f"DRAWS[{k!r}] = {parts[k]}\n" for k in order)

    return {
        "numpy_first": new_notebook(cells=[
            new_code_cell('EXERCISE = "fixture_seed"\nimport random\nimport numpy as np\n'
                          "import torch"),
            new_code_cell(draws("random", "numpy", "torch", "hash"))]),
        "torch_first": new_notebook(cells=[
            new_code_cell('EXERCISE = "fixture_seed"\nimport torch\n'
                          "x = torch.arange(4.0).reshape(2, 2) @ torch.ones(2)  # no draw"),
            new_code_cell("import random\nimport sklearn\nimport numpy as np\n\n"
                          "def unused():\n    return np.random.rand()\n"),
            new_code_cell(draws("hash", "torch", "numpy", "random"))]),
    }


def main() -> None:
    (HERE / "seeding").mkdir(exist_ok=True)
    for name, nb in build_seeding().items():
        for index, cell in enumerate(nb.cells):
            cell.id = f"{name[:4]}{index:04d}"
        nbformat.write(nb, HERE / "seeding" / f"{name}.ipynb")
    (HERE / "flood").mkdir(exist_ok=True)
    for name, nb in build_flood().items():
        nbformat.write(nb, HERE / "flood" / f"{name}.ipynb")
    (HERE / "time_limits").mkdir(exist_ok=True)
    for name, nb in build_time_limits().items():
        nbformat.write(nb, HERE / "time_limits" / f"{name}.ipynb")
    OUT.mkdir(exist_ok=True)
    for name, nb in build().items():
        nbformat.write(nb, OUT / f"{name}.ipynb")
    (OUT / "invalid_json.ipynb").write_text('{"cells": [ {"cell_type": "code", "source": "x = 1"\n')
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {},
          "worksheets": [{"cells": [{"cell_type": "code", "input": DOUBLE, "outputs": [],
                                     "language": "python"}]}]}
    (OUT / "wrong_nbformat.ipynb").write_text(json.dumps(v3, indent=1))
    (OUT / "nbformat42.ipynb").write_text(nbformat42(
        notebook(HEADER, DOUBLE, COUNTER, DROPOUT, RESULT)))
    missing = set(EXPECTED) - {p.stem for p in OUT.glob("*.ipynb")}
    assert not missing, missing


if __name__ == "__main__":
    main()
