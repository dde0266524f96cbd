"""The Gradescope autograder zips, end to end, in a clean Debian root.

The closest thing to a fresh Gradescope container these machines can make: a
``debootstrap --variant=minbase bookworm`` root (no Python at all), made once
per test session. For each exercise, in a copy of it: the zip unpacked into
``/autograder/source``, ``setup.sh`` run as Gradescope runs it (it must install
Python itself), then ``run_autograder`` on the solution (full marks) and on the
blank student notebook (a wrong one: zero), each checked in ``results.json``.
NumPy-only exercises must install neither torch nor TensorFlow, and no image gets
jupyter-book, ruff or hypothesis. The image sizes are printed (the README's table).

Needs root (or password-less sudo), ``debootstrap``, ``unshare`` and ``chroot``,
and a Debian mirror (``DLCOURSE_DEBIAN_MIRROR``, default deb.debian.org); skips and
says why otherwise. ``DLCOURSE_DEBIAN_BASE=/path/to/minbase-root`` reuses a root made
earlier with the same debootstrap command (it is copied, never changed). pip inside the root gets this machine's pip set-up: its local
find-links folders and file:// indexes are bound in read-only, its CA bundle copied,
and ``PIP_RETRIES=0`` so that an unreachable index fails fast instead of stalling.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from dlcourse.grading.assign import student_notebook
from dlcourse.grading.release import release

ROOT = Path(__file__).resolve().parent.parent
MIRROR = os.environ.get("DLCOURSE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
HOST_CA = "/etc/ssl/dlcourse-host-ca.pem"  # this machine's CA bundle, inside the root
HEAVY = ("torch", "tensorflow", "keras", "jupyter_book", "ruff", "hypothesis")

pytestmark = pytest.mark.slow


def _sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo", "-n"]


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0 and (shutil.which("sudo") is None or subprocess.run(
            ["sudo", "-n", "true"], capture_output=True).returncode != 0):
        return "needs root or password-less sudo"
    for tool in ("debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"needs {tool} (apt-get install debootstrap)"
    return None


def _run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*_sudo(), *cmd], capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def _pip_setup() -> tuple[dict[str, str], list[str], list[tuple[str, str]]]:
    """This machine's pip configuration for the root: (environment, folders to bind, files)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                          text=True, timeout=60)
    config: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        config.setdefault(key.split(".", 1)[-1], value.strip().strip("'\""))
    for key, value in os.environ.items():
        if key.startswith("PIP_"):
            config[key[4:].lower().replace("_", "-")] = value
    env, folders, files = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}, [], []
    for key in ("index-url", "extra-index-url", "find-links", "cert", "default-timeout"):
        if key not in config:
            continue
        env[f"PIP_{key.upper().replace('-', '_')}"] = config[key]
        for item in config[key].split():
            path = item.removeprefix("file://")
            if path.startswith("/") and os.path.exists(path):
                if key == "cert":  # its own path: apt's ca-certificates would overwrite it
                    files.append((path, HOST_CA))
                    env["PIP_CERT"] = HOST_CA
                else:  # bind the folder that holds the index or the wheels
                    top = Path(path)
                    while top.parent != Path("/") and top.name in {"simple", ""}:
                        top = top.parent
                    folders.append(str(top))
    if folders:  # an offline machine: an index it cannot reach must fail fast, not stall
        env["PIP_RETRIES"] = os.environ.get("PIP_RETRIES", "0")
    return env, sorted(set(folders)), sorted(set(files))


def _du_mb(path: Path) -> float:
    proc = _run(["du", "-sxm", str(path)], 600)
    return float(proc.stdout.split()[0])


@pytest.fixture(scope="session")
def debian_base(tmp_path_factory):
    """A minbase Debian root, made once per session (about 40 s and 200 MB)."""
    reason = _why_not()
    if reason:
        pytest.skip(f"Debian-root autograder test: {reason}")
    given = os.environ.get("DLCOURSE_DEBIAN_BASE")
    if given:  # a minbase root made earlier (copied, never changed): saves the debootstrap
        assert (Path(given) / "etc" / "debian_version").is_file(), given
        yield Path(given)
        return
    base = tmp_path_factory.mktemp("debian") / "base"
    start = time.monotonic()
    proc = _run(["debootstrap", "--variant=minbase", SUITE, str(base), MIRROR], 1200)
    if proc.returncode != 0:
        _run(["rm", "-rf", "--one-file-system", str(base)], 600)
        pytest.skip(f"debootstrap {SUITE} from {MIRROR} failed (no mirror?): "
                    f"{(proc.stdout + proc.stderr)[-800:]}")
    print(f"\ndebootstrap: {time.monotonic() - start:.0f} s, {_du_mb(base):.0f} MB")
    yield base
    _run(["rm", "-rf", "--one-file-system", str(base)], 600)


