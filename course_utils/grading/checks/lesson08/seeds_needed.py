"""Checks of 08.seeds_needed: how many seeds a paired comparison needs, from a pilot."""
from __future__ import annotations

import math

import numpy as np

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question

q = question("08.seeds_needed", "How many seeds a paired comparison needs",
             answers=["seeds_needed"], timeout=5)


def reference_seeds(a, b, k=2.0) -> int:
    """The smallest n >= 2 with |mean(d)| >= k sd(d) / sqrt(n), d = a - b (ddof=1)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean = d.mean()
    if mean == 0:
        raise ValueError("no difference in the pilot")
    return max(2, math.ceil((k * d.std(ddof=1) / mean) ** 2))


def mistaken_seeds(a, b, k, how: str) -> set[float]:
    """The answers of a typical mistake (a set: with and without the floor of 2)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    sd = {"unpaired": math.sqrt(a.var(ddof=1) + b.var(ddof=1)),
          "ddof=0": d.std(ddof=0)}.get(how, d.std(ddof=1))
    x = (k * sd / d.mean()) ** 2
    if how == "no ceil":
        return {x, float(math.floor(x)), float(round(x)), max(2.0, math.floor(x))}
    if how == "below 2":
        return {float(math.ceil(x)), x}
    return {float(math.ceil(x)), float(max(2, math.ceil(x)))}


PILOTS = {  # name: (errors of arm a, errors of arm b, k), as test errors out of 10,000
    "5 seeds, the distilled student better": (
        [146, 139, 152, 143, 148], [141, 140, 146, 139, 141], 2.0),
    "4 seeds, a small difference": ([91, 97, 88, 94], [90, 95, 88, 91], 2.0),
    "6 seeds, arm a better (a negative difference)": (
        [212, 205, 219, 208, 214, 210], [214, 212, 218, 213, 216, 212], 2.0),
    "5 seeds, k = 3": ([74, 71, 77, 70, 75], [71, 70, 72, 69, 70], 3.0),
}


def _what(a, b, k) -> str:
    return f"seeds_needed(errors_a {list(a)}, errors_b {list(b)}, k={k:g})"


def _answer(fn, a, b, k) -> float:
    got = call(fn, np.array(a), np.array(b), k, name="seeds_needed")
    return as_number(got, _what(a, b, k))


MESSAGES = {
    "unpaired": "the standard deviation is that of two independent arms, "
                "sqrt(s_a^2 + s_b^2), not that of the paired differences.",
    "ddof=0": "the standard deviation of the differences divides by n, not n - 1.",
    "no ceil": "the number of seeds is not rounded up to a whole number.",
    "below 2": "it is below 2: a standard error needs at least 2 seeds.",
}


def _judge(fn, a, b, k, hows=None) -> None:
    got = _answer(fn, a, b, k)
    ref = reference_seeds(a, b, k)
    if got == ref:
        return
    message = f"{_what(a, b, k)} returned {got:g}, expected {ref}"
    found = [how for how in hows or MESSAGES
             if any(abs(got - w) < 1e-9 for w in mistaken_seeds(a, b, k, how))]
    if len(found) == 1:
        raise CheckFailure(f"{message}: {MESSAGES[found[0]]}")
    if found:  # a whole number: several mistakes can give it; name each, blame none
        raise CheckFailure(f"{message}; each of these mistakes gives that here: "
                           + " Or ".join(MESSAGES[how] for how in found))
    raise CheckFailure(message + ".", basic=hows is not None)


_HINT = ("The seeds are paired: work with the per-seed differences d = a - b, their "
         "mean and their standard deviation (with n - 1). The standard error with n "
         "seeds is that deviation over sqrt(n); find the smallest whole n, at least "
         "2, for which the mean is k standard errors or more away from 0.")

for _name in PILOTS:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(seeds_needed):
            _judge(seeds_needed, *PILOTS[name])

    _core(_name)


def _mistake_case(name, how, hint, a, b, k=2.0):
    @q.case(name, hint=hint)
    def _(seeds_needed):
        _judge(seeds_needed, a, b, k, hows=[how])


_mistake_case("the spread is that of the paired differences", "unpaired",
              "The same seed moves both arms alike; that shared part cancels in the "
              "difference of a pair. The spread that matters is that of the "
              "differences, often much smaller than the two arms' spreads combined.",
              *PILOTS["5 seeds, the distilled student better"][:2])
_mistake_case("the pilot's standard deviation divides by n - 1", "ddof=0",
              "A standard deviation estimated from a sample divides by n - 1 "
              "(ddof=1 in NumPy); np.std divides by n unless told otherwise.",
              [91, 97, 88, 94], [90, 96, 88, 90])
_mistake_case("a number of seeds is a whole number, rounded up", "no ceil",
              "A fraction of a seed cannot be run, and rounding down leaves the "
              "difference short of k standard errors: round up.",
              [146, 139, 152, 143, 148], [141, 140, 146, 139, 141])
_mistake_case("at least 2 seeds", "below 2",
              "A pilot whose difference is far larger than its spread asks for 1 "
              "seed or less, but a standard deviation (and so a standard error) "
              "needs 2 seeds at least.", [150, 152, 149, 151], [120, 121, 119, 121])


@q.case("no difference in the pilot raises ValueError",
        hint="When the pilot's mean difference is 0, no number of seeds makes it "
             "k standard errors away from 0: raise ValueError rather than dividing by "
             "zero.")
def _(seeds_needed):
    a, b = [100, 104, 98, 102], [101, 103, 99, 101]
    try:
        got = call(seeds_needed, np.array(a), np.array(b), 2.0, name="seeds_needed")
    except ValueError:
        return
    except Exception as exc:
        raise CheckFailure(f"{_what(a, b, 2.0)} raised {type(exc).__name__}, expected "
                           "ValueError.")
    raise CheckFailure(f"{_what(a, b, 2.0)} returned {_short(got)}, expected a "
                       "ValueError.")


@q.case("returns a Python int", kind="property",
        hint="Return the number of seeds as an int (int(...) of math.ceil).")
def _(seeds_needed):
    a, b, k = PILOTS["4 seeds, a small difference"]
    got = call(seeds_needed, np.array(a), np.array(b), k, name="seeds_needed")
    if not isinstance(got, int) or isinstance(got, bool):
        raise CheckFailure(f"{_what(a, b, k)} returned {_short(got)}, a "
                           f"{type(got).__name__}; expected a Python int.")
