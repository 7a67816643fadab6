"""Checks of lesson 03, convolutional networks: one question per ``question(...)``.

Reference oracles: ``torch.nn.functional`` (conv2d, max_pool2d: called here, never in
the learner's call), ``torch.nn.Conv2d`` output sizes, the spec models built here
(their weights are copied into the learner's model and the logits compared), a
reference training step on the same optimizer, and Keras itself.

Each question has core cases (the values against the oracle on several inputs: only
they earn credit), property cases and mistake cases. A mistake case first checks the
same setting without the detail it looks for (its control); when the answer is
already wrong there, the case says that it cannot judge yet (a basic failure: its
hint, which names one mistake, is not shown).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import os
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..asserts import (CheckFailure, _short, as_number, call, expect_close,
                       expect_equal, expect_layers, expect_parameter_count,
                       expect_shape, layer_types, to_numpy)
from ..registry import question
from ..runner import clean_text, learner_line

# Shown by a mistake case whose control fails: the same words in every case, so that the
# report folds them into one "the same problem as above".
NOT_JUDGED = ("Not judged yet: this case checks one detail on top of a simpler input, "
              "and your answer is not right on that simpler input yet (the core cases "
              "show how). Fix that first.")


def _not_judged() -> CheckFailure:
    return CheckFailure(NOT_JUDGED, basic=True)


def _agrees(check) -> bool:
    """Does ``check()`` pass? A basic failure (None, wrong type or shape) propagates."""
    try:
        check()
    except CheckFailure as failure:
        if failure.basic:
            raise
        return False
    return True


@contextlib.contextmanager
def _crash_is_the_mistake(what: str):
    """In a mistake case whose control passed, a crash on the one input that differs
    (the call ``what``) is the case's mistake: a failure that shows the case's hint,
    not a basic one."""
    try:
        yield
    except CheckFailure:
        raise
    except Exception as exc:  # the learner's code raised on the feature input
        where = learner_line(exc)
        raise CheckFailure(f"It raised {type(exc).__name__}: "
                           f"{clean_text(str(exc), 400)}"
                           + (f"\nat {where}" if where else ""), call=what) from None


def _expect_tensor_like(got, expected, what: str, rtol: float, atol: float) -> None:
    """expect_close, a wrong shape reported as the case's own mistake (the control
    passed)."""
    if isinstance(got, torch.Tensor) and tuple(got.shape) != tuple(expected.shape):
        raise CheckFailure(f"{what} has shape {tuple(got.shape)}, expected "
                           f"{tuple(expected.shape)}.")
    expect_close(got, expected, rtol=rtol, atol=atol, what=what)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ================================================================== 03.conv_output_size
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


# ==================================================================== 03.conv2d_forward
# A library convolution (F.conv2d, nn.Conv2d and torch.conv2d all reach
# aten.convolution) counts as not answered; loops, Tensor.unfold, F.unfold (im2col),
# einsum and matrix products are the work the question asks for, and are allowed.
CONV_OPS = ("convolution", "_convolution", "conv2d")
q = question("03.conv2d_forward", "A convolution layer's forward pass from scratch",
             answers=["conv2d"], timeout=10, forbid=CONV_OPS)


def _conv_inputs(B=2, C_in=3, H=7, W=6, C_out=4, kH=3, kW=2, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, C_in, H, W, generator=g)
    weight = torch.randn(C_out, C_in, kH, kW, generator=g)
    b = torch.randn(C_out, generator=g)
    return X, weight, (b if bias else None)


def _conv_oracle(X, weight, bias, stride=1, padding=0):
    """F.conv2d in float64: what an answer of any float dtype is compared with."""
    b = None if bias is None else bias.double()
    return F.conv2d(X.double(), weight.double(), b, stride=stride, padding=padding)


def _conv_what(X, weight, bias, stride=1, padding=0) -> str:
    parts = [f"X {tuple(X.shape)}", f"weight {tuple(weight.shape)}"]
    if bias is not None:
        parts.append(f"bias {tuple(bias.shape)}")
    parts += [f"stride={stride}"] * (stride != 1)
    parts += [f"padding={padding}"] * (padding != 0)
    return f"conv2d({', '.join(parts)})"


def _conv_expect(conv2d, X, weight, bias=None, stride=1, padding=0, own_shape=False):
    """Call conv2d and compare with F.conv2d (``own_shape``: a wrong shape is the case's
    own mistake, not a basic failure)."""
    what = _conv_what(X, weight, bias, stride, padding)
    got = call(conv2d, X, weight, bias, stride=stride, padding=padding)
    expected = _conv_oracle(X, weight, bias, stride, padding)
    if own_shape:
        _expect_tensor_like(got, expected, what, rtol=1e-4, atol=1e-4)
    else:
        expect_close(got, expected, rtol=1e-4, atol=1e-4, what=what)


def _conv_detail(conv2d, control: dict, feature: dict, **feature_call) -> None:
    """A mistake case: right on ``control`` (else not judged), then on ``feature``."""
    X, weight, bias = _conv_inputs(**control)
    if not _agrees(lambda: _conv_expect(conv2d, X, weight, bias)):
        raise _not_judged()
    X, weight, bias = _conv_inputs(**feature)
    with _crash_is_the_mistake(_conv_what(X, weight, bias, **feature_call)):
        _conv_expect(conv2d, X, weight, bias, own_shape=True, **feature_call)


@q.case("one channel, one kernel, no bias", kind="core",
        hint="Slide the kernel over every position where it fits and sum the "
             "elementwise products (the formula in the question); do not flip the "
             "kernel.")
def _(conv2d):
    X, weight, _ = _conv_inputs(B=1, C_in=1, H=5, W=5, C_out=1, kH=2, kW=2)
    _conv_expect(conv2d, X, weight, None)


@q.case("a batch, several channels and a bias", kind="core",
        hint="Each output channel o sums over ALL input channels and kernel positions, "
             "for every example of the batch, and adds bias[o].")
def _(conv2d):
    X, weight, bias = _conv_inputs(B=3, C_in=3, H=7, W=6, C_out=4, kH=3, kW=2, seed=10)
    _conv_expect(conv2d, X, weight, bias)


@q.case("padding and stride together", kind="core",
        hint="Pad first (zeros on every side), then move the window by the stride; the "
             "output size is the formula of Question 1.")
def _(conv2d):
    X, weight, bias = _conv_inputs(B=2, C_in=2, H=9, W=8, C_out=3, kH=3, kW=3, seed=11)
    _conv_expect(conv2d, X, weight, bias, stride=2, padding=1)


@q.case("keeps the input's dtype (float32)", kind="property",
        hint="Build the output in X's dtype, as F.conv2d does: a float64 result (from "
             "NumPy, or a torch.float64 buffer) does not fit the float32 layers after "
             "it.")
def _(conv2d):
    X, weight, bias = _conv_inputs(B=1, C_in=2, H=5, W=5, C_out=2, kH=3, kW=3, seed=12)
    got = call(conv2d, X, weight, bias)
    if not isinstance(got, torch.Tensor):  # None, a NumPy array: a basic failure
        expect_close(got, _conv_oracle(X, weight, bias),
                     what=_conv_what(X, weight, bias))
    if got.dtype != X.dtype:
        raise CheckFailure(f"{_conv_what(X, weight, bias)} returned a {got.dtype} "
                           f"tensor for {X.dtype} inputs; F.conv2d returns the input's "
                           f"dtype ({X.dtype}).")


@q.case("the kernel is not flipped (cross-correlation)",
        hint="Use the kernel as it is, not flipped or transposed: out[i, j] adds "
             "X[i + a, j + b] * K[a, b] (deep-learning \"convolution\" is a "
             "cross-correlation).")
def _(conv2d):
    X, _, _ = _conv_inputs(B=1, C_in=1, H=6, W=6, C_out=1, kH=3, kW=3, seed=1)
    # Control: a kernel that flipping and transposing leave unchanged.
    symmetric = torch.tensor([[1.0, 2.0, 1.0], [2.0, 5.0, 2.0], [1.0, 2.0, 1.0]])
    if not _agrees(lambda: _conv_expect(conv2d, X, symmetric.view(1, 1, 3, 3))):
        raise _not_judged()
    weight = torch.arange(9.0).view(1, 1, 3, 3) - 4.0  # asymmetric: a flip changes it
    what = "conv2d with an asymmetric 3x3 kernel"
    got = call(conv2d, X, weight, None)
    flipped = _conv_oracle(X, weight.flip(-2, -1), None).numpy()
    if (isinstance(got, torch.Tensor) and got.shape == flipped.shape
            and torch.is_floating_point(got)
            and np.allclose(to_numpy(got).astype(np.float64), flipped, rtol=1e-4,
                            atol=1e-4)):
        raise CheckFailure(f"{what} equals the convolution with the kernel FLIPPED. "
                           "Deep-learning \"convolution\" layers compute a "
                           "cross-correlation: the kernel is not flipped.")
    _expect_tensor_like(got, _conv_oracle(X, weight, None), what, rtol=1e-4, atol=1e-4)


@q.case("sums over all input channels",
        hint="Each output channel sums over ALL input channels (and the kernel's rows "
             "and columns), not just channel 0 and not a mean.")
def _(conv2d):
    _conv_detail(conv2d,
                 dict(B=1, C_in=1, H=5, W=5, C_out=1, kH=3, kW=3, seed=2, bias=False),
                 dict(B=1, C_in=3, H=5, W=5, C_out=1, kH=3, kW=3, seed=2, bias=False))


@q.case("a batch and several output channels",
        hint="The output is (B, C_out, H_out, W_out): one map per kernel weight[o], "
             "for every example of the batch.")
def _(conv2d):
    _conv_detail(conv2d,
                 dict(B=1, C_in=2, H=6, W=6, C_out=1, kH=3, kW=3, seed=3, bias=False),
                 dict(B=3, C_in=2, H=6, W=6, C_out=4, kH=3, kW=3, seed=3, bias=False))


@q.case("adds the bias of each output channel",
        hint="Add bias[o] to every position of output channel o (bias has shape "
             "(C_out,): reshape it so that it broadcasts over the batch, height and "
             "width).")
def _(conv2d):
    _conv_detail(conv2d,
                 dict(B=2, C_in=2, H=5, W=5, C_out=3, kH=3, kW=3, seed=4, bias=False),
                 dict(B=2, C_in=2, H=5, W=5, C_out=3, kH=3, kW=3, seed=4, bias=True))


@q.case("non-square input and kernel",
        hint="Height goes with kH and dimension 2, width with kW and dimension 3: do "
             "not swap them.")
def _(conv2d):
    _conv_detail(conv2d, dict(B=2, C_in=2, H=6, W=6, C_out=3, kH=3, kW=3, seed=5),
                 dict(B=2, C_in=2, H=7, W=5, C_out=3, kH=3, kW=2, seed=5))


@q.case("zero padding on every side",
        hint="padding=p adds p rows of zeros at the top AND the bottom and p columns "
             "at the left AND the right before the window slides.")
def _(conv2d):
    setting = dict(B=2, C_in=2, H=5, W=6, C_out=3, kH=3, kW=3, seed=6)
    _conv_detail(conv2d, setting, setting, padding=1)


@q.case("stride skips positions",
        hint="With stride s the window moves s pixels at a time: output position i "
             "starts at row i * s, and the output size comes from Question 1's "
             "formula.")
def _(conv2d):
    setting = dict(B=2, C_in=2, H=9, W=8, C_out=3, kH=3, kW=3, seed=7)
    _conv_detail(conv2d, setting, setting, stride=2)


# =================================================================== 03.maxpool_forward
# F.max_pool2d and nn.MaxPool2d reach aten.max_pool2d_with_indices (aten.max_pool2d on
# some builds); the 1-d and 3-d poolings would do the same work.
POOL_OPS = ("max_pool2d", "max_pool2d_with_indices", "max_pool1d",
            "max_pool1d_with_indices", "max_pool3d", "max_pool3d_with_indices")
q = question("03.maxpool_forward", "Max pooling from scratch", answers=["maxpool2d"],
             timeout=10, forbid=POOL_OPS)


def _pool_what(X, kernel_size, stride=None) -> str:
    shown = [f"X {tuple(X.shape)}", str(kernel_size)]
    shown += [str(stride)] * (stride is not None)
    return f"maxpool2d({', '.join(shown)})"


def _pool_expect(maxpool2d, X, kernel_size, stride=None, own_shape=False):
    args = (X, kernel_size) if stride is None else (X, kernel_size, stride)
    what = _pool_what(X, kernel_size, stride)
    got = call(maxpool2d, *args)
    expected = F.max_pool2d(X, kernel_size, stride)
    if own_shape:
        _expect_tensor_like(got, expected, what, rtol=0, atol=0)
    else:
        expect_close(got, expected, rtol=0, atol=0, what=what)


def _pool_detail(maxpool2d, control, feature) -> None:
    """A mistake case: right on ``control`` = (X, k[, s]) (else not judged), then on
    ``feature``."""
    if not _agrees(lambda: _pool_expect(maxpool2d, *control)):
        raise _not_judged()
    with _crash_is_the_mistake(_pool_what(*feature)):
        _pool_expect(maxpool2d, *feature, own_shape=True)


@q.case("2x2 windows of a 4x4 image", kind="core",
        hint="Take the maximum of each 2x2 window.")
def _(maxpool2d):
    _pool_expect(maxpool2d, torch.arange(16.0).view(1, 1, 4, 4).flip(-1), 2, 2)


@q.case("a batch of several channels", kind="core",
        hint="Pool every (example, channel) map on its own: the maximum over each "
             "window of height and width.")
def _(maxpool2d):
    _pool_expect(maxpool2d, _randn(2, 3, 6, 8, seed=10), 2, 2)


@q.case("kernel 3, stride 3", kind="core",
        hint="Window (i, j) starts at row i * stride and column j * stride, and spans "
             "the kernel's size in each direction.")
def _(maxpool2d):
    _pool_expect(maxpool2d, _randn(2, 2, 9, 6, seed=11), 3, 3)


@q.case("stride defaults to the kernel size",
        hint="When stride is None, the windows step by the kernel size, as in "
             "F.max_pool2d; a default stride of 1 gives overlapping windows.")
def _(maxpool2d):
    X = _randn(2, 3, 6, 6, seed=1)
    _pool_detail(maxpool2d, (X, 2, 2), (X, 2))


@q.case("works on negative values",
        hint="Start the running maximum at -infinity (or take the max of the window), "
             "not at 0: all-negative windows have a negative maximum.")
def _(maxpool2d):
    X = torch.rand(1, 2, 4, 4, generator=torch.Generator().manual_seed(2)) + 0.5
    _pool_detail(maxpool2d, (X, 2, 2), (-X, 2, 2))


@q.case("pools each channel separately",
        hint="Pool over height and width only; keep the batch and channel dimensions "
             "(do not take the max across channels).")
def _(maxpool2d):
    X = _randn(3, 4, 4, 4, seed=3)
    X[:, 0] += 10  # channel 0 dominates: a max across channels would copy it everywhere
    _pool_detail(maxpool2d, (X[:, :1].clone(), 2, 2), (X, 2, 2))


@q.case("odd sizes are floored",
        hint="A window that would hang over the edge is dropped (the size is floored): "
             "5x5 pooled by 2 is 2x2, as in Question 1's formula, with no padding.")
def _(maxpool2d):
    X = _randn(2, 2, 5, 7, seed=4)
    _pool_detail(maxpool2d, (X[:, :, :4, :6].clone(), 2, 2), (X, 2, 2))


@q.case("overlapping windows (kernel 3, stride 2)",
        hint="Window i starts at row i * stride and spans as many rows as the kernel; "
             "with kernel 3 and stride 2 neighbouring windows share a row.")
def _(maxpool2d):
    X = _randn(2, 3, 9, 9, seed=5)
    _pool_detail(maxpool2d, (X, 3, 3), (X, 3, 2))


# ================================================================= shared: torch models
_WEIGHTED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def _describe_layer(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        k = "x".join(str(v) for v in m.kernel_size)
        return f"Conv2d({m.in_channels}->{m.out_channels}, {k})"
    if isinstance(m, nn.BatchNorm2d):
        return f"BatchNorm2d({m.num_features})"
    return f"Linear({m.in_features}->{m.out_features})"


def _copy_weights(ref: nn.Module, model: nn.Module) -> None:
    """Give ``model`` the weights of ``ref``, layer by layer in order (Conv2d,
    BatchNorm2d, Linear).

    A conv bias that the spec does not have is set to 0 (a mistake case of its own
    reports it). A model whose layers with weights differ from the spec's cannot compute
    the same function: a basic failure that lists both.
    """
    ours = [m for m in ref.modules() if isinstance(m, _WEIGHTED)]
    theirs = [m for m in model.modules() if isinstance(m, _WEIGHTED)]
    fits = len(ours) == len(theirs) and all(
        type(a) is type(b) and a.weight.shape == b.weight.shape
        for a, b in zip(ours, theirs))
    if not fits:
        raise CheckFailure(
            "the spec's weights do not fit your model, so the check cannot compare "
            "what it computes.\nYour layers with weights: "
            f"{[_describe_layer(m) for m in theirs]}\nThe spec's: "
            f"{[_describe_layer(m) for m in ours]}", basic=True)
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.weight.copy_(a.weight)
            if b.bias is not None:
                b.bias.copy_(a.bias if a.bias is not None else torch.zeros_like(b.bias))
            if isinstance(a, nn.BatchNorm2d):
                b.running_mean.copy_(a.running_mean)
                b.running_var.copy_(a.running_var)


def _randomize_norms(model: nn.Module, seed: int) -> nn.Module:
    """BatchNorm scales, shifts and running statistics away from 1 and 0 (as after
    training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.5, 0.5),
                                  (m.running_mean, -0.5, 0.5),
                                  (m.running_var, 0.5, 2.0)):
                    t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g))
    return model


