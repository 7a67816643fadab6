"""Checks of 08.distillation_loss: Hinton et al.'s loss, soft and hard terms."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import (UNLABELLED, hard_ce, labels, log_softmax, logits,
                      reference_loss, soft_kl, softmax)

q = question("08.distillation_loss", "The distillation loss, soft and hard terms",
             answers=["distillation_loss"], timeout=5)


def mistaken_loss(z, v, y, tau, alpha, how: str) -> float:
    """The loss of a typical mistake."""
    n = len(y)
    soft, hard = soft_kl(z, v, tau), hard_ce(z, y)
    scale = tau ** 2
    if how == "no tau^2":
        scale = 1.0
    elif how == "KL swapped":  # KL(p_s || p_t)
        ps = softmax(z, tau)
        soft = (ps * (log_softmax(z, tau) - log_softmax(v, tau))).sum(-1)
    elif how == "student at tau = 1":
        soft = (softmax(v, tau) * (log_softmax(v, tau) - log_softmax(z))).sum(-1)
    elif how == "cross-entropy to soft targets":
        soft = -(softmax(v, tau) * log_softmax(z, tau)).sum(-1)
    elif how == "hard at tau":
        hard = hard_ce(z, y, tau)
    elif how == "hard over labelled rows":
        labelled = max(int((np.asarray(y) != UNLABELLED).sum()), 1)
        hard = hard * n / labelled
    elif how == "hard on unlabelled rows":  # y = -1 indexes the last class
        hard = -log_softmax(z)[np.arange(n), np.asarray(y)]
    elif how == "KL mean over classes":  # F.kl_div's reduction="mean"
        soft = soft / np.shape(z)[-1]
    total = alpha * scale * soft + (1 - alpha) * hard
    return float(total.sum() if how == "sum" else total.mean())


def batch(seed, n=8, k=10, unlabelled=3, scale=3.0):
    """(z, v, y): student and teacher logits (n, k), labels with unlabelled rows."""
    return (logits(seed, n, k, scale), logits(seed + 50, n, k, scale),
            labels(seed + 100, n, k, unlabelled))


def _what(z, y, tau, alpha) -> str:
    n_un = int((y == UNLABELLED).sum())
    return (f"distillation_loss(z {z.shape}, v {z.shape}, y ({len(y)},) with {n_un} "
            f"unlabelled, tau={tau:g}, alpha={alpha:g})")


def _answer(fn, z, v, y, tau, alpha) -> float:
    got = call(fn, z.copy(), v.copy(), y.copy(), tau, alpha, name="distillation_loss")
    return as_number(got, _what(z, y, tau, alpha))


def _close(a, b) -> bool:
    return abs(a - b) <= 1e-7 * max(1.0, abs(b))


def _judge(fn, inputs, tau, alpha, hows=None) -> None:
    """Right: pass. The loss of one of the mistakes ``hows`` (all when None): fail
    naming it. Anything else: a plain mismatch when ``hows`` is given, else a failure
    that shows the case's hint."""
    z, v, y = inputs
    got = _answer(fn, z, v, y, tau, alpha)
    ref = reference_loss(z, v, y, tau, alpha)
    if _close(got, ref):
        return
    what = _what(z, y, tau, alpha)
    for how in hows or MESSAGES:
        if _close(got, mistaken_loss(z, v, y, tau, alpha, how)):
            raise CheckFailure(f"{what} returned {got:.6g}, expected {ref:.6g}: "
                               f"{MESSAGES[how](tau, alpha)}")
    raise CheckFailure(f"{what} returned {got:.6g}, expected {ref:.6g}.",
                       basic=hows is not None)


MESSAGES = {
    "no tau^2": lambda tau, a: (f"your soft term is {tau ** 2:g} times too small at "
                                f"tau = {tau:g}: the tau^2 factor?"),
    "KL swapped": lambda tau, a: "the KL divergence is KL(p_s || p_t), arguments "
                                 "swapped.",
    "student at tau = 1": lambda tau, a: "the soft term compares the teacher at tau "
                                         "with the student at temperature 1.",
    "cross-entropy to soft targets": lambda tau, a: (
        "the soft term is the cross-entropy to the soft targets, which exceeds the KL "
        "divergence by the teacher's entropy."),
    "hard at tau": lambda tau, a: "the hard term uses the student's softmax at tau, "
                                  "not at 1.",
    "hard over labelled rows": lambda tau, a: "the hard term is divided by the number "
                                              "of labelled rows, not by N.",
    "sum": lambda tau, a: "the loss is summed over the batch, not averaged.",
    "hard on unlabelled rows": lambda tau, a: (
        "the rows labelled -1 have a hard term: y = -1 as an index picks the last "
        "class."),
    "KL mean over classes": lambda tau, a: (
        "the soft term is divided by the number of classes too: the KL divergence "
        "sums over the classes and is averaged over the N rows only."),
}

