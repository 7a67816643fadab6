"""Checks of lesson 03, convolutional networks: one question per ``question(...)`` below.

Reference oracles: ``torch.nn.functional`` (conv2d, max_pool2d), ``torch.nn.Conv2d`` output shapes,
and the models of the exercises' spec built here. Each typical mistake has its own case, whose hint
names it.
"""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..asserts import (CheckFailure, call, expect_close, expect_equal, expect_layers, expect_parameter_count,
                       expect_shape, layer_types)
from ..registry import question


# =========================================================================== 03.conv_output_size
q = question("03.conv_output_size", "The output-size formula", answers=["conv_output_size"])


def _size(fn, n, k, padding=0, stride=1, dilation=1):
    got = call(fn, n, k, padding=padding, stride=stride, dilation=dilation)
    if isinstance(got, torch.Tensor) or isinstance(got, np.ndarray):
        got = got.item()
    return got


def _torch_size(n, k, padding=0, stride=1, dilation=1):
    with torch.no_grad():
        conv = nn.Conv2d(1, 1, k, padding=padding, stride=stride, dilation=dilation, bias=False)
        return conv(torch.zeros(1, 1, n, n)).shape[-1]


@q.case("no padding, stride 1: n - k + 1", hint="A k-wide kernel fits n - k + 1 times into n positions.")
def _(conv_output_size):
    expect_equal(_size(conv_output_size, 28, 5), 24, what="conv_output_size(28, 5)")


@q.case("returns an int", hint="Use floor division `//` (not `/`, which gives a float) and return an int.")
def _(conv_output_size):
    got = call(conv_output_size, 28, 3, padding=1, stride=2, dilation=1)
    if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
        raise CheckFailure(f"conv_output_size(28, 3, padding=1, stride=2) returned {got!r} of type "
                           f"{type(got).__name__}; a size must be an int.")


@q.case("padding is added on both sides (2p)", hint="Padding p adds p pixels on EACH side: n + 2p, not n + p.")
def _(conv_output_size):
    expect_equal(_size(conv_output_size, 28, 3, padding=1), 28, what="conv_output_size(28, 3, padding=1)")
    expect_equal(_size(conv_output_size, 10, 5, padding=2), 10, what="conv_output_size(10, 5, padding=2)")


@q.case("stride divides the steps, then +1", hint="Divide (n + 2p - k) by the stride, floor, THEN add 1: "
        "(n + 2p - k) // s + 1, not (n + 2p - k + 1) // s.")
def _(conv_output_size):
    expect_equal(_size(conv_output_size, 7, 3, stride=2), 3, what="conv_output_size(7, 3, stride=2)")
    expect_equal(_size(conv_output_size, 9, 3, stride=3), 3, what="conv_output_size(9, 3, stride=3)")


@q.case("sizes are floored, not rounded up", hint="A window that would hang over the edge is dropped: "
        "floor the division (`//`), do not use ceil or round.")
def _(conv_output_size):
    expect_equal(_size(conv_output_size, 8, 3, stride=2), 3, what="conv_output_size(8, 3, stride=2)")
    expect_equal(_size(conv_output_size, 7, 2, stride=2), 3, what="conv_output_size(7, 2, stride=2)")
    # 5 / 3 = 1.67: floor gives 1 step, round() and ceil give 2 (Python rounds the .5 cases above to even).
    expect_equal(_size(conv_output_size, 8, 3, stride=3), 2, what="conv_output_size(8, 3, stride=3)")


@q.case("dilation spreads the kernel to d(k-1)+1", hint="A dilated kernel spans d*(k-1) + 1 pixels "
        "(not d*k): subtract d*(k-1) + 1, i.e. use n + 2p - d(k-1) - 1.")
def _(conv_output_size):
    expect_equal(_size(conv_output_size, 28, 3, dilation=2), 24, what="conv_output_size(28, 3, dilation=2)")
    expect_equal(_size(conv_output_size, 10, 3, padding=2, dilation=2), 10,
                 what="conv_output_size(10, 3, padding=2, dilation=2)")


@q.case("agrees with nn.Conv2d on 40 random settings", hint="Use floor((n + 2p - d(k-1) - 1) / s) + 1.")
def _(conv_output_size):
    rng = np.random.default_rng(3)
    for _ in range(40):
        k, d, s, p = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        n = int(rng.integers(d * (k - 1) + 1, 33))
        expected = _torch_size(n, k, p, s, d)
        expect_equal(_size(conv_output_size, n, k, padding=p, stride=s, dilation=d), expected,
                     what=f"conv_output_size({n}, {k}, padding={p}, stride={s}, dilation={d})")


