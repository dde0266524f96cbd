"""The foundation's promises: a light package, a CLI, two commands, one CI."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

import dlcourse


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_import_is_light():
    code = (
        "import json, sys, dlcourse, dlcourse.scratch, dlcourse.data, dlcourse.cli;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'tensorflow', 'keras', 'jax'))))"
    )
    proc = _run(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_cli_version_and_help():
    proc = _run(sys.executable, "-m", "dlcourse", "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"dlcourse {dlcourse.__version__}"
    proc = _run(sys.executable, "-m", "dlcourse", "--help")
    assert proc.returncode == 0
    assert "usage: dlcourse" in proc.stdout


def test_readme_gives_the_two_commands(repo_root):
    first_screen = "\n".join((repo_root / "README.md").read_text().splitlines()[:40])
    assert "make book" in first_screen and "make test" in first_screen


def test_ci_runs_exactly_the_readme_test_command(repo_root):
    lines = [
        line.strip()
        for line in (repo_root / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == "make test"
    assert not any("|| true" in line for line in lines)


def test_torch_is_pinned(repo_root):
    for name in ("requirements.txt", "constraints.txt"):
        text = (repo_root / "requirements" / name).read_text().lower().replace("_", "-")
        pins = text.splitlines()
        assert "torch==2.13.0" in pins, name
        assert any(p.startswith("tensorflow-cpu==") for p in pins), name


def test_lock_pins_only_registry_releases(repo_root):
    """A fresh machine installs the lock from the package registries alone.

    `pip freeze` writes `name @ file:///...` for a package installed from a local
    wheel; such a line installs only on the machine that wrote it.
    """
    for name in ("requirements.txt", "constraints.txt"):
        for line in (repo_root / "requirements" / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                assert " @ " not in line and "://" not in line, f"{name}: {line}"
                assert "==" in line, f"{name}: not pinned: {line}"


def test_the_pinned_frameworks_import(repo_root):
    """The test command installs torch and TensorFlow: a broken install must fail, not skip.

    (The framework tests use ``pytest.importorskip`` so that the package's own
    tests still run in a lighter environment; here the pins are checked.)
    """
    pins = dict(line.lower().replace("_", "-").split("==", 1)
                for line in (repo_root / "requirements" / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    code = ("import json, torch, tensorflow, keras;"
            "print(json.dumps([torch.__version__.split('+')[0], tensorflow.__version__]))")
    proc = _run(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    torch_version, tf_version = json.loads(proc.stdout.strip().splitlines()[-1])
    assert torch_version == pins["torch"] == "2.13.0"
    assert tf_version == pins["tensorflow-cpu"]


def test_book_config_is_strict_and_offline(repo_root):
    config = yaml.safe_load((repo_root / "_config.yml").read_text())
    assert config["execute"]["allow_errors"] is False
    assert config["execute"]["stderr_output"] == "remove"
    assert "book/references.bib" in config["bibtex_bibfiles"]
    toc = yaml.safe_load((repo_root / "_toc.yml").read_text())
    assert toc["root"] == "book/intro"
