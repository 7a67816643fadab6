"""Checks of 07.int8_linear_zero_point: An integer Linear layer with an asymmetric
uint8 input (a zero point) and int8 weights per output channel."""
from __future__ import annotations

import torch

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import (_copies, _matches, _plain_mismatch, _tensor, generator,
                      watching)


q = question("07.int8_linear_zero_point",
             "An integer Linear layer with a zero point: uint8 inputs, int8 weights",
             answers=["int8_linear_zero_point"], timeout=10)

def reference_accumulator(x_q, x_zero_point, w_q, x_scale, w_scale, bias):
    """The exact integer accumulator (M, N) int64: sum over k of (x_q - z_x) w_q, plus
    the bias rounded to an integer on the scale x_scale * w_scale[n]."""
    acc = (x_q.to(torch.int64) - x_zero_point) @ w_q.to(torch.int64).T  # (M, N)
    if bias is not None:
        acc = acc + torch.round(bias.double() / (x_scale * w_scale.double())).long()
    return acc


def reference_output(x_q, x_scale, x_zero_point, w_q, w_scale, bias):
    """The dequantized output (M, N) float64: the accumulator times x_scale w_scale."""
    acc = reference_accumulator(x_q, x_zero_point, w_q, x_scale, w_scale, bias)
    return acc.double() * (x_scale * w_scale.double())


def mistaken_outputs(x_q, x_scale, x_zero_point, w_q, w_scale, bias):
    """The outputs (M, N) float64 of typical mistakes."""
    s = x_scale * w_scale.double()  # (N,)
    W = w_q.to(torch.int64).T  # (K, N)
    x = x_q.to(torch.int64)
    b = (torch.round(bias.double() / s).long() if bias is not None
         else torch.zeros(W.shape[1], dtype=torch.int64))
    exact = (x - x_zero_point) @ W
    return {
        "no zero point": (x @ W + b).double() * s,
        "zero point added": ((x + x_zero_point) @ W + b).double() * s,
        "uint8 wrap": (((x - x_zero_point) % 256) @ W + b).double() * s,
        "float bias": exact.double() * s + (bias.double() if bias is not None else 0),
        "no bias": exact.double() * s,
    }


def layer_inputs(seed: int, M: int, K: int, N: int, zero_point: int,
                 spread: int = 255, bias: bool = True):
    """Seeded (x_q uint8 (M, K), x_scale, zero_point, w_q int8 (N, K), w_scale float32
    (N,), bias float32 (N,) or None). ``spread``: how far x_q strays from the zero
    point (255: anywhere in 0..255). The bias is chosen so that bias / (x_scale *
    w_scale) is at least 0.15 away from a half-integer (no rounding tie in either
    precision)."""
    g = generator(seed)
    if spread >= 255:
        x_q = torch.randint(0, 256, (M, K), generator=g)
    else:
        x_q = (zero_point + torch.randint(-spread, spread + 1, (M, K), generator=g))
    x_q = x_q.clamp(0, 255).to(torch.uint8)
    w_q = torch.randint(-127, 128, (N, K), generator=g).to(torch.int8)
    x_scale = 0.0137
    w_scale = (0.002 + 0.008 * torch.rand(N, generator=g)).float()  # (N,)
    b = None
    if bias:
        whole = torch.randint(-3000, 3000, (N,), generator=g).double()
        frac = 0.15 + 0.2 * torch.rand(N, generator=g, dtype=torch.float64)
        frac = torch.where(torch.rand(N, generator=g) < 0.5, frac, 1 - frac)
        b = ((whole + frac) * x_scale * w_scale.double()).float()  # (N,)
    return x_q, x_scale, zero_point, w_q, w_scale, b


