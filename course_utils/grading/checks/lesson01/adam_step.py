"""Checks of 01.adam_step: Adam from its definition."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure, call, expect_close
from ...registry import question
from ._common import _vector


# timeout: the core cases import torch (already imported in the notebook)
q = question("01.adam_step", "Adam from its definition", answers=["adam_step"],
             timeout=20)


def _triple(got, d: int):
    """``(w_new, m_new, v_new)`` as float64 vectors; anything else is basic."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        kind = type(got).__name__
        what = (f"a {kind} of length {len(got)}" if isinstance(got, (tuple, list))
                else f"one {kind}")
        raise CheckFailure("adam_step should return a triple (w_new, m_new, v_new), "
                           f"but it returned {what}.", basic=True)
    names = ("w_new", "m_new", "v_new")
    return tuple(_vector(a, d, name) for a, name in zip(got, names))


def _step(adam_step, w, m, v, g, t, lr, betas=(0.9, 0.999), eps=1e-8, mutation=False):
    got = call(adam_step, w, m, v, g, t, lr, betas, eps, check_mutation=mutation,
               name="adam_step")
    return _triple(got, len(w))


@q.case("returns the triple (w_new, m_new, v_new)", kind="property",
        hint="Return the new weights and both new moment estimates, in that order: the "
             "caller passes m and v back in at the next step.")
def _(adam_step):
    _step(adam_step, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2), 1, 0.1)


@q.case("the first step moves every coordinate by lr, whatever its gradient's size",
        hint="At t = 1 both moving averages are (1 - beta) times their first input: "
             "the bias correction divides that factor out again, so m_hat over "
             "sqrt(v_hat) is the sign of the gradient. Without it the first step is "
             "about 3 times too large. t already counts from 1: do not add 1 to it.")
def _(adam_step):
    w, g = np.zeros(3), np.array([100.0, -0.01, 1.0])
    w_new, _, _ = _step(adam_step, w, np.zeros(3), np.zeros(3), g, 1, 0.1)
    if not np.allclose(w_new, -0.1 * np.sign(g), rtol=1e-5):
        ratio = np.abs(w_new).max() / 0.1
        raise CheckFailure(f"From m = v = 0 with gradient {g.tolist()} your first step "
                           f"is {np.round(w_new, 6).tolist()}, not -lr * sign(g) = "
                           f"{(-0.1 * np.sign(g)).tolist()} (largest move {ratio:.3g} "
                           "times lr).")


@q.case("keeps moving averages of the gradient and of its square",
        hint="m is an average of gradients, weighted beta1 for the old value and "
             "(1 - beta1) for the new one; v the same for the SQUARED gradient, with "
             "beta2. They are stored without the bias correction.")
def _(adam_step):
    m, v, g = np.array([0.5, -1.0]), np.array([0.2, 0.3]), np.array([2.0, 1.0])
    _, m_new, v_new = _step(adam_step, np.zeros(2), m, v, g, 3, 0.1, (0.8, 0.9))
    if not np.allclose(m_new, 0.8 * m + 0.2 * g):
        if np.allclose(m_new, (0.8 * m + 0.2 * g) / (1 - 0.8**3)):
            raise CheckFailure("Your m_new is bias-corrected: store the raw average.")
        raise CheckFailure(f"Your m_new is {m_new.tolist()}, not beta1 * m + "
                           f"(1 - beta1) * g = {(0.8 * m + 0.2 * g).tolist()}.")
    if not np.allclose(v_new, 0.9 * v + 0.1 * g**2):
        if np.allclose(v_new, 0.9 * v + 0.1 * np.abs(g)):
            raise CheckFailure("Your v_new averages |g|, not g squared.")
        expected = (0.9 * v + 0.1 * g**2).tolist()
        raise CheckFailure(f"Your v_new is {v_new.tolist()}, not the average with "
                           f"beta2 of the squared gradient, {expected}.")


@q.case("adds eps to the square root, as torch.optim.Adam does",
        hint="eps guards the division: it is added to sqrt(v_hat), not inside the "
             "square root.")
def _(adam_step):
    w, g = np.zeros(1), np.array([1e-3])
    w_new, _, _ = _step(adam_step, w, np.zeros(1), np.zeros(1), g, 1, 1.0, eps=1e-3)
    if np.allclose(w_new, -1e-3 / np.sqrt(1e-6 + 1e-3)):
        raise CheckFailure("Your step is m_hat / sqrt(v_hat + eps): eps is inside the "
                           "square root.")


@q.case("does not change w, m or v in place", kind="property",
        hint="In-place update: `m *= beta1` or `w -= ...` changes the caller's arrays. "
             "Build new ones.")
def _(adam_step):
    _step(adam_step, np.array([1.0, 2.0]), np.array([0.1, 0.1]), np.array([0.2, 0.2]),
          np.array([1.0, -1.0]), 2, 0.1, mutation=True)


_HINT = ("Update both moving averages, correct each for its start at zero with the "
         "step count t (from 1), then step by lr times the corrected mean over the "
         "square root of the corrected second moment plus eps.")


@q.case("one step at t = 5 with small moments and eps = 1e-3 matches the reference",
        kind="core", hint=_HINT)
def _(adam_step):
    rng = np.random.default_rng(0)
    w, m, g = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    m, g = 1e-3 * m, 1e-3 * g  # small moments: eps = 1e-3 then matters
    v = 1e-6 * rng.random(4)
    got = _step(adam_step, w.copy(), m.copy(), v.copy(), g, 5, 0.01, (0.85, 0.99), 1e-3)
    for a, b, name in zip(got, optim.adam_step(w, m, v, g, 5, 0.01, (0.85, 0.99), 1e-3),
                          ("w_new", "m_new", "v_new")):
        expect_close(a, b, what=name)


def _torch_adam_run(adam_step, A, w0, lr, betas, num_steps) -> None:
    """``num_steps`` learner steps on 1/2 w^T A w against torch.optim.Adam."""
    import torch

    d = len(w0)
    w, m, v = w0.copy(), np.zeros(d), np.zeros(d)
    p = torch.tensor(w0.copy(), requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=1e-8)
    for t in range(1, num_steps + 1):
        w, m, v = _step(adam_step, w, m, v, A @ w, t, lr, betas)
        opt.zero_grad()
        (0.5 * p @ torch.tensor(A) @ p).backward()
        opt.step()
    expect_close(w, p.detach().numpy(), rtol=1e-7, atol=1e-10,
                 what=f"w after {num_steps} steps")


@q.case("30 steps on a badly scaled bowl match torch.optim.Adam", kind="core",
        hint=_HINT)
def _(adam_step):
    _torch_adam_run(adam_step, np.diag([100.0, 1.0]), np.array([1.0, 1.0]), 0.05,
                    (0.9, 0.999), 30)


@q.case("20 steps in 3-D match torch.optim.Adam(betas=(0.5, 0.9))", kind="core",
        hint=_HINT)
def _(adam_step):
    A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    _torch_adam_run(adam_step, A, np.array([1.0, -0.5, 2.0]), 0.1, (0.5, 0.9), 20)
