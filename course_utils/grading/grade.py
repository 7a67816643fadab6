"""``course grade``: grade submitted notebooks, each in its own fresh kernel, without trusting their output.

For each notebook: copy it into a temporary folder, start a fresh kernel there, run every cell
(errors allowed) within the time limit, then run the grading pass of ``inkernel`` in the same
kernel: every registered question of the lesson against the learner's objects. A notebook that is
not JSON, hangs, or kills its kernel is reported as such; the batch goes on.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .inkernel import grading_code
from .registry import questions_for_lesson
from .results import ERROR, CaseOutcome, QuestionResult

DEFAULT_TIMEOUT = 600.0  # seconds for running one notebook (grading adds its cases' own limits)
DEFAULT_CELL_TIMEOUT = 300.0  # seconds for one cell: then it is interrupted and the next cell runs
GRADING_SLACK = 30.0  # seconds allowed on top of the sum of the cases' limits for the grading pass
MAX_OUTPUTS_PER_CELL = 200  # a notebook printing without end must not fill the grader's memory
_NAME_LESSON = re.compile(r"^(\d\d)_")
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


@dataclass
class SubmissionResult:
    """The grade of one submitted notebook: every question of its lesson, or why it could not be graded."""

    path: str
    lesson: str | None = None
    questions: list[QuestionResult] = field(default_factory=list)
    error: str | None = None  # None when the notebook ran to the end and was graded
    cell_errors: list[dict] = field(default_factory=list)  # cells that raised: {"cell", "ename", "evalue"}
    interrupted: list[int] = field(default_factory=list)  # cells stopped at their time limit
    not_run: list[int] = field(default_factory=list)  # cells never run: the notebook's time was up
    seconds: float = 0.0
    notebook: object = field(default=None, repr=False)  # the executed notebook, if asked for (keep_notebook)

    @property
    def score(self) -> float:
        return round(sum(q.score for q in self.questions), 4)

    @property
    def possible(self) -> float:
        return float(round(sum(q.possible for q in self.questions), 4))

    @property
    def status(self) -> str:
        """"graded", or "not graded" (the notebook could not be run or read; ``error`` says why)."""
        return "not graded" if self.error else "graded"

    def notes(self) -> list[str]:
        """What an instructor should know about how the notebook ran (hung cells, cells not run)."""
        out = []
        if self.interrupted:
            cells = ", ".join(str(c) for c in self.interrupted)
            out.append(f"cell {cells} ran past the cell time limit and was interrupted; the rest ran")
        if self.not_run:
            out.append(f"cells {self.not_run[0]}-{self.not_run[-1]} were not run: the notebook's time "
                       "limit was reached")
        return out

    def to_dict(self) -> dict:
        """The JSON form: path, lesson, status, score, possible, error, questions (and a few extra keys)."""
        return {"path": self.path, "lesson": self.lesson, "status": self.status, "score": self.score,
                "possible": self.possible, "error": self.error, "cell_errors": self.cell_errors,
                "interrupted_cells": self.interrupted, "cells_not_run": self.not_run,
                "notes": self.notes(), "seconds": round(self.seconds, 1),
                "questions": [q.to_dict() for q in self.questions]}


def find_notebooks(paths) -> list[Path]:
    """Expand folders into the ``*.ipynb`` files under them (sorted); files are kept as given."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts))
        else:
            found.append(p)
    return found


def lesson_of_notebook(path: Path, nb=None) -> str | None:
    """The lesson from the file name ``NN_slug.ipynb``, else from the notebook's ``metadata.course.lesson``."""
    m = _NAME_LESSON.match(path.name)
    if m:
        return m.group(1)
    lesson = ((nb or {}).get("metadata", {}).get("course") or {}).get("lesson") if nb is not None else None
    return lesson if isinstance(lesson, str) and re.fullmatch(r"\d\d", lesson) else None


def _not_graded(lesson: str | None, reason: str) -> list[QuestionResult]:
    """Every question of the lesson at 0 points, each saying why it was not graded."""
    if not lesson:
        return []
    results = []
    for q in questions_for_lesson(lesson):
        r = QuestionResult(q.qid, q.title, points=q.points, note=f"Not graded: {reason}")
        r.cases = [CaseOutcome(c.name, False, r.note, "", ERROR, c.kind, True) for c in q.cases]
        results.append(r)
    return results


