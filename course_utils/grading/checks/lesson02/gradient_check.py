"""Checks of 02.gradient_check: Numerical gradient by central differences."""
from __future__ import annotations

import numpy as np

from ....lessons.mlp_numpy import numerical_gradient as ref_numerical_gradient
from ...asserts import CheckFailure, call, expect_close, expect_shape
from ...registry import question
from ._common import _matches, _plain_mismatch


q = question("02.gradient_check", "Numerical gradient by central differences",
             answers=["numerical_gradient"], timeout=5)


def sum_of_cubes(x):
    """f(x) = sum(x**3); its central difference 3x^2 + eps^2 differs for every eps."""
    return float((x ** 3).sum())


def sum_of_sines(x):
    """f(x) = sum(sin(x)); its central difference is cos(x) sin(eps) / eps."""
    return float(np.sin(x).sum())


_W23 = np.arange(6.0).reshape(2, 3) - 2.5  # (2, 3)


def weighted_cubes(x):
    """f(x) = sum(W * x**3) for a fixed (2, 3) W."""
    return float((_W23 * x ** 3).sum())


def weighted_squares(x):
    """f(x) = sum(W * x**2) for a fixed (2, 3) W."""
    return float((_W23 * x ** 2).sum())


_W4 = np.array([2.0, -1.0, 0.5, 3.0])


def linear(x):
    """f(x) = w . x for a fixed w: every finite difference of it is exact."""
    return float(_W4 @ x)


def _gradient(numerical_gradient, f, x, eps, positional: bool = False):
    """The learner's numerical gradient of f at a copy of x (x is checked elsewhere)."""
    x = np.array(x, dtype=np.float64)
    if positional:
        return call(numerical_gradient, f, x, eps, check_mutation=False,
                    name="numerical_gradient")
    return call(numerical_gradient, f, x, eps=eps, check_mutation=False,
                name="numerical_gradient")


def _central(f, x, eps):
    """The reference central difference of f at (a float64 copy of) x."""
    return ref_numerical_gradient(f, np.array(x, dtype=np.float64), eps)


_NG_HINT = ("For each index i of x: f at x with x[i] raised by eps, minus f at x with "
            "x[i] lowered by eps, over the whole step 2 eps; use the eps argument, "
            "and put x[i] back.")


@q.case("f(x) = sum(x**3) at a vector, eps = 0.05, against the reference", kind="core",
        hint=_NG_HINT)
def _(numerical_gradient):
    x = [1.0, -1.5, 2.0]
    got = _gradient(numerical_gradient, sum_of_cubes, x, 0.05)
    expect_close(got, _central(sum_of_cubes, x, 0.05), rtol=1e-7, atol=1e-9,
                 what="numerical_gradient(sum_of_cubes, x, eps=0.05)")


@q.case("f(x) = sum(W * x**3) at a (2, 3) array, eps = 0.1, against the reference",
        kind="core", hint=_NG_HINT)
def _(numerical_gradient):
    x = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]
    got = _gradient(numerical_gradient, weighted_cubes, x, 0.1)
    expect_close(got, _central(weighted_cubes, x, 0.1), rtol=1e-7, atol=1e-9,
                 what="numerical_gradient(weighted_cubes, x, eps=0.1) for x of shape "
                      "(2, 3)")


@q.case("f(x) = sum(sin(x)) at a vector of 4, eps = 0.2 given by position", kind="core",
        hint=_NG_HINT)
def _(numerical_gradient):
    x = [0.1, -0.5, 0.7, 1.3]
    got = _gradient(numerical_gradient, sum_of_sines, x, 0.2, positional=True)
    expect_close(got, _central(sum_of_sines, x, 0.2), rtol=1e-7, atol=1e-9,
                 what="numerical_gradient(sum_of_sines, x, 0.2)")


@q.case("returns an array shaped like x", kind="property",
        hint="Fill one entry per index of x, and return an array with x's shape (x "
             "may have any number of axes).")
def _(numerical_gradient):
    got = _gradient(numerical_gradient, weighted_squares, np.ones((2, 3)), 1e-3)
    expect_shape(got, (2, 3),
                 what="numerical_gradient(weighted_squares, x) for x of shape (2, 3)")


def _ng_verdict(got, expected, mistakes: dict, what: str, rtol=1e-7, atol=1e-9) -> None:
    """Pass on ``expected``; fail with the message of the first mistake ``got`` equals;
    else plainly."""
    if _matches(got, expected, rtol, atol):
        return
    for message, mistaken in mistakes.items():
        if _matches(got, mistaken, rtol, atol):
            raise CheckFailure(message)
    _plain_mismatch(got, expected, what, rtol, atol)


@q.case("uses the eps it is given (not a fixed step)", kind="mistake",
        hint="Perturb x[i] by the eps argument of the function; a step written as a "
             "number inside it ignores what the caller asks for.")
