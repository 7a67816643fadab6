"""Checks of lesson 00 (warm-up): how a check works, on four tiny questions.

Core cases compare the answer's values with a reference on one input each (only
they earn credit); mistake cases recognise one typical mistake each and name it;
property cases check the type, the shape and that the input is left alone.
Reference implementations are the oracles.
"""
from __future__ import annotations

import numpy as np
import torch

from ..asserts import (CheckFailure, as_number, call, expect_close, expect_equal,
                       expect_finite, expect_shape, expect_type)
from ..registry import question
from ._shared import _same_values as _matches

# --------------------------------------------------------------------------- 00.add
q = question("00.add", "Add two numbers", answers=["add"], points=1, timeout=2)


@q.case("adds two integers", kind="core",
        hint="Use the + operator, and `return` the sum: printing it returns None.")
def _(add):
    expect_equal(call(add, 2, 3), 5, what="add(2, 3)")


@q.case("adds two floats", kind="core",
        hint="Do not round or convert to int: two floats add up to a float.")
def _(add):
    expect_close(call(add, 0.25, 0.5), 0.75, what="add(0.25, 0.5)")


@q.case("adds NumPy arrays element-wise, with broadcasting", kind="core",
        hint="+ works on whole arrays, element by element: no loop needed, and a (3,) "
             "row added to a (2, 3) array is broadcast over both rows.")
def _(add):
    a = np.arange(6.0).reshape(2, 3)  # (2, 3)
    b = np.array([10.0, 20.0, 30.0])  # (3,)
    expect_close(call(add, a, b), a + b, what="add(a, b)")


# --------------------------------------------------------------------------- 00.mean
def _mean_ref(X: np.ndarray) -> np.ndarray:
    return X.sum(axis=0) / X.shape[0]  # (D,)


q = question("00.mean", "Column means of a data matrix", answers=["mean"], points=1,
             timeout=5)

_SMALL = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [6.0, 60.0]])  # (N, D) (4, 2)


@q.case("returns one mean per column: shape (D,)", kind="property",
        hint="Average over the rows (axis=0): X has shape (N, D), so the result has "
             "one entry per column, shape (D,).")
def _(mean):
    X = np.arange(12.0).reshape(4, 3)  # (N, D) = (4, 3)
    got = call(mean, X)
    expect_shape(got, (3,), what="mean(X) for X of shape (4, 3)")


@q.case("divides by the number of rows N (not the number of columns, not N - 1)",
        hint="The mean of a column is its sum over the N rows divided by N, the length "
             "of the column: not by D (the number of columns) and not by N - 1.")
def _(mean):
    X = _SMALL
    got = call(mean, X)
    expect_shape(got, (2,), what="mean(X) for X of shape (4, 2)")
    n, d = X.shape
    sums = X.sum(axis=0)  # (D,)
    slips = {f"the column sums divided by D = {d} (the number of columns)": sums / d,
             f"the column sums divided by N - 1 = {n - 1}": sums / (n - 1),
             "the column sums, not divided by N": sums}
    for what, slip in slips.items():
        if _matches(got, slip) and not _matches(got, _mean_ref(X)):
            raise CheckFailure(f"mean(X) for X of shape (4, 2) returned {what}.")


@q.case("matches the column means of a small matrix", kind="core",
        hint="Add up each column over its N rows and divide by N.")
def _(mean):
    got = call(mean, _SMALL)
    expect_close(got, _mean_ref(_SMALL), what="mean(X) for X of shape (4, 2)")


@q.case("matches the reference on random data", kind="core",
        hint="Add up each column over its N rows and divide by N.")
def _(mean):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7))  # (N, D)
    expect_close(call(mean, X), _mean_ref(X), what="mean(X) for X of shape (50, 7)")


@q.case("a wide matrix (N < D) still gets one mean per column", kind="core",
        hint="With fewer rows than columns, the mean still runs down each column: over "
             "the N rows.")
def _(mean):
    rng = np.random.default_rng(1)
    X = rng.uniform(-5, 5, size=(3, 5))  # (N, D) = (3, 5)
    expect_close(call(mean, X), _mean_ref(X), what="mean(X) for X of shape (3, 5)")


