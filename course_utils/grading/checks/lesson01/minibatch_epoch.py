"""Checks of 01.minibatch_epoch: One epoch of mini-batch SGD."""
from __future__ import annotations

import math

import numpy as np

from ...asserts import CheckFailure, call, expect_close, expect_shape, to_numpy
from ...registry import question


q = question("01.minibatch_epoch", "One epoch of mini-batch SGD",
             answers=["minibatch_epoch"], timeout=10)


def _mse_grad(w, X, y):
    """The mean gradient of the MSE over the batch it is given, (D,)."""
    return 2.0 / len(y) * X.T @ (X @ w - y)


def _reference(grad_fn, w0, X, y, lr, batch_size, order):
    w = np.array(w0, dtype=np.float64)
    trajectory = [w]
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]  # (B,), the last batch may be smaller
        w = w - lr * grad_fn(w, X[idx], y[idx])
        trajectory.append(w)
    return np.stack(trajectory)  # (ceil(N / B) + 1, D)


def _problem(seed: int, n: int, d: int):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    return np.zeros(d), X, y, rng.permutation(n)


def _run(fn, grad_fn, w0, X, y, lr, B, order, check_mutation=True) -> np.ndarray:
    got = call(fn, grad_fn, w0, X, y, lr, B, order, check_mutation=check_mutation,
               name="minibatch_epoch")
    rows = math.ceil(len(y) / B) + 1
    if got is None:
        raise CheckFailure("minibatch_epoch returned None: return the trajectory.",
                           basic=True)
    got = np.asarray(to_numpy(got) if hasattr(got, "shape") else got, dtype=np.float64)
    if got.ndim == 2 and got.shape[1] == X.shape[1] and got.shape[0] != rows:
        n_rows = got.shape[0]
        if n_rows == 2:
            why = ("one update per epoch: you summed or averaged the batch gradients "
                   "and stepped once at the end, which is batch gradient descent, not "
                   "mini-batch SGD")
        elif n_rows == rows - 1 and len(y) % B:
            why = "the last, smaller batch is missing (or w0 is)"
        else:
            why = "one row for w0 and one per update are expected"
        # basic: shown once, with the diagnosis in the message, not under every case
        raise CheckFailure(f"With N = {len(y)} and B = {B} your trajectory has "
                           f"{n_rows} rows, not ceil(N / B) + 1 = {rows}: {why}.",
                           basic=True)
    expect_shape(got, (rows, X.shape[1]), what="the trajectory")
    return got


@q.case("updates after each batch, the last smaller batch included",
        hint="Mini-batch SGD takes one step per batch: ceil(N / B) updates per epoch, "
             "the last batch holding the N mod B leftover examples. One step after all "
             "batches is batch gradient descent.")
def _(minibatch_epoch):
    w0, X, y, order = _problem(0, 10, 3)
    _run(minibatch_epoch, _mse_grad, w0, X, y, 0.05, 4, order)


@q.case("visits the examples in the order given",
        hint="Batch k is X[order[k*B:(k+1)*B]]: index X and y with the shuffled order, "
             "not with range(N).")
def _(minibatch_epoch):
    w0, X, y, order = _problem(1, 9, 2)
    got = _run(minibatch_epoch, _mse_grad, w0, X, y, 0.1, 3, order)
    unshuffled = _reference(_mse_grad, w0, X, y, 0.1, 3, np.arange(9))
    if np.allclose(got, unshuffled) and not np.allclose(got, _reference(
            _mse_grad, w0, X, y, 0.1, 3, order)):
        raise CheckFailure("Your trajectory is the one of the examples in their stored "
                           "order 0, 1, 2, ...: the order argument is ignored.")


@q.case("steps by lr times the batch's mean gradient",
        hint="grad_fn already returns the MEAN gradient over the batch it is given: "
             "do not divide by B again, and do not multiply by B.")
def _(minibatch_epoch):
    w0, X, y, order = _problem(2, 8, 2)
    got = _run(minibatch_epoch, _mse_grad, w0, X, y, 0.1, 4, order)
    for what, factor in [("divided by B once more", 1 / 4), ("multiplied by B", 4)]:
        slip = _reference(_mse_grad, w0, X, y, 0.1 * factor, 4, order)
        if np.allclose(got, slip):
            raise CheckFailure(f"Your steps are those of the mean gradient {what}.")


@q.case("each update uses the gradient at the current weights",
        hint="Evaluate grad_fn at the weights after the previous update, not at w0 for "
             "every batch.")
def _(minibatch_epoch):
    w0, X, y, order = _problem(3, 12, 2)
    got = _run(minibatch_epoch, _mse_grad, w0, X, y, 0.1, 3, order)
    w, frozen = w0.copy(), [w0.copy()]
    for start in range(0, 12, 3):
        idx = order[start:start + 3]
        w = w - 0.1 * _mse_grad(w0, X[idx], y[idx])
        frozen.append(w)
    if np.allclose(got, np.stack(frozen)):
        raise CheckFailure("Every one of your updates uses the gradient at w0.")


@q.case("does not change w0, X, y or order in place", kind="property",
        hint="In-place update: `w -= ...` on w0 or shuffling `order` changes the "
             "caller's arrays. Build new ones.")
def _(minibatch_epoch):
    w0, X, y, order = _problem(4, 6, 2)
    w0 = np.array([0.5, -0.5])
    _run(minibatch_epoch, _mse_grad, w0, X, y, 0.1, 4, order)


_HINT = ("For each batch of B indices of order, in turn: one step of lr times grad_fn "
         "at the current weights on that batch; keep w0 and every new w.")


@q.case("matches the reference (N = 10, B = 3)", kind="core", hint=_HINT)
def _(minibatch_epoch):
    w0, X, y, order = _problem(5, 10, 3)
    got = _run(minibatch_epoch, _mse_grad, w0, X, y, 0.05, 3, order, False)
    expect_close(got, _reference(_mse_grad, w0, X, y, 0.05, 3, order),
                 what="the trajectory")


@q.case("matches the reference with B = 1 (stochastic gradient descent)", kind="core",
        hint=_HINT)
def _(minibatch_epoch):
    w0, X, y, order = _problem(6, 7, 2)
    w0 = np.array([1.0, -2.0])
    got = _run(minibatch_epoch, _mse_grad, w0, X, y, 0.02, 1, order, False)
    expect_close(got, _reference(_mse_grad, w0, X, y, 0.02, 1, order),
                 what="the trajectory")


@q.case("matches the reference on a logistic gradient (N = 16, B = 5)", kind="core",
        hint=_HINT)
def _(minibatch_epoch):
    from course_utils.lessons import optim

    rng = np.random.default_rng(7)
    X = np.hstack([rng.normal(size=(16, 2)), np.ones((16, 1))])  # (N, D)
    y = (rng.random(16) < 0.5).astype(np.float64)  # (N,)
    w0, order = np.array([0.2, -0.1, 0.0]), rng.permutation(16)
    got = _run(minibatch_epoch, optim.logistic_gradient, w0, X, y, 0.5, 5, order, False)
    expect_close(got, _reference(optim.logistic_gradient, w0, X, y, 0.5, 5, order),
                 what="the trajectory")
