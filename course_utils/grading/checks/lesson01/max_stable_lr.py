"""Checks of 01.max_stable_lr: The largest stable learning rate."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, as_number, call, expect_close
from ...registry import question


q = question("01.max_stable_lr", "The largest stable learning rate",
             answers=["max_stable_lr"], timeout=10)


def _smoothness(X: np.ndarray) -> float:
    """L, the largest eigenvalue of the Hessian (2/N) X^T X of (1/N) ||Xw - y||^2."""
    X = np.asarray(X, dtype=np.float64)
    return float(np.linalg.eigvalsh(2.0 / len(X) * X.T @ X)[-1])


def _reference(X: np.ndarray) -> float:
    return 2.0 / _smoothness(X)


def _problem(seed: int, n: int, d: int, scale=None, bias: bool = False) -> np.ndarray:
    """A seeded (N, D) matrix, columns scaled by ``scale``, ones last if ``bias``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (np.ones(d) if scale is None else np.asarray(scale))
    return np.hstack([X, np.ones((n, 1))]) if bias else X  # (N, D [+ 1])


def _rate(max_stable_lr, X) -> float:
    got = call(max_stable_lr, X, check_mutation=True, name="max_stable_lr")
    return as_number(got, f"max_stable_lr(X) for X of shape {X.shape}")


# The slips, each as the rate it gives for X: (what it is, its value).
def _slips(X: np.ndarray) -> list[tuple[str, float]]:
    n = len(X)
    lam = np.linalg.eigvalsh(2.0 / n * X.T @ X)  # ascending
    sigma = np.linalg.svd(X, compute_uv=False)[0]
    return [
        ("2 / lambda_max(X^T X): the Hessian of the MEAN squared error has a 2/N in it",
         2.0 / (lam[-1] * n / 2)),
        ("1 / L, the rate that is best for the steepest direction, not the border of "
         "stability", 1.0 / lam[-1]),
        ("2 / lambda_min: the smallest curvature sets the speed, the largest one "
         "decides stability", 2.0 / lam[0]),
        ("4 / L: the Hessian of (1/N) ||Xw - y||^2 is (2/N) X^T X, the square brings "
         "down a factor 2", 4.0 / lam[-1]),
        ("2 / ((2/N) sigma_max(X)): the eigenvalues of X^T X are the SQUARED singular "
         "values of X", 2.0 / (2.0 / n * sigma)),
    ]


@q.case("is one number", kind="property",
        hint="Return the learning rate as one float, not an array of eigenvalues.")
def _(max_stable_lr):
    _rate(max_stable_lr, _problem(0, 20, 3))


@q.case("uses the Hessian of the mean squared error, and its largest eigenvalue",
        hint="Gradient descent on a quadratic is stable iff lr times EVERY curvature "
             "of the Hessian of the loss is below 2; the largest curvature is the "
             "binding one. Write the Hessian of the loss as given, with its factors.")
def _(max_stable_lr):
    X = _problem(1, 30, 3, scale=[1.0, 3.0, 0.2])
    got = _rate(max_stable_lr, X)
    if np.isclose(got, _reference(X), rtol=1e-6):
        return
    for what, value in _slips(X):
        if np.isclose(got, value, rtol=1e-6):
            raise CheckFailure(f"Your rate is {got:.6g}, which is {what}.")


@q.case("gradient descent just below the rate converges and just above it diverges",
        kind="property",
        hint="At the border the error along the steepest eigenvector is multiplied by "
             "exactly -1 per step: below it shrinks, above it grows.")
def _(max_stable_lr):
    X = _problem(2, 25, 2, scale=[2.0, 0.5], bias=True)
    y = np.random.default_rng(2).normal(size=len(X))
    lr = _rate(max_stable_lr, X)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    ends = []
    for factor in (0.98, 1.02):
        w = np.zeros(X.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(2000):
                w = w - factor * lr * 2.0 / len(y) * X.T @ (X @ w - y)
            ends.append(float(np.linalg.norm(w - w_star)))
    if not (ends[0] < 1e-3 and (ends[1] > 1.0 or not np.isfinite(ends[1]))):
        raise CheckFailure(f"2000 steps at 0.98 and 1.02 times your rate {lr:.6g} end "
                           f"{ends[0]:.3g} and {ends[1]:.3g} away from the minimum: "
                           "the border of stability is elsewhere.")


_HINT = ("Build the Hessian of the loss from X, take its largest eigenvalue L, and "
         "return the border 2 / L.")


@q.case("matches the reference on a 50 x 4 matrix", kind="core", hint=_HINT)
def _(max_stable_lr):
    X = _problem(3, 50, 4)
    expect_close(_rate(max_stable_lr, X), _reference(X), rtol=1e-6,
                 what="max_stable_lr(X), X of shape (50, 4)")


@q.case("matches the reference with a bias column and unscaled features", kind="core",
        hint=_HINT)
def _(max_stable_lr):
    X = _problem(4, 40, 3, scale=[10.0, 1.0, 0.1], bias=True)
    expect_close(_rate(max_stable_lr, X), _reference(X), rtol=1e-6,
                 what="max_stable_lr(X), X of shape (40, 4) with a column of ones")


@q.case("matches the reference with more features than examples", kind="core",
        hint=_HINT)
def _(max_stable_lr):
    X = _problem(5, 6, 9)
    expect_close(_rate(max_stable_lr, X), _reference(X), rtol=1e-6,
                 what="max_stable_lr(X), X of shape (6, 9)")
