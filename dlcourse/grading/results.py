"""What a grading passes along: the job a worker gets, the events it streams back, and
``results.json`` (Gradescope's schema), which is built here and nowhere else.

* :class:`Job`: what ``dlcourse grade`` sends a worker on its stdin (JSON).
* Events: one JSON line each on the worker's stdout (:func:`event_line`), read
  back by :class:`Outcome`: ``kernel`` (its pid, start time and folders),
  ``test`` (a finished test's entry), ``collected`` (the hidden tests and
  collection errors), ``done`` (the complete result) or ``grader_error``.
* :func:`results_json`: the one function that completes a list of tests
  (every collected test appears, at 0 points with a reason where it did not
  run), totals it and builds the Gradescope ``results.json`` dict.

Run as ``python -m dlcourse.grading.results RESULTS_JSON --message TEXT`` it
writes the results of a submission that could not be graded (the Gradescope
``run_autograder`` script does); :func:`fallback_json` is the one text it writes
when even that cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlcourse.grading.exercise import Exercise, package_versions
from dlcourse.grading.sandbox import Isolation, Limits

#: What a tests's entry says until it ran.
NOT_RUN = "not run"
#: Why a collected test is missing from a grading that went to its end.
DID_NOT_RUN = "this test did not run (the test run stopped before it)"


@dataclass
class Job:
    """One worker's work: collect the hidden tests, or grade one notebook.

    Attributes:
        exercise: The exercise.
        hidden_sha256: The bundle hash the batch started with.
        limits: The kernel's limits.
        isolation: The sandbox of the batch.
        worker_memory_mb: The worker's own memory limit (``RLIMIT_DATA``, soft).
        notebook: The submission (None: only collect the tests).
        all_tests: The tests collected before grading (:func:`test_entry` dicts).
    """

    exercise: Exercise
    hidden_sha256: str
    limits: Limits
    isolation: Isolation
    worker_memory_mb: int | None = None
    notebook: str | None = None
    all_tests: list[dict] | None = None

    def to_json(self) -> str:
        return json.dumps({
            **self.exercise.to_json(), "hidden_sha256": self.hidden_sha256,
            "limits": asdict(self.limits), "isolation": self.isolation.to_json(),
            "worker_memory_mb": self.worker_memory_mb, "notebook": self.notebook,
            "all_tests": self.all_tests})

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        return cls(Exercise.from_json(data), data["hidden_sha256"], Limits(**data["limits"]),
                   Isolation.from_json(data.get("isolation")), data.get("worker_memory_mb"),
                   data.get("notebook"), data.get("all_tests"))


# -- events ---------------------------------------------------------------------------
def event_line(kind: str, **fields) -> str:
    """One event of a worker's stream: a JSON line ``{"event": kind, ...}``."""
    return json.dumps({"event": kind, **fields}) + "\n"


@dataclass
class Outcome:
    """What a worker reported, read line by line from its event stream.

    Attributes:
        tests: The ``test`` events' entries, in order.
        result: The ``done`` event's result (None: the worker did not finish).
        error: The ``grader_error`` event's message.
        kernel: The ``kernel`` event (its pid, start time and folders).
        collected: The ``collected`` event's ``(tests, errors)``.
        exited: The ``exit`` event of a serving worker: the notebook's process ended
            (``status``: exit status or minus the signal; ``hung``: stopped at its limit).
    """

    tests: list[dict] = field(default_factory=list)
    result: dict | None = None
    error: str | None = None
    kernel: dict | None = None
    collected: tuple[list[dict], list[str]] | None = None
    exited: dict | None = None

    def read(self, line: str) -> None:
        """Take in one line of the stream; anything that is not an event is ignored."""
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        kind = event.get("event") if isinstance(event, dict) else None
        if kind == "kernel":
            self.kernel = event
        elif kind == "test":
            self.tests.append(event["test"])
        elif kind == "done":
            self.result = event["result"]
        elif kind == "grader_error":
            self.error = event["message"]
        elif kind == "collected":
            self.collected = (event["tests"], event["errors"])
        elif kind == "exit":
            self.exited = event


