"""Unit tests of course_utils.grading.runner, check and inkernel: every way an answer can go wrong."""
import json
import time

import pytest

from course_utils import check
from course_utils.grading import registry
from course_utils.grading.asserts import call, expect_close
from course_utils.grading.inkernel import grade_namespace, grade_question, grading_code
from course_utils.grading.registry import get_question, question
from course_utils.grading.results import ERROR, FAILED, MISSING, NOT_IMPLEMENTED, NOT_RUN, PASSED, TIMEOUT
from course_utils.grading.runner import run_question


@pytest.fixture(scope="module")
def square():
    """A scratch question '98.square' with two cases and a short time limit."""
    q = question("98.square", "Square a number", answers=["square"], timeout=0.5)

    @q.case("squares 3", hint="x * x", kind="core")
    def _(square):
        expect_close(call(square, 3.0), 9.0, what="square(3.0)")

    @q.case("squares -2", hint="mind the sign", kind="core")
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
    assert c.message == ("Called: <lambda>(3.0)\nsquare(3.0) is 6, expected 9 "
                         "(off by 3; tolerance rtol=1e-05, atol=1e-08).")


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
    assert statuses(r) == [TIMEOUT, NOT_RUN] and time.monotonic() - start < 2
    assert "endless(3.0) ran for more than 0.5 s" in r.cases[0].message
    assert "Not run: an earlier case ran out of time." in r.cases[1].message
    assert run_question(square, lambda x: x * x).passed  # the process carries on


def test_a_bare_except_in_a_retry_loop_cannot_keep_a_case_alive(square):
    """Does an endless retry loop behind a bare `except:` (which catches the time-out itself) still time
    out, and so does a finite one that swallows the first alarm and then returns a right answer?"""
    def stubborn(x):
        while True:
            try:
                time.sleep(0.01)
            except:  # noqa: E722 - the learner's bare except
                pass

    def swallows_once(x):
        try:
            time.sleep(5)
        except:  # noqa: E722
            pass
        return x * x

    start = time.monotonic()
    r = run_question(square, stubborn)
    assert statuses(r) == [TIMEOUT, NOT_RUN] and time.monotonic() - start < 4
    r = run_question(square, swallows_once)
    assert r.cases[0].status == TIMEOUT and r.score == 0
    assert run_question(square, lambda x: x * x).passed
    import sys
    assert sys.gettrace() is None or "coverage" in type(sys.gettrace()).__module__


def test_sys_exit_in_an_answer_is_a_failed_case(square):
    """Does sys.exit() inside an answer fail its case with a message, instead of escaping check()?"""
    import sys

    r = run_question(square, lambda x: sys.exit(3))
    assert statuses(r) == [ERROR, ERROR] and r.score == 0
    assert "called sys.exit(3), which would stop the whole notebook" in r.cases[0].message
    assert check("98.square", lambda x: sys.exit()).status == FAILED


def test_checker_conversion_of_none_is_not_shown_as_a_crash():
    """Does float(None) in a check, on what the answer returned, say "returned None", not "It raised"?"""
    q = question("98.half", "Half", answers=["half"], timeout=1)

    @q.case("halves 4", kind="core")
    def _(half):
        got = call(half, 4.0)
        assert float(got) == 2.0

    try:
        r = run_question(q, lambda x: None)
        assert r.cases[0].message.startswith("<lambda>(4.0) returned None: is there a `return`")
        assert "It raised" not in r.cases[0].message
    finally:
        del registry.REGISTRY["98.half"]


def test_called_names_the_call_that_failed_not_the_last():
    """When a case calls the answer several times, does "Called:" name the call whose result failed?"""
    q = question("98.triple", "Triple", answers=["triple"], timeout=1)

    @q.case("triples 1, 2 and 3", kind="core")
    def _(triple):
        outs = [call(triple, x) for x in (1.0, 2.0, 3.0)]
        for x, got in zip((1.0, 2.0, 3.0), outs):
            expect_close(got, 3 * x, what=f"triple({x})")

    try:
        r = run_question(q, lambda x: 3 * x if x != 2.0 else 5.0)
        assert r.cases[0].message.splitlines()[0] == "Called: <lambda>(2.0)"
    finally:
        del registry.REGISTRY["98.triple"]


def test_a_forbidden_library_op_counts_as_not_answered():
    """Does a 'from scratch' question fail an answer that calls the library op (however it is reached),
    and pass one that does the work itself?"""
    import torch
    import torch.nn.functional as F

    from course_utils.grading.results import FORBIDDEN

    q = question("98.conv", "Convolution from scratch", answers=["conv"], timeout=5, forbid=["convolution"])
    x, w = torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3)

    @q.case("matches F.conv2d", kind="core")
    def _(conv):
        expect_close(call(conv, x, w), F.conv2d(x, w), rtol=1e-4, atol=1e-5)

    @q.case("matches again", kind="core")
    def _(conv):
        expect_close(call(conv, x, w), F.conv2d(x, w), rtol=1e-4, atol=1e-5)

    def by_hand(x, w):
        cols = F.unfold(x, 3)  # (1, 9, 9)
        return (w.view(1, -1) @ cols).view(1, 1, 3, 3)

    try:
        for cheat in (F.conv2d, torch.conv2d, lambda x, w: torch.nn.Conv2d(1, 1, 3, bias=False)(x)):
            r = run_question(q, cheat)
            assert r.status == FORBIDDEN and r.score == 0, r
            assert "write it yourself, from scratch" in r.cases[0].message
        assert run_question(q, by_hand).passed
    finally:
        del registry.REGISTRY["98.conv"]


def test_keras_style_ansi_codes_are_stripped(square):
    """Does an exception message with ANSI colour codes reach the learner without them?"""
    def coloured(x):
        raise ValueError("\x1b[1mInput 0\x1b[0m is incompatible")

    r = run_question(square, coloured)
    assert "\x1b" not in r.cases[0].message and "Input 0 is incompatible" in r.cases[0].message


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
    assert by_id["00.lr"]["score"] == 0  # 0.25 is a number, but not the right one
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


def test_running_a_question_warms_up_torch_optimizers_once():
    """Is the first optimizer's import of torch._dynamo done before any case's time limit
    starts (so that a limit cannot interrupt it halfway)?"""
    import sys

    import torch  # noqa: F401 - a lesson that uses torch has it loaded
    from course_utils.grading import forbid

    forbid._OPTIMIZERS_WARM.clear()
    forbid.warm_up_optimizers()
    assert forbid._OPTIMIZERS_WARM == [True]
    assert "torch._dynamo" in sys.modules
