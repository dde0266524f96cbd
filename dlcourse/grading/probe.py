"""Which sandbox the kernels of a batch get on this machine, decided by trial kernels.

``dlcourse grade`` decides once per batch (:func:`detect`), before any notebook
runs, and hands the decision (a :class:`~dlcourse.grading.sandbox.Isolation`)
to every worker: bubblewrap when it is installed and a trial kernel works under
it, else the builtin launcher (see :mod:`dlcourse.grading.sandbox`).

The trial kernel (:func:`probe_sandbox`) runs no student code: it imports
dlcourse, ipykernel and NumPy and reads every file of the dlcourse package under
exactly the sandbox a kernel gets, started the way :mod:`dlcourse.grading.kernel`
starts one. A failure is the grader's (a
:class:`~dlcourse.grading.errors.GraderError`), never a student's 0.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile

from dlcourse.grading.errors import GraderError
from dlcourse.grading.sandbox import (
    LAUNCHER,
    SANDBOX_MODES,
    Isolation,
    UidLease,
    kernel_dlcourse_dir,
    landlock_abi,
    launcher_config,
    neutral_folder,
    probe_unprivileged,
    promises,
)

ISOLATION_MODES = ("auto", "user", "none")
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
    if isolation not in ISOLATION_MODES:
        raise ValueError(f"isolation must be 'auto', 'user' or 'none'; received {isolation!r}")
    if sandbox not in SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {SANDBOX_MODES}; received {sandbox!r}")
    base = Isolation(landlock_abi=landlock_abi(), dlcourse_dir=kernel_dlcourse_dir(python))
    why: dict[str, str] = {}
    if sandbox != "builtin":
        iso = _bubblewrap(base, isolation, python, why)
        if iso is not None:
            return iso
        if sandbox == "bwrap":
            raise GraderError(f"--sandbox bwrap: {why['bwrap']}")
    return _builtin(base, isolation, python, why)


def _bubblewrap(base: Isolation, isolation: str, python: str,
                why: dict[str, str]) -> Isolation | None:
    """The bubblewrap isolation if it works here, else None (and ``why["bwrap"]``)."""
    tool = shutil.which("bwrap")
    if tool is None:
        why["bwrap"] = "bubblewrap is not installed (apt-get install bubblewrap)"
        return None
    iso = Isolation(tool="bwrap", bwrap=tool,
                    unprivileged=os.geteuid() == 0 and isolation != "none",
                    landlock_abi=base.landlock_abi, dlcourse_dir=base.dlcourse_dir)
    problem = probe_sandbox(iso, python)
    if problem is not None:
        why["bwrap"] = f"bubblewrap does not work here: {problem}"
        return None
    if isolation == "user" and not iso.unprivileged:
        raise GraderError("--isolation user: the grader is not running as root")
    return iso


def _builtin(base: Isolation, isolation: str, python: str, why: dict[str, str]) -> Isolation:
    """The builtin launcher's isolation, with the uid switch where ``isolation`` allows it
    and it works here; a :class:`GraderError` when a trial kernel fails under it."""
    iso = Isolation(landlock_abi=base.landlock_abi, dlcourse_dir=base.dlcourse_dir, why=why)
    if isolation != "none":
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
