"""Checks of 07.per_channel_qparams: Asymmetric scale and zero point per output
channel."""
from __future__ import annotations

import torch

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _copies, _parts, _tensor, generator


q = question("07.per_channel_qparams",
             "Asymmetric scale and zero point per output channel",
             answers=["per_channel_qparams"], timeout=5)

EPS = torch.finfo(torch.float32).eps  # PyTorch's observers: the smallest scale allowed


def _qparams(lo, hi, qmin: int, qmax: int, include_zero=True, clamp=True,
             rounding="round", eps=True):
    """Scale and zero point of ranges [lo, hi] (float32 (C,) each) on the integer grid
    qmin..qmax, as PyTorch's MinMax observers compute them (float32), with switches for
    typical mistakes."""
    if include_zero:
        lo, hi = lo.clamp(max=0.0), hi.clamp(min=0.0)
    scale = (hi - lo) / float(qmax - qmin)
    if eps is True:
        scale = torch.clamp(scale, min=EPS)
    elif eps == "one":
        scale = torch.where(scale > EPS, scale, torch.ones_like(scale))
    with torch.no_grad():
        offset = lo / scale
    if rounding == "round":
        zero_point = qmin - torch.round(offset)
    elif rounding == "trunc":
        zero_point = qmin - torch.trunc(offset)
    elif rounding in ("floor", "ceil"):  # of the zero point itself, qmin - lo / s
        zero_point = getattr(torch, rounding)(qmin - offset)
    else:  # not rounded at all
        zero_point = qmin - offset
    if clamp:
        zero_point = zero_point.clamp(qmin, qmax)
    return scale, zero_point


def _ranges(w, axis: int = 0):
    """Per-slice min and max along ``axis`` (float32 (C,) each)."""
    flat = w.detach().float().movedim(axis, 0).reshape(w.shape[axis], -1)
    return flat.amin(dim=1), flat.amax(dim=1)


def reference_qparams(w, qmin: int, qmax: int):
    """(scale float32 (C,), zero_point int64 (C,)) of each output channel of ``w`` (axis
    0): the channel's range extended to include 0, divided into qmax - qmin steps (at
    least eps), and the integer that 0 maps to, clamped into [qmin, qmax]."""
    scale, zero_point = _qparams(*_ranges(w), qmin, qmax)
    return scale, zero_point.to(torch.int64)


def mistaken_qparams(w, qmin: int, qmax: int) -> dict[str, tuple]:
    """(scale, zero point) of typical mistakes, both float32 (C,)."""
    C = w.shape[0]
    lo, hi = _ranges(w)
    whole = w.detach().float().reshape(1, -1)
    t_scale, t_zp = _qparams(whole.amin(1), whole.amax(1), qmin, qmax)
    out = {
        "per tensor": (t_scale.expand(C), t_zp.expand(C)),
        "no zero": _qparams(lo, hi, qmin, qmax, include_zero=False),
        "no zero, no clamp": _qparams(lo, hi, qmin, qmax, include_zero=False,
                                      clamp=False),
        "truncated": _qparams(lo, hi, qmin, qmax, rounding="trunc"),
        "floor": _qparams(lo, hi, qmin, qmax, rounding="floor"),
        "ceil": _qparams(lo, hi, qmin, qmax, rounding="ceil"),
        "not rounded": _qparams(lo, hi, qmin, qmax, rounding="none"),
        "scale one": _qparams(lo, hi, qmin, qmax, eps="one"),
    }
    if w.ndim == 2 and w.shape[0] == w.shape[1]:
        out["axis 1"] = _qparams(*_ranges(w, axis=1), qmin, qmax)
    return out


# ------------------------------------------------------------ the inputs
def weights(seed: int, shape, spread: float = 1.0, offset: float = 0.5):
    """Seeded float32 weights of ``shape``, each output channel with its own magnitude
    (log-normal, ``spread``) and its own offset (so that channels are not centred)."""
    g = generator(seed)
    C = shape[0]
    size = torch.exp(spread * torch.randn(C, generator=g)) * 0.05  # (C,)
    shift = offset * torch.randn(C, generator=g) * size  # (C,)
    view = (C,) + (1,) * (len(shape) - 1)
    return torch.randn(shape, generator=g) * size.view(view) + shift.view(view)


def _what(w, qmin, qmax) -> str:
    return f"per_channel_qparams(w {tuple(w.shape)}, qmin={qmin}, qmax={qmax})"