# =========================================================================== 03.conv2d_forward
q = question("03.conv2d_forward", "A convolution layer's forward pass from scratch", answers=["conv2d"])


def _conv_inputs(B=2, C_in=3, H=7, W=6, C_out=4, kH=3, kW=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, C_in, H, W, generator=g)
    weight = torch.randn(C_out, C_in, kH, kW, generator=g)
    bias = torch.randn(C_out, generator=g)
    return X, weight, bias


def _conv_expect(conv2d, X, weight, bias=None, stride=1, padding=0, what="conv2d(...)"):
    got = call(conv2d, X, weight, bias, stride=stride, padding=padding)
    expected = F.conv2d(X, weight, bias, stride=stride, padding=padding)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        flipped = F.conv2d(X, weight.flip(-2, -1), bias, stride=stride, padding=padding)
        if torch.allclose(got, flipped, atol=1e-4) and not torch.allclose(flipped, expected, atol=1e-4):
            raise CheckFailure(f"{what} equals the convolution with the kernel FLIPPED. Deep-learning "
                               "\"convolution\" layers compute a cross-correlation: the kernel is not flipped.")
    expect_close(got, expected, rtol=1e-4, atol=1e-4, what=what)


@q.case("one channel, one kernel, no bias", hint="Slide the kernel over every position where it fits and sum "
        "the elementwise products; do not flip the kernel (F.conv2d is a cross-correlation).")
def _(conv2d):
    X, weight, _ = _conv_inputs(B=1, C_in=1, H=5, W=5, C_out=1, kH=2, kW=2)
    _conv_expect(conv2d, X, weight, None, what="conv2d(X (1,1,5,5), weight (1,1,2,2))")


@q.case("the kernel is not flipped (cross-correlation)", hint="Do not flip the kernel: out[i, j] = "
        "sum_{a,b} X[i + a, j + b] * K[a, b], as F.conv2d does.")
def _(conv2d):
    X, weight, _ = _conv_inputs(B=1, C_in=1, H=6, W=6, C_out=1, kH=3, kW=3, seed=1)
    weight = torch.arange(9.0).view(1, 1, 3, 3) - 4.0  # asymmetric: flipping changes the result
    _conv_expect(conv2d, X, weight, None, what="conv2d with an asymmetric 3x3 kernel")


@q.case("sums over all input channels", hint="Each output channel sums over ALL input channels "
        "(and the kernel's rows and columns), not just channel 0 and not a mean.")
def _(conv2d):
    X, weight, _ = _conv_inputs(B=1, C_in=3, H=5, W=5, C_out=1, kH=3, kW=3, seed=2)
    _conv_expect(conv2d, X, weight, None, what="conv2d(X (1,3,5,5), weight (1,3,3,3))")


@q.case("batch and several output channels", hint="Output shape (B, C_out, H_out, W_out): one map per "
        "kernel (weight[o]) for every example in the batch.")
def _(conv2d):
    X, weight, _ = _conv_inputs(B=3, C_in=2, H=6, W=6, C_out=4, kH=3, kW=3, seed=3)
    _conv_expect(conv2d, X, weight, None, what="conv2d(X (3,2,6,6), weight (4,2,3,3))")


@q.case("adds the bias of each output channel", hint="Add bias[o] to every position of output channel o "
        "(bias has shape (C_out,): reshape it to (1, C_out, 1, 1)).")
def _(conv2d):
    X, weight, bias = _conv_inputs(B=2, C_in=2, H=5, W=5, C_out=3, kH=3, kW=3, seed=4)
    _conv_expect(conv2d, X, weight, bias, what="conv2d(X, weight, bias)")


@q.case("non-square input and kernel", hint="Height goes with kH and dimension 2, width with kW and "
        "dimension 3: do not swap them.")
def _(conv2d):
    X, weight, bias = _conv_inputs(B=2, C_in=2, H=7, W=5, C_out=3, kH=3, kW=2, seed=5)
    _conv_expect(conv2d, X, weight, bias, what="conv2d(X (2,2,7,5), weight (3,2,3,2))")


