"""Checks of 03.build_resnet: A pre-activation residual network with global average pooling."""
from __future__ import annotations

import torch
from torch import nn

from ...asserts import CheckFailure, expect_close, expect_parameter_count, to_numpy
from ...registry import question
from ._common import _copy_weights, _forward, _not_judged, _randn, _randomize_norms
from .build_model import _built


q = question("03.build_resnet", "A pre-activation residual network with global average pooling",
             answers=["build_resnet"], timeout=10)


class _Block(nn.Module):
    """He et al.'s (2016b) pre-activation block; the flags make the typical mistakes."""

    def __init__(self, channels, skip=True, relu_after_add=False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.skip, self.relu_after_add = skip, relu_after_add

    def forward(self, x):  # (B, C, H, W) -> (B, C, H, W)
        out = self.conv1(torch.relu(self.bn1(x)))
        out = self.conv2(torch.relu(self.bn2(out)))
        if not self.skip:
            return out
        return torch.relu(out + x) if self.relu_after_add else out + x


def reference_build_resnet(num_classes: int = 10, skip=True, relu_after_add=False,
                           head="avg") -> nn.Module:
    """The spec of ``03.build_resnet`` (the flags give the variants the mistake cases
    recognize)."""
    pool = nn.AdaptiveAvgPool2d(1) if head == "avg" else nn.AdaptiveMaxPool2d(1)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        _Block(16, skip, relu_after_add),                         # (B, 16, H, W)
        nn.MaxPool2d(2),                                          # (B, 16, H/2, W/2)
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        _Block(32, skip, relu_after_add),                         # (B, 32, H/2, W/2)
        nn.BatchNorm2d(32), nn.ReLU(),                            # the last activation
        pool, nn.Flatten(),                                       # (B, 32)
        nn.Linear(32, num_classes),                               # (B, num_classes)
    )


def _logits(build_resnet, num_classes=10, seed=0, size=28, train=False, **variant):
    """(the learner's logits, the spec's or a variant's) with the spec's weights."""
    kw = {} if num_classes == 10 else {"num_classes": num_classes}
    model = _built(build_resnet, **kw)
    torch.manual_seed(seed)
    ref = _randomize_norms(reference_build_resnet(num_classes, **variant), seed)
    _copy_weights(ref, model)
    X = _randn(5, 1, size, size, seed=seed)
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    mode = "train" if train else "eval"
    what = f"build_resnet({args})(X (5,1,{size},{size})) in {mode} mode"
    got = _forward(model, X, what, train=train)
    expected = _forward(ref, X, "the spec", train=train, learner=False)
    return what, got, expected


def _expect(build_resnet, **kw) -> None:
    what, got, expected = _logits(build_resnet, **kw)
    expect_close(got, expected, rtol=1e-4, atol=1e-5,
                 what=f"the logits of {what} (with the spec's weights)")


def _close(a, b) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5))


def _diagnose(build_resnet, message: str, **variant) -> None:
    """A mistake case: the spec's logits pass; the variant's are the mistake; anything
    else is not judged here (the core cases show it)."""
    _, got, expected = _logits(build_resnet, seed=3)
    if _close(got, expected):
        return
    _, _, wrong = _logits(build_resnet, seed=3, **variant)
    if _close(got, wrong):
        raise CheckFailure(message)
    raise _not_judged()


@q.case("the spec's logits (evaluation mode)", kind="core",
        hint="Follow the table layer by layer: a pre-activation block normalizes and "
             "activates BEFORE each convolution, adds x at the end, and its layers with "
             "weights are registered in the order they run (bn1, conv1, bn2, conv2).")
def _(build_resnet):
    _expect(build_resnet)


@q.case("the spec's logits in training mode, 5 classes", kind="core",
        hint="Use num_classes for the last layer; in training mode BatchNorm uses the"
             " batch statistics (no dropout in this network).")
def _(build_resnet):
    _expect(build_resnet, num_classes=5, seed=1, train=True)


@q.case("any image size (32 x 32)", kind="core",
        hint="Global average pooling (nn.AdaptiveAvgPool2d(1)) makes the head "
             "independent of the image size: nothing in the network may assume 28 x "
             "28.")
def _(build_resnet):
    _expect(build_resnet, seed=2, size=32)


@q.case("the block adds its input (the skip connection)",
        hint="A residual block returns F(x) + x: without the addition it is a plain "
             "stack of two convolutions.")
def _(build_resnet):
    _diagnose(build_resnet, "Your logits are those of the network WITHOUT the skip "
              "connections: each block must add its input x to its output.", skip=False)


@q.case("nothing after the addition (an identity path)",
        hint="In the pre-activation block the sum F(x) + x is the block's output: the "
             "ReLU of the original block moved into F, before the convolutions, so the "
             "path from x to the output is the identity.")
def _(build_resnet):
    _diagnose(build_resnet, "Your logits are those of blocks that return "
              "ReLU(F(x) + x), the original block's ending: in the pre-activation "
              "block nothing follows the addition.", relu_after_add=True)


@q.case("the head averages, not maxes",
        hint="Global AVERAGE pooling: the mean of each channel over all positions "
             "(nn.AdaptiveAvgPool2d(1), or x.mean((2, 3))), not its maximum.")
def _(build_resnet):
    _diagnose(build_resnet, "Your logits are those of a global MAX pooling head: the "
              "spec averages each channel over all positions.", head="max")


@q.case("the parameter count", kind="property",
        hint="Conv layers without bias have C_out C_in 9 weights, each BatchNorm 2C "
             "(the blocks have two each, and one follows the last block), the Linear "
             "layer 32 num_classes + num_classes; a Flatten + Linear(32*14*14, ...) "
             "head is not global average pooling.")
def _(build_resnet):
    model = _built(build_resnet)
    expected = sum(p.numel() for p in reference_build_resnet().parameters())
    expect_parameter_count(model, expected, what="build_resnet()")
