"""Checks of lesson 00 (warm-up): how a check works, on four tiny questions.

Each case aims at one typical mistake and its hint names it. Reference implementations are the oracles.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from ..asserts import CheckFailure, call, expect_close, expect_equal, expect_finite, expect_shape, expect_type
from ..registry import question

# --------------------------------------------------------------------------- 00.add
q = question("00.add", "Add two numbers", answers=["add"], points=1, timeout=2)


@q.case("adds two integers", hint="Use +; check that you `return` the sum rather than print it.")
def _(add):
    expect_equal(call(add, 2, 3), 5, what="add(2, 3)")


@q.case("adds two floats", hint="Do not round or convert to int: return a + b as it is.")
def _(add):
    expect_close(call(add, 0.25, 0.5), 0.75, what="add(0.25, 0.5)")


@q.case("adds NumPy arrays element-wise, with broadcasting",
        hint="a + b works on whole arrays: no loop needed, and (2, 3) + (3,) broadcasts the row.")
def _(add):
    a = np.arange(6.0).reshape(2, 3)  # (2, 3)
    b = np.array([10.0, 20.0, 30.0])  # (3,)
    expect_close(call(add, a, b), a + b, what="add(a, b)")


# --------------------------------------------------------------------------- 00.mean
def _mean_ref(X: np.ndarray) -> np.ndarray:
    return X.sum(axis=0) / X.shape[0]  # (D,)


q = question("00.mean", "Column means of a data matrix", answers=["mean"], points=1, timeout=5)


@q.case("returns one mean per column: shape (D,)",
        hint="Average over the rows (axis=0): X has shape (N, D), the result has shape (D,).")
def _(mean):
    X = np.arange(12.0).reshape(4, 3)  # (N, D) = (4, 3)
    got = call(mean, X)
    expect_shape(got, (3,), what="mean(X) for X of shape (4, 3)")


@q.case("divides by the number of rows N (not the number of columns, not N - 1)",
        hint="The mean is the sum over the rows divided by N = X.shape[0].")
def _(mean):
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [6.0, 60.0]])  # (4, 2)
    expect_close(call(mean, X), _mean_ref(X), what="mean(X)")


@q.case("matches the reference on random data", hint="Compare with X.mean(axis=0).")
def _(mean):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7))  # (N, D)
    expect_close(call(mean, X), _mean_ref(X), what="mean(X)")


# --------------------------------------------------------------------------- 00.normalize
def _normalize_ref(X: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mu = X.mean(dim=0, keepdim=True)  # (1, D)
    var = ((X - mu) ** 2).mean(dim=0, keepdim=True)  # (1, D), population variance (1/N)
    return (X - mu) / torch.sqrt(var + eps)  # (N, D)


def _data(n: int = 8, d: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -3.0, 10.0])


q = question("00.normalize", "Standardize the features of a batch", answers=["normalize"], points=1, timeout=5)


@q.case("returns a torch tensor of the same shape",
        hint="Build a new tensor with torch operations: (X - mu) / torch.sqrt(var + eps).")
def _(normalize):
    got = call(normalize, _data())
    expect_type(got, torch.Tensor, what="normalize(X)")
    expect_shape(got, (8, 3), what="normalize(X) for X of shape (8, 3)")


@q.case("normalizes each column (dim=0), not each row",
        hint="Take the mean and variance over the batch: dim=0, keepdim=True.")
def _(normalize):
    got = call(normalize, _data())
    col_means = torch.as_tensor(got).double().mean(dim=0)
    expect_close(col_means, torch.zeros(3, dtype=torch.float64), atol=1e-5, what="the column means of normalize(X)")


@q.case("uses the population variance (1/N) and eps inside the square root",
        hint="torch.var and torch.std divide by N - 1 by default: use ((X - mu) ** 2).mean(dim=0) "
             "or X.var(dim=0, unbiased=False), then torch.sqrt(var + eps).")
def _(normalize):
    X = _data()
    expect_close(call(normalize, X), _normalize_ref(X), rtol=1e-4, atol=1e-5, what="normalize(X)")


@q.case("a constant column becomes 0, not NaN",
        hint="Add eps to the variance before the square root, so a column with variance 0 is not divided by 0.")
def _(normalize):
    X = _data()
    X[:, 1] = 4.0  # a constant feature
    got = call(normalize, X)
    expect_finite(got, what="normalize(X) with a constant column")
    expect_close(got, _normalize_ref(X), rtol=1e-4, atol=1e-5, what="normalize(X) with a constant column")


# --------------------------------------------------------------------------- 00.lr
q = question("00.lr", "A learning rate that lands on the minimum in one step", answers=["lr"], points=1, timeout=2)


@q.case("lr is a number", hint="Write a plain number, e.g. lr = 0.1.")
def _(lr):
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise CheckFailure(f"lr should be a number, but it is a {type(lr).__name__}: {lr!r}")


@q.case("the step goes downhill (lr > 0)",
        hint="Gradient descent subtracts lr times the gradient; a negative lr climbs uphill.")
def _(lr):
    if not float(lr) > 0:
        raise CheckFailure(f"lr is {lr!r}; a learning rate must be positive.")


@q.case("one step from w = 0 lands on the minimum w = 3",
        hint="f'(w) = 2 (w - 3), so one step from w = 0 gives w = 0 - lr * (-6) = 6 lr. Solve 6 lr = 3.")
def _(lr):
    w = 0.0
    w_next = w - float(lr) * 2 * (w - 3)  # one gradient-descent step on f(w) = (w - 3)^2
    expect_close(w_next, 3.0, rtol=0, atol=1e-9, what=f"w after one step with lr = {lr!r}")
