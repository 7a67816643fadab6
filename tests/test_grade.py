"""Functional tests of `course grade` on the broken submissions of lesson 00 in tests/submissions/.

All fixtures are graded by ONE `python -m course_utils grade` call (each notebook still gets its own
fresh kernel); the tests then read its JSON and CSV. Regenerating the fixtures: see tests/submissions/README.txt.
"""
import csv
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.grading.grade import SubmissionResult
from course_utils.grading.report import CSV_COLUMNS, to_text
from course_utils.grading.results import ERROR, FAILED, NOT_IMPLEMENTED, NOT_RUN, TIMEOUT, QuestionResult

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
GRADE_TIMEOUT = 90  # seconds per notebook: the working ones need ~5 s (more on a busy machine)
CELL_TIMEOUT = 20  # seconds per cell: the hanging cells are interrupted after this (importing torch
# on a busy 2-core machine can take 10 s)
QUESTIONS = ["00.add", "00.lr", "00.mean", "00.normalize"]



def course(*args, timeout=600):
    env = {**os.environ, "COURSE_SMOKE": "1"}
    return subprocess.run([sys.executable, "-m", "course_utils", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, submissions):
    """Grade the whole folder once: (exit status, {file name: result dict}, CSV rows)."""
    csv_path = tmp_path_factory.mktemp("grade") / "grades.csv"
    proc = course("grade", str(submissions), "--json", "--csv", str(csv_path), "--timeout", str(GRADE_TIMEOUT),
                  "--cell-timeout", str(CELL_TIMEOUT))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    results = {Path(r["path"]).name: r for r in data["results"]}
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return proc, results, rows


def questions(result) -> dict:
    return {q["id"]: q for q in result["questions"]}


def failing(result, qid) -> list:
    return [c for c in questions(result)[qid]["cases"] if not c["passed"]]


@pytest.mark.slow
def test_json_has_the_documented_shape(graded):
    """Does --json print {"results": [...]} with path, lesson, score, possible, error and questions/cases?"""
    _, results, _ = graded
    assert sorted(results) == sorted(p.name.removesuffix(".fixture") for p in SUBMISSIONS.glob("*.ipynb.fixture")), \
        "README.txt is not graded"
    for r in results.values():
        assert {"path", "lesson", "status", "score", "possible", "error", "questions"} <= set(r)
        assert isinstance(r["possible"], float) and r["status"] == ("not graded" if r["error"] else "graded")
        for q in r["questions"]:
            assert {"id", "passed", "score", "possible", "cases", "first_problem"} <= set(q)
            assert isinstance(q["possible"], float)
            assert all({"name", "passed", "message", "kind"} <= set(c) for c in q["cases"])
        if r["lesson"] == "00":
            assert sorted(questions(r)) == QUESTIONS and r["possible"] == 4


@pytest.mark.slow
def test_deleted_and_reordered_check_cells_change_nothing(graded):
    """Does a notebook with every check cell deleted (and answers reordered) still get full marks?"""
    r = graded[1]["00_warmup_nochecks.ipynb"]
    assert (r["score"], r["error"], r["cell_errors"]) == (4, None, [])


@pytest.mark.slow
def test_lesson_from_metadata_when_the_file_is_renamed(graded):
    """Is a renamed submission graded by the lesson in its metadata, and one with neither reported?"""
    assert graded[1]["submission_renamed.ipynb"]["score"] == 4
    r = graded[1]["unknown_lesson.ipynb"]
    assert r["lesson"] is None and r["questions"] == [] and "cannot tell which lesson" in r["error"]


@pytest.mark.slow
def test_wrong_answers_score_zero_with_messages_that_name_the_mistake(graded):
    """Does each typical mistake (a - b, 1/D, unbiased std without eps, lr = 1.0) fail every core case of
    its question (so it earns nothing) and get a message that names that mistake?"""
    r = graded[1]["00_warmup_wrong.ipynb"]
    assert r["error"] is None and r["score"] == 0
    q = questions(r)
    assert failing(r, "00.add")[0]["message"] == "Called: add(2, 3)\nadd(2, 3) is -1, expected 5."
    assert q["00.mean"]["first_problem"].endswith("returned the column sums divided by D = 2 (the number of "
                                                  "columns).")
    names = [c["name"] for c in failing(r, "00.normalize")]
    assert "uses the population variance (1/N), not torch.var's default 1/(N - 1)" in names
    assert "contains NaN or infinity" in next(c["message"] for c in failing(r, "00.normalize")
                                              if c["name"] == "a constant column becomes 0, not NaN")
    assert failing(r, "00.lr")[0]["message"].startswith("w after one step with lr = 1.0 is 6, expected 3")
    assert all(c["status"] == FAILED for q in r["questions"] for c in q["cases"] if not c["passed"])


@pytest.mark.slow
def test_crashing_answers_and_cells(graded):
    """Does an answer that raises fail with the exception and the learner's line, while cells that raise
    (even sys.exit) are listed and the notebook goes on?"""
    r = graded[1]["00_warmup_crash.ipynb"]
    assert r["error"] is None and r["score"] == 2
    assert [(e["ename"], e["evalue"]) for e in r["cell_errors"]] == [
        ("NameError", "name 'undefined_name' is not defined"), ("SystemExit", "1")]
    add_case = failing(r, "00.add")[0]
    assert add_case["status"] == ERROR
    assert add_case["message"] == ("Called: add(2, 3)\nIt raised ZeroDivisionError: division by zero\n"
                                   "at line 4 of your code: return total / 0")
    assert "It raised NameError: name 'torchh' is not defined" in failing(r, "00.normalize")[0]["message"]
    assert questions(r)["00.mean"]["passed"] and questions(r)["00.lr"]["passed"]


@pytest.mark.slow
def test_endless_answer_times_out_once(graded):
    """Does an answer that never returns fail its first case at the case limit, the question's other cases
    not run, the rest of the notebook passing?"""
    r = graded[1]["00_warmup_loop.ipynb"]
    assert r["error"] is None and r["score"] == 3
    cases = failing(r, "00.add")
    assert [c["status"] for c in cases] == [TIMEOUT, NOT_RUN, NOT_RUN]
    assert cases[0]["message"].startswith("add(2, 3) ran for more than 2 s, the time limit of this case.")


@pytest.mark.slow
def test_bare_except_in_a_retry_loop_times_out(graded):
    """Does an answer whose bare `except:` swallows the time limit still time out, quickly?"""
    r = graded[1]["00_warmup_bareexcept.ipynb"]
    assert r["error"] is None and r["score"] == 3 and r["seconds"] < GRADE_TIMEOUT
    assert failing(r, "00.add")[0]["status"] == TIMEOUT


@pytest.mark.slow
def test_sys_exit_in_an_answer_costs_only_its_cases(graded):
    """Does sys.exit() inside an answer fail the cases that reach it, with a message, and leave the rest of
    the notebook graded?"""
    r = graded[1]["00_warmup_sysexit.ipynb"]
    assert r["error"] is None and r["score"] == pytest.approx(3 + 2 / 3, abs=1e-3)
    case = failing(r, "00.add")[0]
    assert case["status"] == ERROR and "called sys.exit('stop'), which would stop the whole notebook" in case["message"]


@pytest.mark.slow
def test_hanging_cell_is_interrupted_and_the_rest_is_graded(graded):
    """Is a top-level cell that never ends interrupted at --cell-timeout, noted, and the notebook graded
    in full?"""
    r = graded[1]["00_warmup_hang.ipynb"]
    assert r["error"] is None and r["score"] == 4 and r["interrupted_cells"] == [18]
    assert r["notes"] == ["cell 18 ran past the cell time limit and was interrupted; the rest ran"]
    assert r["seconds"] < GRADE_TIMEOUT


@pytest.mark.slow
def test_hanging_demo_cell_costs_only_its_question(graded):
    """Does a demo cell that hangs on the learner's endless function cost that question only?"""
    r = graded[1]["00_warmup_demohang.ipynb"]
    assert r["error"] is None and r["score"] == 3 and r["interrupted_cells"] == [9]
    assert questions(r)["00.add"]["score"] == 0 and failing(r, "00.add")[0]["status"] == TIMEOUT


@pytest.mark.slow
def test_helper_module_next_to_the_notebook_is_named(graded):
    """Does an answer imported from a file next to the notebook say the notebook is graded alone, naming
    the cell and its exception?"""
    r = graded[1]["00_warmup_helper.ipynb"]
    assert r["error"] is None and r["score"] == 3
    note = questions(r)["00.add"]["note"]
    assert note.startswith("Not answered: `add` is not defined: cell 8, which defines it, raised "
                           "ModuleNotFoundError: No module named 'my_helpers'.")
    assert "graded alone" in note


@pytest.mark.slow
def test_trivial_answers_score_zero(graded):
    """Do answers that compute nothing (pass, zeros, the input, a number as a string) score 0?"""
    r = graded[1]["00_warmup_trivial.ipynb"]
    assert r["error"] is None and r["score"] == 0
    assert all(q["first_problem"] and not q["first_problem"].startswith("<") for q in r["questions"])


@pytest.mark.slow
def test_kernel_exit_is_reported(graded):
    """Is os._exit() in a cell reported as a dead kernel, scored 0, without stopping the batch?"""
    r = graded[1]["00_warmup_exit.ipynb"]
    assert r["error"].startswith("the kernel died while running cell 12") and r["score"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name, why", [
    ("00_warmup_corrupt.ipynb", "not a notebook: the file is not valid JSON (Unterminated string"),
    ("00_warmup_plaintext.ipynb", "not a notebook: the file is not valid JSON (Expecting value: line 1 column 1"),
])
def test_files_that_are_not_notebooks(graded, name, why):
    """Is a corrupt or non-JSON file reported as not a notebook, with its lesson's questions at 0?"""
    r = graded[1][name]
    assert r["error"].startswith(why) and r["lesson"] == "00" and r["score"] == 0 and r["possible"] == 4
    assert all(not q["passed"] for q in r["questions"])