def read_submission(path: Path):
    """Parse a submission; returns ``(notebook, None)`` or ``(None, why it is not a notebook)``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, "not a notebook: the file is not UTF-8 text"
    except OSError as exc:
        return None, f"cannot read the file: {exc.strerror or exc}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"not a notebook: the file is not valid JSON ({exc})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, "not a notebook: the JSON has no list of cells"
    try:
        with warnings.catch_warnings():  # missing or duplicate cell ids: nbformat fixes them, we don't mind
            warnings.simplefilter("ignore")
            return nbformat.reads(text, as_version=4), None
    except Exception as exc:  # nbformat's errors for a JSON that is not a notebook
        return None, f"not a notebook: {str(exc).splitlines()[0]}"


def grade_notebook(path, timeout: float = DEFAULT_TIMEOUT, keep_notebook: bool = False,
                   cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> SubmissionResult:
    """Grade one notebook in a fresh kernel (see the module docstring); never raises for a bad submission.

    ``keep_notebook`` keeps the executed notebook (with outputs) in ``result.notebook``.
    """
    path = Path(path)
    start = time.monotonic()
    result = SubmissionResult(str(path), lesson=lesson_of_notebook(path))
    nb, problem = read_submission(path)
    if nb is not None:
        result.lesson = lesson_of_notebook(path, nb)
    if problem is None and result.lesson is None:
        problem = ("cannot tell which lesson this notebook belongs to: name it NN_slug.ipynb "
                   "(e.g. 01_tensors.ipynb) or keep the exercise's metadata")
    if problem is None and not questions_for_lesson(result.lesson):
        problem = f"lesson {result.lesson} has no graded questions"
    if problem is None:
        try:
            _execute_and_grade(path, nb, result, timeout, keep_notebook, cell_timeout)
        finally:
            result.seconds = time.monotonic() - start
        return result
    result.error = problem
    result.questions = _not_graded(result.lesson, problem)
    result.seconds = time.monotonic() - start
    return result


def grade_paths(paths, timeout: float = DEFAULT_TIMEOUT, on_result=None,
                cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> list[SubmissionResult]:
    """Grade every notebook in ``paths`` (files or folders), one after the other."""
    results = []
    for path in find_notebooks(paths):
        try:
            results.append(grade_notebook(path, timeout, cell_timeout=cell_timeout))
        except Exception as exc:  # a bug of ours, or a lesson's checks that do not import: say so, go on
            results.append(SubmissionResult(str(path), lesson_of_notebook(path),
                                            error=f"could not grade: {type(exc).__name__}: {str(exc)[:300]}"))
        if on_result:
            on_result(results[-1])
    return results


# --------------------------------------------------------------------------- running the kernel
def _client(nb, workdir: str):
    from nbclient import NotebookClient

    from nbclient.exceptions import CellTimeoutError
    from nbclient.util import ensure_async

    class CappedClient(NotebookClient):
        """Caps a cell's outputs; a cell past its limit is interrupted once, then given up on."""

        interrupted: set = set()

        def output(self, outs, msg, display_id, cell_index):
            if len(outs) >= MAX_OUTPUTS_PER_CELL:
                return None
            return super().output(outs, msg, display_id, cell_index)

        async def _async_handle_timeout(self, timeout, cell=None):
            key = id(cell)
            if key in self.interrupted or cell is None:  # the interrupt did not stop it
                raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout, cell)
            self.interrupted = self.interrupted | {key}
            await ensure_async(self.km.interrupt_kernel())
            return None  # wait for the cell's reply (a KeyboardInterrupt) as long again

    return CappedClient(nb, timeout=int(DEFAULT_TIMEOUT), allow_errors=True, kernel_name="python3",
                        shutdown_kernel="immediate", startup_timeout=120, iopub_timeout=10,
                        resources={"metadata": {"path": workdir}})


