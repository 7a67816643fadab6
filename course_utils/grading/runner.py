"""Run a question's cases against learner objects, turning every way an answer can go wrong into a message.

A crash in learner code is a failed case, never a traceback out of ``check``; a stub that still
raises ``NotImplementedError`` says "not implemented yet"; an answer slower than the case's time
limit fails that case and the kernel lives on.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import traceback
from pathlib import Path

from .asserts import CheckFailure, _short, describe_call
from .forbid import ForbiddenCall, describe, warm_up, warm_up_optimizers
from .registry import Question
from .results import (ERROR, FAILED, FORBIDDEN, MISSING, NOT_IMPLEMENTED, NOT_RUN, PASSED, TIMEOUT,
                      CaseOutcome, QuestionResult)

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


class CaseTimeout(BaseException):
    """Raised inside learner code when a case runs past its time limit (BaseException so that a
    learner's bare ``except Exception`` cannot swallow it)."""


_RUNNER_FILES = {__file__, contextlib.__file__}
REARM_SECONDS = 0.5  # after the first alarm, the timer fires again this often until the case ends


class _Limit:
    """The state of one time limit: how often it fired, and the tracer that escapes bare excepts."""

    def __init__(self):
        self.fired = 0
        self.traced: list = []  # frames given the tracer, to be cleared when the limit ends

    def tracer(self, frame, event, arg):
        """Once the limit fired twice, every new line of code outside the runner raises again: a
        bare ``except:`` (or ``except BaseException``) in a retry loop cannot keep the case alive."""
        if frame.f_code.co_filename in _RUNNER_FILES:
            return None
        if event == "line" or event == "call":
            raise CaseTimeout()
        return self.tracer


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Interrupt the block after ``seconds`` (SIGALRM; main thread on POSIX only, else no limit).

    Yields a ``_Limit`` whose ``fired`` counts the alarms: a block that swallowed the first
    ``CaseTimeout`` and returned normally has still timed out. The alarm is re-armed every
    ``REARM_SECONDS`` until the block ends; from the second alarm on, a trace function raises
    ``CaseTimeout`` on every line of learner code as well.
    """
    limit = _Limit()
    usable = (
        seconds
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield limit
        return

    def on_alarm(signum, frame):
        limit.fired += 1
        if limit.fired >= 2:
            sys.settrace(limit.tracer)
            f = frame
            while f is not None:
                if f.f_code.co_filename not in _RUNNER_FILES:
                    f.f_trace = limit.tracer
                    f.f_trace_lines = True
                    limit.traced.append(f)
                f = f.f_back
        signal.setitimer(signal.ITIMER_REAL, REARM_SECONDS)
        raise CaseTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    previous_trace = sys.gettrace()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield limit
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if limit.fired >= 2:
            sys.settrace(previous_trace)
            for f in limit.traced:  # the frames above the case (the learner's cell) must not raise
                f.f_trace = None
            limit.traced.clear()


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


def _raised_in_learner_code(exc: BaseException, case_fn=None) -> bool:
    """Did the exception come out of learner code (rather than the checker's own code, such as a
    ``float()`` of what the answer returned)? Only the frames below the case function count."""
    frames = traceback.extract_tb(exc.__traceback__)
    code = getattr(case_fn, "__code__", None)
    if code is not None:
        starts = [i for i, f in enumerate(frames) if f.filename == code.co_filename and f.name == code.co_name]
        if starts:
            frames = frames[starts[0] + 1:]
    return any((f.filename.endswith(os.sep + "asserts.py") and f.name == "call")
               or not _is_library_frame(f.filename) for f in frames)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clean_text(text: str, limit: int = 1200) -> str:
    """Learner-facing text of an exception: no ANSI colour codes, no endless Keras call stacks."""
    text = _ANSI.sub("", text).strip()
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def _called(calls: list[str], failure_call: str | None = None) -> str:
    """The "Called:" line: the call the failure is about; the only call, when there was one."""
    if failure_call:
        return f"Called: {failure_call}"
    if len(calls) == 1:
        return f"Called: {calls[0]}"
    return ""


def run_case(case, question: Question, answers: dict) -> CaseOutcome:
    """Run one case; every outcome becomes a ``CaseOutcome`` (nothing an answer does escapes)."""
    limit_s = case.timeout if case.timeout is not None else question.timeout
    calls: list[str] = []
    returns: list = []  # (call text, returned value) of every call that returned
    kind = getattr(case, "kind", "mistake")

    def outcome(passed, message="", hint="", status=PASSED, basic=False, problem=""):
        return CaseOutcome(case.name, passed, message, hint if not passed else "", status, kind, basic,
                           problem or (status if basic else ""))

    limit = None
    try:
        with describe_call.recording(calls, question.forbid, returns), time_limit(limit_s) as limit:
            case.fn(**answers)
        if limit.fired:  # the answer swallowed the time-out and carried on
            raise CaseTimeout()
    except CheckFailure as failure:
        if limit is not None and limit.fired:
            return _timeout(outcome, calls, limit_s, case)
        message = clean_text(str(failure), 3000)
        called = _called(calls, failure.call)
        if called and "Called:" not in message:
            message = f"{called}\n{message}"
        return outcome(False, message, case.hint, FAILED, failure.basic, failure.problem)
    except ForbiddenCall as exc:
        return outcome(False, f"{exc.label} used {describe(exc.op)}. This question asks you to write it "
                              "yourself, from scratch: a library call counts as not answered.", "",
                       FORBIDDEN, True)
    except NotImplementedError as exc:
        what = f" ({calls[-1]})" if calls else ""
        detail = f": {clean_text(str(exc), 300)}" if str(exc) else ""
        return outcome(False, f"Not implemented yet{what}{detail}. "
                              "Replace `raise NotImplementedError()` with your code.", "", NOT_IMPLEMENTED,
                       True)
    except CaseTimeout:
        return _timeout(outcome, calls, limit_s, case)
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        where = f"{calls[-1]} " if calls else "Your code "
        code = "" if exc.code in (None, 0) else f"({exc.code!r})"
        return outcome(False, f"{where}called sys.exit{code}, which would stop the whole notebook. "
                              "Return a value (or raise an exception) instead of exiting.", "", ERROR, True)
    except BaseException as exc:  # a crash in learner code, or an answer of the wrong kind
        if limit is not None and limit.fired:
            return _timeout(outcome, calls, limit_s, case)
        message = _crash_message(exc, calls, returns, case.fn)
        problem = "none" if " returned None" in message else f"crash: {type(exc).__name__} {learner_line(exc)}"
        return outcome(False, message, case.hint, ERROR, True, problem)
    return outcome(True)


def _timeout(outcome, calls, limit_s, case) -> CaseOutcome:
    what = f"{calls[-1]} " if calls else "Your code "
    return outcome(False, f"{what}ran for more than {limit_s:g} s, the time limit of this case. "
                          "Look for a loop that never ends, or work that grows too fast.", case.hint, TIMEOUT,
                   True)


def _crash_message(exc: BaseException, calls: list[str], returns: list, case_fn=None) -> str:
    """What to say about an exception: the learner's crash, or what their answer returned that the
    checker could not use (never the checker's own ``float(None)`` shown as "It raised")."""
    text = clean_text(f"{exc}", 600)
    if not _raised_in_learner_code(exc, case_fn):
        if returns:
            called, returned = returns[-1]
            if returned is None:
                return (f"{called} returned None: is there a `return` on every path of your code "
                        "(and for this input)?")
            return (f"{called} returned {_short(returned)}, which is not what this question asks for "
                    f"(the check could not use it: {type(exc).__name__}: {text}).")
    parts = []
    if calls:
        parts.append(f"Called: {calls[-1]}")
    parts.append(f"It raised {type(exc).__name__}: {text}" if text else f"It raised {type(exc).__name__}.")
    where = learner_line(exc)
    if where:
        parts.append(f"at {where}")
    return "\n".join(parts)


def run_question(question: Question, *objs, **named) -> QuestionResult:
    """Match positional/named learner objects to ``question.answers`` and run every case."""
    result = QuestionResult(question.qid, question.title, points=question.points)
    names = question.answers
    if len(objs) > len(names):
        result.note = (f"check({question.qid!r}, ...) takes {len(names)} answer(s) "
                       f"({', '.join(names)}), you gave {len(objs)}.")
        result.cases = [CaseOutcome(c.name, False, result.note, "", ERROR, c.kind, True) for c in question.cases]
        return result
    answers = dict(zip(names, objs))
    unknown = sorted(set(named) - set(names))
    if unknown:
        result.note = f"check({question.qid!r}, ...) does not take {', '.join(unknown)}; it takes {', '.join(names)}."
        result.cases = [CaseOutcome(c.name, False, result.note, "", ERROR, c.kind, True) for c in question.cases]
        return result
    answers.update(named)
    missing = [n for n in names if n not in answers]
    if missing:
        result.note = (f"Not answered: {', '.join(missing)} is not defined. Run the cell that defines it, "
                       f"then check({question.qid!r}, {', '.join(names)}).")
        result.cases = [CaseOutcome(c.name, False, result.note, "", MISSING, c.kind, True) for c in question.cases]
        return result
    stubs = [n for n in names if answers[n] is Ellipsis]  # `lr = ...`: a one-line answer not yet given
    if stubs:
        result.note = (f"Not implemented yet: {', '.join(stubs)} is still `...`. "
                       "Replace the `...` with your answer and run the cell.")
        result.cases = [CaseOutcome(c.name, False, result.note, "", NOT_IMPLEMENTED, c.kind, True) for c in question.cases]
        return result
    warm_up_optimizers()
    if question.forbid:
        warm_up()
    result.cases = []
    for c in question.cases:
        if result.cases and result.cases[-1].status in (TIMEOUT, NOT_RUN, FORBIDDEN):
            # one time-out (or a forbidden library call) is enough: the rest would say the same, slowly
            why = ("an earlier case ran out of time" if result.cases[-1].status != FORBIDDEN
                   else "the answer calls a library operation this question forbids")
            result.cases.append(CaseOutcome(c.name, False, f"Not run: {why}.", "",
                                            NOT_RUN if result.cases[-1].status != FORBIDDEN else FORBIDDEN,
                                            c.kind, True))
            continue
        result.cases.append(run_case(c, question, answers))
    return result
