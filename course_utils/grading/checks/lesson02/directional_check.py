"""Checks of 02.directional_check: A gradient check along random directions."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, call, expect_close
from ...registry import question
from ._common import _matches, _on_copies, _parts, _plain_mismatch, _verdict


q = question("02.directional_check", "A gradient check along random directions",
             answers=["directional_check"], timeout=5)


# Test functions with their exact gradients (float64).
def _quad(A):
    """f(x) = x^T A x / 2 + sum(sin x) and its gradient, for a vector x."""
    def f(x):
        return float(0.5 * x @ A @ x + np.sin(x).sum())

    def grad_f(x):
        return 0.5 * (A + A.T) @ x + np.cos(x)

    return f, grad_f


def _matrix_fn(x):  # x: (3, 4)
    return float(np.sum(np.exp(0.3 * x)) + np.sum(x[:, :2] ** 3))


def _matrix_grad(x):
    g = 0.3 * np.exp(0.3 * x)
    g[:, :2] += 3 * x[:, :2] ** 2
    return g


def _central(f, x, U, delta):
    return np.array([(f(x + delta * u) - f(x - delta * u)) / (2 * delta)
                     for u in U])


def _forward(f, x, U, delta):
    return np.array([(f(x + delta * u) - f(x)) / delta for u in U])


def _dots(g, U):
    return np.array([float(np.sum(g * u)) for u in U])


def _answer(fn, f, g, x, U, delta):
    got = _on_copies(fn, f, g, x, U, delta, name="directional_check")
    return _parts(got, ("numeric", "analytic"), "directional_check")


def _setup(seed, kind, k):
    rng = np.random.default_rng(seed)
    if kind == "vector":
        n = 6
        A = rng.standard_normal((n, n))
        f, grad = _quad(A)
        x = rng.standard_normal(n)
    else:
        f, grad = _matrix_fn, _matrix_grad
        x = rng.standard_normal((3, 4))
    U = rng.standard_normal((k, *x.shape))  # (k, *x.shape)
    return f, grad(x), x, U


# The steps are large enough that a central difference differs from the exact slope
# by more than the tolerance: numeric must be measured, not copied from grad.
_HINT = ("Measure each slope along the row U[i] itself, not along a coordinate: "
         "numeric with the central difference the lesson taught and the step delta "
         "you are given; analytic from grad and U[i] alone, with every entry of both "
         "arrays taking part.")


def _core(fn, seed, kind, k, delta):
    f, g, x, U = _setup(seed, kind, k)
    numeric, analytic = _answer(fn, f, g, x, U, delta)
    expect_close(analytic, _dots(g, U), rtol=1e-9, atol=1e-12,
                 what=f"analytic ({k} directions, x of shape {x.shape})")
    expect_close(numeric, _central(f, x, U, delta), rtol=1e-6, atol=1e-9,
                 what=f"numeric ({k} directions, x of shape {x.shape}, delta={delta})")


@q.case("a vector x of 6, 5 directions, delta=0.05", kind="core", hint=_HINT)
def _(directional_check):
    _core(directional_check, 0, "vector", 5, 0.05)


@q.case("a (3, 4) matrix x, 8 directions, delta=0.1", kind="core", hint=_HINT)
def _(directional_check):
    _core(directional_check, 1, "matrix", 8, 0.1)


@q.case("a vector x of 6, 3 directions, delta=0.02", kind="core", hint=_HINT)
def _(directional_check):
    _core(directional_check, 2, "vector", 3, 0.02)


@q.case("a central difference, not a one-sided one", kind="mistake",
        hint="Step both ways, to x + delta u and x - delta u: the one-sided difference "
             "has an error of order delta instead of delta^2.")
def _(directional_check):
    f, g, x, U = _setup(3, "matrix", 4)
    numeric, _ = _answer(directional_check, f, g, x, U, 0.05)
    _verdict(numeric, _central(f, x, U, 0.05), _forward(f, x, U, 0.05),
             "numeric is the one-sided difference (f(x + delta u) - f(x)) / delta.",
             "numeric (delta=0.05)", rtol=1e-6, atol=1e-9)


@q.case("divides by the distance between the two points, 2 delta", kind="mistake",
        hint="The two points are 2 delta apart along u: divide their difference by "
             "that.")
def _(directional_check):
    f, g, x, U = _setup(4, "vector", 4)
    numeric, _ = _answer(directional_check, f, g, x, U, 1e-4)
    expected = _central(f, x, U, 1e-4)
    _verdict(numeric, expected, 2 * expected,
             "numeric is twice the slope: the difference was divided by delta, not "
             "2 delta.",
             "numeric (delta=1e-4)", rtol=1e-6, atol=1e-9)


@q.case("uses the step delta it is given", kind="mistake",
        hint="Use the argument delta: a step fixed inside the function ignores the "
             "caller's choice.")
def _(directional_check):
    f, g, x, U = _setup(5, "matrix", 4)
    numeric, _ = _answer(directional_check, f, g, x, U, 0.1)
    expected = _central(f, x, U, 0.1)
    if _matches(numeric, expected, 1e-6, 1e-9):
        return
    for fixed in (1e-4, 1e-5, 1e-6, 1e-7, 1e-3):
        if _matches(numeric, _central(f, x, U, fixed), 1e-5, 1e-8):
            raise CheckFailure(f"called with delta=0.1, numeric equals the central "
                               f"difference with a step of {fixed:g}.")
    _plain_mismatch(numeric, expected, "numeric (delta=0.1)", 1e-6, 1e-9)


@q.case("the directions are used as given, not normalised", kind="mistake",
        hint="Compare the slopes along U[i] itself: rescaling u rescales both slopes, "
             "and the caller's numbers no longer line up with its directions.")
def _(directional_check):
    f, g, x, U = _setup(6, "vector", 4)
    U = U * 3.0  # rows of norm about 7
    numeric, analytic = _answer(directional_check, f, g, x, U, 1e-5)
    norms = np.sqrt((U ** 2).reshape(len(U), -1).sum(axis=1))
    _verdict(analytic, _dots(g, U), _dots(g, U) / norms,
             "analytic is the slope along U[i] / ||U[i]||, the normalised direction.",
             "analytic", rtol=1e-9, atol=1e-12)


@q.case("one entry per direction; x left unchanged", kind="property",
        hint="Return two arrays of shape (k,), one number per direction, and evaluate "
             "f on new arrays (x plus delta times u), never by changing x in place.")
def _(directional_check):
    f, g, x, U = _setup(7, "matrix", 5)
    got = call(directional_check, f, g, x, U, 1e-5, name="directional_check")
    numeric, analytic = _parts(got, ("numeric", "analytic"), "directional_check")
    for name, arr in (("numeric", numeric), ("analytic", analytic)):
        if np.shape(arr) != (5,):
            raise CheckFailure(f"{name} has shape {np.shape(arr)}; with 5 directions "
                               "it should be (5,).", basic=True)
