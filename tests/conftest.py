"""Shared fixtures. Notebooks kept under tests/ are fixtures (broken submissions, golden files), not tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

collect_ignore_glob = ["**/*.ipynb", "*.ipynb"]

# Fixture notebooks that must carry outputs or be broken (faked results, corrupt JSON) are kept as
# NAME.ipynb.fixture, so every committed .ipynb is a clean notebook; tests copy them to NAME.ipynb.
FIXTURE_SUFFIX = ".fixture"

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """The course data folder if this machine has one: $COURSE_DATA_DIR, else ../shared/data."""
    env = os.environ.get("COURSE_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for c in candidates:
        c = c if c.is_absolute() else (ROOT / c)
        if (c / "mnist").is_dir():
            return c.resolve()
    return None


@pytest.fixture
def shared_data(monkeypatch):
    """Point the course at the shared data folder, or skip when this machine has none."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("no course data folder (set COURSE_DATA_DIR)")
    monkeypatch.setenv("COURSE_DATA_DIR", str(path))
    return path


def materialize(src: Path, dest: Path) -> Path:
    """Copy the fixture folder ``src`` to ``dest``, dropping the ``.fixture`` suffix of notebook names."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        name = f.name[: -len(FIXTURE_SUFFIX)] if f.name.endswith(FIXTURE_SUFFIX) else f.name
        (dest / name).write_bytes(f.read_bytes())
    return dest


@pytest.fixture(scope="session")
def submissions(tmp_path_factory) -> Path:
    """tests/submissions/ as a folder of real .ipynb files (the broken submissions of lesson 00)."""
    return materialize(ROOT / "tests" / "submissions", tmp_path_factory.mktemp("graded") / "submissions")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own user cache, so progress files and downloads never leak between tests."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path_factory.mktemp("course-cache")))