@q.case("zero padding on every side", hint="padding=p adds p rows of zeros at the top AND bottom and p "
        "columns at the left AND right (F.pad(X, (p, p, p, p))) before sliding.")
def _(conv2d):
    X, weight, bias = _conv_inputs(B=2, C_in=2, H=5, W=6, C_out=3, kH=3, kW=3, seed=6)
    _conv_expect(conv2d, X, weight, bias, padding=1, what="conv2d(X (2,2,5,6), weight (3,2,3,3), padding=1)")


@q.case("stride skips positions", hint="With stride s the window moves s pixels at a time: output "
        "position i reads rows i*s ... i*s + kH - 1; the output size is (H + 2p - kH) // s + 1.")
def _(conv2d):
    X, weight, bias = _conv_inputs(B=2, C_in=2, H=9, W=8, C_out=3, kH=3, kW=3, seed=7)
    _conv_expect(conv2d, X, weight, bias, stride=2, what="conv2d(X (2,2,9,8), weight (3,2,3,3), stride=2)")
    _conv_expect(conv2d, X, weight, bias, stride=2, padding=1,
                 what="conv2d(X (2,2,9,8), weight (3,2,3,3), stride=2, padding=1)")


# =========================================================================== 03.maxpool_forward
q = question("03.maxpool_forward", "Max pooling from scratch", answers=["maxpool2d"])


def _pool_expect(maxpool2d, X, kernel_size, stride=None, what=None):
    args = (X, kernel_size) if stride is None else (X, kernel_size, stride)
    got = call(maxpool2d, *args)
    expected = F.max_pool2d(X, kernel_size, stride)
    expect_close(got, expected, rtol=0, atol=0, what=what or "maxpool2d(...)")


@q.case("2x2 windows of a 4x4 image", hint="Take the maximum of each non-overlapping 2x2 window.")
def _(maxpool2d):
    X = torch.arange(16.0).view(1, 1, 4, 4).flip(-1)
    _pool_expect(maxpool2d, X, 2, 2, what="maxpool2d(X (1,1,4,4), 2, 2)")


@q.case("stride defaults to the kernel size", hint="When stride is None use stride = kernel_size, as "
        "F.max_pool2d does; a default stride of 1 gives overlapping windows.")
def _(maxpool2d):
    X = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    _pool_expect(maxpool2d, X, 2, what="maxpool2d(X (2,3,6,6), 2)")


@q.case("works on negative values", hint="Start the running maximum at -infinity (or take the max of "
        "the window), not at 0: all-negative windows have a negative maximum.")
def _(maxpool2d):
    X = -torch.rand(1, 2, 4, 4, generator=torch.Generator().manual_seed(2)) - 0.5
    _pool_expect(maxpool2d, X, 2, 2, what="maxpool2d(X < 0, 2, 2)")


@q.case("pools each channel separately", hint="Pool over height and width only; keep the batch and "
        "channel dimensions (do not take the max across channels).")
def _(maxpool2d):
    X = torch.randn(3, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    X[:, 0] += 10  # channel 0 dominates: a max across channels would copy it everywhere
    _pool_expect(maxpool2d, X, 2, 2, what="maxpool2d(X (3,4,4,4), 2, 2)")


@q.case("odd sizes are floored", hint="A window that would hang over the edge is dropped: 5x5 pooled "
        "by 2 is 2x2 (floor((5 - 2) / 2) + 1), with no padding.")
def _(maxpool2d):
    X = torch.randn(2, 2, 5, 7, generator=torch.Generator().manual_seed(4))
    _pool_expect(maxpool2d, X, 2, 2, what="maxpool2d(X (2,2,5,7), 2, 2)")


@q.case("overlapping windows (kernel 3, stride 2)", hint="Window i starts at row i * stride and spans "
        "kernel_size rows; with kernel 3 and stride 2 neighbouring windows share a row.")
def _(maxpool2d):
    X = torch.randn(2, 3, 9, 8, generator=torch.Generator().manual_seed(5))
    _pool_expect(maxpool2d, X, 3, 2, what="maxpool2d(X (2,3,9,8), 3, 2)")


# =========================================================================== 03.build_model
q = question("03.build_model", "A CNN built to a spec", answers=["build_model"])

BUILD_MODEL_LAYERS = ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                      "Flatten", "Dropout", "Linear"]


