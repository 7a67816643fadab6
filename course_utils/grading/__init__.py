"""Self-grading: ``check`` for learners, the registry and assertions for check authors."""
from .asserts import CheckFailure, call
from .check import check
from .registry import question
from .results import CaseOutcome, QuestionResult

__all__ = ["check", "call", "question", "CheckFailure", "CaseOutcome", "QuestionResult"]
