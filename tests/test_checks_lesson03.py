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

from course_utils.grading.checks.lesson03 import (NOT_JUDGED, reference_build_model,
                                                  reference_same_padding)
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
        "03.same_padding", "03.receptive_field", "03.build_model",
        "03.train_step", "03.keras_model", "03.build_resnet", "03.conv2d_backward"]
    for q in questions:
        assert len(q.core_cases) >= 3, q.qid
        assert all(c.kind in ("core", "mistake", "property") for c in q.cases)


@pytest.mark.parametrize("qid", ["03.same_padding", "03.receptive_field",
                                 "03.build_model", "03.train_step",
                                 "03.build_resnet", "03.conv2d_backward"])
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError say "not implemented yet" and
    score 0?"""
    result = run(qid, stub)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


# ---------------------------------------------------------------------- 03.same_padding
def same_answer(split="after", stride_aware=True, clip=True, dilation_aware=True):
    """The answer to 03.same_padding, with one typical mistake switched on."""
    def same_padding(n, k, stride=1, dilation=1):
        s = stride if stride_aware else 1
        d = dilation if dilation_aware else 1
        total = (math.ceil(n / s) - 1) * s + d * (k - 1) + 1 - n
        total = max(total, 0) if clip else total
        if split == "after":
            return total // 2, total - total // 2
        if split == "before":
            return total - total // 2, total // 2
        if split == "floor":
            return total // 2, total // 2
        return -(-total // 2), -(-total // 2)  # "ceil"

    return same_padding


def test_same_padding_reference_passes():
    """Do the solution and a NumPy-style version pass every case?"""
    assert_all_pass(run("03.same_padding", reference_same_padding))
    assert_all_pass(run("03.same_padding", same_answer()))

    def with_numpy(n, k, stride=1, dilation=1):
        total = int(np.maximum((np.ceil(n / stride) - 1) * stride + dilation * (k - 1)
                               + 1 - n, 0))
        return total // 2, total - total // 2
    assert_all_pass(run("03.same_padding", with_numpy))


@pytest.mark.parametrize("n, k, s, d", [(28, 3, 2, 1), (7, 3, 2, 1), (224, 7, 2, 1),
                                        (6, 1, 2, 1), (10, 4, 1, 1), (28, 2, 1, 1),
                                        (12, 3, 1, 2), (9, 4, 3, 1)])
def test_same_padding_reference_is_keras(n, k, s, d):
    """Is the checks' rule what Keras' Conv1D(padding="same") computes: the same outputs
    as PyTorch's conv1d on the input padded by (before, after)?"""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    before, after = reference_same_padding(n, k, s, d)
    rng = np.random.default_rng(n + k + s + d)
    x = rng.standard_normal((1, n, 1)).astype("float32")  # Keras: (B, n, C)
    w = rng.standard_normal((k, 1, 1)).astype("float32")  # (k, C_in, C_out)
    layer = keras.layers.Conv1D(1, k, strides=s, dilation_rate=d, padding="same",
                                use_bias=False)
    layer.build((1, n, 1))
    layer.set_weights([w])
    expected = np.asarray(layer(x))[0, :, 0]
    xt = F.pad(torch.from_numpy(x).permute(0, 2, 1), (before, after))  # (1, 1, n + pad)
    wt = torch.from_numpy(w).permute(2, 1, 0)                           # (C_out, C_in, k)
    got = F.conv1d(xt, wt, stride=s, dilation=d)[0, 0].numpy()
    assert got.shape == expected.shape == (math.ceil(n / s),)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("wrong, case, word", [
    (same_answer(split="before"), "the odd zero goes after, as in Keras", "at the start"),
    (same_answer(split="floor"), "the odd zero goes after, as in Keras", "one short"),
    (same_answer(split="ceil"), "the odd zero goes after, as in Keras", "one too long"),
    (same_answer(stride_aware=False), "strides keep ceil(n / s) outputs",
     "stride is ignored"),
    (same_answer(clip=False), "never negative", "clip"),
    (same_answer(dilation_aware=False), "dilation spreads the kernel to d(k-1)+1",
     "dilation is ignored"),
])
def test_same_padding_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, with its hint shown, and
    lose credit?"""
    result = run("03.same_padding", wrong)
    assert_shows(result, case, word)
    assert result.score < result.possible


def test_same_padding_float_division_fails_the_int_case():
    """Does a pair of floats (from `/`) fail the 'two ints' case, naming `//`?"""
    def with_floats(n, k, stride=1, dilation=1):
        total = max((math.ceil(n / stride) - 1) * stride + dilation * (k - 1) + 1 - n, 0)
        return total / 2 - (total % 2) / 2, total / 2 + (total % 2) / 2
    assert_fails(run("03.same_padding", with_floats), "returns two ints", "//")


def test_same_padding_symmetric_answer_is_not_blamed_on_the_stride():
    """Is a floor-split answer told about the split only, not about strides, clipping or
    dilation (its control settings fail, so those cases do not judge)?"""
    result = run("03.same_padding", same_answer(split="floor"))
    for innocent in ("strides keep ceil(n / s) outputs", "never negative",
                     "dilation spreads the kernel to d(k-1)+1"):
        assert_not_blamed(result, innocent)


def test_same_padding_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constant pairs score 0?"""
    assert_trivial_scores_zero("03.same_padding", reference_same_padding)
    for pair in [(0, 0), (1, 1), (0, 1)]:
        assert run("03.same_padding", lambda n, k, stride=1, dilation=1: pair).score == 0


