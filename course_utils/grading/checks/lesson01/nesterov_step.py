"""Checks of 01.nesterov_step: Nesterov momentum at the look-ahead point."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, call, expect_close
from ...registry import question
from ._common import _vector


# timeout: the core cases import torch (already imported in the notebook)
q = question("01.nesterov_step", "Nesterov momentum at the look-ahead point",
             answers=["nesterov_step"], timeout=20)


def _reference(grad_fn, w, v, lr, momentum):
    """Sutskever et al. (2013), eq. 3-4: the gradient at the look-ahead point."""
    v_new = momentum * v - lr * grad_fn(w + momentum * v)
    return w + v_new, v_new


def _pair(got, d: int):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        kind = type(got).__name__
        what = (f"a {kind} of length {len(got)}" if isinstance(got, (tuple, list))
                else f"one {kind}")
        raise CheckFailure("nesterov_step should return a pair (w_new, v_new), but it "
                           f"returned {what}.", basic=True)
    return _vector(got[0], d, "w_new"), _vector(got[1], d, "v_new")


A = np.array([[4.0, 1.0], [1.0, 1.0]])  # a tilted bowl 1/2 w^T A w


def _step(nesterov_step, grad_fn, w, v, lr, beta, mutation=False):
    got = call(nesterov_step, grad_fn, w, v, lr, beta, check_mutation=mutation,
               name="nesterov_step")
    return _pair(got, len(w))


@q.case("returns the pair (w_new, v_new)", kind="property",
        hint="Return the new weights and the new velocity, in that order.")
def _(nesterov_step):
    _step(nesterov_step, lambda w: A @ w, np.ones(2), np.zeros(2), 0.1, 0.9)


@q.case("takes the gradient at the look-ahead point, not at w",
        hint="Nesterov's idea: first let the velocity carry w to where momentum alone "
             "would take it, and take the gradient THERE. A gradient at w itself is "
             "the heavy ball.")
def _(nesterov_step):
    w, v, lr, beta = np.array([1.0, -1.0]), np.array([0.5, 0.5]), 0.1, 0.9
    w_new, v_new = _step(nesterov_step, lambda z: A @ z, w, v, lr, beta)
    heavy = beta * v - lr * (A @ w)
    if np.allclose(v_new, heavy) or np.allclose(w_new, w + heavy):
        raise CheckFailure("Your step uses the gradient at w: that is Polyak's heavy "
                           "ball, not Nesterov.")
    behind = beta * v - lr * (A @ (w - beta * v))
    if np.allclose(v_new, behind):
        raise CheckFailure("Your gradient is taken at w - momentum * v, behind w: the "
                           "velocity already points downhill.")


@q.case("the velocity carries a step of -lr times the gradient",
        hint="In this form the velocity is the step itself: it includes -lr times the "
             "gradient (downhill), and w moves by the NEW velocity.")
def _(nesterov_step):
    w, v, lr, beta = np.array([1.0, -1.0]), np.array([0.5, 0.5]), 0.1, 0.9
    w_new, v_new = _step(nesterov_step, lambda z: A @ z, w, v, lr, beta)
    look = w + beta * v
    if np.allclose(v_new, beta * v + lr * (A @ look)):
        raise CheckFailure("Your velocity adds +lr times the gradient: it climbs.")
    if np.allclose(v_new, beta * v - lr * (A @ look)) and np.allclose(w_new, w + v):
        raise CheckFailure("Your w_new is w + v, a step with the old velocity.")


@q.case("calls grad_fn once per step", kind="property",
        hint="One step needs one gradient, at the look-ahead point.")
def _(nesterov_step):
    calls = []

    def grad_fn(z):
        calls.append(1)
        return A @ z

    _step(nesterov_step, grad_fn, np.array([1.0, 0.0]), np.array([0.1, 0.2]), 0.1, 0.5)
    if len(calls) != 1:
        raise CheckFailure(f"One call of nesterov_step called grad_fn {len(calls)} "
                           "times.")


@q.case("does not change w or v in place", kind="property",
        hint="In-place update: `v *= momentum` or `w += ...` changes the caller's "
             "arrays. Build new ones.")
def _(nesterov_step):
    _step(nesterov_step, lambda z: A @ z, np.array([1.0, 2.0]), np.array([0.5, 0.5]),
          0.1, 0.9, mutation=True)


_HINT = ("Look ahead by momentum times v, take the gradient there, make the new "
         "velocity from momentum times the old one and -lr times that gradient, and "
         "move w by it.")


@q.case("one step from a nonzero velocity matches the reference", kind="core",
        hint=_HINT)
def _(nesterov_step):
    rng = np.random.default_rng(1)
    M = rng.normal(size=(3, 3))
    hessian = M @ M.T + np.eye(3)  # (3, 3), positive definite
    w, v = rng.normal(size=3), rng.normal(size=3)
    got = _step(nesterov_step, lambda z: hessian @ z, w.copy(), v.copy(), 0.05, 0.8)
    ref = _reference(lambda z: hessian @ z, w, v, 0.05, 0.8)
    expect_close(got[0], ref[0], what="w_new")
    expect_close(got[1], ref[1], what="v_new")


def _torch_nesterov_run(nesterov_step, hessian, w0, lr, beta, num_steps) -> None:
    """Learner steps from v = 0 against SGD(nesterov=True); torch holds w + beta v."""
    import torch

    d = len(w0)
    w, v = w0.copy(), np.zeros(d)
    p = torch.tensor(w0.copy(), requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=beta, nesterov=True)
    for _ in range(num_steps):
        w, v = _step(nesterov_step, lambda z: hessian @ z, w, v, lr, beta)
        opt.zero_grad()
        (0.5 * p @ torch.tensor(hessian) @ p).backward()
        opt.step()
    expect_close(w + beta * v, p.detach().numpy(), rtol=1e-8, atol=1e-10,
                 what=f"your w + momentum * v after {num_steps} steps (torch's "
                      "weights)")


@q.case("25 steps match torch.optim.SGD(momentum=0.9, nesterov=True)", kind="core",
        hint=_HINT)
def _(nesterov_step):
    _torch_nesterov_run(nesterov_step, A, np.array([2.0, -1.0]), 0.1, 0.9, 25)


@q.case("15 steps in 3-D match SGD(lr=0.02, momentum=0.6, nesterov=True)",
        kind="core", hint=_HINT)
def _(nesterov_step):
    hessian = np.array([[10.0, 2.0, 0.0], [2.0, 3.0, 1.0], [0.0, 1.0, 1.0]])
    _torch_nesterov_run(nesterov_step, hessian, np.array([1.0, 1.0, -1.0]), 0.02, 0.6,
                        15)
