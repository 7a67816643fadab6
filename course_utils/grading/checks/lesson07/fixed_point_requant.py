"""Checks of 07.fixed_point_requant: Integer-only requantization with a fixed-point
multiplier (Jacob et al. 2018, gemmlowp)."""
from __future__ import annotations

import math

import torch

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _tensor, generator, watching


q = question("07.fixed_point_requant",
             "Integer-only requantization with a fixed-point multiplier",
             answers=["fixed_point_requant"], timeout=10)


def quantize_multiplier(M: float) -> tuple[int, int]:
    """(M0, shift) with M = M0 2^-(31 + shift) up to M0's rounding, M0 an integer in
    [2^30, 2^31) and shift >= 0, for 0 < M < 1 (gemmlowp's
    QuantizeMultiplierSmallerThanOne)."""
    mantissa, exponent = math.frexp(M)  # M = mantissa 2^exponent, mantissa in [0.5, 1)
    M0 = round(mantissa * 2 ** 31)
    if M0 == 2 ** 31:  # the mantissa rounded up to 1
        M0 //= 2
        exponent += 1
    return M0, -exponent


def _round_shift(p: torch.Tensor, n: int, how: str = "half up") -> torch.Tensor:
    """p / 2^n rounded to an integer (int64), by ``how``."""
    if how == "half up":
        return (p + (1 << (n - 1))) >> n
    if how == "floor":
        return p >> n
    if how == "toward zero":
        return torch.where(p >= 0, p >> n, -((-p) >> n))
    if how == "half away":
        return torch.where(p >= 0, (p + (1 << (n - 1))) >> n,
                           -((-p + (1 << (n - 1))) >> n))
    if how == "half even":
        down = p >> n
        rest = p - (down << n)
        half = 1 << (n - 1)
        up = (rest > half) | ((rest == half) & (down % 2 == 1))
        return down + up.long()
    raise ValueError(how)


def reference_requant(acc, M: float, zero_point: int, dtype) -> torch.Tensor:
    """round(acc M) + zero_point, clamped to the range of ``dtype``, in integer
    arithmetic: acc M0 in int64, then divided by 2^(31 + shift) rounding half up."""
    M0, shift = quantize_multiplier(M)
    y = _round_shift(acc.to(torch.int64) * M0, 31 + shift)
    info = torch.iinfo(dtype)
    return (y + zero_point).clamp(info.min, info.max).to(dtype)


def float_requant(acc, M: float, zero_point: int, dtype) -> torch.Tensor:
    """The same in float64, floor(acc M + 1/2): equal to the reference wherever acc M is
    not within |acc| 2^-31 of a half-integer."""
    y = torch.floor(acc.double() * M + 0.5).long()
    info = torch.iinfo(dtype)
    return (y + zero_point).clamp(info.min, info.max).to(dtype)


def mistaken_requant(acc, M: float, zero_point: int, dtype) -> dict[str, torch.Tensor]:
    """The results (int64) of typical mistakes."""
    M0, shift = quantize_multiplier(M)
    p = acc.to(torch.int64) * M0
    info = torch.iinfo(dtype)

    def out(y, clamp=True, zp=zero_point):
        y = y + zp
        return y.clamp(info.min, info.max) if clamp else y

    n = 31 + shift
    wrong = {how: out(_round_shift(p, n, how))
             for how in ("floor", "toward zero", "half away", "half even")}
    for bits in (15, 16, 24, 31, 32):  # a fixed point without normalising M
        m0 = round(M * 2 ** bits)
        wrong[f"fixed {bits}"] = out(_round_shift(acc.to(torch.int64) * m0, bits)
                                     if m0 else torch.zeros_like(p))
    unclamped = out(_round_shift(p, n), clamp=False)
    wrong["no clamp"] = unclamped
    wrong["no clamp, wrapped"] = unclamped.to(dtype).to(torch.int64)
    wrong["no zero point"] = out(_round_shift(p, n), zp=0)
    return wrong


def accumulators(seed: int, shape, spread: float, M: float,
                 margin: float = 0.02) -> torch.Tensor:
    """Seeded int32 accumulators ~ N(0, spread^2) whose acc M is at least ``margin``
    away from a half-integer, so that every convention of rounding (and the float64
    oracle) agrees on them."""
    g = generator(seed)
    n = math.prod(shape)
    raw = (torch.randn(4 * n, generator=g, dtype=torch.float64) * spread).round()
    raw = raw.clamp(-2 ** 31 + 1, 2 ** 31 - 1)
    frac = torch.frac((raw * M).abs())
    keep = raw[(frac - 0.5).abs() > margin][:n]
    assert keep.numel() == n
    return keep.to(torch.int32).reshape(shape)


