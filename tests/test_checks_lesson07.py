"""Tests of lesson 07's checks: the reference passes every case, answers written in
other styles pass, each typical mistake fails its own case (with its hint shown, and
without blaming other mistakes), answers that compute nothing score 0, and every case
runs well within its time limit. The checks' oracles are tested against the libraries
they stand for: PyTorch's observers and quantize_per_channel, fuse_conv_bn_eval,
oneDNN's quantized linear, _fake_quantize_learnable_per_tensor_affine, SciPy's
integration, and the real bytes of packed tensors. That no hint prints a solution line
is tested for every lesson in test_course_consistency.py."""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import pytest
import torch
import scipy.stats  # noqa: F401 - imported once here, as the notebook does
import torch.nn.functional as F
from torch import nn

from course_utils.grading.checks.lesson07 import (
    NOT_JUDGED, accumulators, block, cancelling_inputs, clipping_error, cnn,
    float_requant, fold_reference, images, int4_values, int8_reference, layer_inputs,
    layers, mistaken_mse, mistaken_sizes, mlp, quantize_multiplier, reference_lsq,
    reference_mse, reference_pack, reference_qparams, reference_quantized_size,
    reference_requant, reference_unpack, values, watching, weights)
from course_utils.grading.registry import get_question, questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED

from check_support import (assert_all_pass, assert_not_blamed, assert_shows,
                           assert_trivial_scores_zero, case_of, run, stub)


QIDS = ["07.quantized_size", "07.per_channel_qparams", "07.pack_int4",
        "07.clipped_gaussian_mse", "07.fold_batchnorm", "07.int8_linear_zero_point",
        "07.fixed_point_requant", "07.lsq_fake_quant"]


def test_every_question_has_core_cases_and_kinds():
    """Does lesson 07 have its 8 questions in order, each with at least 3 core cases,
    a property case and a mistake case, and the answer named like its id?"""
    questions = questions_for_lesson("07")
    assert [q.qid for q in questions] == QIDS
    for q in questions:
        assert len(q.core_cases) >= 3, q.qid
        kinds = {c.kind for c in q.cases}
        assert kinds == {"core", "mistake", "property"}, q.qid
        assert q.answers[0] == q.qid.split(".", 1)[1], q.qid
    assert get_question("07.pack_int4").answers == ["pack_int4", "unpack_int4"]


