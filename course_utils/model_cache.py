"""Trained models that one lesson saves and a later lesson reuses, in the course cache.

A lesson opened on its own (Colab opens one notebook) cannot assume that an earlier lesson
ran; when it did, its model is in ``cache_dir()/models``: ``NAME.pt`` (the state dict) and
``NAME.json`` (the settings it was trained with, the SHA-256 of ``NAME.pt``, the library
versions). ``load_model`` hands the model back only when the file is intact and the
settings are those asked for; otherwise it says why, and the lesson trains a short version
itself and says so.

Example:
    >>> save_model("03_fashion_smallcnn", model, {"mode": "full", "epochs": 10})
    >>> found = load_model("03_fashion_smallcnn", SmallCNN(), {"mode": "full"})
    >>> found.ok, found.message
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .paths import cache_dir


@dataclass
class CachedModel:
    """What ``load_model`` found: ``ok``, the ``model`` (loaded, or None), the stored
    ``settings`` and a ``message`` for the learner."""
    ok: bool
    model: object
    settings: dict = field(default_factory=dict)
    message: str = ""

    def __bool__(self) -> bool:
        return self.ok


def models_dir() -> Path:
    """Where cached models live: ``cache_dir()/models``."""
    return cache_dir() / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(name: str, model, settings: dict) -> Path:
    """Save ``model``'s state dict as ``name`` with the settings it was trained with.

    Written to a temporary file and renamed, so that an interrupted save leaves no
    half-written model behind. Returns the path of the ``.pt`` file.
    """
    import torch

    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path, meta = folder / f"{name}.pt", folder / f"{name}.json"
    tmp = path.with_suffix(".pt.tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, tmp)
    info = {"name": name, "settings": settings, "sha256": _sha256(tmp),
            "torch": torch.__version__, "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
    tmp.replace(path)
    meta.write_text(json.dumps(info, indent=1, sort_keys=True, default=str) + "\n")
    return path


def load_model(name: str, model, settings: dict | None = None) -> CachedModel:
    """Load the cached ``name`` into ``model`` if it is there, intact, and was trained
    with ``settings`` (every key given must have the value given).

    Never raises for a missing, corrupt or mismatched file: ``ok`` is False and the
    message says what was wrong and that the lesson will train its own.
    """
    import torch

    folder = models_dir()
    path, meta = folder / f"{name}.pt", folder / f"{name}.json"
    if not path.exists() or not meta.exists():
        return CachedModel(False, None, message=f"no cached {name} in {folder} (the "
                           "lesson that trains it has not saved one on this machine)")
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError) as err:
        return CachedModel(False, None, message=f"{meta} is unreadable ({err})")
    stored = info.get("settings", {})
    wrong = {k: (stored.get(k), v) for k, v in (settings or {}).items()
             if stored.get(k) != v}
    if wrong:
        said = ", ".join(f"{k}={got!r} (wanted {want!r})"
                         for k, (got, want) in wrong.items())
        return CachedModel(False, None, stored, f"cached {name} was trained with "
                           f"other settings: {said}")
    if _sha256(path) != info.get("sha256"):
        return CachedModel(False, None, stored, f"{path} does not match its SHA-256 "
                           "(a corrupt or partial file): delete it, or rerun the lesson "
                           "that saves it")
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError, OSError) as err:
        first = str(err).splitlines()[0]
        return CachedModel(False, None, stored, f"cached {name} does not fit this "
                           f"model ({first})")
    return CachedModel(True, model, stored, f"loaded {name} from {path} (saved "
                       f"{info.get('saved', '?')}, settings {stored})")