def _what(acc, M, zero_point, dtype) -> str:
    return (f"fixed_point_requant(acc {tuple(acc.shape)}, M={M:g}, "
            f"zero_point={zero_point}, dtype={dtype})")


def _answer(fn, acc, M, zero_point, dtype, watch: bool = False):
    """The answer on a copy of ``acc`` as int64, of acc's shape; with ``watch``, also
    what the watcher saw."""
    what = _what(acc, M, zero_point, dtype)
    seen = None
    if watch:
        with watching(min_float=max(2, acc.numel())) as seen:
            got = call(fn, acc.clone(), M, zero_point, dtype, check_mutation=False,
                       name="fixed_point_requant")
    else:
        got = call(fn, acc.clone(), M, zero_point, dtype, check_mutation=False,
                   name="fixed_point_requant")
    got = _tensor(got, what, tuple(acc.shape))
    if got.is_floating_point():
        got_r = got.detach().double()
        if not torch.equal(got_r, got_r.round()):
            raise CheckFailure(f"{what} holds numbers that are not integers, "
                               f"{_short(got)}: the output is quantized.", basic=True)
    return got.detach().to(torch.int64), seen


def _first_difference(got, ref, what, basic=False) -> None:
    bad = got != ref.to(torch.int64)
    if bad.any():
        i = tuple(int(j) for j in bad.nonzero()[0])
        raise CheckFailure(f"{what} differs from the expected values at "
                           f"{int(bad.sum())} of {bad.numel()} positions; first at "
                           f"{i}: {int(got[i])}, expected {int(ref[i])}.", basic=basic)


def _expect(fn, acc, M, zero_point, dtype) -> None:
    got, _ = _answer(fn, acc, M, zero_point, dtype)
    _first_difference(got, reference_requant(acc, M, zero_point, dtype),
                      _what(acc, M, zero_point, dtype))


_HINT = ("Write M as an integer M0 in [2^30, 2^31) times a power of two; multiply the "
         "accumulators by M0 in 64 bits, divide by the power of two with rounding to "
         "the nearest integer (an added half, then a shift), then add the zero point "
         "and clamp to the output type's range.")


@q.case("uint8 output, M = 0.0123, zero point 128 (some outputs saturate)",
        kind="core", hint=_HINT)
def _(fixed_point_requant):
    M = 0.0123
    _expect(fixed_point_requant, accumulators(0, (4, 16), 4000.0, M), M, 128,
            torch.uint8)


@q.case("int8 output, M = 3.7e-4, zero point -5", kind="core", hint=_HINT)
def _(fixed_point_requant):
    M = 3.7e-4
    _expect(fixed_point_requant, accumulators(1, (64,), 2e5, M), M, -5, torch.int8)


@q.case("uint8 output, M = 0.73, zero point 3, small accumulators", kind="core",
        hint=_HINT)
def _(fixed_point_requant):
    M = 0.73
    _expect(fixed_point_requant, accumulators(2, (8, 8), 60.0, M), M, 3, torch.uint8)


def _judge(fn, keys, message, acc, M, zero_point, dtype) -> None:
    got, _ = _answer(fn, acc, M, zero_point, dtype)
    ref = reference_requant(acc, M, zero_point, dtype).to(torch.int64)
    if torch.equal(got, ref):
        return
    what = _what(acc, M, zero_point, dtype)
    wrong = mistaken_requant(acc, M, zero_point, dtype)
    if any(torch.equal(got, wrong[k]) for k in keys):
        raise CheckFailure(f"{what}: {message}")
    _first_difference(got, ref, what, basic=True)


@q.case("rounds to the nearest integer, not down",
        hint="A right shift divides and rounds DOWN (toward minus infinity), and a "
             "cast truncates toward zero: either way the results are biased by half a "
             "step. Add half of the divisor before shifting.")
def _(fixed_point_requant):
    M = 0.0123
    _judge(fixed_point_requant, ["floor", "toward zero"], "the division by the power "
           "of two truncates instead of rounding to the nearest integer.",
           accumulators(3, (50,), 3000.0, M), M, 128, torch.uint8)


@q.case("M0 is normalised into [2^30, 2^31): a small M keeps its precision",
        hint="A fixed number of fractional bits leaves a small multiplier (1e-7 is "
             "common when a big accumulator meets a coarse output scale) with a few "
             "significant bits only. Scale M by a power of two until it lies in "
             "[1/2, 1) first, so that M0 always has 31 significant bits.")