# ------------------------------------------------------------------ 03.receptive_field
def rf_answer(grow_first=False, ignore_stride=False, ignore_dilation=False,
              pad_unscaled=False, pad_sign=1):
    """The answer to 03.receptive_field, with one typical mistake switched on."""
    def receptive_field(layers):
        size, jump, start = 1, 1, 0
        for k, s, p, d in layers:
            if grow_first and not ignore_stride:
                jump *= s
            size += (1 if ignore_dilation else d) * (k - 1) * jump
            start -= pad_sign * p * (1 if pad_unscaled else jump)
            if not grow_first and not ignore_stride:
                jump *= s
        return size, jump, start

    return receptive_field


def rf_by_autograd(layers, n=256):
    """(size, jump, start) of output unit 0 measured with autograd: the input pixels
    with a non-zero gradient for two neighbouring units U, U + 1 in the middle of a 1-D
    stack of positive-weight convolutions (whose fields lie inside the input), taken
    back to unit 0 by the jump."""
    def field(unit):
        x = torch.ones(1, 1, n, dtype=torch.float64, requires_grad=True)
        h = x
        for k, s, p, d in layers:
            h = F.conv1d(h, torch.ones(1, 1, k, dtype=torch.float64), stride=s,
                         padding=p, dilation=d)
        h[0, 0, unit].backward()
        touched = x.grad[0, 0].nonzero().flatten()
        return int(touched.min()), int(touched.max() - touched.min() + 1)

    U = 32
    (first, size), (second, _) = field(U), field(U + 1)
    jump = second - first
    return size, jump, first - U * jump


@pytest.mark.parametrize("layers", [
    [(5, 1, 0, 1), (2, 2, 0, 1), (5, 1, 0, 1), (2, 2, 0, 1)],
    [(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1)],
    [(7, 2, 3, 1), (3, 2, 1, 1), (3, 1, 1, 1)],
    [(3, 1, 1, 1), (3, 1, 2, 2), (3, 1, 4, 4)],
])
def test_receptive_field_oracle_agrees_with_autograd(layers):
    """Is the check's oracle the field autograd finds (size, jump and start)?"""
    from course_utils.grading.checks.lesson03 import reference_receptive_field
    assert reference_receptive_field(layers) == rf_by_autograd(layers)