# ------------------------------------------------------------------------- 00.normalize
def _normalize_ref(X: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x_bar = X.mean(dim=0, keepdim=True)  # (1, D), the column means
    var = ((X - x_bar) ** 2).mean(dim=0, keepdim=True)  # (1, D), population variance
    return (X - x_bar) / torch.sqrt(var + eps)  # (N, D)


def _data(n: int = 8, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    """A batch (n, 3) whose columns have different means and scales (std 1, 5, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    scale = torch.tensor([1.0, 5.0, 0.1], dtype=torch.float64)  # (D,)
    shift = torch.tensor([2.0, -3.0, 10.0], dtype=torch.float64)  # (D,)
    X = X * scale + shift
    return X.to(dtype)


def _normalized(normalize, X: torch.Tensor, *eps) -> torch.Tensor:
    """normalize(X[, eps]) on a copy of X, checked to be a tensor of X's shape."""
    shown = f"normalize(X{', ' + repr(eps[0]) if eps else ''})"
    got = call(normalize, X.clone(), *eps, check_mutation=False, name="normalize")
    expect_type(got, torch.Tensor, what=shown)
    expect_shape(got, tuple(X.shape), what=f"{shown} for X of shape {tuple(X.shape)}")
    return got


_TOL = {"rtol": 1e-4, "atol": 1e-5}


q = question("00.normalize", "Standardize the features of a batch",
             answers=["normalize"], points=1, timeout=5)


@q.case("returns a torch tensor of the same shape", kind="property",
        hint="Compute with torch operations on X (not NumPy, not a Python list), and "
             "keep every row and column: the result has the shape of X.")
def _(normalize):
    _normalized(normalize, _data())


@q.case("leaves X unchanged (returns a new tensor)", kind="property",
        hint="In-place update: `X -= ...` or `X.sub_(...)` changes the caller's "
             "tensor. Build a new tensor from X instead.")
def _(normalize):
    call(normalize, _data())  # call() fails if X changed in place


@q.case("matches the reference on a batch of 8 rows (eps = 1e-5)", kind="core",
        hint="Each column: subtract its mean, then divide by the square root of its "
             "population variance plus eps (see the formula in the question).")
def _(normalize):
    X = _data()
    got = _normalized(normalize, X)
    expect_close(got, _normalize_ref(X), **_TOL, what="normalize(X)")


@q.case("matches the reference with eps = 0.5 (a float64 batch)", kind="core",
        hint="Use the eps your function is given, not a fixed 1e-5, and add it to the "
             "variance under the square root.")
def _(normalize):
    X = _data(n=10, dtype=torch.float64, seed=1)
    expect_close(_normalized(normalize, X, 0.5), _normalize_ref(X, 0.5), **_TOL,
                 what="normalize(X, 0.5)")


@q.case("a constant column becomes 0, not NaN", kind="core",
        hint="A constant column has variance 0, and the formula turns it into 0 / "
             "sqrt(eps) = 0; a NaN here means that eps is missing under the square "
             "root.")
def _(normalize):
    X = _data()
    X[:, 1] = 4.0  # a constant feature
    got = _normalized(normalize, X)
    expect_finite(got, what="normalize(X) with a constant column")
    expect_close(got, _normalize_ref(X), **_TOL,
                 what="normalize(X) with a constant column")


@q.case("normalizes each column (dim=0), not each row",
        hint="Take the mean and the variance over the batch, down each column: dim=0 "
             "(with keepdim=True the (1, D) results broadcast against X).")
def _(normalize):
    X = _data()
    got = _normalized(normalize, X)
    slips = {"each row (over dim=1)": _normalize_ref(X.T).T,
             "the whole batch at once (one mean and one variance for every entry)":
                 _normalize_ref(X.reshape(-1, 1)).reshape(X.shape)}
    for what, slip in slips.items():
        if _matches(got, slip, **_TOL):
            raise CheckFailure(f"normalize(X) standardizes {what}, not each column.")


@q.case("uses the population variance (1/N), not torch.var's default 1/(N - 1)",
        hint="torch.var and torch.std divide by N - 1 by default (the unbiased "
             "estimate); the formula divides by N: average the squared deviations, or "
             "pass unbiased=False (correction=0).")
def _(normalize):
    X = _data()
    got = _normalized(normalize, X)
    x_bar = X.mean(dim=0, keepdim=True)  # (1, D)
    unbiased = X.var(dim=0, keepdim=True)  # (1, D), 1/(N - 1)
    slips = ((X - x_bar) / torch.sqrt(unbiased + 1e-5), (X - x_bar) / unbiased.sqrt())
    for slip in slips:
        if _matches(got, slip, **_TOL) and not _matches(got, _normalize_ref(X), **_TOL):
            raise CheckFailure("normalize(X) divides by the unbiased standard "
                               f"deviation (1/(N - 1) with N = {len(X)}), not the "
                               "population one (1/N).")


@q.case("uses the eps it is given (eps is an argument, not a fixed 1e-5)",
        hint="Use the argument eps in the formula; a hard-coded 1e-5 (or no eps at "
             "all) ignores what the caller asks for.")
def _(normalize):
    X = _data(n=10, dtype=torch.float64, seed=1)
    default = _normalized(normalize, X)
    with_eps = _normalized(normalize, X, 0.5)
    spread = with_eps.detach().double().std(dim=0, unbiased=False)  # (D,)
    standardized = bool(((spread - 1).abs() < 0.1).all())  # standardizes, ignoring eps
    if standardized and _matches(with_eps, default, rtol=1e-9, atol=1e-12):
        raise CheckFailure("normalize(X, 0.5) returned the same as normalize(X): your "
                           "function ignores its eps argument.")


@q.case("adds eps to the variance, inside the square root",
        hint="eps goes under the square root, added to the variance, as in the "
             "formula: not added to the standard deviation after the square root.")
def _(normalize):
    X = _data(n=10, dtype=torch.float64, seed=1)
    got = _normalized(normalize, X, 0.5)
    x_bar = X.mean(dim=0, keepdim=True)  # (1, D)
    std = ((X - x_bar) ** 2).mean(dim=0, keepdim=True).sqrt()  # (1, D)
    if _matches(got, (X - x_bar) / (std + 0.5), **_TOL):
        raise CheckFailure("normalize(X, 0.5) divides by (standard deviation + eps).")


# --------------------------------------------------------------------------- 00.lr
q = question("00.lr", "A learning rate that lands on the minimum in one step",
             answers=["lr"], points=1, timeout=2)


def _grad(w: float) -> float:
    return 2 * (w - 3)  # f'(w) for f(w) = (w - 3)^2


@q.case("the step goes downhill (lr > 0)",
        hint="Gradient descent subtracts lr times the gradient; a negative lr (or 0) "
             "climbs uphill or stays put.")
def _(lr):
    value = as_number(lr, "lr")
    if not value > 0:
        raise CheckFailure(f"lr is {value:g}; a learning rate must be positive.")


@q.case("one step from w = 0 lands on the minimum w = 3", kind="core",
        hint="One step moves w by -lr * f'(0). Compute f'(0), then pick the lr that "
             "makes this move exactly the distance from 0 to the minimum.")
def _(lr):
    value = as_number(lr, "lr")
    w_next = 0.0 - value * _grad(0.0)  # one gradient-descent step on f(w) = (w - 3)^2
    expect_close(w_next, 3.0, rtol=0, atol=1e-9,
                 what=f"w after one step with lr = {value!r}")


@q.case("one step from w = 10 lands on the minimum too", kind="core",
        hint="For f(w) = (w - 3)^2 the right lr works from any start: f'(w) = 2 (w - "
             "3) is proportional to the distance to the minimum.")
def _(lr):
    value = as_number(lr, "lr")
    w_next = 10.0 - value * _grad(10.0)
    expect_close(w_next, 3.0, rtol=0, atol=1e-9,
                 what=f"w after one step from w = 10 with lr = {value!r}")


@q.case("the rate is not the curvature itself (lr = L)", kind="mistake",
        hint="f'' = 2 is the curvature of f, the smoothness constant L of lesson 01. "
             "A step of lr = L overshoots: it lands three times as far past the "
             "minimum as it started short of it. Write one step from w = 0 out and "
             "solve it for lr.")
def _(lr):
    value = as_number(lr, "lr")
    if abs(value - 2.0) < 1e-12:
        raise CheckFailure("lr is 2, the curvature f'' (L) itself: one step from w = 0 "
                           "lands on w = 12, 9 past the minimum where 0 was 3 short.")
