"""Checks of 08.class_bias: the bias of a class the student never saw, chosen on a
validation set (Hinton et al. 2015, section 3: the student distilled without any 3)."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, as_number, call
from ...registry import question

q = question("08.class_bias", "The bias of a class the student never saw",
             answers=["class_bias"], timeout=5)

OFFSETS = np.round(np.arange(0.0, 8.01, 0.25), 2)  # (33,) 0, 0.25, ..., 8


def validation(seed: int, n: int, n_c: int, c: int, depress: float):
    """(logits (n, n_c) float64, labels (n,) int64): a student that ranks the right
    class first most of the time, except that it never predicts class c willingly:
    its logit is ``depress`` lower than it should be."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_c, size=n)
    z = rng.normal(0.0, 1.5, size=(n, n_c)) + 3.0 * np.eye(n_c)[y]
    z[:, c] -= depress
    return z, y.astype(np.int64)


def errors(z, y, c, offset) -> int:
    """Validation errors with ``offset`` added to the logit of class c."""
    shifted = z.copy()
    shifted[:, c] += offset
    return int((shifted.argmax(axis=1) != y).sum())


def reference_bias(z, y, c, offsets) -> float:
    """The offset of fewest errors; of several, the smallest."""
    counts = [errors(z, y, c, o) for o in offsets]
    best = min(counts)
    return float(min(o for o, e in zip(offsets, counts) if e == best))


def mistaken_biases(z, y, c, offsets) -> dict[str, set[float]]:
    """The answers of typical mistakes (a set each: one mistake, several tie rules)."""
    offsets = [float(o) for o in offsets]
    counts = [errors(z, y, c, o) for o in offsets]
    tied = [o for o, e in zip(offsets, counts) if e == min(counts)]
    predicted = [int(((z + o * np.eye(z.shape[1])[c]).argmax(1) == c).sum())
                 for o in offsets]
    most = [o for o, p in zip(offsets, predicted) if p == max(predicted)]
    return {"every class": {offsets[0], min(offsets), max(offsets), offsets[-1]},
            "most class-c predictions": {most[0], min(most), max(most), most[-1]},
            "ties: the largest": {max(tied)},
            "ties: the first in the list": {tied[0]}}


CASES = {  # name: (seed, n, n_c, c, depress, order of the offsets)
    "one best offset": (2, 250, 5, 1, 3.0, "sorted"),
    "a tie": (0, 300, 10, 3, 4.0, "sorted"),
    "a tie, offsets shuffled": (1, 200, 10, 3, 5.0, "shuffled"),
    "a tie, offsets in decreasing order": (3, 120, 10, 7, 6.0, "decreasing"),
}


def inputs(name: str):
    seed, n, n_c, c, depress, order = CASES[name]
    z, y = validation(seed, n, n_c, c, depress)
    offsets = OFFSETS.copy()
    if order == "shuffled":
        # seed + 4: the first of the tied offsets in this order is neither the
        # smallest nor the largest, so that each tie rule is told apart
        offsets = np.random.default_rng(seed + 4).permutation(offsets)
    elif order == "decreasing":
        offsets = offsets[::-1].copy()
    return z, y, c, offsets


def _what(z, c, offsets) -> str:
    return (f"class_bias(logits {z.shape}, y ({len(z)},), c={c}, offsets "
            f"({len(offsets)},) from {offsets.min():g} to {offsets.max():g})")


MESSAGES = {
    "every class": "it is the offset of the first (or smallest) candidate: adding the "
                   "offset to every class changes no prediction, so every candidate "
                   "scores the same?",
    "most class-c predictions": "it is the offset that makes class c predicted most "
                                "often, not the one of fewest validation errors.",
    "ties: the largest": "several offsets give the fewest errors and you chose the "
                         "largest of them.",
    "ties: the first in the list": "several offsets give the fewest errors and you "
                                   "chose the first of them in the list, which is not "
                                   "the smallest (the list is not sorted).",
}


def _judge(fn, name, hows=None) -> None:
    z, y, c, offsets = inputs(name)
    what = _what(z, c, offsets)
    got = as_number(call(fn, z.copy(), y.copy(), c, offsets.copy(), name="class_bias"),
                    what)
    ref = reference_bias(z, y, c, offsets)
    if abs(got - ref) < 1e-9:
        return
    e_got = errors(z, y, c, got)
    message = (f"{what} returned {got:g} ({e_got} validation errors), expected {ref:g} "
               f"({errors(z, y, c, ref)} errors)")
    wrong = mistaken_biases(z, y, c, offsets)
    for how in hows or MESSAGES:
        if any(abs(got - w) < 1e-9 for w in wrong[how]):
            raise CheckFailure(f"{message}: {MESSAGES[how]}")
    raise CheckFailure(message + ".", basic=hows is not None)


_HINT = ("For each candidate offset, add it to the logit of class c only, count the "
         "validation examples whose arg-max is not their label, and keep the offset "
         "of fewest errors; of several, the smallest offset (the list may come in "
         "any order).")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(class_bias):
            _judge(class_bias, name)

    _core(_name)


@q.case("the offset is added to the logit of class c only",
        hint="The arg-max does not change when every logit of a row gets the same "
             "offset: only class c's logit is raised.")
def _(class_bias):
    _judge(class_bias, "one best offset", hows=["every class"])


@q.case("the criterion is the number of validation errors",
        hint="Raising class c's logit makes c predicted more often, rightly for the "
             "examples of c and wrongly for the others: the count to minimise is the "
             "errors over all classes.")
def _(class_bias):
    _judge(class_bias, "a tie", hows=["most class-c predictions"])


@q.case("of several offsets with the fewest errors, the smallest",
        hint="Several candidates often tie (errors are whole numbers): the question "
             "asks for the smallest of them, the least change to the student, "
             "whatever the order of the list.")
def _(class_bias):
    _judge(class_bias, "a tie, offsets shuffled",
           hows=["ties: the largest", "ties: the first in the list"])


@q.case("returns a number; the inputs unchanged", kind="property",
        hint="Return one of the candidate offsets as a float; compute on copies of "
             "the logits.")
def _(class_bias):
    z, y, c, offsets = inputs("one best offset")
    got = as_number(call(class_bias, z, y, c, offsets, name="class_bias"),
                    _what(z, c, offsets))
    if not np.isclose(offsets, got).any():
        raise CheckFailure(f"{_what(z, c, offsets)} returned {got:g}, which is not one "
                           "of the candidate offsets.")
