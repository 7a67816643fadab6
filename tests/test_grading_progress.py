"""Unit tests of course_utils.grading.progress: the latest result of every question on this machine."""
import json

from course_utils import check, progress
from course_utils.grading.progress import progress_file


def add(a, b):
    return a + b


def test_progress_lists_every_question_in_notebook_order_with_best_and_latest():
    """Does progress() list every question in the order of its notebook, 'not checked yet' at first,
    then the best and the latest result, so that a wrong answer tried after a pass erases nothing?"""
    from course_utils.grading.registry import load_all, ordered

    p = progress()
    ids = [r["id"] for r in p.rows]
    assert ids == [q.qid for q in ordered(load_all().values())]
    assert ids[:4] == ["00.add", "00.mean", "00.normalize", "00.lr"]  # the warm-up's order
    assert all(r["status"] == "" for r in p.rows) and "not checked yet" in str(p)
    check("00.add", add)
    check("00.add", lambda a, b: a - b)  # the warm-up asks for a wrong answer on purpose
    check("00.lr", 1.0)
    rows = {r["id"]: r for r in progress().rows}
    assert rows["00.add"]["best_status"] == "passed" and rows["00.add"]["best_score"] == 1.0
    assert rows["00.add"]["status"] == "failed" and rows["00.add"]["score"] == 0.0
    assert rows["00.lr"]["status"] == "failed" and rows["00.lr"]["score"] == 0.0
    text = str(progress())
    assert "passed before; latest: not yet" in text and "1 of " in text
    saved = json.loads(progress_file().read_text())
    assert saved["00.add"] == {"possible": 1.0, "score": 0.0, "status": "failed", "best_score": 1.0,
                               "best_status": "passed"}
    check("00.add", add)
    assert {r["id"]: r for r in progress().rows}["00.add"]["status"] == "passed"


def test_progress_titles_are_those_of_the_notebooks():
    """Does every question's title in progress() match its heading in the exercise notebook?"""
    import re
    from pathlib import Path

    from course_utils.authoring.transforms import read_notebook

    heading = re.compile(r"^#{2,4} Question \d+ · `(\d\d\.[a-z][a-z0-9_]*)` — (.+)$", re.M)
    titles = {}
    for path in sorted((Path(__file__).resolve().parent.parent / "exercises").glob("*.ipynb")):
        for cell in read_notebook(path).cells:
            if cell.cell_type == "markdown":
                titles.update(dict(heading.findall(cell.source)))
    shown = {r["id"]: r["title"] for r in progress().rows}
    assert {q: t.strip() for q, t in titles.items()} == shown


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
