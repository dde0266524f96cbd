"""Plain-data encoding of values crossing between the grader and a submission.

Values travel as JSON; arrays as base64 ``.npy`` bytes read back with
``np.load(allow_pickle=False)``. Nothing is ever unpickled. The module only
needs the standard library and NumPy because its source is also executed
inside the student's kernel (see :mod:`dlcourse.grading.kernel_side`).
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np

MAX_DEPTH = 32
_TAGS = ("__ndarray__", "__npscalar__", "__tuple__", "__dict__")


class Unsupported(TypeError):
    """A value of a type the protocol does not carry."""

    def __init__(self, type_name: str, where: str):
        super().__init__(f"{where} is an object of type {type_name}")
        self.type_name = type_name
        self.where = where


def _npy_bytes(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _npy_load(text: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)


def encode(value, where: str = "the value", depth: int = 0, extra=None):
    """Turn ``value`` into JSON-compatible data.

    Args:
        value: The value to encode.
        where: A description of the value for error messages.
        depth: Current nesting depth (internal).
        extra: Optional ``callable(value) -> encoded or None`` tried first,
            for protocol markers (references, handles, tensors).

    Raises:
        Unsupported: For any type outside the protocol.
    """
    if depth > MAX_DEPTH:
        raise Unsupported("a structure nested too deeply", where)
    if extra is not None:
        special = extra(value)
        if special is not None:
            return special
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return value
    if isinstance(value, np.ndarray):
        # the base class's view: a subclass cannot lie about its dtype or shape here
        plain = np.ndarray.view(value, np.ndarray)
        if plain.dtype.hasobject:
            raise Unsupported("numpy.ndarray of dtype object", where)
        return {"__ndarray__": _npy_bytes(plain)}
    if isinstance(value, np.generic):
        if value.dtype.hasobject:
            raise Unsupported("numpy object scalar", where)
        return {"__npscalar__": _npy_bytes(np.asarray(value))}
    if type(value) is list:
        return [encode(v, f"{where}[{i}]", depth + 1, extra) for i, v in enumerate(value)]
    if type(value) is tuple:
        return {"__tuple__": [encode(v, f"{where}[{i}]", depth + 1, extra)
                              for i, v in enumerate(value)]}
    if type(value) is dict:
        return {"__dict__": [[encode(k, f"a key of {where}", depth + 1, extra),
                              encode(v, f"{where}[{k!r}]", depth + 1, extra)]
                             for k, v in value.items()]}
    kind = type(value)
    raise Unsupported(f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins."), where)


def decode(data, depth: int = 0, extra=None):
    """Invert :func:`encode`; unknown shapes raise ``ValueError``.

    Args:
        data: Parsed JSON.
        depth: Current nesting depth (internal).
        extra: Optional ``callable(dict) -> (True, value) | (False, None)``
            for protocol markers.
    """
    if depth > MAX_DEPTH:
        raise ValueError("nested too deeply")
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):
        return [decode(v, depth + 1, extra) for v in data]
    if isinstance(data, dict):
        if extra is not None:
            handled, value = extra(data)
            if handled:
                return value
        if len(data) != 1:
            raise ValueError(f"unexpected object with keys {sorted(data)[:5]}")
        (tag, payload), = data.items()
        if tag == "__ndarray__":
            return _npy_load(payload)
        if tag == "__npscalar__":
            return _npy_load(payload)[()]
        if tag == "__tuple__":
            return tuple(decode(v, depth + 1, extra) for v in payload)
        if tag == "__dict__":
            out = {}
            for key, value in payload:
                out[decode(key, depth + 1, extra)] = decode(value, depth + 1, extra)
            return out
        raise ValueError(f"unknown tag {tag!r}")
    raise ValueError(f"unexpected JSON value of type {type(data).__name__}")


def dumps(data) -> str:
    """JSON text of already-encoded data (NaN and infinities allowed)."""
    return json.dumps(data, separators=(",", ":"))


def loads(text: str, max_chars: int = 256 * 2**20):
    """Parse JSON text produced by :func:`dumps`, refusing oversized payloads."""
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}")
    if len(text) > max_chars:
        raise ValueError(f"payload of {len(text)} characters exceeds {max_chars}")
    return json.loads(text)
