"""``course grade PATH... [--json] [--csv FILE] [--timeout SECONDS]`` and ``course progress``."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"the timeout must be a positive number of seconds, got {text!r}")
    return value


def add_commands(sub) -> None:
    """Add ``grade`` and ``progress`` to the ``course`` command."""
    from .grade import DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT

    p = sub.add_parser("grade", help="grade submitted notebooks (files or folders), each in a fresh kernel",
                       description="Run each notebook in its own fresh kernel, then run every question of its "
                                   "lesson against the learner's objects. Exit 0 when grading ran, "
                                   "2 for unusable arguments.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="notebooks, or folders searched for *.ipynb")
    p.add_argument("--json", action="store_true", help='print {"results": [...]} as JSON instead of a table')
    p.add_argument("--csv", metavar="FILE", help="also write one row per notebook and question to FILE")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit for running one notebook (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--cell-timeout", type=_seconds, default=DEFAULT_CELL_TIMEOUT, metavar="SECONDS",
                   help="time limit for one cell: a cell past it is interrupted and the next cell runs "
                        f"(default {DEFAULT_CELL_TIMEOUT:g})")
    p.set_defaults(handler=grade_command)

    p = sub.add_parser("progress", help="your latest result for every question of the course")
    p.set_defaults(handler=progress_command)


def grade_command(args) -> int:
    """Handler of ``course grade``."""
    from .grade import find_notebooks, grade_paths
    from .report import to_csv, to_json, to_text

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"course grade: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not find_notebooks(args.paths):
        print(f"course grade: no notebooks (*.ipynb) under {', '.join(args.paths)}", file=sys.stderr)
        return 2
    if args.csv and not Path(args.csv).resolve().parent.is_dir():
        print(f"course grade: cannot write {args.csv}: its folder does not exist", file=sys.stderr)
        return 2

    def said(result):
        word = "not graded" if result.error else "graded"
        print(f"{word} {result.path}: {result.score:g}/{result.possible:g}"
              + (f" ({result.error})" if result.error else ""), file=sys.stderr, flush=True)

    results = grade_paths(args.paths, timeout=args.timeout, on_result=said, cell_timeout=args.cell_timeout)
    if args.csv:
        Path(args.csv).write_text(to_csv(results), encoding="utf-8")
    print(to_json(results) if args.json else to_text(results))
    return 0


def progress_command(args) -> int:
    """Handler of ``course progress``."""
    from .progress import progress

    print(progress())
    return 0
