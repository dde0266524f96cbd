"""Start a command inside the grading sandbox (used as a script, stdlib only).

Usage: ``python -I -S launcher.py CONFIG_JSON -- COMMAND...``

The grader starts every student kernel through this script. In order, it:

1. copies the kernel's connection file into the sandbox folder (the original
   sits in the grader's private folder) and points ``COMMAND`` at the copy;
2. applies resource limits (``RLIMIT_DATA``/``RLIMIT_AS`` memory, CPU seconds,
   file size, no core files, and a process count when it switches user);
3. with ``bwrap`` in the config, re-executes itself inside bubblewrap (stage 2):
   new PID, network, IPC, UTS (and cgroup) namespaces, a new session, killed
   with its parent, no capabilities (as root: only ``CAP_SETUID``/``CAP_SETGID``
   until step 4 drops them), and a mount namespace that holds only
   ``read_paths`` (read-only), ``write_paths`` (read-write), a private ``/proc``
   of its own processes and a minimal ``/dev``;
4. when started as root with a ``uid``: hands the sandbox folder to that user,
   drops supplementary groups, switches gid then uid (irreversibly);
5. sets ``no_new_privs`` (set-uid programs cannot regain privileges) and, where
   the Linux kernel has Landlock (5.13+; no root needed), confines the process
   and everything it starts: files readable only under ``read_paths`` (the
   Python installation, the dlcourse package, system libraries), writable only
   under ``write_paths`` (its own folder); no outgoing TCP connection and no
   TCP bind except the kernel's own ports (Landlock ABI 4+); no signals to,
   ptrace of, or ``/proc/PID/{mem,environ,fd}`` access to processes outside
   the sandbox (ABI 6+ for signals);
6. replaces the environment by the given minimal one and ``exec``s COMMAND in
   the sandbox folder.

A Landlock failure is reported on stderr and, with ``require_landlock``, is fatal.
"""

import ctypes
import json
import os
import resource
import sys

_LIMITS = {
    "data": "RLIMIT_DATA",
    "as": "RLIMIT_AS",
    "cpu": "RLIMIT_CPU",
    "fsize": "RLIMIT_FSIZE",
    "core": "RLIMIT_CORE",
    "nproc": "RLIMIT_NPROC",
    "nofile": "RLIMIT_NOFILE",
}
PR_SET_NO_NEW_PRIVS = 38
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_FILE_ONLY = 1 | 2 | 4 | (1 << 14) | (1 << 15)  # execute, write, read, truncate, ioctl_dev
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


def _fs_mask(abi):
    mask = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        mask |= 1 << 13  # refer
    if abi >= 3:
        mask |= 1 << 14  # truncate
    if abi >= 5:
        mask |= 1 << 15  # ioctl_dev
    return mask


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def landlock(read_paths, write_paths, bind_ports):
    """Confine this process (and its future children) with Landlock.

    Returns the ABI version used; raises OSError when Landlock is unavailable.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        raise OSError(ctypes.get_errno(), "Landlock is not available")
    handled = _fs_mask(abi)
    ruleset = _create_ruleset(libc, abi, handled)
    read = (_FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR) & handled
    for path, allowed in [(p, read) for p in read_paths] + [(p, handled) for p in write_paths]:
        _allow_path(libc, ruleset, path, allowed)
    if abi >= 4:
        for port in bind_ports:
            rule = _NetPort(_NET_BIND_TCP, int(port))
            if libc.syscall(_SYS_ADD_RULE, ruleset, 2, ctypes.byref(rule), 0) != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for port {port}")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(no_new_privs) failed")
    if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)
    return abi


def _create_ruleset(libc, abi, handled):
    """A ruleset that handles file access ``handled``, TCP (ABI 4+), signals and abstract
    Unix sockets (ABI 6+); returns its file descriptor."""
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4:
        attr.net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    return ruleset


def _allow_path(libc, ruleset, path, allowed):
    """Allow ``allowed`` beneath ``path`` (skipped when the path does not exist here)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            allowed &= _FS_FILE_ONLY
        rule = _PathBeneath(allowed, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)


