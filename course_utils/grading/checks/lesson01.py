"""Checks of lesson 01 (gradient descent): one question per ``q = question(...)``.

The reference answers are ``course_utils.optim`` (the code the lesson teaches) and, for
the PyTorch step, a reference step with the same optimizer. Core cases compare the
answer's values with the reference on one input each (only they earn credit); a mistake
case recognises one typical mistake, fails only when the answer shows it, and its hint
names it; property cases check the shape, the type and that inputs are left alone.
"""
from __future__ import annotations

import math

import numpy as np

from course_utils import optim

from ..asserts import (CheckFailure, _short, as_number, call, expect_close,
                       expect_shape, to_numpy, tolerance_for)
from ..registry import question


# ----------------------------------------------------------------------- shared helpers
def _linear_problem(seed: int, n: int = 7, d: int = 3, dtype=np.float64):
    """A seeded regression problem with N != D (so a transposed X cannot pass)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n)
    w = rng.normal(size=d)
    return w.astype(dtype), X.astype(dtype), y.astype(dtype)


def _f64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def _vector(got, d: int, what: str) -> np.ndarray:
    """``got`` as a float64 vector of shape (d,); None, a bad shape or NaN is basic."""
    expect_shape(got, (d,), what=what)
    arr = to_numpy(got).astype(np.float64)
    if not np.isfinite(arr).all():
        raise CheckFailure(f"{what} contains NaN or infinity: look for a division by "
                           "zero, log(0) or an overflowing exp.", basic=True)
    return arr


def _matches(got, expected, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Does ``got`` equal ``expected`` in shape and values (dtype-aware tolerances)?"""
    g = to_numpy(got).astype(np.float64)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    rtol, atol = tolerance_for(got, rtol, atol, e)
    return g.shape == e.shape and bool(np.allclose(g, e, rtol=rtol, atol=atol))


def _multiple(got, ref, rtol: float = 1e-4) -> float | None:
    """The factor r when ``got`` is r times ``ref`` (to ``rtol``), else None.

    Used to tell a wrong factor (a missing 1/N, 2 or lr) from a wrong formula: only an
    answer that is exactly parallel to the reference is diagnosed by its factor.
    """
    g = to_numpy(got).astype(np.float64).ravel()
    r_ = np.asarray(ref, dtype=np.float64).ravel()
    if g.shape != r_.shape or not r_ @ r_ > 0 or not g @ g > 0:
        return None
    r = float(g @ r_ / (r_ @ r_))
    if np.linalg.norm(g - r * r_) <= rtol * np.linalg.norm(g):
        return r
    return None


def _check_factor(got, ref, n: int) -> None:
    """Fail if ``got`` is ~N times (no 1/N) or ~1/N times (1/N twice) the true one."""
    r = _multiple(got, ref)
    if r is None:
        return
    if abs(r / n - 1) < 0.02:
        raise CheckFailure(f"With N = {n} your gradient is N = {n} times the true one: "
                           "it is a sum over the examples, not a mean.")
    if abs(r / (n / 2) - 1) < 0.02:
        raise CheckFailure(f"With N = {n} your gradient is N / 2 = {n / 2:g} times the "
                           "true one: the 1/N is missing (and so is the factor 2).")
    if abs(r * n - 1) < 0.02:
        raise CheckFailure(f"With N = {n} your gradient is 1/{n} of the true one: "
                           "divided by N twice?")


def _check_downhill(got, ref) -> None:
    """Fail if moving along ``got`` lowers the loss (an obtuse angle with ``ref``)."""
    if float(np.dot(got, ref)) < 0:
        raise CheckFailure("Moving w a little along your gradient lowers the loss: it "
                           "points downhill, against the true gradient.")


_GRADIENT_TOL = {"rtol": 1e-6, "atol": 1e-9}  # expect_close loosens them for float32


# ====================================================================== 01.mse_gradient
q = question("01.mse_gradient", "Gradient of the mean squared error",
             answers=["mse_gradient"], timeout=5)


@q.case("returns a vector of shape (D,) for X of shape (N, D) with N != D",
        kind="property",
        hint="Transposed X, or a sum/mean over the wrong axis? The gradient has one "
             "entry per weight: it collects the N residuals, one per example, through "
             "X transposed, a (D, N) by (N,) product.")
