"""Checks of 08.distillation_grad: the gradient of the loss in the student's logits."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, call
from ...registry import question
from ._common import (UNLABELLED, _array, _matches, _plain_mismatch, autograd_grad,
                      labels, logits, softmax)

q = question("08.distillation_grad", "The gradient of the distillation loss",
             answers=["distillation_grad"], timeout=5)


def _onehot(y, k, how="labelled"):
    """(N, k) one-hot labels; unlabelled rows all 0, or, for "index -1", a one at the
    last class (what y = -1 indexes)."""
    y = np.asarray(y)
    out = np.zeros((len(y), k))
    rows = np.arange(len(y)) if how == "index -1" else np.flatnonzero(y != UNLABELLED)
    out[rows, y[rows]] = 1.0
    return out


def mistaken_grad(z, v, y, tau, alpha, how: str) -> np.ndarray:
    """The gradient of a typical mistake, (N, n_c)."""
    n, k = z.shape
    q_s, p_t = softmax(z, tau), softmax(v, tau)
    soft = alpha * tau * (q_s - p_t)
    labelled = (np.asarray(y) != UNLABELLED)[:, None]
    hard = (1 - alpha) * (softmax(z) - _onehot(y, k)) * labelled
    scale = 1.0 / n
    if how == "no 1/N":
        scale = 1.0
    elif how == "tau^2":
        soft = soft * tau
    elif how == "no tau":  # neither the tau^2 nor the chain rule's 1/tau
        soft = soft / tau
    elif how == "no tau^2":
        soft = soft / tau ** 2
    elif how == "p - q":
        soft = -soft
    elif how == "hard at tau":
        hard = (1 - alpha) * (softmax(z, tau) - _onehot(y, k)) * labelled
    elif how == "unlabelled softmax":
        hard = (1 - alpha) * (softmax(z) - _onehot(y, k))
    elif how == "unlabelled index -1":
        hard = (1 - alpha) * (softmax(z) - _onehot(y, k, "index -1"))
    return (soft + hard) * scale


def batch(seed, n=6, k=10, unlabelled=2, scale=3.0):
    return (logits(seed, n, k, scale), logits(seed + 50, n, k, scale),
            labels(seed + 100, n, k, unlabelled))


def _what(z, y, tau, alpha) -> str:
    n_un = int((y == UNLABELLED).sum())
    return (f"distillation_grad(z {z.shape}, v {z.shape}, y ({len(y)},) with {n_un} "
            f"unlabelled, tau={tau:g}, alpha={alpha:g})")


MESSAGES = {
    "no 1/N": lambda n, tau: f"your gradient is {n} times too large: the 1/N of the "
                             "batch mean is missing.",
    "tau^2": lambda n, tau: (f"your soft gradient is {tau:g} times too large at tau = "
                             f"{tau:g}: tau^2 times the KL's gradient includes the "
                             "chain rule's 1/tau."),
    "no tau": lambda n, tau: (f"your soft gradient is {tau:g} times too small at "
                              f"tau = {tau:g}: tau^2 times the chain rule's 1/tau "
                              "leaves a factor tau."),
    "no tau^2": lambda n, tau: (f"your soft gradient is {tau ** 2:g} times too small "
                                f"at tau = {tau:g}: the loss's tau^2 factor is "
                                "missing."),
    "p - q": lambda n, tau: "the soft gradient has the wrong sign (p_t - p_s).",
    "hard at tau": lambda n, tau: "the hard gradient uses the student's softmax at "
                                  "tau, not at 1.",
    "unlabelled softmax": lambda n, tau: "the unlabelled rows have a hard gradient.",
    "unlabelled index -1": lambda n, tau: "the unlabelled rows have a hard gradient, "
                                          "toward the last class (y = -1 indexes it).",
}


def _judge(fn, inputs, tau, alpha, hows=None) -> None:
    z, v, y = inputs
    what = _what(z, y, tau, alpha)
    got = _array(call(fn, z.copy(), v.copy(), y.copy(), tau, alpha,
                      name="distillation_grad"), what, z.shape)
    ref = autograd_grad(z, v, y, tau, alpha)
    if _matches(got, ref):
        return
    for how in hows or MESSAGES:
        if _matches(got, mistaken_grad(z, v, y, tau, alpha, how)):
            raise CheckFailure(f"{what}: {MESSAGES[how](len(y), tau)}")
    if hows is None:
        raise CheckFailure(_mismatch(got, ref, what))
    _plain_mismatch(got, ref, what)


def _mismatch(got, ref, what) -> str:
    try:
        _plain_mismatch(got, ref, what)
    except CheckFailure as failure:
        return str(failure)
    return what


_HINT = ("Differentiate each term of one row, then the batch mean: the soft term's "
         "gradient involves the difference of the student's and the teacher's "
         "probabilities at tau (mind the chain rule through z / tau, and the tau^2), "
         "the hard term's the softmax at 1 minus the one-hot label, for labelled rows "
         "only.")


@q.case("tau = 4, alpha = 0.9, 2 of 6 rows unlabelled (against autograd)", kind="core",
        hint=_HINT)
def _(distillation_grad):
    _judge(distillation_grad, batch(0), 4.0, 0.9)


@q.case("tau = 2, alpha = 0.5, 3 of 8 rows unlabelled, 5 classes", kind="core",
        hint=_HINT)
def _(distillation_grad):
    _judge(distillation_grad, batch(1, 8, 5, 3), 2.0, 0.5)


@q.case("tau = 8, alpha = 0.3, 1 of 4 rows unlabelled, large logits", kind="core",
        hint=_HINT)
def _(distillation_grad):
    _judge(distillation_grad, batch(2, 4, 10, 1, scale=8.0), 8.0, 0.3)


def _mistake_case(name, hows, hint, inputs, tau, alpha):
    @q.case(name, hint=hint)
    def _(distillation_grad):
        _judge(distillation_grad, inputs, tau, alpha, hows=hows)


_mistake_case("the batch mean divides the gradient by N", ["no 1/N"],
              "The loss is a mean over the N rows of the batch, so each row's "
              "gradient is divided by N.", batch(3), 4.0, 0.9)
_mistake_case("tau^2 times the KL's gradient is tau times (p_s - p_t)", ["tau^2"],
              "The softmax at tau is a function of z / tau: the chain rule brings a "
              "1/tau, and only one power of tau is left of the tau^2.",
              batch(4), 5.0, 0.9)
_mistake_case("the soft gradient pushes the student toward the teacher", ["p - q"],
              "Where the student gives a class more probability than the teacher, the "
              "gradient of the loss is positive there, so that gradient descent "
              "lowers that logit.", batch(5), 3.0, 0.8)
_mistake_case("the hard gradient is at temperature 1", ["hard at tau"],
              "The hard term is the cross-entropy at temperature 1: its gradient uses "
              "the student's softmax of z itself.", batch(6), 4.0, 0.5)
_mistake_case("unlabelled rows have no hard gradient",
              ["unlabelled softmax", "unlabelled index -1"],
              "A row labelled -1 has no hard term, so its hard gradient is 0, not "
              "softmax(z) (and y = -1 as an index picks the last class).",
              batch(7, 6, 10, 3), 3.0, 0.5)


@q.case("float64 (N, n_c); the inputs unchanged", kind="property",
        hint="Return a float64 array of the logits' shape; compute on copies.")
def _(distillation_grad):
    z, v, y = batch(8)
    got = call(distillation_grad, z, v, y, 4.0, 0.9, name="distillation_grad")
    _array(got, _what(z, y, 4.0, 0.9), z.shape)
    if got.dtype != np.float64:
        raise CheckFailure(f"{_what(z, y, 4.0, 0.9)} has dtype {got.dtype}, expected "
                           "float64.")
