"""Tests for the checks of lesson 01: the reference passes every case, each typical
mistake fails the case meant for it (with the hint naming that mistake), answers in
other styles (float32, a list, the other place of zero_grad) pass, answers that compute
nothing earn nothing, no hint prints a solution line, and a stub is "not implemented
yet"."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.lessons import optim
from course_utils.authoring.markers import solution_lines
from course_utils.authoring.transforms import read_notebook
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED

from check_support import case_of, run, stub

# -------------------------------------------------------------------- reference answers


def train_step(model, X, y, loss_fn, optimizer):
    """The reference answer of 01.torch_train."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def momentum_step(w, v, grad, lr, momentum):
    """The reference answer of 01.momentum_step (no Nesterov argument, as asked)."""
    return optim.momentum_step(w, v, grad, lr, momentum)


def logistic_gradient(w, X, y):
    """The reference answer of 01.logistic_gradient (no L2 argument, as asked)."""
    return optim.logistic_gradient(w, X, y)


REFERENCE = {
    "01.mse_gradient": optim.mse_gradient,
    "01.gd_step": optim.gd_step,
    "01.gradient_descent": optim.gradient_descent,
    "01.logistic_gradient": logistic_gradient,
    "01.exponential_decay": optim.exponential_decay,
    "01.step_decay": optim.step_decay,
    "01.cosine_warmup": optim.cosine_warmup,
    "01.momentum_step": momentum_step,
    "01.torch_train": train_step,
}


# --------------------------------------------------------------------- typical mistakes
def _gd_inplace(grad_fn, w0, lr, num_steps):
    w = w0  # no copy: updates the caller's array, and appends the same object each step
    trajectory = [w]
    for _ in range(num_steps):
        w -= lr * grad_fn(w)
        trajectory.append(w)
    return np.stack(trajectory)


def _gd_copy_then_inplace(grad_fn, w0, lr, num_steps):
    w = np.array(w0, dtype=float)
    trajectory = [w]
    for _ in range(num_steps):
        w -= lr * grad_fn(w)
        trajectory.append(w)
    return np.stack(trajectory)


def _gd_no_w0(grad_fn, w0, lr, num_steps):
    return optim.gradient_descent(grad_fn, w0, lr, num_steps)[1:]


def _gd_step_inplace(w, grad, lr):
    w -= lr * grad
    return w


def _cosine_zero_start(t, lr_max, warmup_steps, total_steps, lr_min=0.0):
    if t < warmup_steps:
        return lr_max * t / warmup_steps
    return optim.cosine_warmup(t, lr_max, warmup_steps, total_steps, lr_min)


def _cosine_unshifted(t, lr_max, warmup_steps, total_steps, lr_min=0.0):
    if t < warmup_steps:
        return lr_max * (t + 1) / warmup_steps
    progress = min(t / total_steps, 1.0)  # counted from 0, not from W
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


def _cosine_no_clip(t, lr_max, warmup_steps, total_steps, lr_min=0.0):
    if t < warmup_steps:
        return lr_max * (t + 1) / warmup_steps
    progress = (t - warmup_steps) / (total_steps - warmup_steps)  # not clipped at 1
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


def _momentum_inplace(w, v, grad, lr, momentum):
    v *= momentum
    v += grad
    return w - lr * v, v


