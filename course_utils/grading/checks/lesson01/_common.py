"""What the checks of lesson 01's questions share."""
from __future__ import annotations

import numpy as np

from ...asserts import (CheckFailure, _short, as_number, call, expect_close,
                        expect_shape, to_numpy)
from .._shared import _same_values as _matches  # noqa: F401 - for the checks


# ------------------------------------------------------------------ shared helpers
def _vector(got, d: int, what: str) -> np.ndarray:
    """``got`` as a float64 vector of shape (d,); None, a bad shape or NaN is basic."""
    expect_shape(got, (d,), what=what)
    arr = to_numpy(got).astype(np.float64)
    if not np.isfinite(arr).all():
        raise CheckFailure(f"{what} contains NaN or infinity: look for a division by "
                           "zero, log(0) or an overflowing exp.", basic=True)
    return arr


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
