"""The grading pass that ``course grade`` runs inside the learner's kernel, after their notebook.

The host (``grade.py``) sends ``grading_code(...)`` as one last cell. That cell forgets every
``course_utils.grading`` module the notebook may have imported or patched, re-imports the checker
from the installed package, and runs every registered question of the lesson against the objects
named by each question's ``answers`` in the notebook's globals. Results go to a JSON file whose
name the notebook could not know, never through the notebook's printed output.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys

from .registry import questions_for_lesson
from .results import MISSING, NOT_IMPLEMENTED, CaseOutcome, QuestionResult
from .runner import run_question

# Import machinery the grading pass trusts; a finder the notebook added to sys.meta_path is not used.
_TRUSTED_FINDER_MODULES = ("_frozen_importlib", "_frozen_importlib_external", "importlib", "__editable__",
                           "_distutils_hack", "six", "pkg_resources", "setuptools")


def grading_code(lesson: str, out_path: str, stub_cells: list[int], package_dir: str,
                 cell_errors: list[dict] = (), defined_in: dict | None = None) -> str:
    """The source of the cell that grades ``lesson`` in the learner's kernel and writes ``out_path``.

    ``cell_errors`` ({"cell", "ename", "evalue"}) and ``defined_in`` ({answer name: cell number})
    let an answer that is not defined say which cell failed to define it.
    """
    context = {"stub_cells": list(stub_cells), "cell_errors": list(cell_errors),
               "defined_in": dict(defined_in or {})}
    return f"""\
import sys as _course_sys
_course_meta_path = list(_course_sys.meta_path)
_course_sys.meta_path[:] = [f for f in _course_meta_path
                            if getattr(f, "__module__", "").startswith({_TRUSTED_FINDER_MODULES!r})]
for _course_name in [n for n in list(_course_sys.modules)
                     if n.startswith("course_utils.grading") or n == "json" or n.startswith("json.")]:
    del _course_sys.modules[_course_name]
try:
    import course_utils as _course_pkg
    _course_pkg.__path__ = [{package_dir!r}]
    import course_utils.grading.inkernel as _course_inkernel
    _course_inkernel.grade_namespace({lesson!r}, {out_path!r}, context={context!r})
finally:
    _course_sys.meta_path[:] = _course_meta_path
    for _course_name in ("_course_pkg", "_course_inkernel", "_course_name", "_course_meta_path", "_course_sys"):
        globals().pop(_course_name, None)
"""


# Exceptions that mean the notebook leaned on something outside itself.
_OUTSIDE = ("ModuleNotFoundError", "ImportError", "FileNotFoundError")


def _missing_note(question, found: dict, context: dict) -> str:
    """Why an answer is not defined, naming the cell that should have defined it and what it raised."""
    missing = [n for n in question.answers if n not in found]
    errors = {e["cell"]: e for e in context.get("cell_errors", [])}
    defined_in = context.get("defined_in", {})
    for name in missing:
        cell = defined_in.get(name)
        err = errors.get(cell) if cell is not None else None
        if err is None and cell is None and errors:
            err = errors[min(errors)]
        if err is None:
            continue
        where = (f"cell {cell}, which defines it," if cell is not None and err["cell"] == cell
                 else f"cell {err['cell']}")
        note = (f"Not answered: `{name}` is not defined: {where} raised {err['ename']}: "
                f"{err['evalue'][:200]}.")
        if err["ename"] in _OUTSIDE:
            note += (" A notebook is graded alone, in a fresh kernel, without the files next to it: "
                     "put the code it imports or reads into the notebook itself.")
        else:
            note += " Fix that cell so the notebook runs from top to bottom, then run it again."
        return note
    return ""


def grade_question(question, namespace: dict, stub_cells: list[int] = (),
                   context: dict | None = None) -> QuestionResult:
    """Run one question against the objects its ``answers`` name in ``namespace``."""
    context = dict(context or {})
    stub_cells = list(stub_cells) or context.get("stub_cells", [])
    found = {name: namespace[name] for name in question.answers if name in namespace}
    result = run_question(question, **found)
    if result.status == MISSING and not stub_cells:
        note = _missing_note(question, found, context)
        if note:
            result.note = note
            result.cases = [CaseOutcome(c.name, False, note, "", MISSING, c.kind, True) for c in result.cases]
    if result.status == MISSING and stub_cells:
        missing = ", ".join(f"`{n}`" for n in question.answers if n not in found)
        cells = ", ".join(str(c) for c in stub_cells)
        result.note = (f"Not implemented yet: {missing} is not defined, because cell {cells} stopped at "
                       "`raise NotImplementedError()` before defining it. Fill in the cell(s) marked "
                       "`# YOUR CODE HERE` and run them.")
        result.cases = [CaseOutcome(c.name, False, result.note, "", NOT_IMPLEMENTED, c.kind, True) for c in result.cases]
    return result


def grade_namespace(lesson: str, out_path: str, stub_cells: list[int] = (), namespace: dict | None = None,
                    context: dict | None = None) -> None:
    """Grade every question of ``lesson`` against ``namespace`` (default: the kernel's globals); write JSON."""
    if namespace is None:
        namespace = vars(sys.modules["__main__"])
    sink = io.StringIO()  # what learner code prints while it is being graded is not shown
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        results = [grade_question(q, namespace, stub_cells, context).to_dict()
                   for q in questions_for_lesson(lesson)]
    text = json.dumps({"lesson": lesson, "questions": results}, sort_keys=True)
    tmp = f"{out_path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, out_path)
