"""Tests of lesson 03's checks: the reference passes every case, each typical mistake
fails its own case (and only the diagnosis that applies is shown), answers in other
styles pass, and answers that compute nothing score 0 (that no hint prints a solution
line is tested for every lesson in test_course_consistency.py)."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.lessons.cnn import conv2d_unfold, conv_output_size, maxpool2d
from course_utils.grading.checks.lesson03 import (NOT_JUDGED, reference_build_model,
                                                  reference_fixed_net)
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import FORBIDDEN, NOT_IMPLEMENTED
from course_utils.grading.trivial import trivial_variants

from check_support import case_of, run, stub

def _said(case) -> str:
    return (case.hint + " " + case.message).lower()


def assert_fails(result, case_name, hint_word):
    """The case meant for the mistake fails; its hint or message names the mistake."""
    case = case_of(result, case_name)
    assert not case.passed, f"{case_name!r} passed a wrong answer"
    assert hint_word.lower() in _said(case), (case.hint, case.message)


def assert_shows(result, case_name, word):
    """The case fails with its own diagnosis: its hint is shown, naming the mistake."""
    case = case_of(result, case_name)
    assert not case.passed and case.shows_hint, (case.name, case.message)
    assert word.lower() in _said(case), (case.hint, case.message)


def assert_not_blamed(result, case_name):
    """The case does not blame its mistake: it passes, or says that it cannot judge yet
    (and shows no hint)."""
    case = case_of(result, case_name)
    not_judged = case.message.endswith(NOT_JUDGED) and not case.shows_hint
    assert case.passed or not_judged, (case.name, case.message)


def assert_all_pass(result):
    failing = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failing, failing


def assert_trivial_scores_zero(qid, real):
    """Every trivial stand-in for ``real`` (None, pass, raise, the input, zeros...)
    earns nothing."""
    variants = trivial_variants(real)
    earned = {name: run(qid, variant).score for name, variant in variants.items()}
    assert earned and all(score == 0 for score in earned.values()), earned


def test_every_question_has_three_core_cases_and_kinds():
    """Does every question of lesson 03 have 3 core cases and a kind on every case?"""
    questions = questions_for_lesson("03")
    assert [q.qid for q in questions] == [
        "03.conv_output_size", "03.conv2d_forward", "03.maxpool_forward",
        "03.build_model", "03.train_step", "03.fix_flatten", "03.keras_model"]
    for q in questions:
        assert len(q.core_cases) >= 3, q.qid
        assert all(c.kind in ("core", "mistake", "property") for c in q.cases)


@pytest.mark.parametrize("qid", ["03.conv_output_size", "03.conv2d_forward",
                                 "03.maxpool_forward", "03.build_model",
                                 "03.train_step", "03.fix_flatten"])
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError say "not implemented yet" and
    score 0?"""
    result = run(qid, stub)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


# ------------------------------------------------------------------ 03.conv_output_size
def with_floor(n, k, padding=0, stride=1, dilation=1):
    return math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1


def test_conv_output_size_reference_passes():
    """Do the library's conv_output_size and a math.floor version pass every case?"""
    assert_all_pass(run("03.conv_output_size", conv_output_size))
    assert_all_pass(run("03.conv_output_size", with_floor))


def size_formula(steps, both_sides=2, span=lambda k, d: d * (k - 1) + 1, plus=1):
    """A wrong output-size formula: ``steps(numerator, stride)`` and the other parts."""
    def conv_output_size(n, k, padding=0, stride=1, dilation=1):
        return steps(n + both_sides * padding - span(k, dilation), stride) + plus

    return conv_output_size


