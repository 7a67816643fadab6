"""Tests for the checks of lesson 01: the reference passes every case, each typical
mistake fails the case meant for it (with the hint naming that mistake), answers in
other styles (float32, a closed form, the other place of zero_grad) pass, answers that
compute nothing earn nothing, no hint prints a solution line, and a stub is "not
implemented yet"."""
from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.lessons import optim
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED

from check_support import case_of, run, solution_expressions, stub

# -------------------------------------------------------------------- reference answers
# Written here, independently of the check modules: oracles are numpy.linalg, PyTorch's
# schedulers and optimizers (inside the checks) and these few lines.


def max_stable_lr(X):
    """The reference answer of 01.max_stable_lr."""
    return 2 / np.linalg.eigvalsh(2 / len(X) * X.T @ X)[-1]


def exponential_schedule(t, lr0, lr_end, total_steps):
    """The reference answer of 01.exponential_schedule."""
    return lr0 * (lr_end / lr0) ** (t / total_steps)


def multistep_decay(t, lr0, gamma, milestones):
    """The reference answer of 01.multistep_decay."""
    return lr0 * gamma ** sum(t >= m for m in milestones)


def batch_size_for_noise(G, tol):
    """The reference answer of 01.batch_size_for_noise, in closed form (the check
    scans B): sigma^2 / B * (N - B) / (N - 1) <= tol * |g|^2 holds for
    B >= sigma^2 N / (tol |g|^2 (N - 1) + sigma^2), rounded up, at least 1 (identical
    rows) and at most N.
    """
    n = len(G)
    g = G.mean(axis=0)  # (D,)
    sigma2 = ((G - g) ** 2).sum(axis=1).mean()
    signal = g @ g
    if sigma2 == 0:
        return 1
    real = sigma2 * n / (tol * signal * (n - 1) + sigma2)
    return int(min(n, max(1, math.ceil(real))))


def train_step(model, X, y, loss_fn, optimizer):
    """The reference answer of 01.torch_train."""
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def nesterov_step(grad_fn, w, v, lr, momentum):
    """The reference answer of 01.nesterov_step (Sutskever et al. 2013)."""
    v_new = momentum * v - lr * grad_fn(w + momentum * v)
    return w + v_new, v_new


REFERENCE = {
    "01.max_stable_lr": max_stable_lr,
    "01.exponential_schedule": exponential_schedule,
    "01.multistep_decay": multistep_decay,
    "01.batch_size_for_noise": batch_size_for_noise,
    "01.torch_train": train_step,
    "01.adam_step": optim.adam_step,
    "01.nesterov_step": nesterov_step,
}


# --------------------------------------------------------------------- typical mistakes
def _hessian(X):
    return 2 / len(X) * X.T @ X


def _noise_scan(G, tol, spread=None, factor=True, target=None):
    """The smallest B whose noise (spread / B, times the finite-population factor if
    ``factor``) is at most ``target`` (default tol * |g|^2); N if none is."""
    n, g = len(G), G.mean(axis=0)
    spread = ((G - g) ** 2).sum(axis=1).mean() if spread is None else spread
    target = tol * (g @ g) if target is None else target
    for B in range(1, n + 1):
        noise = spread / B * ((n - B) / (n - 1) if factor else 1.0)
        if noise <= target:
            return B
    return n


def _bs_with_replacement(G, tol):
    """Forgets the finite-population factor: sigma^2 / B, as drawn with replacement."""
    return _noise_scan(G, tol, factor=False)


def _bs_unbiased(G, tol):
    """sigma^2 with 1/(N - 1), the unbiased estimate, instead of the population 1/N."""
    g = G.mean(axis=0)
    return _noise_scan(G, tol, spread=((G - g) ** 2).sum(axis=1).sum() / (len(G) - 1))


def _bs_mean_over_coordinates(G, tol):
    """np.var(G, axis=0).mean(): the variance averaged over coordinates, not summed."""
    return _noise_scan(G, tol, spread=np.var(G, axis=0).mean())


