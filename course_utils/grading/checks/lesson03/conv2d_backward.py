"""Checks of 03.conv2d_backward: The backward pass of a convolution layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _agrees, _crash_is_the_mistake, _expect_tensor_like, _not_judged


# The library's convolution, forward or backward (F.conv2d, nn.Conv2d, torch.conv2d,
# conv_transpose2d and autograd through any of them reach these ATen ops), counts as
# not answered; loops, unfold/fold (im2col/col2im), einsum, matrix products and F.pad
# are the work the question asks for.
CONV_OPS = ("convolution", "_convolution", "conv2d", "convolution_backward",
            "conv_transpose2d")
q = question("03.conv2d_backward", "The backward pass of a convolution layer",
             answers=["conv2d_backward"], timeout=10, forbid=CONV_OPS)


def _inputs(B=2, C_in=3, H=7, W=6, C_out=4, kH=3, kW=2, seed=0, symmetric=False):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, C_in, H, W, generator=g)
    weight = torch.randn(C_out, C_in, kH, kW, generator=g)
    if symmetric:  # unchanged by a flip of both kernel axes
        weight = weight + weight.flip(-2, -1)
    grad_out = torch.randn(B, C_out, H - kH + 1, W - kW + 1, generator=g)
    return X, weight, grad_out


def reference_conv2d_backward(X, weight, grad_out):
    """Autograd through F.conv2d (stride 1, no padding) in float64: the oracle."""
    X64 = X.detach().double().requires_grad_()
    w64 = weight.detach().double().requires_grad_()
    b64 = torch.zeros(weight.shape[0], dtype=torch.float64, requires_grad=True)
    out = F.conv2d(X64, w64, b64)
    out.backward(grad_out.double())
    return X64.grad, w64.grad, b64.grad


def _what(X, weight, grad_out) -> str:
    return (f"conv2d_backward(X {tuple(X.shape)}, weight {tuple(weight.shape)}, "
            f"grad_out {tuple(grad_out.shape)})")


NAMES = ("grad_X", "grad_weight", "grad_bias")


def _grads(fn, X, weight, grad_out):
    what = _what(X, weight, grad_out)
    got = call(fn, X, weight, grad_out)
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise CheckFailure(f"{what} returned {_short(got)}; expected a tuple of three "
                           "tensors (grad_X, grad_weight, grad_bias).", basic=True)
    return what, got


def _expect(fn, X, weight, grad_out, parts=(0, 1, 2), own_shape=False) -> None:
    what, got = _grads(fn, X, weight, grad_out)
    expected = reference_conv2d_backward(X, weight, grad_out)
    for i in parts:
        label = f"{NAMES[i]} of {what}"
        if own_shape:
            _expect_tensor_like(got[i], expected[i], label, rtol=1e-4, atol=1e-4)
        else:
            expect_close(got[i], expected[i], rtol=1e-4, atol=1e-4, what=label)


def _detail(fn, control: dict, feature: dict, parts) -> None:
    """A mistake case: right on ``control`` (else not judged), then on ``feature``."""
    X, weight, grad_out = _inputs(**control)
    if not _agrees(lambda: _expect(fn, X, weight, grad_out)):
        raise _not_judged()
    X, weight, grad_out = _inputs(**feature)
    with _crash_is_the_mistake(_what(X, weight, grad_out)):
        _expect(fn, X, weight, grad_out, parts, own_shape=True)


@q.case("one channel, one example", kind="core",
        hint="Each output position (i, j) used the input patch at (i, j) with the "
             "whole kernel: its gradient flows back to that patch (times the kernel) "
             "and to the kernel (times that patch).")
def _(conv2d_backward):
    _expect(conv2d_backward, *_inputs(B=1, C_in=1, H=5, W=5, C_out=1, kH=2, kW=2))


@q.case("a batch, several channels, a non-square kernel", kind="core",
        hint="grad_weight[o, c] adds up the contributions of every example and "
             "position; grad_X[:, c] adds up those of every output channel o.")
def _(conv2d_backward):
    _expect(conv2d_backward, *_inputs(B=3, C_in=3, H=7, W=6, C_out=4, kH=3, kW=2,
                                      seed=10))


@q.case("a non-square image, a larger kernel", kind="core",
        hint="Height goes with kH and dimension 2, width with kW and dimension 3.")
def _(conv2d_backward):
    _expect(conv2d_backward, *_inputs(B=2, C_in=2, H=9, W=6, C_out=3, kH=4, kW=3,
                                      seed=11))


@q.case("grad_X uses the kernel as the forward pass did",
        hint="grad_X[c, y, x] adds grad_out[o, i, j] * weight[o, c, y - i, x - j]: as"
             " a convolution of the zero-padded grad_out it needs the kernel FLIPPED "
             "in both axes (a cross-correlation with the kernel as it is gets a wrong"
             " grad_X).")
def _(conv2d_backward):
    _detail(conv2d_backward,
            dict(B=1, C_in=1, H=6, W=6, C_out=1, kH=3, kW=3, seed=1, symmetric=True),
            dict(B=1, C_in=1, H=6, W=6, C_out=1, kH=3, kW=3, seed=1), parts=(0,))


@q.case("grad_X sums over the output channels",
        hint="Input channel c fed every output channel: its gradient is the sum over o "
             "of what flows back from channel o (not channel 0 alone, not a mean).")
def _(conv2d_backward):
    _detail(conv2d_backward, dict(B=1, C_in=2, H=6, W=5, C_out=1, kH=3, kW=2, seed=2),
            dict(B=1, C_in=2, H=6, W=5, C_out=3, kH=3, kW=2, seed=2), parts=(0,))


@q.case("grad_weight and grad_bias sum over the batch",
        hint="The same kernel and bias serve every example: add their gradients over "
             "the batch (a sum, as autograd does for a summed loss, not a mean, not "
             "example 0 alone).")
def _(conv2d_backward):
    _detail(conv2d_backward, dict(B=1, C_in=2, H=6, W=6, C_out=2, kH=3, kW=3, seed=3),
            dict(B=4, C_in=2, H=6, W=6, C_out=2, kH=3, kW=3, seed=3), parts=(1, 2))


@q.case("grad_weight pairs input and output channels",
        hint="grad_weight has the weight's shape (C_out, C_in, kH, kW): entry [o, c] "
             "correlates input channel c with grad_out channel o; do not swap them.")
def _(conv2d_backward):
    _detail(conv2d_backward, dict(B=2, C_in=1, H=6, W=6, C_out=1, kH=3, kW=3, seed=4),
            dict(B=2, C_in=3, H=6, W=6, C_out=2, kH=3, kW=3, seed=4), parts=(1,))


@q.case("keeps the inputs' dtype (float32)", kind="property",
        hint="Build the gradients in X's dtype, as autograd does: float64 results "
             "(from NumPy, or a float64 buffer) do not fit the float32 parameters "
             "they update.")
def _(conv2d_backward):
    X, weight, grad_out = _inputs(B=1, C_in=2, H=5, W=5, C_out=2, kH=3, kW=3, seed=12)
    what, got = _grads(conv2d_backward, X, weight, grad_out)
    expected = reference_conv2d_backward(X, weight, grad_out)
    for name, g, e in zip(NAMES, got, expected):
        if not isinstance(g, torch.Tensor):  # None, a NumPy array: a basic failure
            expect_close(g, e, what=f"{name} of {what}")
        if g.dtype != X.dtype:
            raise CheckFailure(f"{name} of {what} is a {g.dtype} tensor for {X.dtype} "
                               f"inputs; autograd gives {X.dtype}.")