@pytest.mark.slow
def test_faked_checks_outputs_and_patched_checker_change_nothing(graded):
    """Do a redefined check(), printed 'passed', stored outputs, a patched runner/registry, an import hook and a
    fake result file all fail to change the grade of wrong answers and stubs?"""
    r = graded[1]["00_warmup_faked.ipynb"]
    assert r["error"] is None and r["cell_errors"] == [] and r["score"] == 0
    q = questions(r)
    assert failing(r, "00.add")[0]["message"] == "Called: add(2, 3)\nadd(2, 3) is -1, expected 5."
    assert [q[i]["status"] for i in ("00.lr", "00.mean", "00.normalize")] == [NOT_IMPLEMENTED] * 3
    assert all(len(q[i]["cases"]) >= 3 for i in QUESTIONS), "the real cases ran, not the faked empty list"


@pytest.mark.slow
def test_csv_has_one_row_per_notebook_and_question(graded):
    """Does --csv write one row per notebook and question (one row for a notebook without a lesson)?"""
    _, results, rows = graded
    assert list(rows[0]) == CSV_COLUMNS
    n_lesson = sum(r["lesson"] == "00" for r in results.values())
    assert len(rows) == 4 * n_lesson + 1
    row = next(r for r in rows if r["path"].endswith("00_warmup_sysexit.ipynb") and r["question"] == "00.add")
    assert (row["status"], row["score"], row["cases_passed"], row["cases"], row["notebook_score"]) == \
        ("failed", "0.6667", "2", "3", "3.6667")
    assert row["note"].startswith("adds two integers: add(2, 3) called sys.exit('stop')")
    corrupt = [r for r in rows if r["path"].endswith("00_warmup_corrupt.ipynb")]
    assert {r["status"] for r in corrupt} == {"not graded"}


