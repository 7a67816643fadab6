"""Unit tests of course_utils.grading.results: scores, statuses and the three renderings."""
import json

from course_utils.grading.results import (ERROR, FAILED, MISSING, NOT_IMPLEMENTED, PASSED, TIMEOUT, CaseOutcome,
                                          QuestionResult)


def _result(*cases, points=2.0, note=""):
    return QuestionResult("01.mse_loss", "Mean squared error", list(cases), points, note)


def test_score_is_points_times_fraction_of_core_cases_passed():
    """Is the score points x (core cases passed / core cases), and 0 for a question with no case?"""
    r = _result(CaseOutcome("a", True), CaseOutcome("b", False, "wrong", status=FAILED), CaseOutcome("c", True))
    assert r.score == round(2.0 * 2 / 3, 4) and r.possible == 2.0 and not r.passed
    assert _result().score == 0.0 and not _result().passed


def test_status_says_passed_not_implemented_missing_or_failed():
    """Does the status tell apart a pass, a stub, a never-answered question and a wrong answer?"""
    assert _result(CaseOutcome("a", True)).status == PASSED
    assert _result(CaseOutcome("a", False, status=NOT_IMPLEMENTED), CaseOutcome("b", True)).status == NOT_IMPLEMENTED
    assert _result(CaseOutcome("a", False, status=MISSING)).status == MISSING
    assert _result(CaseOutcome("a", False, status=TIMEOUT)).status == FAILED
    assert "not answered" in _result(CaseOutcome("a", False, status=MISSING)).summary()


def test_dict_round_trip_and_json():
    """Does to_dict carry id, passed, score, possible and cases (name, passed, message), and come back whole?"""
    r = _result(CaseOutcome("a", True), CaseOutcome("b", False, "got 1\nexpected 2", "use the mean", ERROR), note="n")
    d = json.loads(json.dumps(r.to_dict()))
    assert {"id", "passed", "score", "possible", "cases"} <= set(d)
    assert {"name", "passed", "message"} <= set(d["cases"][1])
    back = QuestionResult.from_dict(d)
    assert back == r and back.to_dict() == r.to_dict()


def test_text_shows_failures_with_message_and_hint():
    """Does the text form list every case and, for a failing one, its message lines and the hint?"""
    r = _result(CaseOutcome("averages over the batch", True),
                CaseOutcome("divides by N", False, "Called: f(1)\ngot 2, expected 1", "Use the mean.", FAILED))
    text = str(r)
    assert text.splitlines()[0].startswith("FAIL 01.mse_loss Mean squared error: not yet (1/2 cases")
    assert "[ok  ] averages over the batch" in text and "[FAIL] divides by N" in text
    assert "         got 2, expected 1" in text and "Hint: Use the mean." in text


def test_html_is_escaped_and_deterministic():
    """Is learner text HTML-escaped, and does the same result always give the same bytes?"""
    evil = CaseOutcome("<b>case</b>", False, "<script>alert(1)</script> & more", "<i>hint</i>", FAILED)
    html1 = _result(evil)._repr_html_()
    assert "<script>" not in html1 and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html1
    assert "<b>case</b>" not in html1 and "&lt;i&gt;hint&lt;/i&gt;" in html1
    assert html1 == _result(evil)._repr_html_() == QuestionResult.from_dict(_result(evil).to_dict())._repr_html_()


def test_passing_result_lists_the_cases_that_passed():
    """Does a passing check show which cases passed (and no hint)?"""
    r = _result(CaseOutcome("shape", True), CaseOutcome("values", True))
    html = r._repr_html_()
    assert "shape" in html and "values" in html and "Hint" not in html
    assert str(r).startswith("PASS ") and "(2/2 cases, 2/2 points)" in str(r)


def test_credit_needs_core_cases_and_a_failed_other_case_halves_it():
    """Do property and mistake cases earn nothing alone, core cases share the points, and does a failed
    property or mistake case halve what the core cases earned?"""
    core_ok, core_bad = CaseOutcome("v1", True, kind="core"), CaseOutcome("v2", False, "off", kind="core")
    prop_ok, prop_bad = CaseOutcome("shape", True, kind="property"), CaseOutcome("inplace", False, kind="property")
    assert _result(CaseOutcome("v", False, kind="core"), prop_ok, CaseOutcome("m", True, kind="mistake")).score == 0
    assert _result(prop_ok, CaseOutcome("m", True, kind="mistake")).score == 0  # no core case at all
    assert _result(core_ok, core_bad, prop_ok).score == 1.0  # 2 points x 1/2
    assert _result(core_ok, core_bad, prop_bad).score == 0.5  # halved
    assert _result(core_ok, CaseOutcome("v3", True, kind="core"), prop_bad).score == 1.0
    assert _result(core_ok, CaseOutcome("v3", True, kind="core"), prop_ok).score == 2.0


def test_a_forbidden_library_call_scores_zero():
    """Does a 'from scratch' answer that called the library score 0, whatever else passed?"""
    from course_utils.grading.results import FORBIDDEN

    r = _result(CaseOutcome("v1", True), CaseOutcome("v2", False, "used F.conv2d", status=FORBIDDEN, basic=True))
    assert r.score == 0 and r.status == FORBIDDEN and "not answered from scratch" in r.summary()


def test_a_basic_failure_hides_the_hint_and_is_shown_once():
    """Is a None / crash reported as that, once, with 'fix this first', and without the mistakes' hints,
    while a property case keeps its own hint?"""
    from course_utils.grading.results import FIX_FIRST

    r = _result(CaseOutcome("sign", False, "Called: f(1)\nf(1) is None: did you forget to `return` it?",
                            "Subtract the gradient.", FAILED, "mistake", True),
                CaseOutcome("scale", False, "Called: f(2)\nf(1) is None: did you forget to `return` it?",
                            "Multiply by lr.", FAILED, "core", True),
                CaseOutcome("shape", False, "has shape (2,), expected (3,)", "Sum over axis 0.", FAILED,
                            "property", True, "shape"))
    text = str(r)
    assert "Subtract the gradient" not in text and "Multiply by lr" not in text
    assert "Hint: Sum over axis 0." in text
    assert text.count("did you forget") == 1 and FIX_FIRST in text
    assert 'The same problem as in "sign" above.' in text
    assert "Subtract the gradient" not in r._repr_html_() and FIX_FIRST in r._repr_html_()
    assert r.first_problem() == "sign: f(1) is None: did you forget to `return` it?"


def test_possible_is_always_a_float():
    """Is `possible` a float whether the points were given as an int or read back from JSON?"""
    r = QuestionResult("00.add", "Add", [CaseOutcome("a", True)], 1)
    assert isinstance(r.possible, float) and isinstance(QuestionResult.from_dict(r.to_dict()).possible, float)
