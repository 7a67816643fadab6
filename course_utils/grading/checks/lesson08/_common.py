"""What the checks of lesson 08's questions share: seeded inputs (logits, labels with
unlabelled rows), the float64 references of the softmax at a temperature and of the
distillation loss, and the helpers that compare an answer with a reference and with a
typical mistake.

The references are the definitions, written here in NumPy and in PyTorch
(``torch.nn.functional``); the tests check them against each other, against autograd
and against the lesson's library (``course_utils.lessons.distill``), which the checks
themselves do not import.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...asserts import _short
from .._shared import (NOT_JUDGED, _agrees, _basic,  # noqa: F401 - for the checks
                       _copies, _not_judged, _num, comparisons, generator, seeded)

_matches, _plain_mismatch = comparisons(rtol=1e-6, atol=1e-9)

UNLABELLED = -1  # the label of a transfer-set example without a label


# ------------------------------------------------------------ inputs
def logits(seed: int, n: int, k: int, scale: float = 3.0,
           offset: float = 0.0) -> np.ndarray:
    """Seeded float64 logits (n, k): Gaussian of std ``scale``, each row shifted by its
    own amount around ``offset`` (real logits are not zero-mean)."""
    rng = np.random.default_rng(seed)
    shift = offset + rng.normal(0.0, 2.0, size=(n, 1))
    return rng.normal(0.0, scale, size=(n, k)) + shift


def labels(seed: int, n: int, k: int, unlabelled: int = 0) -> np.ndarray:
    """Seeded int64 labels (n,) with ``unlabelled`` rows set to -1 (never the first)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    if unlabelled:
        y[rng.choice(np.arange(1, n), size=unlabelled, replace=False)] = UNLABELLED
    return y.astype(np.int64)


# ------------------------------------------------------------ references
def softmax(a: np.ndarray, tau: float = 1.0, axis: int = -1) -> np.ndarray:
    """softmax(a / tau) along ``axis``, in float64, shifted by the maximum."""
    s = np.asarray(a, dtype=np.float64) / tau
    s = s - s.max(axis=axis, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(a: np.ndarray, tau: float = 1.0) -> np.ndarray:
    """log softmax(a / tau) along the last axis, in float64."""
    s = np.asarray(a, dtype=np.float64) / tau
    s = s - s.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def soft_kl(z, v, tau) -> np.ndarray:
    """(N,) KL(p_t || p_s) per row, p_t = softmax(v / tau), p_s = softmax(z / tau)."""
    p = softmax(v, tau)
    return (p * (log_softmax(v, tau) - log_softmax(z, tau))).sum(-1)


def hard_ce(z, y, tau: float = 1.0) -> np.ndarray:
    """(N,) cross-entropy of the label under softmax(z / tau); 0 on unlabelled rows."""
    y = np.asarray(y)
    labelled = y != UNLABELLED
    out = np.zeros(len(y))
    out[labelled] = -log_softmax(z, tau)[labelled, y[labelled]]
    return out


def reference_loss(z, v, y, tau, alpha) -> float:
    """alpha tau^2 KL(p_t || p_s) + (1 - alpha) CE(y, softmax(z)), mean over the N
    rows (an unlabelled row adds its soft term only)."""
    per_row = alpha * tau ** 2 * soft_kl(z, v, tau) + (1 - alpha) * hard_ce(z, y)
    return float(per_row.mean())


def torch_loss(z, v, y, tau, alpha):
    """The same loss in PyTorch (differentiable in ``z``): the autograd oracle."""
    log_ps = F.log_softmax(z / tau, dim=-1)                   # (N, n_c)
    log_pt = F.log_softmax(v.detach() / tau, dim=-1)          # (N, n_c)
    soft = F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(z, y, ignore_index=UNLABELLED, reduction="sum") / len(y)
    return alpha * tau ** 2 * soft + (1 - alpha) * hard


def autograd_grad(z, v, y, tau, alpha) -> np.ndarray:
    """dL/dz of ``torch_loss`` by autograd, float64 (N, n_c)."""
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    loss = torch_loss(zt, torch.tensor(v, dtype=torch.float64),
                      torch.tensor(y, dtype=torch.int64), tau, alpha)
    loss.backward()
    return zt.grad.numpy()


# ------------------------------------------------------------ comparing answers
def _array(got, what: str, shape: tuple) -> np.ndarray:
    """``got`` as a float64 NumPy array of ``shape``, or a basic failure saying why."""
    if got is None:
        raise _basic(f"{what} is None: did you forget to `return` it?", problem="none")
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().numpy()
    if not isinstance(got, np.ndarray):
        raise _basic(f"{what} should be a NumPy array, but it is a "
                     f"{type(got).__name__}: {_short(got)}", problem="type")
    if got.shape != tuple(shape):
        raise _basic(f"{what} has shape {got.shape}, expected {tuple(shape)}.",
                     problem="shape")
    if not np.issubdtype(got.dtype, np.number):
        raise _basic(f"{what} should hold numbers, but its dtype is {got.dtype}.",
                     problem="type")
    return got.astype(np.float64)
