"""Tests for the checks of lesson 00 (warm-up): the reference passes every case, each
typical mistake fails the case meant for it (with the hint naming that mistake), answers
in other styles pass, answers that compute nothing (or hard-code eps, or give lr as a
string) earn nothing, and no hint prints a solution line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.authoring.transforms import read_notebook
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import FAILED, NOT_IMPLEMENTED

from check_support import case_of, run, solution_expressions, stub

SOLUTION = Path(__file__).resolve().parent.parent / "solutions" / "00_warmup.ipynb"


# -------------------------------------------------------------------- reference answers
def add(a, b):
    return a + b


def mean(X):
    return X.sum(axis=0) / X.shape[0]  # (D,)


def normalize(X, eps=1e-5):
    x_bar = X.mean(dim=0, keepdim=True)  # (1, D)
    var = ((X - x_bar) ** 2).mean(dim=0, keepdim=True)  # (1, D)
    return (X - x_bar) / torch.sqrt(var + eps)  # (N, D)


REFERENCE = {"00.add": add, "00.mean": mean, "00.normalize": normalize, "00.lr": 0.5}


# ------------------------------------------------------------------------- other styles
def _normalize_var_unbiased_false(X, eps=1e-5):
    return (X - X.mean(0)) / torch.sqrt(X.var(0, unbiased=False) + eps)


def _normalize_float64(X, eps=1e-5):
    """Computes in float64 and returns float64, whatever X's dtype."""
    X = X.double()
    return (X - X.mean(0)) / (X.var(0, correction=0) + eps).sqrt()


def _normalize_functional(X, eps=1e-5):
    """torch.nn.functional.batch_norm without running statistics: the same formula."""
    return torch.nn.functional.batch_norm(X, None, None, training=True, eps=eps)


STYLES = [
    ("00.add", np.add, "np.add"),
    ("00.mean", lambda X: np.mean(X, axis=0), "np.mean"),
    ("00.mean", lambda X: np.einsum("nd->d", X) / len(X), "einsum"),
    ("00.normalize", _normalize_var_unbiased_false, "unbiased=False"),
    ("00.normalize", _normalize_float64, "float64"),
    ("00.normalize", _normalize_functional, "F.batch_norm"),
    ("00.lr", 1 / 2, "1 / 2"),
    ("00.lr", np.float64(0.5), "np.float64"),
    ("00.lr", torch.tensor(0.5), "a torch scalar"),
]


# --------------------------------------------------------------------- typical mistakes
def _normalize_unbiased(X, eps=1e-5):
    return (X - X.mean(dim=0)) / X.std(dim=0)  # the fixture's: unbiased std, no eps


def _normalize_hard_coded_eps(X, eps=1e-5):
    x_bar = X.mean(dim=0, keepdim=True)
    return (X - x_bar) / torch.sqrt(((X - x_bar) ** 2).mean(dim=0, keepdim=True) + 1e-5)


def _normalize_eps_outside(X, eps=1e-5):
    x_bar = X.mean(dim=0, keepdim=True)
    return (X - x_bar) / (((X - x_bar) ** 2).mean(dim=0, keepdim=True).sqrt() + eps)


def _normalize_rows(X, eps=1e-5):
    x_bar = X.mean(dim=1, keepdim=True)
    return (X - x_bar) / torch.sqrt(((X - x_bar) ** 2).mean(dim=1, keepdim=True) + eps)


def _normalize_global(X, eps=1e-5):
    return (X - X.mean()) / torch.sqrt(X.var(unbiased=False) + eps)


def _normalize_in_place(X, eps=1e-5):
    x_bar = X.mean(dim=0, keepdim=True)
    var = ((X - x_bar) ** 2).mean(dim=0, keepdim=True)
    X -= x_bar
    X /= torch.sqrt(var + eps)
    return X


def _normalize_numpy(X, eps=1e-5):
    X = X.numpy()
    return (X - X.mean(0)) / np.sqrt(X.var(0) + eps)


_ROWS = "divides by the number of rows"

