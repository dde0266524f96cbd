"""The ``dlcourse`` command line.

Sub-commands are registered by the modules that own them (the grader adds
``grade``, ``assign`` and ``release``); this module only wires them up so that
``dlcourse --help`` stays fast and never imports a deep-learning framework.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dlcourse._version import __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level argument parser with every sub-command attached."""
    parser = argparse.ArgumentParser(
        prog="dlcourse",
        description="Companion tools of the dlcourse course on dropout.",
    )
    parser.add_argument("--version", action="version", version=f"dlcourse {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(subparsers)
    return parser


def _registrars():
    """Yield the ``register(subparsers)`` functions of the sub-command modules."""
    from dlcourse.grading.cli import register

    yield register


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return int(args.handler(args) or 0)
