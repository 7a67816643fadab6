"""Checks of 01.batch_size_for_noise: A batch size chosen from the gradient noise.

The learner gets per-example gradients G (N, D) and a tolerance, and returns the
smallest batch size B whose mini-batch gradient, B distinct examples drawn without
replacement, is within tol of the full gradient in expected squared norm, relative to
the full gradient's squared norm. The reference scans B = 1 .. N with the variance that
lesson 01 derives in section 5 (with the finite-population factor); every problem below
is built so that no B is within a hair of the target, so a closed form rounded up and a
scan give the same integer.
"""
from __future__ import annotations

import math

import numpy as np

from ...asserts import CheckFailure, as_number, call
from ...registry import question


q = question("01.batch_size_for_noise", "A batch size chosen from the gradient noise",
             answers=["batch_size_for_noise"], timeout=10)


# ----------------------------------------------------------------------- reference
def _spread(G: np.ndarray) -> float:
    """sigma_g^2: the population variance of the rows of G, summed over the columns."""
    deviations = G - G.mean(axis=0)  # (N, D)
    return float((deviations**2).sum(axis=1).mean())


def _signal(G: np.ndarray) -> float:
    """The squared norm of the full gradient, the mean of the rows of G."""
    mean = G.mean(axis=0)  # (D,)
    return float(mean @ mean)


def _noise(G: np.ndarray, B: int, spread: float | None = None) -> float:
    """E ||g_B - mean||^2 for B of the N rows drawn without replacement (lesson §5)."""
    n = len(G)
    spread = _spread(G) if spread is None else spread
    return spread / B * (n - B) / (n - 1)


def _smallest(G: np.ndarray, tol: float, noise=_noise) -> int:
    """The smallest B in 1 .. N with noise(G, B) <= tol * signal; N if there is none.

    With the noise of lesson §5 there always is one (the noise is 0 at B = N); the
    slips below may have none, and are then taken as N, where a learner would clip.
    """
    target = tol * _signal(G)
    return next((B for B in range(1, len(G) + 1) if noise(G, B) <= target), len(G))


def _reference(G: np.ndarray, tol: float) -> int:
    return _smallest(G, tol)


# ------------------------------------------------------------------------ problems
def _problem(seed: int, n: int, d: int, bias: float) -> np.ndarray:
    """Seeded per-example gradients (N, D): a common part of size ``bias`` + noise."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    scales = rng.uniform(0.5, 2.0, size=d)  # columns of different spread
    return bias * direction + rng.normal(size=(n, d)) * scales  # (N, D)


def _answer(batch_size_for_noise, G: np.ndarray, tol: float,
            mutation: bool = True) -> int:
    """The learner's B as an int; not a whole number from 1 to N is a basic failure."""
    got = call(batch_size_for_noise, G, tol, check_mutation=mutation,
               name="batch_size_for_noise")
    what = f"batch_size_for_noise(G, {tol!r}) for G of shape {G.shape}"
    value = as_number(got, what)
    if not math.isfinite(value) or value != round(value):
        raise CheckFailure(f"{what} is {value!r}: a batch size is a whole number of "
                           "examples.", basic=True)
    if value < 1:
        raise CheckFailure(f"{what} is {int(value)}: a batch holds at least one "
                           "example, even when no noise is left to remove.", basic=True)
    if value > len(G):
        raise CheckFailure(f"{what} is {int(value)}: a batch holds at most the "
                           f"N = {len(G)} examples there are.", basic=True)
    return int(value)


# The slips, each as the B it gives: (what it is, a function of (G, tol)).
def _with_replacement(G, tol):
    spread = _spread(G)
    return _smallest(G, tol, lambda G, B: spread / B)


def _unbiased(G, tol):
    n, spread = len(G), _spread(G)
    return _smallest(G, tol, lambda G, B: _noise(G, B, spread * n / (n - 1)))


def _mean_over_coordinates(G, tol):
    spread = _spread(G) / G.shape[1]
    return _smallest(G, tol, lambda G, B: _noise(G, B, spread))


def _norm_not_squared(G, tol):
    scale = math.sqrt(_signal(G)) / _signal(G)  # tol * |g| = (tol * scale) * |g|^2
    return _smallest(G, tol * scale)


def _tol_alone(G, tol):
    return _smallest(G, tol / _signal(G))


# ----------------------------------------------------------------------- the cases
@q.case("is a whole number of examples from 1 to N", kind="property",
        hint="Return the batch size as an int between 1 and N (the number of rows of "
             "G), not the noise or an array of noises.")
def _(batch_size_for_noise):
    _answer(batch_size_for_noise, _problem(0, 40, 3, 0.8), 0.2)


@q.case("draws the batch without replacement (the finite-population factor)",
        hint="One shuffled epoch draws B distinct examples: the variance of their mean "
             "carries the finite-population factor of lesson §5 and is 0 at B = N. The "
             "plain 1/B law holds for examples drawn with replacement.")
def _(batch_size_for_noise):
    G, tol = _problem(20, 60, 3, 0.8), 0.05  # 27 without replacement, 48 with
    got = _answer(batch_size_for_noise, G, tol)
    if got != _reference(G, tol) and got == _with_replacement(G, tol):
        raise CheckFailure(f"With N = 60 your batch size is {got}, the one for "
                           "examples drawn with replacement; without replacement "
                           f"{_reference(G, tol)} examples already meet the target.")


@q.case("uses the population variance of the gradients (1/N)",
        hint="sigma_g^2 in lesson §5 averages the squared deviations over the N "
             "examples (1/N), the population variance, not the unbiased 1/(N - 1) "
             "estimate: np.var's default, not torch.var's.")
