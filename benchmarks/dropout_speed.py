"""Benchmark: NumPy reference dropout against PyTorch's CPU dropout.

Times, on the same float32 array (2**22 elements by default), in one run:

* ``np.copy`` of the array: the memory-bound floor (one read, one write);
* dlcourse ``dropout_forward`` + ``dropout_backward`` with the default
  ``fast`` mask draw and with the ``readable`` one;
* ``torch.nn.functional.dropout`` forward + backward (autograd), with
  PyTorch's default number of threads and with one thread;
* the candidate ways of drawing the Bernoulli mask alone, with the exact drop
  probability each one realises for the rate (its resolution bias).

and prints the time ratios and the bytes per element of the cached mask.
Targets (GUIDE.md §8, issue 3): at most half of torch's time, at most one
byte per element for the mask.

Usage::

    .venv/bin/python benchmarks/dropout_speed.py            # 2**22 elements, rate 0.3
    .venv/bin/python benchmarks/dropout_speed.py --log2n 24 --rate 0.5 --repeats 30
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from dlcourse.scratch import dropout_backward, dropout_forward


def interleaved_ms(candidates: dict[str, Callable[[], object]], repeats: int
                   ) -> dict[str, tuple[float, float]]:
    """Time every candidate ``repeats`` times, round-robin; returns name -> (min, median) ms.

    Round-robin (one call of each candidate per round, after one warm-up
    round) so that every candidate sees the same background load; the minimum
    is the least disturbed measurement and the one the ratios use.
    """
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (1e3 * min(t), 1e3 * statistics.median(t)) for name, t in times.items()}


def mask_draws(n: int, rate: float, rng: np.random.Generator) -> dict[str, tuple]:
    """Candidate mask draws: name -> (function, exact drop probability realised)."""

    def raw_words(bits: int) -> np.ndarray:
        return rng.integers(0, 2**64, size=-(-n // (64 // bits)), dtype=np.uint64)

    t8, t16, t32 = round(rate * 2**8), round(rate * 2**16), round(rate * 2**32)
    # float32 uniforms are multiples of 2**-24: u >= rate drops ceil(rate * 2**24) values
    f32_drop = math.ceil(rate * 2**24) / 2**24
    return {
        "rng.random(float64) >= rate": (lambda: rng.random(n) >= rate, rate),
        "rng.random(float32) >= rate [readable]": (
            lambda: rng.random(n, dtype=np.float32) >= np.float32(rate), f32_drop),
        "rng.integers(uint8) >= T8": (
            lambda: rng.integers(0, 256, n, dtype=np.uint8) >= t8, t8 / 2**8),
        "rng.bytes -> uint8 >= T8": (
            lambda: np.frombuffer(rng.bytes(n), np.uint8) >= t8, t8 / 2**8),
        "uint64 words -> 8 x uint8 >= T8": (
            lambda: raw_words(8).view(np.uint8)[:n] >= t8, t8 / 2**8),
        "rng.integers(uint16) >= T16": (
            lambda: rng.integers(0, 2**16, n, dtype=np.uint16) >= t16, t16 / 2**16),
        "uint64 words -> 4 x uint16 >= T16 [fast]": (
            lambda: raw_words(16).view(np.uint16)[:n] >= t16, t16 / 2**16),
        "uint64 words -> 2 x uint32 >= T32": (
            lambda: raw_words(32).view(np.uint32)[:n] >= t32, t32 / 2**32),
    }


def torch_candidates(x: np.ndarray, dout: np.ndarray, rate: float
                     ) -> tuple[dict[str, Callable[[], object]], str]:
    """torch forward+backward callables (default threads and 1 thread), or none without torch."""
    try:
        import torch
    except ImportError:
        return {}, ""
    default_threads = torch.get_num_threads()
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(dout)

    def forward_backward(threads: int) -> Callable[[], object]:
        def run():
            torch.set_num_threads(threads)
            try:
                xt.grad = None  # a fresh gradient array, as dropout_backward returns
                torch.nn.functional.dropout(xt, p=rate, training=True).backward(gt)
            finally:
                torch.set_num_threads(default_threads)

        return run

    def forward():
        with torch.no_grad():
            return torch.nn.functional.dropout(xt, p=rate, training=True)

    label = f"torch {torch.__version__}"
    return {
        f"{label} F.dropout, default threads ({default_threads})": forward_backward(
            default_threads),
        f"{label} F.dropout, 1 thread": forward_backward(1),
        f"{label} F.dropout forward alone, default threads": forward,
    }, label


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2n", type=int, default=22, help="array of 2**log2n elements (22)")
    parser.add_argument("--rate", type=float, default=0.3, help="drop rate (0.3)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repetitions (20)")
    args = parser.parse_args(argv)
    n, rate, repeats = 2**args.log2n, args.rate, args.repeats
    gen = np.random.default_rng(0)
    x = gen.standard_normal(n, dtype=np.float32)
    dout = gen.standard_normal(n, dtype=np.float32)
    print(f"dropout forward+backward, float32, n = 2**{args.log2n} = {n:,} elements, "
          f"rate = {rate}, {repeats} rounds")
    print(f"numpy {np.__version__}, python {platform.python_version()}, {platform.machine()}")

    def ours(draw: str) -> Callable[[], object]:
        rng = np.random.default_rng(1)

        def run():
            out, cache = dropout_forward(x, rate, rng=rng, draw=draw)
            return dropout_backward(dout, cache)

        return run

    names = {
        "copy": "np.copy (memory-bound floor)",
        "fast": "dlcourse, fast draw (default)",
        "readable": "dlcourse, readable draw",
    }
    candidates: dict[str, Callable[[], object]] = {
        names["copy"]: lambda: np.copy(x),
        names["fast"]: ours("fast"),
        names["readable"]: ours("readable"),
    }
    torch_runs, _ = torch_candidates(x, dout, rate)
    candidates.update(torch_runs)
    timed = interleaved_ms(candidates, repeats)
    out, cache = dropout_forward(x, rate, rng=0)
    assert out.dtype == np.float32
    mask_bytes = cache["mask"].nbytes

    results: dict[str, float] = {"mask_bytes_per_element": mask_bytes / n}
    print("\n-- forward + backward (ms): min and median, round-robin --")
    for name, (best, median) in timed.items():
        print(f"{name:52s} {best:8.2f} {median:8.2f}")
    results["copy"] = timed[names["copy"]][0]
    results["dlcourse_fast"] = timed[names["fast"]][0]
    results["dlcourse_readable"] = timed[names["readable"]][0]
    torch_keys = list(torch_runs)
    if torch_keys:
        results["torch_default"] = timed[torch_keys[0]][0]
        results["torch_1thread"] = timed[torch_keys[1]][0]
        results["torch_forward_default"] = timed[torch_keys[2]][0]
    else:
        print("torch not installed: no comparison")

    print("\n-- ratios (of the minima) --")
    for draw in ("fast", "readable"):
        t = results[f"dlcourse_{draw}"]
        line = f"dlcourse {draw:8s}: {t / results['copy']:5.2f}x np.copy"
        for key, label in (("torch_default", "torch"), ("torch_1thread", "torch 1 thread")):
            if key in results:
                ratio = t / results[key]
                results[f"ratio_{draw}_{key}"] = ratio
                line += f", {ratio:5.2f}x {label}"
        print(line)
    print(f"cached mask: {mask_bytes:,} bytes = {results['mask_bytes_per_element']:.3f} "
          f"bytes/element (dtype {cache['mask'].dtype})")
    if torch_keys:
        ok_time = max(results["ratio_fast_torch_default"], results["ratio_fast_torch_1thread"])
        ok_mask = results["mask_bytes_per_element"] <= 1.0
        print(f"targets: time <= 0.5x torch (both thread settings): "
              f"{'met' if ok_time <= 0.5 else 'NOT met'}; "
              f"mask <= 1 byte/element: {'met' if ok_mask else 'NOT met'}")

    print("\n-- drawing the mask alone (ms, min and median) and the drop probability it realises --")
    print(f"{'method':44s} {'min':>8s} {'median':>8s} {'P(drop)':>12s} {'|bias|':>10s}")
    draws = mask_draws(n, rate, np.random.default_rng(2))
    timed = interleaved_ms({name: fn for name, (fn, _) in draws.items()}, repeats)
    for name, (_, p_drop) in draws.items():
        best, median = timed[name]
        results[f"draw: {name}"] = best
        print(f"{name:44s} {best:8.2f} {median:8.2f} {p_drop:12.8f} {abs(p_drop - rate):10.2e}")
    print("binomial noise of the fraction dropped in this array: "
          f"sqrt(rate*keep/n) = {math.sqrt(rate * (1 - rate) / n):.2e}")
    return results


if __name__ == "__main__":
    main()
