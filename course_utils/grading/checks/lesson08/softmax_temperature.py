"""Checks of 08.softmax_temperature: softmax(logits / tau), numerically stable."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, call
from ...registry import question
from ._common import _array, _matches, _plain_mismatch, logits, softmax

q = question("08.softmax_temperature", "Soft targets: the softmax at a temperature",
             answers=["softmax_temperature"], timeout=5)


def mistaken(a: np.ndarray, tau: float, how: str) -> np.ndarray:
    """The output of a typical mistake."""
    if how == "tau ignored":  # exp(z) / tau normalised: the tau cancels
        return softmax(a)
    if how == "axis 0":
        return softmax(a, tau, axis=0)
    raise ValueError(how)


def _what(a: np.ndarray, tau: float) -> str:
    big = f", entries up to {np.abs(a).max():.0f}" if np.abs(a).max() > 100 else ""
    return f"softmax_temperature(logits {a.shape}{big}, tau={tau:g})"


def _answer(fn, a, tau) -> np.ndarray:
    got = call(fn, a.copy(), tau, name="softmax_temperature")
    return _array(got, _what(a, tau), a.shape)


def _expect(fn, a, tau) -> None:
    got = _answer(fn, a, tau)
    expect_finite_rows(got, a, tau)
    _plain_mismatch(got, softmax(a, tau), _what(a, tau))


def expect_finite_rows(got, a, tau) -> None:
    """A NaN or an infinity: the exponential overflowed (no shift by the maximum)."""
    if not np.isfinite(got).all():
        raise CheckFailure(f"{_what(a, tau)} contains NaN or infinity: exp(logits / tau) "
                           "overflowed (float64's exp overflows above about 709), or a "
                           "whole row underflowed to 0 and was divided by 0 (a shift "
                           "by one maximum for all the rows, not each row's own).")


_HINT = ("Divide the logits by the temperature, then take a softmax along the last "
         "axis, each row on its own; shift by the row's maximum first, so that no "
         "exponential overflows (the shift cancels in the ratio).")

INPUTS = {"one row": (logits(0, 1, 10)[0], 2.0),
          "a batch": (logits(1, 4, 7), 0.5),
          "large logits, small tau": (logits(2, 3, 6, scale=400.0, offset=900.0), 0.1),
          "a (2, 3, 5) batch": (logits(3, 6, 5).reshape(2, 3, 5), 4.0)}


@q.case("a row of 10 logits, tau = 2", kind="core", hint=_HINT)
def _(softmax_temperature):
    _expect(softmax_temperature, *INPUTS["one row"])


@q.case("a batch (4, 7), tau = 0.5: one softmax per row", kind="core", hint=_HINT)
def _(softmax_temperature):
    _expect(softmax_temperature, *INPUTS["a batch"])


@q.case("logits near 1000 and tau = 0.1: no overflow", kind="core", hint=_HINT)
def _(softmax_temperature):
    _expect(softmax_temperature, *INPUTS["large logits, small tau"])


@q.case("a (2, 3, 5) batch, tau = 4: the last axis", kind="core", hint=_HINT)
def _(softmax_temperature):
    _expect(softmax_temperature, *INPUTS["a (2, 3, 5) batch"])


@q.case("no overflow for large logits",
        hint="exp(1000) is infinite in float64, and inf / inf is NaN. Subtract each "
             "row's maximum of logits / tau before the exponential: the softmax does "
             "not change, and the largest exponential is exp(0) = 1.")
def _(softmax_temperature):
    a, tau = INPUTS["large logits, small tau"]
    got = _answer(softmax_temperature, a, tau)
    expect_finite_rows(got, a, tau)


def _judge(fn, how, message, a, tau) -> None:
    got = _answer(fn, a, tau)
    ref = softmax(a, tau)
    if _matches(got, ref):
        return
    if _matches(got, mistaken(a, tau, how)):
        raise CheckFailure(f"{_what(a, tau)}: {message}")
    _plain_mismatch(got, ref, _what(a, tau))


@q.case("the temperature divides the logits, before the exponential",
        hint="A temperature changes the softmax only if it divides the logits inside "
             "the exponential: dividing exp(logits) by tau scales every entry of a "
             "row alike, and the normalisation cancels it.")
def _(softmax_temperature):
    _judge(softmax_temperature, "tau ignored", "these are the probabilities at tau = "
           "1: the temperature had no effect.", *INPUTS["a batch"])


@q.case("each row is normalised on its own (the last axis)",
        hint="A batch holds one example per row: its probabilities over the classes "
             "run along the last axis (axis=-1, keepdims=True for the max and the "
             "sum), so each row sums to 1.")
def _(softmax_temperature):
    a, tau = INPUTS["a batch"]
    got = _answer(softmax_temperature, a, tau)
    if _matches(got, softmax(a, tau)):
        return
    if _matches(got, mistaken(a, tau, "axis 0")):
        raise CheckFailure(f"{_what(a, tau)}: the columns sum to 1, not the rows; "
                           "the softmax ran along axis 0.")
    _plain_mismatch(got, softmax(a, tau), _what(a, tau))


@q.case("a temperature of 0 or below is rejected with a ValueError", kind="property",
        hint="A temperature must be positive: 0 divides by zero and a negative one "
             "turns the ranking of the classes upside down. Raise "
             "ValueError when tau <= 0.")
def _(softmax_temperature):
    a = logits(4, 2, 4)
    for tau in (0.0, -1.0):
        try:
            call(softmax_temperature, a.copy(), tau, name="softmax_temperature")
        except ValueError:
            continue
        except Exception as exc:
            raise CheckFailure(f"softmax_temperature(logits (2, 4), tau={tau:g}) "
                               f"raised {type(exc).__name__}, expected ValueError.")
        raise CheckFailure(f"softmax_temperature(logits (2, 4), tau={tau:g}) returned "
                           "without raising ValueError.")