def _train_no_zero_grad(model, X, y, loss_fn, optimizer):
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _train_no_step(model, X, y, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    return loss.item()


def _train_ascent(model, X, y, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    (-loss).backward()
    optimizer.step()
    return loss.item()


def _train_returns_after(model, X, y, loss_fn, optimizer):
    train_step(model, X, y, loss_fn, optimizer)
    return loss_fn(model(X), y).item()


def _train_returns_tensor(model, X, y, loss_fn, optimizer):
    """Returns the loss tensor itself (graph and all) instead of loss.item()."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss


def _train_zero_grad_after_backward(model, X, y, loss_fn, optimizer):
    """zero_grad() between backward() and step(): step() sees no gradient."""
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def _gd_final_only(grad_fn, w0, lr, num_steps):
    """Returns only the final weights instead of the trajectory."""
    return optim.gradient_descent(grad_fn, w0, lr, num_steps)[-1]


def _logistic_sq_error(w, X, y):
    """The gradient of the MSE on the probabilities: 2/N X^T ((p - y) p (1 - p))."""
    p = optim.sigmoid(X @ w)
    return 2 * X.T @ ((p - y) * p * (1 - p)) / len(y)


def _train_tiny_lr(model, X, y, loss_fn, optimizer):
    """Steps with 1/1000 of the gradient: matches nothing, and the loss barely moves."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    (1e-3 * loss).backward()
    optimizer.step()
    return loss.item()


def _train_own_sgd(model, X, y, loss_fn, optimizer):
    """Ignores the optimizer it is given and makes its own SGD(lr=0.1) (issue 9)."""
    own = torch.optim.SGD(model.parameters(), lr=0.1)
    own.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    own.step()
    return loss.item()


def _train_manual_update(model, X, y, loss_fn, optimizer):
    """Updates the parameters by hand (p -= 0.1 * grad), not with the optimizer."""
    model.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    return loss.item()


def _train_new_optimizer_each_call(model, X, y, loss_fn, optimizer):
    """A fresh optimizer of the same kind at every call: Adam's moments restart."""
    keep = ("lr", "momentum", "betas")
    hyper = {k: v for k, v in optimizer.defaults.items() if k in keep}
    fresh = type(optimizer)(model.parameters(), **hyper)
    fresh.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    fresh.step()
    return loss.item()


def _train_zero_grad_after_step(model, X, y, loss_fn, optimizer):
    """The other correct order: zero the gradients after step(), for the next call."""
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _train_model_zero_grad(model, X, y, loss_fn, optimizer):
    """model.zero_grad() clears the same .grad as optimizer.zero_grad()."""
    model.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _train_returns_none(model, X, y, loss_fn, optimizer):
    train_step(model, X, y, loss_fn, optimizer)


def _cosine_no_return_after_T(t, lr_max, warmup_steps, total_steps, lr_min=0.0):
    """Forgets the branch t > T: returns None there."""
    if t < warmup_steps:
        return lr_max * (t + 1) / warmup_steps
    if t <= total_steps:
        return optim.cosine_warmup(t, lr_max, warmup_steps, total_steps, lr_min)


def _logistic_float32(w, X, y):
    """The reference computed in float32 throughout, with a float32 sigmoid."""
    w, X, y = (np.asarray(a, dtype=np.float32) for a in (w, X, y))
    p = (1 / (1 + np.exp(-(X @ w)))).astype(np.float32)  # (N,)
    return X.T @ (p - y) / np.float32(len(y))


def _gd_list(grad_fn, w0, lr, num_steps):
    """Returns the trajectory as a list of rows (not stacked)."""
    w = np.array(w0, dtype=float)
    trajectory = [w]
    for _ in range(num_steps):
        w = w - lr * grad_fn(w)
        trajectory.append(w)
    return trajectory


def _gd_float32(grad_fn, w0, lr, num_steps):
    w = np.array(w0, dtype=np.float32)
    trajectory = [w]
    for _ in range(num_steps):
        w = (w - lr * grad_fn(w)).astype(np.float32)
        trajectory.append(w)
    return np.stack(trajectory)


def _momentum_dampened(w, v, grad, lr, momentum):
    """PyTorch's dampening: (1 - momentum) in front of the gradient."""
    v_new = momentum * v + (1 - momentum) * grad
    return w - lr * v_new, v_new


def _momentum_keras(w, v, grad, lr, momentum):
    """Keras's velocity m = momentum * m - lr * grad, returned as PyTorch's v."""
    return w - lr * (momentum * v + grad), momentum * v - lr * grad


def _momentum_list(w, v, grad, lr, momentum):
    v_new = momentum * v + grad
    return [w - lr * v_new, v_new]


# Correct answers written in other styles: each must pass every case (full marks).
STYLES = [
    ("01.mse_gradient", lambda w, X, y: (2 / len(y) * X.T @ (X @ w - y)).astype("f4"),
     "float32 result"),
    ("01.mse_gradient", lambda w, X, y: 2 * np.mean((X @ w - y)[:, None] * X, axis=0),
     "np.mean over rows"),
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * np.einsum("nd,n->d", X, X @ w - y),
     "einsum"),
    ("01.logistic_gradient", _logistic_float32, "float32 throughout"),
    ("01.logistic_gradient",
     lambda w, X, y: X.T @ (1 / (1 + np.exp(-X @ w)) - y) / len(y), "own sigmoid"),
    ("01.gd_step", lambda w, grad, lr: np.subtract(w, lr * grad), "np.subtract"),
    ("01.gradient_descent", _gd_list, "a list of rows"),
    ("01.gradient_descent", _gd_float32, "float32 trajectory"),
    ("01.exponential_decay",
     lambda t, lr0, gamma: np.float32(lr0) * np.float32(gamma) ** t, "np.float32"),
    ("01.exponential_decay", lambda t, lr0, gamma: torch.tensor(lr0) * gamma ** t,
     "a torch scalar"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0 * math.pow(gamma, t),
     "math.pow"),
    ("01.step_decay",
     lambda t, lr0, gamma, s: np.float32(lr0 * gamma ** math.floor(t / s)),
     "float32, floor"),
    ("01.cosine_warmup",
     lambda t, a, W, T, m=0.0: np.float32(optim.cosine_warmup(t, a, W, T, m)),
     "float32"),
    ("01.momentum_step", _momentum_list, "a list [w_new, v_new]"),
    ("01.torch_train", _train_zero_grad_after_step, "zero_grad after step"),
    ("01.torch_train", _train_model_zero_grad, "model.zero_grad"),
]


def _sigmoid_gradient(w, X, y):
    return optim.logistic_gradient(w, X, y)


# (question, wrong answer, the case it must fail, a word its hint or message holds)
MISTAKES = [
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * X.T @ (y - X @ w),
     "points uphill", "sign"),
    ("01.mse_gradient", lambda w, X, y: 2 * X.T @ (X @ w - y), "averages over", "1/N"),
    ("01.mse_gradient", lambda w, X, y: X.T @ (X @ w - y), "averages over", "N / 2"),
    ("01.mse_gradient", lambda w, X, y: X.T @ (X @ w - y) / len(y),
     "factor 2", "factor 2"),
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * X @ (X.T @ w - y),
     "shape (D,)", "Transposed"),
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * X.T @ (X @ w - y) + 0.01,
     "on random data", "chain rule"),
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) ** 2 * X.T @ (X @ w - y),
     "averages over", "twice"),
    ("01.mse_gradient", lambda w, X, y: 2 * np.mean(X * (X @ w - y)[:, None], axis=1),
     "shape (D,)", "wrong axis"),
    ("01.gd_step", lambda w, grad, lr: w + lr * grad, "moves against", "sign"),
    ("01.gd_step", lambda w, grad, lr: w - grad, "learning rate", "multiply by lr"),
    ("01.gd_step", lambda w, grad, lr: w - grad / lr, "learning rate", "divide"),
    ("01.gd_step", _gd_step_inplace, "new array", "In-place"),
    ("01.gradient_descent", _gd_no_w0, "num_steps + 1 rows", "off by one"),
    ("01.gradient_descent", _gd_final_only, "num_steps + 1 rows", "final weights only"),
    ("01.gradient_descent", _gd_copy_then_inplace, "rows differ", "In-place"),
    ("01.gradient_descent", _gd_inplace, "does not change w0", "In-place"),
    ("01.gradient_descent",
     lambda g, w0, lr, n: optim.gradient_descent(lambda w: -g(w), w0, lr, n),
     "converges", "sign"),
    ("01.gradient_descent",
     lambda g, w0, lr, n: optim.gradient_descent(g, w0, lr / 2, n),
     "step by step", "lr times grad_fn(w)"),
    ("01.logistic_gradient", lambda w, X, y: X.T @ (y - optim.sigmoid(X @ w)) / len(y),
     "points uphill", "sign"),
    ("01.logistic_gradient", lambda w, X, y: X.T @ (optim.sigmoid(X @ w) - y),
     "averages over", "1/N"),
    ("01.logistic_gradient", lambda w, X, y: X.T @ (X @ w - y) / len(y),
     "through the sigmoid", "sigmoid"),
    ("01.logistic_gradient", lambda w, X, y: X.T @ (X @ w - y),
     "through the sigmoid", "sigmoid"),
    ("01.logistic_gradient", lambda w, X, y: X @ (optim.sigmoid(X.T @ w) - y) / len(y),
     "shape (D,)", "Transposed"),
    ("01.logistic_gradient", lambda w, X, y: 2 * _sigmoid_gradient(w, X, y),
     "cross-entropy gradient", "factor 2"),
    ("01.logistic_gradient", _logistic_sq_error, "cross-entropy gradient",
     "p * (1 - p)"),
    ("01.logistic_gradient", lambda w, X, y: _sigmoid_gradient(w, X, y) / len(y),
     "averages over", "twice"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0 / (1 + t) ** gamma,
     "same factor", "polynomial"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0,
     "same factor", "does not decay"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0 * math.exp(-gamma * t),
     "factor per step", "power t"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0 * (1 - gamma) ** t,
     "factor per step", "(1 - gamma) ** t"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0 * gamma ** (t + 1),
     "starts at lr0", "power 0"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** -(t // s),
     "never grows", "grows with t"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** (t / s),
     "constant within", "floor"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** ((t + 1) // s),
     "drops exactly", "Off by one"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** math.ceil(t / s),
     "drops exactly", "t = 11, 21"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** round(t / s),
     "drops exactly", "round"),
    ("01.cosine_warmup", _cosine_zero_start, "first warmup step", "Off by one"),
    ("01.cosine_warmup",
     lambda t, a, W, T, m=0.0: optim.cosine_warmup(t + 1, a, W, T, m),
     "reaches lr_max", "straight line"),
    ("01.cosine_warmup", _cosine_unshifted, "halfway", "count from W"),
    ("01.cosine_warmup", _cosine_no_clip, "stays there", "clip"),
    ("01.momentum_step", lambda w, v, g, lr, mu: w - lr * (mu * v + g),
     "returns the pair", "new velocity"),
    ("01.momentum_step", _momentum_dampened, "plain gradient step", "dampening"),
    ("01.momentum_step", _momentum_keras, "accumulates", "without lr"),
    ("01.momentum_step", _momentum_dampened, "accumulates", "(1 - momentum)"),
    ("01.momentum_step", lambda w, v, g, lr, mu: (w - lr * v, mu * v + g),
     "new velocity", "NEW velocity"),
    ("01.momentum_step", _momentum_inplace, "in place", "In-place"),
    ("01.torch_train", _train_no_zero_grad, "zeroes the gradients", "zero_grad"),
    ("01.torch_train", _train_no_step, "changes the parameters",
     "let the optimizer step"),
    ("01.torch_train", _train_ascent, "loss goes down", "does not go down"),
    ("01.torch_train", _train_returns_after, "before the update", "after the update"),
    ("01.torch_train", _train_tiny_lr, "loss goes down", "does not go down"),
    ("01.torch_train", _train_returns_tensor, "not a tensor", "plain float"),
    ("01.torch_train", _train_zero_grad_after_backward, "changes the parameters",
     "between the two"),
    ("01.torch_train", _train_own_sgd, "optimizer it is given", "passed in"),
    ("01.torch_train", _train_manual_update, "optimizer it is given", "passed in"),
    ("01.torch_train", _train_new_optimizer_each_call, "three steps with Adam",
     "optimizer you are given"),
]


# -------------------------------------------------------------------------------- tests
def test_lesson01_has_the_questions_of_the_exercises():
    """Are the nine questions of lesson 01 registered, each with three core cases?"""
    questions = {q.qid: q for q in questions_for_lesson("01")}
    assert set(REFERENCE) <= set(questions)
    for qid in REFERENCE:
        kinds = [c.kind for c in questions[qid].cases]
        assert kinds.count("core") >= 3 and len(kinds) >= 5, (qid, kinds)


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_reference_answer_passes_every_case(qid):
    """Does the reference answer score full marks?"""
    result = run(qid, REFERENCE[qid])
    failed = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failed and result.score == result.possible


@pytest.mark.parametrize("qid, answer, style", STYLES,
                         ids=[f"{s[0]}-{s[2]}" for s in STYLES])
def test_correct_answers_in_other_styles_pass(qid, answer, style):
    """Does a correct answer written another way (float32, a list, zero_grad after
    step) get full marks?"""
    result = run(qid, answer)
    failed = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failed and result.score == result.possible


@pytest.mark.parametrize("qid, wrong, case_word, hint_word", MISTAKES,
                         ids=[f"{m[0]}-{m[2]}" for m in MISTAKES])
def test_typical_mistake_fails_its_case_with_its_hint(qid, wrong, case_word, hint_word):
    """Does this typical mistake fail the case written for it, with a hint that names
    the mistake?"""
    result = run(qid, wrong)
    matching = [c for c in result.cases if case_word in c.name]
    assert len(matching) == 1, [c.name for c in result.cases]
    case = matching[0]
    assert not case.passed, f"{case.name!r} passed for a wrong answer"
    assert hint_word in case.hint + case.message
    assert result.score < result.possible


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_stub_reports_not_implemented_yet(qid):
    """Does a stub raising NotImplementedError score 0, as "not implemented yet"?"""
    result = run(qid, stub)
    assert result.score == 0
    assert result.status == NOT_IMPLEMENTED
    assert all(c.status == NOT_IMPLEMENTED for c in result.cases)


@pytest.mark.parametrize("qid, answer", [
    ("01.mse_gradient", lambda w, X, y: np.zeros_like(w)),
    ("01.logistic_gradient", lambda w, X, y: np.zeros_like(w)),
    ("01.gd_step", lambda w, grad, lr: w),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0),
    ("01.cosine_warmup", lambda t, lr_max, W, T, lr_min=0.0: lr_max),
    ("01.momentum_step", lambda w, v, g, lr, mu: (w, v)),
    ("01.torch_train", _train_own_sgd),
    ("01.torch_train", _train_manual_update),
], ids=["mse zeros", "logistic zeros", "gd_step w", "exp constant", "step constant",
        "cosine constant", "momentum no step", "own SGD", "manual update"])
