"""Run one of dlcourse's hidden tests inside the student's kernel (otter's way).

``grading_throughput.py`` gives ``otter run`` the same checks that ``dlcourse
grade`` runs: each OK-format test calls ``run_hidden(globals(), "test_...")``,
which loads ``tests/hidden/<exercise>/test_*.py`` once (``DLCOURSE_BENCH_EXERCISE``) and calls the test on
the notebook's namespace through ``tests/mutants/harness.LocalSubmission``:
the in-process stand-in for dlcourse's submission proxy that the mutation
suites use (arguments and results make the same round trip through
``dlcourse.grading.codec``; a student exception becomes the same
``SubmissionError``). Benchmark code only; ``tests/`` must be on ``sys.path``.
"""

from __future__ import annotations

import os

from mutants.harness import LocalSubmission, hidden_module

_MODULES: dict[str, object] = {}


def run_hidden(namespace: dict, test: str) -> bool:
    """True when the hidden test ``test`` passes on the notebook's ``namespace``."""
    exercise = os.environ["DLCOURSE_BENCH_EXERCISE"]
    if exercise not in _MODULES:
        _MODULES[exercise] = hidden_module(exercise)
    getattr(_MODULES[exercise], test)(LocalSubmission(namespace))
    return True
