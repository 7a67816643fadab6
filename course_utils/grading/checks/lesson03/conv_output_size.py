"""Checks of 03.conv_output_size: The output-size formula."""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import _not_judged


q = question("03.conv_output_size", "The output-size formula",
             answers=["conv_output_size"], timeout=5)


@functools.lru_cache(maxsize=None)
def _torch_size(n, k, padding=0, stride=1, dilation=1) -> int:
    """The oracle: the output width of an nn.Conv2d on an n x n image."""
    with torch.no_grad():
        conv = nn.Conv2d(1, 1, k, padding=padding, stride=stride, dilation=dilation,
                         bias=False)
        return conv(torch.zeros(1, 1, n, n)).shape[-1]


def _span(k, d):
    return d * (k - 1) + 1


def _size(fn, n, k, padding=0, stride=1, dilation=1):
    """(the call as text, what it returned, that as a number) for one setting."""
    extra = [f"{name}={v}" for name, v, default in
             (("padding", padding, 0), ("stride", stride, 1), ("dilation", dilation, 1))
             if v != default]
    what = f"conv_output_size({', '.join([str(n), str(k)] + extra)})"
    got = call(fn, n, k, padding=padding, stride=stride, dilation=dilation)
    return what, got, as_number(got, what)


def _expect_sizes(fn, settings) -> None:
    """Fail at the first setting ``(n, k, p, s, d)`` whose size is not nn.Conv2d's."""
    for setting in settings:
        what, got, value = _size(fn, *setting)
        if value != _torch_size(*setting):
            raise CheckFailure(f"{what} is {_short(got)}, expected "
                               f"{_torch_size(*setting)}.")


def _diagnose_sizes(fn, control, feature, wrong_formulas, detail: str) -> None:
    """A mistake case: right on the control settings (else not judged), then on the
    feature's; an answer that matches one of ``wrong_formulas`` (name -> a function of
    n, k, p, s, d) on every feature setting is told which."""
    if not all(_size(fn, *s)[2] == _torch_size(*s) for s in control):
        raise _not_judged()
    results = [(_size(fn, *s), s) for s in feature]
    for name, formula in wrong_formulas.items():
        if all(value == formula(*s) != _torch_size(*s) for (_, _, value), s in results):
            (what, got, _), s = results[0]
            raise CheckFailure(f"{what} is {_short(got)}, expected {_torch_size(*s)}: "
                               f"{name}.")
    for (what, got, value), s in results:
        if value != _torch_size(*s):
            raise CheckFailure(f"{what} is {_short(got)}, expected {_torch_size(*s)} "
                               f"({detail}).")


@q.case("no padding, stride 1", kind="core",
        hint="A k-wide kernel fits n - k + 1 times into n positions.")
def _(conv_output_size):
    _expect_sizes(conv_output_size,
                  [(28, 5, 0, 1, 1), (10, 3, 0, 1, 1), (7, 7, 0, 1, 1)])


@q.case("padding, stride and dilation together", kind="core",
        hint="Put the parts together: pad both sides, subtract the span of the "
             "(dilated) kernel, divide the remaining steps by the stride and floor, "
             "then count the first position.")
def _(conv_output_size):
    _expect_sizes(conv_output_size, [(28, 3, 1, 2, 1), (32, 5, 2, 1, 1),
                                     (10, 3, 2, 1, 2), (15, 3, 1, 2, 2),
                                     (11, 4, 3, 3, 1)])


@q.case("agrees with nn.Conv2d on 40 random settings", kind="core",
        hint="The formula of the torch.nn.Conv2d documentation (in the question) "
             "covers padding, stride and dilation at once; check each part against the "
             "cases above.")
def _(conv_output_size):
    rng = np.random.default_rng(3)
    settings = []
    for _ in range(40):
        k, d = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        s, p = int(rng.integers(1, 4)), int(rng.integers(0, 3))
        settings.append((int(rng.integers(_span(k, d), 33)), k, p, s, d))
    _expect_sizes(conv_output_size, settings)