def test_receptive_field_reference_passes():
    """Does the reference pass every case, also returning a list of floats?"""
    assert_all_pass(run("03.receptive_field", rf_answer()))
    as_list = lambda layers: [float(v) for v in rf_answer()(layers)]  # noqa: E731
    assert_all_pass(run("03.receptive_field", as_list))


@pytest.mark.parametrize("wrong, case, word", [
    (rf_answer(ignore_stride=True), "strides multiply the jump", "product"),
    (rf_answer(grow_first=True), "a layer's stride acts on the layers after it",
     "own stride"),
    (rf_answer(ignore_dilation=True), "dilation spreads the taps", "d(k-1)"),
    (rf_answer(pad_unscaled=True), "padding moves the start", "times the jump"),
    (rf_answer(pad_sign=-1), "padding moves the start", "negative"),
])
def test_receptive_field_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, with its hint shown?"""
    result = run("03.receptive_field", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_receptive_field_mistakes_are_not_blamed_on_others():
    """Is ignoring the strides not blamed on the order of the updates, and a padding
    mistake not blamed on the strides or the dilation?"""
    assert_not_blamed(run("03.receptive_field", rf_answer(ignore_stride=True)),
                      "a layer's stride acts on the layers after it")
    result = run("03.receptive_field", rf_answer(pad_unscaled=True))
    for innocent in ("strides multiply the jump", "dilation spreads the taps",
                     "a layer's stride acts on the layers after it"):
        assert_not_blamed(result, innocent)


def test_receptive_field_lesson_formula_scores_zero():
    """Does the lesson's receptive_field (the size alone, an int) earn nothing?"""
    from course_utils.lessons.cnn import receptive_field
    result = run("03.receptive_field", receptive_field)
    assert result.score == 0


def test_receptive_field_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("03.receptive_field", rf_answer())



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


# ------------------------------------------------------------------- 03.build_resnet
class _Block(nn.Module):
    def __init__(self, channels, skip=True, relu_after_add=False, post_act=False):
        super().__init__()
        if post_act:  # the original block's layer order: conv before BN
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
        else:
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.skip, self.relu_after_add, self.post_act = skip, relu_after_add, post_act

    def forward(self, x):
        if self.post_act:
            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x)
        out = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        if not self.skip:
            return out
        return F.relu(out + x) if self.relu_after_add else out + x


def resnet_answer(skip=True, relu_after_add=False, head="avg", flatten_head=False,
                  post_act=False, last_activation=True):
    """A learner-style answer to 03.build_resnet, one mistake switched on."""
    def build_resnet(num_classes=10):
        if flatten_head:
            tail = [nn.Flatten(), nn.Linear(32 * 14 * 14, num_classes)]
        else:
            pool = nn.AdaptiveAvgPool2d(1) if head == "avg" else nn.AdaptiveMaxPool2d(1)
            tail = [pool, nn.Flatten(), nn.Linear(32, num_classes)]
        last = [nn.BatchNorm2d(32), nn.ReLU()] if last_activation else []
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            _Block(16, skip, relu_after_add, post_act), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            _Block(32, skip, relu_after_add, post_act), *last, *tail)

    return build_resnet


class _MeanHead(nn.Module):
    """Another honest style: a class with x.mean((2, 3)) for the pooling."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = _Block(16)
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1,
                                                             bias=False),
                                  nn.BatchNorm2d(32), nn.ReLU())
        self.block2 = _Block(32)
        self.last = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        h = self.block2(self.down(self.block1(self.stem(x))))  # (B, 32, H/2, W/2)
        h = F.relu(self.last(h))
        return self.fc(h.mean(dim=(2, 3)))                     # (B, num_classes)


def test_build_resnet_reference_and_other_styles_pass():
    """Do the spec, a Sequential answer and a class with x.mean pass every case?"""
    from course_utils.grading.checks.lesson03 import reference_build_resnet
    for answer in (reference_build_resnet, resnet_answer(), _MeanHead):
        assert_all_pass(run("03.build_resnet", answer))


@pytest.mark.parametrize("wrong, case, word", [
    (resnet_answer(skip=False), "the block adds its input", "F(x) + x"),
    (resnet_answer(relu_after_add=True), "nothing after the addition",
     "ReLU(F(x) + x)"),
    (resnet_answer(head="max"), "the head averages, not maxes", "average"),
])
def test_build_resnet_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, with its hint shown, and
    earn no core credit?"""
    result = run("03.build_resnet", wrong)
    assert_shows(result, case, word)
    assert result.score == 0


