"""Tests for course_utils.lessons.optim: gradients against finite differences, updates against torch.optim,
schedules against torch.optim.lr_scheduler and keras.optimizers.schedules."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from course_utils.lessons import optim
from course_utils.grading.asserts import numerical_gradient

T = 40  # steps of every schedule comparison


def _problem(seed=0, n=30, d=4):
    rng = np.random.default_rng(seed)
    X = optim.add_bias(rng.normal(size=(n, d - 1)))
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    return X, y, rng.normal(size=d)


def _torch_lrs(make_scheduler, lr0, steps=T):
    """The learning rate a torch scheduler gives at steps 0..steps-1."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr0)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return np.array(lrs)


# --------------------------------------------------------------------------- gradients
def test_mse_gradient_matches_finite_differences():
    """Is mse_gradient the gradient of mse_loss (the 2/N convention)?"""
    X, y, w = _problem()
    expected = numerical_gradient(lambda v: optim.mse_loss(v, X, y), w)
    np.testing.assert_allclose(optim.mse_gradient(w, X, y), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_logistic_gradient_matches_finite_differences(l2):
    """Is logistic_gradient the gradient of logistic_loss, with and without the L2 term?"""
    X, y, w = _problem(1)
    y = (y > 0).astype(float)
    expected = numerical_gradient(lambda v: optim.logistic_loss(v, X, y, l2), w)
    np.testing.assert_allclose(optim.logistic_gradient(w, X, y, l2), expected, rtol=1e-6, atol=1e-8)


def test_logistic_loss_matches_torch_bce():
    """Does logistic_loss equal torch's binary_cross_entropy_with_logits, also for huge logits?"""
    X, y, w = _problem(2)
    y = (y > 0).astype(float)
    w = 50 * w  # logits in the hundreds: a naive log(sigmoid) would give inf
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(X @ w), torch.tensor(y)).item()
    assert math.isclose(optim.logistic_loss(w, X, y), expected, rel_tol=1e-12)


def test_sigmoid_does_not_overflow():
    """Does sigmoid stay finite and exact at +-1000?"""
    out = optim.sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])


# --------------------------------------------------------------------------- update rules
def test_gd_step_does_not_modify_its_input():
    """Does gd_step return a new array and leave w as it was?"""
    w = np.array([1.0, 2.0])
    out = optim.gd_step(w, np.array([1.0, -1.0]), 0.5)
    np.testing.assert_array_equal(out, [0.5, 2.5])
    np.testing.assert_array_equal(w, [1.0, 2.0])


def test_gradient_descent_converges_on_a_quadratic():
    """Does gradient_descent reach the least-squares solution and return every iterate?"""
    X, y, w0 = _problem()
    L = 2 * np.linalg.eigvalsh(X.T @ X / len(y)).max()  # smoothness constant of the MSE
    traj = optim.gradient_descent(lambda w: optim.mse_gradient(w, X, y), w0, 1 / L, 2000)
    assert traj.shape == (2001, 4)
    np.testing.assert_array_equal(traj[0], w0)
    np.testing.assert_allclose(traj[-1], np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-8)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_step_matches_torch_sgd(nesterov):
    """Does momentum_step give torch.optim.SGD(momentum=0.9, nesterov=...)'s iterates?"""
    X, y, w0 = _problem(3)
    lr, beta = 0.05, 0.9
    w, u = w0.copy(), np.zeros_like(w0)  # u: PyTorch's momentum buffer
    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=beta, nesterov=nesterov)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(25):
        w, u = optim.momentum_step(w, u, optim.mse_gradient(w, X, y), lr, beta, nesterov=nesterov)
        opt.zero_grad()
        ((Xt @ p - yt) ** 2).mean().backward()
        opt.step()
    np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_adam_step_matches_torch_adam():
    """Does adam_step (with bias correction) give torch.optim.Adam's iterates?"""
    X, y, w0 = _problem(4)
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    p = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for t in range(1, 31):
        w, m, v = optim.adam_step(w, m, v, optim.mse_gradient(w, X, y), t, lr=0.1)
        opt.zero_grad()
        ((Xt @ p - yt) ** 2).mean().backward()
        opt.step()
    np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_adam_first_step_has_size_lr():
    """Is Adam's first step lr * sign(grad) (the point of bias correction)?"""
    grad = np.array([1e-3, -50.0])
    w, _, _ = optim.adam_step(np.zeros(2), np.zeros(2), np.zeros(2), grad, t=1, lr=0.1, eps=0.0)
    np.testing.assert_allclose(w, [-0.1, 0.1])


