"""Progress: the latest result of every question on this machine, kept in the user cache."""
from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path

from ..paths import cache_dir
from .registry import load_all
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


def save_result(result: QuestionResult) -> None:
    """Remember ``result`` as the latest for its question (atomic write; failures are ignored)."""
    if os.environ.get("COURSE_NO_PROGRESS"):
        return
    data = _load()
    data[result.qid] = {"status": result.status, "score": result.score, "possible": result.possible}
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
          "failed": "not yet"}


class Progress:
    """Every question of the course with its latest result here: HTML in Jupyter, text in a terminal."""

    def __init__(self, rows: list[dict]):
        self.rows = rows  # {"id", "title", "status", "score", "possible"}; status "" when never checked

    @property
    def score(self) -> float:
        return round(sum(r["score"] for r in self.rows), 4)

    @property
    def possible(self) -> float:
        return round(sum(r["possible"] for r in self.rows), 4)

    def _status(self, row: dict) -> str:
        return _LABEL.get(row["status"], row["status"]) if row["status"] else "not checked yet"

    def summary(self) -> str:
        done = sum(r["status"] == "passed" for r in self.rows)
        return f"{done} of {len(self.rows)} questions passed, {self.score:g}/{self.possible:g} points"

    def __str__(self) -> str:
        if not self.rows:
            return "No questions are registered."
        id_w = max(len(r["id"]) for r in self.rows)
        title_w = min(max(len(r["title"]) for r in self.rows), 40)
        lines = [f"{'QUESTION':<{id_w}}  {'TITLE':<{title_w}}  {'SCORE':>7}  STATUS"]
        for r in self.rows:
            score = f"{r['score']:g}/{r['possible']:g}"
            lines.append(f"{r['id']:<{id_w}}  {r['title'][:title_w]:<{title_w}}  {score:>7}  {self._status(r)}")
        lines.append(self.summary())
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = {"passed": "#1a7f37", "not implemented yet": "#9a6700", "": "#57606a"}
        out = ['<table class="course-progress" style="font-family:sans-serif;border-collapse:collapse">',
               "<thead><tr><th style=\"text-align:left\">Question</th><th style=\"text-align:left\">Title</th>"
               "<th>Score</th><th style=\"text-align:left\">Status</th></tr></thead><tbody>"]
        for r in self.rows:
            c = colour.get(r["status"], "#cf222e")
            out.append(f"<tr><td><code>{esc(r['id'])}</code></td><td>{esc(r['title'])}</td>"
                       f"<td style=\"text-align:right\">{r['score']:g}/{r['possible']:g}</td>"
                       f"<td style=\"color:{c}\">{esc(self._status(r))}</td></tr>")
        out.append(f"</tbody><caption style=\"caption-side:bottom;text-align:left\">{esc(self.summary())}"
                   "</caption></table>")
        return "".join(out)


def progress() -> Progress:
    """Show every question of the course with your latest result on this machine.

    Returns:
        A ``Progress`` table (HTML in Jupyter, text with ``print``); questions never checked
        say "not checked yet".
    Example:
        >>> from course_utils import progress
        >>> progress()  # doctest: +SKIP
    """
    saved = _load()
    rows = []
    for qid, q in sorted(load_all().items()):
        entry = saved.get(qid) if isinstance(saved.get(qid), dict) else {}
        status = entry.get("status", "") if isinstance(entry.get("status", ""), str) else ""
        score = entry.get("score", 0.0)
        score = float(score) if isinstance(score, (int, float)) and status else 0.0
        rows.append({"id": qid, "title": q.title, "status": status, "score": min(score, q.points),
                     "possible": float(q.points)})
    return Progress(rows)
