"""``course exercises build``: write ``exercises/`` from ``solutions/`` (the single source).

Given the course's repository (``links.Repository``, from ``book/_config.yml``), each exercise
also gets its Colab badge and install cell written from it (``links.with_links``).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .links import Repository, with_links
from .transforms import LESSON_RE, notebook_text, read_notebook, to_exercise


@dataclass
class BuildReport:
    """What a build wrote (or, with ``check``, would write) and which exercises have no source."""

    changed: list[Path] = field(default_factory=list)   # written, or stale under --check
    unchanged: list[Path] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)   # exercises/NN_*.ipynb without a solution

    @property
    def stale(self) -> list[Path]:
        """Every exercise file that is not what the sources say it should be."""
        return self.changed + self.orphans


def solution_files(solutions_dir: Path) -> list[Path]:
    """The solution notebooks ``NN_slug.ipynb`` of a folder, sorted."""
    return sorted(p for p in Path(solutions_dir).glob("*.ipynb") if LESSON_RE.match(p.name))


def exercise_text(solution: Path, repo: Repository | None = None) -> str:
    """The exact text of the exercise notebook generated from one solution notebook (with its
    badge and install cell written from ``repo``, if given)."""
    name = f"{solution.parent.name}/{solution.name}"
    nb = read_notebook(solution)
    if repo is not None:
        nb = with_links(nb, name, repo)
    return notebook_text(to_exercise(nb, name))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_exercises(solutions_dir, exercises_dir, check: bool = False,
                    repo: Repository | None = None, lessons: list[str] | None = None) -> BuildReport:
    """Generate every ``exercises/NN_slug.ipynb`` from ``solutions/NN_slug.ipynb``.

    Args:
        solutions_dir: folder of solution notebooks (with markers).
        exercises_dir: folder of generated exercise notebooks.
        check: write nothing; report which exercise files are out of date.
        repo: the course's repository, for the badges and install cells (default: left as the
            solutions have them).
        lessons: only these lesson numbers (``["07"]``); orphans are then not looked for.
    Returns:
        A ``BuildReport``; ``report.stale`` is empty when ``exercises/`` is up to date.
    Raises:
        MarkerError: a solution notebook has a malformed marker (names file, cell and line).
        LinkError: a solution's install cell does more than install the course.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    report = BuildReport()
    wanted = {n.zfill(2) for n in lessons or []}
    sources = [s for s in solution_files(solutions_dir) if not wanted or s.name[:2] in wanted]
    texts = {exercises_dir / src.name: exercise_text(src, repo) for src in sources}  # all or nothing
    for target, text in texts.items():
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            report.unchanged.append(target)
            continue
        report.changed.append(target)
        if not check:
            _write_atomic(target, text)
    if exercises_dir.is_dir() and not wanted:
        report.orphans = [p for p in sorted(exercises_dir.glob("*.ipynb"))
                          if LESSON_RE.match(p.name) and p not in texts]
    return report
