"""Tests of course_utils.authoring.solutions: `course solutions run [NN...] [--write]`."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.authoring.solutions import PUBLISH_DIR, run_solutions, select_solutions, solution_ok
from course_utils.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_lessons_are_selected_by_number():
    """Are solutions chosen by lesson number ('0' and '00' alike), and all of them by default?"""
    assert [p.name for p in select_solutions(["0"])] == ["00_warmup.ipynb"]
    assert select_solutions(["00"]) == select_solutions(["0"])
    assert len(select_solutions()) == len(list((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")))


@pytest.mark.parametrize("args", [["abc"], ["42"]])
def test_unusable_lessons_exit_2(args, capsys):
    """Do a lesson that is not a number, or has no solution notebook, exit 2 without starting a kernel?"""
    assert main(["solutions", "run", *args]) == 2


@pytest.mark.slow
def test_run_with_write_publishes_outputs_outside_solutions():
    """Does `course solutions run 00 --write` pass and store the executed notebook in _build/solutions/,
    leaving the committed (output-free) solutions/ untouched?"""
    source = ROOT / "solutions" / "00_warmup.ipynb"
    before = source.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "course_utils", "solutions", "run", "00", "--write"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok   solutions/00_warmup.ipynb: 4/4 in ")
    assert source.read_bytes() == before
    published = nbformat.read(ROOT / PUBLISH_DIR / "00_warmup.ipynb", as_version=4)
    checks = [c for c in published.cells if c.cell_type == "code" and c.source.startswith("check(")]
    assert len(checks) == 4 and all("passed" in str(c.outputs) for c in checks)


@pytest.mark.slow
def test_a_solution_that_fails_a_question_fails_the_run(tmp_path):
    """Is a solution notebook that misses a point reported as not ok (so the command exits 1)?"""
    (tmp_path / "solutions").mkdir()
    shutil.copyfile(ROOT / "tests" / "submissions" / "00_warmup_wrong.ipynb.fixture", tmp_path / "solutions" / "00_warmup.ipynb")
    results = run_solutions(["00"], solutions_dir=tmp_path / "solutions", publish_dir=tmp_path / "out", write=True)
    assert len(results) == 1 and not solution_ok(results[0]) and results[0].score == 0  # every core case fails
    assert (tmp_path / "out" / "00_warmup.ipynb").exists()
