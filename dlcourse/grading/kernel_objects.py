"""Helpers the hidden tests share: objects built in the student's kernel, and answer variables.

A hidden test must never run the notebook's own names (a notebook may rebind
``np``), so the objects it needs inside the kernel (a copy of an array, a NumPy
function, a ``numpy.random.Generator``) are built from Python builtins only,
through the submission proxy: ``max([x])`` is ``x``, ``getattr`` walks to an
attribute, and ``next(map(f, [a]))`` calls ``f(a)`` in the kernel.
"""

from __future__ import annotations

import numpy as np


def in_kernel(submission, value):
    """A handle to a copy of ``value`` that lives in the student's kernel."""
    return submission.new("__builtins__.max", [value])  # max of one item is that item


def read_back(submission, handle) -> np.ndarray:
    """The kernel-side array behind ``handle``, as a plain array here."""
    return np.asarray(submission.call("__builtins__.max", [handle]))


def kernel_attr(submission, obj, *names):
    """A handle to ``obj.names[0].names[1]...`` in the kernel."""
    for name in names:
        obj = submission.new("__builtins__.getattr", obj, name)
    return obj


def kernel_call(submission, func, *args):
    """A handle to ``func(*args)`` computed in the kernel (``func`` a handle)."""
    return submission.new("__builtins__.next",
                          submission.new("__builtins__.map", func, *[[a] for a in args]))


def kernel_numpy(submission, *names):
    """A handle to ``numpy.<names...>`` imported by the kernel itself."""
    return kernel_attr(submission, submission.new("__builtins__.__import__", "numpy"), *names)


def kernel_generator(submission, seed):
    """A ``numpy.random.Generator`` made in the kernel (generators cannot travel)."""
    return kernel_call(submission, kernel_numpy(submission, "random", "default_rng"), seed)


def answer(submission, name, question="Q5"):
    """The value of the answer variable ``name``; a clear failure when it is not set."""
    if not submission.has(name):
        raise AssertionError(f"set the variable {name} in the answer cell of {question}.")
    return submission.get(name)


def number(submission, name, question="Q5"):
    """The answer variable ``name`` as a float; a clear failure when it is not a number."""
    value = answer(submission, name, question)
    assert isinstance(value, (int, float)) and not isinstance(value, bool), (
        f"{name} should be a number; received {value!r}."
    )
    return float(value)