_HINT = ("Per row: alpha tau^2 times the KL divergence from the teacher's soft targets "
         "to the student's (both at tau), plus 1 - alpha times the cross-entropy of "
         "the label under the student's softmax at 1 (nothing for a row labelled -1); "
         "then the mean over the N rows of the batch.")


@q.case("alpha = 0.9, tau = 4, 3 of 8 rows unlabelled", kind="core", hint=_HINT)
def _(distillation_loss):
    _judge(distillation_loss, batch(0), 4.0, 0.9)


@q.case("alpha = 0.5, tau = 2.5, 1 of 6 rows unlabelled, 5 classes", kind="core",
        hint=_HINT)
def _(distillation_loss):
    _judge(distillation_loss, batch(1, 6, 5, 1), 2.5, 0.5)


@q.case("alpha = 0.3, tau = 10, 6 of 12 rows unlabelled", kind="core", hint=_HINT)
def _(distillation_loss):
    _judge(distillation_loss, batch(2, 12, 10, 6, scale=5.0), 10.0, 0.3)


def _mistake_case(name, how, hint, inputs, tau, alpha):
    @q.case(name, hint=hint)
    def _(distillation_loss):
        _judge(distillation_loss, inputs, tau, alpha, hows=[how])


_mistake_case("the soft term is multiplied by tau^2", "no tau^2",
              "The soft term's gradient is 1/tau^2 smaller than the hard term's: "
              "Hinton et al. multiply the soft term by tau^2 so that its weight does "
              "not change with the temperature.", batch(3), 4.0, 0.9)
_mistake_case("the KL divergence goes from the teacher to the student", "KL swapped",
              "KL is not symmetric: the expectation is taken under the teacher's "
              "probabilities, the targets, and it is the student's log-probabilities "
              "that are compared with them.", batch(4), 3.0, 0.8)
_mistake_case("the student's softmax in the soft term is at tau too",
              "student at tau = 1",
              "Both distributions of the soft term are taken at the same temperature: "
              "the student's logits are divided by tau too.", batch(5), 4.0, 0.7)
_mistake_case("the soft term is a KL divergence, not a cross-entropy",
              "cross-entropy to soft targets",
              "The cross-entropy to the soft targets has the same gradient but not "
              "the same value: it adds the teacher's entropy, which is not 0 for soft "
              "targets. The question asks for the KL divergence.", batch(6), 4.0, 0.9)
_mistake_case("the hard term is at temperature 1", "hard at tau",
              "The hard term is the ordinary cross-entropy of the labels, the "
              "student's softmax at temperature 1; tau is for the soft term only.",
              batch(7), 4.0, 0.5)
_mistake_case("the hard term is divided by N, the batch size", "hard over labelled rows",
              "On a transfer set most rows have no label: the hard term sums over the "
              "labelled rows and divides by N, the batch size, so that the few labels "
              "weigh by their share of the batch.", batch(8, 10, 10, 7), 2.0, 0.5)
_mistake_case("the loss is a mean over the batch", "sum",
              "The loss is the batch mean, so that the learning rate does not depend "
              "on the batch size.", batch(9), 4.0, 0.9)


@q.case("returns a float; a batch without labels has no hard term", kind="property",
        hint="Return a Python float (float(...)). When no row has a label, the hard "
             "term is 0 (a mean over no labelled rows would be 0 / 0).")
def _(distillation_loss):
    z, v, y = batch(10, 5, 4, 0)
    y[:] = UNLABELLED
    got = call(distillation_loss, z.copy(), v.copy(), y.copy(), 3.0, 0.6,
               name="distillation_loss")
    what = _what(z, y, 3.0, 0.6)
    value = as_number(got, what)
    if not isinstance(got, float):
        raise CheckFailure(f"{what} returned {_short(got)}, a {type(got).__name__}; "
                           "expected a float.")
    ref = reference_loss(z, v, y, 3.0, 0.6)
    if not np.isfinite(value) or not _close(value, ref):
        raise CheckFailure(f"{what} returned {value:.6g}, expected {ref:.6g}.")
