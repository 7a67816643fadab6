"""Checks of 07.fold_batchnorm: Fold a BatchNorm into the convolution before it."""
from __future__ import annotations

import torch
from torch import nn

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _basic, _matches, _plain_mismatch, generator, seeded


q = question("07.fold_batchnorm", "Fold a BatchNorm into the convolution before it",
             answers=["fold_batchnorm"], timeout=5)


def layers(seed: int, c_in: int, c_out: int, k: int = 3, stride: int = 1,
           padding: int = 1, groups: int = 1, bias: bool = True, eps: float = 1e-5,
           var_low: float = 0.2):
    """A seeded Conv2d and the BatchNorm2d after it, as training leaves them: the BN's
    gain, shift and running statistics far from their initial 1, 0, 0, 1. Both are
    in eval mode (inference), as fuse_conv_bn_eval requires."""
    conv = seeded(seed, lambda: nn.Conv2d(c_in, c_out, k, stride=stride,
                                          padding=padding, groups=groups, bias=bias))
    bn = nn.BatchNorm2d(c_out, eps=eps)
    g = generator(seed + 100)
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.5 * torch.randn(c_out, generator=g))
        bn.bias.copy_(0.3 * torch.randn(c_out, generator=g))
        bn.running_mean.copy_(0.5 * torch.randn(c_out, generator=g))
        bn.running_var.copy_(var_low + torch.rand(c_out, generator=g))
    bn.num_batches_tracked.fill_(100)
    return conv.eval(), bn.eval()


def images(seed: int, c_in: int, size: int = 9) -> torch.Tensor:
    """Seeded inputs (2, c_in, size, size) float32."""
    return torch.randn(2, c_in, size, size, generator=generator(seed))


def reference_output(conv, bn, x) -> torch.Tensor:
    """What the two layers compute at inference, bn(conv(x)) in eval mode (float64)."""
    conv64 = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                       conv.stride, conv.padding, conv.dilation, conv.groups,
                       conv.bias is not None).double()
    conv64.load_state_dict(conv.state_dict())
    y = conv64(x.double())  # (B, C_out, H', W')
    shape = (1, -1, 1, 1)
    mean = bn.running_mean.double().view(shape)
    var = bn.running_var.double().view(shape)
    return ((y - mean) / torch.sqrt(var + bn.eps) * bn.weight.double().view(shape)
            + bn.bias.double().view(shape))


def mistaken_conv(conv, bn, how: str) -> nn.Conv2d:
    """The folded convolution of a typical mistake (float64)."""
    W = conv.weight.detach().double()  # (C_out, C_in / groups, k, k)
    b = (conv.bias.detach().double() if conv.bias is not None
         else torch.zeros(W.shape[0], dtype=torch.float64))
    gamma, beta = bn.weight.detach().double(), bn.bias.detach().double()
    mean, var = bn.running_mean.double(), bn.running_var.double()
    std = torch.sqrt(var if how == "no eps" else var + bn.eps)
    if how == "no running stats":
        mean, std = torch.zeros_like(mean), torch.ones_like(std)
    scale = gamma / std  # (C_out,)
    if how == "input axis":
        W2 = W * scale.view(1, -1, 1, 1)
    else:
        W2 = W * scale.view(-1, 1, 1, 1)
    b2 = (b - mean) * scale + beta
    if how == "bias is beta":
        b2 = beta + b
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                       conv.stride, conv.padding, conv.dilation, conv.groups,
                       how != "no bias").double()
    with torch.no_grad():
        folded.weight.copy_(W2)
        if how != "no bias":
            folded.bias.copy_(b2)
    return folded


def _copy_layers(conv, bn):
    """Fresh copies of the two layers (a change in place is the property case's)."""
    conv2 = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                      conv.stride, conv.padding, conv.dilation, conv.groups,
                      conv.bias is not None)
    conv2.load_state_dict(conv.state_dict())
    conv2.train(conv.training)
    bn2 = nn.BatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum)
    bn2.load_state_dict(bn.state_dict())
    return conv2, bn2.train(bn.training)


