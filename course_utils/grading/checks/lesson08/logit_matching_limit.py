"""Checks of 08.logit_matching_limit: tau^2 dKL/dz as tau grows, for a batch."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, call
from ...registry import question
from ._common import _array, _matches, _plain_mismatch, logits, softmax

q = question("08.logit_matching_limit", "The high-temperature limit: logit matching",
             answers=["logit_matching_limit"], timeout=5)


def reference_limit(z, v) -> np.ndarray:
    """lim_{tau -> inf} tau^2 d/dz mean_n KL(p_t || p_s): each row centred, / (n_c N)."""
    n, k = z.shape
    zc = z - z.mean(axis=1, keepdims=True)
    vc = v - v.mean(axis=1, keepdims=True)
    return (zc - vc) / (k * n)


def exact_gradient(z, v, tau) -> np.ndarray:
    """tau^2 d/dz mean_n KL(p_t || p_s) at a finite tau: tau (p_s - p_t) / N."""
    return tau * (softmax(z, tau) - softmax(v, tau)) / len(z)


def mistaken_limit(z, v, how: str) -> np.ndarray:
    n, k = z.shape
    ref = reference_limit(z, v)
    return {"not centred": (z - v) / (k * n), "v - z": -ref, "no 1/n_c": ref * k,
            "no 1/N": ref * n}[how]


def _what(z) -> str:
    return f"logit_matching_limit(z {z.shape}, v {z.shape})"


def _answer(fn, z, v) -> np.ndarray:
    got = call(fn, z.copy(), v.copy(), name="logit_matching_limit")
    return _array(got, _what(z), z.shape)


MESSAGES = {
    "not centred": "the logits are not centred: (z - v) / (n_c N) is the limit only "
                   "when every row of z and of v has mean 0.",
    "v - z": "the sign is reversed (v - z).",
    "no 1/n_c": "your limit is n_c times too large: the 1/n_c is missing.",
    "no 1/N": "your limit is N times too large: the batch mean's 1/N is missing.",
}


def _judge(fn, z, v, hows=None) -> None:
    got = _answer(fn, z, v)
    ref = reference_limit(z, v)
    if _matches(got, ref, rtol=1e-6, atol=1e-12):
        return
    for how in hows or MESSAGES:
        if _matches(got, mistaken_limit(z, v, how), rtol=1e-6, atol=1e-12):
            raise CheckFailure(f"{_what(z)}: {MESSAGES[how]}")
    if hows is None:
        near = exact_gradient(z, v, 1e4)
        if _matches(got, near, rtol=1e-3, atol=1e-9):
            raise CheckFailure(f"{_what(z)} is the exact gradient at a large tau, "
                               "not its limit.")
        try:
            _plain_mismatch(got, ref, _what(z), atol=1e-12)
        except CheckFailure as failure:
            raise CheckFailure(str(failure)) from None
    _plain_mismatch(got, ref, _what(z), atol=1e-12)


_HINT = ("Expand exp(z_i / tau) to first order in 1/tau, as the lesson did, but keep "
         "the mean of each row: the softmax of a row does not change when a constant "
         "is added to it, and its limit must not either. Then the batch mean.")


@q.case("4 rows of 10 logits, each row shifted by its own amount", kind="core",
        hint=_HINT)
def _(logit_matching_limit):
    _judge(logit_matching_limit, logits(0, 4, 10, offset=5.0), logits(1, 4, 10))


@q.case("6 rows of 3 logits: against the exact gradient at tau = 10^4", kind="core",
        hint=_HINT)
def _(logit_matching_limit):
    z, v = logits(2, 6, 3, offset=-3.0), logits(3, 6, 3, offset=2.0)
    got = _answer(logit_matching_limit, z, v)
    if not _matches(got, exact_gradient(z, v, 1e4), rtol=1e-3, atol=1e-9):
        _judge(logit_matching_limit, z, v)


@q.case("one example of 100 classes", kind="core", hint=_HINT)
def _(logit_matching_limit):
    _judge(logit_matching_limit, logits(4, 1, 100, offset=10.0),
           logits(5, 1, 100, offset=-4.0))


def _mistake_case(name, how, hint, z, v):
    @q.case(name, hint=hint)
    def _(logit_matching_limit):
        _judge(logit_matching_limit, z, v, hows=[how])


_mistake_case("the limit holds for logits that are not zero-mean", "not centred",
              "Hinton et al. assume zero-mean logits, and then the limit is the "
              "difference of the logits. Real logits have any mean: a row's mean "
              "cancels in its softmax, so it must cancel in the limit too.",
              logits(6, 5, 10, offset=3.0), logits(7, 5, 10, offset=-1.0))
_mistake_case("the gradient pulls the student's logits toward the teacher's", "v - z",
              "Gradient descent moves z against the gradient: where z_i is above the "
              "teacher's (both centred), the gradient there must be positive.",
              logits(8, 5, 10), logits(9, 5, 10))
_mistake_case("the limit carries a 1/n_c", "no 1/n_c",
              "Expanding the softmax at a large temperature, its denominator is about "
              "n_c (every exponential near 1): that 1/n_c stays in the limit.",
              logits(10, 5, 10), logits(11, 5, 10))
_mistake_case("the batch mean divides by N", "no 1/N",
              "The loss is the mean over the N rows, so its gradient in one row's "
              "logits is divided by N.", logits(12, 5, 10), logits(13, 5, 10))


@q.case("float64 (N, n_c); the inputs unchanged", kind="property",
        hint="Return a float64 array of the logits' shape; compute on copies.")
def _(logit_matching_limit):
    z, v = logits(14, 3, 4), logits(15, 3, 4)
    got = call(logit_matching_limit, z, v, name="logit_matching_limit")
    _array(got, _what(z), z.shape)
    if got.dtype != np.float64:
        raise CheckFailure(f"{_what(z)} has dtype {got.dtype}, expected float64.")
