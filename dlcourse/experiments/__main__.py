"""``python -m dlcourse.experiments [NAME|all] [--out DIR] [--seeds N]``: recompute caches."""

from __future__ import annotations

import argparse
import sys
import time

from dlcourse.experiments import DATA_DIR, NAMES, run


def main(argv=None) -> int:
    """Parse the command line and run the named experiments."""
    parser = argparse.ArgumentParser(
        prog="python -m dlcourse.experiments",
        description="Recompute the cached results of the book's experiments.",
    )
    parser.add_argument("name", nargs="?", default="all", choices=("all", *NAMES),
                        help="the experiment to run (default: all)")
    parser.add_argument("--out", default=str(DATA_DIR),
                        help=f"folder for <name>.json (default: {DATA_DIR})")
    parser.add_argument("--seeds", type=int, default=None,
                        help="run seeds 0..N-1 instead of the configured ones")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1; received --seeds={args.seeds}")
    seeds = None if args.seeds is None else list(range(args.seeds))
    names = NAMES if args.name == "all" else (args.name,)
    start = time.perf_counter()
    for name in names:
        run(name, seeds=seeds, out=args.out)
    print(f"done: {', '.join(names)} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