# --------------------------------------------------------------------------- schedules vs torch
def test_step_decay_matches_torch_steplr():
    """Does step_decay give StepLR's learning rates (constant within a step, then times gamma)?"""
    ours = [optim.step_decay(t, 0.1, 0.5, 7) for t in range(T)]
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5), 0.1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_exponential_decay_matches_torch_exponentiallr():
    """Does exponential_decay give ExponentialLR's learning rates lr0 * gamma^t?"""
    ours = [optim.exponential_decay(t, 0.1, 0.9) for t in range(T)]
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9), 0.1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_polynomial_decay_matches_torch_polynomiallr(power):
    """With lr_end=0, does polynomial_decay give PolynomialLR's learning rates, held at 0 after T?"""
    ours = [optim.polynomial_decay(t, 0.1, 30, power) for t in range(T)]
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=30, power=power), 0.1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("warmup", [2, 5])
def test_cosine_warmup_matches_torch_sequentiallr(warmup):
    """Does cosine_warmup equal SequentialLR(LinearLR warmup, CosineAnnealingLR) step by step?"""
    lr_max, lr_min, total = 0.1, 0.001, 30
    ours = [optim.cosine_warmup(t, lr_max, warmup, total, lr_min) for t in range(total + 1)]

    def make(o):
        sched = torch.optim.lr_scheduler
        return sched.SequentialLR(o, [
            sched.LinearLR(o, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1),
            sched.CosineAnnealingLR(o, T_max=total - warmup, eta_min=lr_min),
        ], milestones=[warmup])

    np.testing.assert_allclose(ours, _torch_lrs(make, lr_max, total + 1), rtol=1e-10)


def test_cosine_warmup_shape():
    """Does the warmup start at lr_max/T_w, peak at lr_max, pass the mean halfway and end at lr_min?"""
    lr = lambda t: optim.cosine_warmup(t, 1.0, 4, 24, 0.2)  # noqa: E731
    assert lr(0) == pytest.approx(0.25)
    assert lr(3) == pytest.approx(1.0) and lr(4) == pytest.approx(1.0)
    assert lr(14) == pytest.approx(0.6)
    assert lr(24) == pytest.approx(0.2) and lr(100) == pytest.approx(0.2)


# --------------------------------------------------------------------------- schedules vs keras
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return pytest.importorskip("keras")


def test_polynomial_decay_with_end_matches_keras(keras):
    """With lr_end > 0, does polynomial_decay equal keras.optimizers.schedules.PolynomialDecay?"""
    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, decay_steps=30, end_learning_rate=0.01, power=2.0)
    theirs = [float(schedule(t)) for t in range(T)]
    ours = [optim.polynomial_decay(t, 0.1, 30, 2.0, 0.01) for t in range(T)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # keras computes in float32


def test_step_decay_matches_keras_staircase(keras):
    """Is step decay keras's ExponentialDecay(staircase=True), and exponential decay its smooth form?"""
    stair = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=7, decay_rate=0.5, staircase=True)
    smooth = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.9)
    np.testing.assert_allclose([optim.step_decay(t, 0.1, 0.5, 7) for t in range(T)],
                               [float(stair(t)) for t in range(T)], rtol=1e-6)
    np.testing.assert_allclose([optim.exponential_decay(t, 0.1, 0.9) for t in range(T)],
                               [float(smooth(t)) for t in range(T)], rtol=1e-5)
