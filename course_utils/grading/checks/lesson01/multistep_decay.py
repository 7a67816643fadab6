"""Checks of 01.multistep_decay: Seed 001's step decay, done right."""
from __future__ import annotations

import bisect

import numpy as np

from ...asserts import CheckFailure
from ...registry import question
from ._common import _lrs, _schedule_core


q = question("01.multistep_decay", "Seed 001's step decay, done right",
             answers=["multistep_decay"], timeout=10)


def _reference(t: int, lr0: float, gamma: float, milestones) -> float:
    """lr0 times gamma once for every milestone already reached (t >= milestone)."""
    return lr0 * gamma ** bisect.bisect_right(list(milestones), t)


def _values(fn, ts, *args) -> np.ndarray:
    return _lrs(fn, "multistep_decay", ts, *args).astype(np.float64)


@q.case("never grows with t (gamma < 1)",
        hint="Seed 001's a0 * t / T grows with t: that is a warmup, not a decay. With "
             "gamma < 1 every milestone multiplies the rate by gamma, so it only goes "
             "down.")
def _(multistep_decay):
    lrs = _values(multistep_decay, range(60), 0.1, 0.5, [10, 25, 40])
    if (np.diff(lrs) > 1e-15).any():
        t = int(np.argmax(np.diff(lrs) > 1e-15))
        raise CheckFailure(f"Your rate grows from t = {t} ({lrs[t]:.4g}) to "
                           f"t = {t + 1} ({lrs[t + 1]:.4g}).")


@q.case("drops exactly at each milestone, not one step late or early",
        hint="At t equal to a milestone the rate has already dropped: count the "
             "milestones that are <= t, not < t.")
def _(multistep_decay):
    lrs = _values(multistep_decay, [9, 10, 24, 25], 0.1, 0.5, [10, 25])
    expected = np.array([0.1, 0.05, 0.05, 0.025])
    if not np.allclose(lrs, expected, rtol=1e-9):
        shown = ", ".join(f"{v:.4g}" for v in lrs)
        raise CheckFailure("With milestones [10, 25] your rates at t = 9, 10, 24, 25 "
                           f"are {shown}; expected 0.1, 0.05, 0.05, 0.025.")


@q.case("uses the milestones given, not a fixed period",
        hint="The milestones need not be evenly spaced: count how many of them t has "
             "passed, instead of dividing t by the first one.")
def _(multistep_decay):
    lrs = _values(multistep_decay, [30, 99, 100, 400], 1.0, 0.1, [30, 100])
    if np.allclose(lrs, [1.0 * 0.1 ** (t // 30) for t in [30, 99, 100, 400]]):
        raise CheckFailure("With milestones [30, 100] your rate at t = 99 is "
                           f"{lrs[1]:.4g}: it drops every 30 steps.")


_HINT = ("Multiply lr0 by gamma once for each milestone that t has reached, and never "
         "more than once per milestone.")


def _torch_lrs(lr0, gamma, milestones, num_steps) -> list[float]:
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones,
                                                 gamma=gamma)
    out = []
    for _ in range(num_steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@q.case("matches torch.optim.lr_scheduler.MultiStepLR (milestones [30, 80])",
        kind="core", hint=_HINT)
def _(multistep_decay):
    ref = _torch_lrs(0.1, 0.1, [30, 80], 120)
    _schedule_core(multistep_decay, "multistep_decay", lambda t, *a: ref[t],
                   list(range(120)), 0.1, 0.1, [30, 80])


@q.case("matches MultiStepLR with gamma = 0.5 and three milestones", kind="core",
        hint=_HINT)
def _(multistep_decay):
    ref = _torch_lrs(0.4, 0.5, [5, 6, 20], 30)
    _schedule_core(multistep_decay, "multistep_decay", lambda t, *a: ref[t],
                   list(range(30)), 0.4, 0.5, [5, 6, 20])


@q.case("matches the reference with a single milestone", kind="core", hint=_HINT)
def _(multistep_decay):
    _schedule_core(multistep_decay, "multistep_decay", _reference,
                   [0, 1, 49, 50, 51, 500], 2.0, 0.3, [50])
