"""Checks of 07.clipped_gaussian_mse: The error of clipped uniform quantization of a
Gaussian."""
from __future__ import annotations

import math

from ...asserts import CheckFailure, as_number, call, fmt_pair
from ...registry import question


q = question("07.clipped_gaussian_mse",
             "The error of clipped uniform quantization of a Gaussian",
             answers=["clipped_gaussian_mse"], timeout=10)

RTOL = 1e-6  # an exact expectation in float64; a sampled estimate is far off


def _tail(a: float) -> float:
    """P(Z > a) for Z ~ N(0, 1)."""
    return 0.5 * math.erfc(a / math.sqrt(2.0))


def _pdf(a: float) -> float:
    return math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)


def clipping_error(c: float, sigma: float) -> float:
    """E[(|x| - c)^2 ; |x| > c] for x ~ N(0, sigma^2): both tails."""
    a = c / sigma
    return 2.0 * ((sigma ** 2 + c ** 2) * _tail(a) - c * sigma * _pdf(a))


def step(bits: int, c: float) -> float:
    """The step of the symmetric grid of ``bits`` bits clipped at c: the levels are
    k s for k = -(2^(bits-1) - 1) .. 2^(bits-1) - 1, the largest one at c."""
    return c / (2 ** (bits - 1) - 1)


def reference_mse(bits: int, c: float, sigma: float) -> float:
    """The model's expected squared error: a value inside [-c, c] is off by a rounding
    error uniform over one step (variance s^2 / 12), a value beyond is clipped to +-c
    and off by its distance to c."""
    s = step(bits, c)
    inside = 1.0 - 2.0 * _tail(c / sigma)
    return s * s / 12.0 * inside + clipping_error(c, sigma)


def mistaken_mse(bits: int, c: float, sigma: float) -> dict[str, float]:
    """The values of typical mistakes."""
    s = step(bits, c)
    inside = 1.0 - 2.0 * _tail(c / sigma)
    clip = clipping_error(c, sigma)
    return {
        "no clipping": s * s / 12.0 * inside,
        "no P": s * s / 12.0 + clip,
        "s^2/4": s * s / 4.0 * inside + clip,
        "s^2/6": s * s / 6.0 * inside + clip,
        "one tail": s * s / 12.0 * inside + clip / 2.0,
        "c in sigmas": reference_mse(bits, c * sigma, sigma),
        "not standardised": (s * s / 12.0 * (1.0 - 2.0 * _tail(c))
                             + 2.0 * ((sigma ** 2 + c ** 2) * _tail(c)
                                      - c * sigma * _pdf(c))),
        "2^b bins": (2 * c / 2 ** bits) ** 2 / 12.0 * inside + clip,
        "2^b - 1 steps": (2 * c / (2 ** bits - 1)) ** 2 / 12.0 * inside + clip,
    }


def _what(bits, c, sigma) -> str:
    return f"clipped_gaussian_mse(bits={bits}, c={c:g}, sigma={sigma:g})"


def _answer(fn, bits, c, sigma) -> float:
    got = call(fn, bits, c, sigma, name="clipped_gaussian_mse")
    return as_number(got, _what(bits, c, sigma))


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0)


def _expect(fn, bits, c, sigma) -> None:
    got = _answer(fn, bits, c, sigma)
    ref = reference_mse(bits, c, sigma)
    if not _close(got, ref):
        a, b = fmt_pair(got, ref)
        raise CheckFailure(f"{_what(bits, c, sigma)} is {a}, expected {b} (relative "
                           f"tolerance {RTOL:g}).")


_HINT = ("Add the two parts of the model, each weighted by how likely it is: inside "
         "[-c, c] the rounding error, uniform over one step of the grid the question "
         "states; beyond c, on both sides, the squared distance to c. Both have closed "
         "forms in the normal distribution's density and tail (math.erf).")


@q.case("8 bits, clipped near the optimum: c = 3.9 sigma, sigma = 1", kind="core",
        hint=_HINT)
def _(clipped_gaussian_mse):
    _expect(clipped_gaussian_mse, 8, 3.9, 1.0)


@q.case("4 bits, weights of a trained layer: sigma = 0.05, c = 0.12", kind="core",
        hint=_HINT)
def _(clipped_gaussian_mse):
    _expect(clipped_gaussian_mse, 4, 0.12, 0.05)


@q.case("2 bits, clipped hard: sigma = 2, c = 1.5", kind="core", hint=_HINT)
def _(clipped_gaussian_mse):
    _expect(clipped_gaussian_mse, 2, 1.5, 2.0)