def _what(conv, bn) -> str:
    extra = "" if conv.bias is not None else ", bias=False"
    if conv.groups > 1:
        extra += f", groups={conv.groups}"
    if conv.stride != (1, 1):
        extra += f", stride={conv.stride[0]}"
    return (f"fold_batchnorm(nn.Conv2d({conv.in_channels}, {conv.out_channels}, "
            f"{conv.kernel_size[0]}{extra}), nn.BatchNorm2d({bn.num_features}, "
            f"eps={bn.eps:g}))")


def _folded(fn, conv, bn) -> nn.Conv2d:
    """The answer on copies of the layers, checked to be a Conv2d of conv's shape."""
    got = call(fn, *_copy_layers(conv, bn), check_mutation=False, name="fold_batchnorm")
    what = _what(conv, bn)
    if got is None:
        raise _basic(f"{what} returned None: return the folded nn.Conv2d.",
                     problem="none")
    if not isinstance(got, nn.Conv2d):
        raise _basic(f"{what} returned {_short(got)}; expected one nn.Conv2d that "
                     "computes what the convolution and the BatchNorm computed "
                     "together.", problem="type")
    if tuple(got.weight.shape) != tuple(conv.weight.shape):
        raise _basic(f"the weight of {what} has shape {tuple(got.weight.shape)}, "
                     f"expected {tuple(conv.weight.shape)} (the convolution's).",
                     problem="shape")
    return got


def _output(folded, x) -> torch.Tensor:
    with torch.no_grad():
        return folded(x.to(folded.weight.dtype)).float()


_TOL = dict(rtol=1e-4, atol=1e-5)


def _expect(fn, conv, bn, x) -> None:
    got = _output(_folded(fn, conv, bn), x)
    ref = reference_output(conv, bn, x)
    expect_close(got, ref.float(), what=f"the folded convolution's output on x "
                 f"{tuple(x.shape)} (from {_what(conv, bn)})", **_TOL)


_HINT = ("At inference a BatchNorm is a fixed affine map per channel, built from its "
         "running statistics, eps, gain and shift; scale each OUTPUT channel's filter "
         "by its factor and turn the rest into the new convolution's bias.")


@q.case("a Conv2d(3, 8, 3) with a bias, eps = 1e-5", kind="core", hint=_HINT)
def _(fold_batchnorm):
    conv, bn = layers(0, 3, 8)
    _expect(fold_batchnorm, conv, bn, images(0, 3))


@q.case("a ResNet-style Conv2d(8, 16, 3, stride 2) without a bias", kind="core",
        hint=_HINT)
def _(fold_batchnorm):
    conv, bn = layers(1, 8, 16, stride=2, bias=False)
    _expect(fold_batchnorm, conv, bn, images(1, 8))


@q.case("a MobileNet-style depthwise Conv2d(12, 12, 3, groups 12), eps = 1e-3",
        kind="core", hint=_HINT)
def _(fold_batchnorm):
    conv, bn = layers(2, 12, 12, groups=12, bias=False, eps=1e-3)
    _expect(fold_batchnorm, conv, bn, images(2, 12))


def _judge(fn, how, message, conv, bn, x) -> None:
    folded = _folded(fn, conv, bn)
    got = _output(folded, x)
    ref = reference_output(conv, bn, x).float()
    if _matches(got, ref, **_TOL):
        return
    wrong = _output(mistaken_conv(conv, bn, how), x)
    what = f"the folded convolution's output (from {_what(conv, bn)})"
    if _matches(got, wrong, **_TOL):
        raise CheckFailure(f"{what}: {message}")
    _plain_mismatch(got, ref, what, **_TOL)