def _forward(model, X, what: str, train: bool = False, seed: int | None = None,
             learner: bool = True):
    """``model(X)`` without gradients, the classic shape errors told in learner terms.

    A forward pre-hook on every Linear layer records what reaches it, so that a flatten
    that took the batch dimension along (``x.flatten()``) or mixed it up
    (``view(-1, N)``) is told apart from a Linear layer sized for the wrong number of
    features.
    """
    B = X.shape[0]
    seen = []

    def record(m, args):
        seen.append((m, tuple(args[0].shape)))

    # nn.LazyLinear is an nn.Linear too
    hooks = [m.register_forward_pre_hook(record) for m in model.modules()
             if isinstance(m, nn.Linear)]
    model.train(train)
    try:
        if seed is not None:
            torch.manual_seed(seed)  # the same dropout mask as the reference's
        with torch.no_grad():
            if learner:
                out = call(model, X, check_mutation=False, name=what.split("(X")[0])
            else:
                out = model(X)
    except RuntimeError as exc:
        problem = _flatten_problem(seen, B) or _view_problem(str(exc), B)
        if problem:  # the same words for every batch size: shown once (basic)
            raised = f"{what}, which raised RuntimeError: {exc}"
            raise CheckFailure(problem, basic=True, call=raised) from None
        raise
    finally:
        for h in hooks:
            h.remove()
    problem = _flatten_problem(seen, B)
    rows_kept = isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == B
    if problem and not rows_kept:
        raise CheckFailure(problem, basic=True,
                           call=f"{what}, which returned {_short(out)}")
    return out


