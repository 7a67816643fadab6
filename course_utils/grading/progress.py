"""Progress: the latest result of every question on this machine, kept in the user cache."""
from __future__ import annotations

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
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


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
