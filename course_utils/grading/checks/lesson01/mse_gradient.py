"""Checks of 01.mse_gradient: Gradient of the mean squared error."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import CheckFailure, call, expect_close, expect_shape
from ...registry import question
from ._common import (_GRADIENT_TOL, _check_downhill, _check_factor, _f64,
                      _linear_problem, _multiple, _vector)


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
