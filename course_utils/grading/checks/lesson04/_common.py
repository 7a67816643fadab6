"""What the checks of lesson 04's questions share."""
from __future__ import annotations

import contextlib

import torch

from ...asserts import CheckFailure, call
from ...forbid import ForbiddenCall
from .._shared import (NOT_JUDGED, _agrees, _basic, _copies,  # noqa: F401 - for the checks
                       _not_judged, _num, _parts, comparisons)

_matches, _plain_mismatch = comparisons(rtol=1e-5, atol=1e-7)


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
