"""Checks of 02.smoothed_cross_entropy: Cross-entropy with label smoothing, forward and
backward."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, as_number, call, expect_close, expect_finite
from ...registry import question
from ._common import _on_copies, _parts, _plain_mismatch, _verdict


q = question("02.smoothed_cross_entropy",
             "Cross-entropy with label smoothing, forward and backward",
             answers=["smoothed_cross_entropy"], timeout=5)


def _inputs(seed: int, B: int, C: int, scale: float = 2.0):
    """Seeded logits (B, C) float64 and labels (B,) int64."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, C)) * scale, rng.integers(0, C, B)


def _oracle(logits, y, alpha):
    """(loss, dlogits) of PyTorch's cross_entropy(label_smoothing=alpha), a mean."""
    z = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(z, torch.tensor(y), label_smoothing=alpha)
    loss.backward()
    return loss.item(), z.grad.numpy()


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _targets(y, C, alpha, others_only=False):
    """The smoothed targets (``others_only``: alpha over the C - 1 wrong classes)."""
    onehot = np.eye(C)[y]
    if others_only:
        return (1 - alpha) * onehot + alpha / (C - 1) * (1 - onehot)
    return (1 - alpha) * onehot + alpha / C


def _answer(fn, logits, y, alpha):
    got = _on_copies(fn, logits, y, alpha, name="smoothed_cross_entropy")
    loss, dlogits = _parts(got, ("loss", "dlogits"), "smoothed_cross_entropy")
    return as_number(loss, "the loss"), dlogits


_HINT = ("Write the loss as a cross-entropy against the smoothed target distribution "
         "(PyTorch's convention), then differentiate it with respect to the logits as "
         "the lesson did for one-hot targets; the loss is a mean over the batch.")


def _core(fn, seed, B, C, alpha, scale=2.0):
    logits, y = _inputs(seed, B, C, scale)
    loss, dlogits = _answer(fn, logits, y, alpha)
    ref_loss, ref_d = _oracle(logits, y, alpha)
    where = f"B={B}, C={C}, alpha={alpha}"
    expect_close(loss, ref_loss, rtol=1e-7, what=f"the loss for {where}")
    expect_close(dlogits, ref_d, rtol=1e-7, atol=1e-12, what=f"dlogits for {where}")


@q.case("B=6, C=4, alpha=0.1, against PyTorch", kind="core", hint=_HINT)
def _(smoothed_cross_entropy):
    _core(smoothed_cross_entropy, 0, 6, 4, 0.1)


@q.case("B=20, C=10, alpha=0.3, against PyTorch", kind="core", hint=_HINT)
def _(smoothed_cross_entropy):
    _core(smoothed_cross_entropy, 1, 20, 10, 0.3)


@q.case("B=3, C=2, alpha=0.05, against PyTorch", kind="core", hint=_HINT)
def _(smoothed_cross_entropy):
    _core(smoothed_cross_entropy, 2, 3, 2, 0.05)


@q.case("alpha is spread over all C classes (the true one too)", kind="mistake",
        hint="In PyTorch's label smoothing the true class also receives alpha/C, on "
             "top of 1 - alpha.")
def _(smoothed_cross_entropy):
    logits, y = _inputs(3, 8, 5)
    _, dlogits = _answer(smoothed_cross_entropy, logits, y, 0.2)
    _, ref_d = _oracle(logits, y, 0.2)
    wrong = (_softmax(logits) - _targets(y, 5, 0.2, others_only=True)) / 8
    _verdict(dlogits, ref_d, wrong,
             "dlogits uses targets that put alpha/(C - 1) on each wrong class and "
             "1 - alpha on the true one.", "dlogits (B=8, C=5, alpha=0.2)")


@q.case("dlogits uses the smoothed targets, not the one-hot labels", kind="mistake",
        hint="The targets changed, so the gradient changed too: it is the softmax "
             "minus the targets you wrote the loss with.")
def _(smoothed_cross_entropy):
    logits, y = _inputs(4, 8, 5)
    _, dlogits = _answer(smoothed_cross_entropy, logits, y, 0.2)
    _, ref_d = _oracle(logits, y, 0.2)
    wrong = (_softmax(logits) - np.eye(5)[y]) / 8
    _verdict(dlogits, ref_d, wrong,
             "dlogits is the gradient of the plain (unsmoothed) cross-entropy.",
             "dlogits (B=8, C=5, alpha=0.2)")


@q.case("dlogits carries the 1/B of the mean", kind="mistake",
        hint="The loss is a mean over the B rows, so each row's gradient is divided "
             "by B.")
def _(smoothed_cross_entropy):
    logits, y = _inputs(5, 8, 5)
    _, dlogits = _answer(smoothed_cross_entropy, logits, y, 0.1)
    _, ref_d = _oracle(logits, y, 0.1)
    _verdict(dlogits, ref_d, ref_d * 8, "dlogits is B = 8 times too large: the 1/B of "
             "the mean is missing.", "dlogits (B=8, C=5, alpha=0.1)")


@q.case("the loss is the mean over the batch, not the sum", kind="mistake",
        hint="Average the per-row losses over the batch (PyTorch's default "
             "reduction).")
def _(smoothed_cross_entropy):
    logits, y = _inputs(6, 8, 5)
    loss, _ = _answer(smoothed_cross_entropy, logits, y, 0.1)
    ref_loss, _ = _oracle(logits, y, 0.1)
    _verdict(loss, ref_loss, ref_loss * 8, "the loss is the sum over the 8 rows, not "
             "their mean.", "the loss (B=8, C=5, alpha=0.1)")


@q.case("stable for logits near 1000", kind="mistake",
        hint="exp(1000) overflows: compute the log-softmax with the row's maximum "
             "subtracted, as the lesson did.")
def _(smoothed_cross_entropy):
    logits, y = _inputs(7, 5, 4, scale=3.0)
    logits = logits + 1000.0
    loss, dlogits = _answer(smoothed_cross_entropy, logits, y, 0.1)
    expect_finite(loss, "the loss for logits near 1000")
    expect_finite(dlogits, "dlogits for logits near 1000")
    ref_loss, ref_d = _oracle(logits, y, 0.1)
    # Finite but wrong is another mistake's business: a plain mismatch, no hint.
    _plain_mismatch(loss, ref_loss, "the loss for logits near 1000", 1e-7, 1e-9)
    _plain_mismatch(dlogits, ref_d, "dlogits for logits near 1000", 1e-7, 1e-12)


@q.case("returns a number and a (B, C) array; inputs left unchanged",
        kind="property",
        hint="Return the loss as one number and its gradient shaped like the logits; "
             "build new arrays rather than writing into logits.")
def _(smoothed_cross_entropy):
    logits, y = _inputs(8, 4, 3)
    got = call(smoothed_cross_entropy, logits, y, 0.1, name="smoothed_cross_entropy")
    loss, dlogits = _parts(got, ("loss", "dlogits"), "smoothed_cross_entropy")
    as_number(loss, "the loss")
    if np.shape(dlogits) != (4, 3):
        raise CheckFailure(f"dlogits has shape {np.shape(dlogits)}; logits has shape "
                           "(4, 3).", basic=True)
