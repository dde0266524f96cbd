"""Mutation suites of the exercises' hidden tests (see :mod:`tests.mutants.harness`)."""
