"""Tests of course bench: runs notebooks headless and writes results.json, RESULTS.md and the README table."""
import json

import nbformat
import pytest

from course_utils import bench


def _lesson(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow
def test_bench_runs_notebooks_and_records_figures(tmp_path):
    """Does course bench execute each lesson in a fresh kernel, collect record()s, mode and time,
    report a failing notebook as an error, and keep the README's results in sync (a smoke run by
    its wall time only)?"""
    (tmp_path / "notebooks").mkdir()
    _lesson(tmp_path / "notebooks" / "01_ok.ipynb",
            "import os\nfrom course_utils import record, smoke_mode\n"
            "record('answer', 42 if smoke_mode() else 43, unit='units')")
    _lesson(tmp_path / "notebooks" / "02_broken.ipynb", "raise RuntimeError('boom')")
    (tmp_path / "README.md").write_text(f"intro\n{bench.README_START}\nold\n{bench.README_END}\noutro\n")

    from course_utils.cli import main

    status = main(["bench", "--root", str(tmp_path), "--timeout", "120"])
    assert status == 1  # one notebook failed
    runs = json.loads((tmp_path / "benchmarks" / "results.json").read_text())["runs"]
    by_lesson = {r["lesson"]: r for r in runs}
    assert by_lesson["01"]["status"] == "ok" and by_lesson["01"]["mode"] == "smoke"
    assert by_lesson["01"]["figures"] == {"answer": {"value": 42.0, "unit": "units"}}
    assert by_lesson["01"]["device"] == "cpu" and "cores" in by_lesson["01"]["machine"]
    assert by_lesson["02"]["status"] == "error" and "boom" in by_lesson["02"]["error"]
    readme = (tmp_path / "README.md").read_text()
    assert "**Smoke runs**" in readme and "| 01 | cpu |" in readme and "old" not in readme
    assert "| 02 | cpu |" in readme and "error: " in readme and "boom" in readme
    assert "42" not in readme and "answer" not in readme  # smoke-mode figures are not results
    assert readme.startswith("intro") and readme.endswith("outro\n")


def test_merge_replaces_same_notebook_mode_and_device():
    """Does a new run replace the old one of the same lesson, mode and device, and keep others?"""
    old = [{"notebook": "a", "mode": "full", "device": "cpu", "v": 1},
           {"notebook": "a", "mode": "full", "device": "cuda", "v": 2}]
    new = [{"notebook": "a", "mode": "full", "device": "cpu", "v": 3}]
    merged = bench.merge_runs(old, new)
    assert sorted(r["v"] for r in merged) == [2, 3]


def test_markdown_table_empty_says_how_to_fill_it():
    """With no runs, does the table tell the reader how to produce figures?"""
    assert "course bench --full" in bench.markdown_table([])


@pytest.mark.slow
def test_bench_saves_executed_notebooks_with_outputs(tmp_path):
    """Does --save-executed write each executed notebook with its outputs, figures included,
    a failing one too (showing the error), without touching the lesson notebooks themselves?"""
    (tmp_path / "notebooks").mkdir()
    _lesson(tmp_path / "notebooks" / "01_ok.ipynb",
            "print('epoch 1/1')\nimport matplotlib.pyplot as plt\nplt.plot([0, 1])")
    _lesson(tmp_path / "notebooks" / "02_broken.ipynb", "raise RuntimeError('boom')")
    from course_utils.cli import main

    out = tmp_path / "executed"
    status = main(["bench", "--root", str(tmp_path), "--timeout", "120", "--no-write",
                   "--save-executed", str(out)])
    assert status == 1
    ok = nbformat.read(out / "01_ok.ipynb", as_version=4)
    assert "epoch 1/1" in ok.cells[0].outputs[0]["text"]
    kinds = [k for o in ok.cells[0].outputs for k in o.get("data", {})]
    assert "image/png" in kinds, "the saved notebook lost its figure"
    broken = nbformat.read(out / "02_broken.ipynb", as_version=4)
    assert broken.cells[0].outputs[0]["ename"] == "RuntimeError"
    source = nbformat.read(tmp_path / "notebooks" / "01_ok.ipynb", as_version=4)
    assert not source.cells[0].get("outputs")
