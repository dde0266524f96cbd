"""Datasets: digits splits, the MNIST loader without network, helpers."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from dlcourse.data import (
    DatasetUnavailableError,
    Split,
    flatten,
    load_digits,
    load_mnist,
    mnist_cache_path,
    one_hot,
    standardize,
)

N_DIGITS = 1797


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def rows(a):
    return {r.tobytes() for r in a}


def test_digits_split_sizes_types_and_stratification(digits):
    assert isinstance(digits, Split) and digits.name == "digits" and digits.num_classes == 10
    x_train, y_train, x_val, y_val, x_test, y_test = digits
    assert len(x_train) + len(x_val) + len(x_test) == N_DIGITS
    assert len(x_test) == pytest.approx(0.2 * N_DIGITS, abs=1)
    assert len(x_val) == pytest.approx(0.2 * N_DIGITS, abs=1)
    for x, y in ((x_train, y_train), (x_val, y_val), (x_test, y_test)):
        assert x.dtype == np.float32 and x.shape[1:] == (64,) and len(x) == len(y)
        assert y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0
        # stratified: each class within 1.5 images of its share of the split
        all_labels = np.concatenate([y_train, y_val, y_test])
        expected = np.bincount(all_labels, minlength=10) * len(y) / N_DIGITS
        assert np.all(np.abs(np.bincount(y, minlength=10) - expected) <= 1.5)


def test_digits_splits_cover_the_data_and_are_seeded(digits):
    from sklearn.datasets import load_digits as sk_load_digits

    everything = rows((sk_load_digits().data / 16.0).astype(np.float32))
    assert rows(digits.x_train) | rows(digits.x_val) | rows(digits.x_test) == everything
    again = load_digits(seed=0)
    for a, b in zip(digits, again, strict=True):
        assert np.array_equal(a, b)
    other = load_digits(seed=1)
    assert not np.array_equal(digits.y_test, other.y_test)


def test_digits_n_train_is_a_stratified_subset(digits):
    small = load_digits(n_train=100, seed=0)
    assert len(small.x_train) == 100
    assert np.all(np.abs(np.bincount(small.y_train, minlength=10) - 10) <= 1)
    assert rows(small.x_train) <= rows(digits.x_train)
    # the validation and test parts do not depend on n_train
    assert np.array_equal(small.x_test, digits.x_test) and np.array_equal(small.y_val, digits.y_val)
    assert np.array_equal(load_digits(n_train=100, seed=0).y_train, small.y_train)


def test_digits_scale_shape_and_dtype_options():
    raw = load_digits(scale="raw", seed=0)
    assert raw.x_train.max() == 16.0 and np.array_equal(raw.x_train, np.round(raw.x_train))
    unit = load_digits(seed=0)
    np.testing.assert_allclose(unit.x_train * 16, raw.x_train)
    std = load_digits(scale="standard", dtype=np.float64, seed=0)
    assert std.x_train.dtype == np.float64
    varying = raw.x_train.std(axis=0) > 0
    np.testing.assert_allclose(std.x_train.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(std.x_train.std(axis=0)[varying], 1.0, rtol=1e-4)
    images = load_digits(flatten=False, seed=0)
    assert images.x_train.shape[1:] == (1, 8, 8)
    np.testing.assert_array_equal(images.x_train.reshape(-1, 64), unit.x_train)
    no_val = load_digits(val_fraction=0.0, seed=0)
    assert len(no_val.x_val) == 0 and no_val.x_val.shape[1:] == (64,)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_train": 5000}, ValueError, r"n_train must be at most the number of training images"),
        ({"n_train": 5}, ValueError, r"n_train must be an integer >= 10; received n_train=5"),
        ({"n_train": 50.0}, TypeError, r"n_train must be an integer"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, ValueError, r"val_fraction \+ test_fraction < 1"),
        ({"test_fraction": 0.0}, ValueError, r"test_fraction must be > 0"),
        ({"val_fraction": 1.2}, ValueError, r"val_fraction must be in \[0, 1\]; received val_fraction=1.2"),
        ({"scale": "minmax"}, ValueError, r"scale must be 'unit', 'standard' or 'raw'; received scale='minmax'"),
        ({"dtype": np.int32}, TypeError, r"dtype must be a floating dtype"),
        ({"seed": "a"}, TypeError, r"seed must be a non-negative integer; received seed='a'"),
        ({"seed": 1.0}, TypeError, r"seed must be a non-negative integer; received seed=1.0"),
        ({"seed": True}, TypeError, r"seed must be a non-negative integer; received seed=True"),
        ({"seed": -1}, ValueError, r"seed must be a non-negative integer; received seed=-1"),
    ],
)
def test_digits_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_digits(**kwargs)


def test_seed_type_and_value_errors_are_distinct():
    """A right type with a bad value is a ValueError only, a wrong type a TypeError only."""
    with pytest.raises(ValueError, match=r"received seed=-3") as info:
        load_digits(seed=-3)
    assert not isinstance(info.value, TypeError)
    with pytest.raises(TypeError, match=r"received seed='0'") as info:
        load_digits(seed="0")
    assert not isinstance(info.value, ValueError)
    # NumPy integers are integers
    assert np.array_equal(load_digits(seed=np.int64(2)).y_test, load_digits(seed=2).y_test)


# --------------------------------------------------------------------------- MNIST without network


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path


def test_mnist_cache_path_follows_keras_home(empty_keras_home):
    assert mnist_cache_path() == empty_keras_home / "datasets" / "mnist.npz"


def test_mnist_without_cache_raises_clear_error(empty_keras_home):
    with pytest.raises(DatasetUnavailableError, match=r"MNIST is not cached at .*mnist.npz and download=False"):
        load_mnist(download=False)


def test_mnist_without_cache_falls_back_to_digits_with_warning(empty_keras_home):
    with pytest.warns(UserWarning, match="Falling back to scikit-learn's digits"):
        split = load_mnist(download=False, fallback=True, n_train=50, seed=3)
    assert split.name == "digits" and len(split.x_train) == 50


def test_mnist_fallback_passes_val_fraction_on(empty_keras_home):
    """val_fraction keeps its MNIST meaning: the fraction of the non-test images."""
    for val_fraction in (0.25, 0.0):
        with pytest.warns(UserWarning, match="Falling back"):
            split = load_mnist(download=False, fallback=True, val_fraction=val_fraction, seed=1)
        n_rest = len(split.x_train) + len(split.x_val)
        assert len(split.x_test) == pytest.approx(0.2 * N_DIGITS, abs=1)
        assert len(split.x_val) == pytest.approx(val_fraction * n_rest, abs=1)
        expected = load_digits(val_fraction=val_fraction * 0.8, test_fraction=0.2, seed=1)
        for a, b in zip(split, expected, strict=True):
            assert np.array_equal(a, b)
    with pytest.warns(UserWarning, match="Falling back"):
        images = load_mnist(download=False, fallback=True, flatten=False, dtype=np.float64)
    assert images.x_train.shape[1:] == (1, 8, 8) and images.x_train.dtype == np.float64


def test_mnist_fallback_with_an_mnist_sized_n_train_uses_all_digits(empty_keras_home):
    with pytest.warns(UserWarning) as record:
        split = load_mnist(download=False, fallback=True, n_train=5000, seed=0)
    messages = [str(w.message) for w in record]
    assert any("Falling back to scikit-learn's digits" in m for m in messages)
    everything = load_digits(val_fraction=(1 / 6) * 0.8, test_fraction=0.2, seed=0)
    n = len(everything.x_train)
    assert n < 5000 and len(split.x_train) == n
    assert any(f"n_train=5000 is more than the {n} training images" in m
               and f"using all {n}" in m for m in messages)
    assert all(w.filename == __file__ for w in record)  # the warnings point at the caller
    # without the fallback, digits still refuses an n_train it cannot honour
    with pytest.raises(ValueError, match=r"n_train must be at most .*received n_train=5000"):
        load_digits(n_train=5000)


def test_mnist_checks_its_arguments_before_loading(empty_keras_home):
    """Bad arguments fail the same way whether or not MNIST is available."""
    with pytest.raises(ValueError, match=r"n_train must be an integer >= 10; received n_train=5"):
        load_mnist(download=False, fallback=True, n_train=5)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer; received seed=-1"):
        load_mnist(download=False, fallback=True, seed=-1)
    with pytest.raises(TypeError, match=r"seed must be a non-negative integer; received seed=0.5"):
        load_mnist(download=False, seed=0.5)


def test_mnist_download_failure_is_reported_not_raised_raw(empty_keras_home, monkeypatch):
    """A failing Keras download (no network) becomes DatasetUnavailableError; no real download."""

    def load_data():
        raise OSError("network is unreachable")

    fake_keras = types.ModuleType("keras")
    fake_datasets = types.ModuleType("keras.datasets")
    fake_datasets.mnist = types.SimpleNamespace(load_data=load_data)
    fake_keras.datasets = fake_datasets
    monkeypatch.setitem(sys.modules, "keras", fake_keras)
    monkeypatch.setitem(sys.modules, "keras.datasets", fake_datasets)
    with pytest.raises(DatasetUnavailableError, match=r"could not be downloaded \(OSError: network"):
        load_mnist()
    with pytest.warns(UserWarning, match="Falling back"):
        assert load_mnist(fallback=True).name == "digits"


def test_mnist_reads_the_keras_cache_file(empty_keras_home):
    """The cached-file path, on a small file in Keras' format (uint8 images, integer labels)."""
    gen = np.random.default_rng(0)
    path = mnist_cache_path()
    path.parent.mkdir(parents=True)
    y_train = np.repeat(np.arange(10, dtype=np.uint8), 12)
    np.savez(path, x_train=gen.integers(0, 256, (120, 28, 28), dtype=np.uint8), y_train=y_train,
             x_test=gen.integers(0, 256, (30, 28, 28), dtype=np.uint8),
             y_test=np.repeat(np.arange(10, dtype=np.uint8), 3))
    split = load_mnist(val_fraction=0.25, download=False, seed=0)
    assert split.name == "mnist"
    assert split.x_train.shape == (90, 784) and split.x_val.shape == (30, 784)
    assert split.x_test.shape == (30, 784) and split.x_train.dtype == np.float32
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    assert split.y_train.dtype == np.int64
    small = load_mnist(n_train=20, flatten=False, download=False, seed=0)
    assert small.x_train.shape == (20, 1, 28, 28)
    assert np.all(np.bincount(small.y_train, minlength=10) == 2)


# --------------------------------------------------------------------------- helpers


def test_flatten_standardize_one_hot():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert flatten(x).shape == (2, 12)
    with pytest.raises(ValueError, match="x must have a batch axis"):
        flatten(np.float64(3.0))
    gen = np.random.default_rng(0)
    a, b = gen.normal(5, 3, (200, 4)), gen.normal(5, 3, (50, 4))
    a_std, (b_std,) = standardize(a, b)
    np.testing.assert_allclose(a_std.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(a_std.std(axis=0), 1, rtol=1e-6)
    np.testing.assert_allclose(b_std, (b - a.mean(axis=0)) / (a.std(axis=0) + 1e-8))
    y = np.array([3, 0, 9, 3])
    h = one_hot(y)
    assert h.shape == (4, 10) and h.dtype == np.float32
    assert np.array_equal(h.argmax(axis=1), y) and np.all(h.sum(axis=1) == 1)
    assert one_hot(y, 12).shape == (4, 12)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 5\); received labels from 0 to 9"):
        one_hot(y, 5)
    with pytest.raises(ValueError, match="y must be a 1-D array of integer labels"):
        one_hot(np.array([0.0, 1.0]))
