"""Tests of course_utils.lessons.mlp_numpy: lesson 02's hand-written backprop, against
finite differences and torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.lessons.mlp_numpy import (MLP, init_weight, linear_backward,
                                            linear_forward, log_softmax,
                                            numerical_gradient, relative_error,
                                            relu_backward, sgd_step, sigmoid_forward,
                                            softmax, softmax_cross_entropy)


def _batch(B=5, D=6, C=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, D)), rng.integers(0, C, size=B)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_mlp_gradients_pass_finite_difference_check(activation):
    """Do backprop's gradients of a 3-layer float64 MLP agree with central differences
    (relative error < 1e-6)?"""
    X, y = _batch()
    model = MLP([6, 7, 5, 4], activation=activation, init="xavier", seed=1,
                dtype=np.float64)
    for p in model.params.values():  # non-zero biases, so their gradients are exercised
        p += 0.1 * np.random.default_rng(2).standard_normal(p.shape)
    _, grads = model.loss_and_grads(X, y)
    for name, p in model.params.items():
        def loss(_):
            return softmax_cross_entropy(model.forward(X), y)[0]

        num = numerical_gradient(loss, p, delta=1e-6)
        assert relative_error(grads[name], num) < 1e-6, name


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_mlp_matches_torch(activation):
    """Do loss and every gradient match the same network in torch.autograd?"""
    X, y = _batch(B=8, D=10, C=3, seed=3)
    model = MLP([10, 16, 3], activation=activation, seed=4, dtype=np.float64)
    loss, grads = model.loss_and_grads(X, y)
    params_t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    act = torch.relu if activation == "relu" else torch.sigmoid
    h = act(torch.tensor(X) @ params_t["W1"] + params_t["b1"])
    logits = h @ params_t["W2"] + params_t["b2"]
    loss_t = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), abs=1e-12)
    for k, p in params_t.items():
        np.testing.assert_allclose(grads[k], p.grad.numpy(), atol=1e-12)


def test_linear_backward_shapes_and_values():
    """Does linear_backward return dX, dW, db shaped like X, W, b and equal to torch's
    gradients?"""
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    b, dZ = rng.standard_normal(2), rng.standard_normal((5, 2))
    dX, dW, db = linear_backward(dZ, X, W)
    assert (dX.shape, dW.shape, db.shape) == (X.shape, W.shape, b.shape)
    Xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
    (Xt @ Wt + bt).backward(torch.tensor(dZ))
    for ours, t in [(dX, Xt), (dW, Wt), (db, bt)]:
        np.testing.assert_allclose(ours, t.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(linear_forward(X, W, b), X @ W + b)


def test_relu_backward_masks_by_input_and_keeps_upstream():
    """Does relu_backward zero the gradient where Z <= 0 and leave dA untouched?"""
    Z = np.array([[-1.0, 0.0, 2.0]])
    dA = np.array([[5.0, 6.0, -7.0]])
    out = relu_backward(dA, Z)
    np.testing.assert_array_equal(out, [[0.0, 0.0, -7.0]])
    np.testing.assert_array_equal(dA, [[5.0, 6.0, -7.0]])


def test_softmax_cross_entropy_matches_torch():
    """Do the loss and (softmax - onehot)/B match torch's cross_entropy and gradient?"""
    rng = np.random.default_rng(5)
    logits, y = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
    loss, dlogits = softmax_cross_entropy(logits, y)
    lt = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(lt, torch.tensor(y))
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), abs=1e-12)
    np.testing.assert_allclose(dlogits, lt.grad.numpy(), atol=1e-12)


def test_log_softmax_is_stable_for_huge_logits():
    """Does log_softmax stay finite at logits of 1e4 (where a naive exp overflows)?"""
    logits = np.array([[1e4, 0.0, -1e4], [1000.0, 1000.0, 1000.0]])
    out = log_softmax(logits)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[1], np.log(1 / 3) * np.ones(3))
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0)
    loss, d = softmax_cross_entropy(logits.astype(np.float32), np.array([2, 0]))
    assert np.isfinite(loss) and np.isfinite(d).all()


def test_sigmoid_forward_is_stable():
    """Is sigmoid finite and exact at +-1000 and 0.5 at 0?"""
    np.testing.assert_array_equal(sigmoid_forward(np.array([-1000.0, 0.0, 1000.0])),
                                  [0.0, 0.5, 1.0])


@pytest.mark.parametrize("init,variance", [("he", 2 / 400),
                                           ("xavier", 2 / (400 + 200))])
def test_init_variances(init, variance):
    """Do He and Xavier weights have variance 2/fan_in and 2/(fan_in + fan_out)?"""
    W = init_weight(400, 200, init, rng=0, dtype=np.float64)
    assert W.shape == (400, 200)
    assert W.var() == pytest.approx(variance, rel=0.02)
    assert abs(W.mean()) < 0.01 * np.sqrt(variance) * 10


def test_init_rejects_unknown_scheme():
    """Does an unknown init name fail with the list of known ones?"""
    with pytest.raises(ValueError, match="he"):
        init_weight(3, 3, "kaiming")


