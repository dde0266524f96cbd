"""The auto-grader: student self-checks, hidden tests, ``dlcourse grade/assign/release``.

Importing this package is light (no pytest, no jupyter_client, no framework):
student notebooks import :func:`check` from it.

Contract between the grader and the exercises
=============================================

Exercise ``NAME`` is a notebook stem, e.g. ``01_dropout_from_scratch``.

Notebooks
    ``solutions/NAME.ipynb`` is the single source. ``dlcourse assign [NAME]``
    writes ``exercises/NAME.ipynb`` from it (``dlcourse assign --check`` exits 1
    when ``exercises/`` is out of date):

    * in code cells, the lines between ``# BEGIN SOLUTION`` and
      ``# END SOLUTION`` (markers included) become
      ``raise NotImplementedError("Write your answer here.")`` at the marker's
      indentation; keep the ``def`` line above the markers so the stub is a
      function that raises;
    * in markdown cells, text between ``<!-- BEGIN SOLUTION -->`` and
      ``<!-- END SOLUTION -->`` becomes ``*Write your answer here.*``;
    * cells tagged ``solution-only`` are dropped;
    * cells tagged ``answer`` are the student's answer cells: a submission that
      lacks one (matched by cell id) is reported in its results;
    * outputs, execution counts and execution metadata are cleared; the
      kernelspec is ``python3``.

Public self-checks (run by the student, in the student's own kernel)
    The notebook's first code cell sets ``EXERCISE = "NAME"`` and runs
    ``from dlcourse.grading import check``; a later cell calls ``check("q1")``.
    ``check`` reads ``EXERCISE`` from the calling notebook's globals (or takes
    ``check("q1", exercise="NAME")``), imports
    ``dlcourse.grading.public_checks.NAME`` and runs every function in its
    ``CHECKS["q1"]`` list with the notebook's globals dict as the only
    argument. A check function fails by raising ``AssertionError("message for
    the student")``; the first line of its docstring is its title. Other
    exceptions are reported as "your code raised ...", ``NotImplementedError``
    as "not answered yet". The report never shows check code or answers and
    ends with "all N public checks passed — hidden tests not run".

Hidden tests (run by the grader, in the grader's process)
    ``tests/hidden/NAME/test_*.py`` are pytest files. Run with assertion
    rewriting off, so the feedback a student sees is exactly the assertion
    message (write ``assert ok, "message for the student"``); they never see
    test code. Fixtures the grader provides:

    ``submission``
        a proxy to the student's kernel (:class:`dlcourse.grading.proxy.Submission`):
        ``submission.call("func", *args, timeout=None, **kwargs)``,
        ``submission.new("Class", *args, **kwargs)`` -> handle with
        ``.call("method", ...)``, ``.get("attr")``; ``submission.get("var")``,
        ``submission.has("name")``, ``submission.ref("var")`` (pass a
        kernel-side object as an argument; dotted paths ``"model.fc"`` work),
        ``submission.tensor(array)`` (pass a NumPy array that arrives as a
        ``torch.Tensor``). Arguments: NumPy arrays and scalars, Python scalars,
        str, None, lists/tuples/dicts of those, refs and handles. Results come
        back as NumPy arrays (``np.load(allow_pickle=False)``), NumPy/Python
        scalars, str, None, lists, tuples and dicts (keys may be any of those
        scalars); a ``torch.Tensor`` comes back as a NumPy array; any other
        type raises ``SubmissionError("... returned an object of type X ...")``.
        A student exception raises :class:`SubmissionError` (``.ename``,
        ``.evalue``), a time-out :class:`SubmissionTimeout`, a dead kernel
        :class:`SubmissionDied` (every later test of that notebook fails with
        the same reason). Do not catch these: the grader turns them into
        feedback.
    ``notebook``
        the submitted notebook as an ``nbformat.NotebookNode`` (read-only use).

    Decorators: ``@points(2)`` (default 1; every parametrised case earns the
    points), ``@visibility("visible" | "after_published" | "hidden")``
    (default ``"visible"``). The first line of a test's docstring is its title.

    Optional ``tests/hidden/NAME/grading.json``::

        {"blocked": ["dlcourse.scratch.dropout:dropout_forward", ...],
         "cell_timeout": 60, "notebook_timeout": 600, "memory_mb": 4096}

    ``blocked`` lists ``module:attribute`` references that the student must
    write themselves: inside the student's kernel they raise
    ``"calling dlcourse's reference implementation earns no credit"`` when
    called from the student's code (dlcourse's own internals still use them).
    The other keys override the command-line defaults for that exercise.

Security model (what ``dlcourse grade`` guarantees, and what it does not)
=========================================================================

The judge is trusted, the submission is not.

What it does
    * Before anything runs, ``dlcourse grade`` decides the sandbox of the batch
      (:mod:`dlcourse.grading.sandbox`) and starts a trial kernel under it that
      imports dlcourse, ipykernel and NumPy and reads every file of the dlcourse
      package; the summary and ``dlcourse grade --help`` list every promise
      below that does *not* hold on this machine, and why ("NOT HELD ...").
    * Environment faults are grader errors: workers start isolated
      (``python -I``) from ``/``, so the folder ``dlcourse grade`` runs in (say,
      another clone of the course) never changes which dlcourse the workers and
      kernels import; the sandbox is built for that package; a Python that
      cannot import it, or a sandbox that cannot read it, stops the batch (exit
      status 2), and a kernel that finds another dlcourse fails its bootstrap
      before any student code runs (a grader error: status "grading failed",
      exit status 1), never a student's 0.
    * **bubblewrap** (``bwrap``; ``make test`` installs it where it may), used
      whenever it works (``--sandbox auto``): the kernel runs in its own PID,
      network, IPC and UTS namespaces and a new session, killed with its
      parent, without capabilities, and as root under a leased unprivileged uid
      (the mount namespace makes the Python installation reachable even where
      its folder is private to root). Its mount namespace holds only the Python
      installation, the dlcourse package, ``/usr``, ``/etc``, ``/sys``, a
      private ``/proc`` (only its own processes), a minimal ``/dev`` and its
      own folder. So it cannot see, read the ``/proc`` entries of, signal or
      renice any process outside the sandbox, has no network but its own
      loopback (ZeroMQ reaches the grader through Unix sockets in its folder;
      raw and packet sockets need capabilities it lacks), and nothing it starts
      outlives it (the namespace dies with the kernel). Landlock applies inside
      as well.
    * The notebook runs in its own Jupyter kernel process, started through
      :mod:`dlcourse.grading.launcher`: ``RLIMIT_DATA`` memory limit
      (``--memory-mb``, default 4096), CPU-seconds backstop, 256 MiB file-size
      limit, no core files; a scrubbed environment (only ``PATH``, ``HOME`` =
      its own folder, locale, seeds, thread counts, quiet-framework variables;
      no ``PYTHONPATH``, no tokens); its own temporary working folder holding
      only a copy of the notebook, with ``tmp/`` as its private place for
      temporary files (``TMPDIR``, ``JOBLIB_TEMP_FOLDER``); ``no_new_privs``.
    * Landlock (Linux 5.13+, needs no root; used whenever the kernel offers
      it): the kernel process and its children can read only the Python
      installation, its site-packages, the dlcourse package and system
      folders (``/usr``, ``/lib``, ``/etc``, ``/proc``, ``/sys``; of ``/dev``
      only ``null``, ``zero``, ``full``, ``random``, ``urandom``), and write
      only their own folder and ``/dev/null``: not ``/dev/shm``, where memory
      is not counted by ``RLIMIT_DATA`` and files outlive the kernel (so
      POSIX semaphores and shared memory, e.g. ``multiprocessing`` locks or a
      ``DataLoader`` with ``num_workers > 0``, do not work in a graded
      notebook). So it cannot read the hidden tests,
      the solutions or other students' notebooks, cannot write results,
      CSVs or hidden tests, cannot open outgoing TCP connections (ABI 4+),
      and cannot signal, ptrace or read ``/proc/PID/{mem,environ,fd}`` of the
      grader (ABI 6+ for signals). ``extra_data.sandbox.landlock`` in
      ``results.json`` records whether it was applied.
    * As root, each kernel also runs under its own unprivileged uid
      (61000-61999, never an existing account, reserved with a lock file;
      supplementary groups dropped), and afterwards every process of that uid
      is killed and the files it owns at the top of ``/dev/shm``,
      ``/dev/mqueue``, ``/tmp`` and ``/var/tmp`` are removed (again when the
      uid is next leased, should a worker have died), so nothing it spawned
      or left outlives its grading.
      ``--isolation user`` refuses to grade without this; ``auto`` (default)
      warns and goes on when the kernel's Python is not usable by other users.
    * Per-cell/per-call time limit (``--timeout``) with interrupt, then kill;
      a per-notebook limit (``--notebook-timeout``); a worker-process limit
      above both. A cell that errs or times out does not stop the notebook.
    * Hidden tests run in the grader's worker process and only *ask* the
      kernel to call functions with inputs the test chose; expected values
      never enter the kernel. Replies are decoded as JSON plus ``.npy``
      arrays with ``allow_pickle=False``; a reply of any other type, an
      unreadable reply, no reply, a time-out or a dead kernel is a failed
      test with a reason, never a pass. Printed text, display output and files
      the notebook writes are ignored; ``results.json`` and ``grades.csv`` are
      written by the parent process after the worker has finished, from the
      worker's private pipe.
    * Assertion rewriting is off, so a student sees exactly the assertion
      message, never the test code.
    * The SHA-256 of the hidden-test folder is taken at the start, checked by
      each worker when it starts, before it imports the tests and after they
      ran, and again at the end of the batch (a change is a grader error:
      "the hidden tests changed during grading"); ``results.json`` and
      ``grades.csv`` record it. It is what ``sha256sum`` computes, so anyone
      can recompute it (see :meth:`dlcourse.grading.runner.Exercise.bundle_sha256`)::

          cd tests/hidden/NAME && find -L . -type f -not -path '*/__pycache__/*' \\
              -not -name '*.pyc' -printf '%P\\n' | LC_ALL=C sort \\
              | xargs -d '\\n' sha256sum | sha256sum

      Grader processes are made non-dumpable (same-user processes cannot read
      their memory or file descriptors).
    * The hidden tests are collected (in a separate grader process) before any
      notebook runs, so every result lists every test with its points: when
      grading breaks off (the worker crashed or hung, the hidden tests could
      not be collected or changed), the tests that did not run are there at
      0 points with the reason, and ``max_score`` is the exercise's full
      points. A worker that dies leaves no kernel behind: the batch kills its
      kernel's process group and removes its sandbox folders.
    * Graded reference implementations (``blocked`` in ``grading.json``)
      are replaced, inside the kernel, by stand-ins that raise
      "calling dlcourse's reference implementation earns no credit" when
      called from code outside the dlcourse package (the package's own
      internals, e.g. ``mlp`` building ``Dropout`` layers, still work). An
      import hook re-applies this after ``importlib.reload`` or a fresh
      import; the grader also reports, from the notebook's source, imports
      of those names.

    * Bounded resources: the grader keeps at most one RPC reply of a kernel at
      a time, reads replies of at most 64 MiB (a larger one fails that test
      with its size), and its sockets drop any message frame over 256 MiB;
      each grader worker has its own memory limit (``--worker-memory-mb``,
      default 4096, ``RLIMIT_DATA``) and reports its peak
      (``extra_data.worker_max_rss_mb``). Names, notes, feedback and CSV fields
      that come from a submission are cut (:mod:`dlcourse.grading.bounds`) with
      a "[truncated: N characters in all]" marker.
    * Names and paths: student ids are single safe folder names (see
      :mod:`dlcourse.grading.batch`), never the grader's own file names, so no
      submission writes outside ``OUT/<student>/``; a symbolic link to a
      notebook inside the submissions folder is graded, one that leads outside
      it, a file that is not regular, or one over 64 MiB gets a "refused" row
      with the reason, without being read; an unreadable earlier
      ``grades.csv`` is moved to ``grades.csv.unreadable`` and rebuilt from
      the ``results.json`` files.

What it does not guarantee
    * The reference-blocking is a speed bump, not a wall: a student can copy
      the reference's source (the book shows it), ``exec`` its file, fish a
      real instance out of a dlcourse helper, or remove the import hook.
      The static check only sees plain imports.
    * Without Landlock (other OSes, old Linux) and without root, the kernel
      runs as the grader's user: it could then read the hidden tests (do not
      put literal answers in them), and with deliberate effort write files
      the grader's user can write. Grade on Linux 5.13+ or in a container
      (Gradescope's is root, so the uid switch applies there) for a hard
      boundary.
    * Without bubblewrap (the builtin sandbox) there are no namespaces: as
      root without the uid switch the kernel can read ``/proc/PID/environ`` of
      the grader, renice it, open raw, packet and UDP sockets, and leave a
      ``setsid`` process behind; with the uid switch UDP still reaches the
      network. The summary says which of these apply. There is no cgroup in
      either sandbox: memory is limited per process (``RLIMIT_DATA``), so a
      submission that forks many processes can use more in total
      (``RLIMIT_NPROC`` caps the count only under the uid switch).
    * A submission that computes correct answers in a roundabout way (e.g.
      reproduces the tests' random draws) is not detected; tests check
      properties, not particular draws, to make that pointless.
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
