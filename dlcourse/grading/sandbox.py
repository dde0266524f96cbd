"""Which sandbox the student kernels get on this machine, and which promises hold.

``dlcourse grade`` decides once per batch (:func:`detect`), before any notebook
runs, and hands the decision to every worker:

* **bubblewrap** (``bwrap``, Debian/Ubuntu/Fedora package ``bubblewrap``), the
  tool Flatpak uses, when it is installed and a trial kernel starts under it:
  the kernel gets its own PID, network, IPC and UTS namespaces and a mount
  namespace that holds only the Python installation, the dlcourse package the
  kernel imports, system folders and its own folder; no capabilities; as root
  it also switches to a leased sandbox uid. Landlock is applied inside as well.
* **builtin** (the fallback): the launcher's own Landlock rules and, where an
  unprivileged user can run the kernel's Python, the uid switch.

:func:`promises` says, for a decision, which of the sandbox's promises hold and
why the others do not; the summary of a batch and ``dlcourse grade --help``
print it.

The trial kernel (:func:`probe_sandbox`) runs no student code: it imports
dlcourse, ipykernel and NumPy and reads every file of the dlcourse package under
exactly the sandbox a kernel gets. A failure is the grader's (a
:class:`~dlcourse.grading.errors.GraderError`), never a student's 0.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field

from dlcourse.grading.errors import GraderError

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


# -- trial kernels --------------------------------------------------------------------
_PROBE = """\
import os, sys
import ipykernel, numpy, dlcourse
root = os.path.dirname(os.path.realpath(dlcourse.__file__))
if root != {expected!r}:
    sys.exit(f"the sandboxed kernel imports dlcourse from {{root}}, not from {expected!r}")
for folder, dirs, files in os.walk(root):
    for name in files:
        with open(os.path.join(folder, name), "rb") as handle:
            handle.read(1)
print("ok")
"""


def probe_sandbox(iso: Isolation, python: str = sys.executable) -> str | None:
    """Start a trial process under ``iso`` exactly as a kernel is started; ``None`` if it
    imports dlcourse, ipykernel and NumPy and reads every file of the dlcourse package,
    else why not."""
    from dlcourse.grading.kernel import LAUNCHER, UidLease, launcher_config

    lease = UidLease() if iso.unprivileged else None
    workdir = tempfile.mkdtemp(prefix="dlcourse-sandbox-")
    try:
        config = launcher_config(
            workdir, env={"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"},
            uid=lease.uid if lease else None, confine=iso.landlock_abi >= 1,
            bwrap=iso.bwrap if iso.tool == "bwrap" else None,
            dlcourse_dir=iso.dlcourse_dir, memory=4096 * 2**20, cpu=120)
        code = _PROBE.format(expected=iso.dlcourse_dir)
        cmd = [python, "-I", "-S", str(LAUNCHER), json.dumps(config), "--", python, "-I",
               "-c", code]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                  cwd=neutral_folder())
        except subprocess.TimeoutExpired:
            return "a trial kernel did not start within 120 s"
        if proc.returncode != 0 or proc.stdout.strip() != "ok":
            tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            return f"a trial kernel failed (exit status {proc.returncode}): {tail[-500:]}"
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if lease is not None:
            lease.release()


def detect(isolation: str = "auto", sandbox: str = "auto",
           python: str = sys.executable) -> Isolation:
    """Decide the sandbox of a batch (see the module docstring).

    Args:
        isolation: ``--isolation``: ``"user"`` (the uid switch or an error),
            ``"auto"`` (the uid switch when possible) or ``"none"``.
        sandbox: ``--sandbox``: ``"bwrap"`` (bubblewrap or an error), ``"builtin"``
            or ``"auto"`` (bubblewrap when it works here).

    Raises:
        GraderError: When a required option cannot be had, or when the kernel's
            Python cannot import (or the sandbox cannot read) its dlcourse package.
    """
    if isolation not in ("auto", "user", "none"):
        raise ValueError(f"isolation must be 'auto', 'user' or 'none'; received {isolation!r}")
    if sandbox not in SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {SANDBOX_MODES}; received {sandbox!r}")
    root = os.geteuid() == 0
    base = Isolation(landlock_abi=landlock_abi(), dlcourse_dir=kernel_dlcourse_dir(python))
    why: dict[str, str] = {}
    if sandbox != "builtin":
        tool = shutil.which("bwrap")
        if tool is None:
            why["bwrap"] = "bubblewrap is not installed (apt-get install bubblewrap)"
        else:
            iso = Isolation(tool="bwrap", bwrap=tool, unprivileged=root and isolation != "none",
                            landlock_abi=base.landlock_abi, dlcourse_dir=base.dlcourse_dir)
            problem = probe_sandbox(iso, python)
            if problem is None:
                if isolation == "user" and not iso.unprivileged:
                    raise GraderError("--isolation user: the grader is not running as root")
                return iso
            why["bwrap"] = f"bubblewrap does not work here: {problem}"
        if sandbox == "bwrap":
            raise GraderError(f"--sandbox bwrap: {why['bwrap']}")
    iso = Isolation(landlock_abi=base.landlock_abi, dlcourse_dir=base.dlcourse_dir, why=why)
    if isolation != "none":
        from dlcourse.grading.kernel import probe_unprivileged

        problem = probe_unprivileged(python)
        if problem is None:
            iso.unprivileged = True
        elif isolation == "user":
            raise GraderError(f"--isolation user: {problem}")
        else:
            why["user"] = problem
    problem = probe_sandbox(iso, python)
    if problem is not None:
        raise GraderError(f"the sandbox cannot run a kernel that imports dlcourse from "
                          f"{iso.dlcourse_dir}: {problem}")
    return iso


@functools.lru_cache(maxsize=1)
def machine_report() -> str:
    """What ``dlcourse grade --help`` appends: the sandbox here and the promises that fail."""
    try:
        iso = detect()
    except GraderError as exc:
        return f"sandbox on this machine: cannot grade here: {exc}"
    lines = ["sandbox on this machine (--sandbox auto --isolation auto):",
             f"  {iso.describe().removeprefix('sandbox: ')}"]
    for _key, text, why in promises(iso):
        lines.append(f"  {'holds' if why is None else 'does NOT hold'}: a graded kernel {text}"
                     + ("" if why is None else f"\n      ({why})"))
    return "\n".join(lines)
