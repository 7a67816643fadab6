"""Checks of 01.exponential_decay: Exponential decay."""
from __future__ import annotations

import math

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure, expect_close
from ...registry import question
from ._common import _lrs, _matches, _schedule_core


q = question("01.exponential_decay", "Exponential decay", answers=["exponential_decay"],
             timeout=5)


@q.case("starts at lr0 (t = 0)",
        hint="At t = 0 no decay has happened yet: any gamma to the power 0 is 1.")
def _(exponential_decay):
    got = _lrs(exponential_decay, "exponential_decay", [0], 0.1, 0.9)
    expect_close(got[0], 0.1, what="exponential_decay(0, 0.1, 0.9)")


@q.case("shrinks by the same factor gamma at every step (lr_(t+1) / lr_t = gamma)",
        hint="Each step multiplies the learning rate by gamma: t is the exponent and "
             "gamma the base. With t as the base (t ** -gamma, (1 + t) ** -gamma) it "
             "is a polynomial decay, whose factor per step changes with t.")
def _(exponential_decay):
    lrs = _lrs(exponential_decay, "exponential_decay", range(0, 30), 0.1, 0.9)
    lrs = lrs.astype(np.float64)
    if not np.isfinite(lrs).all() or (lrs == 0).any():
        t = int(np.argmax(~np.isfinite(lrs) | (lrs == 0)))
        raise CheckFailure(f"exponential_decay({t}, 0.1, 0.9) is {lrs[t]:g}: the ratio "
                           "of two learning rates cannot be taken.")
    ratios = lrs[1:] / lrs[:-1]  # (29,)
    if np.allclose(ratios, 1.0, rtol=1e-6):
        raise CheckFailure("Your learning rate is the same at every step from t = 0 to "
                           "29: it does not decay (the ratio lr_(t+1) / lr_t is 1, not "
                           "gamma = 0.9).")
    if not np.allclose(ratios, ratios[0], rtol=1e-4):
        raise CheckFailure(f"The ratio lr_(t+1) / lr_t goes from {ratios[0]:.4g} "
                           f"(t = 0) to {ratios[-1]:.4g} (t = 28): it is not constant.")
    if not math.isclose(ratios[0], 0.9, rel_tol=1e-4):
        raise CheckFailure("Your learning rate shrinks by the same factor at every "
                           f"step, but the factor is {ratios[0]:.6g}, not gamma = 0.9.")


@q.case("uses gamma as the factor per step, not exp(-gamma) or 1 - gamma",
        hint="gamma is the factor per step: raise gamma itself to the power t; "
             "exp(-gamma * t) or (1 - gamma) ** t use another factor.")
def _(exponential_decay):
    ts = [0, 1, 5, 20]
    got = _lrs(exponential_decay, "exponential_decay", ts, 0.5, 0.95)
    slips = {"exp(-gamma * t)": [0.5 * math.exp(-0.95 * t) for t in ts],
             "(1 - gamma) ** t": [0.5 * 0.05 ** t for t in ts]}
    for what, slip in slips.items():
        if _matches(got, np.array(slip)):
            raise CheckFailure("Your learning rates at t = 0, 1, 5, 20 are lr0 times "
                               f"{what}.")


_EXP_HINT = "Each step multiplies the learning rate by gamma, from lr0 at t = 0."


@q.case("matches the reference at t = 0, 1, 5, 20, 100 (lr0 = 0.5, gamma = 0.95)",
        kind="core", hint=_EXP_HINT)
def _(exponential_decay):
    _schedule_core(exponential_decay, "exponential_decay", optim.exponential_decay,
                   [0, 1, 5, 20, 100], 0.5, 0.95)


@q.case("matches the reference over 30 steps (lr0 = 0.1, gamma = 0.9)", kind="core",
        hint=_EXP_HINT)
def _(exponential_decay):
    _schedule_core(exponential_decay, "exponential_decay", optim.exponential_decay,
                   list(range(30)), 0.1, 0.9)


@q.case("matches the reference with gamma = 0.5 (lr0 = 3.0)", kind="core",
        hint=_EXP_HINT)
def _(exponential_decay):
    _schedule_core(exponential_decay, "exponential_decay", optim.exponential_decay,
                   [0, 1, 2, 3, 10], 3.0, 0.5)