def _view_problem(error: str, B: int) -> str:
    """Why ``x.view(-1, N)`` failed: N is not the number of features of an image."""
    m = re.search(r"shape '\[-1, (\d+)\]' is invalid for input of size (\d+)", error)
    if not m:
        return ""
    n, size = int(m.group(1)), int(m.group(2))
    return (f"view(-1, {n:,}) expects {n:,} features per image, but each image has "
            f"{size // B:,}: size the flatten and the Linear layer for the real "
            "feature maps, and flatten from dimension 1.")


def _flatten_problem(seen, B: int) -> str:
    """What went wrong at the first Linear layer, from the shape of its input ("" if
    nothing did)."""
    if not seen:
        return ""
    m, shape = seen[0]
    if len(shape) == 1:
        return ("The first Linear layer received one long vector for the whole batch: "
                "the flatten flattened the batch dimension too (x.flatten() and "
                "torch.flatten(x) start at dimension 0). Flatten from dimension 1, so "
                f"that each image keeps its own row of {shape[0] // B:,} features.")
    if shape[0] != B:
        return (f"The first Linear layer received {shape[0]} rows for a batch of {B} "
                "images: the flatten mixed the batch up with the features (view(-1, "
                "N) with the wrong N). Flatten from dimension 1, so that each image "
                "keeps its own row.")
    in_features = getattr(m, "in_features", 0)
    if len(shape) == 2 and in_features and shape[1] != in_features:
        return (f"The first Linear layer expects in_features={in_features:,} but each "
                f"image has {shape[1]:,} features after the flatten: size it for the "
                "real feature maps.")
    return ""


