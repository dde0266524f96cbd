"""How long recomputing the MNIST caches takes, from the times the caches record.

    .venv/bin/python benchmarks/mnist_recompute_time.py

Every record of ``book/data/<name>-mnist.json`` holds the wall-clock and CPU
seconds of its run (one process, one BLAS thread), and the cache's ``timing``
the wall-clock time of the whole recomputation and its number of workers. The
table lists, per experiment:

* ``cpu``: the sum of the runs' CPU seconds: what one worker on an otherwise
  idle core would take (each run is single-threaded and does no I/O);
* ``2 workers, ideal``: the runs' CPU seconds packed onto two workers, longest
  first (the schedule ``--jobs 2`` uses): the wall-clock time on an idle
  two-core machine;
* ``measured wall``: the wall-clock time the recomputation took where and when
  it ran, with the load of that machine (stated in benchmarks/README.md).
"""

from __future__ import annotations

import heapq

from dlcourse.experiments import MNIST_NAMES, load_result


def packed(durations: list[float], workers: int) -> float:
    """Makespan of running ``durations`` on ``workers`` in longest-first order."""
    loads = [0.0] * workers
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def main() -> None:
    total = {"cpu": 0.0, "two": 0.0, "wall": 0.0, "runs": 0}
    print(f"{'experiment':14s} {'runs':>5s} {'cpu (1 worker)':>15s} {'2 workers, ideal':>17s} "
          f"{'measured wall':>14s} workers")
    for name in MNIST_NAMES:
        res = load_result(name, dataset="mnist")
        cpu = [r["cpu_s"] for r in res["records"]]
        two = packed(cpu, 2)
        wall = res["timing"]["wall_s"]
        total["cpu"] += sum(cpu)
        total["two"] += two
        total["wall"] += wall
        total["runs"] += len(cpu)
        print(f"{name:14s} {len(cpu):5d} {sum(cpu) / 60:12.1f} min {two / 60:14.1f} min "
              f"{wall / 60:11.1f} min {res['timing']['workers']}")
    print(f"{'all':14s} {total['runs']:5d} {total['cpu'] / 60:12.1f} min "
          f"{total['two'] / 60:14.1f} min {total['wall'] / 60:11.1f} min")


if __name__ == "__main__":
    main()