# (question, wrong answer, the case it must fail, a word its hint or message holds)
MISTAKES = [
    ("00.add", lambda a, b: a - b, "adds two integers", "+"),
    ("00.add", lambda a, b: int(a + b), "adds two floats", "round"),
    ("00.add", lambda a, b: print(a + b), "adds two integers", "None"),
    ("00.mean", lambda X: X.sum(axis=0) / X.shape[1], _ROWS, "divided by D = 2"),
    ("00.mean", lambda X: X.sum(axis=0) / (X.shape[0] - 1), _ROWS, "N - 1"),
    ("00.mean", lambda X: X.sum(axis=0), _ROWS, "not divided by N"),
    ("00.mean", lambda X: X.mean(axis=1), "shape (D,)", "axis=0"),
    ("00.mean", lambda X: X.mean(), "shape (D,)", "axis=0"),
    ("00.normalize", _normalize_unbiased, "population variance", "N - 1"),
    ("00.normalize", _normalize_unbiased, "constant column", "eps"),
    ("00.normalize", _normalize_hard_coded_eps, "the eps it is given", "hard-coded"),
    ("00.normalize", _normalize_hard_coded_eps, "eps = 0.5", "not a fixed 1e-5"),
    ("00.normalize", _normalize_eps_outside, "inside the square root",
     "standard deviation + eps"),
    ("00.normalize", _normalize_rows, "each column (dim=0)", "each row"),
    ("00.normalize", _normalize_global, "each column (dim=0)", "whole batch"),
    ("00.normalize", _normalize_in_place, "leaves X unchanged", "In-place"),
    ("00.normalize", _normalize_numpy, "torch tensor", "not NumPy"),
    ("00.lr", 1.0, "from w = 0", "w after one step with lr = 1.0 is 6, expected 3"),
    ("00.lr", 1 / 6, "from w = 10", "any start"),
    ("00.lr", -0.5, "downhill", "negative lr"),
    ("00.lr", 2.0, "curvature itself", "smoothness constant L"),
]


# -------------------------------------------------------------------------------- tests
def test_lesson00_has_four_questions_with_kinds_and_core_cases():
    """Are the four warm-up questions registered, in notebook order, each with two or
    more core cases?"""
    questions = questions_for_lesson("00")
    assert [q.qid for q in questions] == ["00.add", "00.mean", "00.normalize", "00.lr"]
    for q in questions:
        assert sum(c.kind == "core" for c in q.cases) >= 2 and len(q.cases) >= 3, q.qid


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_reference_answer_passes_every_case(qid):
    """Does the reference answer score full marks?"""
    result = run(qid, REFERENCE[qid])
    assert [(c.name, c.message) for c in result.cases if not c.passed] == []
    assert result.score == result.possible


@pytest.mark.parametrize("qid, answer, style", STYLES,
                         ids=[f"{s[0]}-{s[2]}" for s in STYLES])
def test_correct_answers_in_other_styles_pass(qid, answer, style):
    """Does a correct answer written another way (np.mean, float64, F.batch_norm, 1 / 2)
    get full marks?"""
    result = run(qid, answer)
    assert [(c.name, c.message) for c in result.cases if not c.passed] == []


@pytest.mark.parametrize("qid, wrong, case_word, hint_word", MISTAKES,
                         ids=[f"{m[0]}-{m[2]}" for m in MISTAKES])
def test_typical_mistake_fails_its_case_with_its_hint(qid, wrong, case_word, hint_word):
    """Does this typical mistake fail the case written for it, with a hint that names
    the mistake?"""
    result = run(qid, wrong)
    case = case_of(result, next(c.name for c in result.cases if case_word in c.name))
    assert not case.passed, f"{case.name!r} passed for a wrong answer"
    assert hint_word in case.hint + case.message
    assert result.score < result.possible


@pytest.mark.parametrize("qid", ["00.add", "00.mean", "00.normalize"])
def test_stub_reports_not_implemented_yet(qid):
    """Does a stub raising NotImplementedError score 0, "not implemented yet"?"""
    result = run(qid, stub)
    assert result.score == 0 and result.status == NOT_IMPLEMENTED


