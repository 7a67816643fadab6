"""Gradient descent in NumPy and learning-rate schedules: the code lesson 01 teaches.

Every function here is written out in ``notebooks/01_gradient_descent.ipynb`` first;
the lesson then says that this module exports the same code. The exercise checks of
lesson 01 use these functions as their reference answers, and later lessons use the
schedules.

Conventions (stated once, used everywhere):

* ``X`` is ``(N, D)``, ``w`` is ``(D,)``, ``y`` is ``(N,)``; a bias is a column of ones
  in ``X`` (see ``add_bias``).
* Mean squared error is ``loss(w) = (1/N) * ||X w - y||^2`` (no 1/2), so its gradient is
  ``(2/N) * X^T (X w - y)`` (the lessons write the loss as a calligraphic L).
* Momentum in PyTorch's form keeps a buffer ``u`` (``momentum_buffer``), a running sum
  of gradients; Sutskever's velocity, the step itself, is ``v = -lr * u``.
* A schedule is a function of the step ``t = 0, 1, 2, ...`` (the number of updates done
  so far), matching ``torch.optim.lr_scheduler`` after ``t`` calls of
  ``scheduler.step()``.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


# ------------------------------------------------------------------ models and losses
def add_bias(X: np.ndarray) -> np.ndarray:
    """Append a column of ones to ``X`` so the last weight is the bias (lesson 01)."""
    X = np.asarray(X, dtype=np.float64)
    return np.hstack([X, np.ones((X.shape[0], 1))])  # (N, D + 1)


def mse_loss(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error ``(1/N) ||X w - y||^2`` of a linear model (lesson 01)."""
    residual = X @ w - y  # (N,)
    return float(residual @ residual / len(y))


def mse_gradient(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient ``(2/N) X^T (X w - y)`` of ``mse_loss`` with respect to ``w``
    (lesson 01)."""
    return 2.0 / len(y) * X.T @ (X @ w - y)  # (D,)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-z))``, without overflow (lesson 01)."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def logistic_loss(w: np.ndarray, X: np.ndarray, y: np.ndarray,
                  l2: float = 0.0) -> float:
    """Mean binary cross-entropy of ``sigmoid(X w)`` against ``y`` in {0, 1}, plus
    ``l2/2 ||w[:-1]||^2``.

    The bias (last weight) is not penalised, as in scikit-learn (lesson 01).
    """
    z = X @ w  # (N,) logits
    # -[y log s + (1 - y) log(1 - s)] = log(1 + e^z) - y z, written stably with
    # logaddexp.
    data = float(np.mean(np.logaddexp(0.0, z) - y * z))
    return data + 0.5 * l2 * float(w[:-1] @ w[:-1])


def logistic_gradient(w: np.ndarray, X: np.ndarray, y: np.ndarray,
                      l2: float = 0.0) -> np.ndarray:
    """Gradient ``(1/N) X^T (sigmoid(X w) - y) + l2 * [w[:-1], 0]`` of ``logistic_loss``
    (lesson 01)."""
    grad = X.T @ (sigmoid(X @ w) - y) / len(y)  # (D,)
    penalty = np.append(w[:-1], 0.0)  # the bias is not penalised
    return grad + l2 * penalty


# ---------------------------------------------------------------------- update rules
def gd_step(w: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
    """One gradient-descent update ``w - lr * grad``, as a new array (lesson 01)."""
    return w - lr * grad


def gradient_descent(grad_fn: Callable[[np.ndarray], np.ndarray], w0: np.ndarray,
                     lr: float, num_steps: int) -> np.ndarray:
    """Run ``num_steps`` gradient-descent updates from ``w0``; return the trajectory
    ``(num_steps + 1, D)``.

    Row 0 is ``w0``; row ``t`` is the weights after ``t`` updates (lesson 01).
    """
    w = np.array(w0, dtype=np.float64)
    trajectory = [w]
    for _ in range(num_steps):
        w = gd_step(w, grad_fn(w), lr)
        trajectory.append(w)
    return np.stack(trajectory)  # (num_steps + 1, D)


def momentum_step(w: np.ndarray, u: np.ndarray, grad: np.ndarray, lr: float,
                  momentum: float, nesterov: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One step of SGD with momentum in PyTorch's form; returns ``(w_new, u_new)``
    (lesson 01).

    ``u`` is PyTorch's momentum buffer: ``u_new = momentum * u + grad`` and
    ``w_new = w - lr * u_new`` (Polyak 1964's heavy ball with the learning rate outside
    the buffer). With ``nesterov=True``: ``w_new = w - lr * (grad + momentum * u_new)``,
    which is Sutskever et al. (2013)'s Nesterov step written at the look-ahead point.
    """
    u_new = momentum * u + grad
    direction = grad + momentum * u_new if nesterov else u_new
    return w - lr * direction, u_new


def adam_step(w: np.ndarray, m: np.ndarray, v: np.ndarray, grad: np.ndarray, t: int,
              lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
              eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam update (Kingma & Ba 2015, Algorithm 1), ``t`` counting from 1; returns
    ``(w, m, v)`` (lesson 01)."""
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * grad  # first moment (mean of gradients)
    v = beta2 * v + (1 - beta2) * grad**2  # second raw moment
    m_hat = m / (1 - beta1**t)  # bias correction: m and v start at 0
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


# ------------------------------------------------------------ learning-rate schedules
def step_decay(t: int, lr0: float, gamma: float, step_size: int) -> float:
    """Step decay ``lr0 * gamma ** floor(t / step_size)``, as
    ``torch.optim.lr_scheduler.StepLR`` (lesson 01)."""
    return lr0 * gamma ** (t // step_size)


def exponential_decay(t: int, lr0: float, gamma: float) -> float:
    """Exponential decay ``lr0 * gamma ** t``, as
    ``torch.optim.lr_scheduler.ExponentialLR`` (lesson 01)."""
    return lr0 * gamma**t


def polynomial_decay(t: int, lr0: float, total_steps: int, power: float = 1.0,
                     lr_end: float = 0.0) -> float:
    """Polynomial decay ``(lr0 - lr_end) * (1 - t / T) ** power + lr_end``, held at
    ``lr_end`` after ``T`` (lesson 01).

    With ``lr_end=0`` this is ``torch.optim.lr_scheduler.PolynomialLR``; in general it
    is ``keras.optimizers.schedules.PolynomialDecay``.
    """
    t = min(t, total_steps)
    return (lr0 - lr_end) * (1 - t / total_steps) ** power + lr_end


def cosine_warmup(t: int, lr_max: float, warmup_steps: int, total_steps: int,
                  lr_min: float = 0.0) -> float:
    """Linear warmup then cosine decay (Goyal et al. 2017; Loshchilov & Hutter 2017)
    (lesson 01).

    With ``T_w = warmup_steps`` and ``T = total_steps``:

    * ``t < T_w``: ``lr_max * (t + 1) / T_w``, so the first update already learns and
      step ``T_w - 1`` reaches ``lr_max``;
    * ``T_w <= t <= T``:
      ``lr_min + (lr_max - lr_min) * (1 + cos(pi * (t - T_w) / (T - T_w))) / 2``;
    * ``t > T``: ``lr_min``.

    Same numbers as ``SequentialLR([LinearLR(start_factor=1/T_w, total_iters=T_w-1),
    CosineAnnealingLR(T_max=T-T_w, eta_min=lr_min)], milestones=[T_w])``.
    """
    if t < warmup_steps:
        return lr_max * (t + 1) / warmup_steps
    # max(..., 1): a schedule that is all warmup (T = T_w) holds lr_min afterwards.
    progress = min((t - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))
