"""``check(qid, answer, ...)``: the one call at the end of every exercise question."""
from __future__ import annotations

from .progress import save_result
from .registry import get_question
from .results import ERROR, CaseOutcome, QuestionResult
from .runner import run_question


def check(qid: str, *answers, **named) -> QuestionResult:
    """Run question ``qid``'s cases against your answer(s) and show what passed and what did not.

    Args:
        qid: the question id from its heading, e.g. ``"01.mse_loss"``.
        *answers: your function(s)/model(s)/values, in the order the question names them.
        **named: the same, by name.
    Returns:
        A ``QuestionResult`` (renders as HTML in Jupyter, as text elsewhere; ``.to_dict()`` for JSON).
    Example:
        >>> check("01.mse_loss", mse_loss)  # doctest: +SKIP
    """
    try:
        question = get_question(qid)
    except KeyError as exc:
        result = QuestionResult(qid, "unknown question", points=0.0)
        result.note = str(exc.args[0])
        result.cases = [CaseOutcome("question id", False, result.note, "Copy the id from the question's heading.", ERROR)]
        return result
    result = run_question(question, *answers, **named)
    save_result(result)
    return result
