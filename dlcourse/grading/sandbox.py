"""The sandbox of a student's kernel: its limits, and which of its promises hold here.

* :class:`Limits`: what one submission may use (time, memory, threads), with
  the defaults ``dlcourse grade`` documents; :data:`WORKER_MEMORY_MB` is the
  grader worker's own limit.
* :class:`Isolation`: the sandbox every kernel of a batch gets:

  * **bubblewrap** (``bwrap``, Debian/Ubuntu/Fedora package ``bubblewrap``),
    the tool Flatpak uses, when it is installed and a trial kernel starts under
    it: the kernel gets its own PID, network, IPC and UTS namespaces and a mount
    namespace that holds only the Python installation, the dlcourse package the
    kernel imports, system folders and its own folder; no capabilities; as root
    it also switches to a leased sandbox uid. Landlock is applied inside as well.
  * **builtin** (the fallback): the launcher's own Landlock rules
    (:mod:`dlcourse.grading.launcher`) and, where an unprivileged user can run
    the kernel's Python, the uid switch.

* :func:`promises` says, for an isolation, which of the sandbox's promises hold
  and why the others do not; the summary of a batch and ``dlcourse grade
  --help`` print it.
* :func:`launcher_config` is what the launcher (:mod:`dlcourse.grading.launcher`)
  applies when it starts a kernel or a trial process: the folders it may read
  (:func:`sandbox_read_paths`) and write, its limits, bubblewrap, and a
  sandbox uid leased with :class:`UidLease`.

Which isolation a batch gets is decided once, before any notebook runs, by
starting trial kernels (:func:`dlcourse.grading.probe.detect`).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dlcourse.grading.errors import GraderError

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


#: The promises, in the order the summary lists them: key -> what holds.
PROMISES = {
    "files": "reads only Python, its packages, dlcourse and system folders; writes only "
             "its own folder",
    "proc": "cannot read other processes' /proc entries (/proc/PID/environ, ...)",
    "signals": "cannot signal or renice the grader",
    "network": "cannot open raw or packet sockets or reach any network",
    "lifetime": "leaves no process behind after its grading",
}
SANDBOX_MODES = ("auto", "bwrap", "builtin")


@dataclass
class Limits:
    """Limits of one submission.

    Attributes:
        cell_timeout: Seconds for one notebook cell or one call from a test.
        notebook_timeout: Seconds for the whole notebook (cells and tests).
        memory_mb: Memory limit of the kernel process (``RLIMIT_DATA``), MiB.
        threads: Threads BLAS / OpenMP / PyTorch may use in the kernel.
        seed: Seed of ``random``, NumPy, PyTorch and TensorFlow.
        confine: Confine the kernel with Landlock where the OS supports it.
    """

    cell_timeout: float = 60.0
    notebook_timeout: float = 600.0
    memory_mb: int = 4096
    threads: int = 1
    seed: int = 0
    confine: bool = True

    @classmethod
    def resolve(cls, config: dict, **given: float | None) -> Limits:
        """The limits of an exercise: each one ``given`` (the command line) when set, else
        the exercise's ``grading.json`` (``config``), else the default.

        Args:
            config: ``grading.json``'s contents (its ``cell_timeout``,
                ``notebook_timeout`` and ``memory_mb`` are used).
            **given: ``cell_timeout=``, ``notebook_timeout=``, ``memory_mb=``;
                None or 0 means "not given".
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise TypeError(f"unknown limits {unknown}; the limits are {sorted(known)}")
        values = {}
        for name, value in given.items():
            default = getattr(cls, name)
            values[name] = type(default)(value or config.get(name, default))
        return cls(**values)


#: Memory limit of a grader worker (``RLIMIT_DATA``, MiB): what it keeps from a kernel is
#: bounded (one reply of at most 64 MiB), so this is a backstop, not a budget.
WORKER_MEMORY_MB = 4096


