"""The registry of questions and their cases: plain functions registered with decorators.

A lesson's checks live in ``course_utils/grading/checks/lessonNN/``, one module per question
(a small lesson may keep one ``lessonNN.py``)::

    q = question("01.mse_loss", "Mean squared error", answers=["mse_loss"])

    @q.case("averages over the batch (1/N)", hint="Use the mean, not the sum.")
    def _(mse_loss):
        got = call(mse_loss, np.array([1.0, 2.0]), np.array([1.0, 4.0]))
        expect_close(got, 2.0)

Each case receives the learner's objects as keyword arguments named by ``answers``; it passes by
returning, and fails by raising ``CheckFailure`` (see ``asserts``). Learner exceptions, stubs that
still raise ``NotImplementedError`` and time-outs are turned into messages by ``runner``.

A case is of one of three kinds (``kind=``), and only core cases earn credit (``results.score``):

- ``"core"``: the answer's values against an oracle on one input. A question has several, on
  different inputs, and no trivial answer (None, zeros, the input, a constant) passes one.
- ``"mistake"`` (the default): a detector of one typical mistake, whose hint names it. It sharpens
  the feedback; it earns nothing, and a failure halves what the core cases earned.
- ``"property"``: shape, dtype, no change in place, no NaN. Feedback as for ``"mistake"``.

``forbid=`` names the library operations (ATen op names, e.g. ``"convolution"``) a "from scratch"
question asks the learner to write themselves: calling one inside the answer fails every case with
a message that says so.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Callable

QID_RE = re.compile(r"^(\d\d)\.[a-z][a-z0-9_]*$")
CASE_KINDS = ("core", "mistake", "property")


@dataclass
class Case:
    """One case of a question: a named function with a hint shown when it fails."""

    name: str
    fn: Callable
    hint: str = ""
    timeout: float | None = None  # seconds; None: the question's
    kind: str = "mistake"  # one of CASE_KINDS


@dataclass
class Question:
    """A graded question: its id ("NN.slug"), title, the learner names it checks, and its cases."""

    qid: str
    title: str
    answers: list[str]
    points: float = 1.0
    timeout: float = 20.0  # seconds per case
    cases: list[Case] = field(default_factory=list)
    forbid: tuple[str, ...] = ()  # ATen ops the answer must not call ("from scratch" questions)
    order: int = 0  # registration order: the order of the questions in the notebook

    @property
    def lesson(self) -> str:
        return self.qid.split(".", 1)[0]

    @property
    def core_cases(self) -> list[Case]:
        return [c for c in self.cases if c.kind == "core"]

    def case(self, name: str, hint: str = "", timeout: float | None = None, kind: str = "mistake"):
        """Decorator: register a case of this question (``kind``: "core", "mistake", "property")."""
        if kind not in CASE_KINDS:
            raise ValueError(f"{self.qid}: case kind {kind!r} is not one of {CASE_KINDS}")

        def register(fn: Callable) -> Callable:
            if any(c.name == name for c in self.cases):
                raise ValueError(f"{self.qid}: two cases named {name!r}")
            self.cases.append(Case(name, fn, hint, timeout, kind))
            return fn

        return register


REGISTRY: dict[str, Question] = {}


def question(qid: str, title: str, answers: list[str] | tuple[str, ...], points: float = 1.0,
             timeout: float = 20.0, forbid: tuple[str, ...] | list[str] = ()) -> Question:
    """Create and register a question; returns it so cases can be attached with ``@q.case``."""
    if not QID_RE.match(qid):
        raise ValueError(f"question id {qid!r} is not of the form 'NN.snake_case'")
    if qid in REGISTRY:
        raise ValueError(f"question {qid!r} is registered twice")
    if not answers:
        raise ValueError(f"question {qid!r} names no learner answer")
    q = Question(qid, title, list(answers), float(points), timeout, forbid=tuple(forbid),
                 order=len(REGISTRY))
    REGISTRY[qid] = q
    return q


def load_all() -> dict[str, Question]:
    """Import every ``checks.lessonNN`` module so the registry is complete."""
    from . import checks

    for info in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        if info.name.startswith("lesson"):
            importlib.import_module(f"{checks.__name__}.{info.name}")
    return REGISTRY


def get_question(qid: str) -> Question:
    """Look a question up by id, loading the lesson's checks on first use."""
    if qid not in REGISTRY:
        m = QID_RE.match(qid)
        if m:
            try:
                importlib.import_module(f"{__package__}.checks.lesson{m.group(1)}")
            except ModuleNotFoundError:
                pass
    if qid not in REGISTRY:
        load_all()
    if qid not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise KeyError(f"no question {qid!r}; known questions: {known}")
    return REGISTRY[qid]


def questions_for_lesson(lesson: str) -> list[Question]:
    """All questions of lesson ``"NN"`` in notebook order (imports only ``checks/lessonNN.py``)."""
    try:
        importlib.import_module(f"{__package__}.checks.lesson{lesson}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.checks.lesson{lesson}":
            raise
    return sorted((q for q in REGISTRY.values() if q.lesson == lesson), key=lambda q: q.order)


def ordered(questions) -> list[Question]:
    """Questions by lesson, then in the order their notebook asks them."""
    return sorted(questions, key=lambda q: (q.lesson, q.order))