def _judge(fn, keys, message, bits, c, sigma) -> None:
    got = _answer(fn, bits, c, sigma)
    ref = reference_mse(bits, c, sigma)
    if _close(got, ref):
        return
    wrong = mistaken_mse(bits, c, sigma)
    what = _what(bits, c, sigma)
    a, b = fmt_pair(got, ref)
    if any(_close(got, wrong[k]) for k in keys):
        raise CheckFailure(f"{what} is {a}, expected {b}: {message}")
    raise CheckFailure(f"{what} is {a}, expected {b}.", basic=True)


@q.case("the clipped values count",
        hint="Clipping is an error too: a value beyond c comes back as c, off by its "
             "distance to c. With a tight threshold that part dominates, and it is the "
             "reason the best threshold is not as small as possible.")
def _(clipped_gaussian_mse):
    _judge(clipped_gaussian_mse, ["no clipping"], "only the rounding error is counted; "
           "the clipping error of the values beyond c is missing.", 4, 1.0, 1.0)


@q.case("the rounding error is the error of the values inside [-c, c] only",
        hint="Each value is either rounded or clipped, not both: the rounding error "
             "applies to the values inside [-c, c], a fraction P(|x| <= c) of them. At "
             "a tight threshold that fraction is well below 1.")
def _(clipped_gaussian_mse):
    _judge(clipped_gaussian_mse, ["no P"], "the rounding error is counted for every "
           "value, the clipped ones too (it is not weighted by the probability of "
           "|x| <= c).", 2, 1.0, 1.0)


@q.case("the rounding error of one step has variance s^2 / 12",
        hint="An error spread evenly over one step, from -s/2 to s/2, has mean 0 and "
             "variance s^2 / 12; the half step squared (s^2 / 4) is its worst case, "
             "not its mean.")
def _(clipped_gaussian_mse):
    _judge(clipped_gaussian_mse, ["s^2/4", "s^2/6"], "the rounding error's variance is "
           "not s^2 / 12 (s^2 / 4 or s^2 / 6).", 4, 2.5, 1.0)


@q.case("both tails are clipped",
        hint="The grid is symmetric: values below -c are clipped as well as values "
             "above c, and the Gaussian puts as much mass in each tail.")
def _(clipped_gaussian_mse):
    _judge(clipped_gaussian_mse, ["one tail"], "the clipping error counts one tail "
           "only (half of it is missing).", 3, 1.2, 1.0)


@q.case("c is a threshold in the units of x, not a number of sigmas",
        hint="c and sigma are both in the units of x: clipping a layer with sigma = "
             "0.05 at c = 0.12 clips at 2.4 sigma. Work with c / sigma where a "
             "standard normal is needed.")
def _(clipped_gaussian_mse):
    _judge(clipped_gaussian_mse, ["c in sigmas", "not standardised"], "c is taken "
           "as a number of sigmas (the threshold used is c * sigma, or the standard "
           "normal's tail and density are taken at c, not at c / sigma).", 4, 1.0,
           0.5)


@q.case("the step of the stated grid: 2^(bits-1) - 1 levels each side of 0",
        hint="The grid of the question is the symmetric one of the lesson (int8: "
             "-127..127): 0 and 2^(bits-1) - 1 levels on each side, the largest at c. "
             "Another count of levels gives another step.")
def _(clipped_gaussian_mse):
    _judge(clipped_gaussian_mse, ["2^b bins", "2^b - 1 steps"], "the step is not the "
           "stated grid's (2^(bits-1) - 1 levels on each side of 0, the last at c).",
           3, 2.0, 1.0)


@q.case("returns a Python float; takes integer arguments too", kind="property",
        hint="Return float(...) of your result; c and sigma may be given as ints.")
def _(clipped_gaussian_mse):
    got = call(clipped_gaussian_mse, 8, 4, 1, name="clipped_gaussian_mse")
    value = as_number(got, _what(8, 4, 1))
    if not isinstance(got, float):
        raise CheckFailure(f"clipped_gaussian_mse(8, 4, 1) returned a "
                           f"{type(got).__name__}; expected a Python float.")
    if not _close(value, reference_mse(8, 4.0, 1.0)):
        raise CheckFailure(f"clipped_gaussian_mse(8, 4, 1) is {value:.9g}, expected "
                           f"{reference_mse(8, 4.0, 1.0):.9g}.", basic=True)
