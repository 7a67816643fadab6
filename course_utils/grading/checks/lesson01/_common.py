"""What the checks of lesson 01's questions share."""
from __future__ import annotations

import numpy as np

from ...asserts import (CheckFailure, _short, as_number, call, expect_close,
                        expect_shape, to_numpy, tolerance_for)


# ------------------------------------------------------------------ shared helpers
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


# ----------------------------------------------------------------------- schedules
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
