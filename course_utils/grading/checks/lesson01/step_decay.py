"""Checks of 01.step_decay: Step decay."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure
from ...registry import question
from ._common import _lrs, _schedule_core


q = question("01.step_decay", "Step decay", answers=["step_decay"], timeout=5)


@q.case("never grows with t",
        hint="A step decay that grows with t: with gamma < 1 the exponent must be the "
             "number of whole blocks done, which is never negative.")
def _(step_decay):
    lrs = _lrs(step_decay, "step_decay", range(40), 0.1, 0.5, 10).astype(np.float64)
    rises = np.diff(lrs) > 1e-12 * np.abs(lrs[:-1])
    if rises.any():
        t = int(np.argmax(rises))
        raise CheckFailure(f"Your learning rate grows from t = {t} ({lrs[t]:.4g}) "
                           f"to t = {t + 1} ({lrs[t + 1]:.4g}).")


@q.case("is constant within each block of step_size steps",
        hint="Missing floor: the exponent counts whole blocks of step_size steps (an "
             "integer, floor division), not the fraction t / step_size, which decays "
             "smoothly.")
def _(step_decay):
    lrs = _lrs(step_decay, "step_decay", range(40), 0.1, 0.5, 10).astype(np.float64)
    changes = int((~np.isclose(lrs[1:], lrs[:-1], rtol=1e-6, atol=0)).sum())
    if changes > 8:  # a step decay changes 3 times in 40 steps (4 blocks of 10)
        raise CheckFailure("With step_size = 10 your learning rate changes at "
                           f"{changes} of the first 39 steps: it decays smoothly "
                           "instead of staying put within each block of 10 steps.")


@q.case("drops exactly at t = step_size, 2 * step_size, ...",
        hint="Off by one: the first drop is at t = step_size (the first step of the "
             "second block), not earlier or later: floor t / step_size itself "
             "(not t + 1 or t - 1, and do not round it or round it up).")
def _(step_decay):
    lrs = _lrs(step_decay, "step_decay", range(25), 0.1, 0.5, 10).astype(np.float64)
    drops = [t for t in range(5, 25) if lrs[t] < lrs[t - 1] * (1 - 1e-6)]  # not near 0
    expected = [10, 20]
    if drops and drops != expected and len(drops) == len(expected) and all(
            abs(a - b) <= 5 for a, b in zip(drops, expected)):  # within half a block
        raise CheckFailure("With step_size = 10 your learning rate drops at t = "
                           f"{', '.join(map(str, drops))}; expected at t = 10, 20.")


_STEP_HINT = ("The learning rate is lr0 for the first step_size steps, then gamma "
              "times that for the next step_size steps, and so on.")


@q.case("matches the reference at t = 0, 3, 6, 7, 13, 14, 21, 50 (step_size = 7)",
        kind="core", hint=_STEP_HINT)
def _(step_decay):
    _schedule_core(step_decay, "step_decay", optim.step_decay,
                   [0, 3, 6, 7, 13, 14, 21, 50], 0.3, 0.7, 7)


@q.case("matches the reference over 40 steps (step_size = 10)", kind="core",
        hint=_STEP_HINT)
def _(step_decay):
    _schedule_core(step_decay, "step_decay", optim.step_decay, list(range(40)),
                   0.1, 0.5, 10)


@q.case("matches the reference over 16 steps (step_size = 3, gamma = 0.8)", kind="core",
        hint=_STEP_HINT)
def _(step_decay):
    _schedule_core(step_decay, "step_decay", optim.step_decay, list(range(16)),
                   2.0, 0.8, 3)
