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

#: The type of the display message that carries a reply from the kernel to the grader.
MIME = "application/x-dlcourse-rpc"
#: The longest RPC reply the grader reads (characters of JSON); a longer one is refused.
MAX_REPLY_CHARS = 64 * 2**20
MAX_DEPTH = 32


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
    special = None if extra is None else extra(value)
    if special is not None:
        return special
    if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return _encode_numpy(value, where)
    container = _CONTAINERS.get(type(value))  # exactly these types: no subclass hooks
    if container is None:
        kind = type(value)
        raise Unsupported(f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins."),
                          where)
    return container(value, where, depth + 1, extra)


def _encode_numpy(value, where: str) -> dict:
    if isinstance(value, np.ndarray):
        # the base class's view: a subclass cannot lie about its dtype or shape here
        plain, tag, refused = (np.ndarray.view(value, np.ndarray), "__ndarray__",
                               "numpy.ndarray of dtype object")
    else:
        plain, tag, refused = np.asarray(value), "__npscalar__", "numpy object scalar"
    if plain.dtype.hasobject:
        raise Unsupported(refused, where)
    return {tag: _npy_bytes(plain)}


def _encode_items(value, where: str, depth: int, extra) -> list:
    return [encode(v, f"{where}[{i}]", depth, extra) for i, v in enumerate(value)]


def _encode_dict(value: dict, where: str, depth: int, extra) -> dict:
    return {"__dict__": [[encode(k, f"a key of {where}", depth, extra),
                          encode(v, f"{where}[{k!r}]", depth, extra)]
                         for k, v in value.items()]}


_CONTAINERS = {
    list: _encode_items,
    tuple: lambda value, *args: {"__tuple__": _encode_items(value, *args)},
    dict: _encode_dict,
}


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
    if not isinstance(data, dict):
        raise ValueError(f"unexpected JSON value of type {type(data).__name__}")
    handled, value = (False, None) if extra is None else extra(data)
    if handled:
        return value
    if len(data) != 1:
        raise ValueError(f"unexpected object with keys {sorted(data)[:5]}")
    (tag, payload), = data.items()
    if tag not in _DECODERS:
        raise ValueError(f"unknown tag {tag!r}")
    return _DECODERS[tag](payload, depth + 1, extra)


def _decode_dict(payload, depth: int, extra) -> dict:
    out = {}
    for key, value in payload:
        out[decode(key, depth, extra)] = decode(value, depth, extra)
    return out


_DECODERS = {
    "__ndarray__": lambda payload, depth, extra: _npy_load(payload),
    "__npscalar__": lambda payload, depth, extra: _npy_load(payload)[()],
    "__tuple__": lambda payload, depth, extra: tuple(decode(v, depth, extra) for v in payload),
    "__dict__": _decode_dict,
}


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