def reference_build_model(num_classes: int = 10) -> nn.Module:
    """The spec of ``03.build_model``: two conv blocks (16 and 32 channels), dropout 0.25, a linear layer."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 14, 14)
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, num_classes),                           # (B, 10)
    )


def _built(build_model, **kw):
    torch.manual_seed(0)
    model = call(build_model, **kw)
    if not isinstance(model, nn.Module):
        raise CheckFailure(f"build_model() should return a torch.nn.Module, but it returned a "
                           f"{type(model).__name__}: {model!r:.80}")
    return model


@q.case("returns an nn.Module", hint="Return the model (e.g. an nn.Sequential), do not just create it.")
def _(build_model):
    _built(build_model)


@q.case("the layers, in order", hint="Conv -> BatchNorm -> ReLU -> MaxPool twice, then Flatten, Dropout, "
        "Linear; no softmax at the end (CrossEntropyLoss takes logits).")
def _(build_model):
    expect_layers(_built(build_model), BUILD_MODEL_LAYERS, what="build_model()")


@q.case("output shape (B, 10) for (B, 1, 28, 28)", hint="Two 2x2 poolings take 28x28 to 7x7, so the "
        "Linear layer takes 32 * 7 * 7 = 1568 features.")
def _(build_model):
    model = _built(build_model).eval()
    with torch.no_grad():
        out = model(torch.randn(5, 1, 28, 28))
    expect_shape(out, (5, 10), what="build_model()(X (5,1,28,28))")


@q.case("the convolutions have no bias", hint="A conv bias right before BatchNorm is cancelled by the "
        "mean subtraction: use nn.Conv2d(..., bias=False) as the spec says.")
def _(build_model):
    convs = [m for m in _built(build_model).modules() if isinstance(m, nn.Conv2d)]
    with_bias = [i for i, m in enumerate(convs) if m.bias is not None]
    if with_bias:
        raise CheckFailure(f"conv layer(s) {with_bias} have a bias; the spec says bias=False.")


@q.case("kernel size 3 with padding 1 ('same')", hint="Each conv is 3x3 with padding=1, so it keeps the "
        "image size; only the poolings halve it.")
def _(build_model):
    convs = [m for m in _built(build_model).modules() if isinstance(m, nn.Conv2d)]
    got = [(m.in_channels, m.out_channels, m.kernel_size, m.padding, m.stride) for m in convs]
    expected = [(1, 16, (3, 3), (1, 1), (1, 1)), (16, 32, (3, 3), (1, 1), (1, 1))]
    expect_equal(got, expected, what="the convs' (in, out, kernel_size, padding, stride)")


@q.case("dropout probability 0.25", hint="nn.Dropout(0.25): p is the probability of DROPPING a unit.")
def _(build_model):
    drops = [m.p for m in _built(build_model).modules() if isinstance(m, nn.Dropout)]
    expect_equal(drops, [0.25], what="the dropout probabilities")


@q.case("parameter count 20,538", hint="Conv 1*16*9 + conv 16*32*9 (no bias) + BatchNorm 2*(16+32) + "
        "Linear 1568*10 + 10 = 20,538.")
def _(build_model):
    expect_parameter_count(_built(build_model), 20_538, what="build_model()")


@q.case("num_classes sets the output size", hint="Use the num_classes argument for the last layer's "
        "out_features instead of a hard-coded 10.")
def _(build_model):
    model = _built(build_model, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 28, 28))
    expect_shape(out, (2, 7), what="build_model(num_classes=7)(X (2,1,28,28))")


# =========================================================================== 03.train_step
q = question("03.train_step", "One training step", answers=["train_step"])


def _step_setup(seed=0, dropout=False):
    """A tiny seeded CNN with BatchNorm (and dropout), a batch, a loss and an SGD optimizer."""
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(4 * 4 * 4, 3))
    model = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    return model, X, y, nn.CrossEntropyLoss()


def _reference_step(model, X, y, loss_fn, optimizer):
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
            raise CheckFailure("loss.backward() was called twice on the same graph (PyTorch frees the graph "
                               "after the first backward).") from None
        raise


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@q.case("returns the loss as a Python float", hint="Return loss.item(): a float, not the tensor (a tensor "
        "keeps the whole graph alive in a training loop).")
def _(train_step):
    model, X, y, loss_fn = _step_setup()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    got = _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if not isinstance(got, float):
        raise CheckFailure(f"train_step returned a {type(got).__name__}: {got!r:.80}; expected a float (loss.item()).")


@q.case("returns the batch loss from before the update", hint="Return the loss of this step's own forward "
        "pass, computed before optimizer.step(); do not evaluate the model again after the update.")
def _(train_step):
    model, X, y, loss_fn = _step_setup()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with torch.no_grad():
        expected = loss_fn(copy.deepcopy(model).train()(X), y).item()  # training-mode forward, before any update
    got = _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()  # a tensor already fails the case above; compare its value here
    expect_close(got, expected, rtol=1e-5, atol=1e-6, what="the returned loss")


@q.case("updates the parameters (optimizer.step)", hint="Call optimizer.step() after loss.backward(), and "
        "optimizer.zero_grad() BEFORE backward, not between backward and step.")
def _(train_step):
    model, X, y, loss_fn = _step_setup()
    before = _params(model).clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if torch.equal(before, _params(model)):
        raise CheckFailure("after train_step the parameters are unchanged.")


@q.case("the update is one SGD step", hint="One step is zero_grad, forward, loss, ONE loss.backward(), "
        "optimizer.step(); calling backward twice (retain_graph=True) doubles the gradient.")
def _(train_step):
    model, X, y, loss_fn = _step_setup(seed=2)
    ref = copy.deepcopy(model)
    _reference_step(ref, X, y, loss_fn, torch.optim.SGD(ref.parameters(), lr=0.1))
    _learner_step(train_step, model, X, y, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1))
    expect_close(_params(model), _params(ref), rtol=1e-4, atol=1e-6, what="the parameters after one step")


@q.case("old gradients are cleared (zero_grad)", hint="Call optimizer.zero_grad() before loss.backward(): "
        "PyTorch ADDS new gradients to .grad, so old ones leak into this step.")
def _(train_step):
    model, X, y, loss_fn = _step_setup(seed=3)
    for p in model.parameters():  # gradients left over from an earlier batch
        p.grad = torch.full_like(p, 0.5)
    ref = copy.deepcopy(model)
    _reference_step(ref, X, y, loss_fn, torch.optim.SGD(ref.parameters(), lr=0.1))
    _learner_step(train_step, model, X, y, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1))
    expect_close(_params(model), _params(ref), rtol=1e-4, atol=1e-6,
                 what="the parameters after one step that started with stale gradients")


@q.case("puts the model in training mode", hint="Call model.train() first: a model left in eval mode "
        "(after evaluation) uses BatchNorm's running statistics and switches dropout off.")
def _(train_step):
    model, X, y, loss_fn = _step_setup(seed=4, dropout=True)
    model.eval()  # as after an evaluation pass
    _learner_step(train_step, model, X, y, loss_fn, torch.optim.SGD(model.parameters(), lr=0.1))
    if not model.training:
        raise CheckFailure("after train_step the model is still in eval mode (model.training is False).")
    bn = model[1]
    if torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)):
        raise CheckFailure("BatchNorm's running mean did not move: the forward pass ran in eval mode.")


@q.case("the loss goes down over 20 steps", hint="Subtract the gradient (optimizer.step() does), zero "
        "the gradients each step, and compute the loss on the model's output for X.")
def _(train_step):
    model, X, y, loss_fn = _step_setup(seed=5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = [_learner_step(train_step, model, X, y, loss_fn, optimizer) for _ in range(20)]
    first, last = (float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for v in (losses[0], losses[-1]))
    if not (math.isfinite(last) and last < 0.8 * first):
        raise CheckFailure(f"over 20 steps on one batch the loss went from {first:.4g} to {last:.4g}; "
                           "it should fall well below its start.")


# =========================================================================== 03.fix_flatten
q = question("03.fix_flatten", "Find and fix a flatten-size bug", answers=["FixedNet"])


def reference_fixed_net(in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> nn.Module:
    """The fixed network of ``03.fix_flatten``: the given features, a Linear sized from the image size."""
    features = nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )
    size = image_size // 2 // 2
    return nn.Sequential(features, nn.Flatten(), nn.Linear(32 * size * size, num_classes))


def _fixed(FixedNet, in_channels, image_size, num_classes=10):
    torch.manual_seed(0)
    model = call(FixedNet, in_channels=in_channels, num_classes=num_classes, image_size=image_size)
    if not isinstance(model, nn.Module):
        raise CheckFailure(f"FixedNet(...) should create a torch.nn.Module, got a {type(model).__name__}.")
    return model


def _forward(model, X, what):
    model.eval()
    try:
        with torch.no_grad():
            return model(X)
    except RuntimeError as exc:
        if "shapes cannot be multiplied" in str(exc) or "size mismatch" in str(exc):
            raise CheckFailure(f"{what} raised RuntimeError: {exc}\nThe first Linear layer's in_features does not "
                               "match the number of features after Flatten.") from None
        raise


@q.case("works on (B, 3, 32, 32)", hint="Two 2x2 poolings take 32x32 to 8x8 (not 6x6): the Linear layer "
        "needs 32 * 8 * 8 = 2048 inputs. Compute it (conv_output_size, a dummy forward) or use nn.LazyLinear.")
def _(FixedNet):
    model = _fixed(FixedNet, 3, 32)
    out = _forward(model, torch.randn(4, 3, 32, 32), "FixedNet(in_channels=3, image_size=32)(X (4,3,32,32))")
    expect_shape(out, (4, 10), what="FixedNet(in_channels=3, image_size=32)(X (4,3,32,32))")


@q.case("works on (B, 1, 28, 28)", hint="Do not hard-code the fix for 32x32 either: 28x28 pools to 7x7. "
        "Size the Linear layer from image_size, or use nn.LazyLinear.")
def _(FixedNet):
    model = _fixed(FixedNet, 1, 28)
    out = _forward(model, torch.randn(4, 1, 28, 28), "FixedNet(in_channels=1, image_size=28)(X (4,1,28,28))")
    expect_shape(out, (4, 10), what="FixedNet(in_channels=1, image_size=28)(X (4,1,28,28))")


@q.case("keeps the batch dimension", hint="Flatten with x.flatten(1) or nn.Flatten(), never "
        "x.view(-1, N): with the wrong N, view silently changes the batch size.")
def _(FixedNet):
    # 9 images of 32 * 8 * 8 = 2048 features are 18,432 numbers: view(-1, 1152) would make 16 "images".
    model = _fixed(FixedNet, 3, 32)
    out = _forward(model, torch.randn(9, 3, 32, 32), "FixedNet(in_channels=3, image_size=32)(X (9,3,32,32))")
    expect_shape(out, (9, 10), what="FixedNet(in_channels=3, image_size=32)(X (9,3,32,32))")


@q.case("the given layers are kept", hint="Fix the classifier only: keep the two conv blocks as given "
        "(no extra pooling, no resizing of the input).")
def _(FixedNet):
    model = _fixed(FixedNet, 3, 32)
    _forward(model, torch.zeros(1, 3, 32, 32), "FixedNet(...)(X (1,3,32,32))")  # materializes LazyLinear
    convs = [(m.in_channels, m.out_channels, m.kernel_size, m.padding) for m in model.modules()
             if isinstance(m, nn.Conv2d)]
    expect_equal(convs, [(3, 16, (3, 3), (1, 1)), (16, 32, (3, 3), (1, 1))], what="the conv layers")
    kinds = [k for k in layer_types(model) if k in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
                                                    "AdaptiveMaxPool2d")]
    expect_equal(kinds, ["MaxPool2d", "MaxPool2d"], what="the pooling layers")


@q.case("the right parameter count", hint="The only Linear layer maps 32 * 8 * 8 = 2048 features (for "
        "32x32 inputs) to num_classes: 2048 * 10 + 10 parameters.")
def _(FixedNet):
    for c, s in ((3, 32), (1, 28)):
        model = _fixed(FixedNet, c, s)
        _forward(model, torch.zeros(1, c, s, s), f"FixedNet(in_channels={c}, image_size={s})(...)")
        expected = sum(p.numel() for p in reference_fixed_net(c, 10, s).parameters())
        expect_parameter_count(model, expected, what=f"FixedNet(in_channels={c}, image_size={s})")


# =========================================================================== 03.keras_model
q = question("03.keras_model", "The same model in Keras", answers=["build_keras_model"], timeout=40)

KERAS_LAYERS = ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Conv2D", "BatchNormalization", "ReLU",
                "MaxPooling2D", "Flatten", "Dropout", "Dense"]


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def _keras_built(build_keras_model, **kw):
    keras = _keras()
    keras.utils.set_random_seed(0)
    model = call(build_keras_model, **kw)
    if not isinstance(model, keras.Model):
        raise CheckFailure(f"build_keras_model() should return a keras.Model (Sequential or functional), "
                           f"got a {type(model).__name__}.")
    return model


def _keras_layer_types(model):
    return [type(layer).__name__ for layer in model.layers if type(layer).__name__ != "InputLayer"]


@q.case("returns a keras.Model", hint="Return a keras.Sequential([...]) or keras.Model(inputs, outputs).")
def _(build_keras_model):
    _keras_built(build_keras_model)


@q.case("the layers, in order", hint="Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D twice, then "
        "Flatten, Dropout, Dense (no activation: logits).")
def _(build_keras_model):
    got = _keras_layer_types(_keras_built(build_keras_model))
    if got != KERAS_LAYERS:
        raise CheckFailure(f"build_keras_model() has layers {got},\nexpected {KERAS_LAYERS}.")


@q.case("channels-last input (28, 28, 1)", hint="Keras images are NHWC: keras.Input(shape=(28, 28, 1)), "
        "not PyTorch's (1, 28, 28).")
def _(build_keras_model):
    model = _keras_built(build_keras_model)
    expect_equal(tuple(model.input_shape), (None, 28, 28, 1), what="model.input_shape")


@q.case("padding 'same' and no conv bias", hint="Conv2D(filters, 3, padding=\"same\", use_bias=False), "
        "as in the PyTorch spec (padding=1, bias=False).")
def _(build_keras_model):
    convs = [layer for layer in _keras_built(build_keras_model).layers if type(layer).__name__ == "Conv2D"]
    got = [(layer.filters, tuple(layer.kernel_size), layer.padding, layer.use_bias) for layer in convs]
    expect_equal(got, [(16, (3, 3), "same", False), (32, (3, 3), "same", False)],
                 what="the Conv2D (filters, kernel_size, padding, use_bias)")


@q.case("output shape (B, 10), logits", hint="The last Dense layer has num_classes units and no "
        "activation: return logits and train with from_logits=True.")
def _(build_keras_model):
    model = _keras_built(build_keras_model)
    X = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    out = np.asarray(model(X, training=False))
    expect_shape(out, (3, 10), what="model(X (3,28,28,1))")
    if np.allclose(out.sum(axis=1), 1.0, atol=1e-4) and (out >= 0).all():
        raise CheckFailure("the outputs are probabilities (they sum to 1): remove the softmax activation.")


@q.case("trainable parameter count 20,538", hint="Same as the PyTorch spec: 144 + 4,608 + 2*(16+32) + "
        "15,690 trainable (BatchNorm's moving mean/variance are not trainable).")
def _(build_keras_model):
    expect_parameter_count(_keras_built(build_keras_model), 20_538, what="build_keras_model()")


@q.case("computes what the PyTorch spec computes", hint="Same order as the PyTorch model; dropout 0.25; "
        "BatchNormalization(momentum=0.9, epsilon=1e-5) to match PyTorch's defaults.")
def _(build_keras_model):
    from ...cnn import copy_torch_weights_to_keras, nchw_to_nhwc

    model = _keras_built(build_keras_model)
    torch.manual_seed(0)
    ref = reference_build_model().eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    try:
        copy_torch_weights_to_keras(ref, model, (1, 28, 28))
    except ValueError as exc:
        raise CheckFailure(f"the weights of the PyTorch spec do not fit your model: {exc}") from None
    X = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    got = np.asarray(model(nchw_to_nhwc(X), training=False))
    with torch.no_grad():
        expected = ref(X).numpy()
    expect_close(got, expected, rtol=1e-3, atol=1e-3, what="your model's logits (same weights as the spec)")
    drops = [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"]
    expect_equal(drops, [0.25], what="the dropout rates")
    eps = [layer.epsilon for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    mom = [layer.momentum for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    if any(abs(e - 1e-5) > 1e-9 for e in eps) or any(abs(m - 0.9) > 1e-9 for m in mom):
        raise CheckFailure(f"BatchNormalization has epsilon {eps} and momentum {mom}; the spec uses PyTorch's "
                           "defaults: epsilon=1e-5, momentum=0.9 (Keras' momentum is 1 - PyTorch's).")


__all__ = ["BUILD_MODEL_LAYERS", "KERAS_LAYERS", "reference_build_model", "reference_fixed_net"]
