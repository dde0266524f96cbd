"""Datasets of the course, offline first.

* :func:`load_digits` — scikit-learn's bundled 8x8 handwritten digits (1,797
  images, shipped inside scikit-learn, so nothing is downloaded), split into
  stratified, seeded train/validation/test sets.
* :func:`load_mnist` — the real MNIST (70,000 28x28 images) through Keras'
  loader and its cache (``~/.keras/datasets/mnist.npz``); raises a clear
  :class:`DatasetUnavailableError` when it cannot be had, or falls back to
  digits with a warning where asked.
* Helpers: :func:`flatten`, :func:`standardize`, :func:`one_hot`.

References:
    Alpaydin & Kaynak (1998), "Optical Recognition of Handwritten Digits", UCI
    Machine Learning Repository (the digits); LeCun, Bottou, Bengio & Haffner
    (1998), "Gradient-Based Learning Applied to Document Recognition", Proc.
    IEEE 86 (MNIST).
"""

from __future__ import annotations

import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dlcourse._checks import check_positive_int, check_rate


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be loaded (no cached copy and no network)."""


@dataclass(frozen=True)
class Split:
    """A dataset split into train, validation and test parts.

    Attributes:
        x_train, y_train: Training inputs ``(N_train, ...)`` and integer labels ``(N_train,)``.
        x_val, y_val: Validation inputs and labels (may hold zero rows).
        x_test, y_test: Test inputs and labels.
        name: Where the data came from (``"digits"`` or ``"mnist"``).
        num_classes: Number of classes (10).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int = 10

    def __iter__(self):
        """Unpack as ``(x_train, y_train, x_val, y_val, x_test, y_test)``."""
        return iter((self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test))


def _check_fraction(value: float, name: str) -> float:
    value = check_rate(value, name)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1); received {name}={value!r}")
    return value


def _check_seed(seed: object) -> int:
    # a wrong type is a TypeError, a negative integer a ValueError (GUIDE.md §3)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer; received seed={seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer; received seed={seed!r}")
    return int(seed)


def _check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not np.issubdtype(dt, np.floating):
        raise TypeError(f"dtype must be a floating dtype; received dtype={dtype!r}")
    return dt