# -- results.json ---------------------------------------------------------------------
def test_entry(name: str, number: int, max_score: float, visibility: str, nodeid: str) -> dict:
    """A test's entry in ``results.json`` before it ran (no points earned yet)."""
    return {"name": name, "number": str(number), "score": 0.0, "max_score": float(max_score),
            "status": NOT_RUN, "output": "", "visibility": visibility, "nodeid": nodeid}


def finished(entry: dict, failure: str | None) -> dict:
    """``entry`` after its test ran: full points, or 0 with the ``failure`` message."""
    return dict(entry, score=0.0 if failure is not None else entry["max_score"],
                status="failed" if failure is not None else "passed", output=failure or "")


def complete_tests(tests: list[dict], all_tests: list[dict] | None, reason: str) -> list[dict]:
    """``tests`` plus, at 0 points with ``reason``, every test of ``all_tests`` not in it.

    The result keeps the order of ``all_tests`` (the collection order); tests
    that are only in ``tests`` come last.
    """
    done = {t["nodeid"]: t for t in tests}
    out = [done.pop(t["nodeid"], None)
           or dict(t, score=0.0, status="failed", output=reason) for t in all_tests or []]
    return out + [t for t in tests if t["nodeid"] in done]


def results_json(exercise: str, tests: list[dict], *, all_tests: list[dict] | None = None,
                 reason: str = DID_NOT_RUN, status: str, notes: list[str],
                 output: str | None = None, notebook: str = "", notebook_sha256: str = "",
                 hidden_sha256: str = "", execution_time: float | None = None,
                 **extra) -> dict:
    """A submission's Gradescope ``results.json``.

    Args:
        exercise: The exercise name.
        tests: The entries of the tests that reported.
        all_tests: Every test the exercise has: those not in ``tests`` are
            listed at 0 points with ``reason``.
        status: ``graded``, ``unreadable``, ``kernel died``, ``grading failed``,
            ``refused``, ...
        notes: What the student and the instructor should know.
        output: The text shown on top (default: the score, then the notes).
        notebook: The submission's file name; ``notebook_sha256`` its hash.
        hidden_sha256: The hash of the hidden tests it was graded against.
        execution_time: Seconds the grading took (left out when None).
        **extra: More ``extra_data`` entries (the sandbox, the worker's memory).
    """
    tests = complete_tests(tests, all_tests, reason)
    score = sum(t["score"] for t in tests)
    max_score = sum(t["max_score"] for t in tests)
    if output is None:
        output = "\n".join([f"Score: {score:g} / {max_score:g}", *notes])
    result = {"score": score, "max_score": max_score, "output": output,
              "visibility": "visible", "stdout_visibility": "hidden"}
    if execution_time is not None:
        result["execution_time"] = round(execution_time, 3)
    result["tests"] = tests
    result["extra_data"] = {"exercise": exercise, "status": status, "notes": notes,
                            "notebook": notebook, "notebook_sha256": notebook_sha256,
                            "hidden_tests_sha256": hidden_sha256,
                            "versions": package_versions(), **extra}
    return result


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def fallback_json(message: str) -> str:
    """The results of a submission, as one line of JSON, when dlcourse itself cannot run."""
    return json.dumps({"score": 0.0, "output": message, "tests": []})


def main(argv: list[str] | None = None) -> int:
    """``python -m dlcourse.grading.results RESULTS_JSON --message TEXT``: write the
    results of a submission that could not be graded (score 0, ``TEXT`` on top)."""
    parser = argparse.ArgumentParser(prog="python -m dlcourse.grading.results",
                                     description=main.__doc__)
    parser.add_argument("path", type=Path, help="the results.json to write")
    parser.add_argument("--message", required=True, help="what the student reads")
    parser.add_argument("--exercise", default="", help="the exercise name")
    parser.add_argument("--status", default="grading failed", help="extra_data.status")
    args = parser.parse_args(argv)
    result = results_json(args.exercise, [], status=args.status, notes=[args.message],
                          output=args.message)
    write_json(args.path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
