"""Checks of 03.build_model: A CNN built to a spec."""
from __future__ import annotations

import torch
from torch import nn

from ...asserts import (CheckFailure, _short, call, expect_close, expect_equal,
                        expect_layers, expect_parameter_count, expect_shape)
from ...registry import question
from ._common import _copy_weights, _forward, _randn, _randomize_norms


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
