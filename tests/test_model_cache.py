"""Tests of course_utils.model_cache: a model saved by one lesson, reused by another."""
import json

import pytest
import torch
from torch import nn

from course_utils import model_cache


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    return tmp_path / "models"


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_round_trip(cache):
    """Does a saved model come back with the same weights and settings?"""
    saved = _model(0)
    path = model_cache.save_model("m", saved, {"mode": "full", "epochs": 3})
    assert path == cache / "m.pt" and (cache / "m.json").exists()
    found = model_cache.load_model("m", _model(1), {"mode": "full"})
    assert found and found.settings == {"mode": "full", "epochs": 3}
    for a, b in zip(saved.parameters(), found.model.parameters()):
        assert torch.equal(a, b)
    assert "loaded m" in found.message


def test_missing(cache):
    """Is a missing model a clear 'no' rather than an error?"""
    found = model_cache.load_model("absent", _model())
    assert not found and found.model is None and "no cached absent" in found.message


def test_other_settings_refused(cache):
    """Is a model trained with other settings refused, naming the setting?"""
    model_cache.save_model("m", _model(), {"mode": "smoke"})
    found = model_cache.load_model("m", _model(), {"mode": "full"})
    assert not found and "mode='smoke' (wanted 'full')" in found.message


def test_corrupt_file_refused(cache):
    """Is a file that no longer matches its SHA-256 refused, saying what to do?"""
    model_cache.save_model("m", _model(), {"mode": "full"})
    with open(cache / "m.pt", "ab") as f:
        f.write(b"x")
    found = model_cache.load_model("m", _model(), {"mode": "full"})
    assert not found and "SHA-256" in found.message and "delete it" in found.message


def test_wrong_architecture_and_bad_json_refused(cache):
    """Is a model of another shape, or unreadable metadata, refused without raising?"""
    model_cache.save_model("m", _model(), {})
    found = model_cache.load_model("m", nn.Linear(4, 2))
    assert not found and "does not fit this model" in found.message
    (cache / "m.json").write_text("{not json")
    assert "unreadable" in model_cache.load_model("m", _model()).message


def test_metadata_records_versions(cache):
    """Does the metadata say which PyTorch saved the model, and when?"""
    model_cache.save_model("m", _model(), {"a": 1})
    info = json.loads((cache / "m.json").read_text())
    assert info["torch"] == torch.__version__ and info["saved"]
