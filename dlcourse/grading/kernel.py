"""A student's notebook kernel, started inside the sandbox and driven by the grader.

Code runs in it through nbclient (:mod:`dlcourse.grading.execution`: what the
grader keeps of the kernel's messages, time-outs, a dead kernel). See
:mod:`dlcourse.grading.launcher` for what the sandbox applies at start and the
"Security model" section of the instructors' guide (``book/grading.md``) for
what that guarantees.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlcourse.grading.errors import GraderError
from dlcourse.grading.sandbox import Limits

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "launcher.py"
UID_RANGE = range(61000, 62000)
_LOCK_DIR = Path(tempfile.gettempdir())
#: Device files a confined kernel may open: read ``/dev/null``, ``/dev/zero``, the
#: random devices; write only ``/dev/null``. Nothing else under ``/dev`` (not
#: ``/dev/shm``: memory there is not counted by ``RLIMIT_DATA`` and outlives the kernel).
DEV_READ = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEV_WRITE = ("/dev/null",)
#: World-writable folders where a sandbox uid may leave files (removed with its lease).
SHARED_TMP = ("/dev/shm", "/dev/mqueue", "/tmp", "/var/tmp")


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


class UidLease:
    """A sandbox uid reserved for this process with a lock file (root only)."""

    def __init__(self):
        self.uid = None
        self._handle = None
        for uid in UID_RANGE:
            try:
                pwd.getpwuid(uid)
                continue  # a real account: never borrow it
            except KeyError:
                pass
            handle = open(_LOCK_DIR / f"dlcourse-sandbox-{uid}.lock", "a")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self.uid, self._handle = uid, handle
            # A worker that crashed cannot clean up: whatever it left of this uid goes now.
            self.kill_all()
            return
        raise GraderError("no free sandbox uid in 61000-61999")

    def kill_all(self) -> None:
        """Kill every process running as the sandbox uid (daemons included) and remove
        the files it owns at the top of the shared temporary folders (:data:`SHARED_TMP`).

        Both happen in a child process that has become the sandbox uid, so it can
        remove nothing that uid could not remove itself.
        """
        if self.uid is None:
            return
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
                with contextlib.suppress(OSError):
                    os.kill(-1, signal.SIGKILL)
                _remove_owned(self.uid)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    def release(self) -> None:
        if self._handle is not None:
            self.kill_all()
            self._handle.close()
            self._handle = None


def _remove_owned(uid: int) -> None:
    """Remove the entries of :data:`SHARED_TMP` that ``uid`` owns (run as ``uid``)."""
    for folder in SHARED_TMP:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid != uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)


def sandbox_write_paths(workdir: Path | str) -> list[str]:
    """What a confined kernel may write: its own folder (temporary files in ``tmp/``)
    and ``/dev/null``."""
    return [str(workdir), *DEV_WRITE]


def probe_unprivileged(python: str = sys.executable) -> str | None:
    """Return ``None`` if a sandbox uid can start the kernel's Python, else why not."""
    if os.geteuid() != 0:
        return "the grader is not running as root"
    lease = UidLease()
    workdir = tempfile.mkdtemp(prefix="dlcourse-probe-")
    try:
        config = {"workdir": workdir, "uid": lease.uid, "gid": lease.uid,
                  "env": {"PATH": "/usr/bin:/bin"}, "limits": {}}
        cmd = [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config), "--",
               python, "-c", "import ipykernel, numpy"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            return f"an unprivileged user cannot run {python}: {tail}"
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        lease.release()


def sandbox_read_paths(dlcourse_dir: str | None = None) -> list[str]:
    """Folders a confined kernel may read: Python, its packages, dlcourse, the system.

    Args:
        dlcourse_dir: The dlcourse package the kernel imports (default: the one this
            process imported; :func:`dlcourse.grading.sandbox.kernel_dlcourse_dir`
            says which one a kernel imports).
    """
    import site

    if dlcourse_dir is None:
        import dlcourse

        dlcourse_dir = str(Path(dlcourse.__file__).resolve().parent)
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             *site.getsitepackages(), str(dlcourse_dir),
             "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys",
             *DEV_READ]
    paths += [os.path.realpath(p) for p in paths]
    return sorted({p for p in paths if os.path.exists(p)})


def launcher_config(workdir: Path | str, *, env: dict[str, str], memory: int, cpu: int,
                    uid: int | None = None, confine: bool = True, bwrap: str | None = None,
                    dlcourse_dir: str | None = None, extra_read: tuple[str, ...] = (),
                    connection_file: str | None = None) -> dict:
    """The launcher's configuration for a kernel (or a trial process) in ``workdir``.

    Args:
        memory: ``RLIMIT_DATA`` in bytes.
        cpu: ``RLIMIT_CPU`` in seconds.
        uid: The leased sandbox uid (root only), or None.
        confine: Apply Landlock where the Linux kernel has it.
        bwrap: The ``bwrap`` executable, to start the process in bubblewrap.
        dlcourse_dir: The dlcourse package the kernel imports.
        extra_read: More paths the process may read (the grader's request folder).
    """
    read = [*sandbox_read_paths(dlcourse_dir), *extra_read]
    return {
        "workdir": str(workdir),
        "connection_file": connection_file,
        "uid": uid,
        "gid": uid,
        "env": env,
        "read_paths": read if confine else None,
        "bind_paths": read,
        "write_paths": sandbox_write_paths(workdir),
        "bwrap": bwrap,
        "limits": {"data": memory, "cpu": cpu, "fsize": 256 * 2**20, "core": 0, "nproc": 256},
    }


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
