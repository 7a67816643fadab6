"""What the checks of lesson 04's questions share."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from ...asserts import CheckFailure, _short, call, expect_close
from ...forbid import ForbiddenCall
from .._shared import NOT_JUDGED, _agrees, _not_judged  # noqa: F401 - used by the checks


def _basic(message: str, problem: str = "") -> CheckFailure:
    """A basic failure (None, a wrong type): the case's own hint is not shown."""
    return CheckFailure(message, basic=True, problem=problem)


def _num(x: float) -> str:
    """A number for a message: short, and never a NumPy repr."""
    return f"{float(x):.6g}"


class SeededGenerator(torch.Generator):
    """A torch.Generator that the messages show by its seed (not as an object repr)."""

    def __repr__(self) -> str:
        return f"torch.Generator(seed={self.initial_seed()})"


def _gen(seed: int) -> torch.Generator:
    """A torch.Generator seeded with ``seed``."""
    g = SeededGenerator()
    g.manual_seed(seed)
    return g


# ------------------------------------------------------------ comparing answers
def _matches(got, expected, rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    """Does ``got`` equal ``expected`` within its dtype's tolerance? (never raises)"""
    try:
        expect_close(got, expected, rtol=rtol, atol=atol)
    except Exception:
        return False
    return True


def _plain_mismatch(got, expected, what: str, rtol: float = 1e-5,
                    atol: float = 1e-7) -> None:
    """Fail without the case's hint: ``got`` is wrong, but not by the case's mistake."""
    try:
        expect_close(got, expected, rtol=rtol, atol=atol, what=what)
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=True, call=failure.call,
                           problem=failure.problem) from None


def _verdict(got, expected, mistaken, message: str, what: str, rtol: float = 1e-5,
             atol: float = 1e-7) -> None:
    """Pass on ``expected``; fail with ``message`` (the case's hint shown) on one of
    ``mistaken`` (a value or a list of values); fail plainly on any other value."""
    if _matches(got, expected, rtol, atol):
        return
    for wrong in mistaken if isinstance(mistaken, list) else [mistaken]:
        if wrong is not None and _matches(got, wrong, rtol, atol):
            raise CheckFailure(message)
    _plain_mismatch(got, expected, what, rtol, atol)


def _parts(result, names: tuple[str, ...], fn_name: str) -> tuple:
    """``result`` as a tuple of ``len(names)`` values, or a basic failure saying why."""
    if result is None:
        raise _basic(f"{fn_name} returned None: did you forget to `return` "
                     f"({', '.join(names)})?", problem="none")
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise _basic(f"{fn_name} should return the tuple ({', '.join(names)}), but it "
                     f"returned {_short(result)}.", problem="type")
    return tuple(result)


def _copies(*args):
    """Fresh copies of the array and tensor arguments (and of lists of them), so that a
    change in place is the business of the property case that looks for it."""
    def copy(a):
        if isinstance(a, np.ndarray):
            return a.copy()
        if isinstance(a, torch.Tensor):
            return a.detach().clone()
        if isinstance(a, list):
            return [copy(v) for v in a]
        return a

    return [copy(a) for a in args]


# ------------------------------------------------------------ "from scratch"
class _ForbidFunctions(torch.overrides.TorchFunctionMode):
    """Raise ForbiddenCall when learner code calls one of the torch functions named in
    ``names`` (a function mode sees ``torch.lstm_cell`` before it decomposes into the
    matrix products that a dispatch mode would see)."""

    def __init__(self, names: dict[str, str], label: str):
        super().__init__()
        self.names, self.label = names, label

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.names:
            raise ForbiddenCall(self.names[name], self.label)
        return func(*args, **(kwargs or {}))


def call_from_scratch(fn, *args, forbid: dict[str, str], name: str,
                      check_mutation: bool = False):
    """``call(fn, *args)`` with the torch functions in ``forbid`` counting as not
    answered (``forbid``: function name -> how the message names the library call)."""
    with _ForbidFunctions(forbid, name):
        return call(fn, *args, check_mutation=check_mutation, name=name)


@contextlib.contextmanager
def _crash_is_the_mistake(what: str):
    """In a mistake case whose control passed, a crash on the one input that differs is
    the case's mistake: a failure that shows the case's hint, not a basic one."""
    from ...runner import clean_text, learner_line

    try:
        yield
    except CheckFailure:
        raise
    except Exception as exc:  # the learner's code raised on the feature input
        where = learner_line(exc)
        raise CheckFailure(f"It raised {type(exc).__name__}: "
                           f"{clean_text(str(exc), 400)}"
                           + (f"\nat {where}" if where else ""), call=what) from None
