"""Run a question's cases against learner objects, turning every way an answer can go wrong into a message.

A crash in learner code is a failed case, never a traceback out of ``check``; a stub that still
raises ``NotImplementedError`` says "not implemented yet"; an answer slower than the case's time
limit fails that case and the kernel lives on.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import traceback
from pathlib import Path

from .asserts import CheckFailure, describe_call
from .registry import Question
from .results import ERROR, FAILED, MISSING, NOT_IMPLEMENTED, PASSED, TIMEOUT, CaseOutcome, QuestionResult

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


class CaseTimeout(BaseException):
    """Raised inside learner code when a case runs past its time limit (BaseException so that a
    learner's bare ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Interrupt the block after ``seconds`` (SIGALRM; main thread on POSIX only, else no limit)."""
    usable = (
        seconds
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise CaseTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _is_library_frame(filename: str) -> bool:
    return (
        filename.startswith(_PACKAGE_DIR)
        or "site-packages" in filename
        or "dist-packages" in filename
        or filename.startswith("<frozen")
        or os.sep + "lib" + os.sep + "python3" in filename
    )


def learner_line(exc: BaseException) -> str:
    """The deepest traceback line that is the learner's own code (notebook cell or their file)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if not _is_library_frame(f.filename)]
    if not mine:
        return ""
    f = mine[-1]
    where = "your code" if f.filename.startswith("<") or "ipykernel" in f.filename else Path(f.filename).name
    text = f"line {f.lineno} of {where}"
    if f.line:
        text += f": {f.line.strip()}"
    return text


def run_case(case, question: Question, answers: dict) -> CaseOutcome:
    """Run one case; every outcome becomes a ``CaseOutcome``."""
    limit = case.timeout if case.timeout is not None else question.timeout
    calls: list[str] = []
    try:
        with describe_call.recording(calls), time_limit(limit):
            case.fn(**answers)
    except CheckFailure as failure:
        message = str(failure)
        if calls and "Called:" not in message:
            message = f"Called: {calls[-1]}\n{message}"
        return CaseOutcome(case.name, False, message, case.hint, FAILED)
    except NotImplementedError as exc:
        what = f" ({calls[-1]})" if calls else ""
        detail = f": {exc}" if str(exc) else ""
        return CaseOutcome(case.name, False, f"Not implemented yet{what}{detail}. "
                           "Replace `raise NotImplementedError()` with your code.", "", NOT_IMPLEMENTED)
    except CaseTimeout:
        what = f"{calls[-1]} " if calls else "Your code "
        return CaseOutcome(case.name, False, f"{what}ran for more than {limit:g} s, the time limit of this case. "
                           "Look for a loop that never ends, or work that grows too fast.", case.hint, TIMEOUT)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a crash in learner code, or an answer of the wrong kind
        where = learner_line(exc)
        parts = []
        if calls:
            parts.append(f"Called: {calls[-1]}")
        parts.append(f"It raised {type(exc).__name__}: {exc}")
        if where:
            parts.append(f"at {where}")
        return CaseOutcome(case.name, False, "\n".join(parts), case.hint, ERROR)
    return CaseOutcome(case.name, True, "", "", PASSED)


def run_question(question: Question, *objs, **named) -> QuestionResult:
    """Match positional/named learner objects to ``question.answers`` and run every case."""
    result = QuestionResult(question.qid, question.title, points=question.points)
    names = question.answers
    if len(objs) > len(names):
        result.note = (f"check({question.qid!r}, ...) takes {len(names)} answer(s) "
                       f"({', '.join(names)}), you gave {len(objs)}.")
        result.cases = [CaseOutcome(c.name, False, result.note, "", ERROR) for c in question.cases]
        return result
    answers = dict(zip(names, objs))
    unknown = sorted(set(named) - set(names))
    if unknown:
        result.note = f"check({question.qid!r}, ...) does not take {', '.join(unknown)}; it takes {', '.join(names)}."
        result.cases = [CaseOutcome(c.name, False, result.note, "", ERROR) for c in question.cases]
        return result
    answers.update(named)
    missing = [n for n in names if n not in answers]
    if missing:
        result.note = (f"Not answered: {', '.join(missing)} is not defined. Run the cell that defines it, "
                       f"then check({question.qid!r}, {', '.join(names)}).")
        result.cases = [CaseOutcome(c.name, False, result.note, "", MISSING) for c in question.cases]
        return result
    stubs = [n for n in names if answers[n] is Ellipsis]  # `lr = ...`: a one-line answer not yet given
    if stubs:
        result.note = (f"Not implemented yet: {', '.join(stubs)} is still `...`. "
                       "Replace the `...` with your answer and run the cell.")
        result.cases = [CaseOutcome(c.name, False, result.note, "", NOT_IMPLEMENTED) for c in question.cases]
        return result
    result.cases = [run_case(c, question, answers) for c in question.cases]
    return result