# ======================================================================= 03.build_model
q = question("03.build_model", "A CNN built to a spec", answers=["build_model"],
             timeout=10)

BUILD_MODEL_LAYERS = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d",
                      "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Dropout",
                      "Linear"]


def reference_build_model(num_classes: int = 10) -> nn.Module:
    """The spec of ``03.build_model``: two conv blocks (16 and 32 channels), dropout 0.25, a linear layer."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 14, 14)
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, num_classes),                           # (B, 10)
    )


def _built(build_model, **kw):
    """The learner's model (lazy layers materialized by a forward pass), or a basic
    failure."""
    torch.manual_seed(0)
    model = call(build_model, **kw)
    what = f"build_model({', '.join(f'{k}={v}' for k, v in kw.items())})"
    if model is None:
        raise CheckFailure(f"{what} returned None: return the nn.Module you build (is "
                           "there a `return`?).", basic=True)
    if not isinstance(model, nn.Module):
        raise CheckFailure(f"{what} should return a torch.nn.Module, but it returned a "
                           f"{type(model).__name__}: {_short(model)}", basic=True)
    if any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules()):
        _forward(model, torch.zeros(2, 1, 28, 28), f"{what}(X (2,1,28,28))")
    return model


def _same_logits(build_model, num_classes: int, seed: int, train: bool) -> None:
    """The learner's model, given the spec's weights, computes the spec's logits."""
    kw = {} if num_classes == 10 else {"num_classes": num_classes}
    model = _built(build_model, **kw)
    torch.manual_seed(seed)
    ref = _randomize_norms(reference_build_model(num_classes), seed)
    _copy_weights(ref, model)
    X = _randn(6, 1, 28, 28, seed=seed)
    mode = "train" if train else "eval"
    what = f"build_model({', '.join(f'{k}={v}' for k, v in kw.items())})(X (6,1,28,28))"
    got = _forward(model, X, f"{what} in {mode} mode", train=train, seed=seed)
    expected = _forward(ref, X, "the spec", train=train, seed=seed, learner=False)
    expect_close(got, expected, rtol=1e-4, atol=1e-5,
                 what=f"your model's logits in {mode} mode (with the spec's weights)")


@q.case("computes the spec's logits (eval mode)", kind="core",
        hint="Same layers, same order, same settings as the table: with the spec's "
             "weights your model then computes the same logits.")
def _(build_model):
    _same_logits(build_model, 10, seed=1, train=False)


@q.case("computes the spec's logits (training mode)", kind="core",
        hint="In training mode BatchNorm uses the batch's statistics and dropout is "
             "on: the layers and their order must follow the table.")
def _(build_model):
    _same_logits(build_model, 10, seed=2, train=True)


@q.case("computes the spec's logits for num_classes=7", kind="core",
        hint="The last layer maps the flattened features to num_classes logits.")
def _(build_model):
    _same_logits(build_model, 7, seed=3, train=False)


@q.case("returns an nn.Module", kind="property",
        hint="Return the model (an nn.Sequential of the table's layers), do not just "
             "create it.")
def _(build_model):
    _built(build_model)


@q.case("output shape (B, 10) for (B, 1, 28, 28)", kind="property",
        hint="Two 2x2 poolings take 28x28 to 7x7, so the Linear layer takes 32 * 7 * 7 "
             "= 1568 features.")
def _(build_model):
    what = "build_model()(X (5,1,28,28))"
    out = _forward(_built(build_model), _randn(5, 1, 28, 28), what)
    expect_shape(out, (5, 10), what=what)


@q.case("the layers, in order",
        hint="Conv -> BatchNorm -> ReLU -> MaxPool twice, then Flatten, Dropout, "
             "Linear; no softmax at the end (CrossEntropyLoss takes logits).")
def _(build_model):
    expect_layers(_built(build_model), BUILD_MODEL_LAYERS, what="build_model()")


@q.case("the convolutions have no bias",
        hint="A conv bias right before BatchNorm is cancelled by the mean subtraction: "
             "the spec's convs have bias=False.")
def _(build_model):
    convs = [m for m in _built(build_model).modules() if isinstance(m, nn.Conv2d)]
    with_bias = [i for i, m in enumerate(convs) if m.bias is not None]
    if with_bias:
        raise CheckFailure(f"conv layer(s) {with_bias} have a bias; the spec says "
                           "bias=False.")


@q.case("kernel size 3 with padding 1 ('same')",
        hint="Each conv is 3x3 with padding=1, so it keeps the image size; only the "
             "poolings halve it.")
