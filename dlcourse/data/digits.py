"""scikit-learn's bundled 8x8 digits, split into stratified, seeded parts."""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

from dlcourse._checks import check_positive_int
from dlcourse.data.core import (
    Split,
    check_dtype,
    check_fraction,
    check_seed,
    standardize,
    stratified_take,
)


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

    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    val_fraction = check_fraction(val_fraction, "val_fraction")
    test_fraction = check_fraction(test_fraction, "test_fraction")
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
        keep = stratified_take(y_train, n_train, np.random.default_rng(seed + 2))
        x_train, y_train = x_train[keep], y_train[keep]
    if scale == "unit":
        x_train, x_val, x_test = x_train / 16.0, x_val / 16.0, x_test / 16.0
    elif scale == "standard":
        x_train, (x_val, x_test) = standardize(x_train, x_val, x_test)
    shape = (-1, 64) if flatten else (-1, 1, 8, 8)
    parts = [a.reshape(shape).astype(dtype) for a in (x_train, x_val, x_test)]
    return Split(parts[0], y_train, parts[1], y_val, parts[2], y_test, name="digits")


