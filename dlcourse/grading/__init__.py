"""The auto-grader: student self-checks, hidden tests, ``dlcourse grade/assign/release``.

Importing this package is light (no pytest, no jupyter_client, no framework):
student notebooks import :func:`check` from it, hidden tests :func:`points`,
:func:`visibility` and the exceptions.

How the grader works (its pipeline and modules), its contract with the
exercises (notebooks, public self-checks, hidden tests and their fixtures,
``grading.json``) and its security model (what ``dlcourse grade`` guarantees,
and what it does not) are in the instructors' guide: ``book/grading.md``, the
page "How the grader works" of the course website.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from dlcourse.grading.errors import (
    GraderError,
    SubmissionDied,
    SubmissionError,
    SubmissionTimeout,
)
from dlcourse.grading.public import check

__all__ = [
    "GraderError",
    "SubmissionDied",
    "SubmissionError",
    "SubmissionTimeout",
    "VISIBILITIES",
    "check",
    "points",
    "visibility",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Gradescope's visibility levels of a test.
VISIBILITIES = ("visible", "after_published", "hidden")


def points(value: float) -> Callable[[F], F]:
    """Give a hidden test ``value`` points (default 1).

    Args:
        value: Points earned when the test passes; must be >= 0.

    Returns:
        A decorator that records the points on the test function.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"points must be a number >= 0; received value={value!r}")

    def decorate(func: F) -> F:
        func.__dlcourse_points__ = float(value)  # type: ignore[attr-defined]
        return func

    return decorate


def visibility(level: str) -> Callable[[F], F]:
    """Set a hidden test's Gradescope visibility.

    Args:
        level: ``"visible"`` (default), ``"after_published"`` or ``"hidden"``.

    Returns:
        A decorator that records the visibility on the test function.
    """
    if level not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {VISIBILITIES}; received level={level!r}")

    def decorate(func: F) -> F:
        func.__dlcourse_visibility__ = level  # type: ignore[attr-defined]
        return func

    return decorate
