"""A student's notebook kernel, started inside the sandbox and driven by the grader.

Code runs in it through nbclient (:mod:`dlcourse.grading.execution`: what the
grader keeps of the kernel's messages, time-outs, a dead kernel). See
:mod:`dlcourse.grading.launcher` for what the sandbox applies at start and the
"Security model" section of the instructors' guide (``book/grading.md``) for
what that guarantees.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlcourse.grading.errors import GraderError
from dlcourse.grading.sandbox import LAUNCHER, Limits, UidLease, launcher_config


class KernelDied(Exception):
    """The kernel is gone; ``str(exc)`` says why."""


class CellTimeout(Exception):
    """Code ran past its time limit (the kernel may or may not survive)."""


@dataclass
class ExecResult:
    """What one ``execute_request`` produced."""

    status: str
    ename: str | None = None
    evalue: str | None = None
    payloads: list[str] = field(default_factory=list)
    oversized: int = 0


def _describe_exit(code: int | None, *, shell_status: bool = False) -> str:
    """Why the kernel ended; ``shell_status``: codes 129-192 mean a signal (bubblewrap
    reports a child killed by signal N as exit status 128 + N)."""
    if code is None:
        return "the kernel stopped responding"
    if shell_status and 128 < code <= 192:
        code = 128 - code
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGKILL": " (killed, e.g. for using too much memory)",
            "SIGXCPU": " (CPU time limit)",
            "SIGSEGV": " (crashed)",
            "SIGABRT": " (aborted)",
        }.get(name, "")
        return f"the kernel was killed by {name}{hint}"
    return f"the kernel exited with status {code} (sys.exit/os._exit or a crash)"


def process_start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), or None if there is
    none: with the pid, it names one process even after pid numbers wrap around."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _copy_font_cache(target: Path) -> None:
    """Give matplotlib a font cache so each kernel does not rebuild it."""
    candidates = [os.environ.get("MPLCONFIGDIR"), "~/.cache/matplotlib", "~/.matplotlib"]
    for candidate in candidates:
        if not candidate:
            continue
        folder = Path(candidate).expanduser()
        fonts = sorted(folder.glob("fontlist-v*.json")) if folder.is_dir() else []
        if fonts:
            target.mkdir(parents=True, exist_ok=True)
            for font in fonts:
                shutil.copy(font, target / font.name)
            return


class SandboxKernel:
    """One student kernel in its sandbox.

    Args:
        notebook_path: The submission (copied into the sandbox folder).
        limits: Time and memory limits, seed.
        unprivileged: Run as a dedicated unprivileged uid (needs root).
        bwrap: The ``bwrap`` executable: start the kernel in bubblewrap (its own
            namespaces; the kernel talks to the grader through Unix sockets in its
            folder, and is interrupted by a message on its control channel).
        dlcourse_dir: The dlcourse package the kernel imports (what the sandbox exposes).
    """

    def __init__(self, notebook_path: Path, limits: Limits, *, unprivileged: bool,
                 bwrap: str | None = None, dlcourse_dir: str | None = None):
        self.limits = limits
        self.notebook_path = Path(notebook_path)
        self.unprivileged = unprivileged
        self.bwrap = bwrap
        self.dlcourse_dir = dlcourse_dir
        self.dead_reason: str | None = None
        self.km = None
        self.client = None  # the GraderClient (nbclient) that runs code in the kernel
        self._lease: UidLease | None = None
        self._stderr = None
        self._private = Path(tempfile.mkdtemp(prefix="dlcourse-grader-"))
        self.workdir = Path(tempfile.mkdtemp(prefix="dlcourse-sandbox-"))
        # Requests travel as files the kernel may read (by name) but not list or change;
        # big arrays inside a code string would be slow to parse.
        self._rpc_dir = self._private / "rpc"
        self._rpc_dir.mkdir()
        self._private.chmod(0o711)
        self._rpc_dir.chmod(0o711)
        self._requests = 0
        self.deadline = time.monotonic() + limits.notebook_timeout

    # -- life cycle -----------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        work = str(self.workdir)
        threads = str(self.limits.threads)
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": work,
            "USER": "student",
            "LOGNAME": "student",
            "TMPDIR": str(self.workdir / "tmp"),
            "JOBLIB_TEMP_FOLDER": str(self.workdir / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": str(self.limits.seed),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(self.workdir / ".config" / "matplotlib"),
            "IPYTHONDIR": str(self.workdir / ".ipython"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / ".jupyter"),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_ENABLE_ONEDNN_OPTS": "0",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }

    @property
    def pid(self) -> int | None:
        """The kernel's process id (also its process group: it leads its own session)."""
        return getattr(getattr(self.km, "provisioner", None), "pid", None)

    def _argv(self) -> list[str]:
        """The kernel's command line: the launcher applies the sandbox, then ipykernel."""
        name = self.notebook_path.name
        if not name.endswith(".ipynb") or name.startswith("."):
            name = "submission.ipynb"
        shutil.copy(self.notebook_path, self.workdir / name)
        (self.workdir / "tmp").mkdir()
        _copy_font_cache(self.workdir / ".config" / "matplotlib")
        uid = None
        if self.unprivileged:
            self._lease = UidLease()
            uid = self._lease.uid
        config = launcher_config(
            self.workdir, env=self._env(), memory=int(self.limits.memory_mb) * 2**20,
            cpu=int(self.limits.notebook_timeout + 60), uid=uid, confine=self.limits.confine,
            bwrap=self.bwrap, dlcourse_dir=self.dlcourse_dir, extra_read=(str(self._rpc_dir),),
            connection_file=str(self._private / "connection.json"))
        return [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config), "--",
                sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher",
                "-f", "{connection_file}", "--HistoryManager.enabled=False",
                # ipykernel sleeps 0.5 ms before each execute_reply "to let output flush";
                # the grader waits for the idle status, which follows every output anyway.
                "--IPythonKernel._execute_sleep=0", "--IPKernelApp.log_level=CRITICAL"]

    def start(self, bootstrap: str, startup_timeout: float = 60.0,
              on_started=None) -> None:
        """Start the kernel and run the grader's bootstrap code in it.

        Args:
            on_started: Called with the kernel's pid and the sandbox's folders as
                soon as the process runs, so that whoever started the grading can
                kill and remove them should this process die before :meth:`close`.
        """
        from dlcourse.grading.execution import GraderClient, kernel_manager

        # No network in bubblewrap's namespace: ZeroMQ over Unix sockets in the kernel's folder.
        self.km = kernel_manager(
            self._argv(), connection_file=str(self._private / "connection.json"),
            ipc_folder=str(self.workdir / ".kernel") if self.bwrap else None)
        self.client = GraderClient(self.km, startup_timeout=startup_timeout)
        try:
            fd = os.open(self._private / "kernel-stderr.txt",
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._stderr = os.fdopen(fd, "wb")
            self.client.start_new_kernel(cwd=str(self.workdir), stdout=subprocess.DEVNULL,
                                         stderr=self._stderr, stdin=subprocess.DEVNULL)
            if on_started is not None:
                on_started(self.pid, [str(self.workdir), str(self._private)])
            self.client.start_new_kernel_client()
        except RuntimeError as exc:
            detail = self.kernel_stderr()[-1500:]
            self.close()
            raise GraderError(f"the sandboxed kernel did not start: {exc}\n{detail}") from exc
        result = self.execute(bootstrap, timeout=startup_timeout, store_history=False)
        if result.status != "ok":
            self.close()
            raise GraderError(f"grader bootstrap failed in the kernel: {result.ename}: "
                              f"{result.evalue}")

    def kernel_stderr(self) -> str:
        """What the kernel process wrote to its stderr (sandbox messages, crashes)."""
        try:
            return (self._private / "kernel-stderr.txt").read_text(errors="replace")
        except OSError:
            return ""

    def confined(self) -> bool:
        """Whether the launcher applied Landlock (no failure message on stderr)."""
        return self.limits.confine and "no Landlock confinement" not in self.kernel_stderr()

    def close(self) -> None:
        """Kill the kernel and everything it started; remove the sandbox folder."""
        self._kill()
        self.km = self.client = None
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.dead_reason = self.dead_reason or "the kernel was shut down"
        for folder in (self.workdir, self._private):
            shutil.rmtree(folder, ignore_errors=True)

    def _kill(self) -> None:
        """Kill the kernel's process group, shut its manager down, close the channels."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        # Kill the group while the process is not reaped yet: once it is, its pid may
        # belong to another process (pid numbers wrap around on a busy machine).
        if process is not None and process.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()

    def _die(self, reason: str) -> None:
        if self.dead_reason is None:
            self.dead_reason = reason
        self._kill()

    # -- execution --------------------------------------------------------------------
    def execute(self, code: str, *, timeout: float, store_history: bool = True) -> ExecResult:
        """Run ``code``; return its status and RPC payloads.

        Args:
            timeout: Seconds before the kernel is interrupted; if it does not stop
                within :data:`~dlcourse.grading.execution.INTERRUPT_GRACE` seconds more,
                it is killed. Past the notebook's time limit it is killed at once.
            store_history: False for the grader's own requests: they run silently
                (their replies still come as ``display_data``).

        Raises:
            KernelDied: When the kernel is dead, dies meanwhile, or the notebook's
                time runs out.
            CellTimeout: When ``timeout`` runs out (the kernel was interrupted, and
                killed if it did not stop: see ``dead_reason``).
        """
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        if self.dead_reason is not None:
            raise KernelDied(self.dead_reason)
        remaining = self.deadline - time.monotonic()
        notebook_limit = (f"the notebook's time limit of {self.limits.notebook_timeout:g} s "
                          "ran out")
        if remaining <= 0:
            self._die(notebook_limit)
            raise KernelDied(self.dead_reason)
        try:
            self.client.run(code, timeout=min(timeout, remaining), store_history=store_history,
                            interrupt=timeout <= remaining)
        except DeadKernelError:
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            status = None if process is None else process.poll()
            self._die(_describe_exit(status, shell_status=bool(self.bwrap)))
            raise KernelDied(self.dead_reason) from None
        except CellTimeoutError:
            if timeout > remaining:
                self._die(notebook_limit)
                raise KernelDied(self.dead_reason) from None
            self._die(f"the code ran past its time limit of {timeout:g} s and did not "
                      "stop when interrupted, so the kernel was killed")
            raise CellTimeout() from None
        if self.client.timed_out:
            raise CellTimeout()
        reply = self.client.reply
        return ExecResult(status=reply.get("status", "error"), ename=reply.get("ename"),
                          evalue=reply.get("evalue"),
                          payloads=[] if self.client.payload is None else [self.client.payload],
                          oversized=self.client.oversized)

    def request_file(self, text: str) -> Path:
        """Write one request where the kernel can read it; return its path."""
        import secrets

        self._requests += 1
        path = self._rpc_dir / f"{self._requests}-{secrets.token_hex(8)}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o644)
        return path
