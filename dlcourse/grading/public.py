"""Public self-checks a student runs inside their own notebook: ``check("q1")``.

The checks are public (they ship with the student bundle), so nothing here is
secret: they catch the common mistakes early and say what is wrong. The
hidden tests, run by ``dlcourse grade``, decide the score.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PASS_MARK = "\u2714"  # check mark
FAIL_MARK = "\u2718"  # ballot x


@dataclass(frozen=True)
class CheckOutcome:
    """The outcome of one public check.

    Attributes:
        title: What the check verifies (its docstring's first line).
        passed: Whether it passed.
        message: Feedback for the student when it failed, else ``""``.
    """

    title: str
    passed: bool
    message: str = ""


def _title(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func)
    if doc:
        return doc.strip().splitlines()[0]
    return func.__name__.replace("_", " ")


def _load_checks(exercise: str) -> Mapping[str, list[Callable[[dict], Any]]]:
    module_name = f"dlcourse.grading.public_checks.{exercise}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the checks exist but need a module that is missing
            raise
        raise ValueError(
            f"exercise must name an exercise with public checks; received exercise={exercise!r}. "
            f"Its checks belong in dlcourse/grading/public_checks/{exercise}.py, a module with "
            'CHECKS = {"q1": [check_function, ...], ...} (`dlcourse new-exercise` writes one)'
        ) from exc
    checks = getattr(module, "CHECKS", None)
    if not isinstance(checks, Mapping):
        raise TypeError(f"public checks of {exercise!r} define no CHECKS dictionary")
    return checks


def run_checks(question: str, namespace: dict[str, Any], exercise: str) -> list[CheckOutcome]:
    """Run the public checks of one question against a notebook's globals.

    Args:
        question: The question's key, e.g. ``"q1"``.
        namespace: The notebook's global variables.
        exercise: The exercise name, e.g. ``"01_dropout_from_scratch"``.

    Returns:
        One :class:`CheckOutcome` per check, in order.
    """
    checks = _load_checks(exercise)
    if question not in checks:
        known = ", ".join(sorted(checks))
        raise ValueError(f"question must be one of {known}; received question={question!r}")
    outcomes = []
    for func in checks[question]:
        title = _title(func)
        try:
            func(namespace)
        except NotImplementedError:
            outcomes.append(CheckOutcome(title, False, "not answered yet (the stub still raises "
                                                       "NotImplementedError)"))
        except AssertionError as exc:
            # Only the author's message: never pytest's introspection of the check's code.
            message = str(exc).split("\nassert ")[0].strip() or "this check failed"
            outcomes.append(CheckOutcome(title, False, message))
        except Exception as exc:  # student code raised: report it, keep checking
            outcomes.append(CheckOutcome(title, False,
                                         f"your code raised {type(exc).__name__}: {exc}"))
        else:
            outcomes.append(CheckOutcome(title, True))
    return outcomes


def format_outcomes(question: str, outcomes: list[CheckOutcome]) -> str:
    """Render outcomes as the text :func:`check` prints."""
    lines = [f"{question}: public checks"]
    for outcome in outcomes:
        mark = PASS_MARK if outcome.passed else FAIL_MARK
        line = f"  {mark} {outcome.title}"
        if not outcome.passed:
            line += "\n      " + outcome.message.replace("\n", "\n      ")
        lines.append(line)
    failed = sum(not o.passed for o in outcomes)
    total = len(outcomes)
    if failed:
        lines.append(f"{question}: {failed} of {total} public {_checks(total)} failed"
                     " — fix them first (hidden tests not run)")
    elif total == 1:
        lines.append(f"{question}: the public check passed — hidden tests not run")
    else:
        lines.append(f"{question}: all {total} public checks passed — hidden tests not run")
    return "\n".join(lines)


def _checks(count: int) -> str:
    return "check" if count == 1 else "checks"


def check(question: str, *, exercise: str | None = None) -> None:
    """Run the public self-checks of ``question`` and print readable feedback.

    Call it from a notebook cell, e.g. ``check("q1")``. The exercise is the
    ``exercise`` argument or, by default, the notebook's ``EXERCISE`` variable.
    Passing the public checks does not mean full marks: the hidden tests,
    which the grader runs, check more.

    Args:
        question: The question's key, e.g. ``"q1"``.
        exercise: The exercise name; defaults to the caller's ``EXERCISE``.
    """
    caller = sys._getframe(1).f_globals
    if exercise is None:
        exercise = caller.get("EXERCISE")
        if not isinstance(exercise, str):
            raise ValueError(
                "check() needs to know the exercise: keep the line "
                'EXERCISE = "<exercise name>" in the first cell, or pass exercise="..."; '
                f"received EXERCISE={exercise!r}"
            )
    print(format_outcomes(question, run_checks(question, caller, exercise)))