def _kernel_env() -> dict:
    env = dict(os.environ)
    env.update(COURSE_NO_PROGRESS="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    return env


def _cell_error(cell) -> tuple[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out.get("ename", ""), out.get("evalue", "")
    return None


_DEFINES = ("^(?:def|class)[ \t]+{name}\\b|^{name}[ \t]*(?::[^=\n]*)?=(?!=)"
            "|^(?:from[ \t]+\\S+[ \t]+)?import[ \t][^\n#]*\\b{name}\\b")


def defining_cells(nb, names) -> dict[str, int]:
    """{answer name: number of the last code cell that defines it at top level} (1-based)."""
    found: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        for name in names:
            if re.search(_DEFINES.format(name=re.escape(name)), cell.get("source", ""), re.M):
                found[name] = i + 1
    return found


def _execute_and_grade(path: Path, nb, result: SubmissionResult, timeout: float, keep_notebook: bool,
                       cell_timeout: float = DEFAULT_CELL_TIMEOUT) -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    workdir = tempfile.mkdtemp(prefix="course-grade-")
    outdir = tempfile.mkdtemp(prefix="course-result-")  # apart from the working copy the notebook sees
    out_path = os.path.join(outdir, f"result-{secrets.token_hex(16)}.json")
    shutil.copyfile(path, os.path.join(workdir, path.name))
    client = _client(nb, workdir)
    questions = questions_for_lesson(result.lesson)
    stage, cell_no = "starting the kernel", 0
    deadline = time.monotonic() + timeout
    try:
        with open(os.path.join(outdir, "kernel.log"), "wb") as log, \
                client.setup_kernel(env=_kernel_env(), stdout=log, stderr=subprocess.STDOUT):
            stage = "running the notebook"
            for i, cell in enumerate(nb.cells):
                cell_no = i + 1
                left = deadline - time.monotonic()
                if left <= 0:
                    result.not_run = [j + 1 for j in range(i, len(nb.cells)) if nb.cells[j].cell_type == "code"]
                    break
                if cell.cell_type != "code":
                    continue
                client.timeout = max(1, int(min(cell_timeout, left) + 0.999))
                client.execute_cell(cell, i)
                if id(cell) in client.interrupted:
                    result.interrupted.append(cell_no)
                err = _cell_error(cell)
                if err:
                    result.cell_errors.append({"cell": cell_no, "ename": err[0], "evalue": err[1][:300]})
            if keep_notebook:
                result.notebook = nbformat.from_dict(nb)
            stage = "grading"
            stub_cells = [e["cell"] for e in result.cell_errors if e["ename"] == "NotImplementedError"]
            names = sorted({n for q in questions for n in q.answers})
            code = grading_code(result.lesson, out_path, stub_cells, _PACKAGE_DIR, result.cell_errors,
                                defining_cells(nb, names))
            cell = nbformat.v4.new_code_cell(code)
            nb.cells.append(cell)
            client.timeout = int(sum(_question_limit(q) for q in questions) + GRADING_SLACK)
            client.execute_cell(cell, len(nb.cells) - 1, store_history=False)
            nb.cells.pop()
            err = _cell_error(cell)
            if not os.path.exists(out_path):
                why = f"{err[0]}: {err[1]}" if err else "no results were written"
                raise _GradingFailed(f"the grading pass failed ({why[:300]})")
            with open(out_path, encoding="utf-8") as fh:
                data = json.load(fh)
            result.questions = _verified([QuestionResult.from_dict(d) for d in data["questions"]], questions)
    except CellTimeoutError:
        if stage == "grading":
            _fail(result, f"timed out while grading (more than {client.timeout} s); the kernel was stopped")
        else:
            _fail(result, f"timed out: cell {cell_no} was still running after it was interrupted at its "
                          f"time limit ({client.timeout} s); the kernel was stopped")
    except DeadKernelError:
        where = f"cell {cell_no}" if stage == "running the notebook" else "the grading pass"
        _fail(result, f"the kernel died while running {where} (os._exit(), a crash, or out of memory)")
    except _GradingFailed as exc:
        _fail(result, str(exc))
    except Exception as exc:  # the kernel could not start, or the connection broke
        _fail(result, f"error while {stage}: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)


class _GradingFailed(Exception):
    """The grading pass ran but wrote no results."""


def _verified(results: list[QuestionResult], questions) -> list[QuestionResult]:
    """The results, if they are those of exactly these questions and cases with consistent scores."""
    expected = [(q.qid, [c.name for c in q.cases], q.points) for q in questions]
    got = [(r.qid, [c.name for c in r.cases], r.points) for r in results]
    if got != expected:
        raise _GradingFailed("the grading pass returned results that do not match the lesson's questions")
    return results


def _question_limit(question) -> float:
    return sum(c.timeout if c.timeout is not None else question.timeout for c in question.cases)


def _fail(result: SubmissionResult, reason: str) -> None:
    result.error = reason
    result.questions = _not_graded(result.lesson, reason)