def _bs_norm_not_squared(G, tol):
    g = G.mean(axis=0)
    return _noise_scan(G, tol, target=tol * np.linalg.norm(g))


def _bs_tol_alone(G, tol):
    return _noise_scan(G, tol, target=tol)


def _bs_one_less(G, tol):
    """Rounds the real-valued solution down: the largest B that misses the target."""
    return max(1, batch_size_for_noise(G, tol) - 1)


def _bs_one_more(G, tol):
    return min(len(G), batch_size_for_noise(G, tol) + 1)


def _bs_no_edge_cases(G, tol):
    """The closed form without its guards: 0 for identical rows, nan at a minimum."""
    n, g = len(G), G.mean(axis=0)
    sigma2 = ((G - g) ** 2).sum(axis=1).mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        real = sigma2 * n / (tol * (g @ g) * (n - 1) + sigma2)
    return math.ceil(real) if sigma2 else 0


def _bs_inplace(G, tol):
    answer = batch_size_for_noise(G, tol)
    G -= G.mean(axis=0)
    return answer


def _bs_float(G, tol):
    """A whole number as a float (35.0): accepted."""
    return float(batch_size_for_noise(G, tol))


def _bs_torch(G, tol):
    """The same scan in torch, float64, returning a 0-d integer tensor."""
    G = torch.tensor(G)
    n = len(G)
    spread = ((G - G.mean(0)) ** 2).sum(1).mean()
    target = tol * (G.mean(0) ** 2).sum()
    B = torch.arange(1, n + 1, dtype=torch.float64)
    ok = spread / B * (n - B) / (n - 1) <= target  # (N,)
    return torch.nonzero(ok)[0, 0] + 1