@pytest.mark.parametrize("qid", QIDS)
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError say "not implemented yet" and
    score 0?"""
    q = get_question(qid)
    result = run(qid, *[stub] * len(q.answers))
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


def test_not_judged_is_shared():
    """Do lesson 07's checks use the course's one "not judged yet" message?"""
    from course_utils.grading.checks._shared import NOT_JUDGED as SHARED
    assert NOT_JUDGED == SHARED


# ------------------------------------------------------------------ 07.quantized_size
def size_answer(scales=True, scale_bytes=2, pack4=True, which="2-D weights",
                groups="ceil", per_row=True, own_dtype=True):
    """An answer to 07.quantized_size with one typical mistake switched on."""
    def quantized_size(state_dict, bits, group_size):
        total = 0
        for name, t in state_dict.items():
            quantized = {"2-D weights": name.endswith(".weight") and t.ndim == 2
                         and t.is_floating_point(),
                         "all floats": t.is_floating_point(),
                         "all weights": name.endswith(".weight")
                         and t.is_floating_point()}[which]
            if quantized:
                t2 = t.reshape(t.shape[0] if t.ndim else 1, -1)
                rows, n = t2.shape
                per_value = bits / 8 if (pack4 or bits == 8) else 1
                if per_row:
                    total += rows * math.ceil(n * per_value)
                else:
                    total += math.ceil(rows * n * per_value)
                n_groups = (math.ceil(n / group_size) if groups == "ceil"
                            else n // group_size)
                if groups == "over the tensor":
                    n_groups = math.ceil(rows * n / group_size) / rows
                total += round(scales * rows * n_groups * scale_bytes)
            else:
                total += t.numel() * (t.element_size() if own_dtype else 4)
        return total

    return quantized_size


def size_by_numel(state_dict, bits, group_size):
    """Another correct style: values and scales counted separately, with -(-a // b)."""
    values_bytes = scale_bytes = other = 0
    for key, t in state_dict.items():
        if (key.rsplit(".", 1)[-1] == "weight" and t.dim() == 2
                and t.dtype.is_floating_point):
            values_bytes += t.shape[0] * -(-t.shape[1] * bits // 8)
            scale_bytes += 2 * t.shape[0] * -(-t.shape[1] // group_size)
        else:
            other += t.nelement() * t.element_size()
    return int(values_bytes + scale_bytes + other)


def test_quantized_size_reference_and_other_styles_pass():
    """Do a direct count and one with integer ceilings pass every case?"""
    assert_all_pass(run("07.quantized_size", size_answer()))
    assert_all_pass(run("07.quantized_size", size_by_numel))


@pytest.mark.parametrize("wrong, case, word", [
    (size_answer(scales=False), "the scales take space too", "not counted"),
    (size_answer(pack4=False), "two 4-bit values share a byte", "whole byte"),
    (size_answer(which="all floats"), "only 2-D weights are quantized",
     "every floating tensor"),
    (size_answer(scale_bytes=4), "a scale is a float16", "4 bytes"),
    (size_answer(groups="floor"), "a shorter last group has a scale", "rounded down"),
    (size_answer(groups="over the tensor"), "a shorter last group has a scale",
     "whole tensor"),
    (size_answer(which="all weights"), "only 2-D weights are quantized",
     "whatever its number of axes"),
    (size_answer(per_row=False), "each row is packed on its own", "row by row"),
    (size_answer(own_dtype=False), "the other tensors keep their own", "float32"),
])
def test_quantized_size_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.quantized_size", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_quantized_size_mistakes_are_not_blamed_on_others():
    """Is a count without scales not called a byte per value or float32 scales, and a
    byte per value not called missing scales?"""
    result = run("07.quantized_size", size_answer(scales=False))
    for innocent in ("two 4-bit values share a byte", "a scale is a float16",
                     "a shorter last group", "each row is packed on its own",
                     "only 2-D weights are quantized"):
        assert_not_blamed(result, innocent)
    result = run("07.quantized_size", size_answer(pack4=False))
    for innocent in ("the scales take space too", "a scale is a float16",
                     "each row is packed on its own"):
        assert_not_blamed(result, innocent)


def test_quantized_size_returning_a_float_fails_the_property():
    """Is a total returned as a float (the right number) told to be an int?"""
    def as_float(state_dict, bits, group_size):
        return float(size_answer()(state_dict, bits, group_size))

    result = run("07.quantized_size", as_float)
    assert result.score == 0.5
    assert "python int" in case_of(result, "returns a Python int").message.lower()


def test_quantized_size_oracle_counts_real_packed_bytes():
    """Is the oracle the nbytes of the tensors one would store: each 2-D weight packed
    row by row (two 4-bit values a byte) with a float16 scale per group, everything
    else as it is?"""
    for model, bits, g in [(mlp(), 8, 32), (block(), 4, 128), (cnn(dtype=torch.float16),
                                                               4, 64)]:
        stored = 0
        for name, t in model.state_dict().items():
            if name.endswith(".weight") and t.ndim == 2:
                rows, n = t.shape
                codes = torch.zeros(rows, n, dtype=torch.int8)
                packed = reference_pack(codes) if bits == 4 else codes
                scales = torch.zeros(rows, -(-n // g), dtype=torch.float16)
                stored += packed.nbytes + scales.nbytes
            else:
                stored += t.nbytes
        assert stored == reference_quantized_size(model.state_dict(), bits, g)


def test_quantized_size_mistakes_differ_where_their_cases_look():
    """Does each mistake's total differ from the reference on its case's model?"""
    for model, bits, g, key in [(mlp(), 4, 16, "no scales"),
                                (mlp(), 4, 32, "a byte a value"),
                                (cnn(), 4, 64, "every floating tensor"),
                                (block(), 8, 32, "float32 scales"),
                                (block(), 8, 40, "floor groups"),
                                (block(), 4, 128, "packed over the tensor"),
                                (cnn(dtype=torch.float16), 8, 64, "others at float32")]:
        sd = model.state_dict()
        assert mistaken_sizes(sd, bits, g)[key] != reference_quantized_size(sd, bits, g)


def test_quantized_size_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("07.quantized_size", size_answer())


# -------------------------------------------------------------- 07.per_channel_qparams
def qparams_answer(per="channel", include_zero=True, rounding="round", axis=0,
                   eps="eps", in_place=False):
    """An answer to 07.per_channel_qparams with one typical mistake switched on."""
    def per_channel_qparams(w, qmin, qmax):
        if per == "tensor":
            flat = w.reshape(1, -1)
        else:
            flat = w.movedim(axis, 0).reshape(w.shape[axis], -1)
        lo, hi = flat.amin(1), flat.amax(1)
        if include_zero:
            lo, hi = lo.clamp(max=0), hi.clamp(min=0)
        scale = (hi - lo) / (qmax - qmin)
        if eps == "eps":
            scale = scale.clamp(min=torch.finfo(torch.float32).eps)
        elif eps == "one":
            scale = torch.where(scale > torch.finfo(torch.float32).eps, scale, 1.0)
        offset = lo / scale
        zp = {"round": torch.round(offset), "trunc": torch.trunc(offset),
              "floor": -torch.floor(qmin - offset) + qmin,
              "none": offset}[rounding]
        zp = (qmin - zp)
        if include_zero:
            zp = zp.clamp(qmin, qmax)
        if rounding != "none":
            zp = zp.long()
        if per == "tensor":
            scale, zp = scale.expand(w.shape[0]), zp.expand(w.shape[0])
        if in_place:
            w.sub_(w.mean())
        return scale.float(), zp

    return per_channel_qparams


def qparams_by_observer(w, qmin, qmax):
    """Another correct style: PyTorch's own observer."""
    from torch.ao.quantization.observer import PerChannelMinMaxObserver
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8 if qmin >= 0
                                   else torch.qint8, quant_min=qmin, quant_max=qmax,
                                   qscheme=torch.per_channel_affine)
    obs(w)
    scale, zero_point = obs.calculate_qparams()
    return scale, zero_point.long()  # the observer's are int32


def test_per_channel_qparams_reference_and_other_styles_pass():
    """Do a direct computation and PyTorch's PerChannelMinMaxObserver pass?"""
    assert_all_pass(run("07.per_channel_qparams", qparams_answer()))
    assert_all_pass(run("07.per_channel_qparams", qparams_by_observer))


@pytest.mark.parametrize("wrong, case, word", [
    (qparams_answer(per="tensor"), "one scale per output channel", "same scale"),
    (qparams_answer(include_zero=False), "the range is widened to include 0",
     "without 0"),
    (qparams_answer(rounding="trunc"), "the zero point is rounded", "truncated"),
    (qparams_answer(rounding="none"), "the zero point is rounded", "not rounded"),
    (qparams_answer(rounding="floor"), "the zero point is rounded", "rounded down"),
    (qparams_answer(axis=1), "the channels are the slices along axis 0", "COLUMNS"),
    (qparams_answer(eps="none"), "an all-zero channel", "scale 0"),
    (qparams_answer(eps="one"), "an all-zero channel", "scale 1.0"),
    (qparams_answer(in_place=True), "returns float32 scales", "in place"),
])
def test_per_channel_qparams_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.per_channel_qparams", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_per_channel_qparams_mistakes_are_not_blamed_on_others():
    """Is a range without 0 not called truncation or a wrong axis, and truncation not
    called a range without 0?"""
    result = run("07.per_channel_qparams", qparams_answer(include_zero=False))
    for innocent in ("the zero point is rounded", "the channels are the slices",
                     "one scale per output channel"):
        assert_not_blamed(result, innocent)
    result = run("07.per_channel_qparams", qparams_answer(rounding="trunc"))
    for innocent in ("the range is widened", "the channels are the slices",
                     "an all-zero channel"):
        assert_not_blamed(result, innocent)


def test_per_channel_qparams_oracle_is_pytorchs_observer_and_round_trip():
    """Is the oracle PerChannelMinMaxObserver(per_channel_affine), on every input of
    the cases, and do its qparams round-trip through torch.quantize_per_channel with
    0 exact and every value within half a step?"""
    from course_utils.grading.checks.lesson07.per_channel_qparams import EPS
    inputs = [(weights(0, (16, 40)), -128, 127), (weights(1, (8, 3, 3, 3)), 0, 255),
              (weights(2, (24, 200), spread=1.6), -8, 7),
              (weights(3, (6, 30), spread=1.5), -128, 127),
              (weights(5, (12, 20), offset=1.5), 0, 255),
              (weights(6, (12, 12), spread=1.2), -128, 127)]
    for w, qmin, qmax in inputs:
        scale, zp = reference_qparams(w, qmin, qmax)
        obs_scale, obs_zp = qparams_by_observer(w, qmin, qmax)
        assert torch.equal(scale, obs_scale) and torch.equal(zp, obs_zp)
        # no zero point is near a rounding tie: any precision gives the same integer
        lo = w.reshape(w.shape[0], -1).amin(1).clamp(max=0).double()
        frac = torch.frac((lo / scale.double()).abs())
        assert ((frac - 0.5).abs() > 1e-3).all()
        if qmin >= 0 and qmax == 255:
            qw = torch.quantize_per_channel(w, scale.double(), zp, 0, torch.quint8)
            back = qw.dequantize()
            assert (back - w).abs().amax() <= scale.max() / 2 + 1e-7
            zeros = torch.quantize_per_channel(torch.zeros_like(w), scale.double(), zp,
                                               0, torch.quint8).dequantize()
            assert torch.equal(zeros, torch.zeros_like(w))
    assert EPS == torch.finfo(torch.float32).eps


def test_per_channel_qparams_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("07.per_channel_qparams", qparams_answer())


# ----------------------------------------------------------------------- 07.pack_int4
def pack_answer(swap=False, mask=True, pad=True):
    """A pack_int4 with one typical mistake switched on."""
    def pack_int4(q):
        v = q.to(torch.int16)
        if q.shape[-1] % 2 and pad:
            v = F.pad(v, (0, 1))
        elif q.shape[-1] % 2:
            v = v[..., :-1]
        lo, hi = v[..., 0::2], v[..., 1::2]
        if swap:
            lo, hi = hi, lo
        lo = lo & 0xF if mask else lo
        return ((lo | ((hi & 0xF) << 4)) & 0xFF).to(torch.uint8)

    return pack_int4


def unpack_answer(signed=True, swap=False, trim=True):
    """An unpack_int4 with one typical mistake switched on."""
    def unpack_int4(packed, n):
        p = packed.to(torch.int16)
        lo, hi = p & 0xF, p >> 4
        if swap:
            lo, hi = hi, lo
        v = torch.stack([lo, hi], -1).flatten(-2)
        v = v[..., :n] if trim else v
        if signed:
            v = torch.where(v > 7, v - 16, v)
        return v.to(torch.int8)

    return unpack_int4


def pack_numpy(q):
    """Another correct style: NumPy bit operations on uint8."""
    a = q.numpy().astype(np.uint8) & 0x0F
    if a.shape[-1] % 2:
        a = np.concatenate([a, np.zeros(a.shape[:-1] + (1,), np.uint8)], -1)
    return torch.from_numpy((a[..., ::2] | (a[..., 1::2] << 4)).astype(np.uint8))


def unpack_by_shifts(packed, n):
    """Another correct style: arithmetic shifts of int8 do the sign extension."""
    b = packed.view(torch.int8)
    lo = (b << 4) >> 4  # the low nibble, sign-extended
    hi = b >> 4
    return torch.stack([lo, hi], -1).flatten(-2)[..., :n]


def test_pack_int4_reference_and_other_styles_pass():
    """Do the masked answer and NumPy bits with arithmetic-shift unpacking pass?"""
    assert_all_pass(run("07.pack_int4", pack_answer(), unpack_answer()))
    assert_all_pass(run("07.pack_int4", pack_numpy, unpack_by_shifts))


@pytest.mark.parametrize("pack, unpack, case, word", [
    (pack_answer(swap=True), unpack_answer(), "element 2i sits in the low nibble",
     "HIGH nibble"),
    (pack_answer(), unpack_answer(swap=True), "element 2i sits in the low nibble",
     "reads the high nibble"),
    (pack_answer(), unpack_answer(signed=False), "negative values come back negative",
     "sign-extended"),
    (pack_answer(mask=False), unpack_answer(), "the low nibble keeps to its 4 bits",
     "spill"),
    (pack_answer(pad=False), unpack_answer(), "an odd length", "is lost"),
    (pack_answer(), unpack_answer(trim=False), "an odd length", "padding nibble"),
])
def test_pack_int4_mistakes(pack, unpack, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.pack_int4", pack, unpack)
    assert_shows(result, case, word)
    assert result.score < 1


def test_pack_int4_swapped_pair_still_fails_the_format():
    """Does a pack and an unpack that are both swapped (they round-trip with each
    other) still lose the credit of the fixed-layout cases?"""
    result = run("07.pack_int4", pack_answer(swap=True), unpack_answer(swap=True))
    assert case_of(result, "round trip").passed
    assert not case_of(result, "pack: the 16 values").passed
    assert result.score < 0.5


def test_pack_int4_mistakes_are_not_blamed_on_others():
    """Is an unsigned unpack not called a swap, and a swap not called unsigned?"""
    result = run("07.pack_int4", pack_answer(), unpack_answer(signed=False))
    for innocent in ("element 2i sits in the low nibble", "the low nibble keeps",
                     "an odd length"):
        assert_not_blamed(result, innocent)
    result = run("07.pack_int4", pack_answer(swap=True), unpack_answer())
    for innocent in ("negative values come back negative", "the low nibble keeps"):
        assert_not_blamed(result, innocent)


def test_pack_int4_oracle_layout():
    """Is the layout the stated one: -8..7 pack to 0x98, 0xBA, 0xDC, 0xFE, 0x10, 0x32,
    0x54, 0x76 (element 2i low), an odd row ends in a byte with a 0 high nibble, and
    unpack inverts pack on every shape of the cases?"""
    packed = reference_pack(torch.arange(-8, 8, dtype=torch.int8))
    assert packed.tolist() == [0x98, 0xBA, 0xDC, 0xFE, 0x10, 0x32, 0x54, 0x76]
    assert reference_pack(torch.tensor([-1, 2, -3], dtype=torch.int8)).tolist() == \
        [0x2F, 0x0D]
    for shape in [(16,), (5, 7), (3, 11), (96, 130), (4, 9)]:
        q = int4_values(0, shape)
        assert torch.equal(reference_unpack(reference_pack(q), shape[-1]), q)


def test_pack_int4_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("07.pack_int4", pack_answer(), unpack_answer())


# ------------------------------------------------------------- 07.clipped_gaussian_mse
def mse_answer(clip=True, P=True, var=12, tails=2, units="x", grid="ours"):
    """An answer to 07.clipped_gaussian_mse with one typical mistake switched on."""
    def clipped_gaussian_mse(bits, c, sigma):
        norm = scipy.stats.norm
        if units == "sigmas":
            c = c * sigma
        s = {"ours": c / (2 ** (bits - 1) - 1), "bins": 2 * c / 2 ** bits}[grid]
        a = c / sigma
        inside = norm.cdf(a) - norm.cdf(-a) if P else 1.0
        tail = (sigma ** 2 + c ** 2) * norm.sf(a) - c * sigma * norm.pdf(a)
        return float(s * s / var * inside + (tails * tail if clip else 0.0))

    return clipped_gaussian_mse


def mse_by_integration(bits, c, sigma):
    """Another correct style: SciPy's numerical integration of the model."""
    from scipy.integrate import quad
    s = c / (2 ** (bits - 1) - 1)
    pdf = scipy.stats.norm(0, sigma).pdf
    inside, _ = quad(pdf, -c, c, epsabs=0, epsrel=1e-12)
    tail, _ = quad(lambda x: (x - c) ** 2 * pdf(x), c, math.inf, epsabs=0,
                   epsrel=1e-12)
    return s * s / 12 * inside + 2 * tail


def test_clipped_gaussian_mse_reference_and_other_styles_pass():
    """Do the closed form (scipy.stats) and numerical integration pass every case?"""
    assert_all_pass(run("07.clipped_gaussian_mse", mse_answer()))
    assert_all_pass(run("07.clipped_gaussian_mse", mse_by_integration))


def mse_by_sampling(bits, c, sigma):
    """A Monte-Carlo estimate of the model (1e5 samples): close, but not the value."""
    g = np.random.default_rng(0)
    x = g.normal(0, sigma, 100_000)
    s = c / (2 ** (bits - 1) - 1)
    err = np.where(np.abs(x) > c, (np.abs(x) - c) ** 2, s * s / 12)
    return float(err.mean())


@pytest.mark.parametrize("wrong, case, word", [
    (mse_answer(clip=False), "the clipped values count", "clipping error"),
    (mse_answer(P=False), "the rounding error is the error of the values inside",
     "weighted by the probability"),
    (mse_answer(var=4), "the rounding error of one step has variance", "s^2 / 4"),
    (mse_answer(var=6), "the rounding error of one step has variance", "s^2 / 6"),
    (mse_answer(tails=1), "both tails are clipped", "one tail"),
    (mse_answer(units="sigmas"), "c is a threshold in the units of x", "sigmas"),
    (mse_answer(grid="bins"), "the step of the stated grid", "stated grid"),
])
def test_clipped_gaussian_mse_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.clipped_gaussian_mse", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_clipped_gaussian_mse_sampling_scores_zero():
    """Does a Monte-Carlo estimate (the expectation asked for is exact) earn nothing?"""
    assert run("07.clipped_gaussian_mse", mse_by_sampling).score == 0


def test_clipped_gaussian_mse_mistakes_are_not_blamed_on_others():
    """Is the missing P factor not called a wrong variance or one tail, and one tail
    not called a missing P factor?"""
    result = run("07.clipped_gaussian_mse", mse_answer(P=False))
    for innocent in ("the clipped values count", "the rounding error of one step",
                     "both tails are clipped", "c is a threshold",
                     "the step of the stated grid"):
        assert_not_blamed(result, innocent)
    result = run("07.clipped_gaussian_mse", mse_answer(tails=1))
    for innocent in ("the rounding error is the error", "the clipped values count"):
        assert_not_blamed(result, innocent)


def test_clipped_gaussian_mse_missing_P_factor_is_a_real_difference():
    """Is the P(|x| <= c) factor worth at least 10 % where its case looks, and still
    far beyond the tolerance (1e-6) at every core case?"""
    no_p = mistaken_mse(2, 1.0, 1.0)["no P"]
    assert abs(no_p - reference_mse(2, 1.0, 1.0)) / reference_mse(2, 1.0, 1.0) > 0.1
    for args in [(8, 3.9, 1.0), (4, 0.12, 0.05), (2, 1.5, 2.0)]:
        rel = abs(mistaken_mse(*args)["no P"] - reference_mse(*args)) / \
            reference_mse(*args)
        assert rel > 1e-5, args


def test_clipped_gaussian_mse_oracle_is_the_model_integrated_and_sampled():
    """Does the closed form equal SciPy's integration of the model, a Monte-Carlo run
    of the model, and (at 8 bits, where rounding is fine) the error of the real
    quantizer? Does no core value sit near a trivial constant?"""
    from scipy.integrate import quad
    for bits, c, sigma in [(8, 3.9, 1.0), (4, 0.12, 0.05), (2, 1.5, 2.0),
                           (3, 1.2, 1.0)]:
        pdf = scipy.stats.norm(0, sigma).pdf
        tail, _ = quad(lambda x: (x - c) ** 2 * pdf(x), c, math.inf, epsabs=0,
                       epsrel=1e-12)
        assert clipping_error(c, sigma) == pytest.approx(2 * tail, rel=1e-9)
        assert mse_by_integration(bits, c, sigma) == pytest.approx(
            reference_mse(bits, c, sigma), rel=1e-9)
    g = np.random.default_rng(1)
    x = g.normal(0, 1, 2_000_000)
    s = 2.5 / 7
    model = np.where(np.abs(x) > 2.5, (np.abs(x) - 2.5) ** 2,
                     g.uniform(-s / 2, s / 2, x.size) ** 2)
    assert model.mean() == pytest.approx(reference_mse(4, 2.5, 1.0), rel=0.01)
    s8 = 3.9 / 127
    real = s8 * np.clip(np.round(x / s8), -127, 127)
    assert ((real - x) ** 2).mean() == pytest.approx(reference_mse(8, 3.9, 1.0),
                                                     rel=0.01)
    for args in [(8, 3.9, 1.0), (4, 0.12, 0.05), (2, 1.5, 2.0)]:
        ref = reference_mse(*args)
        assert all(abs(ref - k) > 1e-3 * ref for k in (0.0, 0.5, 1.0, 2.0))


def test_banner_et_al_optimal_clipping_values():
    """With Banner et al.'s grid (2^M bins, rounding variance a^2 / (3 4^M), no P
    factor), are the optimal thresholds of a Gaussian 1.71, 2.15, 2.55 and 3.92 sigma
    at 2, 3, 4 and 8 bits (their paper's values, within 0.01), and those of the
    question's grid 1.24, 1.95, 2.47 and 3.92 sigma (the demonstration's)?"""
    from scipy.optimize import minimize_scalar

    def best(f):
        return minimize_scalar(f, bounds=(0.1, 8), method="bounded",
                               options={"xatol": 1e-8}).x

    for M, expected in [(2, 1.71), (3, 2.15), (4, 2.55), (8, 3.92)]:
        banner = best(lambda a: a * a / (3 * 4 ** M) + clipping_error(a, 1.0))
        assert banner == pytest.approx(expected, abs=0.01)
    for bits, expected in [(2, 1.24), (3, 1.95), (4, 2.47), (8, 3.92)]:
        assert best(lambda c: reference_mse(bits, c, 1.0)) == pytest.approx(expected,
                                                                            abs=0.005)


def test_clipped_gaussian_mse_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("07.clipped_gaussian_mse", mse_answer())


# ------------------------------------------------------------------ 07.fold_batchnorm
def fold_answer(eps=True, running=True, axis="out", bias_when_none="fold",
                in_place=False):
    """An answer to 07.fold_batchnorm with one typical mistake switched on."""
    def fold_batchnorm(conv, bn):
        var = bn.running_var + (bn.eps if eps else 0.0)
        mean = bn.running_mean
        if not running:
            mean, var = torch.zeros_like(mean), torch.ones_like(var)
        scale = bn.weight / torch.sqrt(var)
        shape = (-1, 1, 1, 1) if axis == "out" else (1, -1, 1, 1)
        has_bias = conv.bias is not None or bias_when_none != "drop"
        folded = conv if in_place else copy.deepcopy(conv)
        if folded.bias is None and has_bias:
            folded.bias = nn.Parameter(torch.zeros(conv.out_channels))
        b = conv.bias.detach() if conv.bias is not None else torch.zeros_like(mean)
        with torch.no_grad():
            folded.weight.mul_(scale.reshape(shape))
            if has_bias:
                if conv.bias is None and bias_when_none == "beta":
                    folded.bias.copy_(bn.bias)
                else:
                    folded.bias.copy_((b - mean) * scale + bn.bias)
        return folded

    return fold_batchnorm


def fold_by_pytorch(conv, bn):
    """Another correct style: PyTorch's own fusion helper."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    return fuse_conv_bn_eval(conv.eval(), bn.eval())


def test_fold_batchnorm_reference_and_other_styles_pass():
    """Do a deep copy with folded weights and fuse_conv_bn_eval pass every case?"""
    assert_all_pass(run("07.fold_batchnorm", fold_answer()))
    assert_all_pass(run("07.fold_batchnorm", fold_by_pytorch))


@pytest.mark.parametrize("wrong, case, word", [
    (fold_answer(eps=False), "the BatchNorm's eps is inside", "without eps"),
    (fold_answer(running=False), "the running statistics are folded in", "ignored"),
    (fold_answer(axis="in"), "each OUTPUT channel's filter is scaled", "INPUT-channel"),
    (fold_answer(bias_when_none="drop"), "a convolution without a bias gets one",
     "without a bias"),
    (fold_answer(bias_when_none="beta"), "a convolution without a bias gets one",
     "shift alone"),
    (fold_answer(in_place=True), "a new Conv2d", "returned the convolution"),
])
def test_fold_batchnorm_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.fold_batchnorm", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_fold_batchnorm_mistakes_are_not_blamed_on_others():
    """Is a missing eps not called ignored statistics or the input axis, and ignored
    statistics not called a missing eps?"""
    result = run("07.fold_batchnorm", fold_answer(eps=False))
    for innocent in ("the running statistics are folded in", "each OUTPUT channel",
                     "a convolution without a bias gets one"):
        assert_not_blamed(result, innocent)
    result = run("07.fold_batchnorm", fold_answer(running=False))
    for innocent in ("the BatchNorm's eps is inside", "each OUTPUT channel"):
        assert_not_blamed(result, innocent)


def test_fold_batchnorm_oracle_is_fuse_conv_bn_eval():
    """Is the oracle what PyTorch's fuse_conv_bn_eval computes, and bn(conv(x)) in eval
    mode, on every kind of layer of the cases?"""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    for args, kwargs in [((0, 3, 8), {}), ((1, 8, 16), dict(stride=2, bias=False)),
                         ((2, 12, 12), dict(groups=12, bias=False, eps=1e-3)),
                         ((3, 4, 6), dict(eps=0.1, var_low=0.01))]:
        conv, bn = layers(*args, **kwargs)
        x = images(0, conv.in_channels)
        with torch.no_grad():
            fused = fuse_conv_bn_eval(copy.deepcopy(conv).eval(), copy.deepcopy(bn))
            assert torch.allclose(fused(x).double(), fold_reference(conv, bn, x),
                                  atol=1e-5)
            assert torch.allclose(bn(conv(x)).double(), fold_reference(conv, bn, x),
                                  atol=1e-5)


def test_fold_batchnorm_trivial_answers_score_zero():
    """Do None, pass, raise and the first input (the convolution, unfolded) score 0?"""
    assert_trivial_scores_zero("07.fold_batchnorm", fold_answer())


# ---------------------------------------------------------- 07.int8_linear_zero_point
def int8_answer(zero_point="sub", widen=True, acc="int32", bias="int"):
    """An answer to 07.int8_linear_zero_point with one typical mistake switched on."""
    def int8_linear_zero_point(x_q, x_scale, x_zero_point, w_q, w_scale, bias_f):
        s = x_scale * w_scale  # (N,)
        dtype = {"int32": torch.int32, "int16": torch.int16,
                 "int8": torch.int8}.get(acc, torch.float32)
        x = x_q.to(dtype) if widen else x_q
        if zero_point == "sub":
            x = x - x_zero_point
        elif zero_point == "add":
            x = x + x_zero_point
        if acc == "float32":  # dequantize, then a float matmul
            y = (x_scale * x.float()) @ (w_scale[:, None] * w_q.float()).T
        else:
            y = (x.to(dtype) @ w_q.to(dtype).T)
        if bias_f is not None and bias == "int" and acc != "float32":
            y = y + torch.round(bias_f / s).to(y.dtype)
        out = y.float() * s if acc != "float32" else y
        if bias_f is not None and bias == "float":
            out = out + bias_f
        elif bias_f is not None and acc == "float32":  # the integer bias, in float
            out = out + torch.round(bias_f / s) * s
        return out

    return int8_linear_zero_point


def int8_by_decomposition(x_q, x_scale, x_zero_point, w_q, w_scale, bias):
    """Another correct style: integer kernels' x w - z_x sum(w), in int64."""
    W = w_q.long()
    acc = x_q.long() @ W.T - x_zero_point * W.sum(1)  # (M, N)
    if bias is not None:
        acc += torch.round(bias.double() / (x_scale * w_scale.double())).long()
    return (acc.double() * (x_scale * w_scale.double())).float()


def int8_by_float64(x_q, x_scale, x_zero_point, w_q, w_scale, bias):
    """Dequantized first, then a float64 matmul: exact for these sums, and accepted."""
    x = x_scale * (x_q.double() - x_zero_point)
    w = w_scale.double()[:, None] * w_q.double()
    s = x_scale * w_scale.double()
    y = x @ w.T
    if bias is not None:
        y = y + torch.round(bias.double() / s) * s
    return y.float()


def test_int8_linear_zero_point_reference_and_other_styles_pass():
    """Do int32 accumulation, the int64 decomposition x w - z sum(w), and a float64
    product of the dequantized tensors pass every case?"""
    assert_all_pass(run("07.int8_linear_zero_point", int8_answer()))
    assert_all_pass(run("07.int8_linear_zero_point", int8_by_decomposition))
    assert_all_pass(run("07.int8_linear_zero_point", int8_by_float64))


@pytest.mark.parametrize("wrong, case, word", [
    (int8_answer(zero_point="none"), "the zero point is subtracted", "not subtracted"),
    (int8_answer(zero_point="add"), "the zero point is subtracted", "x_q + z_x"),
    (int8_answer(widen=False), "x_q - z_x does not wrap", "wrapped"),
    (int8_answer(acc="int16"), "the sums need 32 bits", "int16"),
    (int8_answer(acc="int8"), "the sums need 32 bits", "wrapped around"),
    (int8_answer(acc="float32"), "the sum is exact", "floating point"),
    (int8_answer(bias="float"), "the bias is added as an integer", "in float"),
])
def test_int8_linear_zero_point_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.int8_linear_zero_point", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_int8_linear_zero_point_float32_passes_the_cores_only():
    """Does a dequantize-then-float32 answer earn the core credit (its error is float32
    rounding) and lose half of it on the one input where float32 sums are inexact?"""
    result = run("07.int8_linear_zero_point", int8_answer(acc="float32"))
    assert all(c.passed for c in result.cases if c.kind == "core")
    assert result.score == 0.5
    x_q, x_scale, z, w_q, w_scale, _ = cancelling_inputs()
    x = x_scale * (x_q.float() - z)
    w = w_scale[:, None] * w_q.float()
    ref = int8_reference(*cancelling_inputs())
    err = ((x @ w.T).double() - ref).abs() / ref.abs().max()
    # 10 times the check's tolerance (1e-6) at least; how far above depends on the
    # BLAS's order of summation (MKL's blocked sums give about 5e-5)
    assert err.max() > 1e-5


def test_int8_linear_zero_point_mistakes_are_not_blamed_on_others():
    """Is a missing zero point not called an overflow, a float sum or a float bias?"""
    result = run("07.int8_linear_zero_point", int8_answer(zero_point="none"))
    for innocent in ("x_q - z_x does not wrap", "the sums need 32 bits",
                     "the sum is exact", "the bias is added as an integer"):
        assert_not_blamed(result, innocent)


def test_int8_linear_zero_point_oracle_is_onednn_and_fits_int32():
    """Does oneDNN's quantized linear (u8 x s8, float output) give the oracle's output
    on 7-bit activations (PyTorch's reduce_range on x86, where u8 x s8 pairs can
    saturate int16), do the core cases overflow int16 and fit int32, and is no bias
    near a rounding tie?"""
    M, K, N = 5, 64, 7
    inputs = layer_inputs(0, M, K, N, 50, spread=50, bias=False)
    x_q, x_scale, z, w_q, w_scale, _ = inputs
    assert int(x_q.max()) < 128
    packed = torch.ops.onednn.qlinear_prepack(w_q, [M, K])
    y = torch.ops.onednn.qlinear_pointwise(x_q, x_scale, z, packed, w_scale,
                                           torch.zeros(N, dtype=torch.int64), None,
                                           1.0, 0, torch.float32, "none", [], "")
    ref = int8_reference(*inputs)
    assert torch.allclose(y.double(), ref, rtol=1e-5,
                          atol=1e-5 * float(ref.abs().max()))
    for args in [(0, 4, 64, 8, 118), (1, 3, 300, 5, 0), (2, 8, 1536, 12, 37)]:
        inputs = layer_inputs(*args)
        from course_utils.grading.checks.lesson07 import reference_accumulator
        acc = reference_accumulator(inputs[0], inputs[2], inputs[3], inputs[1],
                                    inputs[4], inputs[5])
        assert acc.abs().max() > 2 ** 15 and acc.abs().max() < 2 ** 24
        K = inputs[0].shape[1]
        assert K * 255 * 128 < 2 ** 31
        if inputs[5] is not None:
            t = (inputs[5].double() / (inputs[1] * inputs[4].double())).abs()
            assert ((torch.frac(t) - 0.5).abs() > 0.1).all()


def test_int8_linear_zero_point_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("07.int8_linear_zero_point", int8_answer())


# -------------------------------------------------------------- 07.fixed_point_requant
def requant_answer(rounding="half up", bits=None, wide=True, clamp=True,
                   zero_point=True, floats=False):
    """An answer to 07.fixed_point_requant with one typical mistake switched on."""
    def fixed_point_requant(acc, M, zp, dtype):
        info = torch.iinfo(dtype)
        if floats:
            y = torch.floor(acc.double() * M + 0.5).long()
        else:
            if bits is None:
                mantissa, exponent = math.frexp(M)
                M0 = round(mantissa * 2 ** 31)
                if M0 == 2 ** 31:
                    M0, exponent = M0 // 2, exponent + 1
                n = 31 - exponent
            else:
                M0, n = round(M * 2 ** bits), bits
            p = (acc.to(torch.int64) if wide else acc) * M0
            half = 1 << (n - 1)
            if rounding == "half up":
                y = (p + half) >> n
            elif rounding == "floor":
                y = p >> n
            elif rounding == "toward zero":
                y = torch.where(p >= 0, p >> n, -((-p) >> n))
            else:  # half away from zero
                y = torch.where(p >= 0, (p + half) >> n, -((-p + half) >> n))
            y = y.to(torch.int64)
        if zero_point:
            y = y + zp
        if clamp:
            y = y.clamp(info.min, info.max)
        return y.to(dtype)

    return fixed_point_requant


def requant_gemmlowp(acc, M, zero_point, dtype):
    """gemmlowp's two steps: SaturatingRoundingDoublingHighMul, then
    RoundingDivideByPOT (both round half away from zero)."""
    M0, shift = quantize_multiplier(M)
    ab = acc.to(torch.int64) * M0
    nudge = torch.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = (ab + nudge) // (1 << 31)  # the doubling high product
    high = torch.where((ab + nudge) < 0, -((-(ab + nudge)) // (1 << 31)), high)
    if shift:
        mask = (1 << shift) - 1
        remainder = high & mask
        threshold = (mask >> 1) + (high < 0).long()
        high = (high >> shift) + (remainder > threshold).long()
    info = torch.iinfo(dtype)
    return (high + zero_point).clamp(info.min, info.max).to(dtype)


def test_fixed_point_requant_reference_passes_and_gemmlowp_differs_on_ties_only():
    """Does the int64 answer pass every case, and gemmlowp's two-step rounding every
    case but the convention for exact ties?"""
    assert_all_pass(run("07.fixed_point_requant", requant_answer()))
    result = run("07.fixed_point_requant", requant_gemmlowp)
    failing = [c.name for c in result.cases if not c.passed]
    assert failing == ["a result exactly halfway rounds up (toward +infinity)"]


@pytest.mark.parametrize("wrong, case, word", [
    (requant_answer(rounding="floor"), "rounds to the nearest integer", "truncates"),
    (requant_answer(rounding="toward zero"), "rounds to the nearest integer",
     "truncates"),
    (requant_answer(bits=31), "M0 is normalised", "not normalised"),
    (requant_answer(bits=16), "M0 is normalised", "not normalised"),
    (requant_answer(wide=False), "the product acc M0 needs 64 bits", "wrapped around"),
    (requant_answer(floats=True), "integer arithmetic only", "floating point"),
    (requant_answer(clamp=False), "the zero point is added, then the result clamped",
     "not clamped"),
    (requant_answer(zero_point=False), "the zero point is added, then",
     "zero point is missing"),
    (requant_answer(rounding="half away"), "a result exactly halfway",
     "not rounded up"),
])
def test_fixed_point_requant_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.fixed_point_requant", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_fixed_point_requant_float_answer_passes_the_cores_only():
    """Does floor(acc M + 1/2) in float64 earn the core credit and lose half of it for
    not being integer-only?"""
    result = run("07.fixed_point_requant", requant_answer(floats=True))
    assert all(c.passed for c in result.cases if c.kind == "core")
    assert result.score == 0.5


def test_fixed_point_requant_mistakes_are_not_blamed_on_others():
    """Is truncation not called a lost precision, an overflow or a missing clamp?"""
    result = run("07.fixed_point_requant", requant_answer(rounding="floor"))
    for innocent in ("M0 is normalised", "the product acc M0 needs 64 bits",
                     "integer arithmetic only", "the zero point is added, then"):
        assert_not_blamed(result, innocent)


def test_fixed_point_requant_oracle_is_float64_rounding_and_multipliers_normalised():
    """Is M0 in [2^30, 2^31) with M = M0 2^-(31 + shift) to 31 bits, and does the
    integer reference equal float64 floor(acc M + 1/2) on every input of the cases
    (none is ambiguous), and gemmlowp's pipeline?"""
    for M in (0.0123, 3.7e-4, 0.73, 1.3711e-7, 0.5, 0.25, 0.05, 0.9999):
        M0, shift = quantize_multiplier(M)
        assert 2 ** 30 <= M0 < 2 ** 31 and shift >= 0
        assert abs(M0 * 2.0 ** -(31 + shift) - M) <= M * 2 ** -30
    cases = [(accumulators(0, (4, 16), 4000.0, 0.0123), 0.0123, 128, torch.uint8),
             (accumulators(1, (64,), 2e5, 3.7e-4), 3.7e-4, -5, torch.int8),
             (accumulators(2, (8, 8), 60.0, 0.73), 0.73, 3, torch.uint8),
             (accumulators(4, (200,), 2.5e8, 1.3711e-7), 1.3711e-7, 128, torch.uint8),
             (accumulators(7, (80,), 2e4, 0.0123), 0.0123, 100, torch.uint8)]
    for acc, M, zp, dtype in cases:
        ref = reference_requant(acc, M, zp, dtype)
        assert torch.equal(ref, float_requant(acc, M, zp, dtype))
        assert torch.equal(ref, requant_gemmlowp(acc, M, zp, dtype))
    acc, M, zp, dtype = cases[0]
    ref = reference_requant(acc, M, zp, dtype)
    assert 0 < int((ref == 255).sum()) + int((ref == 0).sum()) < ref.numel()


def test_watcher_sees_overflow_and_floats():
    """Does the dispatch-mode watcher record an int32 product that wraps and a float
    tensor, and nothing for int64 arithmetic?"""
    acc = torch.tensor([3, -4000, 70000], dtype=torch.int32)
    with watching(min_float=3) as seen:
        _ = acc * (2 ** 30)
    assert seen.overflows == ["int32 mul"]
    with watching(min_float=3) as seen:
        _ = acc.long() * (2 ** 30)
        _ = acc.double() * 0.5
    assert seen.overflows == []
    assert seen.floats == ["_to_copy -> float64 (3,)", "mul -> float64 (3,)"]


def test_fixed_point_requant_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("07.fixed_point_requant", requant_answer())


# ------------------------------------------------------------------- 07.lsq_fake_quant
def lsq_answer(ds="lsq", dx="ste", scale="s"):
    """An answer to 07.lsq_fake_quant with one typical mistake switched on: the value
    comes from the part that carries the gradient of s, the gradient of x from the
    other part."""
    def lsq_fake_quant(x, s, qmin, qmax, grad_scale):
        def fake(xx, ss, ste=True):
            v = xx / ss
            r = v + (torch.round(v) - v).detach() if ste else torch.round(v)
            return torch.clamp(r, qmin, qmax) * ss

        s_g = s * grad_scale + (s - s * grad_scale).detach() if scale == "s" else s
        if ds == "none":  # s used as a constant
            s_part = fake(x.detach(), s_g.detach())
        elif ds == "const":  # round(x / s) as a constant: only the final product
            s_part = torch.clamp(torch.round(x.detach() / s), qmin, qmax) * s_g
        else:
            s_part = fake(x.detach(), s_g)
        x_part = {"ste": lambda: fake(x, s.detach()),
                  "none": lambda: fake(x, s.detach(), ste=False),
                  "everywhere": lambda: x,
                  "x scaled": lambda: grad_scale * fake(x, s.detach())}[dx]()
        return s_part + (x_part - x_part.detach())

    return lsq_fake_quant


class LSQFunction(torch.autograd.Function):
    """Another correct style: the gradients written out in a backward."""

    @staticmethod
    def forward(ctx, x, s, qmin, qmax, g):
        v = x / s
        r = torch.round(v)
        ctx.save_for_backward(v, r, s)
        ctx.qmin, ctx.qmax, ctx.g = qmin, qmax, g
        return s * r.clamp(qmin, qmax)

    @staticmethod
    def backward(ctx, grad):
        v, r, s = ctx.saved_tensors
        inside = (r >= ctx.qmin) & (r <= ctx.qmax)
        per = torch.where(inside, r - v, r.clamp(ctx.qmin, ctx.qmax))
        return grad * inside, ctx.g * (grad * per).sum(), None, None, None


def lsq_by_function(x, s, qmin, qmax, grad_scale):
    return LSQFunction.apply(x, s, qmin, qmax, grad_scale)


def lsq_by_pytorch(x, s, qmin, qmax, grad_scale):
    """Another correct style: PyTorch's learnable fake quantization, zero point 0."""
    return torch._fake_quantize_learnable_per_tensor_affine(
        x, s.reshape(1), torch.zeros(1), qmin, qmax, grad_scale)


def test_lsq_fake_quant_reference_and_other_styles_pass():
    """Do the straight-through answer, an autograd.Function and PyTorch's learnable
    fake quantization pass every case?"""
    assert_all_pass(run("07.lsq_fake_quant", lsq_answer()))
    assert_all_pass(run("07.lsq_fake_quant", lsq_by_function))
    assert_all_pass(run("07.lsq_fake_quant", lsq_by_pytorch))


@pytest.mark.parametrize("wrong, case, word", [
    (lsq_answer(ds="none"), "s learns", "does not learn"),
    (lsq_answer(ds="const"), "s learns", "constant"),
    (lsq_answer(dx="everywhere"), "the gradient reaches x inside", "clipped values"),
    (lsq_answer(dx="none"), "the gradient reaches x inside", "0 everywhere"),
    (lsq_answer(dx="x scaled"), "the gradient reaches x inside", "grad_scale"),
    (lsq_answer(scale="none"), "the gradient of s is multiplied", "not multiplied"),
])
def test_lsq_fake_quant_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("07.lsq_fake_quant", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_lsq_fake_quant_mistakes_are_not_blamed_on_others():
    """Is a fixed s not called a missing gradient scale, and a missing scale not
    called a fixed s or a wrong gradient for x?"""
    result = run("07.lsq_fake_quant", lsq_answer(ds="none"))
    for innocent in ("the gradient reaches x inside",
                     "the gradient of s is multiplied"):
        assert_not_blamed(result, innocent)
    result = run("07.lsq_fake_quant", lsq_answer(scale="none"))
    for innocent in ("the gradient reaches x inside", "s learns"):
        assert_not_blamed(result, innocent)


def test_lsq_fake_quant_oracle_is_pytorchs_learnable_fake_quant():
    """Are the oracle's forward and gradients those of
    torch._fake_quantize_learnable_per_tensor_affine (zero point 0) on every input of
    the cases?"""
    for seed, shape, s0, qmin, qmax, g in [(0, (64,), 0.03, -8, 7, 0.047),
                                           (1, (4, 33), 0.2, 0, 15, 0.02),
                                           (2, (256, 16), 0.01, -128, 127, 1.0),
                                           (3, (40,), 0.05, -8, 7, 0.25)]:
        X = values(seed, shape, s0, qmin, qmax)
        up = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        x = X.clone().requires_grad_(True)
        s = torch.tensor([s0], requires_grad=True)
        y = torch._fake_quantize_learnable_per_tensor_affine(x, s, torch.zeros(1), qmin,
                                                             qmax, g)
        (y * up).sum().backward()
        ref_y, ref_dx, ref_ds = reference_lsq(X, s0, qmin, qmax, g, up)
        assert torch.allclose(y.double(), ref_y, atol=1e-6)
        assert torch.equal(x.grad.double(), ref_dx.float().double())
        assert float(s.grad) == pytest.approx(ref_ds, rel=1e-4, abs=1e-5)
        v = (X.double() / s0)
        assert ((v.round() < qmin) | (v.round() > qmax)).any()  # some are clipped


def test_lsq_fake_quant_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("07.lsq_fake_quant", lsq_answer())


# ---------------------------------------------------------------------- time limits
REFERENCES = {
    "07.quantized_size": [size_answer()],
    "07.per_channel_qparams": [qparams_answer()],
    "07.pack_int4": [pack_answer(), unpack_answer()],
    "07.clipped_gaussian_mse": [mse_answer()],
    "07.fold_batchnorm": [fold_answer()],
    "07.int8_linear_zero_point": [int8_answer()],
    "07.fixed_point_requant": [requant_answer()],
    "07.lsq_fake_quant": [lsq_answer()],
}


@pytest.mark.parametrize("qid", QIDS)
def test_checks_run_well_within_their_time_limits(qid):
    """Does the whole question, for the reference, take under a quarter of one case's
    time limit in CPU time (a loaded 2-core machine must not time a right answer out;
    CPU time, so that other jobs on the machine do not count)?"""
    run(qid, *REFERENCES[qid])  # warm: imports, first dispatch modes
    start = time.process_time()
    result = run(qid, *REFERENCES[qid])
    elapsed = time.process_time() - start
    assert result.score == 1
    assert elapsed < get_question(qid).timeout / 4, elapsed


def test_clipped_gaussian_mse_unstandardised_tail_is_named():
    """Is the standard normal's tail and density taken at c (not c / sigma) named by
    the case on the units of c?"""
    def unstandardised(bits, c, sigma):
        s = c / (2 ** (bits - 1) - 1)
        tail = scipy.stats.norm.sf(c)  # the mistake: c, not c / sigma
        clip = (sigma ** 2 + c ** 2) * tail - c * sigma * scipy.stats.norm.pdf(c)
        return float(s * s / 12 * (1 - 2 * tail) + 2 * clip)

    result = run("07.clipped_gaussian_mse", unstandardised)
    assert_shows(result, "c is a threshold in the units of x", "c / sigma")
    assert result.score < 1


def test_fold_batchnorm_library_call_on_the_layers_as_given_passes():
    """Does fuse_conv_bn_eval, called on the layers as the check gives them (both in
    eval mode, as in the notebook), pass every case instead of raising?"""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    assert_all_pass(run("07.fold_batchnorm",
                        lambda conv, bn: fuse_conv_bn_eval(conv, bn)))


def test_int8_linear_zero_point_float32_product_of_integers_is_named():
    """Is a float32 product of the integer values (x_q - z_x) and w_q, exact on these
    inputs only when the library's blocked summation stays below 2^24, named by the
    case on exact sums, with the core credit kept?"""
    def float32_integers(x_q, x_scale, x_zero_point, w_q, w_scale, bias):
        s = x_scale * w_scale
        acc = (x_q.float() - x_zero_point) @ w_q.float().T  # integers, in float32
        if bias is not None:
            acc = acc + torch.round(bias / s)
        return acc * s

    result = run("07.int8_linear_zero_point", float32_integers)
    assert_shows(result, "the sum is exact", "floating point")
    assert all(c.passed for c in result.cases if c.kind == "core")
    assert result.score == 0.5