def _answer(fn, w, qmin, qmax):
    """The answer on a copy of ``w``: (scale, zero_point) as float64 tensors of shape
    (C,), and the raw pair (a basic failure when they are not two (C,) tensors)."""
    got = call(fn, *_copies(w), qmin, qmax, check_mutation=False,
               name="per_channel_qparams")
    scale, zero_point = _parts(got, ("scale", "zero_point"), "per_channel_qparams")
    what = _what(w, qmin, qmax)
    C = w.shape[0]
    scale = _tensor(scale, f"the scale of {what}")
    zero_point = _tensor(zero_point, f"the zero point of {what}")
    for name, t in (("scale", scale), ("zero point", zero_point)):
        if t.numel() in (0, 1) and C > 1:
            raise CheckFailure(f"the {name} of {what} holds one number, "
                               f"{_short(t)}: one for the whole tensor, not one per "
                               f"output channel ({C}).")
        _tensor(t, f"the {name} of {what}", (C,))
    return scale.detach().double(), zero_point.detach().double(), got


def _close_scale(got, ref) -> bool:
    return bool(torch.allclose(got, ref.double(), rtol=2e-6, atol=0.0))


def _same_zero(got, ref) -> bool:
    return bool(torch.equal(got, ref.double()))


def _mismatch(what, scale, zp, ref_scale, ref_zp, basic=False) -> None:
    """Fail naming the first channel whose scale or zero point is wrong."""
    bad_s = ~torch.isclose(scale, ref_scale.double(), rtol=2e-6, atol=0.0)
    bad_z = zp != ref_zp.double()
    for name, bad, got, ref in (("scale", bad_s, scale, ref_scale),
                                ("zero point", bad_z, zp, ref_zp)):
        if bad.any():
            c = int(bad.nonzero()[0])
            raise CheckFailure(f"the {name} of {what} is wrong in {int(bad.sum())} of "
                               f"{len(bad)} channels; first in channel {c}: "
                               f"{float(got[c]):.7g}, expected {float(ref[c]):.7g}.",
                               basic=basic)


def _expect(fn, w, qmin, qmax) -> None:
    scale, zp, _ = _answer(fn, w, qmin, qmax)
    ref_scale, ref_zp = reference_qparams(w, qmin, qmax)
    _mismatch(_what(w, qmin, qmax), scale, zp, ref_scale, ref_zp)


_HINT = ("For each output channel (a slice along axis 0), take its smallest and "
         "largest value, widened so that the range contains 0; the scale spreads that "
         "range over the qmax - qmin steps of the grid, and the zero point is the "
         "integer that 0 lands on.")


@q.case("a Linear weight (16, 40), int8 range -128..127", kind="core", hint=_HINT)
def _(per_channel_qparams):
    _expect(per_channel_qparams, weights(0, (16, 40)), -128, 127)


@q.case("a convolution weight (8, 3, 3, 3), uint8 range 0..255", kind="core",
        hint=_HINT)
def _(per_channel_qparams):
    _expect(per_channel_qparams, weights(1, (8, 3, 3, 3)), 0, 255)


@q.case("channels 100 times apart in size (24, 200), 4-bit range -8..7", kind="core",
        hint=_HINT)
def _(per_channel_qparams):
    _expect(per_channel_qparams, weights(2, (24, 200), spread=1.6), -8, 7)


def _judge(fn, keys, message, w, qmin, qmax) -> None:
    """Right: pass. The qparams of a mistake in ``keys``: fail with ``message``.
    Anything else: a plain mismatch."""
    scale, zp, _ = _answer(fn, w, qmin, qmax)
    ref_scale, ref_zp = reference_qparams(w, qmin, qmax)
    if _close_scale(scale, ref_scale) and _same_zero(zp, ref_zp):
        return
    what = _what(w, qmin, qmax)
    wrong = mistaken_qparams(w, qmin, qmax)
    for key in keys:
        if key not in wrong:
            continue
        w_scale, w_zp = wrong[key]
        if _close_scale(scale, w_scale) and bool(
                torch.allclose(zp, w_zp.double(), rtol=0, atol=1e-4)):
            raise CheckFailure(f"{what}: {message}")
    _mismatch(what, scale, zp, ref_scale, ref_zp, basic=True)


@q.case("one scale per output channel, not one for the tensor",
        hint="Per-channel quantization gives each output channel (each row of a Linear "
             "weight, each filter of a convolution) its own range: a channel of small "
             "weights is not forced onto the grid of the largest one.")
