"""Checks of 07.lsq_fake_quant: Fake quantization with a learned step size (LSQ, Esser
et al. 2019)."""
from __future__ import annotations

import math

import torch

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _basic, _num, _tensor, generator


q = question("07.lsq_fake_quant", "Fake quantization with a learned step size (LSQ)",
             answers=["lsq_fake_quant"], timeout=10)


def reference_lsq(x, s: float, qmin: int, qmax: int, grad_scale: float, upstream):
    """(x_hat, dL/dx, dL/ds) in float64 for L = sum(upstream * x_hat): the forward
    s clamp(round(x / s), qmin, qmax); the gradient passes to x where round(x / s) is
    in [qmin, qmax] and is 0 elsewhere; the gradient of s is LSQ's, round(x/s) - x/s
    inside and qmin or qmax beyond, summed and multiplied by grad_scale."""
    v = x.detach().double() / s
    r = torch.round(v)
    inside = (r >= qmin) & (r <= qmax)
    x_hat = s * r.clamp(qmin, qmax)
    up = upstream.double()
    dx = up * inside
    per_value = torch.where(inside, r - v, torch.where(r < qmin, float(qmin),
                                                       float(qmax)))
    ds = grad_scale * float((up * per_value).sum())
    return x_hat, dx, ds


def mistaken_grads(x, s, qmin, qmax, grad_scale, upstream) -> dict[str, object]:
    """The gradients (dx tensor or ds float) of typical mistakes."""
    v = x.detach().double() / s
    r = torch.round(v)
    inside = (r >= qmin) & (r <= qmax)
    up = upstream.double()
    _, dx, ds = reference_lsq(x, s, qmin, qmax, grad_scale, upstream)
    return {
        "dx everywhere": up.clone(),
        "dx nowhere": torch.zeros_like(up),
        "dx scaled": dx * grad_scale,
        "ds constant round": grad_scale * float((up * r.clamp(qmin, qmax)).sum()),
        "ds unscaled": ds / grad_scale,
        "ds scaled twice": ds * grad_scale,
        "inside": inside,
    }


def values(seed: int, shape, s: float, qmin: int, qmax: int, beyond: float = 0.1,
           margin: float = 0.02) -> torch.Tensor:
    """Seeded float32 values of ``shape``, about ``beyond`` of them clipped, none with
    x / s within ``margin`` of a rounding tie, and none within half a step outside the
    range (where round-then-clamp and the paper's rule on x / s itself disagree)."""
    g = generator(seed)
    n = math.prod(shape)
    width = (qmax - qmin) / 2
    centre = (qmax + qmin) / 2
    v = centre + width * (1 + 2 * beyond) * (2 * torch.rand(6 * n, generator=g,
                                                            dtype=torch.float64) - 1)
    frac = torch.frac(v.abs())
    ok = ((frac - 0.5).abs() > margin) & ~((v > qmax) & (v < qmax + 0.5 + margin)) \
        & ~((v < qmin) & (v > qmin - 0.5 - margin))
    v = v[ok][:n]
    assert v.numel() == n
    return (v * s).float().reshape(shape)


def _what(x, s, qmin, qmax, g) -> str:
    return (f"lsq_fake_quant(x {tuple(x.shape)}, s={s:g}, qmin={qmin}, qmax={qmax}, "
            f"grad_scale={g:.4g})")


def _run(fn, X, s0, qmin, qmax, g, upstream, x_grad=True):
    """Call the answer on fresh leaves x (a copy of X) and s = s0, backpropagate
    sum(upstream * x_hat); returns (x_hat float64, dx or None, ds or None)."""
    x = X.clone().requires_grad_(x_grad)
    s = torch.tensor(s0, dtype=torch.float32, requires_grad=True)
    what = _what(X, s0, qmin, qmax, g)
    got = call(fn, x, s, qmin, qmax, g, check_mutation=False, name="lsq_fake_quant")
    got = _tensor(got, what, tuple(X.shape))
    if not got.requires_grad:
        raise CheckFailure(f"{what} returned a tensor that carries no gradient "
                           "(requires_grad is False): neither x nor s can learn "
                           "through it.", basic=True)
    try:
        (got * upstream.to(got.dtype)).sum().backward()
    except RuntimeError as exc:
        raise CheckFailure(f"backpropagating through {what} raised: {exc}",
                           basic=True) from None
    dx = x.grad.detach().double() if x.grad is not None else None
    ds = float(s.grad) if s.grad is not None else None
    return got.detach().double(), dx, ds


