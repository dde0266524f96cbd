"""The grading benchmark compares like with like: otter runs dlcourse's own hidden tests.

``benchmarks/grading_throughput.py`` gives ``otter run`` one OK-format test per
hidden test of exercise 1, each running that hidden test in the student's
namespace through ``benchmarks/otter_adapter``. Without otter installed, these
tests check the generated tests and the adapter itself: every hidden test is
there with its points, the solution passes them all, and a wrong solution
fails (so the otter column cannot be a run of checks that always pass).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from mutants import harness
from mutants.ex01 import MUTANTS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "otter_adapter"))

import grading_throughput as bench  # noqa: E402
import hidden_in_kernel  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def solution():
    return harness.Notebook(bench.EXERCISE)


def test_every_hidden_test_becomes_an_otter_test_with_its_points():
    module = harness.hidden_module(bench.EXERCISE)
    expected = {t.__name__: int(t.__dlcourse_points__) for t in harness.tests_of(module)}
    generated = dict(bench.hidden_tests())
    assert generated == expected and sum(generated.values()) == 20
    for name, points in generated.items():
        text = bench._ok_test(name, points)
        namespace: dict = {}
        exec(compile(ast.parse(text), "<ok-test>", "exec"), namespace)
        case = namespace["test"]["suites"][0]["cases"][0]["code"]
        assert namespace["test"]["points"] == points and f"run_hidden(globals(), {name!r})" in case


def test_adapter_passes_the_solution(solution, monkeypatch):
    monkeypatch.setenv("DLCOURSE_BENCH_EXERCISE", bench.EXERCISE)
    for name, _ in bench.hidden_tests():
        assert hidden_in_kernel.run_hidden(solution.namespace, name) is True


@pytest.mark.parametrize("mutant", ["no_inverted_scaling", "exact_fraction_permutation",
                                    "ignores_seed"])
def test_adapter_fails_a_wrong_solution(solution, monkeypatch, mutant):
    monkeypatch.setenv("DLCOURSE_BENCH_EXERCISE", bench.EXERCISE)
    namespace = solution.mutate(next(m for m in MUTANTS if m.name == mutant))
    failed = []
    for name, _ in bench.hidden_tests():
        try:
            hidden_in_kernel.run_hidden(namespace, name)
        except AssertionError:
            failed.append(name)
    assert failed, f"the mutant {mutant} passed every otter-side test"