def _(per_channel_qparams):
    w = weights(3, (6, 30), spread=1.5)
    scale, zp, _ = _answer(per_channel_qparams, w, -128, 127)
    if scale.unique().numel() == 1:
        ref_scale, _ = reference_qparams(w, -128, 127)
        raise CheckFailure(f"{_what(w, -128, 127)} gives every channel the same scale "
                           f"{float(scale[0]):.6g}; the channels' own scales run from "
                           f"{float(ref_scale.min()):.6g} to "
                           f"{float(ref_scale.max()):.6g}.")
    _judge(per_channel_qparams, ["per tensor"], "every channel has the qparams of the "
           "whole tensor.", w, -128, 127)


@q.case("the range is widened to include 0",
        hint="A channel whose values are all positive (or all negative) still needs 0 "
             "on its grid: zero padding, ReLU outputs and masked values must come back "
             "exactly 0. Widen each range to contain 0 before computing the scale.")
def _(per_channel_qparams):
    w = weights(4, (6, 24), offset=0.0)
    w[:3] = w[:3].abs() + 0.02  # channels 0-2 all positive
    w[3:5] = -w[3:5].abs() - 0.01  # channels 3-4 all negative
    _judge(per_channel_qparams, ["no zero", "no zero, no clamp"], "the range of each "
           "channel is its own min..max, without 0: an all-positive or all-negative "
           "channel has no exact zero.", w, 0, 255)


@q.case("the zero point is rounded to the nearest integer",
        hint="The zero point must be an integer of the grid, so that 0 is represented "
             "exactly; round to the nearest one. Casting with .long() or int() "
             "truncates towards zero instead, and floor or ceil always round one "
             "way.")
def _(per_channel_qparams):
    w = weights(5, (12, 20), offset=1.5)
    _judge(per_channel_qparams, ["truncated", "floor", "ceil", "not rounded"],
           "the zero point is not rounded to the nearest integer (truncated, rounded "
           "down or up, or not rounded at all).",
           w, 0, 255)


@q.case("the channels are the slices along axis 0",
        hint="A weight of shape (C_out, C_in, ...) has one output channel per index "
             "of its FIRST axis: reduce over every other axis. On a square matrix, "
             "reducing over axis 0 gives the right shape and the wrong numbers.")
def _(per_channel_qparams):
    w = weights(6, (12, 12), spread=1.2)
    _judge(per_channel_qparams, ["axis 1"], "on this square weight the qparams are "
           "those of the COLUMNS (input channels), not of the rows.", w, -128, 127)


@q.case("an all-zero channel (a pruned filter) gets the smallest scale, eps",
        hint="A channel of zeros has an empty range, and a scale of 0 would make every "
             "division by it infinite or NaN. PyTorch's observers keep the scale at "
             "least float32's machine epsilon, eps (and the zero point then stays "
             "finite).")
def _(per_channel_qparams):
    w = weights(7, (5, 16))
    w[2] = 0.0
    scale, zp, _ = _answer(per_channel_qparams, w, 0, 255)
    what = _what(w, 0, 255) + " (channel 2 all zeros)"
    if float(scale[2]) == 0.0 or not torch.isfinite(zp[2]):
        raise CheckFailure(f"{what}: channel 2 has scale {float(scale[2]):.3g} and "
                           f"zero point {float(zp[2])}.")
    _judge(per_channel_qparams, ["scale one"], "the all-zero channel gets scale 1.0; "
           "the question asks for eps, as PyTorch's affine observers do.", w, 0, 255)


@q.case("returns float32 scales and int64 zero points, (C,) each; w left unchanged",
        kind="property",
        hint="Return two tensors of shape (C,): the scales as float32 and the zero "
             "points as int64 (what torch.quantize_per_channel takes); do not change "
             "w.")
def _(per_channel_qparams):
    w = weights(8, (4, 2, 3))
    before = w.clone()
    got = call(per_channel_qparams, w, -128, 127, check_mutation=False,
               name="per_channel_qparams")
    if not torch.equal(w, before):
        raise CheckFailure("per_channel_qparams changed w in place.")
    scale, zero_point = _parts(got, ("scale", "zero_point"), "per_channel_qparams")
    _tensor(scale, "the scale", (4,))
    _tensor(zero_point, "the zero point", (4,))
    if scale.dtype != torch.float32 or zero_point.dtype != torch.int64:
        raise CheckFailure(f"per_channel_qparams returned a scale of dtype "
                           f"{scale.dtype} and a zero point of dtype "
                           f"{zero_point.dtype}; expected torch.float32 and "
                           "torch.int64.")
