"""Checks of 01.gd_step: One gradient-descent step."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure, call, expect_close
from ...registry import question
from ._common import _f64, _multiple, _vector


q = question("01.gd_step", "One gradient-descent step", answers=["gd_step"], timeout=5)


@q.case("moves against the gradient (downhill)",
        hint="Wrong sign: gradient descent subtracts lr times the gradient; adding it "
             "climbs uphill.")
def _(gd_step):
    w, grad = np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.0, -4.0])
    got = _vector(call(gd_step, w.copy(), grad, 0.1, check_mutation=False), 3,
                  "w after one step")
    r = _multiple(got - w, grad)
    if r is not None and r > 0:
        step = np.round(got - w, 6).tolist()
        raise CheckFailure(f"From w = {w.tolist()} with grad = {grad.tolist()} and "
                           f"lr = 0.1 your step is {step}: along the gradient, uphill.")


@q.case("scales the step by the learning rate",
        hint="The step is the gradient times lr: multiply by lr (do not divide by it, "
             "or leave it out).")
def _(gd_step):
    w, grad = np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.0, -4.0])
    got = _vector(call(gd_step, w.copy(), grad, 0.1, check_mutation=False), 3,
                  "w after one step")
    r = _multiple(w - got, grad)
    slips = {1.0: "the whole gradient: lr is missing",
             10.0: "the gradient divided by lr = 0.1"}
    for factor, what in slips.items():
        if r is not None and abs(r - factor) < 1e-3 * factor:
            raise CheckFailure(f"With lr = 0.1 your step is {what}.")


_GD_STEP_HINT = ("One step moves w by lr times the gradient, against it: "
                 "w_(t+1) = w_t - lr grad.")


@q.case("one step from w = 0 with lr = 0.25", kind="core",
        hint=_GD_STEP_HINT)
def _(gd_step):
    w, grad = np.zeros(2), np.array([1.0, -1.0])
    got = call(gd_step, w.copy(), grad, 0.25, check_mutation=False)
    expect_close(got, np.array([-0.25, 0.25]), what="w after one step with lr = 0.25")


@q.case("one step on random w and grad with lr = 0.1 (D = 5)", kind="core",
        hint=_GD_STEP_HINT)
def _(gd_step):
    rng = np.random.default_rng(0)
    w, grad = rng.normal(size=5), rng.normal(size=5)
    got = call(gd_step, w.copy(), grad, 0.1, check_mutation=False)
    expect_close(got, optim.gd_step(w, grad, 0.1),
                 what="w after one step with lr = 0.1")


@q.case("one step in float32 with lr = 0.01 (D = 4)", kind="core",
        hint=_GD_STEP_HINT)
def _(gd_step):
    rng = np.random.default_rng(1)
    w = rng.normal(size=4).astype(np.float32)
    grad = rng.normal(size=4).astype(np.float32)
    got = call(gd_step, w.copy(), grad, 0.01, check_mutation=False)
    expect_close(got, optim.gd_step(*_f64(w, grad), 0.01),
                 what="w after one step (float32)")


@q.case("returns a new array and leaves the input w unchanged", kind="property",
        hint="In-place update: `w -= ...` changes the caller's array (and every "
             "trajectory row that points to it). Build and return a new array.")
def _(gd_step):
    w = np.array([1.0, 2.0])
    call(gd_step, w, np.array([1.0, 1.0]), 0.1)  # call() fails if w changed in place
