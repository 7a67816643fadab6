"""``course exercises build [NN...] [--check]`` and ``course solutions run [NN...] [--write]``."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Add ``exercises`` and ``solutions`` to the ``course`` command."""
    p = sub.add_parser("exercises", help="generate exercises/ from solutions/")
    cmds = p.add_subparsers(dest="exercises_command", metavar="ACTION", required=True)
    b = cmds.add_parser("build", help="write exercises/NN_slug.ipynb from solutions/NN_slug.ipynb, and "
                        "the repository of book/_config.yml into every notebook's badge and install "
                        "cell, the README and the book's pages")
    b.add_argument("lessons", nargs="*", metavar="NN", help="only these lessons (default: all)")
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 naming the stale files")
    b.add_argument("--solutions", default=None, metavar="DIR", help="default: solutions/ of the course")
    b.add_argument("--exercises", default=None, metavar="DIR", help="default: exercises/ of the course")
    b.set_defaults(handler=build_command)

    p = sub.add_parser("solutions", help="run the solution notebooks")
    cmds = p.add_subparsers(dest="solutions_command", metavar="ACTION", required=True)
    r = cmds.add_parser("run", help="execute solutions in fresh kernels; fail unless every question passes")
    r.add_argument("lessons", nargs="*", metavar="NN", help="lesson numbers (default: all)")
    r.add_argument("--write", action="store_true", help="store the executed notebooks in _build/solutions/")
    r.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS", help="per notebook (default 900)")
    r.set_defaults(handler=run_command)


def _root() -> Path:
    from ..paths import repo_root

    return repo_root() or Path.cwd()


def build_command(args) -> int:
    """Handler of ``course exercises build``: the exercises, then the repository's address in the
    lessons, the solutions and the pages (``links.sync_links``)."""
    from .build import build_exercises
    from .links import LinkError, LinksReport, Repository, sync_links
    from .markers import MarkerError

    if any(not (n.isdigit() and len(n) <= 2) for n in args.lessons):
        print(f"course exercises build: lessons are numbers such as 07, got {' '.join(args.lessons)}",
              file=sys.stderr)
        return 2
    # The course whose notebooks and pages get the address: the one the solutions belong to.
    root = Path(args.solutions).resolve().parent if args.solutions else _root()
    solutions = Path(args.solutions) if args.solutions else root / "solutions"
    exercises = Path(args.exercises) if args.exercises else root / "exercises"
    if not solutions.is_dir():
        print(f"course exercises build: no such folder: {solutions}", file=sys.stderr)
        return 2
    repo = Repository.from_config(root) if (root / "book" / "_config.yml").is_file() else None
    try:
        report = build_exercises(solutions, exercises, check=args.check, repo=repo, lessons=args.lessons)
        links = sync_links(root, repo, args.lessons, check=args.check) if repo else LinksReport()
    except (MarkerError, LinkError) as exc:
        print(f"course exercises build: {exc}", file=sys.stderr)
        return 1
    if repo is None:
        print(f"no {root / 'book' / '_config.yml'}: badges and install cells left as they are")
    if args.check:
        for path in report.changed + links.changed:
            print(f"stale: {os.path.relpath(path)} (run `course exercises build`)")
        for path in report.orphans:
            print(f"stale: {os.path.relpath(path)} has no solutions/{path.name}")
        if report.stale or links.changed:
            return 1
        print(f"exercises up to date ({len(report.unchanged)} notebook(s)); the repository's address "
              f"up to date in {len(links.unchanged)} notebook(s) and page(s)")
        return 0
    for path in report.changed + links.changed:
        print(f"wrote {os.path.relpath(path)}")
    for path in report.orphans:
        print(f"warning: {os.path.relpath(path)} has no solutions/{path.name}", file=sys.stderr)
    print(f"{len(report.changed)} exercise(s) written, {len(report.unchanged)} unchanged; "
          f"{len(links.changed)} lesson, solution or page file(s) given the address of {repo.url}"
          if repo else f"{len(report.changed)} written, {len(report.unchanged)} unchanged")
    return 0


def run_command(args) -> int:
    """Handler of ``course solutions run``."""
    from .solutions import run_solutions, select_solutions, solution_ok

    if any(not (n.isdigit() and len(n) <= 2) for n in args.lessons):
        print(f"course solutions run: lessons are numbers such as 01, got {' '.join(args.lessons)}", file=sys.stderr)
        return 2
    if not select_solutions(args.lessons):
        print(f"course solutions run: no solution notebooks for {' '.join(args.lessons) or 'any lesson'}",
              file=sys.stderr)
        return 2

    def said(result):
        ok = solution_ok(result)
        path = os.path.relpath(result.path)
        print(f"{'ok  ' if ok else 'FAIL'} {path}: {result.score:g}/{result.possible:g} "
              f"in {result.seconds:.0f} s", flush=True)
        if result.error:
            print(f"     {result.error}")
        for err in result.cell_errors:
            print(f"     cell {err['cell']} raised {err['ename']}: {err['evalue']}")
        for q in result.questions:
            if q.status != "passed" and not result.error:
                print(f"     {q}".replace("\n", "\n     "))

    results = run_solutions(args.lessons, write=args.write, timeout=args.timeout, on_result=said)
    if args.write:
        print("executed notebooks written to _build/solutions/")
    return 0 if all(solution_ok(r) for r in results) else 1