def _stratified_take(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` rows of ``y`` with the class proportions of ``y``."""
    from sklearn.model_selection import train_test_split

    if n > len(y):
        raise ValueError(
            f"n_train must be at most the number of training images ({len(y)}); "
            f"received n_train={n}"
        )
    if n == len(y):
        return rng.permutation(len(y))
    idx, _ = train_test_split(
        np.arange(len(y)), train_size=n, stratify=y, random_state=int(rng.integers(2**31 - 1))
    )
    return np.asarray(idx)


def load_digits(
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    n_train: int | None = None,
    seed: int = 0,
    flatten: bool = True,
    scale: str = "unit",
    dtype: npt.DTypeLike = np.float32,
) -> Split:
    """Load scikit-learn's 8x8 digits with stratified, seeded splits.

    Args:
        val_fraction: Fraction of all images held out for validation, in ``[0, 1)``.
        test_fraction: Fraction of all images held out for testing, in ``(0, 1)``.
        n_train: Keep only this many training images (stratified, at least 10
            and at most the size of the training part), for small-data
            overfitting demonstrations; ``None`` keeps all of them.
        seed: Seed of the split, a non-negative integer (the same seed always
            gives the same split).
        flatten: Return ``(N, 64)`` rows (``True``) or ``(N, 1, 8, 8)`` images.
        scale: ``"unit"`` divides pixel values (0..16) by 16; ``"standard"``
            standardises each pixel with the training mean and std; ``"raw"`` keeps 0..16.
        dtype: Floating dtype of the inputs (labels are ``int64``).

    Returns:
        A :class:`Split` named ``"digits"``; unpacks as
        ``x_train, y_train, x_val, y_val, x_test, y_test``.

    Raises:
        TypeError: An argument of the wrong type (e.g. ``seed="a"``, ``dtype=np.int32``).
        ValueError: A value out of range, e.g. a negative ``seed``, fractions
            that leave no training images, or ``n_train`` below 10 or above the
            number of training images (1,077 with the default fractions).

    References:
        Alpaydin & Kaynak (1998), UCI Machine Learning Repository;
        ``sklearn.datasets.load_digits``.
    """
    return _load_digits(val_fraction=val_fraction, test_fraction=test_fraction,
                        n_train=n_train, seed=seed, flatten=flatten, scale=scale,
                        dtype=dtype, clip_n_train=False)


def _load_digits(
    *,
    val_fraction: float,
    test_fraction: float,
    n_train: int | None,
    seed: int,
    flatten: bool,
    scale: str,
    dtype: npt.DTypeLike,
    clip_n_train: bool,
) -> Split:
    """:func:`load_digits`; with ``clip_n_train``, too large an ``n_train`` warns and keeps all."""
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    seed = _check_seed(seed)
    dtype = _check_dtype(dtype)
    val_fraction = _check_fraction(val_fraction, "val_fraction")
    test_fraction = _check_fraction(test_fraction, "test_fraction")
    if test_fraction == 0.0 or val_fraction + test_fraction >= 1.0:
        raise ValueError(
            "test_fraction must be > 0 and val_fraction + test_fraction < 1; received "
            f"val_fraction={val_fraction!r}, test_fraction={test_fraction!r}"
        )
    if scale not in ("unit", "standard", "raw"):
        raise ValueError(f"scale must be 'unit', 'standard' or 'raw'; received scale={scale!r}")
    if n_train is not None:
        n_train = check_positive_int(n_train, "n_train", minimum=10)
    bunch = _sk_load_digits()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    if val_fraction > 0:
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=val_fraction / (1.0 - test_fraction),
            stratify=y_rest, random_state=seed + 1,
        )
    else:
        x_train, y_train = x_rest, y_rest
        x_val, y_val = x_rest[:0], y_rest[:0]
    if n_train is not None and clip_n_train and n_train > len(y_train):
        # stacklevel 3: the warning points at the caller of load_mnist
        warnings.warn(
            f"n_train={n_train} is more than the {len(y_train)} training images of "
            f"scikit-learn's digits; using all {len(y_train)} of them.",
            stacklevel=3,
        )
        n_train = None
    if n_train is not None:
        keep = _stratified_take(y_train, n_train, np.random.default_rng(seed + 2))
        x_train, y_train = x_train[keep], y_train[keep]
    if scale == "unit":
        x_train, x_val, x_test = x_train / 16.0, x_val / 16.0, x_test / 16.0
    elif scale == "standard":
        x_train, (x_val, x_test) = standardize(x_train, x_val, x_test)
    shape = (-1, 64) if flatten else (-1, 1, 8, 8)
    parts = [a.reshape(shape).astype(dtype) for a in (x_train, x_val, x_test)]
    return Split(parts[0], y_train, parts[1], y_val, parts[2], y_test, name="digits")


def mnist_cache_path() -> Path:
    """Where Keras caches MNIST: ``$KERAS_HOME/datasets/mnist.npz``.

    ``KERAS_HOME`` defaults to ``~/.keras``, as in Keras itself. The file need
    not exist.

    Returns:
        The path of the cached ``mnist.npz``.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


# digits has no fixed test set as MNIST does: the fallback holds out this fraction
FALLBACK_TEST_FRACTION = 0.2


def load_mnist(
    *,
    val_fraction: float = 1 / 6,
    n_train: int | None = None,
    seed: int = 0,
    flatten: bool = True,
    dtype: npt.DTypeLike = np.float32,
    download: bool = True,
    fallback: bool = False,
) -> Split:
    """Load the real MNIST through Keras' loader and its cache.

    The cached file (:func:`mnist_cache_path`) is read with NumPy directly, so
    a machine that has it needs neither TensorFlow nor the network. Without
    it, ``keras.datasets.mnist.load_data()`` downloads it (if ``download``).

    The fallback (``fallback=True``, MNIST unavailable) warns and returns
    :func:`load_digits` with the same options, translated: the test part is
    ``FALLBACK_TEST_FRACTION`` (0.2) of the 1,797 images, ``val_fraction`` is
    again the fraction of the *remaining* images held out (so the default 1/6
    gives 1,197 / 240 / 360 images), and ``seed``, ``flatten`` (``(N, 64)`` or
    ``(N, 1, 8, 8)``) and ``dtype`` are passed on. An ``n_train`` written for
    MNIST (e.g. 5,000) is more than digits has: a second warning says so and
    all of digits' training images are used, so code written for MNIST still
    runs. (:func:`load_digits` itself raises for such an ``n_train``.)

    Args:
        val_fraction: Fraction of the 60,000 training images held out for
            validation, in ``[0, 1)``.
        n_train: Keep only this many training images (stratified, at least 10);
            ``None`` keeps all of them.
        seed: Seed of the validation split and of ``n_train``'s subset, a
            non-negative integer.
        flatten: ``(N, 784)`` rows or ``(N, 1, 28, 28)`` images.
        dtype: Floating dtype of the inputs, scaled to ``[0, 1]`` (labels are ``int64``).
        download: Allow Keras to download MNIST when it is not cached.
        fallback: Instead of raising, warn and return :func:`load_digits` (see above).

    Returns:
        A :class:`Split` named ``"mnist"`` (or ``"digits"`` after a fallback).

    Raises:
        DatasetUnavailableError: MNIST is not cached and could not be
            downloaded (and ``fallback`` is false).
        TypeError: An argument of the wrong type.
        ValueError: A value out of range, e.g. a negative ``seed``, ``n_train``
            below 10, or (without a fallback) above the number of training images.

    References:
        LeCun et al. (1998), Proc. IEEE 86; ``keras.datasets.mnist.load_data``.
    """
    val_fraction = _check_fraction(val_fraction, "val_fraction")
    seed = _check_seed(seed)
    dtype = _check_dtype(dtype)
    if n_train is not None:
        n_train = check_positive_int(n_train, "n_train", minimum=10)
    try:
        (x_tr, y_tr), (x_te, y_te) = _read_mnist(download)
    except DatasetUnavailableError as err:
        if not fallback:
            raise
        warnings.warn(f"{err} Falling back to scikit-learn's digits.", stacklevel=2)
        return _load_digits(
            val_fraction=val_fraction * (1.0 - FALLBACK_TEST_FRACTION),
            test_fraction=FALLBACK_TEST_FRACTION, n_train=n_train, seed=seed,
            flatten=flatten, scale="unit", dtype=dtype, clip_n_train=True,
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_tr))
    n_val = int(round(val_fraction * len(y_tr)))
    val, train = order[:n_val], order[n_val:]
    if n_train is not None:
        train = train[_stratified_take(y_tr[train], n_train, rng)]
    shape = (-1, 784) if flatten else (-1, 1, 28, 28)

    def prep(a: np.ndarray) -> np.ndarray:
        return (a.reshape(shape) / 255.0).astype(dtype)

    return Split(
        prep(x_tr[train]), y_tr[train].astype(np.int64),
        prep(x_tr[val]), y_tr[val].astype(np.int64),
        prep(x_te), y_te.astype(np.int64), name="mnist",
    )


def _read_mnist(download: bool):
    path = mnist_cache_path()
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    if not download:
        raise DatasetUnavailableError(f"MNIST is not cached at {path} and download=False.")
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from keras.datasets import mnist
    except ImportError as err:
        raise DatasetUnavailableError(
            f"MNIST is not cached at {path} and Keras is not installed to download it ({err})."
        ) from err
    try:
        return mnist.load_data()
    except Exception as err:  # the network error types differ by platform
        raise DatasetUnavailableError(
            f"MNIST is not cached at {path} and could not be downloaded "
            f"({type(err).__name__}: {err})."
        ) from err


def flatten(x: npt.ArrayLike) -> np.ndarray:
    """Reshape ``(N, ...)`` into ``(N, D)`` rows, ``D`` the product of the other axes.

    Args:
        x: An array with a batch axis first, e.g. images ``(N, 1, 28, 28)``.

    Returns:
        ``x.reshape(N, -1)``, e.g. ``(N, 784)`` (a view where NumPy can make one;
        the dtype is kept).

    Raises:
        ValueError: ``x`` is 0-d (no batch axis).
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"x must have a batch axis; received x of shape {x.shape}")
    return x.reshape(len(x), -1)


def standardize(
    x_train: npt.ArrayLike, *others: npt.ArrayLike, eps: float = 1e-8
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Standardise features with the training set's mean and standard deviation.

    Formula: ``(x - mean) / (std + eps)``, ``mean`` and ``std`` per feature
    (over axis 0) of ``x_train`` only, so no test statistics leak into training.

    Args:
        x_train: ``(N, D)`` training rows; the statistics come from these only.
        *others: Further arrays ``(M, D)`` transformed with the same statistics.
        eps: Added to the standard deviation so constant features stay finite.

    Returns:
        ``(x_train_std, [others_std...])``.
    """
    x_train = np.asarray(x_train)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + eps
    return (x_train - mean) / std, [(np.asarray(o) - mean) / std for o in others]


def one_hot(
    y: npt.ArrayLike, num_classes: int | None = None, dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """Encode integer labels ``(N,)`` as one-hot rows ``(N, num_classes)``.

    Formula: ``out[n, k] = 1`` if ``y[n] == k`` else ``0``.

    Args:
        y: Integer labels ``(N,)``.
        num_classes: Number of classes ``C``; ``None`` uses ``max(y) + 1``.
        dtype: Dtype of the result.

    Returns:
        ``(N, C)`` array of zeros with one 1 per row.

    Raises:
        TypeError: ``num_classes`` is not an integer.
        ValueError: ``y`` is not 1-D integer labels in ``[0, num_classes)``, or
            ``num_classes < 1``.
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a 1-D array of integer labels; received y of shape "
                         f"{y.shape} and dtype {y.dtype}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    num_classes = check_positive_int(num_classes, "num_classes")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"y must hold labels in [0, {num_classes}); received labels from "
                         f"{int(y.min())} to {int(y.max())}")
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out