def _(mse_gradient):
    w, X, y = _linear_problem(0)
    expect_shape(call(mse_gradient, w, X, y), (3,), what="your gradient")


@q.case("points uphill: moving along it increases the loss",
        hint="Wrong sign: the residual is the prediction minus the target, not the "
             "other way round. The gradient points uphill; gradient descent subtracts "
             "it later.")
def _(mse_gradient):
    w, X, y = _linear_problem(1)
    got = _vector(call(mse_gradient, w, X, y), 3, "your gradient")
    _check_downhill(got, optim.mse_gradient(w, X, y))


@q.case("averages over the N examples (the 1/N of the mean, once)",
        hint="Missing 1/N (or 1/N applied twice): the loss is a mean, so the sum over "
             "the examples is divided by N = len(y), once.")
def _(mse_gradient):
    w, X, y = _linear_problem(2, n=50)
    got = _vector(call(mse_gradient, w, X, y), 3, "your gradient")
    _check_factor(got, optim.mse_gradient(w, X, y), 50)


@q.case("has the factor 2 of the stated convention L = (1/N) ||X w - y||^2",
        hint="Missing factor 2: the derivative of a square brings down a 2. The 1/2 "
             "convention belongs to a loss written with 1/(2N); ours has none.")
def _(mse_gradient):
    w, X, y = _linear_problem(3)
    got = _vector(call(mse_gradient, w, X, y), 3, "your gradient")
    r = _multiple(got, optim.mse_gradient(w, X, y))
    if r is not None and abs(r - 0.5) < 0.01:
        raise CheckFailure("Your gradient is half the true one.")


_MSE_HINT = ("Differentiate each squared residual with the chain rule (the square "
             "brings down a 2, the inner derivative is a row of X), add up over the N "
             "examples as one matrix product, and divide by N.")


@q.case("matches the reference gradient on random data (N = 11, D = 4)", kind="core",
        hint=_MSE_HINT)
def _(mse_gradient):
    w, X, y = _linear_problem(4, n=11, d=4)
    got = call(mse_gradient, w, X, y)
    expect_close(got, optim.mse_gradient(w, X, y), **_GRADIENT_TOL,
                 what="your gradient")


@q.case("matches the reference gradient on a small problem (N = 5, D = 2)", kind="core",
        hint=_MSE_HINT)
def _(mse_gradient):
    w, X, y = _linear_problem(5, n=5, d=2)
    got = call(mse_gradient, w, X, y)
    expect_close(got, optim.mse_gradient(w, X, y), **_GRADIENT_TOL,
                 what="your gradient")


@q.case("matches the reference gradient for float32 inputs (N = 40, D = 6)",
        kind="core", hint=_MSE_HINT)
def _(mse_gradient):
    w, X, y = _linear_problem(6, n=40, d=6, dtype=np.float32)
    got = call(mse_gradient, w, X, y)
    expect_close(got, optim.mse_gradient(*_f64(w, X, y)), **_GRADIENT_TOL,
                 what="your gradient (float32 inputs)")


# =========================================================================== 01.gd_step
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


# ================================================================== 01.gradient_descent
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


# ================================================================= 01.logistic_gradient
q = question("01.logistic_gradient", "Gradient of the logistic loss",
             answers=["logistic_gradient"], timeout=5)


