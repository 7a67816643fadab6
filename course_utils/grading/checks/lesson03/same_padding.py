"""Checks of 03.same_padding: Keras' "same" padding, as PyTorch padding."""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import _not_judged


q = question("03.same_padding", 'Keras\' padding="same", as PyTorch padding',
             answers=["same_padding"], timeout=5)


def reference_same_padding(n: int, k: int, stride: int = 1, dilation: int = 1):
    """TensorFlow's rule for padding="same" along one axis: (zeros before, zeros after).

    The output has ceil(n / s) positions; the last window must start at (out - 1) s and
    reach d (k - 1) further; the zeros that takes are split with the extra one, if the
    total is odd, after (TensorFlow's "padding algorithms" documentation).
    """
    out = -(-n // stride)                                   # ceil(n / s)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def _call(fn, n, k, stride=1, dilation=1):
    """(the call as text, the answer as a pair of ints)."""
    extra = [f"{name}={v}" for name, v in (("stride", stride), ("dilation", dilation))
             if v != 1]
    what = f"same_padding({', '.join([str(n), str(k)] + extra)})"
    got = call(fn, n, k, stride=stride, dilation=dilation)
    if isinstance(got, np.ndarray) or isinstance(got, torch.Tensor):
        got = got.tolist()
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"{what} returned {_short(got)}: return a pair "
                           "(zeros before, zeros after), e.g. (1, 1).", basic=True,
                           call=what)
    pair = tuple(as_number(v, f"{what}[{i}]") for i, v in enumerate(got))
    return what, pair


def _expect(fn, settings) -> None:
    for setting in settings:
        what, got = _call(fn, *setting)
        expected = reference_same_padding(*setting)
        if got != expected:
            raise CheckFailure(f"{what} is {_fmt(got)}, expected {_fmt(expected)}.",
                               call=what)


def _fmt(pair) -> str:
    return "(" + ", ".join(str(int(v)) if float(v).is_integer() else str(v)
                           for v in pair) + ")"


def _diagnose(fn, control, feature, wrong: dict, detail: str) -> None:
    """A mistake case: right on ``control`` (else not judged); on ``feature`` an answer
    that matches one of ``wrong`` (name -> rule) everywhere is told which."""
    if not all(_call(fn, *s)[1] == reference_same_padding(*s) for s in control):
        raise _not_judged()
    results = [(_call(fn, *s), s) for s in feature]
    for name, rule in wrong.items():
        if all(got == tuple(rule(*s)) != reference_same_padding(*s)
               for (_, got), s in results):
            (what, got), s = results[0]
            raise CheckFailure(f"{what} is {_fmt(got)}, expected "
                               f"{_fmt(reference_same_padding(*s))}: {name}.", call=what)
    for (what, got), s in results:
        if got != reference_same_padding(*s):
            raise CheckFailure(f"{what} is {_fmt(got)}, expected "
                               f"{_fmt(reference_same_padding(*s))} ({detail}).",
                               call=what)


def _torch_same(n: int, k: int, dilation: int) -> torch.Tensor:
    """PyTorch's own padding="same" (stride 1 only) on a seeded signal: the oracle."""
    g = torch.Generator().manual_seed(n * 100 + k * 10 + dilation)
    x, w = torch.randn(1, 1, n, generator=g), torch.randn(1, 1, k, generator=g)
    with warnings.catch_warnings():  # even spans: PyTorch warns that it copies the input
        warnings.simplefilter("ignore")
        return x, w, F.conv1d(x, w, padding="same", dilation=dilation)


@q.case("stride 1, odd kernels: the same zeros on both sides", kind="core",
        hint="At stride 1 the output keeps all n positions, so the kernel's span minus "
             "one must be added in zeros, half on each side.")
def _(same_padding):
    _expect(same_padding, [(28, 3), (28, 5), (10, 7), (9, 3, 1, 2), (16, 1)])


@q.case("stride 1, even spans: the same output as PyTorch's padding='same'",
        kind="core",
        hint="An even kernel needs an odd number of zeros: one side gets one more. "
             "Pad with your pair and compare with F.conv1d(x, w, padding='same').")