def test_build_resnet_mistakes_are_not_blamed_on_others():
    """Is a missing skip connection not called a max-pooling head, and vice versa?"""
    assert_not_blamed(run("03.build_resnet", resnet_answer(skip=False)),
                      "the head averages, not maxes")
    assert_not_blamed(run("03.build_resnet", resnet_answer(head="max")),
                      "the block adds its input (the skip connection)")


def test_build_resnet_flatten_head_is_told_the_layers():
    """Does a Flatten + Linear head (no global pooling) score 0 and list both layer
    lists, instead of crashing?"""
    result = run("03.build_resnet", resnet_answer(flatten_head=True))
    assert result.score == 0
    assert "Linear(6272->10)" in str(result) and "Linear(32->10)" in str(result)


def test_build_resnet_original_block_scores_zero_and_says_the_order():
    """Does the original (post-activation) block, registered conv1, bn1, conv2, bn2,
    score 0 with a message that lists the layers in their order?"""
    result = run("03.build_resnet", resnet_answer(post_act=True))
    assert result.score == 0
    assert "BatchNorm2d(16)" in str(result) and "Conv2d(16->16, 3x3)" in str(result)


def test_build_resnet_without_the_last_activation_scores_zero():
    """Does a network without the BatchNorm + ReLU after the last block earn nothing?"""
    assert run("03.build_resnet", resnet_answer(last_activation=False)).score == 0


def test_build_resnet_trivial_answers_score_zero():
    """Do None, pass, raise and an empty module score 0?"""
    assert_trivial_scores_zero("03.build_resnet", resnet_answer())



# ------------------------------------------------------------------ 03.conv2d_backward
def conv_backward_answer(flip=False, first_out_channel=False, batch="sum",
                         bias_batch="sum", swap=False, numpy=False):
    """A from-scratch answer to 03.conv2d_backward (im2col), one mistake switched on."""
    def conv2d_backward(X, weight, grad_out):
        B, C_in, H, W = X.shape
        C_out, _, kH, kW = weight.shape
        cols = F.unfold(X, (kH, kW))                              # (B, C_in*kH*kW, L)
        g = grad_out.flatten(2)                                   # (B, C_out, L)
        per_example = torch.einsum("bol,bkl->bok", g, cols)
        grad_weight = {"sum": per_example.sum(0), "mean": per_example.mean(0),
                       "first": per_example[0]}[batch].view(weight.shape)
        if swap:  # [c, o] read as [o, c]
            grad_weight = per_example.sum(0).view(C_out, C_in, kH, kW).transpose(0, 1)
            grad_weight = grad_weight.reshape(weight.shape)
        w = weight.flip(-2, -1) if flip else weight
        if first_out_channel:
            grad_cols = torch.einsum("k,bl->bkl", w[0].flatten(), g[:, 0])
        else:
            grad_cols = torch.einsum("ok,bol->bkl", w.flatten(1), g)
        grad_X = F.fold(grad_cols, (H, W), (kH, kW))
        per_bias = grad_out.sum(dim=(2, 3))                       # (B, C_out)
        grad_bias = {"sum": per_bias.sum(0), "mean": per_bias.mean(0),
                     "first": per_bias[0]}[bias_batch]
        grads = (grad_X, grad_weight, grad_bias)
        return tuple(t.double().numpy() for t in grads) if numpy else grads

    return conv2d_backward