def cancelling_inputs(seed: int = 0, M: int = 2, K: int = 4096, N: int = 8):
    """Inputs whose products are large and cancel: in each output, the first half of
    the K products is about +16,000 each and the second half about -16,000, so that
    the running sum climbs past 2^24 (where float32 can no longer hold every integer)
    and comes back near 0. Exact integer accumulation gets every output right; float32
    accumulation does not."""
    g = generator(seed)
    zero_point = 128
    x_q = (zero_point + 126 + torch.randint(-2, 2, (M, K), generator=g)).to(torch.uint8)
    sign = torch.ones(K, dtype=torch.int64)
    sign[K // 2:] = -1
    w_q = (sign * (125 + torch.randint(-4, 3, (N, K), generator=g))).to(torch.int8)
    w_scale = (0.002 + 0.008 * torch.rand(N, generator=g)).float()
    return x_q, 0.0137, zero_point, w_q, w_scale, None


def _what(x_q, x_scale, x_zero_point, w_q, w_scale, bias) -> str:
    return (f"int8_linear_zero_point(x_q {tuple(x_q.shape)}, x_scale={x_scale:g}, "
            f"x_zero_point={x_zero_point}, w_q {tuple(w_q.shape)}, w_scale, bias"
            f"{'=None' if bias is None else ''})")


def _answer(fn, inputs, watch: bool = False):
    """The answer on copies of the inputs, checked to be an (M, N) tensor; with
    ``watch``, also what the watcher saw."""
    x_q, _, _, w_q, _, _ = inputs
    what = _what(*inputs)
    args = _copies(*inputs)
    if watch:
        with watching(min_float=x_q.numel()) as seen:
            got = call(fn, *args, check_mutation=False, name="int8_linear_zero_point")
    else:
        seen = None
        got = call(fn, *args, check_mutation=False, name="int8_linear_zero_point")
    got = _tensor(got, what, (x_q.shape[0], w_q.shape[0]))
    return got.detach(), seen


def _expect(fn, inputs) -> None:
    got, _ = _answer(fn, inputs)
    expect_close(got, reference_output(*inputs).float(), rtol=1e-6,
                 atol=1e-6 * float(reference_output(*inputs).abs().max()),
                 what=_what(*inputs))


_HINT = ("The real input is x_scale (x_q - z_x) and the real weight w_scale[n] w_q: "
         "the product of the two scales comes out of the sum over k, which is then a "
         "sum of integers. Accumulate it in int32 (the zero point included), add the "
         "bias as an integer on the same scale, and multiply by the scales once at the "
         "end.")


@q.case("4 rows, K = 64, 8 outputs, zero point 118, with a bias", kind="core",
        hint=_HINT)
def _(int8_linear_zero_point):
    _expect(int8_linear_zero_point, layer_inputs(0, 4, 64, 8, 118))


@q.case("ReLU outputs (zero point 0), K = 300, no bias", kind="core", hint=_HINT)
def _(int8_linear_zero_point):
    _expect(int8_linear_zero_point, layer_inputs(1, 3, 300, 5, 0, bias=False))


@q.case("MiniLM's feed-forward width, K = 1536, zero point 37, with a bias",
        kind="core", hint=_HINT)
def _(int8_linear_zero_point):
    _expect(int8_linear_zero_point, layer_inputs(2, 8, 1536, 12, 37))


def _judge(fn, key, message, inputs) -> None:
    got, _ = _answer(fn, inputs)
    ref = reference_output(*inputs)
    tol = dict(rtol=1e-6, atol=1e-6 * float(ref.abs().max()))
    if _matches(got, ref.float(), **tol):
        return
    what = _what(*inputs)
    for k in key if isinstance(key, tuple) else (key,):
        wrong = mistaken_outputs(*inputs)[k].float()
        if _matches(got, wrong, **tol):
            raise CheckFailure(f"{what}: {message}")
    _plain_mismatch(got, ref.float(), what, **tol)


@q.case("the zero point is subtracted from every input",
        hint="x_q stands for x_scale (x_q - z_x): the zero point must come off every "
             "input before it is multiplied, or (what integer kernels do) its "
             "contribution, z_x times the sum of each weight row, must come off the "
             "accumulator.")
def _(int8_linear_zero_point):
    _judge(int8_linear_zero_point, ("no zero point", "zero point added"),
           "the zero point's contribution is not subtracted (the output is that of "
           "x_q as if it were the real input, or of x_q + z_x).",
           layer_inputs(3, 3, 50, 4, 200))


@q.case("x_q - z_x does not wrap around in uint8",
        hint="x_q is uint8: in PyTorch, x_q - 37 is uint8 too, and an input below the "
             "zero point wraps around to a large positive number. Widen to a signed "
             "integer type (int32) before subtracting.")
def _(int8_linear_zero_point):
    _judge(int8_linear_zero_point, "uint8 wrap", "x_q - z_x was computed in uint8: the "
           "inputs below the zero point wrapped around to large positive values.",
           layer_inputs(4, 3, 40, 4, 90))


@q.case("the sums need 32 bits: int16 (or int8) overflows",
        hint="One product of a uint8 and an int8 already needs 16 bits, and K of them "
             "need about log2(K) more: int16 or int8 arithmetic wraps around. int32 "
             "holds the sum for any K below about 66,000.")
def _(int8_linear_zero_point):
    inputs = layer_inputs(5, 3, 128, 4, 128)
    got, seen = _answer(int8_linear_zero_point, inputs, watch=True)
    ref = reference_output(*inputs)
    if _matches(got, ref.float(), rtol=1e-6, atol=1e-6 * float(ref.abs().max())):
        return
    small = [o for o in seen.overflows if o.startswith(("int8", "int16"))]
    if small:
        raise CheckFailure(f"{_what(*inputs)}: an integer operation wrapped around "
                           f"({small[0]}): the accumulation runs in a type too narrow "
                           "for these sums.")
    _plain_mismatch(got, ref.float(), _what(*inputs), rtol=1e-6,
                    atol=1e-6 * float(ref.abs().max()))


@q.case("the sum is exact: integers, not a float32 product",
        hint="An integer kernel adds integers exactly. Dequantizing first and "
             "multiplying in float32 rounds once the running sum passes 2^24, and a "
             "large sum that cancels then comes out wrong: keep the inputs as integers "
             "(int32) until the sum is done.")
def _(int8_linear_zero_point):
    inputs = cancelling_inputs()
    got, seen = _answer(int8_linear_zero_point, inputs, watch=True)
    ref = reference_output(*inputs)
    tol = dict(rtol=1e-6, atol=1e-6 * float(ref.abs().max()))
    what = _what(*inputs) + " (large products that cancel)"
    narrow = [t for t in seen.float_matmuls if "float64" not in t]
    if narrow:  # exact here only if the library's blocked sums stayed below 2^24
        raise CheckFailure(f"{what}: the products are summed in floating point "
                           f"({narrow[0]}): float32 keeps 24 bits, and these running "
                           "sums need more.")
    if _matches(got, ref.float(), **tol):
        return
    floats = seen.float_matmuls
    if floats:
        raise CheckFailure(f"{what}: the products are summed in floating point "
                           f"({floats[0]}), which cannot hold these running sums "
                           "exactly.")
    _plain_mismatch(got, ref.float(), what, **tol)


@q.case("the bias is added as an integer on the accumulator's scale",
        hint="An integer kernel has no float bias: it rounds the bias divided by "
             "x_scale w_scale[n] to an int32 and adds it to the accumulator of output "
             "n. Added in float after the scaling, it is off by up to half a step.")
def _(int8_linear_zero_point):
    _judge(int8_linear_zero_point, ("float bias", "no bias"), "the bias is not added "
           "as a rounded integer to the accumulator (it is added in float, or not at "
           "all).", layer_inputs(6, 4, 16, 6, 120, spread=3))


@q.case("returns float32 (M, N); the inputs left unchanged", kind="property",
        hint="Return the dequantized output as a new float32 tensor; do not change "
             "x_q, w_q, w_scale or bias.")
def _(int8_linear_zero_point):
    inputs = layer_inputs(7, 2, 8, 3, 100)
    kept = [t.clone() if isinstance(t, torch.Tensor) else t for t in inputs]
    got = call(int8_linear_zero_point, *inputs, check_mutation=False,
               name="int8_linear_zero_point")
    for a, b in zip(inputs, kept):
        if isinstance(a, torch.Tensor) and not torch.equal(a, b):
            raise CheckFailure("int8_linear_zero_point changed one of its inputs in "
                               "place.")
    got = _tensor(got, _what(*inputs), (2, 3))
    if got.dtype != torch.float32:
        raise CheckFailure(f"{_what(*inputs)} has dtype {got.dtype} ({_short(got)}); "
                           "expected torch.float32.")