def _(same_padding):
    for n, k, d in [(28, 2, 1), (10, 4, 1), (12, 2, 3), (9, 6, 1)]:
        what, (before, after) = _call(same_padding, n, k, dilation=d)
        x, w, expected = _torch_same(n, k, d)
        if min(before, after) < 0 or before != int(before) or after != int(after):
            raise CheckFailure(f"{what} is {_fmt((before, after))}: padding is a "
                               "number of zeros, a whole number >= 0.", call=what)
        got = F.conv1d(F.pad(x, (int(before), int(after))), w, dilation=d)
        if got.shape != expected.shape or not torch.allclose(got, expected):
            raise CheckFailure(
                f"{what} is {_fmt((before, after))}: padding a signal of length {n} "
                f"that way gives {got.shape[-1]} outputs"
                + (", shifted against" if got.shape == expected.shape else ", not the "
                   f"{expected.shape[-1]} of") + " PyTorch's padding='same'.", call=what)


@q.case("strided and random settings, against TensorFlow's rule", kind="core",
        hint="With stride s, 'same' keeps ceil(n / s) outputs, not n: find where the "
             "last window must start and how far it reaches, and pad only what that "
             "needs.")
def _(same_padding):
    rng = np.random.default_rng(3)
    settings = [(28, 3, 2, 1), (7, 3, 2, 1), (224, 7, 2, 1), (5, 3, 3, 1), (6, 1, 2, 1)]
    for _ in range(40):
        s = int(rng.integers(1, 4))
        d = 1 if s > 1 else int(rng.integers(1, 4))  # TensorFlow: not both above 1
        settings.append((int(rng.integers(1, 33)), int(rng.integers(1, 8)), s, d))
    _expect(same_padding, settings)


@q.case("returns two ints", kind="property",
        hint="Return a tuple of two ints: use floor division `//`, not `/`.")
def _(same_padding):
    got = call(same_padding, 28, 2)
    if not (isinstance(got, tuple) and len(got) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                    for v in got)):
        raise CheckFailure(f"same_padding(28, 2) returned {_short(got)}; return a "
                           "tuple of two ints, e.g. (0, 1).", call="same_padding(28, 2)")


@q.case("the odd zero goes after, as in Keras",
        hint="When the total is odd, TensorFlow and PyTorch put the extra zero at the "
             "end (after), not at the start.")
def _(same_padding):
    _diagnose(same_padding, control=[(28, 3), (28, 5)],
              feature=[(28, 2), (10, 4), (224, 7, 2)],
              wrong={"the extra zero is at the start":
                     lambda *s: reference_same_padding(*s)[::-1],
                     "both sides get half, rounded down, so the output is one short":
                     lambda *s: (sum(reference_same_padding(*s)) // 2,) * 2,
                     "both sides get half, rounded up, so the output is one too long":
                     lambda *s: (-(-sum(reference_same_padding(*s)) // 2),) * 2},
              detail="an odd total is split with the extra zero after")


@q.case("strides keep ceil(n / s) outputs",
        hint="With stride s the output of 'same' has ceil(n / s) positions: padding as "
             "for stride 1 gives too many zeros.")
def _(same_padding):
    def as_stride_one(n, k, stride=1, dilation=1):
        return reference_same_padding(n, k, 1, dilation)
    _diagnose(same_padding, control=[(28, 3), (10, 4)],
              feature=[(28, 3, 2), (10, 5, 2), (224, 7, 2)],
              wrong={"the stride is ignored (padding as for stride 1)": as_stride_one},
              detail="stride")


@q.case("never negative",
        hint="When the windows already fit (e.g. k = 1 with stride 2), no zeros are "
             "needed: padding cannot be negative, so clip the total at 0.")
def _(same_padding):
    def unclipped(n, k, stride=1, dilation=1):
        total = (-(-n // stride) - 1) * stride + dilation * (k - 1) + 1 - n
        return total // 2, total - total // 2
    _diagnose(same_padding, control=[(28, 3, 2), (7, 3, 2)],
              feature=[(6, 1, 2), (9, 1, 3), (8, 2, 4)],
              wrong={"the total is negative when the windows already fit; clip it at 0":
                     unclipped},
              detail="no zeros needed")


@q.case("dilation spreads the kernel to d(k-1)+1",
        hint="A dilated kernel spans d*(k-1) + 1 pixels, not k: pad for that span.")
def _(same_padding):
    def no_dilation(n, k, stride=1, dilation=1):
        return reference_same_padding(n, k, stride, 1)
    _diagnose(same_padding, control=[(28, 3), (10, 4)],
              feature=[(28, 3, 1, 2), (10, 4, 1, 2), (12, 2, 1, 3)],
              wrong={"the dilation is ignored": no_dilation},
              detail="dilation")
