"""Tests for the checks of lesson 01: the reference passes every case, each typical mistake fails the
case meant for it (with the hint naming that mistake), and a stub reports "not implemented yet"."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils import optim
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED

from check_support import run, stub

# --------------------------------------------------------------------------- reference answers


def train_step(model, X, y, loss_fn, optimizer):
    """The reference answer of 01.torch_train."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def momentum_step(w, v, grad, lr, momentum):
    """The reference answer of 01.momentum_step (no Nesterov argument, as in the exercise)."""
    return optim.momentum_step(w, v, grad, lr, momentum)


def logistic_gradient(w, X, y):
    """The reference answer of 01.logistic_gradient (no L2 argument, as in the exercise)."""
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


# --------------------------------------------------------------------------- typical mistakes
def _gd_inplace(grad_fn, w0, lr, num_steps):
    w = w0  # no copy: updates the caller's array, and appends the same object every step
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
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * min(t / total_steps, 1.0)))


def _cosine_no_clip(t, lr_max, warmup_steps, total_steps, lr_min=0.0):
    if t < warmup_steps:
        return lr_max * (t + 1) / warmup_steps
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * (t - warmup_steps) / (total_steps - warmup_steps)))


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
    """zero_grad() in the wrong place: between backward() and step(), so step() sees no gradient."""
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def _gd_final_only(grad_fn, w0, lr, num_steps):
    """Returns only the final weights instead of the trajectory."""
    return optim.gradient_descent(grad_fn, w0, lr, num_steps)[-1]


def _logistic_sq_error(w, X, y):
    """The gradient of the mean squared error on the probabilities: 2/N X^T ((p - y) p (1 - p))."""
    p = optim.sigmoid(X @ w)
    return 2 * X.T @ ((p - y) * p * (1 - p)) / len(y)