def _logistic_problem(seed: int, n: int = 9, d: int = 3, scale: float = 1.0,
                      dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(np.float64)
    w = scale * rng.normal(size=d)
    return w.astype(dtype), X.astype(dtype), y.astype(dtype)


@q.case("returns a vector of shape (D,) for X of shape (N, D) with N != D",
        kind="property",
        hint="Transposed X, or a sum/mean over the wrong axis? The gradient has one "
             "entry per weight: it collects the N errors (prediction minus label), one "
             "per example, through X transposed, a (D, N) by (N,) product.")
def _(logistic_gradient):
    w, X, y = _logistic_problem(0)
    expect_shape(call(logistic_gradient, w, X, y), (3,), what="your gradient")


@q.case("points uphill: moving along it increases the loss",
        hint="Wrong sign: the error is the predicted probability minus the label, not "
             "the other way round.")
def _(logistic_gradient):
    w, X, y = _logistic_problem(1)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    _check_downhill(got, optim.logistic_gradient(w, X, y))


@q.case("averages over the N examples (the 1/N of the mean, once)",
        hint="Missing 1/N (or 1/N applied twice): the loss is the mean cross-entropy, "
             "so divide the sum over the examples by N = len(y), once.")
def _(logistic_gradient):
    w, X, y = _logistic_problem(2, n=60)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    _check_factor(got, optim.logistic_gradient(w, X, y), 60)


@q.case("passes the logits through the sigmoid (large weights)",
        hint="Forgot the sigmoid: the prediction is a probability, the sigmoid of the "
             "logit, not the logit itself.")
def _(logistic_gradient):
    w, X, y = _logistic_problem(3, scale=4.0)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    linear = X.T @ (X @ w - y)  # (D,) the gradient without the sigmoid, up to a factor
    true = optim.logistic_gradient(w, X, y)  # (D,)
    if _multiple(got, linear) is not None and _multiple(got, true) is None:
        raise CheckFailure("Your gradient is that of a linear model: it uses the "
                           "logits X @ w where the predicted probabilities belong.")


@q.case("is the cross-entropy gradient: no factor 2 and no extra sigmoid derivative",
        hint="Squared-error habits: for the cross-entropy the derivative with respect "
             "to a logit is exactly p_i - y_i (the sigmoid's derivative p (1 - p) "
             "cancels against that of the log), so there is no factor 2 and no "
             "extra p * (1 - p).")
def _(logistic_gradient):
    w, X, y = _logistic_problem(5, n=11, d=3, scale=2.0)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    p = optim.sigmoid(X @ w)  # (N,)
    slips = {
        "2 times the true one (a factor 2 from the squared error)":
            2 * X.T @ (p - y) / len(y),
        "the true one with an extra sigmoid derivative p * (1 - p) in each term "
        "(the gradient of a squared error on p)":
            X.T @ ((p - y) * p * (1 - p)) / len(y),
        "2 times the true one with an extra p * (1 - p) in each term (the gradient "
        "of the mean squared error on p)":
            2 * X.T @ ((p - y) * p * (1 - p)) / len(y),
    }
    for what, slip in slips.items():
        if _matches(got, slip, rtol=1e-5, atol=1e-9):
            raise CheckFailure(f"Your gradient is {what}.")


_LOGISTIC_HINT = ("The derivative of the mean cross-entropy with respect to logit i is "
                  "(p_i - y_i) / N; collect it over the examples with X transposed.")


@q.case("matches the reference gradient on random data (N = 13, D = 4)", kind="core",
        hint=_LOGISTIC_HINT)
def _(logistic_gradient):
    w, X, y = _logistic_problem(4, n=13, d=4)
    got = call(logistic_gradient, w, X, y)
    expect_close(got, optim.logistic_gradient(w, X, y), **_GRADIENT_TOL,
                 what="your gradient")


@q.case("matches the reference gradient with large weights (N = 30, D = 3)",
        kind="core", hint=_LOGISTIC_HINT)
def _(logistic_gradient):
    w, X, y = _logistic_problem(6, n=30, d=3, scale=3.0)
    got = call(logistic_gradient, w, X, y)
    expect_close(got, optim.logistic_gradient(w, X, y), **_GRADIENT_TOL,
                 what="your gradient")


@q.case("matches the reference gradient for float32 inputs (N = 20, D = 5)",
        kind="core", hint=_LOGISTIC_HINT)
def _(logistic_gradient):
    w, X, y = _logistic_problem(7, n=20, d=5, scale=2.0, dtype=np.float32)
    got = call(logistic_gradient, w, X, y)
    expect_close(got, optim.logistic_gradient(*_f64(w, X, y)), **_GRADIENT_TOL,
                 what="your gradient (float32 inputs)")


# ============================================================================ schedules
def _lrs(fn, name: str, ts, *args, where=None) -> np.ndarray:
    """The learning rates ``fn(t, *args)`` for t in ``ts``, in the answer's precision.

    A None is a basic failure that names the call (and, with ``where``, the branch of t
    it is in); anything that is not one number is a basic failure of ``as_number``.
    """
    values, float32 = [], False
    for t in ts:
        got = call(fn, t, *args, check_mutation=False, name=name)
        text = f"{name}({', '.join(_short(a, 40) for a in (t, *args))})"
        if got is None:
            branch = where(t) if where else "on every path of your code"
            raise CheckFailure(f"{text} returned None: is there a return "
                               f"{branch}?", basic=True)
        values.append(as_number(got, text))
        float32 = float32 or str(getattr(got, "dtype", "")).endswith("float32")
    return np.array(values, dtype=np.float32 if float32 else np.float64)


def _schedule_core(fn, name: str, reference, ts, *args, where=None) -> None:
    """Core case of a schedule: its values at ``ts`` against ``reference``."""
    got = _lrs(fn, name, ts, *args, where=where)
    expected = np.array([reference(t, *args) for t in ts])
    if len(ts) <= 8:
        shown = ", ".join(str(t) for t in ts)
    else:
        shown = f"{ts[0]}, {ts[1]}, ..., {ts[-1]}"
    expect_close(got, expected, rtol=1e-9, atol=1e-12,
                 what=f"your learning rates at t = {shown}")


# ----------------------------------------------------------------- 01.exponential_decay
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


# ------------------------------------------------------------------------ 01.step_decay
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


# --------------------------------------------------------------------- 01.cosine_warmup
q = question("01.cosine_warmup", "Cosine decay with linear warmup",
             answers=["cosine_warmup"], timeout=5)
_W, _T = 5, 45  # warmup steps, total steps


def _branch(W: int, T: int):
    """The branch of the formula t is in, for "returned None: is there a return?"."""

    def branch(t: int) -> str:
        if t < W:
            return "for t < W"
        return "for t > T" if t > T else "for W <= t <= T"

    return branch


@q.case("the first warmup step already learns: lr_max / W at t = 0",
        hint="Off by one in the warmup: a line that is 0 at t = 0 wastes the first "
             "step. The warmup counts the steps from 1 (the t + 1 of the formula).")
def _(cosine_warmup):
    got = _lrs(cosine_warmup, "cosine_warmup", [0], 1.0, _W, _T, 0.0,
               where=_branch(_W, _T))
    expect_close(got[0], 1.0 / _W, what=f"cosine_warmup(0, 1.0, {_W}, {_T}, 0.0)")


@q.case("warms up linearly and reaches lr_max at t = W - 1 and t = W",
        hint="The warmup is a straight line from lr_max / W at t = 0 up to lr_max "
             "at t = W - 1; the cosine then starts at lr_max at t = W.")
def _(cosine_warmup):
    got = _lrs(cosine_warmup, "cosine_warmup", range(_W + 1), 1.0, _W, _T, 0.0,
               where=_branch(_W, _T))
    expect_close(got, np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.0]), rtol=1e-9,
                 what="your learning rates at t = 0..W")