def _ds_close(ds: float | None, ref: float, scale: float) -> bool:
    return ds is not None and math.isfinite(ds) and abs(ds - ref) <= 1e-4 * scale \
        + 1e-5 * abs(ref)


def _case_inputs(seed, shape, s0, qmin, qmax):
    X = values(seed, shape, s0, qmin, qmax)
    up = torch.randn(shape, generator=generator(seed + 50))
    return X, up


def _expect(fn, seed, shape, s0, qmin, qmax, g) -> None:
    X, up = _case_inputs(seed, shape, s0, qmin, qmax)
    x_hat, dx, ds = _run(fn, X, s0, qmin, qmax, g, up)
    ref_x, ref_dx, ref_ds = reference_lsq(X, s0, qmin, qmax, g, up)
    what = _what(X, s0, qmin, qmax, g)
    expect_close(x_hat.float(), ref_x.float(), rtol=1e-5, atol=1e-6 * s0,
                 what=f"the forward pass of {what}")
    if dx is None:
        raise CheckFailure(f"after {what} and backward(), x has no gradient.")
    expect_close(dx.float(), ref_dx.float(), rtol=1e-5, atol=1e-6,
                 what=f"the gradient of x after {what}")
    scale = float((up.double().abs() * (X.double().abs() / s0 + qmax)).sum()) * g
    if not _ds_close(ds, ref_ds, scale):
        raise CheckFailure(f"the gradient of s after {what} is "
                           f"{'None' if ds is None else _num(ds)}, expected "
                           f"{_num(ref_ds)}.")


_HINT = ("The forward pass is the lesson's fake quantization with s as a tensor; for "
         "the backward, let only the rounding be straight-through (its gradient "
         "taken as 1) and let autograd differentiate the rest, clamp and both uses of "
         "s included; the gradient that reaches s is then multiplied by grad_scale, "
         "the forward value unchanged.")


@q.case("4-bit weights (64,), range -8..7, s = 0.03, LSQ's grad_scale", kind="core",
        hint=_HINT)
def _(lsq_fake_quant):
    _expect(lsq_fake_quant, 0, (64,), 0.03, -8, 7, 1 / math.sqrt(64 * 7))


@q.case("unsigned 4-bit activations (4, 33), range 0..15, s = 0.2", kind="core",
        hint=_HINT)
def _(lsq_fake_quant):
    _expect(lsq_fake_quant, 1, (4, 33), 0.2, 0, 15, 1 / math.sqrt(132 * 15))


@q.case("int8 (256, 16), range -128..127, s = 0.01, no gradient scaling", kind="core",
        hint=_HINT)
def _(lsq_fake_quant):
    _expect(lsq_fake_quant, 2, (256, 16), 0.01, -128, 127, 1.0)


def _setting(seed=3, shape=(40,), s0=0.05, qmin=-8, qmax=7, g=0.25):
    X, up = _case_inputs(seed, shape, s0, qmin, qmax)
    return X, s0, qmin, qmax, g, up


@q.case("the gradient reaches x inside the range only",
        hint="Straight-through means: where a value lands inside the grid, its "
             "gradient passes as if fake quantization were the identity; where it is "
             "clipped, moving it changes nothing, so its gradient is 0. Rounding "
             "itself, left to autograd, has gradient 0 everywhere.")
def _(lsq_fake_quant):
    X, s0, qmin, qmax, g, up = _setting()
    _, dx, _ = _run(lsq_fake_quant, X, s0, qmin, qmax, g, up)
    _, ref_dx, _ = reference_lsq(X, s0, qmin, qmax, g, up)
    what = f"the gradient of x after {_what(X, s0, qmin, qmax, g)}"
    if dx is None:
        raise CheckFailure(f"{what} is None: x receives no gradient.")
    if torch.allclose(dx, ref_dx, rtol=1e-5, atol=1e-6):
        return
    wrong = mistaken_grads(X, s0, qmin, qmax, g, up)
    n_out = int((~wrong["inside"]).sum())
    if torch.allclose(dx, wrong["dx everywhere"], rtol=1e-5, atol=1e-6):
        raise CheckFailure(f"{what}: it passes at the {n_out} clipped values too "
                           "(a straight-through estimator of the whole fake "
                           "quantization, clamp included).")
    if torch.allclose(dx, wrong["dx nowhere"], atol=1e-9):
        raise CheckFailure(f"{what} is 0 everywhere: the rounding blocks it (no "
                           "straight-through estimator).")
    if torch.allclose(dx, wrong["dx scaled"], rtol=1e-5, atol=1e-6):
        raise CheckFailure(f"{what} is multiplied by grad_scale: the scale is for the "
                           "gradient of s only.")
    raise CheckFailure(f"{what} differs from the expected one.", basic=True)


