"""Checks of 01.gradient_descent: The loop."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure, call, expect_close, expect_shape, to_numpy
from ...registry import question


q = question("01.gradient_descent", "The loop", answers=["gradient_descent"], timeout=5)

_A = np.diag([1.0, 10.0])  # f(w) = 1/2 w^T A w: ill-conditioned, minimum at 0, L = 10


def _quadratic_grad(w):
    return _A @ w


_B = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]])  # tilted bowl, 3-D
_C = np.array([1.0, -2.0, 0.5])  # its minimum


def _tilted_grad(w):
    return _B @ (w - _C)


def _line_grad(w):
    return 2 * (w - 3.0)  # f(w) = (w - 3)^2 in one dimension


def _trajectory(got, shape: tuple, what: str = "your trajectory") -> np.ndarray:
    """The learner's trajectory as an array of ``shape`` (a list of rows will do)."""
    if isinstance(got, (list, tuple)):
        try:
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            raise CheckFailure(f"{what} is a {type(got).__name__} that is not a list "
                               "of rows of numbers: stack the rows into one array.",
                               basic=True) from None
    final_only = got is not None and np.ndim(got) == 1 and np.shape(got)[0] == shape[1]
    if final_only:
        raise CheckFailure("Your function returned one vector of shape "
                           f"{np.shape(got)}, the final weights only; expected the "
                           f"trajectory of shape {shape} (num_steps + 1 rows).",
                           basic=True)
    expect_shape(got, shape, what=what)
    return to_numpy(got)


_GD_HINT = ("Each step is w minus lr times grad_fn(w), with the gradient taken at the "
            "current w.")


@q.case("returns num_steps + 1 rows, the first being w0", kind="property",
        hint="Return the whole trajectory, one row per iterate: start with w0 itself, "
             "then append the weights after each of the num_steps updates "
             "(num_steps + 1 rows in all; off by one if w0 or a step is missing).")
def _(gradient_descent):
    w0 = np.array([1.0, 1.0])
    got = call(gradient_descent, _quadratic_grad, w0.copy(), 0.05, 5,
               check_mutation=False)
    traj = _trajectory(got, (6, 2))
    expect_close(traj[0], w0, what="row 0 of your trajectory (it should be w0)")


@q.case("stores a copy of the weights at every step (rows differ)",
        hint="In-place update: updating w with -= and then appending it appends the "
             "same array object again and again, so every row ends up equal to the "
             "last one. Make a new array at each step.")
def _(gradient_descent):
    got = call(gradient_descent, _quadratic_grad, np.array([1.0, 1.0]), 0.05, 3,
               check_mutation=False)
    traj = _trajectory(got, (4, 2))
    if np.allclose(traj[0], traj[-1]) and np.allclose(traj, traj[-1]):
        raise CheckFailure("Every row of your trajectory is the same, although the "
                           "weights moved.")


@q.case("does not change w0 in place", kind="property",
        hint="In-place update of w0: copy it first, or build a new array at each step.")
def _(gradient_descent):
    call(gradient_descent, _quadratic_grad, np.array([1.0, 1.0]), 0.05, 3)


@q.case("matches the reference trajectory step by step", kind="core", hint=_GD_HINT)
def _(gradient_descent):
    w0 = np.array([2.0, -1.0])
    got = call(gradient_descent, _quadratic_grad, w0.copy(), 0.15, 10,
               check_mutation=False)
    expected = optim.gradient_descent(_quadratic_grad, w0, 0.15, 10)
    expect_close(_trajectory(got, expected.shape), expected, rtol=1e-7, atol=1e-10,
                 what="your trajectory")


@q.case("matches the reference on a tilted bowl in 3-D (lr = 0.05, 8 steps)",
        kind="core", hint=_GD_HINT)
def _(gradient_descent):
    w0 = np.array([0.0, 0.0, 0.0])
    got = call(gradient_descent, _tilted_grad, w0.copy(), 0.05, 8, check_mutation=False)
    expected = optim.gradient_descent(_tilted_grad, w0, 0.05, 8)
    expect_close(_trajectory(got, expected.shape), expected, rtol=1e-7, atol=1e-10,
                 what="your trajectory")


@q.case("matches the reference in one dimension (lr = 0.1, 5 steps)", kind="core",
        hint=_GD_HINT)
def _(gradient_descent):
    w0 = np.array([-1.0])
    got = call(gradient_descent, _line_grad, w0.copy(), 0.1, 5, check_mutation=False)
    expected = optim.gradient_descent(_line_grad, w0, 0.1, 5)
    expect_close(_trajectory(got, expected.shape), expected, rtol=1e-7, atol=1e-10,
                 what="your trajectory")


@q.case("converges to the minimum of an ill-conditioned quadratic with lr = 1/L",
        hint="With lr = 1/L = 0.1 and 300 steps the last row should be within 1e-6 of "
             "the minimum (0, 0): check the sign of the update and that you return "
             "every step.")
def _(gradient_descent):
    got = call(gradient_descent, _quadratic_grad, np.array([3.0, 3.0]), 0.1, 300,
               check_mutation=False)
    traj = _trajectory(got, (301, 2))
    if not np.isfinite(traj).all():
        raise CheckFailure("Your trajectory contains NaN or infinity: the iterates "
                           "blew up.")
    expect_close(traj[-1], np.zeros(2), atol=1e-6,
                 what="the last row of your trajectory")