@q.case("is halfway between lr_max and lr_min halfway through the decay",
        hint="The cosine runs over the T - W steps after the warmup: its progress goes "
             "from 0 at t = W to 1 at t = T (count from W, not from 0), and the cosine "
             "takes pi times the progress, not 2 pi.")
def _(cosine_warmup):
    mid = _W + (_T - _W) // 2
    got = _lrs(cosine_warmup, "cosine_warmup", [mid], 1.0, _W, _T, 0.2,
               where=_branch(_W, _T))
    expect_close(got[0], 0.6, rtol=1e-9,
                 what=f"cosine_warmup({mid}, 1.0, {_W}, {_T}, 0.2)")


@q.case("ends at lr_min at t = T and stays there",
        hint="At t = T the progress is 1 and cos(pi) = -1, giving lr_min; after T hold "
             "the progress at 1 (clip it), or the cosine climbs back up.")
def _(cosine_warmup):
    got = _lrs(cosine_warmup, "cosine_warmup", [_T, _T + 1, 2 * _T], 1.0, _W, _T, 0.2,
               where=_branch(_W, _T))
    expect_close(got, np.full(3, 0.2), rtol=1e-9,
                 what="your learning rates at t = T, T + 1, 2T")


_COSINE_HINT = ("Three pieces: the straight warmup line for t < W, the half cosine "
                "from lr_max down to lr_min for W <= t <= T, and lr_min after T.")


