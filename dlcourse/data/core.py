"""What every loader shares: the :class:`Split`, the error, argument checks, array helpers."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

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
        name: The dataset (``"digits"``, ``"mnist"`` or ``"fashion_mnist"``).
        num_classes: Number of classes (10).
        source: Where the images came from and how they were split, in one
            sentence (the file, the number of images, the test set), so that
            a page or a log can say which data a number was computed on.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int = 10
    source: str = ""

    def __iter__(self):
        """Unpack as ``(x_train, y_train, x_val, y_val, x_test, y_test)``."""
        return iter((self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test))


def check_fraction(value: float, name: str) -> float:
    value = check_rate(value, name)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1); received {name}={value!r}")
    return value


def check_seed(seed: object) -> int:
    # a wrong type is a TypeError, a negative integer a ValueError (GUIDE.md §3)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer; received seed={seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer; received seed={seed!r}")
    return int(seed)


def check_dtype(dtype: object) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or not np.issubdtype(dt, np.floating):
        raise TypeError(f"dtype must be a floating dtype; received dtype={dtype!r}")
    return dt


def stratified_take(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
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
