"""Checks of 01.momentum_step: SGD with momentum, PyTorch's form."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure, call, expect_close
from ...registry import question
from ._common import _vector
from .gradient_descent import _B


# timeout: two cases import torch (already imported in the notebook)
q = question("01.momentum_step", "SGD with momentum, PyTorch's form",
             answers=["momentum_step"], timeout=20)


def _pair(got, d: int):
    """``(w_new, v_new)`` as float64 vectors; anything else is a basic failure."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        kind = type(got).__name__
        what = (f"a {kind} of length {len(got)}" if isinstance(got, (tuple, list))
                else f"one {kind}")
        raise CheckFailure("momentum_step should return a pair (w_new, v_new), but it "
                           f"returned {what}.", basic=True)
    return _vector(got[0], d, "w_new"), _vector(got[1], d, "v_new")


@q.case("returns the pair (w_new, v_new)", kind="property",
        hint="End by returning both the new weights and the new velocity, in that "
             "order: the caller needs the new velocity for the next step.")
def _(momentum_step):
    _pair(call(momentum_step, np.ones(2), np.zeros(2), np.ones(2), 0.1, 0.9,
               check_mutation=False), 2)


@q.case("from v = 0 the first step is a plain gradient step",
        hint="With v = 0 the new velocity is just the gradient, so the first step is a "
             "plain gradient step. Scaling the gradient by (1 - momentum) is PyTorch's "
             "dampening, off by default.")
def _(momentum_step):
    w, g = np.array([1.0, 2.0]), np.array([1.0, -1.0])
    w_new, _ = _pair(call(momentum_step, w.copy(), np.zeros(2), g, 0.1, 0.9,
                          check_mutation=False), 2)
    if np.allclose(w_new, w - 0.1 * (1 - 0.9) * g):
        raise CheckFailure("From v = 0 your step is (1 - momentum) times a gradient "
                           "step: dampening.")
    if np.allclose(w_new, w):
        raise CheckFailure("From v = 0 your w_new equals w: the gradient never entered "
                           "the step.")


@q.case("accumulates past gradients into the velocity (PyTorch's form)",
        hint="The new velocity keeps all of the old one, times momentum, and adds the "
             "new gradient, without lr (that is Keras's form) and without "
             "(1 - momentum).")
def _(momentum_step):
    w, v, g, lr, mu = np.zeros(2), np.array([2.0, -1.0]), np.array([1.0, 1.0]), 0.1, 0.5
    got = call(momentum_step, w, v.copy(), g, lr, mu, check_mutation=False)
    _, v_new = _pair(got, 2)
    slips = {"momentum * v - lr * grad (Keras's form, with lr inside the velocity)":
             mu * v - lr * g,
             "momentum * v + lr * grad (lr inside the velocity)": mu * v + lr * g,
             "momentum * v + (1 - momentum) * grad (dampening)": mu * v + (1 - mu) * g,
             "the gradient alone (the old velocity is forgotten)": g,
             "v + grad (the momentum factor is missing)": v + g}
    for what, slip in slips.items():
        if np.allclose(v_new, slip) and not np.allclose(v_new, mu * v + g):
            raise CheckFailure(f"Your v_new is {what}.")


@q.case("steps with the new velocity, not the old one",
        hint="Update the velocity first, then move w with the NEW velocity, not with "
             "the old v.")
def _(momentum_step):
    w, v, g, lr, mu = np.zeros(2), np.array([2.0, -1.0]), np.array([1.0, 1.0]), 0.1, 0.5
    got = call(momentum_step, w, v.copy(), g, lr, mu, check_mutation=False)
    w_new, _ = _pair(got, 2)
    if np.allclose(w_new, w - lr * v):
        raise CheckFailure("Your w_new is w - lr * v, a step with the old velocity.")


@q.case("does not change w or v in place", kind="property",
        hint="In-place update: `v *= momentum` or `w -= ...` changes the caller's "
             "arrays. Build new ones.")
def _(momentum_step):
    call(momentum_step, np.array([1.0, 2.0]), np.array([0.5, 0.5]),
         np.array([1.0, -1.0]), 0.1, 0.9)


_MOMENTUM_HINT = ("Each step: first the new velocity (momentum times the old one, plus "
                  "the gradient), then w moves by lr times the new velocity; pass the "
                  "returned velocity to the next step.")


@q.case("one step from a nonzero velocity matches the reference (D = 4)", kind="core",
        hint=_MOMENTUM_HINT)
def _(momentum_step):
    rng = np.random.default_rng(0)
    w, v, g = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    w_new, v_new = _pair(call(momentum_step, w.copy(), v.copy(), g, 0.05, 0.8,
                              check_mutation=False), 4)
    w_ref, v_ref = optim.momentum_step(w, v, g, 0.05, 0.8)
    expect_close(w_new, w_ref, what="w_new")
    expect_close(v_new, v_ref, what="v_new")


def _torch_momentum_run(momentum_step, A: np.ndarray, w0: np.ndarray, lr: float,
                        mu: float, num_steps: int) -> None:
    """``num_steps`` learner steps on 1/2 w^T A w against SGD(lr, momentum=mu)."""
    import torch

    d = len(w0)
    w, v = w0.copy(), np.zeros(d)
    p = torch.tensor(w0.copy(), requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=mu)
    for _ in range(num_steps):
        w, v = _pair(call(momentum_step, w, v, A @ w, lr, mu, check_mutation=False), d)
        opt.zero_grad()
        (0.5 * p @ torch.tensor(A) @ p).backward()
        opt.step()
    expect_close(w, p.detach().numpy(), rtol=1e-8, atol=1e-10,
                 what=f"w after {num_steps} steps")


@q.case("20 steps on a quadratic match torch.optim.SGD(momentum=0.9)", kind="core",
        hint=_MOMENTUM_HINT)
def _(momentum_step):
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    _torch_momentum_run(momentum_step, A, np.array([1.0, -1.0]), 0.05, 0.9, 20)


@q.case("10 steps in 3-D match torch.optim.SGD(lr=0.2, momentum=0.5)", kind="core",
        hint=_MOMENTUM_HINT)
def _(momentum_step):
    _torch_momentum_run(momentum_step, _B, np.array([1.0, 0.5, -2.0]), 0.2, 0.5, 10)