@pytest.mark.slow
def test_text_table_is_readable(graded):
    """Does the default text form show one line per notebook and the questions that did not pass?"""
    results = []
    for r in graded[1].values():
        sub = SubmissionResult(r["path"], r["lesson"], [QuestionResult.from_dict(q) for q in r["questions"]],
                               r["error"], r["cell_errors"])
        results.append(sub)
    text = to_text(sorted(results, key=lambda s: s.path))
    assert text.splitlines()[0].split() == ["NOTEBOOK", "LESSON", "SCORE", "STATUS"]
    lines = [line.split() for line in text.splitlines()]
    nochecks = [line for line in lines if line and line[0].endswith("submissions/00_warmup_nochecks.ipynb")]
    assert len(nochecks) == 1 and nochecks[0][1:] == ["00", "4/4", "4/4", "questions", "passed"]
    assert ["00.add", "0/1", "failed:", "adds", "two", "integers:", "add(2,", "3)", "is", "-1,", "expected", "5."] in lines
    assert max(len(line) for line in text.splitlines() if line.startswith("    ")) <= 150
    assert "not graded: not a notebook" in text
    assert not re.search(r"<[\w.]+ object at 0x|<function |NoneType: None|np\.float64\(", text)
    assert text.splitlines()[-1] == "16 notebook(s), 4 not graded (1 of them: lesson unknown); total 29.6667/60"


def test_unusable_arguments_exit_2_and_console_script_works():
    """Do a missing path, a bad timeout and a folder without notebooks exit 2 (via the `course` script)?"""
    script = Path(sys.executable).parent / "course"
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "course_utils"]
    run = lambda *a: subprocess.run([*exe, *a], capture_output=True, text=True, cwd=ROOT)  # noqa: E731
    p = run("grade", "no/such/file.ipynb")
    assert p.returncode == 2 and "no such file or folder: no/such/file.ipynb" in p.stderr
    p = run("grade", "exercises", "--timeout", "-3")
    assert p.returncode == 2 and "positive number of seconds" in p.stderr
    p = run("grade", "tests/golden/../../course_utils/authoring")
    assert p.returncode == 2 and "no notebooks" in p.stderr


def test_results_that_do_not_match_the_lessons_questions_are_rejected():
    """Are results from the kernel refused when their questions or cases differ from the registry's?"""
    from course_utils.grading.grade import _GradingFailed, _verified
    from course_utils.grading.registry import questions_for_lesson
    from course_utils.grading.runner import run_question

    qs = questions_for_lesson("00")
    honest = [run_question(q) for q in qs]
    assert _verified(honest, qs) == honest
    faked = [run_question(q) for q in qs]
    faked[0].cases = faked[0].cases[:1]
    with pytest.raises(_GradingFailed, match="do not match"):
        _verified(faked, qs)
    with pytest.raises(_GradingFailed):
        _verified(honest[1:], qs)