def _(fixed_point_requant):
    M = 1.3711e-7  # M 2^31 = 294.45: 31 fractional bits keep 3 significant digits
    _judge(fixed_point_requant, ["fixed 15", "fixed 16", "fixed 24", "fixed 31",
                                 "fixed 32"],
           "M is written with a fixed number of fractional bits, not normalised: at "
           "this small M the multiplier lost most of its precision.",
           accumulators(4, (200,), 2.5e8, M), M, 128, torch.uint8)


@q.case("the product acc M0 needs 64 bits",
        hint="acc is an int32 and M0 is about 2^31: their product needs up to 62 "
             "bits, and int32 arithmetic wraps around silently. Widen acc to int64 "
             "before multiplying.")
def _(fixed_point_requant):
    M = 0.0123
    acc = accumulators(5, (30,), 3000.0, M)
    what = _what(acc, M, 128, torch.uint8)
    with watching(min_float=acc.numel()) as seen:
        try:
            got = call(fixed_point_requant, acc.clone(), M, 128, torch.uint8,
                       check_mutation=False, name="fixed_point_requant")
        except Exception:
            got = None  # a crash after the overflow is named below, else re-raised
            if not _narrow(seen):
                raise
    if _narrow(seen):
        ref = reference_requant(acc, M, 128, torch.uint8)
        if not (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(acc.shape)
                and torch.equal(got.detach().to(torch.int64), ref.to(torch.int64))):
            raise CheckFailure(f"{what}: an integer operation wrapped around in 32 "
                               f"bits ({_narrow(seen)[0]}).")
    got, _ = _answer(fixed_point_requant, acc, M, 128, torch.uint8)
    _first_difference(got, reference_requant(acc, M, 128, torch.uint8), what,
                      basic=True)


def _narrow(seen) -> list[str]:
    """The int32 (or narrower) operations that wrapped around."""
    return [o for o in seen.overflows if o.startswith(("int32", "int16", "int8"))]


@q.case("integer arithmetic only: acc never becomes a float",
        hint="The point of a fixed-point multiplier is a pipeline with no float unit: "
             "the accumulators stay integers from the matmul to the output. "
             "Multiplying acc by M as a float tensor, even in float64, is what this "
             "replaces.")
def _(fixed_point_requant):
    M = 0.0123
    acc = accumulators(6, (40,), 3000.0, M)
    got, seen = _answer(fixed_point_requant, acc, M, 128, torch.uint8, watch=True)
    if seen.floats:
        raise CheckFailure(f"{_what(acc, M, 128, torch.uint8)} computes with floating "
                           f"point tensors ({seen.floats[0]}).")


@q.case("the zero point is added, then the result clamped to the type's range",
        hint="The output is round(acc M) + zero_point, and it must fit the output "
             "type: values beyond its range are clamped (saturated), not wrapped "
             "around by the cast.")
def _(fixed_point_requant):
    M = 0.0123
    _judge(fixed_point_requant, ["no clamp", "no clamp, wrapped", "no zero point"],
           "the zero point is missing, or the values beyond the output type's range "
           "are not clamped.", accumulators(7, (80,), 2e4, M), M, 100, torch.uint8)


@q.case("a result exactly halfway rounds up (toward +infinity)",
        hint="The question's convention for ties is the one an added half and a shift "
             "give: -1.5 becomes -1 and 2.5 becomes 3 (not half away from zero, not "
             "half to even).")
def _(fixed_point_requant):
    acc = torch.tensor([-10, -6, -2, 2, 6, 10, -3, 5, 14, -14], dtype=torch.int32)
    _judge(fixed_point_requant, ["half away", "half even"], "the results exactly "
           "halfway between two integers are not rounded up.", acc, 0.25, 0,
           torch.int8)


@q.case("returns the dtype asked for, acc's shape; acc left unchanged",
        kind="property",
        hint="Return a tensor of the dtype passed (torch.uint8 or torch.int8) and of "
             "acc's shape, without changing acc.")
def _(fixed_point_requant):
    acc = accumulators(8, (3, 5), 500.0, 0.05)
    kept = acc.clone()
    for dtype, zp in ((torch.uint8, 128), (torch.int8, 0)):
        got = call(fixed_point_requant, acc, 0.05, zp, dtype, check_mutation=False,
                   name="fixed_point_requant")
        if not torch.equal(acc, kept):
            raise CheckFailure("fixed_point_requant changed acc in place.")
        got = _tensor(got, _what(acc, 0.05, zp, dtype), (3, 5))
        if got.dtype != dtype:
            raise CheckFailure(f"{_what(acc, 0.05, zp, dtype)} returned dtype "
                               f"{got.dtype}; expected {dtype}.")
