"""``python -m dlcourse.experiments [NAME|all] [--out DIR] [--seeds N] [--dataset mnist]``."""

from __future__ import annotations

import argparse
import sys
import time

from dlcourse.experiments import DATA_DIR, NAMES, PAPER_NAMES, run
from dlcourse.experiments._common import DATASETS


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
    parser.add_argument("--dataset", default="digits", choices=tuple(DATASETS),
                        help="digits (default; shipped with scikit-learn) or mnist (Keras' "
                             "cache, downloaded once where the network allows); mnist runs "
                             f"the paper's experiments ({', '.join(PAPER_NAMES)}) and writes "
                             "<name>-mnist.json")
    parser.add_argument("--no-download", action="store_true",
                        help="with --dataset mnist: use Keras' cache only, never the network")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1; received --seeds={args.seeds}")
    seeds = None if args.seeds is None else list(range(args.seeds))
    names = NAMES if args.name == "all" else (args.name,)
    config = None
    if args.dataset != "digits":
        if args.name == "all":
            names = PAPER_NAMES
        elif args.name not in PAPER_NAMES:
            parser.error(f"--dataset {args.dataset} runs only the paper's experiments "
                         f"({', '.join(PAPER_NAMES)}); received name={args.name!r}")
        config = {"dataset": args.dataset, "download": not args.no_download}
        from dlcourse.data import DatasetUnavailableError
        from dlcourse.experiments._common import split_of

        try:
            split_of(config)  # load (or download) once, before any training
        except DatasetUnavailableError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    for name in names:
        run(name, seeds=seeds, out=args.out, config=config)
    print(f"done: {', '.join(names)} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
