"""Checks of 01.exponential_schedule: Seed 001's exponential decay, done right."""
from __future__ import annotations

import math

import numpy as np

from ...asserts import CheckFailure
from ...registry import question
from ._common import _lrs, _schedule_core


q = question("01.exponential_schedule", "Seed 001's exponential decay, done right",
             answers=["exponential_schedule"], timeout=10)


def _reference(t: int, lr0: float, lr_end: float, total_steps: int) -> float:
    """lr0 at t = 0, lr_end at t = T, one factor (lr_end / lr0) ** (1 / T) per step."""
    return lr0 * (lr_end / lr0) ** (t / total_steps)


def _ratios(fn, lr0, lr_end, T) -> np.ndarray:
    lrs = _lrs(fn, "exponential_schedule", range(T + 1), lr0, lr_end, T)
    lrs = lrs.astype(np.float64)
    if not np.isfinite(lrs).all() or (lrs <= 0).any():
        t = int(np.argmax(~np.isfinite(lrs) | (lrs <= 0)))
        raise CheckFailure(f"exponential_schedule({t}, {lr0}, {lr_end}, {T}) is "
                           f"{lrs[t]:g}: an exponential decay stays positive.")
    return lrs[1:] / lrs[:-1]  # (T,)


@q.case("starts at lr0 and ends at lr_end at t = T",
        hint="At t = 0 no step has been taken; at t = T the rate must be exactly "
             "lr_end. Off by one? T steps separate t = 0 from t = T.")
def _(exponential_schedule):
    got = _lrs(exponential_schedule, "exponential_schedule", [0, 50], 0.1, 1e-3, 50)
    if not math.isclose(got[0], 0.1, rel_tol=1e-6):
        raise CheckFailure(f"exponential_schedule(0, 0.1, 0.001, 50) is {got[0]:.6g}, "
                           "not lr0 = 0.1.")
    if not math.isclose(got[1], 1e-3, rel_tol=1e-6):
        raise CheckFailure(f"exponential_schedule(50, 0.1, 0.001, 50) is {got[1]:.6g}, "
                           "not lr_end = 0.001.")


@q.case("shrinks by the same factor at every step",
        hint="An exponential decay multiplies the rate by one fixed factor per step; a "
             "straight line from lr0 to lr_end, or seed 001's (1 - t/T) ** p, is "
             "polynomial: its factor per step changes with t.")
def _(exponential_schedule):
    ratios = _ratios(exponential_schedule, 0.1, 1e-3, 40)
    if not np.allclose(ratios, ratios[0], rtol=1e-6):
        raise CheckFailure(f"The ratio lr_(t+1) / lr_t goes from {ratios[0]:.4g} "
                           f"(t = 0) to {ratios[-1]:.4g} (t = 39): it is not constant.")


@q.case("is not tied to one total number of steps", kind="property",
        hint="The factor per step depends on lr0, lr_end and T: compute it from them.")
def _(exponential_schedule):
    a = _ratios(exponential_schedule, 0.1, 1e-3, 10)[0]
    b = _ratios(exponential_schedule, 0.1, 1e-3, 100)[0]
    if math.isclose(a, b, rel_tol=1e-9):
        raise CheckFailure(f"Your factor per step is {a:.6g} both for T = 10 and for "
                           "T = 100, so it cannot reach lr_end at t = T for both.")


_HINT = "Same factor every step, from lr0 at t = 0 to lr_end at t = T."


@q.case("matches the reference for lr0 = 0.1, lr_end = 0.001, T = 50", kind="core",
        hint=_HINT)
def _(exponential_schedule):
    _schedule_core(exponential_schedule, "exponential_schedule", _reference,
                   list(range(51)), 0.1, 1e-3, 50)


@q.case("matches the reference for lr0 = 3.0, lr_end = 0.5, T = 7", kind="core",
        hint=_HINT)
def _(exponential_schedule):
    _schedule_core(exponential_schedule, "exponential_schedule", _reference,
                   [0, 1, 2, 3, 5, 7], 3.0, 0.5, 7)


@q.case("matches torch.optim.lr_scheduler.ExponentialLR (gamma from lr0, lr_end, T)",
        kind="core", hint=_HINT)
def _(exponential_schedule):
    import torch

    lr0, lr_end, T = 0.02, 2e-4, 30
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(lr_end / lr0) ** (1 / T))
    torch_lrs = []
    for _ in range(T + 1):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    _schedule_core(exponential_schedule, "exponential_schedule",
                   lambda t, *a: torch_lrs[t], list(range(T + 1)), lr0, lr_end, T)