def _(build_model):
    convs = [m for m in _built(build_model).modules() if isinstance(m, nn.Conv2d)]
    got = [(m.in_channels, m.out_channels, m.kernel_size, m.padding, m.stride)
           for m in convs]
    expected = [(1, 16, (3, 3), (1, 1), (1, 1)), (16, 32, (3, 3), (1, 1), (1, 1))]
    expect_equal(got, expected, what="the convs' (in, out, kernel_size, padding, "
                                     "stride)")


@q.case("dropout probability 0.25",
        hint="Dropout's p is the probability of DROPPING a unit: the spec drops a "
             "quarter.")
def _(build_model):
    drops = [m.p for m in _built(build_model).modules() if isinstance(m, nn.Dropout)]
    expect_equal(drops, [0.25], what="the dropout probabilities")


@q.case("parameter count 20,538",
        hint="Conv 1*16*9 + conv 16*32*9 (no bias) + BatchNorm 2*(16+32) + Linear "
             "1568*10 + 10 = 20,538.")
def _(build_model):
    expect_parameter_count(_built(build_model), 20_538, what="build_model()")


@q.case("num_classes sets the output size",
        hint="Use the num_classes argument for the last layer's out_features instead "
             "of a hard-coded 10.")
def _(build_model):
    what = "build_model(num_classes=7)(X (2,1,28,28))"
    out = _forward(_built(build_model, num_classes=7), _randn(2, 1, 28, 28), what)
    expect_shape(out, (2, 7), what=what)


# ======================================================================== 03.train_step
# The course's one rule for zero_grad: before backward or right after step, both are
# correct. The cases start from models with no gradients and compare every step with a
# reference step on the same optimizer: both orders pass, gradients that pile up fail.
q = question("03.train_step", "One training step", answers=["train_step"], timeout=10)


def _step_setup(seed=0, dropout=False):
    """A tiny seeded CNN with BatchNorm (and dropout), a batch and a loss."""
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
              nn.MaxPool2d(2), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(4 * 4 * 4, 3))
    model = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    return model, X, y, nn.CrossEntropyLoss()


# The optimizers of the cases, by the names the messages use: several kinds and rates,
# so that a step which makes its own optimizer (or ignores its argument) cannot pass.
OPTIMIZERS = {
    "SGD(lr=0.1)": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "SGD(lr=0.05, momentum=0.9)": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    "Adam(lr=0.01)": lambda ps: torch.optim.Adam(ps, lr=0.01),
    "SGD(lr=0.3, momentum=0.5, weight_decay=0.01)":
        lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.5, weight_decay=0.01),
}


def _reference_step(model, X, y, loss_fn, optimizer) -> float:
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _learner_step(train_step, model, X, y, loss_fn, optimizer):
    try:
        return call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    except RuntimeError as exc:
        if "backward through the graph a second time" in str(exc):
            raise CheckFailure("loss.backward() was called twice on the same graph "
                               "(PyTorch frees the graph after the first backward).",
                               basic=True) from None
        raise


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _same_params(a, b) -> bool:
    return torch.allclose(_params(a), _params(b), rtol=1e-4, atol=1e-6)


def _pair(optimizer_name: str, seed: int, dropout: bool = False):
    """(learner's model and optimizer, reference model and optimizer, X, y, loss_fn):
    two identical models, each with its own optimizer of the same kind and settings."""
    model, X, y, loss_fn = _step_setup(seed, dropout)
    ref = copy.deepcopy(model)
    make = OPTIMIZERS[optimizer_name]
    ours, theirs = (model, make(model.parameters())), (ref, make(ref.parameters()))
    return ours, theirs, X, y, loss_fn


def _steps_match(train_step, optimizer_name: str, num_steps: int, seed: int) -> None:
    """Every one of ``num_steps`` steps returns the reference's loss and leaves the
    reference's parameters."""
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair(optimizer_name, seed)
    for k in range(1, num_steps + 1):
        what = f"step {k} of {num_steps} with {optimizer_name}"
        expected_loss = _reference_step(ref, X, y, loss_fn, ref_opt)
        loss = as_number(_learner_step(train_step, model, X, y, loss_fn, optimizer),
                         f"the loss returned by {what}")
        expect_close(loss, expected_loss, rtol=1e-5, atol=1e-6,
                     what=f"the loss returned by {what}")
        expect_close(_params(model), _params(ref), rtol=1e-4, atol=1e-6,
                     what=f"the parameters after {what}")


@q.case("one step with SGD(lr=0.05, momentum=0.9)", kind="core",
        hint="One step: training mode, clear the old gradients, forward, loss, one "
             "backward, then the GIVEN optimizer's step; return the loss of this "
             "forward pass.")
def _(train_step):
    _steps_match(train_step, "SGD(lr=0.05, momentum=0.9)", 1, seed=6)


@q.case("three steps with Adam(lr=0.01)", kind="core",
        hint="Use the optimizer you are given (whatever its kind and rate), and clear "
             "the gradients once per step, so that step k uses only its own gradient.")
def _(train_step):
    _steps_match(train_step, "Adam(lr=0.01)", 3, seed=7)


@q.case("four steps with SGD(lr=0.3, momentum=0.5, weight_decay=0.01)", kind="core",
        hint="Each call is one step of the given optimizer: its momentum and weight "
             "decay carry over between calls by themselves.")
def _(train_step):
    _steps_match(train_step, "SGD(lr=0.3, momentum=0.5, weight_decay=0.01)", 4, seed=8)


@q.case("returns the loss as a Python float", kind="property",
        hint="Return the loss as a number (the tensor's .item()), not the tensor: a "
             "tensor keeps the whole graph alive in a training loop.")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=0)
    got = _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if not isinstance(got, float):
        raise CheckFailure(f"train_step returned {_short(got)}; expected a Python "
                           "float (the loss's .item()).", basic=got is None)


@q.case("updates the parameters (optimizer.step)",
        hint="Call the optimizer's step() after backward, and zero the gradients "
             "before backward or after step, never between backward and step (that "
             "erases them).")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=0)
    before = _params(model).clone()
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if torch.equal(before, _params(model)):
        raise CheckFailure("after train_step the parameters are unchanged.")


@q.case("one backward per step",
        hint="One step has ONE backward pass: calling backward twice "
             "(retain_graph=True) adds the gradient twice, so the step is twice as "
             "long.")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=2)
    start = _params(model).clone()
    _reference_step(ref, X, y, loss_fn, ref_opt)
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    moved, expected = _params(model) - start, _params(ref) - start
    doubled = torch.allclose(moved, 2 * expected, rtol=1e-3, atol=1e-7)
    if expected.abs().max() > 0 and doubled:
        raise CheckFailure("the parameters moved twice as far as one SGD step: the "
                           "gradient was added twice (two backward passes).")
    if not _same_params(model, ref):
        raise _not_judged()  # wrong, but not by a doubled gradient


