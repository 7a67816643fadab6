"""What the checks of lesson 09's questions share: basic failures, short numbers for
messages, seeded generators, a tolerant comparison of numbers, and the reading of a list
of ints that an answer returned.

The references are written in each question's module, from their definitions and from
PyTorch itself; the tests check them against the lesson's library
(``course_utils.lessons.distributed``), which the checks themselves do not import.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ...asserts import _short
from .._shared import (NOT_JUDGED, _agrees, _basic,  # noqa: F401 - for the checks
                       _not_judged, _num, generator, seeded)

GB = 10 ** 9  # as the ZeRO paper and the lesson count (GPU makers too)


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    """Are two numbers equal to a relative tolerance (and an absolute one near 0)?"""
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _ints(got, what: str) -> list[int]:
    """``got`` (a list, tuple, 1-D int array or tensor of ints) as a list of ints."""
    if got is None:
        raise _basic(f"{what} is None: did you forget to `return` it?", problem="none")
    if isinstance(got, torch.Tensor):
        if got.ndim != 1 or got.is_floating_point():
            raise _basic(f"{what} should be a list of ints, but it is {_short(got)}.",
                         problem="type")
        return [int(v) for v in got.tolist()]
    if isinstance(got, np.ndarray):
        if got.ndim != 1 or not np.issubdtype(got.dtype, np.integer):
            raise _basic(f"{what} should be a list of ints, but it is {_short(got)}.",
                         problem="type")
        return [int(v) for v in got]
    if not isinstance(got, (list, tuple, range)):
        raise _basic(f"{what} should be a list of ints, but it is a "
                     f"{type(got).__name__}: {_short(got)}", problem="type")
    out = []
    for v in got:
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise _basic(f"{what} should hold ints, but it holds {_short(v)} "
                         f"({type(v).__name__}).", problem="type")
        out.append(int(v))
    return out

