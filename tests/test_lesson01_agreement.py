"""Lesson 01's claim, tested: NumPy, PyTorch (autograd + torch.optim.SGD) and Keras 3
(keras.optimizers.SGD, TensorFlow backend) give the same trajectory from the same start, for plain
gradient descent, momentum and Nesterov; and where their momentum formulations part ways."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from course_utils.lessons import optim

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

NUM_STEPS = 40
# Keras keeps the learning rate in a float32 variable and casts the momentum (a Python float) through
# float32, so 0.05 becomes 0.0500000007 and 0.9 becomes 0.8999999762. Dyadic values are exact in both.
LR, MOMENTUM = 0.0625, 0.875


@pytest.fixture(scope="module")
def data():
    """The lesson's regression table: diabetes (Efron et al. 2004), standardized, 100 rows."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:100], y[:100]
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    w0 = np.random.default_rng(0).normal(scale=0.5, size=X.shape[1] + 1)  # (D + 1,), the last is the bias
    return X, y, w0


def numpy_trajectory(X, y, w0, lrs, momentum=0.0, nesterov=False, loss="mse"):
    """Weights after each step, (num_steps + 1, D + 1): the lesson's NumPy code."""
    grad_fn = optim.mse_gradient if loss == "mse" else optim.logistic_gradient
    Xb = optim.add_bias(X)
    w, u = w0.copy(), np.zeros_like(w0)  # u: PyTorch's momentum buffer
    trajectory = [w]
    for lr in lrs:
        w, u = optim.momentum_step(w, u, grad_fn(w, Xb, y), lr, momentum, nesterov)
        trajectory.append(w)
    return np.stack(trajectory)


def torch_trajectory(X, y, w0, lr, num_steps, momentum=0.0, nesterov=False, gamma=None, loss="mse"):
    """The same with nn.Linear, autograd and torch.optim.SGD (float64); ``gamma``: an ExponentialLR."""
    model = torch.nn.Linear(X.shape[1], 1, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w0[None, :-1]))
        model.bias.copy_(torch.tensor(w0[-1:]))
    loss_fn = torch.nn.MSELoss() if loss == "mse" else torch.nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=nesterov)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma) if gamma else None
    Xt, yt = torch.tensor(X), torch.tensor(y)[:, None]  # (N, D), (N, 1)
    trajectory = [w0]
    for _ in range(num_steps):
        optimizer.zero_grad()
        loss_fn(model(Xt), yt).backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        trajectory.append(np.append(model.weight.detach().numpy()[0], model.bias.detach().numpy()))
    return np.stack(trajectory)


def keras_trajectory(X, y, w0, lr, num_steps, momentum=0.0, nesterov=False, gamma=None, loss="mse"):
    """The same with a float64 Dense layer, tf.GradientTape and keras.optimizers.SGD."""
    model = keras.Sequential([keras.Input((X.shape[1],), dtype="float64"), keras.layers.Dense(1, dtype="float64")])
    model.set_weights([w0[:-1, None], w0[-1:]])
    if gamma:
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=1, decay_rate=gamma)
    optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=momentum, nesterov=nesterov)
    # Keras losses compute in floatx (float32) unless told otherwise.
    loss_fn = (keras.losses.MeanSquaredError(dtype="float64") if loss == "mse"
               else keras.losses.BinaryCrossentropy(from_logits=True, dtype="float64"))
    Xk, yk = tf.constant(X), tf.constant(y[:, None])
    trajectory = [w0]
    for _ in range(num_steps):
        with tf.GradientTape() as tape:
            loss_value = loss_fn(yk, model(Xk))
        grads = tape.gradient(loss_value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        kernel, bias = model.get_weights()
        trajectory.append(np.append(kernel[:, 0], bias))
    return np.stack(trajectory)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (MOMENTUM, False), (MOMENTUM, True)],
                         ids=["plain", "momentum", "nesterov"])
def test_numpy_torch_keras_give_the_same_trajectory(data, momentum, nesterov):
    """From the same start, do NumPy, torch and Keras take the same steps (to rounding)?"""
    X, y, w0 = data
    ours = numpy_trajectory(X, y, w0, [LR] * NUM_STEPS, momentum, nesterov)
    theirs_torch = torch_trajectory(X, y, w0, LR, NUM_STEPS, momentum, nesterov)
    theirs_keras = keras_trajectory(X, y, w0, LR, NUM_STEPS, momentum, nesterov)
    assert np.abs(ours[-1] - ours[0]).max() > 0.1  # the weights really moved
    np.testing.assert_allclose(theirs_torch, ours, rtol=0, atol=1e-12)
    np.testing.assert_allclose(theirs_keras, ours, rtol=0, atol=1e-12)