@q.case("gradients do not pile up across steps (zero_grad)",
        hint="PyTorch ADDS each new gradient to .grad: clear the gradients once per "
             "step (before backward, or after step), or step k uses the sum of all k "
             "gradients so far.")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=3)
    for k in range(1, 4):
        _reference_step(ref, X, y, loss_fn, ref_opt)
        _learner_step(train_step, model, X, y, loss_fn, optimizer)
        if k == 1 and not _same_params(model, ref):
            raise _not_judged()  # step 1 is already wrong: not this case's mistake
        if not _same_params(model, ref):
            stale = any(p.grad is not None and bool(p.grad.abs().sum() > 0)
                        for p in model.parameters())
            raise CheckFailure(
                f"step 1 matches a reference SGD step, but step {k} does not"
                + (": the gradients of the earlier steps are still in .grad and were "
                   "added to this step's." if stale else "."))


@q.case("uses the optimizer it is given",
        hint="Step with the optimizer argument; do not create an optimizer inside "
             "train_step (the caller chooses its kind, rate and momentum, and its "
             "state must carry over).")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=4)
    _reference_step(ref, X, y, loss_fn, ref_opt)
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if not _same_params(model, ref):
        raise _not_judged()  # already wrong with SGD(lr=0.1)
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("Adam(lr=0.01)", seed=4)
    sgd = copy.deepcopy(model)
    _reference_step(sgd, X, y, loss_fn, torch.optim.SGD(sgd.parameters(), lr=0.1))
    _reference_step(ref, X, y, loss_fn, ref_opt)
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if _same_params(model, sgd):
        raise CheckFailure("given Adam(lr=0.01), train_step made the step of "
                           "SGD(lr=0.1): it does not use the optimizer it is given.")
    expect_close(_params(model), _params(ref), rtol=1e-4, atol=1e-6,
                 what="the parameters after one step with Adam(lr=0.01)")


@q.case("puts the model in training mode",
        hint="Switch the model to training mode first: a model left in eval mode "
             "(after an evaluation) uses BatchNorm's running statistics and switches "
             "dropout off.")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=5, dropout=True)
    model.eval()  # as after an evaluation pass
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if not model.training:
        raise CheckFailure("after train_step the model is still in eval mode "
                           "(model.training is False).")
    bn = model[1]
    if torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)):
        raise CheckFailure("BatchNorm's running mean did not move: the forward pass "
                           "ran in eval mode.")


@q.case("returns the batch loss from before the update",
        hint="Return the loss of this step's own forward pass, computed before the "
             "optimizer's step; do not evaluate the model again after the update.")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=1)
    expected = _reference_step(ref, X, y, loss_fn, ref_opt)
    with torch.no_grad():
        after = loss_fn(ref.train()(X), y).item()  # the loss of the updated model
    got = as_number(_learner_step(train_step, model, X, y, loss_fn, optimizer),
                    "the returned loss")
    if abs(got - after) <= 1e-6 * max(1.0, abs(after)) < abs(after - expected):
        raise CheckFailure(f"train_step returned {got:.6g}, the loss AFTER the update; "
                           f"the loss of this step's forward pass was {expected:.6g}.")
    if abs(got - expected) > 1e-5 * max(1.0, abs(expected)):
        raise _not_judged()  # wrong, but not the loss after the update


@q.case("the loss goes down over 20 steps",
        hint="Step against the gradient (the optimizer's step() does), clear the "
             "gradients each step, and compute the loss on the model's output for X.")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=5)
    losses = [as_number(_learner_step(train_step, model, X, y, loss_fn, optimizer),
                        f"the loss returned by step {k + 1}") for k in range(20)]
    first, last = losses[0], losses[-1]
    if first == last:
        raise _not_judged()  # nothing changed: "updates the parameters" says why
    if not (np.isfinite(last) and last < 0.8 * first):
        raise CheckFailure(f"over 20 steps on one batch the loss went from {first:.4g} "
                           f"to {last:.4g}; it should fall well below its start.")


# ======================================================================= 03.fix_flatten
q = question("03.fix_flatten", "Find and fix a flatten-size bug", answers=["FixedNet"],
             timeout=10)


def reference_fixed_net(in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> nn.Module:
    """The fixed network of ``03.fix_flatten``: the given features, a Linear sized from the image size."""
    features = nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )
    size = image_size // 2 // 2
    return nn.Sequential(features, nn.Flatten(),
                         nn.Linear(32 * size * size, num_classes))


def _fixed_what(c, s, num_classes=10) -> str:
    extra = "" if num_classes == 10 else f", num_classes={num_classes}"
    return f"FixedNet(in_channels={c}, image_size={s}{extra})"


def _fixed(FixedNet, c, s, num_classes=10):
    """A FixedNet, its lazy layers materialized by a forward pass of one image."""
    torch.manual_seed(0)
    model = call(FixedNet, in_channels=c, num_classes=num_classes, image_size=s)
    what = _fixed_what(c, s, num_classes)
    if not isinstance(model, nn.Module):
        raise CheckFailure(f"{what} should create a torch.nn.Module, got a "
                           f"{type(model).__name__}: FixedNet must be a subclass of "
                           "nn.Module (class FixedNet(nn.Module)).", basic=True)
    _forward(model, torch.zeros(1, c, s, s), f"{what}(X (1,{c},{s},{s}))")
    return model


def _fixed_logits(FixedNet, c, s, num_classes, seed) -> None:
    """The learner's network, given the fixed network's weights, computes its logits."""
    model = _fixed(FixedNet, c, s, num_classes)
    torch.manual_seed(seed)
    ref = reference_fixed_net(c, num_classes, s)
    _copy_weights(ref, model)
    X = _randn(5, c, s, s, seed=seed)
    what = f"{_fixed_what(c, s, num_classes)}(X (5,{c},{s},{s}))"
    got = _forward(model, X, what)
    with torch.no_grad():
        expected = ref.eval()(X)
    expect_close(got, expected, rtol=1e-4, atol=1e-5,
                 what=f"{what}, with the weights of the fixed network")


def _fixed_shape(FixedNet, c, s, B) -> None:
    what = f"{_fixed_what(c, s)}(X ({B},{c},{s},{s}))"
    out = _forward(_fixed(FixedNet, c, s), _randn(B, c, s, s), what)
    expect_shape(out, (B, 10), what=what)


