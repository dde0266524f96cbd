"""A sandboxed kernel driven through nbclient: what the grader keeps, how it stops code.

Each test starts a real kernel (builtin sandbox, the grader's own user) and runs code
in it the way the worker does (``SandboxKernel.execute``) or the hidden tests do
(``Submission.call``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dlcourse.grading import SubmissionError, codec
from dlcourse.grading.kernel import CellTimeout, KernelDied, SandboxKernel
from dlcourse.grading.proxy import Submission
from dlcourse.grading.sandbox import Limits

NOTEBOOK = Path(__file__).resolve().parent / "grading_fixtures" / "submissions" / "full.ipynb"

pytestmark = pytest.mark.slow


def _start(**limits) -> SandboxKernel:
    from dlcourse.grading.worker import bootstrap_code

    kernel = SandboxKernel(NOTEBOOK, Limits(memory_mb=1024, **limits), unprivileged=False)
    kernel.start(bootstrap_code({}))
    return kernel


def _pending_tasks() -> list:
    """Tasks left on the event loop nbclient runs in this thread."""
    import asyncio

    from jupyter_core.utils import ensure_event_loop

    return [task for task in asyncio.all_tasks(ensure_event_loop()) if not task.done()]


@pytest.fixture(scope="module")
def kernel():
    kernel = _start()
    yield kernel
    kernel.close()


@pytest.fixture
def own_kernel():
    kernel = _start()
    yield kernel
    kernel.close()


def test_replies_come_back_and_errors_are_reported(kernel):
    kernel.execute("def double(x):\n    return 2 * x", timeout=10)
    assert Submission(kernel).call("double", 21) == 42
    result = kernel.execute("1 / 0", timeout=10)
    assert (result.status, result.ename) == ("error", "ZeroDivisionError")
    assert result.evalue == "division by zero" and result.payloads == []


def test_a_flood_of_output_leaves_only_the_last_reply(kernel):
    """Of 30 RPC-typed messages, prints, plain displays and comms, the grader keeps the
    last reply that fits, counts the one over the size it reads, and nothing else."""
    code = (
        "from IPython.display import publish_display_data\n"
        "from comm import create_comm\n"
        f"for i in range(30):\n"
        f"    publish_display_data({{{codec.MIME!r}: f'reply {{i}}'}})\n"
        "    publish_display_data({'text/plain': 'x' * 100_000})\n"
        "    print('y' * 10_000)\n"
        "    create_comm(target_name='jupyter.widget', data={'state': {'v': 'z' * 10_000}})\n"
        f"publish_display_data({{{codec.MIME!r}: 'w' * {codec.MAX_REPLY_CHARS + 1}}})\n")
    result = kernel.execute(code, timeout=60)
    assert result.status == "ok", (result.ename, result.evalue)
    assert result.payloads == ["reply 29"]
    assert result.oversized == codec.MAX_REPLY_CHARS + 1
    assert kernel.client.nb.cells[0].outputs == [] and not kernel.client.widget_state


def test_a_reply_too_large_to_read_is_refused_with_its_size(kernel):
    kernel.execute(f"def huge():\n    return 'y' * {codec.MAX_REPLY_CHARS + 10}", timeout=10)
    with pytest.raises(SubmissionError, match="the grader reads at most 64 MB"):
        Submission(kernel).call("huge")


def test_the_grader_reads_no_frame_over_its_limit(kernel):
    import zmq

    from dlcourse.grading.execution import MAX_MESSAGE_BYTES

    kc = kernel.client.kc
    for channel in (kc.shell_channel, kc.iopub_channel):
        assert channel.socket.getsockopt(zmq.MAXMSGSIZE) == MAX_MESSAGE_BYTES


def test_a_cell_past_its_time_is_interrupted_and_the_kernel_goes_on(kernel):
    start = time.monotonic()
    with pytest.raises(CellTimeout):
        kernel.execute("import time\nwhile True:\n    time.sleep(0.01)", timeout=1)
    assert time.monotonic() - start < 4
    assert kernel.dead_reason is None and _pending_tasks() == []
    result = kernel.execute("def triple(x):\n    return 3 * x", timeout=10)
    assert result.status == "ok"  # the next request gets its own reply
    assert Submission(kernel).call("triple", 14) == 42


def test_a_cell_that_swallows_the_interrupt_is_killed(own_kernel):
    code = ("import time\nwhile True:\n    try:\n        time.sleep(0.01)\n"
            "    except KeyboardInterrupt:\n        pass")
    with pytest.raises(CellTimeout):
        own_kernel.execute(code, timeout=1)
    assert "did not stop when interrupted, so the kernel was killed" in own_kernel.dead_reason
    with pytest.raises(KernelDied, match="did not stop"):
        own_kernel.execute("1", timeout=10)


def test_a_kernel_that_exits_is_reported_with_its_status(own_kernel):
    start = time.monotonic()
    with pytest.raises(KernelDied, match="exited with status 3"):
        own_kernel.execute("import os\nos._exit(3)", timeout=30)
    assert time.monotonic() - start < 10


def test_the_notebook_time_limit_kills_without_a_grace():
    kernel = _start(notebook_timeout=10)
    try:
        time.sleep(max(0.0, kernel.deadline - time.monotonic() - 1.5))
        start = time.monotonic()
        with pytest.raises(KernelDied, match="the notebook's time limit of 10 s ran out"):
            kernel.execute("import time\ntime.sleep(30)", timeout=30)
        assert time.monotonic() - start < 3
        assert _pending_tasks() == []  # nbclient's reader of that cell's output is stopped
        with pytest.raises(KernelDied, match="time limit"):
            kernel.execute("1", timeout=10)
    finally:
        kernel.close()


def test_grader_requests_run_silently(kernel):
    """``store_history=False`` neither counts as an execution nor shows a value."""
    before = kernel.execute("count_before = get_ipython().execution_count", timeout=10)
    assert before.status == "ok"
    for _ in range(3):
        kernel.execute("1", timeout=10, store_history=False)
    kernel.execute("count_after = get_ipython().execution_count", timeout=10)
    sub = Submission(kernel)
    assert sub.get("count_after") == sub.get("count_before") + 1
