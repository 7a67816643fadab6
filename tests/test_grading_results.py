"""Unit tests of course_utils.grading.results: scores, statuses and the three renderings."""
import json

from course_utils.grading.results import (ERROR, FAILED, MISSING, NOT_IMPLEMENTED, PASSED, TIMEOUT, CaseOutcome,
                                          QuestionResult)


def _result(*cases, points=2.0, note=""):
    return QuestionResult("01.mse_loss", "Mean squared error", list(cases), points, note)


def test_score_is_points_times_fraction_of_cases_passed():
    """Is the score points x (cases passed / cases), and 0 for a question with no case?"""
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