def _(batch_size_for_noise):
    G, tol = _problem(24, 12, 3, 1.0), 0.1  # 7 with 1/N, 8 with 1/(N - 1)
    got = _answer(batch_size_for_noise, G, tol)
    if got != _reference(G, tol) and got == _unbiased(G, tol):
        raise CheckFailure(f"Your batch size {got} is the one for the unbiased "
                           f"variance (1/(N - 1) with N = {len(G)}).")


@q.case("sums the squared error over all D coordinates",
        hint="The expected SQUARED NORM of the error adds up the variances of all D "
             "coordinates of the gradient; averaging them over the coordinates divides "
             "the noise by D.")
def _(batch_size_for_noise):
    G, tol = _problem(3, 80, 4, 0.6), 0.1  # 10 summed, 3 averaged
    got = _answer(batch_size_for_noise, G, tol)
    if got != _reference(G, tol) and got == _mean_over_coordinates(G, tol):
        raise CheckFailure(f"Your batch size {got} is the one for the noise averaged "
                           "over the D = 4 coordinates, not summed.")


@q.case("compares with tol times the SQUARED norm of the full gradient",
        hint="Noise and target must be in the same units: the expected squared norm "
             "of the error against tol times the squared norm of the full gradient "
             "(the mean of the rows of G), not its norm and not tol alone.")
def _(batch_size_for_noise):
    G, tol = _problem(4, 50, 3, 2.0), 0.05  # 6; 15 against the norm, 30 against tol
    got = _answer(batch_size_for_noise, G, tol)
    reference = _reference(G, tol)
    slips = {"tol times the norm (not squared) of the full gradient":
             _norm_not_squared(G, tol),
             "tol alone, without the full gradient": _tol_alone(G, tol)}
    for what, slip in slips.items():
        if got != reference and got == slip:
            raise CheckFailure(f"Your batch size {got} compares the noise with {what}.")


@q.case("the smallest batch size that meets the target, not one off",
        hint="The answer is the smallest B whose expected noise is at most the "
             "target: the batch one smaller misses it. Rounding a real-valued solution "
             "down, or returning the last B that fails, is one off.")
def _(batch_size_for_noise):
    G, tol = _problem(5, 100, 3, 0.7), 0.08
    got = _answer(batch_size_for_noise, G, tol)
    reference = _reference(G, tol)
    if got in (reference - 1, reference + 1):
        side = "misses the target" if got < reference else "is not the smallest"
        ratio = _noise(G, got) / _signal(G)
        raise CheckFailure(f"Your batch size is {got}, which {side}: the expected "
                           f"noise at B = {got} is {ratio:.4f} times the squared norm "
                           f"of the full gradient, for tol = {tol}.")


@q.case("at a minimum of the loss only the full batch is exact",
        hint="Where the full gradient is 0 (a minimum of the loss) the target is 0, "
             "and only B = N has no noise at all: check the edge case instead of "
             "dividing by zero.")
def _(batch_size_for_noise):
    G = _problem(6, 20, 2, 0.0)
    G = G - G.mean(axis=0)  # the full gradient is exactly 0
    got = _answer(batch_size_for_noise, G, 0.5)
    if got != len(G):
        raise CheckFailure(f"With a full gradient of 0 your batch size is {got}, not "
                           f"N = {len(G)}.")


@q.case("one example is enough when every example has the same gradient",
        hint="When all rows of G are equal, every mini-batch gradient is exact: the "
             "noise is 0 already for B = 1.")
def _(batch_size_for_noise):
    G = np.tile(np.array([0.5, -1.0, 2.0]), (15, 1))  # (15, 3), no spread at all
    got = _answer(batch_size_for_noise, G, 0.01)
    if got != 1:
        raise CheckFailure(f"With identical per-example gradients your batch size is "
                           f"{got}, not 1.")


@q.case("does not change G in place", kind="property",
        hint="In-place update: `G -= G.mean(0)` changes the caller's array. Build new "
             "arrays instead.")
def _(batch_size_for_noise):
    _answer(batch_size_for_noise, _problem(7, 30, 2, 1.0), 0.3)


_HINT = ("From the rows of G: the full gradient, the population variance of the rows "
         "about it, and lesson §5's expected squared error of a mean of B distinct "
         "rows; return the smallest B whose error is at most tol times the full "
         "gradient's squared norm.")

# (seed, N, D, size of the common part, tol): answers 35, 24 and 84, none near a tie
CORE = [(10, 200, 3, 0.6, 0.05), (11, 64, 5, 0.4, 0.25), (12, 500, 2, 1.0, 0.01)]


def _core(batch_size_for_noise, seed, n, d, bias, tol):
    G = _problem(seed, n, d, bias)
    got = _answer(batch_size_for_noise, G, tol, mutation=False)
    expected = _reference(G, tol)
    if got != expected:
        ratio = _noise(G, got) / _signal(G)
        raise CheckFailure(f"batch_size_for_noise(G, {tol}) for G of shape {G.shape} "
                           f"is {got}, expected {expected}. (At B = {got} the expected "
                           f"noise is {ratio:.4g} times the squared norm of the full "
                           "gradient.)")


@q.case("matches the reference for N = 200, D = 3, tol = 0.05", kind="core", hint=_HINT)
def _(batch_size_for_noise):
    _core(batch_size_for_noise, *CORE[0])


@q.case("matches the reference for N = 64, D = 5, tol = 0.25", kind="core", hint=_HINT)
def _(batch_size_for_noise):
    _core(batch_size_for_noise, *CORE[1])


@q.case("matches the reference for N = 500, D = 2, tol = 0.01", kind="core", hint=_HINT)
def _(batch_size_for_noise):
    _core(batch_size_for_noise, *CORE[2])