def _chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _parents(path):
    """``/a``, ``/a/b`` for ``/a/b/c``."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def bwrap_argv(config):
    """The ``bwrap`` command line (without the command) for ``config``."""
    argv = [config["bwrap"], "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        if config.get("uid") is not None:
            argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    made = {"/", "/proc", "/dev"}
    plan = [(p, "--ro-bind") for p in config.get("bind_paths") or config.get("read_paths") or []]
    plan += [(p, "--bind") for p in config.get("write_paths", [])]
    bound = []
    for path, how in sorted(plan, key=lambda item: (item[0], item[1] == "--ro-bind")):
        path = os.path.normpath(path)
        if path in ("/", "/proc", "/dev") or path.startswith(("/proc/", "/dev/")):
            continue  # the sandbox's own /proc and minimal /dev (null, zero, random, ...)
        if any(path == b or path.startswith(b + "/") for b in bound):
            continue  # already visible through a folder above it
        if not os.path.lexists(path):
            continue
        for parent in _parents(path):
            if parent not in made:
                argv += ["--dir", parent]  # created 0755: the sandbox uid can walk through
                made.add(parent)
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        else:
            argv += [how, path, path]
            bound.append(path)
        made.add(path)
    return argv + ["--chdir", config["workdir"]]


def _outside(config, command):
    """Stage 1: connection file, limits, the folder's owner; then bubblewrap or stage 2."""
    workdir = config["workdir"]
    source = config.get("connection_file")
    ports = []
    if source:
        target = os.path.join(workdir, "kernel-connection.json")
        with open(source, "rb") as handle:
            data = handle.read()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        command = [target if arg == source else arg for arg in command]
        info = json.loads(data)
        if info.get("transport", "tcp") == "tcp":
            ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port",
                                       "control_port", "hb_port") if isinstance(info.get(k), int)]
    uid, gid = config.get("uid"), config.get("gid")
    for key, value in config.get("limits", {}).items():
        if value is None:
            continue
        if key == "nproc" and uid is None:
            continue  # a per-user count is only meaningful for a dedicated user
        which = getattr(resource, _LIMITS[key])
        value = int(value)
        hard = resource.getrlimit(which)[1]
        if hard != resource.RLIM_INFINITY and value > hard:
            value = hard
        resource.setrlimit(which, (value, value))
    if uid is not None and os.geteuid() == 0:
        _chown_tree(workdir, uid, gid)
    inner = dict(config, stage="inside", ports=ports)
    if config.get("bwrap"):
        os.umask(0o022)
        argv = bwrap_argv(config) + [sys.executable, "-I", "-S", os.path.abspath(__file__),
                                     json.dumps(inner), "--", *command]
        os.execv(config["bwrap"], argv)
    _inside(inner, command)


def _inside(config, command):
    """Stage 2 (in bubblewrap, or right after stage 1): user, Landlock, exec."""
    workdir = config["workdir"]
    uid, gid = config.get("uid"), config.get("gid")
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise SystemExit("could not drop privileges")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if config.get("read_paths") is not None:
        try:
            landlock(config["read_paths"], config.get("write_paths", [workdir]),
                     config.get("ports", []))
        except OSError as exc:
            print(f"dlcourse sandbox: no Landlock confinement: {exc}", file=sys.stderr)
            if config.get("require_landlock"):
                raise SystemExit(3) from exc
    os.umask(0o077)
    os.chdir(workdir)
    os.execve(command[0], command, config["env"])


def main(argv):
    config = json.loads(argv[1])
    if argv[2] != "--":
        raise SystemExit("usage: launcher.py CONFIG_JSON -- COMMAND...")
    command = argv[3:]
    if config.get("stage") == "inside":
        _inside(config, command)
    else:
        _outside(config, command)


if __name__ == "__main__":
    main(sys.argv)
