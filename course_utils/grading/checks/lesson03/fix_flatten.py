"""Checks of 03.fix_flatten: Find and fix a flatten-size bug."""
from __future__ import annotations

import torch
from torch import nn

from ...asserts import (CheckFailure, call, expect_close, expect_equal,
                        expect_parameter_count, expect_shape, layer_types)
from ...registry import question
from ._common import _copy_weights, _forward, _randn


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
