"""Does the conda environment.yml list the same packages and versions as the pip lock and pyproject?"""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict:
    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _conda_pip() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = {}
    for entry in pip_section:
        if entry.startswith("-e"):
            continue
        name, version = entry.split("==")
        pins[_norm(name)] = version.strip()
    return pins


def _pyproject_names() -> set:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_norm(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in reqs}


def test_conda_pins_equal_lock_pins():
    """Is every package pinned in environment.yml pinned to the same version in the lock?"""
    lock = _lock()
    for name, version in _conda_pip().items():
        assert name in lock, f"{name} is in environment.yml but not in requirements/lock.txt"
        assert lock[name] == version, f"{name}: environment.yml {version}, lock {lock[name]}"


def test_every_declared_dependency_is_in_both():
    """Is every dependency of pyproject.toml (extras included) in the lock and in environment.yml?"""
    lock, conda = _lock(), _conda_pip()
    for name in _pyproject_names():
        assert name in lock, f"{name} missing from requirements/lock.txt (run make lock)"
        assert name in conda, f"{name} missing from environment.yml"


def test_python_and_torch_pins():
    """Are Python 3.11 and torch 2.13.0 the pinned versions everywhere?"""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert _lock()["torch"] == "2.13.0" and _conda_pip()["torch"] == "2.13.0"