def test_float32_model_stays_float32():
    """Do float32 inputs keep logits, gradients and parameters float32 after a step?"""
    X, y = _batch()
    model = MLP([6, 8, 4], seed=0)
    loss, grads = model.loss_and_grads(X.astype(np.float32), y)
    sgd_step(model.params, grads, lr=0.1)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(p.dtype == np.float32 for p in model.params.values())


def test_sgd_with_momentum_matches_torch():
    """Do three steps of sgd_step with momentum give torch.optim.SGD's parameters?"""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(3)
    params, velocity = {"w": w.copy()}, {}
    wt = torch.tensor(w, requires_grad=True)
    opt = torch.optim.SGD([wt], lr=0.1, momentum=0.9)
    for step in range(3):
        g = np.array([1.0, -2.0, 0.5]) * (step + 1)
        sgd_step(params, {"w": g}, lr=0.1, momentum=0.9, velocity=velocity)
        opt.zero_grad()
        wt.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(params["w"], wt.detach().numpy(), atol=1e-12)


def test_sgd_momentum_needs_velocity():
    """Does momentum without a velocity dict fail clearly?"""
    with pytest.raises(ValueError):
        sgd_step({"w": np.zeros(2)}, {"w": np.ones(2)}, lr=0.1, momentum=0.9)


def test_training_lowers_loss_and_fits_a_small_batch():
    """Do 100 SGD steps on 32 seeded examples fit them (loss < 0.05, accuracy 1)?"""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 20)).astype(np.float32), rng.integers(0, 5, 32)
    model = MLP([20, 64, 5], seed=0)
    first, _ = model.loss_and_grads(X, y)
    for _ in range(100):
        loss, grads = model.loss_and_grads(X, y)
        sgd_step(model.params, grads, lr=0.5)
    assert loss < min(0.05, first)
    assert model.accuracy(X, y) == 1.0


def test_numerical_gradient_is_central_and_restores_x():
    """Is numerical_gradient accurate to O(delta^2) on x^3, and is x left unchanged?"""
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    g = numerical_gradient(lambda v: (v ** 3).sum(), x, delta=1e-3)
    # exact for x^3 up to delta^2 = 1e-6; a forward difference is off by ~3 x delta
    np.testing.assert_allclose(g, 3 * before ** 2 + 1e-6, rtol=1e-9)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_takes_the_step_as_delta_eps_or_third_argument():
    """Do the step's three spellings (delta=, the former eps=, positional) agree, and is
    giving both names refused?"""
    x = np.array([0.3, -1.2])

    def f(v):
        return float(np.sin(v).sum())

    by_delta = numerical_gradient(f, x, delta=1e-2)
    np.testing.assert_array_equal(numerical_gradient(f, x, eps=1e-2), by_delta)
    np.testing.assert_array_equal(numerical_gradient(f, x, 1e-2), by_delta)
    assert not np.allclose(numerical_gradient(f, x), by_delta, rtol=1e-8, atol=0)
    with pytest.raises(TypeError):
        numerical_gradient(f, x, delta=1e-3, eps=1e-2)


def _lesson_cell(cell_id: str) -> str:
    import nbformat
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    path = root / "notebooks" / "02_backpropagation.ipynb"
    return next(c.source for c in nbformat.read(path, as_version=4).cells
                if c.get("id") == cell_id)


@pytest.mark.parametrize("cell_id,names", [
    ("cell-19-layers", ["linear_forward", "linear_backward", "relu_forward",
                        "relu_backward"]),
    ("cell-21-sce-code", ["log_softmax", "softmax", "softmax_cross_entropy"]),
    ("cell-26-gc-code", ["relative_error"]),
])
def test_the_lesson_shows_the_librarys_code(cell_id, names):
    """Is each function the lesson writes out in Sections 4-5 the library's, line for
    line (the lesson says so)?"""
    import inspect

    from course_utils.lessons import mlp_numpy

    source = _lesson_cell(cell_id)
    for name in names:
        assert inspect.getsource(getattr(mlp_numpy, name)) in source + "\n", name


def test_the_lessons_numerical_gradient_computes_the_librarys():
    """Does the lesson's numerical_gradient (the library's without the former name eps)
    give the library's numbers?"""
    from typing import Callable

    namespace = {"np": np, "Callable": Callable}
    exec(_lesson_cell("cell-26-gc-code"), namespace)
    x = np.array([[0.2, -0.7], [1.1, 0.4]])

    def f(v):
        return float(np.exp(v).sum() + (v ** 3).sum())

    np.testing.assert_array_equal(namespace["numerical_gradient"](f, x.copy(), 1e-4),
                                  numerical_gradient(f, x.copy(), 1e-4))


def test_relative_error():
    """Is the relative error 0 for equal vectors and two zeros, 1 for opposite ones?"""
    a = np.array([1.0, 2.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert relative_error(a, -a) == pytest.approx(1.0)


def test_predict_in_chunks_matches_one_pass():
    """Does predict in chunks give the argmax of one full forward pass?"""
    X, _ = _batch(B=50)
    model = MLP([6, 8, 4], seed=0, dtype=np.float64)
    np.testing.assert_array_equal(model.predict(X, batch_size=7),
                                  model.forward(X).argmax(axis=1))