def _adam_no_correction(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad**2
    return w - lr * m / (np.sqrt(v) + eps), m, v


def _adam_t_from_zero(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    return optim.adam_step(w, m, v, grad, t + 1, lr, betas, eps)


def _adam_eps_inside(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad**2
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return w - lr * m_hat / np.sqrt(v_hat + eps), m, v


def _adam_abs(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * np.abs(grad)
    return w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), m, v


def _adam_stores_corrected(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m = (b1 * m + (1 - b1) * grad) / (1 - b1**t)
    v = (b2 * v + (1 - b2) * grad**2) / (1 - b2**t)
    return w - lr * m / (np.sqrt(v) + eps), m, v


def _adam_no_sqrt(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad**2
    return w - lr * (m / (1 - b1**t)) / (v / (1 - b2**t) + eps), m, v


def _adam_inplace(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m *= b1
    m += (1 - b1) * grad
    v *= b2
    v += (1 - b2) * grad**2
    w -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w, m, v


def _adam_float32(w, m, v, grad, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    return tuple(a.astype(np.float64) for a in optim.adam_step(
        w, m, v, grad, t, lr, betas, eps))


def _nesterov_heavy_ball(grad_fn, w, v, lr, momentum):
    v_new = momentum * v - lr * grad_fn(w)
    return w + v_new, v_new


def _nesterov_behind(grad_fn, w, v, lr, momentum):
    v_new = momentum * v - lr * grad_fn(w - momentum * v)
    return w + v_new, v_new


def _nesterov_plus(grad_fn, w, v, lr, momentum):
    v_new = momentum * v + lr * grad_fn(w + momentum * v)
    return w + v_new, v_new


def _nesterov_old_velocity(grad_fn, w, v, lr, momentum):
    v_new = momentum * v - lr * grad_fn(w + momentum * v)
    return w + v, v_new


def _nesterov_two_calls(grad_fn, w, v, lr, momentum):
    grad_fn(w)  # an extra, unused gradient
    return nesterov_step(grad_fn, w, v, lr, momentum)


def _nesterov_inplace(grad_fn, w, v, lr, momentum):
    v *= momentum
    v -= lr * grad_fn(w + v)
    w += v
    return w, v


def _nesterov_list(grad_fn, w, v, lr, momentum):
    return list(nesterov_step(grad_fn, w, v, lr, momentum))


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




# Correct answers written in other styles: each must pass every case (full marks).
STYLES = [
    ("01.max_stable_lr",
     lambda X: len(X) / np.linalg.svd(X, compute_uv=False)[0] ** 2, "singular values"),
    ("01.max_stable_lr", lambda X: np.float32(max_stable_lr(X)), "np.float32"),
    ("01.max_stable_lr",
     lambda X: 2 / torch.linalg.eigvalsh(torch.tensor(_hessian(X))).max(),
     "a torch scalar"),
    ("01.exponential_schedule",
     lambda t, a, b, T: a * math.exp(t / T * math.log(b / a)), "exp and log"),
    ("01.exponential_schedule",
     lambda t, a, b, T: np.float32(a) * np.float32((b / a) ** (1 / T)) ** t, "float32"),
    ("01.multistep_decay",
     lambda t, a, g, ms: a * g ** bisect.bisect_right(ms, t), "bisect"),
    ("01.multistep_decay",
     lambda t, a, g, ms: (torch.tensor(a, dtype=torch.float64)
                         * g ** sum(t >= m for m in ms)),
     "a torch float64 scalar"),
    ("01.batch_size_for_noise", _bs_float, "a whole float"),
    ("01.batch_size_for_noise", lambda G, tol: np.int64(batch_size_for_noise(G, tol)),
     "np.int64"),
    ("01.batch_size_for_noise", _bs_torch, "a torch scan"),
    ("01.torch_train", _train_zero_grad_after_step, "zero_grad after step"),
    ("01.torch_train", _train_model_zero_grad, "model.zero_grad"),
    ("01.adam_step", _adam_float32, "float64 copies"),
    ("01.nesterov_step", _nesterov_list, "a list [w_new, v_new]"),
]


def _exp_off_by_one(t, lr0, lr_end, total_steps):
    return lr0 * (lr_end / lr0) ** (t / (total_steps - 1))


# (question, wrong answer, the case it must fail, a word its hint or message holds)
MISTAKES = [
    ("01.max_stable_lr", lambda X: 2 / np.linalg.eigvalsh(X.T @ X)[-1],
     "Hessian of the mean", "2/N"),
    ("01.max_stable_lr", lambda X: 1 / np.linalg.eigvalsh(_hessian(X))[-1],
     "Hessian of the mean", "1 / L"),
    ("01.max_stable_lr", lambda X: 2 / np.linalg.eigvalsh(_hessian(X))[0],
     "Hessian of the mean", "smallest curvature"),
    ("01.max_stable_lr", lambda X: 2 / np.linalg.eigvalsh(X.T @ X / len(X))[-1],
     "Hessian of the mean", "factor 2"),
    ("01.max_stable_lr",
     lambda X: 2 / (2 / len(X) * np.linalg.svd(X, compute_uv=False)[0]),
     "Hessian of the mean", "SQUARED"),
    ("01.max_stable_lr", lambda X: np.linalg.eigvalsh(_hessian(X)), "one number",
     "one float"),
    ("01.max_stable_lr", lambda X: 0.1, "just below the rate", "border"),
    ("01.exponential_schedule", lambda t, a, b, T: a + (b - a) * t / T,
     "same factor", "straight line"),
    ("01.exponential_schedule", lambda t, a, b, T: (a - b) * (1 - t / T) ** 2 + b,
     "same factor", "(1 - t/T) ** p"),
    ("01.exponential_schedule", lambda t, a, b, T: a * math.exp(-t / T),
     "ends at lr_end", "lr_end"),
    ("01.exponential_schedule", _exp_off_by_one, "ends at lr_end", "Off by one"),
    ("01.exponential_schedule", lambda t, a, b, T: a * 0.9 ** t, "not tied",
     "lr0, lr_end and T"),
    ("01.multistep_decay", lambda t, a, g, ms: a * t / 100, "never grows", "warmup"),
    ("01.multistep_decay", lambda t, a, g, ms: a * g ** -sum(t >= m for m in ms),
     "never grows", "only goes down"),
    ("01.multistep_decay", lambda t, a, g, ms: a * g ** sum(t > m for m in ms),
     "drops exactly", "<= t"),
    ("01.multistep_decay", lambda t, a, g, ms: a * g ** (t // ms[0]),
     "fixed period", "evenly spaced"),
    ("01.batch_size_for_noise", _bs_with_replacement, "without replacement",
     "finite-population factor"),
    ("01.batch_size_for_noise", _bs_unbiased, "population variance", "unbiased"),
    ("01.batch_size_for_noise", _bs_mean_over_coordinates, "all D coordinates",
     "averaged over the D"),
    ("01.batch_size_for_noise", _bs_norm_not_squared, "SQUARED norm", "not squared"),
    ("01.batch_size_for_noise", _bs_tol_alone, "SQUARED norm", "tol alone"),
    ("01.batch_size_for_noise", _bs_one_less, "not one off", "misses the target"),
    ("01.batch_size_for_noise", _bs_one_more, "not one off", "is not the smallest"),
    ("01.batch_size_for_noise", _bs_no_edge_cases, "same gradient", "B = 1"),
    ("01.batch_size_for_noise", _bs_inplace, "in place", "In-place"),
    ("01.adam_step", _adam_no_correction, "first step", "bias correction"),
    ("01.adam_step", _adam_t_from_zero, "first step", "do not add 1"),
    ("01.adam_step", _adam_stores_corrected, "moving averages", "raw average"),
    ("01.adam_step", _adam_abs, "moving averages", "SQUARED"),
    ("01.adam_step", _adam_eps_inside, "adds eps", "inside the square root"),
    ("01.adam_step", _adam_no_sqrt, "first step", "first step"),
    ("01.adam_step", _adam_inplace, "in place", "In-place"),
    ("01.adam_step", lambda w, m, v, g, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8:
     (w - lr * g, m, v), "first step", "sign of the gradient"),
    ("01.nesterov_step", _nesterov_heavy_ball, "look-ahead point", "heavy ball"),
    ("01.nesterov_step", _nesterov_behind, "look-ahead point", "behind w"),
    ("01.nesterov_step", _nesterov_plus, "carries a step", "climbs"),
    ("01.nesterov_step", _nesterov_old_velocity, "carries a step", "old velocity"),
    ("01.nesterov_step", _nesterov_two_calls, "once per step", "one gradient"),
    ("01.nesterov_step", _nesterov_inplace, "in place", "In-place"),
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
    """Are the seven questions of lesson 01 registered in order, each with three core
    cases?"""
    questions = {q.qid: q for q in questions_for_lesson("01")}
    assert list(questions) == list(REFERENCE)
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
                         ids=[f"{m[0]}-{m[2]}-{m[3]}" for m in MISTAKES])
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


@pytest.mark.parametrize("qid, wrong, case_word, hint_word", MISTAKES,
                         ids=[f"{m[0]}-{m[2]}-{m[3]}" for m in MISTAKES])
def test_typical_mistake_earns_no_full_core_credit(qid, wrong, case_word, hint_word):
    """Does every typical mistake that changes the values (not an in-place update, an
    extra call, the type of the loss returned or an edge case that generic data never
    reach) fail at least one core case?"""
    if case_word in ("in place", "once per step", "before the update", "not a tensor",
                     "same gradient"):
        pytest.skip("a side effect, a type or an edge case: the core values are right")
    result = run(qid, wrong)
    assert any(not c.passed for c in result.cases if c.kind == "core")


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_stub_reports_not_implemented_yet(qid):
    """Does a stub raising NotImplementedError score 0, as "not implemented yet"?"""
    result = run(qid, stub)
    assert result.score == 0
    assert result.status == NOT_IMPLEMENTED
    assert all(c.status == NOT_IMPLEMENTED for c in result.cases)


@pytest.mark.parametrize("qid, answer", [
    ("01.max_stable_lr", lambda X: 1.0),
    ("01.exponential_schedule", lambda t, a, b, T: a),
    ("01.multistep_decay", lambda t, a, g, ms: a),
    ("01.batch_size_for_noise", lambda G, tol: len(G)),
    ("01.batch_size_for_noise", lambda G, tol: 1),
    ("01.adam_step", lambda w, m, v, g, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8:
     (w, m, v)),
    ("01.nesterov_step", lambda grad_fn, w, v, lr, mu: (w, v)),
    ("01.torch_train", _train_own_sgd),
    ("01.torch_train", _train_manual_update),
], ids=["lr constant", "exp constant", "multistep constant", "batch size N",
         "batch size 1",
        "adam no step", "nesterov no step", "own SGD", "manual update"])
def test_answers_that_do_not_do_the_work_score_zero(qid, answer):
    """Does an answer that returns its input or a constant score 0?"""
    assert run(qid, answer).score == 0


def test_the_with_replacement_law_is_named_and_earns_nothing():
    """Does the plain 1/B law (no finite-population factor) fail its case, naming draws
    with replacement, and score 0 on the core cases?"""
    result = run("01.batch_size_for_noise", _bs_with_replacement)
    case = case_of(result, "draws the batch without replacement")
    assert not case.passed and "with replacement" in case.message
    assert result.score == 0


def test_the_batch_size_cases_are_not_near_a_tie():
    """Is every core problem's real-valued solution at least 0.02 away from a whole
    number, so that a closed form rounded up and a scan agree?"""
    from course_utils.grading.checks.lesson01 import batch_size_for_noise as module

    for seed, n, d, bias, tol in module.CORE:
        G = module._problem(seed, n, d, bias)
        g = G.mean(axis=0)
        sigma2 = ((G - g) ** 2).sum(axis=1).mean()
        real = sigma2 * n / (tol * (g @ g) * (n - 1) + sigma2)
        assert 0.02 < real - math.floor(real) < 0.98, (seed, real)
        answer = batch_size_for_noise(G, tol)
        assert module._reference(G, tol) == answer and answer not in (0, 1, 2, n)


def test_nesterov_core_cases_compare_with_torch_through_the_look_ahead_point():
    """Does the heavy ball (gradient at w) fail the torch core cases of Nesterov?"""
    result = run("01.nesterov_step", _nesterov_heavy_ball)
    torch_cases = [c for c in result.cases if "match" in c.name and "torch" in c.name
                   or "nesterov=True" in c.name]
    assert torch_cases and not any(c.passed for c in torch_cases)


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
    ("01.batch_size_for_noise", lambda G, tol: np.arange(len(G))),
    ("01.adam_step", lambda w, m, v, g, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8:
     (w[:1], m, v)),
    ("01.nesterov_step", lambda grad_fn, w, v, lr, mu: (w[:1], v)),
], ids=["batch size an array", "adam w[:1]", "nesterov w[:1]"])
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
    ("01.max_stable_lr", lambda X: 1 / np.linalg.eigvalsh(_hessian(X))[-1],
     "one number"),
    ("01.adam_step", _adam_eps_inside, "moving averages"),
    ("01.nesterov_step", _nesterov_heavy_ball, "carries a step"),
    ("01.batch_size_for_noise", _bs_with_replacement, "population variance"),
])
def test_a_mistake_does_not_fail_the_cases_about_other_mistakes(qid, wrong,
                                                                innocent_case):
    """Does one mistake leave the cases about other mistakes passing, so their hints do
    not blame the wrong thing?"""
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
    a = run("01.max_stable_lr", wrong).to_dict()
    b = run("01.max_stable_lr", wrong).to_dict()
    assert a == b


# -------------------------------------------------------------------------------- hints
ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01_gradient_descent.ipynb"


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