@q.case("computes the fixed network's logits on (B, 3, 32, 32)", kind="core",
        hint="Keep the given feature layers, flatten each image's feature maps into "
             "one row, and map that row to num_classes logits with one Linear layer.")
def _(FixedNet):
    _fixed_logits(FixedNet, 3, 32, 10, seed=1)


@q.case("computes the fixed network's logits on (B, 1, 28, 28)", kind="core",
        hint="Size the Linear layer from in_channels and image_size (or let "
             "nn.LazyLinear infer it), not for one image size.")
def _(FixedNet):
    _fixed_logits(FixedNet, 1, 28, 10, seed=2)


@q.case("computes the fixed network's logits with num_classes=5", kind="core",
        hint="The Linear layer's out_features is num_classes.")
def _(FixedNet):
    _fixed_logits(FixedNet, 3, 32, 5, seed=3)


@q.case("works on (B, 3, 32, 32)", kind="property",
        hint="Two 2x2 poolings take 32x32 to 8x8 (not 6x6): the Linear layer needs 32 "
             "* 8 * 8 = 2048 inputs. Compute it (Question 1's formula, a dummy "
             "forward) or use nn.LazyLinear.")
def _(FixedNet):
    _fixed_shape(FixedNet, 3, 32, B=4)


@q.case("works on (B, 1, 28, 28)", kind="property",
        hint="Do not hard-code the fix for 32x32 either: 28x28 pools to 7x7. Size the "
             "Linear layer from image_size, or use nn.LazyLinear.")
def _(FixedNet):
    _fixed_shape(FixedNet, 1, 28, B=4)


@q.case("keeps the batch dimension",
        hint="Flatten from dimension 1 (x.flatten(1) or nn.Flatten()), never with "
             "view(-1, N): with the wrong N, view silently changes the batch size.")
def _(FixedNet):
    # 9 images of 32 * 8 * 8 = 2048 features are 18,432 numbers: view(-1, 1152) would
    # make 16 rows of them.
    _fixed_shape(FixedNet, 3, 32, B=9)


@q.case("the given layers are kept",
        hint="Fix the classifier only: keep the two conv blocks as given (no extra "
             "pooling, no resizing of the input).")
def _(FixedNet):
    model = _fixed(FixedNet, 3, 32)
    convs = [(m.in_channels, m.out_channels, m.kernel_size, m.padding)
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    expect_equal(convs, [(3, 16, (3, 3), (1, 1)), (16, 32, (3, 3), (1, 1))],
                 what="the conv layers")
    pools = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")
    kinds = [k for k in layer_types(model) if k in pools]
    expect_equal(kinds, ["MaxPool2d", "MaxPool2d"], what="the pooling layers")


@q.case("the right parameter count",
        hint="The only Linear layer maps 32 * 8 * 8 = 2048 features (for 32x32 inputs) "
             "to num_classes: 2048 * 10 + 10 parameters.")
def _(FixedNet):
    for c, s in ((3, 32), (1, 28)):
        expected = sum(p.numel() for p in reference_fixed_net(c, 10, s).parameters())
        expect_parameter_count(_fixed(FixedNet, c, s), expected, what=_fixed_what(c, s))


# ======================================================================= 03.keras_model
q = question("03.keras_model", "The same model in Keras", answers=["build_keras_model"],
             timeout=40)

# The spec's layers as operations: layers.ReLU(), layers.Activation("relu") and an
# activation="relu" argument all read as "ReLU" (see _keras_ops).
KERAS_LAYERS = ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Conv2D",
                "BatchNormalization", "ReLU", "MaxPooling2D", "Flatten", "Dropout",
                "Dense"]
_ACTIVATIONS = {"relu": "ReLU", "softmax": "Softmax", "sigmoid": "Sigmoid",
                "tanh": "Tanh"}
KERAS_BATCH = 4  # every forward pass uses this batch size: a Keras error reads the same


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def _keras_error(exc: BaseException) -> str:
    """A Keras or TensorFlow error as a short text that reads the same in every case:
    no colour codes, no "Arguments received by" dump, no numbered names
    (keras_tensor_12)."""
    text = clean_text(str(exc), 3000).split("Arguments received by")[0]
    return clean_text(re.sub(r"keras_tensor_\d+", "keras_tensor", text), 600)


def _keras_built(build_keras_model, **kw):
    """The learner's Keras model, or a basic failure (the same text in every case)."""
    keras = _keras()
    keras.utils.set_random_seed(0)
    try:
        model = call(build_keras_model, **kw)
    except (CheckFailure, NotImplementedError):
        raise
    except Exception as exc:  # Keras finds a wrong layer argument or shape on building
        where = learner_line(exc)
        raise CheckFailure(f"It raised {type(exc).__name__}: {_keras_error(exc)}"
                           + (f"\nat {where}" if where else ""), basic=True) from None
    what = f"build_keras_model({', '.join(f'{k}={v}' for k, v in kw.items())})"
    if model is None:
        raise CheckFailure(f"{what} returned None: return the model you build (is "
                           "there a `return`?).", basic=True)
    if not isinstance(model, keras.Model):
        raise CheckFailure(f"{what} should return a keras.Model (Sequential or "
                           f"functional), got a {type(model).__name__}.", basic=True)
    return model


def _activation_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return _ACTIVATIONS.get(name.lower(), f"Activation({name})")


def _keras_ops(model) -> list[str]:
    """The model's layers as operations: an activation layer or argument is a step of
    its own."""
    ops = []
    for layer in model.layers:
        name = type(layer).__name__
        if name == "InputLayer":
            continue
        if name == "Activation":
            ops.append(_activation_name(layer.activation))
            continue
        ops.append(name)
        act = getattr(layer, "activation", None)
        if name in ("Conv2D", "Dense") and act is not None \
                and getattr(act, "__name__", "") != "linear":
            ops.append(_activation_name(act))
    return ops


def _keras_forward(model, X):
    """``model(X, training=False)`` as NumPy; a Keras error is one basic failure."""
    try:
        return np.asarray(model(X, training=False))
    except Exception as exc:  # a Keras or TensorFlow error about the learner's model
        raise CheckFailure(f"your model, called on a batch of shape {tuple(X.shape)} "
                           f"(channels last), raised {type(exc).__name__}: "
                           f"{_keras_error(exc)}",
                           basic=True) from None


