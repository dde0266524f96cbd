"""Code run in a student's kernel through nbclient: what the grader keeps, how long it waits.

:class:`GraderClient` is nbclient's ``NotebookClient`` driving one kernel that
:class:`dlcourse.grading.kernel.SandboxKernel` started, one code string at a
time. nbclient sends the request, waits for the reply and for the kernel to go
idle, checks every second that the kernel lives (``DeadKernelError``), and
interrupts it when the time is up. What this subclass changes:

* **It keeps no output.** Every message the kernel publishes for a request is
  read and dropped, except the last RPC reply (a ``display_data`` of type
  :data:`codec.MIME`, at most :data:`codec.MAX_REPLY_CHARS` characters): a
  notebook that floods the grader with messages, widgets or comms cannot make it
  hold them. A larger reply is counted, not kept.
* **A time-out interrupts, then gives up.** nbclient's ``interrupt_on_timeout``
  interrupts the kernel and its ``error_on_timeout`` reply stands for the one
  that may never come; the kernel then has :data:`INTERRUPT_GRACE` seconds to go
  idle, else nbclient raises ``CellTimeoutError`` and the caller kills it. When
  the notebook's own time is what ran out, there is no interrupt: the caller
  kills at once.
* **The grader's own requests run silently.** An execute with
  ``store_history=False`` goes out with ``silent=True`` (no ``execute_input``
  broadcast, display hook or execution count: about 2 ms less per request);
  replies still come as ``display_data``.
* **Frames are capped.** The client's sockets drop any message over
  :data:`MAX_MESSAGE_BYTES` before it is read into memory.
"""

from __future__ import annotations

import asyncio
import logging
import math
from queue import Empty

import zmq
import zmq.asyncio

from dlcourse.grading import codec
from dlcourse.grading._nbformat import nbformat

# nbformat first, without the optional module that costs 1.6 s (see _nbformat); then nbclient.
NotebookNode = nbformat().NotebookNode

from jupyter_client import AsyncKernelManager  # noqa: E402
from jupyter_client.asynchronous import AsyncKernelClient  # noqa: E402
from jupyter_client.channels import AsyncZMQSocketChannel  # noqa: E402
from jupyter_client.kernelspec import KernelSpec  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionComplete  # noqa: E402
from traitlets import Type, default  # noqa: E402

#: The largest message frame the grader's sockets accept from a kernel: a larger one is
#: dropped by ZeroMQ before it reaches the grader's memory (the connection is reset).
MAX_MESSAGE_BYTES = 256 * 2**20
#: Seconds an interrupted kernel has to stop before it is killed.
INTERRUPT_GRACE = 5

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())  # nbclient's "Interrupting kernel" is not news


class _Channel(AsyncZMQSocketChannel):
    """A channel that waits for a message by receiving it: jupyter_client polls the socket
    first, then receives (two rounds of futures through the event loop per message)."""

    async def get_msg(self, timeout: float | None = None) -> dict:
        received = self.socket.recv_multipart()
        if timeout is None:
            frames = await received
        else:
            try:
                frames = await asyncio.wait_for(received, timeout)
            except TimeoutError:
                raise Empty from None
        _, frames = self.session.feed_identities(frames)
        return self.session.deserialize(frames)


class GraderKernelClient(AsyncKernelClient):
    """The kernel client nbclient gets: capped frames; ``store_history=False`` is silent;
    shell and IOPub messages are read with one receive each."""

    shell_channel_class = Type(_Channel)
    iopub_channel_class = Type(_Channel)

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        return context

    def execute(self, code: str, silent: bool = False, store_history: bool = True,
                *args, **kwargs) -> str:
        # nbclient passes store_history only; the grader's requests are the ones without it.
        return super().execute(code, silent or not store_history, store_history,
                               *args, **kwargs)


def kernel_manager(argv: list[str], *, connection_file: str,
                   ipc_folder: str | None = None) -> AsyncKernelManager:
    """A manager that starts the kernel with ``argv`` (the sandbox's command line).

    Args:
        connection_file: Where the connection file goes (a folder only the grader reads).
        ipc_folder: Talk over Unix sockets with this path prefix instead of TCP on
            loopback, and interrupt with a message on the control channel instead of
            a signal (for a kernel in its own network and PID namespaces).
    """
    spec = KernelSpec(argv=argv, display_name="dlcourse sandbox", language="python", env={},
                      interrupt_mode="message" if ipc_folder else "signal")
    km = AsyncKernelManager(kernel_name="python3", client_factory=GraderKernelClient,
                            connection_file=connection_file)
    km._kernel_spec = spec  # the command line is ours, not an installed kernelspec's
    if ipc_folder:
        km.transport = "ipc"
        km.ip = ipc_folder
    km.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    return km


