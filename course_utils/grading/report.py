"""The three forms of a batch of grades: a text table, JSON, and CSV (one row per notebook and question)."""
from __future__ import annotations

import csv
import io
import json

from .results import PASSED

CSV_COLUMNS = ["path", "lesson", "question", "status", "score", "possible", "cases_passed", "cases",
               "notebook_score", "notebook_possible", "note", "error"]


def to_json(results) -> str:
    """``{"results": [...]}`` with one object per notebook (see ``SubmissionResult.to_dict``)."""
    return json.dumps({"results": [r.to_dict() for r in results]}, indent=1, sort_keys=False)


def csv_rows(results) -> list[dict]:
    """One row per notebook and question; a notebook with no question (no lesson) gets one row."""
    rows = []
    for r in results:
        base = {"path": r.path, "lesson": r.lesson or "", "notebook_score": f"{r.score:g}",
                "notebook_possible": f"{r.possible:g}", "error": r.error or ""}
        if not r.questions:
            rows.append({**base, "question": "", "status": "not graded", "score": "0", "possible": "0",
                         "cases_passed": "0", "cases": "0", "note": r.error or ""})
        for q in r.questions:
            status = "not graded" if r.error else q.status
            rows.append({**base, "question": q.qid, "status": status, "score": f"{q.score:g}",
                         "possible": f"{q.possible:g}", "cases_passed": str(sum(c.passed for c in q.cases)),
                         "cases": str(len(q.cases)),
                         "note": "" if q.passed else q.first_problem()})
    return rows


def to_csv(results) -> str:
    """The CSV text of ``csv_rows`` with a header line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(results))
    return buf.getvalue()


def _first_problem(q) -> str:
    return q.first_problem()


def to_text(results, width: int = 150) -> str:
    """A readable table: one line per notebook, then one line per question that did not pass."""
    if not results:
        return "no notebooks graded"
    name_w = min(max(len(r.path) for r in results), 60)
    lines = [f"{'NOTEBOOK':<{name_w}}  LESSON  {'SCORE':>9}  STATUS"]
    for r in results:
        n_pass = sum(q.status == PASSED for q in r.questions)
        status = f"not graded: {r.error}" if r.error else f"{n_pass}/{len(r.questions)} questions passed"
        if r.cell_errors and not r.error:
            status += f"; {len(r.cell_errors)} cell(s) raised"
        for note in r.notes():
            status += f"; {note}"
        path = r.path if len(r.path) <= name_w else "..." + r.path[-(name_w - 3):]
        score = f"{r.score:g}/{r.possible:g}"
        lines.append(f"{path:<{name_w}}  {r.lesson or '--':<6}  {score:>9}  {status}")
        if r.error and not r.lesson:
            lines.append("    (no lesson: it cannot be scored; rename it NN_slug.ipynb and grade it again)")
        if r.error:
            continue
        qid_w = max(len(q.qid) for q in r.questions) if r.questions else 0
        for q in r.questions:
            if q.status != PASSED:
                score = f"{q.score:g}/{q.possible:g}"
                detail = f"    {q.qid:<{qid_w}}  {score:>9}  {q.status}: {_first_problem(q)}"
                lines.append(detail if len(detail) <= width else detail[: width - 3] + "...")
    total = sum(r.score for r in results)
    possible = sum(r.possible for r in results)
    no_lesson = sum(r.lesson is None for r in results)
    tail = f" ({no_lesson} of them: lesson unknown)" if no_lesson else ""
    lines.append(f"{len(results)} notebook(s), {sum(r.error is not None for r in results)} not graded{tail}; "
                 f"total {total:g}/{possible:g}")
    return "\n".join(lines)
