"""Checks of lesson 01 (gradient descent): one question per ``q = question(...)``.

The reference answers are ``course_utils.optim`` (the code the lesson teaches). Each typical
mistake has its own case, built so that the mistake fails it and the hint names the mistake; the
last case of a question compares everything with the reference.
"""
from __future__ import annotations

import numpy as np

from course_utils import optim

from ..asserts import CheckFailure, call, expect_close, expect_finite, expect_shape, to_numpy
from ..registry import question


def _linear_problem(seed: int, n: int = 7, d: int = 3):
    """A seeded regression problem with N != D (so a transposed X cannot go unnoticed)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n)
    w = rng.normal(size=d)
    return w, X, y


def _scale(got, ref) -> float:
    """The factor r with got ~= r * ref (least squares), to tell a missing 1/N or 2 from a wrong formula."""
    got = to_numpy(got).astype(np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    return float(got @ ref / (ref @ ref))


def _vector(got, d: int, what: str) -> np.ndarray:
    """``got`` as a float64 vector of shape (d,); a wrong shape fails with a note that it must be fixed first."""
    try:
        expect_shape(got, (d,), what=what)
    except CheckFailure as failure:
        raise CheckFailure(f"{failure} This case can only be judged once the shape is right: fix the shape "
                           "first (see the shape case).") from None
    expect_finite(got, what=what)
    return to_numpy(got).astype(np.float64)


# =========================================================================== 01.mse_gradient
q = question("01.mse_gradient", "Gradient of the mean squared error", answers=["mse_gradient"])


@q.case("returns a vector of shape (D,) for X of shape (N, D) with N != D",
        hint="Transposed X, or a sum/mean over the wrong axis? With residual = X @ w - y of shape (N,), the "
             "gradient sums over the examples (axis 0): X.T @ residual, (D, N) @ (N,) -> (D,).")
def _(mse_gradient):
    w, X, y = _linear_problem(0)
    expect_shape(call(mse_gradient, w, X, y), (3,), what="your gradient")


@q.case("points uphill: moving along it increases the loss",
        hint="Wrong sign: the residual is (X @ w - y), prediction minus target. The gradient points uphill; "
             "gradient descent subtracts it later.")
def _(mse_gradient):
    w, X, y = _linear_problem(1)
    got = _vector(call(mse_gradient, w, X, y), 3, "your gradient")
    if _scale(got, optim.mse_gradient(w, X, y)) <= 0:
        raise CheckFailure("Your gradient points downhill (opposite to the true gradient).")


def _check_one_over_n(got, ref, n: int) -> None:
    """Fail if ``got`` is ~N times (1/N missing) or ~1/N times (1/N applied twice) the true gradient."""
    r = _scale(got, ref)
    if abs(r) > 5:
        raise CheckFailure(f"With N = {n} your gradient is {r:.3g} times the true one: it grows with N.")
    if abs(r * n - 1) < 0.1:
        raise CheckFailure(f"With N = {n} your gradient is 1/{n} of the true one: divided by N twice?")


@q.case("averages over the N examples (the 1/N of the mean, once)",
        hint="Missing 1/N (or 1/N applied twice): the loss is a mean, so divide the sum over examples by "
             "N = len(y), once.")
def _(mse_gradient):
    w, X, y = _linear_problem(2, n=50)
    got = _vector(call(mse_gradient, w, X, y), 3, "your gradient")
    _check_one_over_n(got, optim.mse_gradient(w, X, y), 50)


@q.case("has the factor 2 of the stated convention L = (1/N) ||X w - y||^2",
        hint="Missing factor 2: d/dw (1/N)||Xw - y||^2 = (2/N) X^T (Xw - y). The 1/2 convention belongs to a "
             "loss written with 1/(2N); ours has none.")
def _(mse_gradient):
    w, X, y = _linear_problem(3)
    got = _vector(call(mse_gradient, w, X, y), 3, "your gradient")
    r = _scale(got, optim.mse_gradient(w, X, y))
    if abs(r - 0.5) < 0.05:
        raise CheckFailure("Your gradient is half the true one.")


@q.case("equals (2/N) X^T (X w - y) on random data (checked by finite differences too)",
        hint="Write it as 2 / len(y) * X.T @ (X @ w - y), and return it (do not modify w, X or y).")
def _(mse_gradient):
    w, X, y = _linear_problem(4, n=11, d=4)
    got = call(mse_gradient, w, X, y)
    expect_close(got, optim.mse_gradient(w, X, y), rtol=1e-6, atol=1e-9, what="your gradient")


# =========================================================================== 01.gd_step
q = question("01.gd_step", "One gradient-descent step", answers=["gd_step"])


@q.case("moves against the gradient (downhill)",
        hint="Wrong sign: gradient descent subtracts the gradient (w - lr * grad); adding it climbs uphill.")
def _(gd_step):
    w, grad = np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.0, -4.0])
    got = _vector(call(gd_step, w.copy(), grad, 0.1, check_mutation=False), 3, "w after one step")
    step = got - w  # (D,)
    if step @ grad >= 0:
        raise CheckFailure(f"From w = {w.tolist()} with grad = {grad.tolist()} and lr = 0.1 your step is "
                           f"{np.round(step, 6).tolist()}: it does not go against the gradient.")


@q.case("scales the step by the learning rate: returns w - lr * grad",
        hint="The step is lr * grad: multiply the gradient by lr (and do not divide by it, or forget it).")
def _(gd_step):
    w, grad = np.zeros(2), np.array([1.0, -1.0])
    got = call(gd_step, w.copy(), grad, 0.25, check_mutation=False)
    expect_close(got, np.array([-0.25, 0.25]), what="w after one step with lr = 0.25")


@q.case("returns a new array and leaves the input w unchanged",
        hint="In-place update: `w -= lr * grad` changes the caller's array (and every trajectory row that "
             "points to it). Return `w - lr * grad`, a new array.")
def _(gd_step):
    w = np.array([1.0, 2.0])
    call(gd_step, w, np.array([1.0, 1.0]), 0.1)  # call() fails if w changed in place


# =========================================================================== 01.gradient_descent
q = question("01.gradient_descent", "The gradient-descent loop", answers=["gradient_descent"])

_A = np.diag([1.0, 10.0])  # f(w) = 1/2 w^T A w: an ill-conditioned bowl, minimum at 0, L = 10


def _quadratic_grad(w):
    return _A @ w


@q.case("returns num_steps + 1 rows, the first being w0",
        hint="Return the whole trajectory, one row per iterate: start with w0 itself, then append the weights "
             "after each of the num_steps updates (num_steps + 1 rows in all; off by one if w0 or a step is missing).")
def _(gradient_descent):
    w0 = np.array([1.0, 1.0])
    got = call(gradient_descent, _quadratic_grad, w0.copy(), 0.05, 5, check_mutation=False)
    if np.ndim(got) == 1:
        raise CheckFailure(f"Your function returned one vector of shape {np.shape(got)}, the final weights only; "
                           "expected the trajectory of shape (6, 2) (num_steps + 1 rows).")
    expect_shape(np.asarray(got), (6, 2), what="your trajectory")
    expect_close(np.asarray(got)[0], w0, what="row 0 of your trajectory (it should be w0)")


@q.case("stores a copy of the weights at every step (rows differ)",
        hint="In-place update: `w -= lr * g` then `trajectory.append(w)` appends the same array again and "
             "again, so every row ends up equal to the last one. Use `w = w - lr * g`.")
def _(gradient_descent):
    got = np.asarray(call(gradient_descent, _quadratic_grad, np.array([1.0, 1.0]), 0.05, 3, check_mutation=False))
    if got.ndim == 2 and len(got) > 1 and np.allclose(got[0], got[-1]):
        raise CheckFailure("The first and the last rows of your trajectory are equal, although the weights moved.")


@q.case("does not change w0 in place",
        hint="In-place update of w0: copy it first (`w = np.array(w0, dtype=float)`) or use `w = w - lr * g`.")
def _(gradient_descent):
    call(gradient_descent, _quadratic_grad, np.array([1.0, 1.0]), 0.05, 3)


@q.case("matches the reference trajectory step by step",
        hint="Each step is w = w - lr * grad_fn(w), with the gradient taken at the current w.")
def _(gradient_descent):
    w0 = np.array([2.0, -1.0])
    got = call(gradient_descent, _quadratic_grad, w0.copy(), 0.15, 10, check_mutation=False)
    expected = optim.gradient_descent(_quadratic_grad, w0, 0.15, 10)
    expect_close(np.asarray(got, dtype=np.float64), expected, rtol=1e-7, atol=1e-10, what="your trajectory")


@q.case("converges to the minimum of an ill-conditioned quadratic with lr = 1/L",
        hint="With lr = 1/L = 0.1 and 300 steps the last row should be within 1e-6 of the minimum (0, 0): "
             "check the sign of the update and that you return every step.")
def _(gradient_descent):
    got = np.asarray(call(gradient_descent, _quadratic_grad, np.array([3.0, 3.0]), 0.1, 300, check_mutation=False))
    expect_finite(got, what="your trajectory")
    expect_close(got[-1], np.zeros(2), atol=1e-6, what="the last row of your trajectory")


# =========================================================================== 01.logistic_gradient
q = question("01.logistic_gradient", "Gradient of the logistic loss", answers=["logistic_gradient"])


def _logistic_problem(seed: int, n: int = 9, d: int = 3, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(np.float64)
    w = scale * rng.normal(size=d)
    return w, X, y


@q.case("returns a vector of shape (D,) for X of shape (N, D) with N != D",
        hint="Transposed X, or a sum/mean over the wrong axis? The gradient sums over the examples (axis 0): "
             "X.T @ (sigmoid(X @ w) - y), (D, N) @ (N,) -> (D,).")
def _(logistic_gradient):
    w, X, y = _logistic_problem(0)
    expect_shape(call(logistic_gradient, w, X, y), (3,), what="your gradient")


@q.case("points uphill: moving along it increases the loss",
        hint="Wrong sign: the error is (sigmoid(X @ w) - y), prediction minus label.")
def _(logistic_gradient):
    w, X, y = _logistic_problem(1)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    if _scale(got, optim.logistic_gradient(w, X, y)) <= 0:
        raise CheckFailure("Your gradient points downhill (opposite to the true gradient).")


@q.case("averages over the N examples (the 1/N of the mean, once)",
        hint="Missing 1/N (or 1/N applied twice): the loss is the mean cross-entropy, so divide by N = len(y), once.")
def _(logistic_gradient):
    w, X, y = _logistic_problem(2, n=60)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    _check_one_over_n(got, optim.logistic_gradient(w, X, y), 60)


@q.case("passes the logits through the sigmoid (large weights)",
        hint="Forgot the sigmoid: the prediction is sigmoid(X @ w), a probability, not the logit X @ w.")
def _(logistic_gradient):
    w, X, y = _logistic_problem(3, scale=4.0)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    if np.allclose(got, X.T @ (X @ w - y) / len(y), rtol=1e-6):
        raise CheckFailure("Your gradient is X.T @ (X @ w - y) / N, the one of a linear model.")


@q.case("is the cross-entropy gradient: no factor 2 and no extra sigmoid derivative",
        hint="Squared-error habits: for the cross-entropy dl_i/dz_i = p_i - y_i exactly (sigma'(z) = p(1 - p) "
             "cancels against the derivative of the log), so there is no factor 2 and no extra p * (1 - p).")
def _(logistic_gradient):
    w, X, y = _logistic_problem(5, n=11, d=3, scale=2.0)
    got = _vector(call(logistic_gradient, w, X, y), 3, "your gradient")
    p = optim.sigmoid(X @ w)  # (N,)
    slips = {
        "2 times the true one (a factor 2 from the squared error)": 2 * X.T @ (p - y) / len(y),
        "X.T @ ((p - y) * p * (1 - p)) / N (an extra sigmoid derivative, the gradient of a squared error on p)":
            X.T @ ((p - y) * p * (1 - p)) / len(y),
        "2 X.T @ ((p - y) * p * (1 - p)) / N (the gradient of the mean squared error on p)":
            2 * X.T @ ((p - y) * p * (1 - p)) / len(y),
    }
    for what, slip in slips.items():
        if np.allclose(got, slip, rtol=1e-6, atol=1e-12):
            raise CheckFailure(f"Your gradient is {what}.")


@q.case("equals (1/N) X^T (sigmoid(X w) - y) (checked by finite differences too)",
        hint="Write it as X.T @ (sigmoid(X @ w) - y) / len(y).")
def _(logistic_gradient):
    w, X, y = _logistic_problem(4, n=13, d=4)
    got = call(logistic_gradient, w, X, y)
    expect_close(got, optim.logistic_gradient(w, X, y), rtol=1e-6, atol=1e-9, what="your gradient")


# =========================================================================== schedules
def _lrs(fn, ts, *args):
    return np.array([float(call(fn, t, *args)) for t in ts])


q = question("01.exponential_decay", "Exponential learning-rate decay", answers=["exponential_decay"])


@q.case("starts at lr0 (t = 0)", hint="At t = 0 no decay has happened yet: gamma ** 0 = 1.")
def _(exponential_decay):
    expect_close(float(call(exponential_decay, 0, 0.1, 0.9)), 0.1, what="exponential_decay(0, 0.1, 0.9)")


@q.case("shrinks by the same factor gamma at every step (lr_{t+1} / lr_t = gamma)",
        hint="Polynomial, not exponential: lr0 * t ** gamma or lr0 / (1 + t) ** gamma change by a factor "
             "that depends on t. In an exponential decay t is the exponent: lr0 * gamma ** t.")
def _(exponential_decay):
    lrs = _lrs(exponential_decay, range(0, 30), 0.1, 0.9)
    expect_finite(lrs, what="your learning rates")
    ratios = lrs[1:] / lrs[:-1]
    if not np.allclose(ratios, ratios[0], rtol=1e-6):
        raise CheckFailure(f"The ratio lr_(t+1) / lr_t goes from {ratios[0]:.4g} (t = 0) to {ratios[-1]:.4g} "
                           "(t = 28): it is not constant.")


@q.case("uses gamma as the factor per step, lr0 * gamma ** t",
        hint="gamma is the factor per step: use gamma ** t, not exp(-gamma * t) or (1 - gamma) ** t.")
def _(exponential_decay):
    expect_close(_lrs(exponential_decay, [0, 1, 5, 20, 100], 0.5, 0.95),
                 np.array([optim.exponential_decay(t, 0.5, 0.95) for t in [0, 1, 5, 20, 100]]),
                 rtol=1e-9, what="your learning rates at t = 0, 1, 5, 20, 100")


q = question("01.step_decay", "Step learning-rate decay", answers=["step_decay"])


@q.case("never grows with t", hint="A step decay that grows with t: the exponent of gamma (< 1) must be "
                                   "floor(t / step_size) >= 0, not its negative or t * step_size.")
def _(step_decay):
    lrs = _lrs(step_decay, range(40), 0.1, 0.5, 10)
    expect_finite(lrs, what="your learning rates")
    if (np.diff(lrs) > 1e-15).any():
        t = int(np.argmax(np.diff(lrs) > 1e-15))
        raise CheckFailure(f"Your learning rate grows from t = {t} ({lrs[t]:.4g}) to t = {t + 1} ({lrs[t + 1]:.4g}).")


@q.case("is constant within each block of step_size steps",
        hint="Missing floor: gamma ** (t / step_size) decays smoothly; step decay uses whole blocks, "
             "gamma ** (t // step_size).")
def _(step_decay):
    lrs = _lrs(step_decay, range(10, 20), 0.1, 0.5, 10)
    if not np.allclose(lrs, lrs[0], rtol=1e-12):
        raise CheckFailure(f"From t = 10 to t = 19 your learning rate goes from {lrs[0]:.4g} to {lrs[-1]:.4g}; "
                           "it should stay put.")


@q.case("drops exactly at t = step_size, 2 * step_size, ...",
        hint="Off by one: the first drop is at t = step_size (floor(10 / 10) = 1), not one step earlier or later.")
def _(step_decay):
    expect_close(_lrs(step_decay, [9, 10, 19, 20], 0.1, 0.5, 10), np.array([0.1, 0.05, 0.05, 0.025]),
                 rtol=1e-9, what="your learning rates at t = 9, 10, 19, 20")


@q.case("equals lr0 * gamma ** floor(t / step_size)", hint="Write it as lr0 * gamma ** (t // step_size).")
def _(step_decay):
    ts = [0, 3, 7, 14, 21, 50]
    expect_close(_lrs(step_decay, ts, 0.3, 0.7, 7), np.array([optim.step_decay(t, 0.3, 0.7, 7) for t in ts]),
                 rtol=1e-9, what=f"your learning rates at t = {ts}")


q = question("01.cosine_warmup", "Cosine decay with linear warmup", answers=["cosine_warmup"])
_W, _T = 5, 45  # warmup steps, total steps


@q.case("the first warmup step already learns: lr_max / W at t = 0",
        hint="Off by one in the warmup: lr_max * t / W is 0 at t = 0, a wasted step. Use lr_max * (t + 1) / W.")
def _(cosine_warmup):
    expect_close(float(call(cosine_warmup, 0, 1.0, _W, _T, 0.0)), 1.0 / _W,
                 what=f"cosine_warmup(0, 1.0, {_W}, {_T}, 0.0)")


@q.case("warms up linearly and reaches lr_max at t = W - 1 and t = W",
        hint="The warmup is lr_max * (t + 1) / W for t < W, a straight line that ends at lr_max; the cosine "
             "starts at lr_max at t = W.")
def _(cosine_warmup):
    expect_close(_lrs(cosine_warmup, range(_W + 1), 1.0, _W, _T, 0.0), np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.0]),
                 rtol=1e-9, what="your learning rates at t = 0..W")


@q.case("is halfway between lr_max and lr_min halfway through the decay",
        hint="The cosine runs over the T - W steps after warmup: progress = (t - W) / (T - W), "
             "lr = lr_min + (lr_max - lr_min) * (1 + cos(pi * progress)) / 2 (pi, not 2 pi; t - W, not t).")
def _(cosine_warmup):
    mid = _W + (_T - _W) // 2
    expect_close(float(call(cosine_warmup, mid, 1.0, _W, _T, 0.2)), 0.6, rtol=1e-9,
                 what=f"cosine_warmup({mid}, 1.0, {_W}, {_T}, 0.2)")


@q.case("ends at lr_min at t = T and stays there",
        hint="At t = T the progress is 1 and cos(pi) = -1, giving lr_min; clip the progress at 1 for t > T.")
def _(cosine_warmup):
    expect_close(_lrs(cosine_warmup, [_T, _T + 1, 2 * _T], 1.0, _W, _T, 0.2), np.full(3, 0.2), rtol=1e-9,
                 what="your learning rates at t = T, T + 1, 2T")


@q.case("matches the reference at every step",
        hint="Warmup lr_max * (t + 1) / W for t < W, then the cosine from lr_max down to lr_min.")
def _(cosine_warmup):
    ts = range(0, 60, 3)
    expect_close(_lrs(cosine_warmup, ts, 0.3, 4, 40, 0.01),
                 np.array([optim.cosine_warmup(t, 0.3, 4, 40, 0.01) for t in ts]), rtol=1e-9,
                 what="your learning rates at t = 0, 3, ..., 57")


# =========================================================================== 01.momentum_step
q = question("01.momentum_step", "One step of SGD with momentum", answers=["momentum_step"])


def _pair(got, d: int):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"momentum_step should return a pair (w_new, v_new), but it returned a "
                           f"{type(got).__name__}.")
    return _vector(got[0], d, "w_new"), _vector(got[1], d, "v_new")


@q.case("returns the pair (w_new, v_new)",
        hint="End with `return w_new, v_new`: the caller needs the new velocity for the next step.")
def _(momentum_step):
    _pair(call(momentum_step, np.ones(2), np.zeros(2), np.ones(2), 0.1, 0.9, check_mutation=False), 2)


@q.case("from v = 0 the first step is a plain gradient step",
        hint="With v = 0: v_new = momentum * 0 + grad = grad and w_new = w - lr * grad. Did you scale the "
             "gradient by (1 - momentum) (dampening) or forget it?")
def _(momentum_step):
    w_new, v_new = _pair(call(momentum_step, np.array([1.0, 2.0]), np.zeros(2), np.array([1.0, -1.0]), 0.1, 0.9,
                              check_mutation=False), 2)
    expect_close(w_new, np.array([0.9, 2.1]), what="w_new")


@q.case("accumulates past gradients: v_new = momentum * v + grad",
        hint="The velocity is momentum * v + grad (PyTorch's form): keep all of the old v (times momentum) and "
             "add the new gradient, without lr and without (1 - momentum).")
def _(momentum_step):
    _, v_new = _pair(call(momentum_step, np.zeros(2), np.array([2.0, -1.0]), np.array([1.0, 1.0]), 0.1, 0.5,
                          check_mutation=False), 2)
    expect_close(v_new, np.array([2.0, 0.5]), what="v_new")


@q.case("steps with the new velocity: w_new = w - lr * v_new",
        hint="Update v first, then move w with the NEW velocity (w - lr * v_new), not with the old v.")
def _(momentum_step):
    w_new, _ = _pair(call(momentum_step, np.zeros(2), np.array([2.0, -1.0]), np.array([1.0, 1.0]), 0.1, 0.5,
                          check_mutation=False), 2)
    expect_close(w_new, np.array([-0.2, -0.05]), what="w_new")


@q.case("does not change w or v in place",
        hint="In-place update: `v *= momentum` or `w -= ...` changes the caller's arrays. Build new ones.")
def _(momentum_step):
    call(momentum_step, np.array([1.0, 2.0]), np.array([0.5, 0.5]), np.array([1.0, -1.0]), 0.1, 0.9)


@q.case("20 steps on a quadratic match torch.optim.SGD(momentum=0.9)",
        hint="Each step: v = momentum * v + grad, then w = w - lr * v; pass the returned v to the next step.")
def _(momentum_step):
    import torch

    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    w, v = np.array([1.0, -1.0]), np.zeros(2)
    p = torch.tensor(w.copy(), requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.9)
    for _ in range(20):
        w, v = _pair(call(momentum_step, w, v, A @ w, 0.05, 0.9, check_mutation=False), 2)
        opt.zero_grad()
        (0.5 * p @ torch.tensor(A) @ p).backward()
        opt.step()
    expect_close(w, p.detach().numpy(), rtol=1e-8, atol=1e-10, what="w after 20 steps")


# =========================================================================== 01.torch_train
q = question("01.torch_train", "Train a linear model with torch.optim.SGD", answers=["train_step"])


def _torch_setup(seed: int = 0, lr: float = 0.1):
    """A seeded linear-regression problem, a model and an SGD optimizer."""
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.randn(32, 3, generator=g)  # (N, D)
    y = X @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3  # (N, 1)
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    loss_fn = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return model, X, y, loss_fn, optimizer


def _loss_value(got) -> float:
    """The number a train_step returned; a tensor is accepted here (the "not a tensor" case judges that)."""
    return float(got.detach()) if hasattr(got, "detach") else float(got)


def _reference_steps(num_steps: int, seed: int = 0, lr: float = 0.1):
    model, X, y, loss_fn, optimizer = _torch_setup(seed, lr)
    for _ in range(num_steps):
        optimizer.zero_grad()
        loss_fn(model(X), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@q.case("returns the loss of the batch (before the update)",
        hint="Return loss.item(): the loss computed on (X, y) in this step, before optimizer.step().")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    expected = loss_fn(model(X), y).item()
    got = call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    if got is None:
        raise CheckFailure("train_step returned None: did you forget to `return loss.item()`?")
    expect_close(_loss_value(got), expected, rtol=1e-5, what="the loss train_step returned")


@q.case("returns a Python number (loss.item()), not a tensor",
        hint="Return loss.item(): the tensor `loss` keeps its whole computation graph alive (memory grows with "
             "every loss you store), and a list of such tensors cannot be plotted directly.")
def _(train_step):
    import torch

    model, X, y, loss_fn, optimizer = _torch_setup()
    got = call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    if isinstance(got, torch.Tensor):
        raise CheckFailure(f"train_step returned a tensor of shape {tuple(got.shape)}"
                           f"{' that requires grad' if got.requires_grad else ''}, not a Python float.")


@q.case("changes the parameters (loss.backward() then optimizer.step())",
        hint="No update: call loss.backward() to fill the gradients and then optimizer.step() to apply them "
             "(zeroing the gradients between the two erases them).")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    before = [p.detach().clone() for p in model.parameters()]
    call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    if all(bool((p.detach() == b).all()) for p, b in zip(model.parameters(), before)):
        raise CheckFailure("After one train_step the parameters are unchanged.")


@q.case("one step equals one reference SGD step",
        hint="One step is: optimizer.zero_grad(); loss = loss_fn(model(X), y); loss.backward(); optimizer.step().")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    for p, ref in zip(model.parameters(), _reference_steps(1)):
        expect_close(p.detach(), ref, rtol=1e-5, atol=1e-7, what="the parameters after one step")


@q.case("zeroes the gradients: three steps equal three reference steps",
        hint="Forgot optimizer.zero_grad(): PyTorch adds each new gradient to .grad, so without zeroing, step k "
             "uses the sum of all k gradients so far.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    for _ in range(3):
        call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    for p, ref in zip(model.parameters(), _reference_steps(3)):
        expect_close(p.detach(), ref, rtol=1e-5, atol=1e-7, what="the parameters after three steps")


@q.case("trains: the loss goes down over 50 steps, to under 1% of where it started",
        hint="The loss does not go down: minimise loss_fn(model(X), y) itself (not its negative), "
             "zero the gradients each step, and let the optimizer do the update.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup(seed=1)
    losses = [_loss_value(call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)) for _ in range(50)]
    final = loss_fn(model(X), y).item()
    expect_finite(np.array(losses + [final]), what="the losses")
    if not final < 0.01 * losses[0]:
        raise CheckFailure(f"The loss went from {losses[0]:.4g} to {final:.4g} in 50 steps of lr = 0.1; "
                           "the reference gets under 1% of the start.")
