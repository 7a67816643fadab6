"""Tests of lesson 03's checks: the reference passes every case, each typical mistake fails its own case."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.cnn import conv2d_unfold, conv_output_size, maxpool2d
from course_utils.grading.checks.lesson03 import reference_build_model, reference_fixed_net
from course_utils.grading.results import NOT_IMPLEMENTED

from check_support import case_of, run, stub


def assert_fails(result, case_name, hint_word):
    """The case meant for the mistake fails, and its hint names the mistake."""
    case = case_of(result, case_name)
    assert not case.passed, f"{case_name!r} passed a wrong answer"
    assert hint_word.lower() in (case.hint + " " + case.message).lower(), (case.hint, case.message)


def assert_all_pass(result):
    failing = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failing, failing


@pytest.mark.parametrize("qid", ["03.conv_output_size", "03.conv2d_forward", "03.maxpool_forward",
                                 "03.build_model", "03.train_step", "03.fix_flatten"])
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError report "not implemented yet" and score 0?"""
    result = run(qid, stub)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


# --------------------------------------------------------------------------- 03.conv_output_size
def test_conv_output_size_reference_passes():
    """Does the library's conv_output_size pass every case?"""
    assert_all_pass(run("03.conv_output_size", conv_output_size))


@pytest.mark.parametrize("wrong, case, word", [
    (lambda n, k, padding=0, stride=1, dilation=1: (n + 2 * padding - dilation * (k - 1) - 1) / stride + 1,
     "returns an int", "//"),
    (lambda n, k, padding=0, stride=1, dilation=1: (n + padding - dilation * (k - 1) - 1) // stride + 1,
     "padding is added on both sides (2p)", "each side"),
    (lambda n, k, padding=0, stride=1, dilation=1: (n + 2 * padding - dilation * (k - 1)) // stride,
     "stride divides the steps, then +1", "then add 1"),
    (lambda n, k, padding=0, stride=1, dilation=1: -(-(n + 2 * padding - dilation * (k - 1) - 1) // stride) + 1,
     "sizes are floored, not rounded up", "ceil"),
    (lambda n, k, padding=0, stride=1, dilation=1: round((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1,
     "sizes are floored, not rounded up", "round"),
    (lambda n, k, padding=0, stride=1, dilation=1: (n + 2 * padding - dilation * k) // stride + 1,
     "dilation spreads the kernel to d(k-1)+1", "d*(k-1) + 1"),
    (lambda n, k, padding=0, stride=1, dilation=1: (n + 2 * padding - k) // stride + 1,
     "dilation spreads the kernel to d(k-1)+1", "dilated"),
])
def test_conv_output_size_mistakes(wrong, case, word):
    """Does each wrong output-size formula fail the case that names its mistake?"""
    assert_fails(run("03.conv_output_size", wrong), case, word)


# --------------------------------------------------------------------------- 03.conv2d_forward
def conv_loops(X, weight, bias=None, stride=1, padding=0, flip=False, use_bias=True, pad_one_side=False,
               first_channel_only=False, ignore_stride=False):
    """A readable loop convolution with switches for the typical mistakes."""
    if pad_one_side:
        X = F.pad(X, (padding, 0, padding, 0))
    else:
        X = F.pad(X, (padding,) * 4)
    if flip:
        weight = weight.flip(-2, -1)
    if first_channel_only:
        X, weight = X[:, :1], weight[:, :1]
    s = 1 if ignore_stride else stride
    B, C, H, W = X.shape
    O, _, kH, kW = weight.shape
    Ho, Wo = (H - kH) // s + 1, (W - kW) // s + 1
    out = torch.zeros(B, O, Ho, Wo)
    for i in range(Ho):
        for j in range(Wo):
            patch = X[:, :, i * s: i * s + kH, j * s: j * s + kW]
            out[:, :, i, j] = torch.einsum("bckl,ockl->bo", patch, weight)
    if bias is not None and use_bias:
        out = out + bias.view(1, -1, 1, 1)
    return out


def test_conv2d_references_pass():
    """Do the library's im2col convolution and the loop version pass every case?"""
    assert_all_pass(run("03.conv2d_forward", conv2d_unfold))
    assert_all_pass(run("03.conv2d_forward", conv_loops))


@pytest.mark.parametrize("switch, case, word", [
    ("flip", "the kernel is not flipped (cross-correlation)", "flip"),
    ("first_channel_only", "sums over all input channels", "all input channels"),
    ("use_bias", "adds the bias of each output channel", "bias"),
    ("pad_one_side", "zero padding on every side", "bottom"),
    ("ignore_stride", "stride skips positions", "stride"),
])
def test_conv2d_mistakes(switch, case, word):
    """Does each typical convolution mistake fail its own case with a hint naming it?"""
    value = False if switch == "use_bias" else True

    def wrong(X, weight, bias=None, stride=1, padding=0):
        return conv_loops(X, weight, bias, stride, padding, **{switch: value})

    assert_fails(run("03.conv2d_forward", wrong), case, word)


def test_conv2d_swapped_axes_fail():
    """Does a convolution that swaps height and width fail the non-square case?"""
    def wrong(X, weight, bias=None, stride=1, padding=0):
        return conv_loops(X.transpose(2, 3), weight.transpose(2, 3), bias, stride, padding)

    assert_fails(run("03.conv2d_forward", wrong), "non-square input and kernel", "swap")


def test_conv2d_mutating_input_fails():
    """Does padding the input in place (modifying the caller's tensor) fail?"""
    def wrong(X, weight, bias=None, stride=1, padding=0):
        X.mul_(1.0).add_(0.0)
        X[0, 0, 0, 0] = 0.0
        return F.conv2d(X, weight, bias, stride=stride, padding=padding)

    result = run("03.conv2d_forward", wrong)
    assert any("in place" in c.message for c in result.cases if not c.passed)


# --------------------------------------------------------------------------- 03.maxpool_forward
def test_maxpool_reference_passes():
    """Does the library's maxpool2d pass every case?"""
    assert_all_pass(run("03.maxpool_forward", maxpool2d))


def pool_loops(X, kernel_size=2, stride=None, default_stride=None, start=float("-inf"), across_channels=False,
               ceil=False):
    s = stride if stride is not None else (default_stride or kernel_size)
    k = kernel_size
    B, C, H, W = X.shape
    if ceil:
        Ho, Wo = -(-(H - k) // s) + 1, -(-(W - k) // s) + 1
    else:
        Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    out = torch.full((B, C, Ho, Wo), start)
    for i in range(Ho):
        for j in range(Wo):
            window = X[:, :, i * s: i * s + k, j * s: j * s + k]
            m = window.amax(dim=(-2, -1))
            if across_channels:
                m = m.amax(dim=1, keepdim=True).expand(B, C)
            out[:, :, i, j] = torch.maximum(out[:, :, i, j], m)
    return out


@pytest.mark.parametrize("kw, case, word", [
    (dict(default_stride=1), "stride defaults to the kernel size", "stride = kernel_size"),
    (dict(start=0.0), "works on negative values", "-infinity"),
    (dict(across_channels=True), "pools each channel separately", "channel"),
    (dict(ceil=True), "odd sizes are floored", "floor"),
])
def test_maxpool_mistakes(kw, case, word):
    """Does each typical pooling mistake fail its own case?"""
    assert_fails(run("03.maxpool_forward", lambda X, kernel_size=2, stride=None: pool_loops(X, kernel_size, stride,
                                                                                            **kw)), case, word)


def test_maxpool_without_overlap_fails():
    """Does a pooling that always steps by the kernel size (ignoring stride) fail the overlapping case?"""
    assert_fails(run("03.maxpool_forward", lambda X, kernel_size=2, stride=None: pool_loops(X, kernel_size)),
                 "overlapping windows (kernel 3, stride 2)", "stride")


# --------------------------------------------------------------------------- 03.build_model
def test_build_model_reference_passes():
    """Does the spec's reference model pass every case?"""
    assert_all_pass(run("03.build_model", reference_build_model))


def spec(conv_bias=False, flat=32 * 7 * 7, softmax=False, p=0.25, padding=1, fixed_classes=False):
    def build_model(num_classes=10):
        n = 10 if fixed_classes else num_classes
        layers = [nn.Conv2d(1, 16, 3, padding=padding, bias=conv_bias), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(16, 32, 3, padding=padding, bias=conv_bias), nn.BatchNorm2d(32), nn.ReLU(),
                  nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(p), nn.Linear(flat, n)]
        if softmax:
            layers.append(nn.Softmax(dim=1))
        return nn.Sequential(*layers)

    return build_model


@pytest.mark.parametrize("kw, case, word", [
    (dict(conv_bias=True), "the convolutions have no bias", "bias=False"),
    (dict(conv_bias=True), "parameter count 20,538", "no bias"),
    (dict(softmax=True), "the layers, in order", "softmax"),
    (dict(flat=32 * 6 * 6), "output shape (B, 10) for (B, 1, 28, 28)", "7x7"),
    (dict(p=0.75), "dropout probability 0.25", "dropping"),
    (dict(padding=0, flat=32 * 5 * 5), "kernel size 3 with padding 1 ('same')", "padding=1"),
    (dict(fixed_classes=True), "num_classes sets the output size", "num_classes"),
])
def test_build_model_mistakes(kw, case, word):
    """Does each deviation from the spec fail the case that names it?"""
    assert_fails(run("03.build_model", spec(**kw)), case, word)


def test_build_model_not_returning_fails():
    """Does a build_model that forgets `return` fail with a clear message?"""
    result = run("03.build_model", lambda num_classes=10: None)
    assert "nn.Module" in case_of(result, "returns an nn.Module").message


# --------------------------------------------------------------------------- 03.train_step
def good_step(model, X, y, loss_fn, optimizer):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_train_step_reference_passes():
    """Does a correct training step pass every case?"""
    assert_all_pass(run("03.train_step", good_step))


def no_zero_grad(model, X, y, loss_fn, optimizer):
    model.train()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def no_train_mode(model, X, y, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def backward_twice(model, X, y, loss_fn, optimizer):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward(retain_graph=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def backward_twice_no_retain(model, X, y, loss_fn, optimizer):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    loss.backward()
    optimizer.step()
    return loss.item()


def zero_grad_after_backward(model, X, y, loss_fn, optimizer):
    model.train()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def returns_tensor(model, X, y, loss_fn, optimizer):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss


def loss_after_update(model, X, y, loss_fn, optimizer):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        return loss_fn(model(X), y).item()  # the loss of the NEXT step


def gradient_ascent(model, X, y, loss_fn, optimizer):
    model.train()
    optimizer.zero_grad()
    loss = -loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return -loss.item()


@pytest.mark.parametrize("wrong, case, word", [
    (no_zero_grad, "old gradients are cleared (zero_grad)", "zero_grad"),
    (no_train_mode, "puts the model in training mode", "model.train()"),
    (backward_twice, "the update is one SGD step", "backward twice"),
    (backward_twice_no_retain, "the update is one SGD step", "backward"),
    (zero_grad_after_backward, "updates the parameters (optimizer.step)", "zero_grad() BEFORE backward"),
    (returns_tensor, "returns the loss as a Python float", "loss.item()"),
    (loss_after_update, "returns the batch loss from before the update", "before optimizer.step()"),
    (gradient_ascent, "the loss goes down over 20 steps", "subtract the gradient"),
])
def test_train_step_mistakes(wrong, case, word):
    """Does each typical training-step mistake fail its own case with a hint naming it?"""
    assert_fails(run("03.train_step", wrong), case, word)


# --------------------------------------------------------------------------- 03.fix_flatten
class BuggyNet(nn.Module):
    """The network of the exercise: the Linear is sized for 6x6 maps and the flatten is a view(-1, N)."""

    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(32 * 6 * 6, num_classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(x.view(-1, 32 * 6 * 6))


class HardCoded32(BuggyNet):
    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__(in_channels, num_classes, image_size)
        self.fc = nn.Linear(32 * 8 * 8, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class ViewFix(BuggyNet):
    """Sized right for one image size but still flattening with view(-1, 32 * 6 * 6) -> wrong batch."""

    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__(in_channels, num_classes, image_size)
        self.fc = nn.Linear(32 * 6 * 6, num_classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(x.reshape(-1, 32 * 6 * 6))


class AdaptiveFix(BuggyNet):
    """Fixes the shapes by pooling to 6x6: works, but changes the given layers."""

    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__(in_channels, num_classes, image_size)
        self.pool = nn.AdaptiveAvgPool2d(6)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


class LazyFix(BuggyNet):
    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__(in_channels, num_classes, image_size)
        self.fc = nn.LazyLinear(num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def test_fix_flatten_references_pass():
    """Do the reference fix and the nn.LazyLinear fix pass every case?"""
    assert_all_pass(run("03.fix_flatten", reference_fixed_net))
    assert_all_pass(run("03.fix_flatten", LazyFix))


@pytest.mark.parametrize("wrong, case, word", [
    (BuggyNet, "works on (B, 3, 32, 32)", "8x8"),
    (HardCoded32, "works on (B, 1, 28, 28)", "7x7"),
    (ViewFix, "keeps the batch dimension", "view(-1, N)"),
    (AdaptiveFix, "the given layers are kept", "given"),
])
def test_fix_flatten_mistakes(wrong, case, word):
    """Does the bug, and each half-fix, fail the case meant for it?"""
    assert_fails(run("03.fix_flatten", wrong), case, word)


def test_fix_flatten_view_trap_is_real():
    """Does view(-1, 1152) on 9 images of 2048 features silently give 16 rows (the trap the case guards)?"""
    assert torch.zeros(9, 32, 8, 8).view(-1, 32 * 6 * 6).shape == (16, 1152)
    assert conv_output_size(conv_output_size(32, 2, stride=2), 2, stride=2) == 8


# --------------------------------------------------------------------------- 03.keras_model
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


def keras_spec(keras, input_shape=(28, 28, 1), use_bias=False, padding="same", activation=None, order="bn_relu",
               momentum=0.9, epsilon=1e-5, rate=0.25):
    from keras import layers

    def block(filters):
        conv = layers.Conv2D(filters, 3, padding=padding, use_bias=use_bias)
        bn = layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
        relu = layers.ReLU()
        return [conv, bn, relu] if order == "bn_relu" else [conv, relu, bn]

    def build_keras_model(num_classes=10):
        stack = block(16) + [layers.MaxPooling2D(2)] + block(32) + [layers.MaxPooling2D(2)]
        stack += [layers.Flatten(), layers.Dropout(rate), layers.Dense(num_classes, activation=activation)]
        return keras.Sequential([keras.Input(shape=input_shape)] + stack)

    return build_keras_model


def test_keras_reference_passes(keras):
    """Does the Keras spec pass every case, as a Sequential and as a functional model?"""
    assert_all_pass(run("03.keras_model", keras_spec(keras)))

    def functional(num_classes=10):
        seq = keras_spec(keras)(num_classes)
        inputs = keras.Input(shape=(28, 28, 1))
        x = inputs
        for layer in seq.layers:
            x = layer(x)
        return keras.Model(inputs, x)

    assert_all_pass(run("03.keras_model", functional))


def test_keras_stub_is_not_implemented(keras):
    """Does a Keras stub report "not implemented yet"?"""
    assert run("03.keras_model", stub).status == NOT_IMPLEMENTED


@pytest.mark.parametrize("kw, case, word", [
    (dict(input_shape=(1, 28, 28), padding="same"), "channels-last input (28, 28, 1)", "NHWC"),
    (dict(use_bias=True), "padding 'same' and no conv bias", "use_bias=False"),
    (dict(activation="softmax"), "output shape (B, 10), logits", "softmax"),
    (dict(use_bias=True), "trainable parameter count 20,538", "trainable"),
    (dict(order="relu_bn"), "the layers, in order", "BatchNormalization -> ReLU"),
    (dict(order="relu_bn"), "computes what the PyTorch spec computes", "same order"),
    (dict(momentum=0.99, epsilon=1e-3), "computes what the PyTorch spec computes", "epsilon=1e-5"),
])
def test_keras_mistakes(keras, kw, case, word):
    """Does each typical Keras mistake fail the case meant for it?"""
    assert_fails(run("03.keras_model", keras_spec(keras, **kw)), case, word)