@pytest.mark.parametrize("lr", ["0.5", None, True, [0.5], 0, 1])
def test_lr_that_is_not_the_right_number_scores_zero(lr):
    """Does lr = "0.5" (a string), None, True, a list, 0 or 1 score 0 (issue 9: "0.5"
    got 2/3)?"""
    result = run("00.lr", lr)
    assert result.score == 0
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        assert all(c.basic for c in result.cases)
        assert "should be a number" in str(result) or "is None" in str(result)


def test_normalize_with_eps_hard_coded_fails_the_eps_core_case():
    """Does a normalize that ignores its eps argument lose a core case (issue 9)?"""
    result = run("00.normalize", _normalize_hard_coded_eps)
    assert not case_of(result, "matches the reference with eps = 0.5").passed
    assert result.score < 0.5


def test_normalize_fixture_mistake_is_named_once_not_blamed_on_rows():
    """Does the unbiased std without eps fail the variance and eps cases, not dim=0?"""
    result = run("00.normalize", _normalize_unbiased)
    assert case_of(result, "normalizes each column").passed
    assert "contains NaN" in case_of(result, "a constant column").message
    assert result.score == 0


def test_normalize_in_place_keeps_partial_credit():
    """Does a normalize that computes the right values but changes X in place earn half
    (a property case fails)?"""
    result = run("00.normalize", _normalize_in_place)
    failed = [c.name for c in result.cases if not c.passed]
    assert failed == ["leaves X unchanged (returns a new tensor)"]
    assert result.score == 0.5


@pytest.mark.parametrize("qid, answer", [
    ("00.add", lambda a, b: a),
    ("00.add", lambda a, b: 0),
    ("00.mean", lambda X: np.zeros(X.shape[1])),
    ("00.mean", lambda X: X),
    ("00.normalize", lambda X, eps=1e-5: X.clone()),
    ("00.normalize", lambda X, eps=1e-5: torch.zeros_like(X)),
    ("00.normalize", lambda X, eps=1e-5: X - X.mean(0)),
])
def test_answers_that_do_not_do_the_work_score_zero(qid, answer):
    """Does an answer returning its input, zeros, or only centred data score 0?"""
    assert run(qid, answer).score == 0


def test_a_wrong_shape_is_a_basic_failure_reported_once():
    """Is a mean over the wrong axis a shape problem, shown once, hints withheld?"""
    result = run("00.mean", lambda X: X.mean(axis=1))
    failed = [c for c in result.cases if not c.passed]
    assert failed and all(c.basic for c in failed)
    assert not any(c.shows_hint for c in failed if c.kind != "property")
    assert str(result).count("Fix this first") == 1


# -------------------------------------------------------------------------------- hints
@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_no_hint_prints_a_solution_line(qid):
    """Does no hint of the question contain a solution line (or its expression)?"""
    expressions = solution_expressions(SOLUTION)[qid]
    question = next(q for q in questions_for_lesson("00") if q.qid == qid)
    hints = ["".join(c.hint.split()) for c in question.cases]
    assert [(h, e) for h in hints for e in expressions if e in h] == []


def test_lr_hints_do_not_give_the_number():
    """Do the hints of 00.lr point at the idea without saying 0.5 (or 1/2)?"""
    question = next(q for q in questions_for_lesson("00") if q.qid == "00.lr")
    for c in question.cases:
        assert not any(word in c.hint for word in ("0.5", "1/2", "1 / 2", "6 lr"))


def test_the_prefilled_answer_of_the_exercise_fails_naming_its_bug():
    """Does the add() that exercises/00_warmup.ipynb ships pre-filled (it prints, it
    does not return) score 0 as a failed answer, not a stub, with a message that names
    the missing return?"""

    exercise = SOLUTION.parent.parent / "exercises" / "00_warmup.ipynb"
    source = next(c.source for c in read_notebook(exercise).cells
                  if c.cell_type == "code" and c.source.startswith("def add("))
    scope: dict = {}
    exec(source, scope)
    result = run("00.add", scope["add"])
    assert result.score == 0 and result.status == FAILED
    assert "forget to `return`" in result.cases[0].message