def _(numerical_gradient):
    x = np.array([0.5, -1.0, 1.5, 2.0])
    got = _gradient(numerical_gradient, sum_of_cubes, x, 0.1)
    exact = 3 * x ** 2
    if _matches(got, _central(sum_of_cubes, x, 0.1)):
        return
    if _matches(got, exact, rtol=0.0, atol=1e-4):
        raise CheckFailure("numerical_gradient(sum_of_cubes, x, eps=0.1) returned "
                           "3x^2 to within 1e-4, the central difference of a much "
                           "smaller step; with eps = 0.1 it is 3x^2 + eps^2 = 3x^2 + "
                           "0.01. The eps argument was not used.")
    _plain_mismatch(got, _central(sum_of_cubes, x, 0.1),
                    "numerical_gradient(sum_of_cubes, x, eps=0.1)")


@q.case("divides by 2*eps: exact for a linear function", kind="mistake",
        hint="The central difference spans the whole step from x - eps to x + eps, 2 "
             "eps: divide by all of it (without parentheses, a / 2 * eps divides by 2 "
             "and multiplies by eps).")
def _(numerical_gradient):
    x = [0.3, -0.7, 1.1, 0.0]
    got = _gradient(numerical_gradient, linear, x, 1e-3)
    _ng_verdict(got, _W4, {
        "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x is 2w, twice the "
        "gradient: f(x + eps) - f(x - eps) was divided by eps instead of 2 eps.":
        2 * _W4,
        "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x is w / 2, half the "
        "gradient: the difference was divided by 4 eps.": _W4 / 2,
        "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x is w times eps^2 = "
        "1e-6 w: the difference was divided by 2 and then multiplied by eps (in "
        "a / 2 * eps the product comes after the division).": _W4 * 1e-6,
    }, "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x",
        rtol=1e-6, atol=1e-12)


def _one_sided(f, x, eps, forward: bool):
    """The forward (or backward) difference of f at x, for every index of x."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x)) / eps if forward else (f(x) - f(x - step)) / eps
    return grad


@q.case("central, not forward difference: error O(eps^2) on sum(x^3)", kind="mistake",
        hint="Evaluate f on both sides of x, at x + eps and at x - eps, not at x + "
             "eps and x: the central difference's error shrinks like eps^2, a "
             "one-sided one only like eps.")
def _(numerical_gradient):
    x = [1.0, -1.5, 2.0]
    got = _gradient(numerical_gradient, sum_of_cubes, x, 1e-2)
    message = ("numerical_gradient(sum_of_cubes, x, eps=1e-2) is the {} difference, "
               "which is off by about 3 x eps; the central difference is off by only "
               "eps^2.")
    _ng_verdict(got, _central(sum_of_cubes, x, 1e-2), {
        message.format("forward"): _one_sided(sum_of_cubes, x, 1e-2, forward=True),
        message.format("backward"): _one_sided(sum_of_cubes, x, 1e-2, forward=False),
    }, "numerical_gradient(sum_of_cubes, x, eps=1e-2)", rtol=1e-7, atol=1e-8)


def _by_rows(f, x, eps):
    """What a loop over range(len(x)) computes: a whole row perturbed at once."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in range(x.shape[0]):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


@q.case("every coordinate of a 2-D x, not one row at a time", kind="mistake",
        hint="Loop over every index of x, not over its rows: range(len(x)) gives "
             "whole rows of a 2-D x (np.ndindex gives every index of an array of any "
             "shape).")
def _(numerical_gradient):
    x = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]
    got = _gradient(numerical_gradient, weighted_squares, x, 1e-5)
    _ng_verdict(got, _central(weighted_squares, x, 1e-5), {
        "for x of shape (2, 3), each entry of the result holds the sum of its row's "
        "partial derivatives: a whole row of x was perturbed at once.":
        _by_rows(weighted_squares, x, 1e-5),
    }, "numerical_gradient(weighted_squares, x) for x of shape (2, 3)",
        rtol=1e-5, atol=1e-7)


@q.case("leaves x as it was (every perturbed entry restored)", kind="property",
        hint="Save each entry before perturbing it and assign the saved value back "
             "afterwards (or perturb a copy of x).")
def _(numerical_gradient):
    original = np.array([0.1, -0.5, 0.7, 1.3])
    x = original.copy()
    call(numerical_gradient, sum_of_sines, x, eps=1e-5, check_mutation=False,
         name="numerical_gradient")
    if np.array_equal(x, original):
        return
    drift = float(np.max(np.abs(x - original)))
    if drift < 1e-12:
        raise CheckFailure(f"x changed by {drift:.1e}: raising x[i] by eps, lowering "
                           "it by 2 eps and raising it by eps again does not come "
                           "back exactly to the old value in floating point (each "
                           "step rounds).")
    raise CheckFailure(f"x changed in place (by up to {drift:.3g}): an entry was left "
                       "perturbed.")
