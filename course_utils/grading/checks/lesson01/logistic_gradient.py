"""Checks of 01.logistic_gradient: Gradient of the logistic loss."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure, call, expect_close, expect_shape
from ...registry import question
from ._common import (_GRADIENT_TOL, _check_downhill, _check_factor, _f64, _matches,
                      _multiple, _vector)


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
