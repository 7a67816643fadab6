"""Progress: the best and the latest result of every question on this machine, in the user cache.

The best is kept so that trying a wrong answer on purpose (the warm-up asks for it) never erases
a pass; the latest says where the learner is now.
"""
from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

from ..paths import cache_dir
from .registry import load_all, ordered
from .results import QuestionResult


def progress_file() -> Path:
    """Where results are kept: ``<cache>/progress.json``."""
    return cache_dir() / "progress.json"


def _load() -> dict:
    path = progress_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def save_result(result: QuestionResult) -> None:
    """Remember ``result`` as the latest for its question, and as the best if it scores higher
    (atomic write; failures are ignored)."""
    if os.environ.get("COURSE_NO_PROGRESS"):
        return
    data = _load()
    old = data.get(result.qid) if isinstance(data.get(result.qid), dict) else {}
    entry = {"status": result.status, "score": result.score, "possible": result.possible,
             "best_status": result.status, "best_score": result.score}
    best = _number(old.get("best_score", old.get("score")))
    best_status = str(old.get("best_status", old.get("status", "")))
    if old and (best, best_status == "passed") > (result.score, result.passed):
        entry["best_score"], entry["best_status"] = best, best_status
    data[result.qid] = entry
    path = progress_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass


_LABEL = {"passed": "passed", "not implemented yet": "not implemented yet", "missing": "not answered",
          "failed": "not yet", "library call": "not from scratch"}


class Progress:
    """Every question of the course, in notebook order, with its best and latest result here: HTML
    in Jupyter, text in a terminal. The totals count the best results."""

    def __init__(self, rows: list[dict]):
        # {"id", "title", "best_status", "best_score", "status", "score", "possible"}; "" never checked
        self.rows = rows

    @property
    def score(self) -> float:
        return round(sum(r["best_score"] for r in self.rows), 4)

    @property
    def possible(self) -> float:
        return round(sum(r["possible"] for r in self.rows), 4)

    @staticmethod
    def _label(status: str) -> str:
        return _LABEL.get(status, status) if status else "not checked yet"

    def _status(self, row: dict) -> str:
        """"passed", or "passed before; latest: not yet", or the latest status."""
        if not row["status"]:
            return "not checked yet"
        if row["best_status"] == "passed" and row["status"] != "passed":
            return f"passed before; latest: {self._label(row['status'])}"
        return self._label(row["status"])

    def summary(self) -> str:
        done = sum(r["best_status"] == "passed" for r in self.rows)
        return f"{done} of {len(self.rows)} questions passed, {self.score:g}/{self.possible:g} points (best)"

    def __str__(self) -> str:
        if not self.rows:
            return "No questions are registered."
        id_w = max(len(r["id"]) for r in self.rows)
        title_w = min(max(len(r["title"]) for r in self.rows), 44)
        lines = [f"{'QUESTION':<{id_w}}  {'TITLE':<{title_w}}  {'BEST':>7}  {'LATEST':>7}  STATUS"]
        for r in self.rows:
            best = f"{r['best_score']:g}/{r['possible']:g}"
            latest = f"{r['score']:g}/{r['possible']:g}" if r["status"] else "-"
            lines.append(f"{r['id']:<{id_w}}  {r['title'][:title_w]:<{title_w}}  {best:>7}  {latest:>7}  "
                         f"{self._status(r)}")
        lines.append(self.summary())
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = {"passed": "#1a7f37", "not implemented yet": "#9a6700", "": "#57606a"}
        left = ' style="text-align:left"'
        out = ['<table class="course-progress" style="font-family:sans-serif;border-collapse:collapse">',
               f"<thead><tr><th{left}>Question</th><th{left}>Title</th><th>Best</th><th>Latest</th>"
               f"<th{left}>Status</th></tr></thead><tbody>"]
        for r in self.rows:
            c = colour.get(r["best_status"] if r["best_status"] == "passed" else r["status"], "#cf222e")
            latest = f"{r['score']:g}/{r['possible']:g}" if r["status"] else "-"
            out.append(f"<tr><td><code>{esc(r['id'])}</code></td><td>{esc(r['title'])}</td>"
                       f"<td style=\"text-align:right\">{r['best_score']:g}/{r['possible']:g}</td>"
                       f"<td style=\"text-align:right\">{latest}</td>"
                       f"<td style=\"color:{c}\">{esc(self._status(r))}</td></tr>")
        out.append(f"</tbody><caption style=\"caption-side:bottom;text-align:left\">{esc(self.summary())}"
                   "</caption></table>")
        return "".join(out)


def progress() -> Progress:
    """Show every question of the course with your best and latest result on this machine.

    Returns:
        A ``Progress`` table (HTML in Jupyter, text with ``print``), the questions in the order
        of their notebooks; questions never checked say "not checked yet".
    Example:
        >>> from course_utils import progress
        >>> progress()  # doctest: +SKIP
    """
    saved = _load()
    rows = []
    for q in ordered(load_all().values()):
        entry = saved.get(q.qid) if isinstance(saved.get(q.qid), dict) else {}
        status = entry.get("status", "") if isinstance(entry.get("status", ""), str) else ""
        best_status = entry.get("best_status", status)
        best_status = best_status if isinstance(best_status, str) and status else ""
        score = min(_number(entry.get("score")), q.points) if status else 0.0
        best = min(max(_number(entry.get("best_score", score)), score), q.points) if status else 0.0
        rows.append({"id": q.qid, "title": q.title, "best_status": best_status or status,
                     "best_score": best, "status": status, "score": score, "possible": float(q.points)})
    return Progress(rows)