def _train_tiny_lr(model, X, y, loss_fn, optimizer):
    """Steps with 1/1000 of the gradient: matches nothing, and the loss barely moves."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    (1e-3 * loss).backward()
    optimizer.step()
    return loss.item()


# (question, wrong answer, the case it must fail, a word the hint must contain)
MISTAKES = [
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * X.T @ (y - X @ w), "points uphill", "sign"),
    ("01.mse_gradient", lambda w, X, y: 2 * X.T @ (X @ w - y), "averages over", "1/N"),
    ("01.mse_gradient", lambda w, X, y: X.T @ (X @ w - y) / len(y), "factor 2", "factor 2"),
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * X @ (X.T @ w - y), "shape (D,)", "Transposed"),
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) * X.T @ (X @ w - y) + 0.01, "equals (2/N)", "2 / len(y)"),
    ("01.mse_gradient", lambda w, X, y: 2 / len(y) ** 2 * X.T @ (X @ w - y), "averages over", "twice"),
    ("01.mse_gradient", lambda w, X, y: 2 * np.mean(X * (X @ w - y)[:, None], axis=1), "shape (D,)", "wrong axis"),
    ("01.gd_step", lambda w, grad, lr: w + lr * grad, "moves against", "sign"),
    ("01.gd_step", lambda w, grad, lr: w - grad, "learning rate", "lr * grad"),
    ("01.gd_step", lambda w, grad, lr: w - grad / lr, "learning rate", "divide"),
    ("01.gd_step", _gd_step_inplace, "new array", "In-place"),
    ("01.gradient_descent", _gd_no_w0, "num_steps + 1 rows", "off by one"),
    ("01.gradient_descent", _gd_final_only, "num_steps + 1 rows", "final weights only"),
    ("01.gradient_descent", _gd_copy_then_inplace, "rows differ", "In-place"),
    ("01.gradient_descent", _gd_inplace, "does not change w0", "In-place"),
    ("01.gradient_descent", lambda g, w0, lr, n: optim.gradient_descent(lambda w: -g(w), w0, lr, n),
     "converges", "sign"),
    ("01.gradient_descent", lambda g, w0, lr, n: optim.gradient_descent(g, w0, lr / 2, n), "step by step",
     "lr * grad_fn(w)"),
    ("01.logistic_gradient", lambda w, X, y: X.T @ (y - optim.sigmoid(X @ w)) / len(y), "points uphill", "sign"),
    ("01.logistic_gradient", lambda w, X, y: X.T @ (optim.sigmoid(X @ w) - y), "averages over", "1/N"),
    ("01.logistic_gradient", lambda w, X, y: X.T @ (X @ w - y) / len(y), "through the sigmoid", "sigmoid"),
    ("01.logistic_gradient", lambda w, X, y: X @ (optim.sigmoid(X.T @ w) - y) / len(y), "shape (D,)", "Transposed"),
    ("01.logistic_gradient", lambda w, X, y: 2 * optim.logistic_gradient(w, X, y), "cross-entropy gradient",
     "factor 2"),
    ("01.logistic_gradient", _logistic_sq_error, "cross-entropy gradient", "p * (1 - p)"),
    ("01.logistic_gradient", lambda w, X, y: optim.logistic_gradient(w, X, y) / len(y), "averages over", "twice"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0 / (1 + t) ** gamma, "same factor", "Polynomial"),
    ("01.exponential_decay", lambda t, lr0, gamma: lr0 * math.exp(-gamma * t), "factor per step", "gamma ** t"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** -(t // s), "never grows", "grows with t"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** (t / s), "constant within", "floor"),
    ("01.step_decay", lambda t, lr0, gamma, s: lr0 * gamma ** ((t + 1) // s), "drops exactly", "Off by one"),
    ("01.cosine_warmup", _cosine_zero_start, "first warmup step", "Off by one"),
    ("01.cosine_warmup", lambda t, a, W, T, m=0.0: optim.cosine_warmup(t + 1, a, W, T, m), "reaches lr_max", "(t + 1) / W"),
    ("01.cosine_warmup", _cosine_unshifted, "halfway", "t - W"),
    ("01.cosine_warmup", _cosine_no_clip, "stays there", "clip"),
    ("01.momentum_step", lambda w, v, g, lr, mu: w - lr * (mu * v + g), "returns the pair", "return w_new, v_new"),
    ("01.momentum_step", lambda w, v, g, lr, mu: (w - lr * (mu * v + (1 - mu) * g), mu * v + (1 - mu) * g),
     "plain gradient step", "dampening"),
    ("01.momentum_step", lambda w, v, g, lr, mu: (w - lr * (mu * v + g), mu * v - lr * g), "accumulates", "without lr"),
    ("01.momentum_step", lambda w, v, g, lr, mu: (w - lr * v, mu * v + g), "new velocity", "NEW velocity"),
    ("01.momentum_step", _momentum_inplace, "in place", "In-place"),
    ("01.torch_train", _train_no_zero_grad, "zeroes the gradients", "zero_grad"),
    ("01.torch_train", _train_no_step, "changes the parameters", "optimizer.step()"),
    ("01.torch_train", _train_ascent, "loss goes down", "does not go down"),
    ("01.torch_train", _train_returns_after, "before the update", "loss.item()"),
    ("01.torch_train", _train_tiny_lr, "loss goes down", "does not go down"),
    ("01.torch_train", _train_returns_tensor, "not a tensor", "loss.item()"),
    ("01.torch_train", _train_zero_grad_after_backward, "changes the parameters", "between the two"),
]


# --------------------------------------------------------------------------- tests
def test_lesson01_has_the_questions_of_the_exercises():
    """Are the nine questions of lesson 01 registered, each with at least three cases?"""
    questions = {q.qid: q for q in questions_for_lesson("01")}
    assert set(REFERENCE) <= set(questions)
    assert all(len(questions[qid].cases) >= 3 for qid in REFERENCE)


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_reference_answer_passes_every_case(qid):
    """Does the reference answer score full marks?"""
    result = run(qid, REFERENCE[qid])
    failed = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failed and result.score == result.possible


@pytest.mark.parametrize("qid, wrong, case_word, hint_word", MISTAKES,
                         ids=[f"{m[0]}-{m[2]}" for m in MISTAKES])
def test_typical_mistake_fails_its_case_with_its_hint(qid, wrong, case_word, hint_word):
    """Does this typical mistake fail the case written for it, with a hint that names the mistake?"""
    result = run(qid, wrong)
    matching = [c for c in result.cases if case_word in c.name]
    assert len(matching) == 1, [c.name for c in result.cases]
    case = matching[0]
    assert not case.passed, f"{case.name!r} passed for a wrong answer"
    assert hint_word in case.hint + case.message
    assert result.score < result.possible


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_stub_reports_not_implemented_yet(qid):
    """Does an answer that still raises NotImplementedError score 0 as "not implemented yet"?"""
    result = run(qid, stub)
    assert result.score == 0
    assert result.status == NOT_IMPLEMENTED
    assert all(c.status == NOT_IMPLEMENTED for c in result.cases)


@pytest.mark.parametrize("qid, wrong, innocent_case", [
    ("01.gd_step", lambda w, grad, lr: w - grad, "moves against"),
    ("01.gd_step", lambda w, grad, lr: w - grad / lr, "moves against"),
    ("01.momentum_step", lambda w, v, g, lr, mu: (w - lr * (mu * v + g), mu * v - lr * g), "plain gradient step"),
])
def test_a_mistake_does_not_fail_the_cases_about_other_mistakes(qid, wrong, innocent_case):
    """Does a wrong learning-rate factor leave the sign case passing, so its hint does not blame the sign?"""
    result = run(qid, wrong)
    case = next(c for c in result.cases if innocent_case in c.name)
    assert case.passed, case.message
    assert result.score < result.possible


def test_a_wrong_shape_says_to_fix_the_shape_first():
    """Does a gradient of the wrong shape tell, in every case it fails, that the shape comes first?"""
    result = run("01.mse_gradient", lambda w, X, y: 2 / len(y) * (X @ w - y))
    failed = [c for c in result.cases if not c.passed and "shape (D,)" not in c.name and "equals" not in c.name]
    assert failed and all("fix the shape first" in c.message for c in failed)


def test_torch_checks_leave_the_global_torch_seed_usable():
    """Do the torch cases run the same twice (seeded inside the case)?"""
    a = run("01.torch_train", train_step).to_dict()
    torch.manual_seed(123)
    b = run("01.torch_train", train_step).to_dict()
    assert a == b


def test_check_messages_are_deterministic():
    """Does the same wrong answer give byte-identical messages twice?"""
    wrong = MISTAKES[0][1]
    a = run("01.mse_gradient", wrong).to_dict()
    b = run("01.mse_gradient", wrong).to_dict()
    assert a == b
