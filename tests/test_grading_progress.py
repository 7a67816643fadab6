"""Unit tests of course_utils.grading.progress: the latest result of every question on this machine."""
import json

from course_utils import check, progress
from course_utils.grading.progress import progress_file


def add(a, b):
    return a + b


def test_progress_lists_every_question_and_remembers_the_latest_check():
    """Does progress() list every registered question, 'not checked yet' at first, then the latest result?"""
    p = progress()
    ids = [r["id"] for r in p.rows]
    assert ids == sorted(ids) and {"00.add", "00.mean", "00.normalize", "00.lr"} <= set(ids)
    assert all(r["status"] == "" for r in p.rows) and "not checked yet" in str(p)
    check("00.add", lambda a, b: a - b)
    check("00.add", add)
    check("00.lr", 1.0)
    rows = {r["id"]: r for r in progress().rows}
    assert rows["00.add"]["status"] == "passed" and rows["00.add"]["score"] == 1.0
    assert rows["00.lr"]["status"] == "failed" and 0 < rows["00.lr"]["score"] < 1
    text = str(progress())
    assert "00.add" in text and "passed" in text and "not yet" in text
    saved = json.loads(progress_file().read_text())
    assert saved["00.add"] == {"possible": 1.0, "score": 1.0, "status": "passed"}


def test_progress_html_is_escaped_and_deterministic():
    """Is the HTML table of progress the same bytes twice, with every question in it?"""
    check("00.add", add)
    html = progress()._repr_html_()
    assert html == progress()._repr_html_()
    assert "<code>00.add</code>" in html and "<code>00.normalize</code>" in html and "<script" not in html


def test_corrupt_progress_file_is_ignored(monkeypatch):
    """Does a corrupt progress file give 'not checked yet' instead of an error, and COURSE_NO_PROGRESS stop saving?"""
    progress_file().parent.mkdir(parents=True, exist_ok=True)
    progress_file().write_text("[1, 2")
    assert all(r["status"] == "" for r in progress().rows)
    monkeypatch.setenv("COURSE_NO_PROGRESS", "1")
    check("00.add", add)
    assert progress_file().read_text() == "[1, 2"


def test_course_progress_command_prints_the_table(capsys):
    """Does 'course progress' print the same table in a terminal?"""
    from course_utils.cli import main

    check("00.add", add)
    assert main(["progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("QUESTION") and "00.add" in out and "questions passed" in out
