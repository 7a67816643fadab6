"""Checks of 03.conv2d_forward: A convolution layer's forward pass from scratch."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, call, expect_close, to_numpy
from ...registry import question
from ._common import _agrees, _crash_is_the_mistake, _expect_tensor_like, _not_judged


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