@q.case("matches the reference at every step (W = 4, T = 40)", kind="core",
        hint=_COSINE_HINT)
def _(cosine_warmup):
    _schedule_core(cosine_warmup, "cosine_warmup", optim.cosine_warmup,
                   list(range(0, 60, 3)), 0.3, 4, 40, 0.01, where=_branch(4, 40))


@q.case("matches the reference with lr_min = 0.2 (W = 5, T = 45)", kind="core",
        hint=_COSINE_HINT)
def _(cosine_warmup):
    _schedule_core(cosine_warmup, "cosine_warmup", optim.cosine_warmup,
                   list(range(0, 51, 2)), 1.0, _W, _T, 0.2, where=_branch(_W, _T))


@q.case("matches the reference with a one-step warmup (W = 1, T = 10)", kind="core",
        hint=_COSINE_HINT)
def _(cosine_warmup):
    _schedule_core(cosine_warmup, "cosine_warmup", optim.cosine_warmup, list(range(13)),
                   0.5, 1, 10, 0.0, where=_branch(1, 10))


# ===================================================================== 01.momentum_step
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


# ======================================================================= 01.torch_train
q = question("01.torch_train", "Make it train with `torch.optim`",
             answers=["train_step"], timeout=20)


def _torch_setup(seed: int = 0, optimizer: str = "SGD", hidden: int = 0, **hyper):
    """A seeded regression batch, a fresh model (no .grad yet), MSELoss, an optimizer.

    The model is built under a forked RNG: the learner's global torch seed stays put.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.randn(32, 3, generator=g)  # (N, D)
    y = X @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3  # (N, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hidden:
            model = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.Tanh(),
                                        torch.nn.Linear(hidden, 1))
        else:
            model = torch.nn.Linear(3, 1)
    loss_fn = torch.nn.MSELoss()
    opt = getattr(torch.optim, optimizer)(model.parameters(), **(hyper or {"lr": 0.1}))
    return model, X, y, loss_fn, opt


def _reference_step(model, X, y, loss_fn, optimizer) -> float:
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _accumulating_step(model, X, y, loss_fn, optimizer) -> float:
    """The classic bug: no zero_grad, so .grad holds the sum of the gradients so far."""
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _parameters(model) -> list:
    return [p.detach().clone() for p in model.parameters()]


def _same_parameters(a, b, rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    return all(_matches(x, y, rtol, atol) for x, y in zip(a, b))


def _steps_match_reference(train_step, num_steps: int, optimizer: str, hidden: int = 0,
                           **hyper):
    """Core: each of ``num_steps`` learner steps leaves the parameters where a reference
    step with the same (given) optimizer does, from the same start."""
    mine = _torch_setup(1, optimizer, hidden, **hyper)
    ref = _torch_setup(1, optimizer, hidden, **hyper)
    shown = _short(mine[4])
    for k in range(1, num_steps + 1):
        call(train_step, *mine, check_mutation=False)
        _reference_step(*ref)
        for (name, p), r in zip(mine[0].named_parameters(), ref[0].parameters()):
            expect_close(p.detach(), r.detach(), rtol=1e-5, atol=1e-7,
                         what=f"{name} after {k} call(s) of train_step with {shown}")


_TRAIN_HINT = ("One step with the optimizer you are given: clear the old gradients "
               "(before backward() or after step()), compute the loss, backpropagate "
               "it, and let that optimizer update the parameters.")


@q.case("returns the loss of the batch (before the update)",
        hint="Return the loss computed on (X, y) in this step, before the optimizer "
             "changed the parameters, as a Python number.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    expected = loss_fn(model(X), y).item()
    got = call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    value = as_number(got, "the loss train_step returned")
    after = loss_fn(model(X), y).item()
    before_ok = math.isclose(value, expected, rel_tol=1e-5)
    if not before_ok and math.isclose(value, after, rel_tol=1e-5):
        raise CheckFailure(f"train_step returned {value:.6g}, the loss after the "
                           f"update; expected {expected:.6g}, the loss of the batch "
                           "before it.")
    expect_close(value, expected, rtol=1e-5, what="the loss train_step returned")


@q.case("returns a Python number (loss.item()), not a tensor", kind="property",
        hint="Return a plain float: the tensor `loss` keeps its whole computation "
             "graph alive (memory grows with every loss you store), and a list of such "
             "tensors cannot be plotted directly. Tensors have a method that gives "
             "their one number.")
def _(train_step):
    import torch

    model, X, y, loss_fn, optimizer = _torch_setup()
    got = call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    if isinstance(got, torch.Tensor):
        grad = " that requires grad" if got.requires_grad else ""
        raise CheckFailure(f"train_step returned a tensor of shape {tuple(got.shape)}"
                           f"{grad}, not a Python float.")


@q.case("changes the parameters (loss.backward() then optimizer.step())",
        hint="No update: backpropagate the loss to fill the gradients, then let the "
             "optimizer step to apply them (zeroing the gradients between the two "
             "erases them).")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    before = _parameters(model)
    call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    if all(bool((p.detach() == b).all()) for p, b in zip(model.parameters(), before)):
        raise CheckFailure("After one train_step the parameters are unchanged.")


@q.case("steps with the optimizer it is given (here Adam)",
        hint="Use the optimizer passed in as the argument `optimizer`: a new "
             "torch.optim.SGD made inside train_step ignores the caller's choice of "
             "optimizer, learning rate and momentum, and starts from an empty state at "
             "every call.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup(optimizer="Adam", lr=0.01)
    before = _parameters(model)
    call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    moved = not _same_parameters(_parameters(model), before, rtol=0, atol=0)
    if moved and not optimizer.state:
        raise CheckFailure("The parameters changed, but the optimizer passed in "
                           "(Adam(lr=0.01)) never took a step.")


@q.case("zeroes the gradients between steps (they do not accumulate)",
        hint="Forgot to zero the gradients (the optimizer's zero_grad): PyTorch adds "
             "each new gradient to .grad, so without zeroing (before backward() or "
             "after step()), step k uses the sum of all k gradients so far.")
def _(train_step):
    mine = _torch_setup(2, "SGD", lr=0.05)
    ref = _torch_setup(2, "SGD", lr=0.05)
    acc = _torch_setup(2, "SGD", lr=0.05)
    for k in range(1, 4):
        call(train_step, *mine, check_mutation=False)
        _reference_step(*ref)
        _accumulating_step(*acc)
        got = _parameters(mine[0])
        if _same_parameters(got, _parameters(ref[0])):
            continue
        if k > 1 and _same_parameters(got, _parameters(acc[0])):
            raise CheckFailure(f"After {k} calls of train_step your parameters are "
                               "where steps that never zero the gradients put them: "
                               f"step {k} used the sum of the {k} gradients so far.")
        return  # another mistake: the cases that compare with the reference report it


@q.case("one step with SGD(lr=0.05, momentum=0.9) equals the reference step",
        kind="core", hint=_TRAIN_HINT)
def _(train_step):
    _steps_match_reference(train_step, 1, "SGD", lr=0.05, momentum=0.9)


@q.case("three steps with Adam(lr=0.01) equal three reference steps", kind="core",
        hint=_TRAIN_HINT)
def _(train_step):
    _steps_match_reference(train_step, 3, "Adam", lr=0.01)


@q.case("four steps of SGD(lr=0.2) on a two-layer model equal four reference steps",
        kind="core", hint=_TRAIN_HINT)
def _(train_step):
    _steps_match_reference(train_step, 4, "SGD", hidden=4, lr=0.2)


@q.case("trains: the loss goes down over 50 steps, to under 1% of where it started",
        hint="The loss does not go down: backpropagate the loss itself (not its "
             "negative, not a scaled copy), zero the gradients each step, and let the "
             "optimizer do the update.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup(seed=1)
    start = loss_fn(model(X), y).item()
    for _ in range(50):
        call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    final = loss_fn(model(X), y).item()
    if not math.isfinite(final):
        raise CheckFailure(f"After 50 steps of SGD(lr=0.1) the loss is {final}: the "
                           "update blew up (learning rate, sign?).")
    if not final < 0.01 * start:
        raise CheckFailure(f"The loss went from {start:.4g} to {final:.4g} in 50 steps "
                           "of SGD(lr=0.1); the reference gets under 1% of the start.")
