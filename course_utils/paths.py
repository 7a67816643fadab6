"""Where the course keeps things on the learner's machine (never relative to the notebook)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Per-user cache of the course: ``$COURSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/course``, else ``~/.cache/course``."""
    if os.environ.get("COURSE_CACHE_DIR"):
        return Path(os.environ["COURSE_CACHE_DIR"]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(base) / "course").expanduser().resolve()


def repo_root() -> Path | None:
    """The course checkout this package was installed from (editable install), if any."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir() else None
