"""Unit tests of course_utils.grading.runner, check and inkernel: every way an answer can go wrong."""
import json
import time

import pytest

from course_utils import check
from course_utils.grading import registry
from course_utils.grading.asserts import call, expect_close
from course_utils.grading.inkernel import grade_namespace, grade_question, grading_code
from course_utils.grading.registry import get_question, question
from course_utils.grading.results import ERROR, FAILED, MISSING, NOT_IMPLEMENTED, PASSED, TIMEOUT
from course_utils.grading.runner import run_question


@pytest.fixture(scope="module")
def square():
    """A scratch question '98.square' with two cases and a short time limit."""
    q = question("98.square", "Square a number", answers=["square"], timeout=0.5)

    @q.case("squares 3", hint="x * x")
    def _(square):
        expect_close(call(square, 3.0), 9.0, what="square(3.0)")

    @q.case("squares -2", hint="mind the sign")
    def _(square):
        expect_close(call(square, -2.0), 4.0, what="square(-2.0)")

    yield q
    del registry.REGISTRY["98.square"]


def statuses(result):
    return [c.status for c in result.cases]


def test_right_answer_passes(square):
    """Does a right answer pass every case?"""
    r = run_question(square, lambda x: x * x)
    assert r.passed and statuses(r) == [PASSED, PASSED] and r.score == 1.0


def test_wrong_answer_says_what_was_called_got_expected_and_hint(square):
    """Does a wrong answer fail with the call, what came back, what was expected, and the hint?"""
    r = run_question(square, lambda x: 2 * x)
    c = r.cases[0]
    assert c.status == FAILED and c.hint == "x * x"
    assert c.message == "Called: <lambda>(3.0)\nsquare(3.0) is 6, expected 9 (tolerance rtol=1e-05, atol=1e-08)."


def test_stub_says_not_implemented_yet(square):
    """Does an answer still raising NotImplementedError, or a one-line answer left as '...', say so?"""
    def stub(x):
        raise NotImplementedError()

    r = run_question(square, stub)
    assert statuses(r) == [NOT_IMPLEMENTED] * 2 and r.status == NOT_IMPLEMENTED
    assert r.cases[0].message.startswith("Not implemented yet (stub(3.0)).")
    r = run_question(square, ...)
    assert statuses(r) == [NOT_IMPLEMENTED] * 2 and "square is still `...`" in r.note


def test_crash_names_the_exception_and_the_learners_line(square):
    """Does an answer that raises report the case, the exception and the learner's own line?"""
    def crashing(x):
        y = x * x
        return y / 0

    r = run_question(square, crashing)
    assert statuses(r) == [ERROR, ERROR]
    lines = r.cases[0].message.splitlines()
    assert lines[:2] == ["Called: crashing(3.0)", "It raised ZeroDivisionError: float division by zero"]
    assert lines[2].startswith("at line ") and lines[2].endswith("test_grading_runner.py: return y / 0")


def test_slow_answer_times_out_and_the_process_lives_on(square):
    """Does an endless answer fail its case at the time limit, even behind a bare 'except Exception'?"""
    def endless(x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:
                pass

    start = time.monotonic()
    r = run_question(square, endless)
    assert statuses(r) == [TIMEOUT, TIMEOUT] and time.monotonic() - start < 3
    assert "endless(3.0) ran for more than 0.5 s" in r.cases[0].message
    assert run_question(square, lambda x: x * x).passed  # the process carries on


def test_missing_and_misnamed_answers(square):
    """Are a missing answer, an extra positional answer and an unknown name each reported, not raised?"""
    r = run_question(square)
    assert r.status == MISSING and "square is not defined" in r.note
    r = run_question(square, abs, abs)
    assert statuses(r) == [ERROR, ERROR] and "takes 1 answer(s)" in r.note
    r = run_question(square, sqr=abs)
    assert "does not take sqr" in r.note


def test_check_never_raises_and_knows_unknown_ids(square):
    """Does check() return a result for an unknown id and for a crashing answer instead of raising?"""
    r = check("98.no_such", abs)
    assert not r.passed and "no question '98.no_such'" in r.note
    assert check("98.square", lambda x: 1 / 0).status == FAILED
    assert check("98.square", square=lambda x: x ** 2).passed


def test_grading_pass_reads_answers_from_a_namespace(square, tmp_path):
    """Does the in-kernel grading pass grade every question of a lesson from a namespace and write JSON?"""
    out = tmp_path / "result.json"
    ns = {"add": lambda a, b: a + b, "mean": lambda X: X.mean(axis=0), "lr": 0.25, "print": None}
    grade_namespace("00", str(out), [], namespace=ns)
    data = json.loads(out.read_text())
    by_id = {q["id"]: q for q in data["questions"]}
    assert sorted(by_id) == ["00.add", "00.lr", "00.mean", "00.normalize"]
    assert by_id["00.add"]["passed"] and by_id["00.mean"]["passed"]
    assert by_id["00.lr"]["score"] == pytest.approx(2 / 3, abs=1e-4)
    assert by_id["00.normalize"]["status"] == MISSING


def test_never_defined_answer_behind_a_stub_cell_says_not_implemented():
    """When a cell stopped at NotImplementedError and the answer is undefined, is it 'not implemented yet'?"""
    r = grade_question(get_question("00.normalize"), {}, stub_cells=[14])
    assert r.status == NOT_IMPLEMENTED
    assert "`normalize` is not defined, because cell 14 stopped at `raise NotImplementedError()`" in r.note


def test_grading_code_compiles_and_forgets_patched_modules():
    """Is the grading cell valid Python that drops course_utils.grading modules before re-importing?"""
    src = grading_code("00", "/tmp/x.json", [3], "/pkg")
    compile(src, "grading", "exec")
    assert 'n.startswith("course_utils.grading")' in src and "_course_pkg.__path__ = ['/pkg']" in src
