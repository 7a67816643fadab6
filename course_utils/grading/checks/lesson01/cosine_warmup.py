"""Checks of 01.cosine_warmup: Cosine decay with linear warmup."""
from __future__ import annotations

import numpy as np
from course_utils.lessons import optim

from ...asserts import expect_close
from ...registry import question
from ._common import _lrs, _schedule_core


q = question("01.cosine_warmup", "Cosine decay with linear warmup",
             answers=["cosine_warmup"], timeout=5)
_W, _T = 5, 45  # warmup steps, total steps


def _branch(W: int, T: int):
    """The branch of the formula t is in, for "returned None: is there a return?"."""

    def branch(t: int) -> str:
        if t < W:
            return "for t < W"
        return "for t > T" if t > T else "for W <= t <= T"

    return branch


@q.case("the first warmup step already learns: lr_max / W at t = 0",
        hint="Off by one in the warmup: a line that is 0 at t = 0 wastes the first "
             "step. The warmup counts the steps from 1 (the t + 1 of the formula).")
def _(cosine_warmup):
    got = _lrs(cosine_warmup, "cosine_warmup", [0], 1.0, _W, _T, 0.0,
               where=_branch(_W, _T))
    expect_close(got[0], 1.0 / _W, what=f"cosine_warmup(0, 1.0, {_W}, {_T}, 0.0)")


@q.case("warms up linearly and reaches lr_max at t = W - 1 and t = W",
        hint="The warmup is a straight line from lr_max / W at t = 0 up to lr_max "
             "at t = W - 1; the cosine then starts at lr_max at t = W.")
def _(cosine_warmup):
    got = _lrs(cosine_warmup, "cosine_warmup", range(_W + 1), 1.0, _W, _T, 0.0,
               where=_branch(_W, _T))
    expect_close(got, np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.0]), rtol=1e-9,
                 what="your learning rates at t = 0..W")


@q.case("is halfway between lr_max and lr_min halfway through the decay",
        hint="The cosine runs over the T - W steps after the warmup: its progress goes "
             "from 0 at t = W to 1 at t = T (count from W, not from 0), and the cosine "
             "takes pi times the progress, not 2 pi.")
def _(cosine_warmup):
    mid = _W + (_T - _W) // 2
    got = _lrs(cosine_warmup, "cosine_warmup", [mid], 1.0, _W, _T, 0.2,
               where=_branch(_W, _T))
    expect_close(got[0], 0.6, rtol=1e-9,
                 what=f"cosine_warmup({mid}, 1.0, {_W}, {_T}, 0.2)")


@q.case("ends at lr_min at t = T and stays there",
        hint="At t = T the progress is 1 and cos(pi) = -1, giving lr_min; after T hold "
             "the progress at 1 (clip it), or the cosine climbs back up.")
def _(cosine_warmup):
    got = _lrs(cosine_warmup, "cosine_warmup", [_T, _T + 1, 2 * _T], 1.0, _W, _T, 0.2,
               where=_branch(_W, _T))
    expect_close(got, np.full(3, 0.2), rtol=1e-9,
                 what="your learning rates at t = T, T + 1, 2T")


_COSINE_HINT = ("Three pieces: the straight warmup line for t < W, the half cosine "
                "from lr_max down to lr_min for W <= t <= T, and lr_min after T.")


@q.case("matches the reference at every step (W = 4, T = 40)", kind="core",
        hint=_COSINE_HINT)
def _(cosine_warmup):
    _schedule_core(cosine_warmup, "cosine_warmup", optim.cosine_warmup,
                   list(range(0, 60, 3)), 0.3, 4, 40, 0.01, where=_branch(4, 40))


@q.case("matches the reference with lr_min = 0.2 (W = 5, T = 45)", kind="core",
        hint=_COSINE_HINT)
def _(cosine_warmup):
    _schedule_core(cosine_warmup, "cosine_warmup", optim.cosine_warmup,
                   list(range(0, 51, 2)), 1.0, _W, _T, 0.2, where=_branch(_W, _T))


@q.case("matches the reference with a one-step warmup (W = 1, T = 10)", kind="core",
        hint=_COSINE_HINT)
def _(cosine_warmup):
    _schedule_core(cosine_warmup, "cosine_warmup", optim.cosine_warmup, list(range(13)),
                   0.5, 1, 10, 0.0, where=_branch(1, 10))