@q.case("the BatchNorm's eps is inside the square root",
        hint="At inference BatchNorm divides by the square root of the running "
             "variance PLUS eps; with a small variance, or an eps of 1e-3 as in many "
             "Keras and MobileNet models, leaving eps out changes the scale.")
def _(fold_batchnorm):
    conv, bn = layers(3, 4, 6, eps=0.1, var_low=0.01)
    _judge(fold_batchnorm, "no eps", "the scale divides by sqrt(running_var), without "
           "eps.", conv, bn, images(3, 4))


@q.case("the running statistics are folded in, not only the gain and the shift",
        hint="In eval mode BatchNorm first normalises with the mean and variance it "
             "estimated during training (running_mean, running_var), then applies its "
             "gain and shift: all four go into the folded weights.")
def _(fold_batchnorm):
    conv, bn = layers(4, 4, 6)
    _judge(fold_batchnorm, "no running stats", "only the BatchNorm's weight and bias "
           "are used; its running mean and variance are ignored.", conv, bn,
           images(4, 4))


@q.case("each OUTPUT channel's filter is scaled",
        hint="The BatchNorm normalises the convolution's output channels: its factor "
             "for channel c multiplies filter c, weight[c] (axis 0), not input channel "
             "c (axis 1). With as many input as output channels both have the right "
             "shape.")
def _(fold_batchnorm):
    conv, bn = layers(5, 6, 6)
    _judge(fold_batchnorm, "input axis", "the weight is scaled along its INPUT-channel "
           "axis (1).", conv, bn, images(5, 6))


@q.case("a convolution without a bias gets one",
        hint="Folding always produces a bias: the BatchNorm's shift and its running "
             "mean, scaled, end up there even when the convolution had none (ResNet's "
             "convolutions have no bias for that reason).")
def _(fold_batchnorm):
    conv, bn = layers(6, 4, 6, bias=False)
    folded = _folded(fold_batchnorm, conv, bn)
    what = _what(conv, bn)
    if folded.bias is None:
        raise CheckFailure(f"{what} returned a Conv2d without a bias.")
    x = images(6, 4)
    got = _output(folded, x)
    ref = reference_output(conv, bn, x).float()
    if _matches(got, ref, **_TOL):
        return
    if _matches(got, _output(mistaken_conv(conv, bn, "bias is beta"), x), **_TOL):
        raise CheckFailure(f"the bias of {what} is the BatchNorm's shift alone: the "
                           "running mean's contribution is missing.")
    _plain_mismatch(got, ref, f"the folded convolution's output (from {what})", **_TOL)


@q.case("a new Conv2d; the convolution and the BatchNorm left unchanged",
        kind="property",
        hint="Build a new nn.Conv2d (or a deep copy) for the folded weights: the "
             "original layers may still be needed, for instance to train further.")
def _(fold_batchnorm):
    conv, bn = layers(7, 3, 4)
    w, b = conv.weight.detach().clone(), conv.bias.detach().clone()
    stats = {k: v.clone() for k, v in bn.state_dict().items()}
    got = call(fold_batchnorm, conv, bn, check_mutation=False, name="fold_batchnorm")
    if got is conv:
        raise CheckFailure("fold_batchnorm returned the convolution it was given; "
                           "return a new one.")
    if not (torch.equal(conv.weight.detach(), w)
            and torch.equal(conv.bias.detach(), b)):
        raise CheckFailure("fold_batchnorm changed the convolution's weight or bias in "
                           "place.")
    if any(not torch.equal(bn.state_dict()[k], v) for k, v in stats.items()):
        raise CheckFailure("fold_batchnorm changed the BatchNorm's parameters or "
                           "statistics.")
    if isinstance(got, nn.Conv2d) and got.weight.dtype != torch.float32:
        raise CheckFailure(f"the folded convolution's weight has dtype "
                           f"{got.weight.dtype}; expected torch.float32, the "
                           "convolution's.")
