"""The ``course`` command: a thin layer over library functions.

Each command group lives next to the code it drives and exposes ``add_commands(subparsers)``;
a handler returns an exit status (0 ok, 1 failed, 2 unusable arguments).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add sub-commands, in the order they appear in ``course --help``.
COMMAND_MODULES = [
    "course_utils.data.cli",         # course data list|verify
    "course_utils.authoring.cli",    # course exercises build|--check, course solutions run
    "course_utils.grading.cli",      # course grade, course progress
    "course_utils.bench",            # course bench
    "course_utils.book",             # course book build|results|serve
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command group that is installed."""
    parser = argparse.ArgumentParser(prog="course", description="Tools of the open deep-learning course.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # that command group is not installed/written yet
                continue
            raise
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``course`` and ``python -m course_utils``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on unusable arguments, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