def _keras_same_logits(build_keras_model, num_classes: int, seed: int) -> None:
    """The learner's Keras model, given the PyTorch spec's weights, computes its
    logits."""
    from ...cnn import copy_torch_weights_to_keras, nchw_to_nhwc

    kw = {} if num_classes == 10 else {"num_classes": num_classes}
    model = _keras_built(build_keras_model, **kw)
    torch.manual_seed(seed)
    ref = _randomize_norms(reference_build_model(num_classes), seed).eval()
    if not model.weights:
        raise CheckFailure("your model has no weights yet: Keras creates them once it "
                           "knows the input shape, so start the model with an Input "
                           "layer.",
                           basic=True)
    try:
        copy_torch_weights_to_keras(ref, model, (1, 28, 28))
    except ValueError as exc:
        raise CheckFailure("the weights of the PyTorch spec do not fit your model: "
                           f"{exc}",
                           basic=True) from None
    X = _randn(KERAS_BATCH, 1, 28, 28, seed=seed).abs()  # NCHW, for the reference
    got = _keras_forward(model, nchw_to_nhwc(X))
    with torch.no_grad():
        expected = ref(X).numpy()
    what = f"build_keras_model({', '.join(f'{k}={v}' for k, v in kw.items())})"
    expect_close(got, expected, rtol=1e-3, atol=1e-3,
                 what=f"the logits of {what} (with the spec's weights, inference)")


@q.case("computes what the PyTorch spec computes", kind="core",
        hint="Same layers in the same order as the PyTorch model: with the spec's "
             "weights your model then gives the same logits.")
def _(build_keras_model):
    _keras_same_logits(build_keras_model, 10, seed=1)


@q.case("the same on other weights and images", kind="core",
        hint="The same function as the PyTorch spec, for any weights: check the order "
             "of BatchNorm and ReLU and the BatchNormalization settings.")
def _(build_keras_model):
    _keras_same_logits(build_keras_model, 10, seed=2)


@q.case("the same with num_classes=7", kind="core",
        hint="The last Dense layer has num_classes units.")
def _(build_keras_model):
    _keras_same_logits(build_keras_model, 7, seed=3)


@q.case("returns a keras.Model", kind="property",
        hint="Return the model you build: a keras.Sequential of the layers, or a "
             "functional keras.Model from its inputs to its outputs.")
def _(build_keras_model):
    _keras_built(build_keras_model)


@q.case("channels-last input (28, 28, 1)", kind="property",
        hint="Keras images are NHWC (channels last): the input shape is (28, 28, 1), "
             "not PyTorch's (1, 28, 28).")
def _(build_keras_model):
    model = _keras_built(build_keras_model)
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        raise CheckFailure("your model has no input shape: start it with an Input "
                           "layer of the image shape.") from None
    expect_equal(shape, (None, 28, 28, 1), what="model.input_shape")


@q.case("output shape (B, 10), logits", kind="property",
        hint="The last Dense layer has num_classes units and no activation: return "
             "logits and train with from_logits=True.")
def _(build_keras_model):
    model = _keras_built(build_keras_model)
    X = np.random.default_rng(0).random((KERAS_BATCH, 28, 28, 1), dtype=np.float32)
    out = _keras_forward(model, X)
    expect_shape(out, (KERAS_BATCH, 10), what=f"model(X {X.shape})")
    if np.allclose(out.sum(axis=1), 1.0, atol=1e-4) and (out >= 0).all():
        raise CheckFailure("the outputs are probabilities (they sum to 1): remove the "
                           "softmax activation.")
    ops = _keras_ops(model)
    if ops and ops[-1] != "Dense":
        raise CheckFailure(f"the model ends with {ops[-1]} after the last Dense layer: "
                           "the outputs must be logits, with no activation.")


@q.case("the layers, in order",
        hint="Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D twice, then "
             "Flatten, Dropout, Dense (no activation: logits).")
def _(build_keras_model):
    got = _keras_ops(_keras_built(build_keras_model))
    if got != KERAS_LAYERS:
        raise CheckFailure(f"build_keras_model() has the layers {got} (an activation "
                           "argument counts as its own step),\nexpected "
                           f"{KERAS_LAYERS}.")


@q.case("padding 'same' and no conv bias",
        hint="Each Conv2D keeps the image size (padding \"same\") and has no bias "
             "(use_bias=False), as in the PyTorch spec (padding=1, bias=False).")
def _(build_keras_model):
    convs = [layer for layer in _keras_built(build_keras_model).layers
             if type(layer).__name__ == "Conv2D"]
    got = [(layer.filters, tuple(layer.kernel_size), layer.padding, layer.use_bias)
           for layer in convs]
    expect_equal(got, [(16, (3, 3), "same", False), (32, (3, 3), "same", False)],
                 what="the Conv2D (filters, kernel_size, padding, use_bias)")


@q.case("BatchNormalization with PyTorch's settings",
        hint="PyTorch's BatchNorm defaults in Keras' terms: epsilon 1e-5 and momentum "
             "0.9 (Keras' momentum is one minus PyTorch's; Keras' own defaults are "
             "0.99 and 1e-3).")
def _(build_keras_model):
    norms = [layer for layer in _keras_built(build_keras_model).layers
             if type(layer).__name__ == "BatchNormalization"]
    eps, mom = [layer.epsilon for layer in norms], [layer.momentum for layer in norms]
    if not norms or any(abs(e - 1e-5) > 1e-9 for e in eps) \
            or any(abs(m - 0.9) > 1e-9 for m in mom):
        raise CheckFailure(f"BatchNormalization has epsilon {eps} and momentum {mom}; "
                           "the spec uses PyTorch's defaults: epsilon=1e-5, "
                           "momentum=0.9.")


@q.case("dropout "
        "rate 0.25", hint="Dropout's rate is the fraction of units DROPPED: a quarter.")
def _(build_keras_model):
    drops = [layer.rate for layer in _keras_built(build_keras_model).layers
             if type(layer).__name__ == "Dropout"]
    expect_equal(drops, [0.25], what="the dropout rates")


@q.case("trainable parameter count 20,538",
        hint="Same as the PyTorch spec: 144 + 4,608 + 2*(16+32) + 15,690 trainable "
             "(BatchNorm's moving mean/variance are not trainable).")
def _(build_keras_model):
    expect_parameter_count(_keras_built(build_keras_model), 20_538,
                           what="build_keras_model()")


__all__ = ["BUILD_MODEL_LAYERS", "KERAS_LAYERS", "NOT_JUDGED", "reference_build_model",
           "reference_fixed_net"]