def test_logistic_regression_trajectories_agree(data):
    """With the cross-entropy loss, do the three frameworks agree as well?"""
    X, y, w0 = data
    labels = (y > 0).astype(np.float64)
    ours = numpy_trajectory(X, labels, w0, [LR] * NUM_STEPS, MOMENTUM, loss="logistic")
    np.testing.assert_allclose(torch_trajectory(X, labels, w0, LR, NUM_STEPS, MOMENTUM, loss="logistic"),
                               ours, rtol=0, atol=1e-12)
    np.testing.assert_allclose(keras_trajectory(X, labels, w0, LR, NUM_STEPS, MOMENTUM, loss="logistic"),
                               ours, rtol=0, atol=1e-10)  # keras clips probabilities only in the non-logit path


def test_float32_hyperparameters_explain_the_keras_gap(data):
    """With lr = 0.05 and momentum = 0.9 (not exact in float32), is Keras off by ~1e-7 while torch is exact?"""
    X, y, w0 = data
    ours = numpy_trajectory(X, y, w0, [0.05] * NUM_STEPS, 0.9)
    np.testing.assert_allclose(torch_trajectory(X, y, w0, 0.05, NUM_STEPS, 0.9), ours, rtol=0, atol=1e-12)
    gap = np.abs(keras_trajectory(X, y, w0, 0.05, NUM_STEPS, 0.9) - ours).max()
    assert 1e-12 < gap < 1e-5


def test_keras_and_torch_momentum_differ_once_the_learning_rate_changes(data):
    """Keras folds lr into the velocity when a gradient arrives, torch applies today's lr to the whole
    velocity: equal for a constant lr, different under a schedule. Does each match its own formula?"""
    X, y, w0 = data
    gamma = 0.9
    lrs = [LR * gamma**t for t in range(NUM_STEPS)]
    torch_traj = torch_trajectory(X, y, w0, LR, NUM_STEPS, MOMENTUM, gamma=gamma)
    keras_traj = keras_trajectory(X, y, w0, LR, NUM_STEPS, MOMENTUM, gamma=gamma)
    np.testing.assert_allclose(torch_traj, numpy_trajectory(X, y, w0, lrs, MOMENTUM), rtol=0, atol=1e-12)

    # Keras: v = momentum * v - lr_t * g;  w = w + v (v: the velocity, the step itself).
    Xb, w, v = optim.add_bias(X), w0.copy(), np.zeros_like(w0)
    keras_formula = [w]
    for lr in lrs:
        v = MOMENTUM * v - lr * optim.mse_gradient(w, Xb, y)
        w = w + v
        keras_formula.append(w)
    # Keras evaluates ExponentialDecay in float32, hence 1e-6 here; the two frameworks differ by far more.
    np.testing.assert_allclose(keras_traj, np.stack(keras_formula), rtol=0, atol=1e-6)
    assert np.abs(keras_traj - torch_traj).max() > 1e-2


def test_torch_nesterov_iterates_are_sutskever_lookahead_points(data):
    """Are torch's nesterov=True weights the look-ahead points theta + beta * v of Sutskever et al.
    (2013)?"""
    X, y, w0 = data
    Xb = optim.add_bias(X)
    theta, v = w0.copy(), np.zeros_like(w0)
    lookahead = [theta + MOMENTUM * v]
    for _ in range(NUM_STEPS):
        v = MOMENTUM * v - LR * optim.mse_gradient(theta + MOMENTUM * v, Xb, y)  # gradient at the look-ahead
        theta = theta + v
        lookahead.append(theta + MOMENTUM * v)
    np.testing.assert_allclose(torch_trajectory(X, y, w0, LR, NUM_STEPS, MOMENTUM, nesterov=True),
                               np.stack(lookahead), rtol=0, atol=1e-12)


def test_sutskever_nesterov_look_ahead_points_are_torch_iterates():
    """Are torch.optim.SGD(nesterov=True)'s iterates Sutskever et al.'s theta + beta v
    (lesson 01, section 6)?"""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(3, 3))
    hessian = M @ M.T + np.eye(3)  # (3, 3), positive definite: the loss is 1/2 w^T hessian w
    lr, beta = 0.05, 0.9
    theta, v = np.array([1.0, -2.0, 0.5]), np.zeros(3)
    p = torch.tensor(theta.copy(), requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr, momentum=beta, nesterov=True)
    for _ in range(30):
        v = beta * v - lr * hessian @ (theta + beta * v)
        theta = theta + v
        opt.zero_grad()
        (0.5 * p @ torch.tensor(hessian) @ p).backward()
        opt.step()
        np.testing.assert_allclose(theta + beta * v, p.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