@q.case("s learns: its gradient is LSQ's, not 0",
        hint="With s fixed (a float, or detached) its gradient is None or 0 and the "
             "step never moves. LSQ differentiates through both places s appears, in "
             "x / s and in the final multiplication, with only the rounding taken as "
             "straight-through.")
def _(lsq_fake_quant):
    X, s0, qmin, qmax, g, up = _setting(seed=4)
    _, _, ds = _run(lsq_fake_quant, X, s0, qmin, qmax, g, up)
    _, _, ref_ds = reference_lsq(X, s0, qmin, qmax, g, up)
    what = f"the gradient of s after {_what(X, s0, qmin, qmax, g)}"
    scale = float(up.abs().sum()) * (qmax + 1) * g
    if _ds_close(ds, ref_ds, scale):
        return
    if ds is None or ds == 0.0:
        raise CheckFailure(f"{what} is {ds}: s does not learn.")
    wrong = mistaken_grads(X, s0, qmin, qmax, g, up)
    if _ds_close(ds, wrong["ds constant round"], scale):
        raise CheckFailure(f"{what} is {_num(ds)}, expected {_num(ref_ds)}: it treats "
                           "round(x / s) as a constant (the gradient through x / s is "
                           "missing).")
    raise CheckFailure(f"{what} is {_num(ds)}, expected {_num(ref_ds)}.", basic=True)


@q.case("the gradient of s is multiplied by grad_scale",
        hint="LSQ scales the step's gradient by g = 1 / sqrt(N Q_P): s gathers "
             "gradient from every value it quantizes, and without g it would move far "
             "faster than the weights. Scale its gradient (not its value) by "
             "grad_scale.")
def _(lsq_fake_quant):
    X, s0, qmin, qmax, g, up = _setting(seed=5, g=0.1)
    _, _, ds = _run(lsq_fake_quant, X, s0, qmin, qmax, g, up)
    _, _, ref_ds = reference_lsq(X, s0, qmin, qmax, g, up)
    what = f"the gradient of s after {_what(X, s0, qmin, qmax, g)}"
    scale = float(up.abs().sum()) * (qmax + 1) * g
    if _ds_close(ds, ref_ds, scale):
        return
    wrong = mistaken_grads(X, s0, qmin, qmax, g, up)
    if _ds_close(ds, wrong["ds unscaled"], scale / g):
        raise CheckFailure(f"{what} is {_num(ds)}, expected {_num(ref_ds)}: it is not "
                           f"multiplied by grad_scale ({g:g}).")
    if _ds_close(ds, wrong["ds scaled twice"], scale):
        raise CheckFailure(f"{what} is {_num(ds)}, expected {_num(ref_ds)}: it is "
                           "multiplied by grad_scale twice.")
    raise CheckFailure(f"{what} is {'None' if ds is None else _num(ds)}, expected "
                       f"{_num(ref_ds)}.", basic=True)


@q.case("returns x's shape and dtype; x and s left unchanged; s learns without x",
        kind="property",
        hint="Return a new tensor like x; do not change x or s in place; and s must "
             "receive its gradient even when x does not require one (activations).")
def _(lsq_fake_quant):
    X, s0, qmin, qmax, g, up = _setting(seed=6, shape=(3, 7))
    x = X.clone()
    s = torch.tensor(s0, requires_grad=True)
    got = call(lsq_fake_quant, x, s, qmin, qmax, g, check_mutation=False,
               name="lsq_fake_quant")
    if not torch.equal(x, X) or float(s.detach()) != float(torch.tensor(s0)):
        raise CheckFailure("lsq_fake_quant changed x or s in place.")
    got = _tensor(got, _what(X, s0, qmin, qmax, g), (3, 7))
    if got.dtype != X.dtype:
        raise CheckFailure(f"lsq_fake_quant returned dtype {got.dtype} "
                           f"({_short(got)}); expected {X.dtype}, x's.")
    if not got.requires_grad:
        raise _basic("with x not requiring a gradient, lsq_fake_quant returned a "
                     "tensor that carries none: s cannot learn through it.")
    (got * up).sum().backward()
    if s.grad is None:
        raise CheckFailure("with x not requiring a gradient, s received none.")