def test_answers_that_do_not_do_the_work_score_zero(qid, answer):
    """Does an answer that returns zeros, its input or a constant, or ignores the
    optimizer, score 0?"""
    assert run(qid, answer).score == 0


def test_mse_zeros_are_not_blamed_on_a_sign_or_a_factor():
    """Does a zero gradient fail only the value cases, not the sign or 1/N detectors?"""
    result = run("01.mse_gradient", lambda w, X, y: np.zeros_like(w))
    assert [c.kind for c in result.cases if not c.passed] == ["core"] * 3


def test_missing_sigmoid_is_not_reported_as_growing_with_n():
    """Is a missing sigmoid blamed on the sigmoid alone, not on 1/N ("grows with N")?"""
    for wrong in (lambda w, X, y: X.T @ (X @ w - y) / len(y), lambda w, X,
                  y: X.T @ (X @ w - y)):
        result = run("01.logistic_gradient", wrong)
        assert case_of(result, "averages over").passed
        assert not case_of(result, "passes the logits through the sigmoid").passed
        assert "grows with N" not in str(result)


def test_constant_exponential_decay_fails_the_same_factor_case():
    """Does a constant schedule fail "shrinks by the same factor gamma", and score 0
    (issue 9: it had 0.67)?"""
    result = run("01.exponential_decay", lambda t, lr0, gamma: lr0)
    case = case_of(result, "shrinks by the same factor gamma")
    assert not case.passed and "does not decay" in case.message
    assert result.score == 0


