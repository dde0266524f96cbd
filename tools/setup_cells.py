#!/usr/bin/env python3
"""Insert or refresh the ``dlcourse-setup`` cell of every chapter, exercise and solution.

    .venv/bin/python tools/setup_cells.py           # rewrite the stale cells
    .venv/bin/python tools/setup_cells.py --check   # exit 1 and list the stale notebooks

What the cell does and how its code is chosen: :mod:`dlcourse.grading.setup_cell`.
"""

import sys

from dlcourse.grading.setup_cell import main

if __name__ == "__main__":
    sys.exit(main())