@q.case("returns an int", kind="property",
        hint="Use "
             "floor division `//` (not `/`, which gives a float) and return an int.")
def _(conv_output_size):
    got = call(conv_output_size, 28, 3, padding=1, stride=2, dilation=1)
    if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
        raise CheckFailure("conv_output_size(28, 3, padding=1, stride=2) returned "
                           f"{_short(got)} of type {type(got).__name__}; a size must "
                           "be an int.")


@q.case("counts the first position (no off-by-one)",
        hint="Count positions, not steps: the steps after the first position, plus one "
             "for the first position itself.")
def _(conv_output_size):
    settings = [(28, 5, 0, 1, 1), (10, 3, 0, 1, 1), (6, 1, 0, 1, 1)]
    results = [(_size(conv_output_size, *s), _torch_size(*s)) for s in settings]
    offsets = {value - expected for (_, _, value), expected in results}
    if offsets in ({1}, {-1}):
        (what, got, _), expected = results[0]
        how = "one too many" if offsets == {1} else "one too few"
        raise CheckFailure(f"{what} is {_short(got)}, expected {expected}: every size "
                           f"is off by {how}.")
    if offsets != {0}:
        raise _not_judged()


@q.case("padding is added on both sides (2p)",
        hint="Padding p adds p pixels on EACH side: the padded length is n + 2p, "
             "not n + p.")
def _(conv_output_size):
    _diagnose_sizes(
        conv_output_size, control=[(28, 3, 0, 1, 1), (10, 5, 0, 1, 1)],
        feature=[(28, 3, 1, 1, 1), (10, 5, 2, 1, 1)],
        wrong_formulas={
            "the padding is counted on one side only":
                lambda n, k, p, s, d: (n + p - _span(k, d)) // s + 1,
            "the padding is ignored": lambda n, k, p, s, d: (n - _span(k, d)) // s + 1},
        detail="padding")


@q.case("stride divides the steps, then +1",
        hint="Divide the steps after the first position by the stride, floor, THEN add "
             "1 for the first position; dividing the number of positions by the stride "
             "is not the same.")
def _(conv_output_size):
    _diagnose_sizes(
        conv_output_size, control=[(7, 3, 0, 1, 1), (9, 3, 0, 1, 1)],
        feature=[(7, 3, 0, 2, 1), (9, 3, 0, 3, 1)],  # divisions without a remainder
        wrong_formulas={"the number of positions was divided by the stride":
                        lambda n, k, p, s, d: (n + 2 * p - _span(k, d) + 1) // s},
        detail="stride")


@q.case("sizes are floored, not rounded up",
        hint="A window that would hang over the edge is dropped: floor the division "
             "(`//`), do not use ceil or round.")
def _(conv_output_size):
    # Control: stride 1 and divisions without a remainder. Feature: 5/2, 5/2, 5/3 and
    # 7/4 steps (floor 2, 2, 1, 1; ceil gives more, and round() too on 1.67 and 1.75).
    _diagnose_sizes(
        conv_output_size, control=[(28, 5, 0, 1, 1), (7, 3, 0, 2, 1), (9, 3, 0, 3, 1)],
        feature=[(8, 3, 0, 2, 1), (7, 2, 0, 2, 1), (8, 3, 0, 3, 1), (10, 3, 0, 4, 1)],
        wrong_formulas={}, detail="a window that hangs over the edge is dropped")


@q.case("dilation spreads the kernel to d(k-1)+1",
        hint="A dilated kernel spans d*(k-1) + 1 pixels (not d*k, not k): subtract "
             "that span.")
def _(conv_output_size):
    _diagnose_sizes(
        conv_output_size, control=[(28, 3, 0, 1, 1), (10, 3, 2, 1, 1)],
        feature=[(28, 3, 0, 1, 2), (10, 3, 2, 1, 2), (20, 4, 0, 1, 3)],
        wrong_formulas={"the dilation is ignored":
                        lambda n, k, p, s, d: (n + 2 * p - k) // s + 1},
        detail="dilation")