def test_off_by_one_step_decay_is_not_blamed_on_a_missing_floor():
    """Does a drop one step early fail the off-by-one case, not "constant within"?"""
    result = run("01.step_decay", lambda t, lr0, gamma,
                 s: lr0 * gamma ** ((t + 1) // s))
    assert case_of(result,
                   "is constant within").passed and case_of(result,
                                                            "never grows").passed
    assert not case_of(result, "drops exactly").passed


def test_cosine_none_after_T_says_which_branch_has_no_return():
    """Does a schedule without a return for t > T say so, as a basic problem, rather
    than as a crash?"""
    result = run("01.cosine_warmup", _cosine_no_return_after_T)
    case = case_of(result, "ends at lr_min")
    assert case.message == ("cosine_warmup(46, 1.0, 5, 45, 0.2) returned None: is "
                            "there a return for t > T?")
    assert case.basic and not case.shows_hint and "It raised" not in str(result)
    assert result.score == 0


@pytest.mark.parametrize("answer",
                         [_train_zero_grad_after_step, _train_model_zero_grad])
def test_zero_grad_after_step_is_accepted_and_accumulation_is_caught(answer):
    """Both places of zero_grad pass (one course-wide rule), and forgetting it fails
    the accumulation case."""
    assert run("01.torch_train", answer).passed
    result = run("01.torch_train", _train_no_zero_grad)
    case = case_of(result, "zeroes the gradients")
    assert not case.passed and "sum of the 2 gradients" in case.message
    assert result.score < 0.5


def test_an_optimizer_made_inside_train_step_scores_zero():
    """Does a step that ignores the given optimizer fail every core case?"""
    result = run("01.torch_train", _train_own_sgd)
    assert [c.passed for c in result.cases if c.kind == "core"] == [False] * 3
    case = case_of(result, "steps with the optimizer it is given")
    assert "never took a step" in case.message


@pytest.mark.parametrize("qid, answer", [
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * (X @ w - y)),
    ("01.logistic_gradient", lambda w, X, y: X.T),
    ("01.momentum_step", lambda w, v, g, lr, mu: (w[:1], v)),
], ids=["mse residual", "logistic X.T", "momentum w[:1]"])
def test_a_wrong_shape_is_a_basic_failure_reported_once(qid, answer):
    """Is a wrong shape reported as a basic problem (no unrelated hints), once, with no
    "see the shape case"?"""
    result = run(qid, answer)
    failed = [c for c in result.cases if not c.passed]
    assert failed and all(c.basic for c in failed)
    assert not any(c.shows_hint for c in failed if c.kind != "property")
    text = str(result)
    assert "see the shape case" not in text and text.count("Fix this first") == 1
    assert result.score == 0


@pytest.mark.parametrize("qid, wrong, innocent_case", [
    ("01.gd_step", lambda w, grad, lr: w - grad, "moves against"),
    ("01.gd_step", lambda w, grad, lr: w - grad / lr, "moves against"),
    ("01.gd_step", lambda w, grad, lr: w, "moves against"),
    ("01.momentum_step", _momentum_keras, "plain gradient step"),
    ("01.momentum_step", lambda w, v, g, lr, mu: (mu * v + g, w - lr * (mu * v + g)),
     "plain gradient step"),
])
def test_a_mistake_does_not_fail_the_cases_about_other_mistakes(qid, wrong,
                                                                innocent_case):
    """Does a wrong learning-rate factor (or a swapped pair) leave the cases about other
    mistakes passing, so their hints do not blame the wrong thing?"""
    result = run(qid, wrong)
    case = next(c for c in result.cases if innocent_case in c.name)
    assert case.passed, case.message
    assert result.score < result.possible


def test_torch_checks_leave_the_global_torch_seed_usable():
    """Do the torch cases run the same twice, and leave the global torch RNG alone?"""
    a = run("01.torch_train", train_step).to_dict()
    torch.manual_seed(123)
    b = run("01.torch_train", train_step).to_dict()
    after = torch.rand(1)
    torch.manual_seed(123)
    assert a == b and torch.equal(after, torch.rand(1))


def test_check_messages_are_deterministic():
    """Does the same wrong answer give byte-identical messages twice?"""
    wrong = MISTAKES[0][1]
    a = run("01.mse_gradient", wrong).to_dict()
    b = run("01.mse_gradient", wrong).to_dict()
    assert a == b


# -------------------------------------------------------------------------------- hints
ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01_gradient_descent.ipynb"
CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.[a-z][a-z0-9_]*)["']""")


def solution_expressions(path: Path) -> dict[str, set[str]]:
    """{question id: the solution lines of its answer cell and their right-hand sides},
    without spaces."""
    out, pending = {}, set()
    for cell in read_notebook(path).cells:
        if cell.cell_type != "code":
            continue
        inside, _ = solution_lines(cell.source, "code")
        if inside:
            pending = set()
            for line in inside:
                code = line.split("#")[0].strip()
                for text in (code, code.removeprefix("return "),
                             code.split(" = ", 1)[-1]):
                    squeezed = "".join(text.split())
                    if len(squeezed) >= 6:
                        pending.add(squeezed)
        for qid in CHECK_CALL.findall(cell.source):
            out[qid] = pending
    return out


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_no_hint_prints_a_solution_line(qid):
    """Does no hint of the question contain a solution line (or its expression)?"""
    expressions = solution_expressions(SOLUTION)[qid]
    assert expressions, f"no solution lines found for {qid}"
    question = next(q for q in questions_for_lesson("01") if q.qid == qid)
    hints = {c.name: "".join(c.hint.split()) for c in question.cases}
    leaks = [(name, e) for name, hint in hints.items() for e in expressions
             if e in hint]
    assert leaks == []
