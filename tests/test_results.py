"""Tests of course_utils.results.record."""
import math

import pytest

from course_utils.results import read_recorded, record


def test_record_prints_and_appends_when_benchmarking(tmp_path, monkeypatch, capsys):
    """Does record print the figure, and append it to COURSE_RESULTS_FILE under course bench?"""
    out = tmp_path / "figures.jsonl"
    monkeypatch.setenv("COURSE_RESULTS_FILE", str(out))
    assert record("test_accuracy", 0.5, unit="fraction") == 0.5
    record("test_accuracy", 0.75, unit="fraction")
    assert "test_accuracy = 0.5 fraction" in capsys.readouterr().out
    assert read_recorded(out) == {"test_accuracy": {"value": 0.75, "unit": "fraction"}}


def test_record_without_bench_writes_nothing(tmp_path, monkeypatch):
    """Outside course bench, does record leave no file behind?"""
    monkeypatch.delenv("COURSE_RESULTS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    record("x", 1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, value", [("", 1.0), ("bad name", 1.0), ("ok", math.nan), ("ok", math.inf)])
def test_record_rejects_bad_figures(name, value):
    """Are empty/odd names and non-finite values refused with a clear message?"""
    with pytest.raises(ValueError, match="record"):
        record(name, value)
