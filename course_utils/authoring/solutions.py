"""``course solutions run``: execute the solution notebooks in fresh kernels; every question must pass."""
from __future__ import annotations

from pathlib import Path

from ..paths import repo_root
from .build import solution_files
from .transforms import lesson_of, notebook_text, normalize_metadata, stable_cell_ids

PUBLISH_DIR = Path("_build") / "solutions"  # ignored by git; never the committed solutions/


def _root() -> Path:
    return repo_root() or Path.cwd()


def select_solutions(lessons=None, solutions_dir=None) -> list[Path]:
    """The solution notebooks of the given lessons (``"01"``, ``"1"``, ...), or all of them."""
    files = solution_files(Path(solutions_dir) if solutions_dir else _root() / "solutions")
    if not lessons:
        return files
    wanted = {str(lesson).zfill(2) for lesson in lessons}
    return [p for p in files if lesson_of(p.name) in wanted]


def run_solutions(lessons=None, write: bool = False, timeout: float = 900.0, solutions_dir=None,
                  publish_dir=None, on_result=None) -> list:
    """Execute and grade solution notebooks; returns their ``SubmissionResult``s.

    A solution is good when it ran without error in any cell and scored every point.
    Args:
        lessons: lesson numbers to run (default: all).
        write: store each executed notebook (outputs kept) in ``_build/solutions/`` for publishing.
        timeout: seconds allowed for running one notebook.
    """
    from ..grading.grade import grade_notebook

    out_dir = Path(publish_dir) if publish_dir else _root() / PUBLISH_DIR
    results = []
    for path in select_solutions(lessons, solutions_dir):
        result = grade_notebook(path, timeout=timeout, keep_notebook=write)
        if write and result.notebook is not None:
            nb = stable_cell_ids(normalize_metadata(result.notebook, path.name), path.name)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / path.name).write_text(notebook_text(nb), encoding="utf-8")
        results.append(result)
        if on_result:
            on_result(result)
    return results


def solution_ok(result) -> bool:
    """Did a solution notebook run cleanly and score full marks?"""
    return (result.error is None and not result.cell_errors and result.possible > 0
            and result.score == result.possible)