class DebianRoot:
    """A copy of the base root with the autograder zip unpacked as Gradescope does."""

    def __init__(self, base: Path, path: Path, zip_path: Path):
        self.path = path
        proc = _run(["cp", "-a", str(base), str(path)], 600)
        assert proc.returncode == 0, proc.stderr
        self.base_mb = _du_mb(path)
        self.env, self.folders, files = _pip_setup()
        for name, inside in [*files, ("/etc/resolv.conf", "/etc/resolv.conf")]:
            if os.path.isfile(name):
                target = path / inside.lstrip("/")
                _run(["mkdir", "-p", str(target.parent)], 60)
                _run(["cp", "-L", name, str(target)], 60)
        for folder in self.folders:
            _run(["mkdir", "-p", str(path / folder.lstrip("/"))], 60)
        source = path / "autograder" / "source"
        _run(["mkdir", "-p", str(source), str(path / "autograder/submission"),
              str(path / "autograder/results")], 60)
        with zipfile.ZipFile(zip_path) as zf:  # what `unzip` does, modes included
            stage = path.parent / "unzipped"
            zf.extractall(stage)
            for info in zf.infolist():
                mode = info.external_attr >> 16 & 0o777
                if mode:
                    os.chmod(stage / info.filename, mode)
        _run(["cp", "-a", f"{stage}/.", str(source)], 60)
        _run(["cp", str(source / "run_autograder"), str(path / "autograder/run_autograder")], 60)

    def run(self, command: str, timeout: float) -> subprocess.CompletedProcess:
        """Run ``command`` (bash) as root inside the root, in a private mount namespace."""
        r = shlex.quote(str(self.path))
        mounts = [f"mount -t proc proc {r}/proc", f"mount --rbind /dev {r}/dev",
                  f"mount --rbind /sys {r}/sys"]
        for folder in self.folders:
            inside = shlex.quote(f"{self.path}{folder}")
            mounts += [f"mount --bind {shlex.quote(folder)} {inside}",
                       f"mount -o remount,bind,ro {inside}"]
        env = " ".join(shlex.quote(f"{k}={v}") for k, v in {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root", "LANG": "C.UTF-8", **self.env}.items())
        script = " && ".join(mounts) + (
            f" && exec chroot {r} /usr/bin/env -i {env} /bin/bash -c {shlex.quote(command)}")
        return _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                    timeout)

    def grade(self, notebook: Path, name: str) -> tuple[subprocess.CompletedProcess, dict]:
        """Submit ``notebook`` and run ``/autograder/run_autograder``; return its results."""
        submission = self.path / "autograder" / "submission"
        _run(["find", str(submission), "-mindepth", "1", "-delete"], 60)
        _run(["cp", str(notebook), str(submission / f"{name}.ipynb")], 60)
        proc = self.run("rm -rf /autograder/results/* && /autograder/run_autograder", 900)
        results = self.path / "autograder" / "results" / "results.json"
        return proc, json.loads(_run(["cat", str(results)], 60).stdout or "{}")

    def site_packages(self) -> set[str]:
        proc = self.run("ls /autograder/venv/lib/python3*/site-packages", 60)
        return {line.strip().lower() for line in proc.stdout.splitlines()}

    def remove(self) -> None:
        mounted = [line for line in Path("/proc/mounts").read_text().splitlines()
                   if str(self.path) in line]
        assert not mounted, f"still mounted, not removing: {mounted}"
        _run(["rm", "-rf", "--one-file-system", str(self.path)], 600)


@pytest.mark.parametrize("name, heavy", [
    pytest.param("01_dropout_from_scratch", set(), id="01_dropout_from_scratch"),
    pytest.param("04_mc_dropout", {"torch"}, id="04_mc_dropout", marks=pytest.mark.torch),
])
def test_autograder_zip_in_a_clean_debian_root(debian_base, tmp_path, name, heavy):
    dist = tmp_path / "dist"
    release(root=ROOT, out=dist, names=[name])
    root = DebianRoot(debian_base, tmp_path / "root", dist / f"autograder-{name}.zip")
    try:
        start = time.monotonic()
        setup = root.run("cd /autograder/source && bash ./setup.sh", 1800)
        setup_s = time.monotonic() - start
        assert setup.returncode == 0, (setup.stdout + setup.stderr)[-4000:]
        # No Python in a minbase root: setup.sh installed one, then a venv.
        assert "installing one with apt-get" in setup.stderr, setup.stderr[-2000:]
        size_mb = _du_mb(root.path) - root.base_mb
        installed = root.site_packages()
        assert "numpy" in installed and "dlcourse" in installed, sorted(installed)
        for package in HEAVY:
            assert (package in installed) == (package in heavy), (package, sorted(installed))
        print(f"\n{name}: setup.sh {setup_s:.0f} s, image +{size_mb:.0f} MB over the "
              f"{root.base_mb:.0f} MB minbase root")

        solution = ROOT / "solutions" / f"{name}.ipynb"
        proc, result = root.grade(solution, name)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        failed = {t["name"]: t.get("output") for t in result.get("tests", [])
                  if t["score"] < t["max_score"]}
        assert result.get("score") == result.get("max_score") > 0, (result.get("output"), failed)

        import nbformat

        blank = tmp_path / f"{name}-blank.ipynb"
        blank.write_text(nbformat.writes(student_notebook(nbformat.read(solution, 4), name)))
        proc, wrong = root.grade(blank, name)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        assert wrong.get("score") == 0 and wrong.get("max_score") == result["max_score"], wrong
        assert len(wrong["tests"]) == len(result["tests"]) and all(
            t["output"] for t in wrong["tests"]), wrong["tests"]
    finally:
        root.remove()
