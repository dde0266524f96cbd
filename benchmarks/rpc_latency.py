"""Latency of one request from the grader to a sandboxed student kernel.

    .venv/bin/python benchmarks/rpc_latency.py [--repeat 50] [--sandbox auto]

Starts a :class:`~dlcourse.grading.kernel.SandboxKernel` on
``solutions/01_dropout_from_scratch.ipynb`` the way the grader does (the
sandbox :func:`~dlcourse.grading.sandbox.detect` picks, the grader's bootstrap,
the notebook's cells), then times, ``--repeat`` times each:

* ``call``: ``Submission.call("dropout_forward", x, 0.5, training=True, rng=k)``
  with ``x`` 400 float64 ones: a request from a hidden test, its reply decoded;
* ``execute``: ``kernel.execute("1", timeout=10, store_history=False)``: a bare
  silent execute, the floor under every request.

Prints the median and the 10th/90th percentiles in milliseconds, one line each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXERCISE = "01_dropout_from_scratch"
NOTEBOOK = ROOT / "solutions" / f"{EXERCISE}.ipynb"


def start_kernel(sandbox: str):
    """A kernel that ran the solution notebook, as the grader runs it."""
    import numpy as np  # noqa: F401 (imported before timing starts)

    from dlcourse.grading._nbformat import nbformat
    from dlcourse.grading.exercise import Exercise
    from dlcourse.grading.kernel import SandboxKernel
    from dlcourse.grading.probe import detect
    from dlcourse.grading.sandbox import Limits
    from dlcourse.grading.worker import bootstrap_code

    iso = detect(sandbox=sandbox)
    exercise = Exercise.find(EXERCISE, ROOT)
    kernel = SandboxKernel(NOTEBOOK, Limits(), unprivileged=iso.unprivileged,
                           bwrap=iso.bwrap if iso.tool == "bwrap" else None,
                           dlcourse_dir=iso.dlcourse_dir)
    config = {"seed": 0, "blocked": exercise.config.get("blocked", []),
              "dlcourse_dir": iso.dlcourse_dir}
    kernel.start(bootstrap_code(config))
    nb = nbformat().read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip():
            result = kernel.execute(cell.source, timeout=60)
            if result.status != "ok":
                kernel.close()
                raise SystemExit(f"the solution failed: {result.ename}: {result.evalue}")
    return kernel, iso


def timed(function, repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls of ``function(k)``, after two untimed ones."""
    function(-1)
    function(-2)
    times = []
    for k in range(repeat):
        start = time.perf_counter()
        function(k)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def line(name: str, times: list[float]) -> str:
    deciles = statistics.quantiles(times, n=10)
    return (f"{name:8s} median {statistics.median(times):6.2f} ms   "
            f"p10 {deciles[0]:6.2f}   p90 {deciles[-1]:6.2f}   (n={len(times)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "builtin"))
    args = parser.parse_args(argv)
    if args.repeat < 2:
        parser.error(f"--repeat must be >= 2; received {args.repeat}")
    import numpy as np

    from dlcourse.grading.proxy import Submission

    kernel, iso = start_kernel(args.sandbox)
    try:
        submission = Submission(kernel, timeout=60)
        x = np.ones(400)
        calls = timed(lambda k: submission.call("dropout_forward", x, 0.5, training=True,
                                                rng=abs(k)), args.repeat)
        executes = timed(lambda k: kernel.execute("1", timeout=10, store_history=False),
                         args.repeat)
    finally:
        kernel.close()
    print(iso.describe(), f"Python {sys.version.split()[0]}", sep="; ")
    print(line("call", calls))
    print(line("execute", executes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
