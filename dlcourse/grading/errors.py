"""Exceptions a hidden test sees when it talks to a submission."""

from __future__ import annotations


class GraderError(RuntimeError):
    """The grader itself failed (bad hidden tests, missing exercise, ...).

    This is the instructor's problem, never the student's: ``dlcourse grade``
    exits with a non-zero status when it happens.
    """


class SubmissionError(Exception):
    """The submission did not answer a request the way the test needed.

    Attributes:
        ename: The type name of the student's exception (``"ValueError"``), or
            ``None`` when the problem is not an exception in student code
            (an unknown function name, a value of an unsupported type, ...).
        evalue: The student's exception message.
    """

    def __init__(self, message: str, *, ename: str | None = None, evalue: str | None = None):
        super().__init__(message)
        self.ename = ename
        self.evalue = evalue


class SubmissionTimeout(SubmissionError):
    """A call into the submission ran past its time limit."""


class SubmissionDied(SubmissionError):
    """The submission's kernel is dead (exit, crash, memory limit, killed).

    Every later request to the same submission fails with this reason.
    """
