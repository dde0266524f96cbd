"""Public self-checks of the exercises, one module per exercise.

Each module is named after its exercise notebook (e.g. ``01_dropout_from_scratch``)
and defines ``CHECKS = {"q1": [fn, ...], ...}``. Each ``fn`` receives the
notebook's globals and raises :class:`AssertionError` with a message a student
can act on. The checks use other (and weaker) inputs than the hidden tests and
never show an expected answer that would give the exercise away; passing them
is necessary, not sufficient.

The helpers below keep the messages uniform across exercises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def need(ns: Mapping[str, Any], name: str, *, kind: str = "function") -> Any:
    """Return ``ns[name]`` or fail with a message saying which cell to run."""
    if name not in ns:
        raise AssertionError(
            f"`{name}` is not defined: write the {kind} `{name}` and run its cell before checking."
        )
    value = ns[name]
    if kind in ("function", "class") and not callable(value):
        raise AssertionError(f"`{name}` should be a {kind}; it is a {type(value).__name__}.")
    return value


def attempt(fn: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
    """Call ``fn``; turn a stub or a crash into an AssertionError that says where."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{what} raised NotImplementedError: replace the stub with your code."
        ) from None
    except AssertionError:
        raise
    except Exception as err:  # the student's bug, reported readably
        raise AssertionError(f"{what} raised {type(err).__name__}: {err}") from None


def is_pair(value: Any, what: str) -> tuple[Any, Any]:
    """Check ``value`` is a pair and return it."""
    if not isinstance(value, tuple) or len(value) != 2:
        raise AssertionError(f"{what} should return a pair (out, cache); it returned {type(value).__name__}.")
    return value