@dataclass
class Isolation:
    """The sandbox every kernel of a batch gets.

    Attributes:
        tool: ``"bwrap"`` or ``"builtin"``.
        bwrap: Path of the ``bwrap`` executable (``tool == "bwrap"``).
        unprivileged: Kernels switch to a leased sandbox uid (root only).
        landlock_abi: The Linux kernel's Landlock ABI (0: none).
        dlcourse_dir: The dlcourse package the kernel imports (and the sandbox exposes).
        why: Why a stronger option was not used, e.g. ``{"bwrap": "not installed"}``.
    """

    tool: str = "builtin"
    bwrap: str | None = None
    unprivileged: bool = False
    landlock_abi: int = 0
    dlcourse_dir: str | None = None
    why: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> Isolation:
        return cls(**data) if data else cls()

    def describe(self) -> str:
        """One line: the tool, Landlock, the uid."""
        parts = ["bubblewrap (own PID, network, IPC and mount namespaces, no capabilities)"
                 if self.tool == "bwrap" else "builtin launcher (no namespaces)"]
        parts.append(f"Landlock ABI {self.landlock_abi}" if self.landlock_abi >= 1
                     else "no Landlock")
        parts.append("a leased unprivileged uid" if self.unprivileged
                     else "the grader's own user" + (" (root)" if os.geteuid() == 0 else ""))
        return "sandbox: " + " + ".join(parts)


def landlock_abi() -> int:
    """The Landlock ABI version of the running Linux kernel (0 when there is none)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        return max(0, int(libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))))
    except (OSError, AttributeError):
        return 0


def promises(iso: Isolation) -> list[tuple[str, str, str | None]]:
    """``(key, promise, None if it holds else why not)`` for each of :data:`PROMISES`."""
    bwrap, user, abi = iso.tool == "bwrap", iso.unprivileged, iso.landlock_abi
    who = ("runs as root without bubblewrap or a user switch" if os.geteuid() == 0
           else "runs as the grader's own user without bubblewrap")
    missing = "; ".join(f"{k}: {v}" for k, v in iso.why.items())
    hint = f" ({missing})" if missing else ""
    why = {
        "files": None if bwrap or abi >= 1 else
        "no bubblewrap and no Landlock: the kernel can read and write what the grader's "
        "user can" + hint,
        "proc": None if bwrap or user else
        f"the kernel {who}: it can read /proc/PID/environ of the grader's processes" + hint,
        "signals": None if bwrap or user else
        f"the kernel {who}: it can renice the grader" + (
            "" if abi >= 6 else " and signal it (Landlock ABI < 6)") + hint,
        "network": None if bwrap else
        ("raw and packet sockets are refused (no capabilities) and Landlock blocks TCP, but "
         "UDP (e.g. DNS) reaches the network" if user and abi >= 4 else
         f"the kernel {who}" + (" and Landlock blocks only TCP" if abi >= 4 else "")
         + ": it can open raw, packet and UDP sockets") + hint,
        "lifetime": None if bwrap or user else
        f"the kernel {who}: a process that leaves its session (setsid) survives the "
        "grading" + hint,
    }
    return [(key, text, why[key]) for key, text in PROMISES.items()]


def report(iso: Isolation) -> list[str]:
    """Lines for the summary: the sandbox, then each promise that does not hold."""
    lines = [iso.describe()]
    for _key, text, why in promises(iso):
        if why is not None:
            lines.append(f"NOT HELD on this machine: a graded kernel {text}: {why}")
    return lines


# -- the kernel's dlcourse ------------------------------------------------------------
def neutral_folder() -> str:
    """Where grader processes start: a folder that holds no Python package."""
    return "/"


def kernel_dlcourse_dir(python: str = sys.executable) -> str:
    """The dlcourse package ``python`` imports when started isolated (``-I``) from
    :func:`neutral_folder`, as the grader's workers and the kernels are.

    Raises:
        GraderError: When that Python cannot import dlcourse.
    """
    code = "import os, dlcourse; print(os.path.dirname(os.path.realpath(dlcourse.__file__)))"
    try:
        proc = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True,
                              cwd=neutral_folder(), timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraderError(f"could not start the kernel's Python {python}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise GraderError(f"the kernel's Python {python} cannot import dlcourse when started "
                          f"isolated from {neutral_folder()} ({tail}): install the package "
                          "into that environment (pip install -e .)")
    return proc.stdout.strip()


# -- what a kernel is started with: the launcher's configuration, a sandbox uid ----------
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