@pytest.mark.parametrize("wrong, case, word", [
    (size_formula(lambda a, s: a / s), "returns an int", "//"),
    (size_formula(lambda a, s: a // s, both_sides=1),
     "padding is added on both sides (2p)", "each side"),
    (size_formula(lambda a, s: (a + 1) // s, plus=0),
     "stride divides the steps, then +1", "then add 1"),
    (size_formula(lambda a, s: -(-a // s)), "sizes are floored, not rounded up",
     "ceil"),
    (size_formula(lambda a, s: round(a / s)), "sizes are floored, not rounded up",
     "round"),
    (size_formula(lambda a, s: a // s, span=lambda k, d: d * k),
     "dilation spreads the kernel to d(k-1)+1", "d*(k-1) + 1"),
    (size_formula(lambda a, s: a // s, span=lambda k, d: k),
     "dilation spreads the kernel to d(k-1)+1", "dilation is ignored"),
    (size_formula(lambda a, s: (a + 1) // s),
     "counts the first position (no off-by-one)", "off by one"),
])
def test_conv_output_size_mistakes(wrong, case, word):
    """Does each wrong output-size formula fail the case that names its mistake, with
    its hint shown?"""
    assert_shows(run("03.conv_output_size", wrong), case, word)


def test_conv_output_size_returning_n_scores_zero():
    """Does `return n` (right on the padding-1 settings by luck) earn nothing?"""
    result = run("03.conv_output_size", lambda n, k, padding=0, stride=1, dilation=1: n)
    assert result.score == 0
    assert_not_blamed(result, "padding is added on both sides (2p)")


def test_conv_output_size_off_by_one_is_not_called_a_missing_floor():
    """Is an off-by-one formula reported as off by one, and not blamed on the floor, the
    stride, the padding or the dilation?"""
    result = run("03.conv_output_size", size_formula(lambda a, s: (a + 1) // s))
    assert "off by one too many" in case_of(result, "counts the first position").message
    for innocent in ("sizes are floored, not rounded up",
                     "stride divides the steps, then +1",
                     "padding is added on both sides (2p)",
                     "dilation spreads the kernel to d(k-1)+1"):
        assert_not_blamed(result, innocent)


def test_conv_output_size_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("03.conv_output_size", conv_output_size)


# -------------------------------------------------------------------- 03.conv2d_forward
def conv_loops(X, weight, bias=None, stride=1, padding=0, flip=False, use_bias=True,
               pad_one_side=False, first_channel_only=False, ignore_stride=False):
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


def conv_tensor_unfold(X, weight, bias=None, stride=1, padding=0):
    """Windows as a view (Tensor.unfold), then one einsum: an honest answer, no loop."""
    kH, kW = weight.shape[2:]
    windows = F.pad(X, (padding,) * 4).unfold(2, kH, stride).unfold(3, kW, stride)
    out = torch.einsum("bchwkl,ockl->bohw", windows, weight)  # (B, C_out, H_out, W_out)
    return out if bias is None else out + bias[None, :, None, None]


def conv_float64(X, weight, bias=None, stride=1, padding=0):
    """The loop in NumPy float64: the right values, but float64 for float32 inputs."""
    p = padding
    Xp = np.pad(X.numpy().astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    w = weight.numpy().astype(np.float64)
    B, _, H, W = Xp.shape
    O, _, kH, kW = w.shape
    out = np.zeros((B, O, (H - kH) // stride + 1, (W - kW) // stride + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = Xp[:, :, i * stride: i * stride + kH, j * stride: j * stride + kW]
            out[:, :, i, j] = np.einsum("bckl,ockl->bo", patch, w)
    if bias is not None:
        out += bias.numpy()[None, :, None, None]
    return torch.from_numpy(out)


def test_conv2d_honest_answers_pass():
    """Do loops, F.unfold (im2col) and Tensor.unfold + einsum all pass every case (none
    of them is forbidden)?"""
    for answer in (conv2d_unfold, conv_loops, conv_tensor_unfold):
        assert_all_pass(run("03.conv2d_forward", answer))


def test_conv2d_float64_answer_gets_a_dtype_message_not_a_crash():
    """Does a float64 answer pass the values and fail only the dtype case, with a
    message that names both dtypes?"""
    result = run("03.conv2d_forward", conv_float64)
    failing = [c for c in result.cases if not c.passed]
    assert [c.name for c in failing] == ["keeps the input's dtype (float32)"]
    message = failing[0].message
    assert "torch.float64" in message and "torch.float32" in message
    assert all(c.passed for c in result.cases if c.kind == "core")
    assert result.score == 0.5


def _with_module(X, weight, bias, stride, padding):
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2:], stride=stride,
                     padding=padding, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
        return conv(X)


@pytest.mark.parametrize("library", [
    lambda X, weight, bias=None, stride=1, padding=0:
        F.conv2d(X, weight, bias, stride=stride, padding=padding),
    lambda X, weight, bias=None, stride=1, padding=0:
        torch.conv2d(X, weight, bias, stride, padding),
    lambda X, weight, bias=None, stride=1, padding=0:
        _with_module(X, weight, bias, stride, padding),
], ids=["F.conv2d", "torch.conv2d", "nn.Conv2d"])
def test_conv2d_library_call_counts_as_not_answered(library):
    """Does a library convolution score 0, with a message that says "from scratch"?"""
    result = run("03.conv2d_forward", library)
    assert result.status == FORBIDDEN and result.score == 0
    message = result.cases[0].message
    assert "from scratch" in message and "convolution" in message


@pytest.mark.parametrize("switch, case, word", [
    ("flip", "the kernel is not flipped (cross-correlation)", "flip"),
    ("first_channel_only", "sums over all input channels", "all input channels"),
    ("use_bias", "adds the bias of each output channel", "bias"),
    ("pad_one_side", "zero padding on every side", "bottom"),
    ("ignore_stride", "stride skips positions", "stride"),
])
def test_conv2d_mistakes(switch, case, word):
    """Does each typical convolution mistake fail its own case with its hint shown?"""
    value = False if switch == "use_bias" else True

    def wrong(X, weight, bias=None, stride=1, padding=0):
        return conv_loops(X, weight, bias, stride, padding, **{switch: value})

    assert_shows(run("03.conv2d_forward", wrong), case, word)


def test_conv2d_swapped_kernel_sizes_fail():
    """Does a convolution that reads kH as the width (right for square kernels) fail the
    non-square case, its crash there shown with the case's hint?"""
    def wrong(X, weight, bias=None, stride=1, padding=0):
        kW, kH = weight.shape[2:]  # swapped
        Xp = F.pad(X, (padding,) * 4)
        Ho = (Xp.shape[2] - kH) // stride + 1
        Wo = (Xp.shape[3] - kW) // stride + 1
        out = torch.zeros(X.shape[0], weight.shape[0], Ho, Wo)
        for i in range(Ho):
            for j in range(Wo):
                top, left = i * stride, j * stride
                patch = Xp[:, :, top: top + kH, left: left + kW]
                out[:, :, i, j] = torch.einsum("bckl,ockl->bo", patch, weight)
        return out if bias is None else out + bias.view(1, -1, 1, 1)

    result = run("03.conv2d_forward", wrong)
    assert_shows(result, "non-square input and kernel", "swap")
    assert "It raised RuntimeError" in case_of(result, "non-square input").message


def test_conv2d_a_wrong_sum_is_not_blamed_on_the_flip_or_the_bias():
    """Is an answer that is wrong everywhere (a mean, not a sum) not told that it flips
    the kernel, forgets the bias, the padding or the stride?"""
    def mean_not_sum(X, weight, bias=None, stride=1, padding=0):
        return conv_loops(X, weight, bias, stride, padding) / weight[0].numel()

    result = run("03.conv2d_forward", mean_not_sum)
    assert result.score == 0
    for innocent in ("the kernel is not flipped (cross-correlation)",
                     "adds the bias of each output channel",
                     "zero padding on every side", "stride skips positions"):
        assert_not_blamed(result, innocent)


def test_conv2d_mutating_input_fails():
    """Does changing the caller's tensor in place fail?"""
    def wrong(X, weight, bias=None, stride=1, padding=0):
        X[0, 0, 0, 0] = 0.0
        return conv_loops(X, weight, bias, stride, padding)

    result = run("03.conv2d_forward", wrong)
    assert any("in place" in c.message for c in result.cases if not c.passed)


def test_conv2d_trivial_answers_score_zero():
    """Do None, pass, raise, the input, zeros, ones and a constant score 0?"""
    assert_trivial_scores_zero("03.conv2d_forward", conv_loops)


# ------------------------------------------------------------------- 03.maxpool_forward
def pool_loops(X, kernel_size=2, stride=None, default_stride=None, start=float("-inf"),
               across_channels=False, ceil=False):
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


def pooling(**mistake):
    """The loop pooling with the given mistake switched on."""
    def maxpool2d(X, kernel_size=2, stride=None):
        return pool_loops(X, kernel_size, stride, **mistake)

    return maxpool2d


def test_maxpool_honest_answers_pass():
    """Do Tensor.unfold + amax and the loop version pass every case?"""
    assert_all_pass(run("03.maxpool_forward", maxpool2d))
    assert_all_pass(run("03.maxpool_forward", pooling()))


@pytest.mark.parametrize("library", [
    lambda X, kernel_size=2, stride=None: F.max_pool2d(X, kernel_size, stride),
    lambda X, kernel_size=2, stride=None: nn.MaxPool2d(kernel_size, stride)(X),
    lambda X, kernel_size=2, stride=None:
        F.max_pool2d(X, kernel_size, stride, return_indices=True)[0],
], ids=["F.max_pool2d", "nn.MaxPool2d", "return_indices"])
def test_maxpool_library_call_counts_as_not_answered(library):
    """Does a library max pooling score 0, with a message that says "from scratch"?"""
    result = run("03.maxpool_forward", library)
    assert result.status == FORBIDDEN and result.score == 0
    message = result.cases[0].message
    assert "from scratch" in message and "max pooling" in message


@pytest.mark.parametrize("kw, case, word", [
    (dict(default_stride=1), "stride defaults to the kernel size",
     "step by the kernel size"),
    (dict(start=0.0), "works on negative values", "-infinity"),
    (dict(across_channels=True), "pools each channel separately", "channel"),
    (dict(ceil=True), "odd sizes are floored", "floor"),
])
def test_maxpool_mistakes(kw, case, word):
    """Does each typical pooling mistake fail its own case, with its hint shown?"""
    assert_shows(run("03.maxpool_forward", pooling(**kw)), case, word)


def test_maxpool_without_overlap_fails():
    """Does a pooling that always steps by the kernel size (ignoring stride) fail the
    overlapping case?"""
    def no_stride(X, kernel_size=2, stride=None):
        return pool_loops(X, kernel_size)

    assert_shows(run("03.maxpool_forward", no_stride), "overlapping windows (kernel 3, "
                 "stride 2)", "stride")


def test_maxpool_trivial_answers_score_zero():
    """Do None, pass, raise, the input, zeros, ones and a constant score 0?"""
    assert_trivial_scores_zero("03.maxpool_forward", maxpool2d)


# ----------------------------------------------------------------------- 03.build_model
def spec(conv_bias=False, flat=32 * 7 * 7, softmax=False, p=0.25, padding=1,
         fixed_classes=False):
    def build_model(num_classes=10):
        n = 10 if fixed_classes else num_classes
        layers = [nn.Conv2d(1, 16, 3, padding=padding, bias=conv_bias),
                  nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(16, 32, 3, padding=padding, bias=conv_bias),
                  nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Dropout(p), nn.Linear(flat, n)]
        if softmax:
            layers.append(nn.Softmax(dim=1))
        return nn.Sequential(*layers)

    return build_model


def blocks_and_lazy(num_classes=10):
    """The spec written as nested blocks, with nn.LazyLinear: the same function."""
    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                             nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))

    head = nn.Sequential(nn.Flatten(), nn.Dropout(0.25))
    return nn.Sequential(block(1, 16), block(16, 32), head, nn.LazyLinear(num_classes))


def test_build_model_reference_and_other_styles_pass():
    """Do the spec and a nested-blocks + LazyLinear version pass every case?"""
    assert_all_pass(run("03.build_model", reference_build_model))
    assert_all_pass(run("03.build_model", blocks_and_lazy))


@pytest.mark.parametrize("kw, case, word", [
    (dict(conv_bias=True), "the convolutions have no bias", "bias=False"),
    (dict(conv_bias=True), "parameter count 20,538", "no bias"),
    (dict(softmax=True), "the layers, in order", "softmax"),
    (dict(flat=32 * 6 * 6), "output shape (B, 10) for (B, 1, 28, 28)", "7x7"),
    (dict(p=0.75), "dropout probability 0.25", "dropping"),
    (dict(padding=0, flat=32 * 5 * 5), "kernel size 3 with padding 1 ('same')",
     "padding=1"),
    (dict(fixed_classes=True), "num_classes sets the output size", "num_classes"),
])
def test_build_model_mistakes(kw, case, word):
    """Does each deviation from the spec fail the case that names it?"""
    assert_fails(run("03.build_model", spec(**kw)), case, word)


def test_build_model_conv_bias_keeps_the_core_credit():
    """Is a conv bias before BatchNorm (redundant: the same function) half credit?"""
    result = run("03.build_model", spec(conv_bias=True))
    assert all(c.passed for c in result.cases if c.kind == "core")
    assert result.score == 0.5


def test_build_model_wrong_in_features_is_named():
    """Is a Linear sized for 6x6 maps reported as the wrong in_features, both numbers
    given?"""
    result = run("03.build_model", spec(flat=32 * 6 * 6))
    message = case_of(result, "output shape (B, 10)").message
    assert "in_features=1,152" in message and "1,568 features" in message


class FlattensTheBatch(nn.Module):
    """The spec's layers, but the forward flattens with x.flatten(): the whole batch
    becomes one vector."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(*list(reference_build_model(num_classes))[:8])
        self.dropout, self.fc = nn.Dropout(0.25), nn.Linear(32 * 7 * 7, num_classes)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x).flatten()))


def test_build_model_flattened_batch_is_reported_as_such():
    """Is x.flatten() (the batch dimension included) reported as flattening the batch,
    not as a wrong in_features?"""
    result = run("03.build_model", FlattensTheBatch)
    message = case_of(result, "output shape (B, 10)").message
    assert "flattened the batch dimension too" in message
    assert "in_features" not in message and result.score == 0


def test_build_model_not_returning_fails():
    """Does a build_model that forgets `return` fail with a clear message?"""
    result = run("03.build_model", lambda num_classes=10: None)
    assert "nn.Module" in case_of(result, "returns an nn.Module").message


def test_build_model_trivial_answers_score_zero():
    """Do None, pass, raise and the first input score 0?"""
    assert_trivial_scores_zero("03.build_model", reference_build_model)


# ------------------------------------------------------------------------ 03.train_step
def good_step(model, X, y, loss_fn, optimizer):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def zero_grad_after_step(model, X, y, loss_fn, optimizer):
    """The other correct order: clear the gradients after the update."""
    model.train()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def own_sgd(model, X, y, loss_fn, optimizer):
    """Ignores the optimizer it is given and makes its own SGD(lr=0.1) (issue 9)."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    opt.step()
    return loss.item()


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


def zero_grad_between(model, X, y, loss_fn, optimizer):
    """zero_grad between backward and step: the gradients are gone at the update."""
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


def test_train_step_both_zero_grad_orders_pass():
    """Do zero_grad before backward and zero_grad after step both pass every case?"""
    assert_all_pass(run("03.train_step", good_step))
    assert_all_pass(run("03.train_step", zero_grad_after_step))


def test_train_step_own_optimizer_fails():
    """Does a step that makes its own SGD(lr=0.1) score 0 and hear that it ignores the
    optimizer it is given?"""
    result = run("03.train_step", own_sgd)
    assert result.score == 0
    assert_shows(result, "uses the optimizer it is given",
                 "does not use the optimizer it is given")


@pytest.mark.parametrize("wrong, case, word", [
    (no_zero_grad, "gradients do not pile up across steps (zero_grad)",
     "earlier steps"),
    (no_train_mode, "puts the model in training mode", "training mode"),
    (backward_twice, "one backward per step", "twice"),
    (zero_grad_between, "updates the parameters (optimizer.step)",
     "never between backward"),
    (returns_tensor, "returns the loss as a Python float", ".item()"),
    (loss_after_update, "returns the batch loss from before the update",
     "AFTER the update"),
    (gradient_ascent, "the loss goes down over 20 steps", "against the gradient"),
])
def test_train_step_mistakes(wrong, case, word):
    """Does each typical training-step mistake fail its own case, hint shown?"""
    assert_shows(run("03.train_step", wrong), case, word)


def test_train_step_backward_twice_without_retain_is_said_once():
    """Is "backward twice on the same graph" one basic problem (no mistake hints), 0?"""
    result = run("03.train_step", backward_twice_no_retain)
    assert result.score == 0
    assert all(c.basic and "twice" in c.message for c in result.cases)
    assert not any(c.shows_hint for c in result.cases if c.kind != "property")


@pytest.mark.parametrize("wrong, innocent", [
    (zero_grad_between, "one backward per step"),
    (gradient_ascent, "one backward per step"),
    (zero_grad_between, "the loss goes down over 20 steps"),
    (no_zero_grad, "uses the optimizer it is given"),
])
def test_train_step_mistakes_are_not_blamed_on_others(wrong, innocent):
    """Does a mistake leave the detectors of other mistakes silent (passed, or not
    judged)?"""
    assert_not_blamed(run("03.train_step", wrong), innocent)


def test_train_step_cores_catch_what_sgd_at_0_1_hides():
    """Do the core cases (other optimizers and rates, several steps) fail a step that
    never zeroes the gradients?"""
    result = run("03.train_step", no_zero_grad)
    assert not case_of(result, "three steps with Adam(lr=0.01)").passed
    assert result.score < 0.5


def test_train_step_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and a constant loss score 0?"""
    assert_trivial_scores_zero("03.train_step", good_step)


# ----------------------------------------------------------------------- 03.fix_flatten
class BuggyNet(nn.Module):
    """The network of the exercise: the Linear is sized for 6x6 maps and the flatten is
    a view(-1, N)."""

    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
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
    """Still flattening with reshape(-1, 32 * 6 * 6): the batch size changes."""

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


class DummyForwardFix(BuggyNet):
    """Sizes the Linear layer by a dummy forward pass and flattens with nn.Flatten()."""

    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__(in_channels, num_classes, image_size)
        with torch.no_grad():
            X = torch.zeros(1, in_channels, image_size, image_size)
            n = self.features(X).numel()
        self.flatten, self.fc = nn.Flatten(), nn.Linear(n, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.features(x)))


class FlattenAll(BuggyNet):
    """Sized right, but x.flatten() also flattens the batch dimension (issue 9)."""

    def __init__(self, in_channels=3, num_classes=10, image_size=32):
        super().__init__(in_channels, num_classes, image_size)
        self.fc = nn.Linear(32 * (image_size // 4) ** 2, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten())


def test_fix_flatten_references_pass():
    """Do the reference fix, the nn.LazyLinear fix and the dummy-forward fix pass every
    case?"""
    for answer in (reference_fixed_net, LazyFix, DummyForwardFix):
        assert_all_pass(run("03.fix_flatten", answer))


@pytest.mark.parametrize("wrong, case, word", [
    (BuggyNet, "works on (B, 3, 32, 32)", "8x8"),
    (HardCoded32, "works on (B, 1, 28, 28)", "7x7"),
    (ViewFix, "keeps the batch dimension", "view(-1, N)"),
    (AdaptiveFix, "the given layers are kept", "given"),
])
def test_fix_flatten_mistakes(wrong, case, word):
    """Does the bug, and each half-fix, fail the case meant for it?"""
    assert_fails(run("03.fix_flatten", wrong), case, word)


def test_fix_flatten_flattened_batch_is_not_called_in_features():
    """Is x.flatten() reported as flattening the batch dimension, as one basic problem,
    and scored 0?"""
    result = run("03.fix_flatten", FlattenAll)
    assert result.score == 0
    failing = [c for c in result.cases if not c.passed]
    assert failing and all(c.basic for c in failing)
    first = failing[0].message
    assert "flattened the batch dimension too" in first and "in_features" not in first


def test_fix_flatten_wrong_sizes_name_both_numbers():
    """Are the buggy view(-1, 1152), and a Linear sized for 32x32 used on 28x28,
    reported with the number they expect and the real number of features per image?"""
    result = run("03.fix_flatten", BuggyNet)
    message = case_of(result, "works on (B, 3, 32, 32)").message
    assert "view(-1, 1,152) expects 1,152 features per image" in message
    assert "each image has 2,048" in message
    result = run("03.fix_flatten", HardCoded32)
    message = case_of(result, "works on (B, 1, 28, 28)").message
    assert "in_features=2,048" in message and "1,568 features" in message


def test_fix_flatten_view_trap_is_real():
    """Does view(-1, 1152) on 9 images of 2048 features silently give 16 rows (the trap
    the case guards)?"""
    assert torch.zeros(9, 32, 8, 8).view(-1, 32 * 6 * 6).shape == (16, 1152)
    assert conv_output_size(conv_output_size(32, 2, stride=2), 2, stride=2) == 8


def test_fix_flatten_trivial_classes_score_zero():
    """Do None, an empty class, a raising __init__ and a forward returning zeros score
    0?"""
    class FixedNet(nn.Module):
        def __init__(self, in_channels=3, num_classes=10, image_size=32):
            super().__init__()
            self.net = reference_fixed_net(in_channels, num_classes, image_size)

        def forward(self, x):
            return self.net(x)

    assert "a module whose forward returns zeros" in trivial_variants(FixedNet)
    assert_trivial_scores_zero("03.fix_flatten", FixedNet)


# ----------------------------------------------------------------------- 03.keras_model
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


def keras_spec(keras, input_shape=(28, 28, 1), use_bias=False, padding="same",
               activation=None, order="bn_relu", momentum=0.9, epsilon=1e-5, rate=0.25,
               relu="layer"):
    """The Keras spec, with switches for the mistakes and for the ways to write ReLU."""
    from keras import layers

    def block(filters):
        conv_act = "relu" if relu == "conv argument" else None
        conv = layers.Conv2D(filters, 3, padding=padding, use_bias=use_bias,
                             activation=conv_act)
        bn = layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
        if relu == "conv argument":
            return [conv, bn]
        act = layers.Activation("relu") if relu == "Activation" else layers.ReLU()
        return [conv, bn, act] if order == "bn_relu" else [conv, act, bn]

    def build_keras_model(num_classes=10):
        stack = block(16) + [layers.MaxPooling2D(2)]
        stack += block(32) + [layers.MaxPooling2D(2)]
        stack += [layers.Flatten(), layers.Dropout(rate),
                  layers.Dense(num_classes, activation=activation)]
        return keras.Sequential([keras.Input(shape=input_shape)] + stack)

    return build_keras_model


def test_keras_reference_passes(keras):
    """Does the Keras spec pass every case: as a Sequential, as a functional model, and
    with Activation("relu")?"""
    assert_all_pass(run("03.keras_model", keras_spec(keras)))
    assert_all_pass(run("03.keras_model", keras_spec(keras, relu="Activation")))

    def functional(num_classes=10):
        seq = keras_spec(keras)(num_classes)
        inputs = keras.Input(shape=(28, 28, 1))
        x = inputs
        for layer in seq.layers:
            x = layer(x)
        return keras.Model(inputs, x)

    assert_all_pass(run("03.keras_model", functional))


def test_keras_relu_as_conv_argument_is_read_as_relu_before_batchnorm(keras):
    """Is Conv2D(activation="relu") read as a ReLU step (before BatchNorm, so not the
    spec), rather than as a missing ReLU?"""
    result = run("03.keras_model", keras_spec(keras, relu="conv argument"))
    message = case_of(result, "the layers, in order").message
    assert "'Conv2D', 'ReLU', 'BatchNormalization'" in message
    assert not case_of(result, "computes what the PyTorch spec computes").passed


def test_keras_stub_is_not_implemented(keras):
    """Does a Keras stub report "not implemented yet"?"""
    assert run("03.keras_model", stub).status == NOT_IMPLEMENTED


@pytest.mark.parametrize("kw, case, word", [
    (dict(input_shape=(1, 28, 28), padding="same"), "channels-last input (28, 28, 1)",
     "NHWC"),
    (dict(use_bias=True), "padding 'same' and no conv bias", "use_bias=False"),
    (dict(activation="softmax"), "output shape (B, 10), logits", "softmax"),
    (dict(activation="relu"), "output shape (B, 10), logits", "logits"),
    (dict(use_bias=True), "trainable parameter count 20,538", "trainable"),
    (dict(order="relu_bn"), "the layers, in order", "BatchNormalization -> ReLU"),
    (dict(order="relu_bn"), "computes what the PyTorch spec computes", "same order"),
    (dict(momentum=0.99, epsilon=1e-3), "BatchNormalization with PyTorch's settings",
     "epsilon=1e-5"),
    (dict(rate=0.5), "dropout rate 0.25", "dropped"),
])
def test_keras_mistakes(keras, kw, case, word):
    """Does each typical Keras mistake fail the case meant for it?"""
    assert_fails(run("03.keras_model", keras_spec(keras, **kw)), case, word)


def test_keras_error_is_shown_once(keras):
    """Is a Keras error (a model built for NCHW input) one basic problem, shown once,
    without ANSI codes or Keras' argument dump?"""
    result = run("03.keras_model", keras_spec(keras, input_shape=(1, 28, 28)))
    assert result.score == 0
    shown = [message for c, message, _ in result._shown() if not c.passed]
    full = [m for m in shown if "raised ValueError" in m]
    assert len(full) == 1, shown
    assert all(m == full[0] or "The same problem as in" in m for m in shown), shown
    text = str(result)
    assert "\x1b[" not in text and "Arguments received by" not in text


def test_keras_trivial_answers_score_zero(keras):
    """Do None, pass, raise and the first input score 0?"""
    assert_trivial_scores_zero("03.keras_model", keras_spec(keras))


def test_reports_are_deterministic():
    """Does the same wrong answer give the same report twice (no addresses, no random
    numbers)?"""
    for qid, wrong in (("03.conv2d_forward", conv_float64),
                       ("03.train_step", no_zero_grad), ("03.fix_flatten", FlattenAll)):
        assert str(run(qid, wrong)) == str(run(qid, wrong))