def _code_cell(source: str) -> NotebookNode:
    # Built by hand: nbformat.v4.new_code_cell validates against the schema (milliseconds).
    return NotebookNode(cell_type="code", source=source, metadata=NotebookNode(), outputs=[])


class GraderClient(NotebookClient):
    """Runs code strings in one started kernel (see the module docstring).

    After :meth:`run`, ``reply`` is the content of the ``execute_reply`` (``status``,
    ``ename``, ``evalue``), ``payload`` the last RPC reply or None, ``oversized`` the
    length of the longest reply refused for its size (0 if none), and ``timed_out``
    whether the kernel was interrupted for time (and stopped).
    """

    def __init__(self, km: AsyncKernelManager, *, startup_timeout: float):
        super().__init__(
            NotebookNode(cells=[_code_cell("")], metadata=NotebookNode()), km=km, log=_log,
            startup_timeout=math.ceil(startup_timeout), allow_errors=True, record_timing=False,
            store_widget_state=False, raise_on_iopub_timeout=True,
            error_on_timeout={"ename": "TimeoutError", "evalue": "interrupted", "traceback": []},
            shutdown_kernel="immediate", on_cell_executed=self._keep_reply)
        self.timeout_func = lambda cell: self._timeout
        self._timeout = 0.0
        self.reply: dict = {}
        self.payload: str | None = None
        self.oversized = 0
        self.timed_out = False

    def run(self, code: str, *, timeout: float, store_history: bool, interrupt: bool) -> None:
        """Execute ``code``; the outcome is in the attributes (see the class docstring).

        Args:
            timeout: Seconds until the kernel is interrupted (or given up on).
            interrupt: Interrupt the kernel at the time-out and wait
                :data:`INTERRUPT_GRACE` seconds for it to stop; else give up at once.

        Raises:
            nbclient.exceptions.DeadKernelError: The kernel died.
            nbclient.exceptions.CellTimeoutError: The kernel did not stop in time: kill it
                (that also ends nbclient's reader of this request's output).
        """
        self.reply, self.payload, self.oversized, self.timed_out = {"status": "ok"}, None, 0, False
        self._timeout = max(timeout, 1e-3)  # 0 would mean "no time-out" to nbclient
        self.interrupt_on_timeout = interrupt
        # Once the reply is in, the kernel still has the rest of the time to go idle
        # (a flood of output may be queued in front of the idle status).
        self.iopub_timeout = max(1, math.ceil(timeout))
        self.execute_cell(_code_cell(code), 0, store_history=store_history)

    def close(self) -> None:
        """Shut the kernel down and close the channels (nbclient's own clean-up)."""
        if self.km is not None:
            self._cleanup_kernel()

    # -- nbclient's hooks ---------------------------------------------------------------
    def _keep_reply(self, cell, cell_index, execute_reply) -> None:
        content = execute_reply.get("content") if isinstance(execute_reply, dict) else None
        self.reply = content if isinstance(content, dict) else {"status": "error"}

    def process_message(self, msg: dict, cell: NotebookNode, cell_index: int) -> None:
        """Keep the last RPC reply of the request and nothing else; stop at ``idle``."""
        content = msg.get("content")
        if not isinstance(content, dict):
            return None
        if msg.get("msg_type") == "status":
            if content.get("execution_state") == "idle":
                raise CellExecutionComplete()
        elif msg.get("msg_type") == "display_data":
            data = content.get("data")
            payload = data.get(codec.MIME) if isinstance(data, dict) else None
            if isinstance(payload, str):
                if len(payload) > codec.MAX_REPLY_CHARS:
                    self.oversized = max(self.oversized, len(payload))
                else:
                    self.payload = payload
        return None

    async def _async_handle_timeout(self, timeout, cell=None):
        if self.interrupt_on_timeout:
            self.timed_out = True
            self.iopub_timeout = INTERRUPT_GRACE  # from now on: the time it has to stop
        return await super()._async_handle_timeout(timeout, cell)