def conv_backward_loops(X, weight, grad_out):
    """The same gradients with loops over the kernel taps (another honest style)."""
    C_out, C_in, kH, kW = weight.shape
    H_out, W_out = grad_out.shape[-2:]
    grad_X = torch.zeros_like(X)
    grad_weight = torch.zeros_like(weight)
    for a in range(kH):
        for b in range(kW):
            patch = X[:, :, a:a + H_out, b:b + W_out]  # (B, C_in, H_out, W_out)
            grad_weight[:, :, a, b] = torch.einsum("bohw,bchw->oc", grad_out, patch)
            grad_X[:, :, a:a + H_out, b:b + W_out] += torch.einsum(
                "bohw,oc->bchw", grad_out, weight[:, :, a, b])
    return grad_X, grad_weight, grad_out.sum(dim=(0, 2, 3))


def test_conv2d_backward_honest_answers_pass():
    """Do the im2col answer and a loop over kernel taps pass every case?"""
    assert_all_pass(run("03.conv2d_backward", conv_backward_answer()))
    assert_all_pass(run("03.conv2d_backward", conv_backward_loops))


@pytest.mark.parametrize("library", [
    lambda X, w, g: torch.autograd.grad(
        F.conv2d(X.requires_grad_(), w.requires_grad_()), (X, w), g)
    + (g.sum((0, 2, 3)),),
    lambda X, w, g: (torch.nn.grad.conv2d_input(X.shape, w, g),
                     torch.nn.grad.conv2d_weight(X, w.shape, g), g.sum((0, 2, 3))),
    lambda X, w, g: (F.conv_transpose2d(g, w), None, None),
])
def test_conv2d_backward_library_counts_as_not_answered(library):
    """Do autograd through F.conv2d, torch.nn.grad and conv_transpose2d score 0 with the
    forbidden-call status?"""
    result = run("03.conv2d_backward", library)
    assert result.status == FORBIDDEN and result.score == 0


@pytest.mark.parametrize("wrong, case, word", [
    (conv_backward_answer(flip=True), "grad_X uses the kernel as the forward",
     "flipped"),
    (conv_backward_answer(first_out_channel=True), "grad_X sums over the output",
     "channel 0"),
    (conv_backward_answer(batch="mean", bias_batch="mean"),
     "grad_weight and grad_bias sum over the batch", "not a mean"),
    (conv_backward_answer(batch="first"),
     "grad_weight and grad_bias sum over the batch", "example 0"),
    (conv_backward_answer(bias_batch="first"),
     "grad_weight and grad_bias sum over the batch", "bias"),
    (conv_backward_answer(swap=True), "grad_weight pairs input and output", "swap"),
    (conv_backward_answer(numpy=True), "keeps the inputs' dtype", "float64"),
])
def test_conv2d_backward_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, with its hint shown, and
    lose credit?"""
    result = run("03.conv2d_backward", wrong)
    if case.startswith("keeps"):
        assert_fails(result, case, word)
    else:
        assert_shows(result, case, word)
    assert result.score < 1


def test_conv2d_backward_flip_is_not_blamed_on_the_sums():
    """Is an unflipped grad_X not blamed on the sums over channels or the batch?"""
    result = run("03.conv2d_backward", conv_backward_answer(flip=True))
    for innocent in ("grad_X sums over the output channels",
                     "grad_weight and grad_bias sum over the batch",
                     "grad_weight pairs input and output channels"):
        assert_not_blamed(result, innocent)


def test_conv2d_backward_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("03.conv2d_backward", conv_backward_answer())



def test_reports_are_deterministic():
    """Does the same wrong answer give the same report twice (no addresses, no random
    numbers)?"""
    for qid, wrong in (("03.conv2d_backward", conv_backward_answer(flip=True)),
                       ("03.train_step", no_zero_grad),
                       ("03.build_resnet", resnet_answer(skip=False))):
        assert str(run(qid, wrong)) == str(run(qid, wrong))
