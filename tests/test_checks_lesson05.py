"""Tests of lesson 05's checks: the reference passes every case, answers written in
other styles pass, each typical mistake fails its own case (with its hint shown, and
without blaming other mistakes), library calls in "from scratch" questions score 0, the
oracles are what they claim to be, and answers that compute nothing score 0 (that no
hint prints a solution line is tested for every lesson in
test_course_consistency.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.grading.checks.lesson05 import (
    NOT_JUDGED, Llama, TinyAttentionLM, mha_reference, mistaken_alibi_bias,
    mistaken_attention_backward, mistaken_count, mistaken_gqa,
    mistaken_rope_half_layout, reference_alibi_bias, reference_attention_backward,
    reference_causal_padding_mask, reference_grouped_query_attention,
    reference_kv_cache_step, reference_llama_parameter_count,
    reference_padded_attention, reference_rope_half_layout, rope_half, rope_pairs)
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import FORBIDDEN, NOT_IMPLEMENTED
from course_utils.grading.trivial import trivial_variants

from check_support import case_of, run, stub


def _said(case) -> str:
    return (case.hint + " " + case.message).lower()


def assert_shows(result, case_name, word):
    """The case fails with its own diagnosis: its hint is shown, naming the mistake."""
    case = case_of(result, case_name)
    assert not case.passed and case.shows_hint, (case.name, case.message)
    assert word.lower() in _said(case), (case.hint, case.message)


def assert_not_blamed(result, case_name):
    """The case does not blame its mistake: it passes, or fails without its hint."""
    case = case_of(result, case_name)
    assert case.passed or not case.shows_hint, (case.name, case.message)


def assert_all_pass(result):
    failing = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failing, failing


def assert_trivial_scores_zero(qid, real):
    """Every trivial stand-in for ``real`` (None, pass, raise, the input, zeros...)
    earns nothing."""
    earned = {name: run(qid, variant).score
              for name, variant in trivial_variants(real).items()}
    assert earned and all(score == 0 for score in earned.values()), earned


QIDS = ["05.causal_padding_mask", "05.alibi_bias", "05.padded_attention",
        "05.llama_parameter_count", "05.rope_half_layout", "05.grouped_query_attention",
        "05.kv_cache_step", "05.attention_backward"]


def test_every_question_has_three_core_cases_and_kinds():
    """Does lesson 05 have its 8 questions in order, each with 3 core cases, named
    after the answer it asks for?"""
    questions = questions_for_lesson("05")
    assert [q.qid for q in questions] == QIDS
    for q in questions:
        assert len(q.core_cases) == 3, q.qid
        assert all(c.kind in ("core", "mistake", "property") for c in q.cases)
        assert q.answers == [q.qid.split(".", 1)[1]], q.qid  # ids match the names


@pytest.mark.parametrize("qid", QIDS)
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError say "not implemented yet" and
    score 0?"""
    result = run(qid, stub)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


# ------------------------------------------------------------- 05.causal_padding_mask
def mask_answer(future=False, strict=False, inverted=False, keys_only=False,
                queries_only=False, no_padding=False, always_right=False,
                as_float=False):
    """An answer to 05.causal_padding_mask with one typical mistake switched on."""
    def causal_padding_mask(lengths, T, padding_side="right"):
        t = torch.arange(T)
        if padding_side == "right" or always_right:
            real = t[None, :] < lengths[:, None]
        else:
            real = t[None, :] >= T - lengths[:, None]
        ones = torch.ones(T, T, dtype=torch.bool)
        causal = ones.triu() if future else ones.tril(-1) if strict else ones.tril()
        mask = causal.expand(len(lengths), T, T)
        if not (no_padding or keys_only):
            mask = mask & real[:, :, None]
        if not (no_padding or queries_only):
            mask = mask & real[:, None, :]
        mask = ~mask if inverted else mask
        return mask.float() if as_float else mask

    return causal_padding_mask


def mask_by_loops(lengths, T, padding_side="right"):
    """Another correct style: Python loops over the pairs."""
    B = len(lengths)
    mask = torch.zeros(B, T, T, dtype=torch.bool)
    for b in range(B):
        L = int(lengths[b])
        first = 0 if padding_side == "right" else T - L
        for i in range(first, first + L):
            for j in range(first, i + 1):
                mask[b, i, j] = True
    return mask


def test_causal_padding_mask_reference_and_other_styles_pass():
    """Do a broadcasting answer and a loop answer pass every case?"""
    assert_all_pass(run("05.causal_padding_mask", mask_answer()))
    assert_all_pass(run("05.causal_padding_mask", mask_by_loops))


@pytest.mark.parametrize("wrong, case, word", [
    (mask_answer(inverted=True), "True means 'may attend'", "HIDDEN"),
    (mask_answer(future=True), "True means 'may attend'", "FUTURE"),
    (mask_answer(strict=True), "True means 'may attend'", "diagonal"),
    (mask_answer(queries_only=True), "padded keys are hidden", "padded KEYS"),
    (mask_answer(no_padding=True), "padded keys are hidden", "causal mask alone"),
    (mask_answer(keys_only=True), "padded queries' rows", "padded QUERIES"),
    (mask_answer(always_right=True), "padding_side decides", "on the right"),
    (mask_answer(as_float=True), "a bool tensor", "torch.bool"),
])
def test_causal_padding_mask_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.causal_padding_mask", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_causal_padding_mask_float_mask_fails_the_attention_case():
    """Is a 0/1 float mask (added to the scores by SDPA, not masking) caught by the core
    case that uses the mask in F.scaled_dot_product_attention?"""
    result = run("05.causal_padding_mask", mask_answer(as_float=True))
    assert not case_of(result, "used as attn_mask").passed
    assert case_of(result, "lengths 5, 3, 1").passed


def test_causal_padding_mask_mistakes_are_not_blamed_on_others():
    """Is an inverted mask not called a padding mistake, and a missing key mask not
    called an inverted one?"""
    result = run("05.causal_padding_mask", mask_answer(inverted=True))
    for innocent in ("padded keys are hidden", "padded queries' rows",
                     "padding_side decides"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("05.causal_padding_mask", mask_answer(queries_only=True)),
                      "True means 'may attend'")


def test_causal_padding_mask_oracle_by_hand():
    """Is the oracle the mask worked out by hand for one left-padded sequence?"""
    got = reference_causal_padding_mask(torch.tensor([2]), 3, "left")[0]
    assert got.tolist() == [[False, False, False], [False, True, False],
                            [False, True, True]]


def test_causal_padding_mask_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.causal_padding_mask", mask_answer())


# ------------------------------------------------------------------------ 05.alibi_bias
def alibi_answer(first_at_one=False, increasing=False, positive=False, no_causal=False,
                 symmetric=False, dtype=torch.float32):
    """An answer to 05.alibi_bias with one typical mistake switched on."""
    def alibi_bias(n_head, T):
        h = torch.arange(n_head) + (0 if first_at_one else 1)
        m = 2.0 ** (-8.0 * h / n_head)
        m = m.flip(0) if increasing else m
        i = torch.arange(T)
        dist = (i[:, None] - i[None, :]).to(dtype)
        dist = dist.abs() if symmetric else dist
        bias = (m[:, None, None] if positive else -m[:, None, None]) * dist
        if not no_causal:
            bias = bias.masked_fill(i[:, None] < i[None, :], float("-inf"))
        return bias.to(dtype)

    return alibi_bias


def alibi_by_the_papers_code(n_head, T):
    """Another correct style: the slopes as in the paper's get_slopes (a start and a
    ratio), a causal triangle of -inf added to -m |i - j|."""
    start = 2 ** (-(2 ** -(math.log2(n_head) - 3)))
    slopes = torch.tensor([start * start ** h for h in range(n_head)])
    i = torch.arange(T)
    distance = (i[None, :] - i[:, None]).abs().float()  # (T, T)
    future = torch.full((T, T), float("-inf")).triu(1)
    return -slopes[:, None, None] * distance + future


def test_alibi_bias_reference_and_other_styles_pass():
    """Do a masked_fill answer and the paper's start-and-ratio slopes pass every
    case?"""
    assert_all_pass(run("05.alibi_bias", alibi_answer()))
    assert_all_pass(run("05.alibi_bias", alibi_by_the_papers_code))


@pytest.mark.parametrize("wrong, case, word", [
    (alibi_answer(first_at_one=True), "the slopes 2^(-8/h)", "start at 1"),
    (alibi_answer(increasing=True), "the slopes 2^(-8/h)", "increasing"),
    (alibi_answer(positive=True), "a penalty", "GROWS"),
    (alibi_answer(no_causal=True), "a penalty", "not causal"),
    (alibi_answer(no_causal=True, symmetric=True), "a penalty", "-slope |t - u|"),
    (alibi_answer(dtype=torch.float64), "a float32 tensor", "float32"),
])
def test_alibi_bias_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.alibi_bias", wrong)
    assert_shows(result, case, word)


def test_alibi_bias_mistakes_fail_the_cores_and_are_not_blamed_on_others():
    """Do the value mistakes cost core cases, and is a shifted slope not called a sign
    or mask mistake?"""
    for mistake in ("first_at_one", "increasing", "positive", "no_causal"):
        assert run("05.alibi_bias", alibi_answer(**{mistake: True})).score < 1, mistake
    assert_not_blamed(run("05.alibi_bias", alibi_answer(first_at_one=True)),
                      "a penalty")


def test_alibi_bias_oracle_by_hand():
    """Are 8 heads' slopes 1/2, 1/4, ..., 1/256 (the paper's example), the bias
    -m (i - j) below the diagonal and -inf above?"""
    bias = reference_alibi_bias(8, 3)
    assert bias[:, 1, 0].tolist() == [-2.0 ** -h for h in range(1, 9)]
    assert bias[0, 2, 0] == -1.0 and bias[0, 0, 1] == -math.inf
    assert torch.equal(mistaken_alibi_bias(8, 3), bias)


def test_alibi_bias_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.alibi_bias", alibi_answer())


# ---------------------------------------------------------------- 05.padded_attention
def padded_answer(scale="sqrt", fill="-inf", after=False, keys=True, zero_rows=True,
                  dim=-1, as_double=False):
    """An answer to 05.padded_attention with one typical mistake switched on."""
    def padded_attention(q, k, v, lengths):
        B, T, d = q.shape
        real = torch.arange(T)[None, :] < lengths[:, None]
        divisor = {"sqrt": math.sqrt(d), "none": 1.0, "d": d}[scale]
        scores = q @ k.transpose(1, 2) / divisor
        pairs = real[:, :, None] & real[:, None, :] if keys else \
            real[:, :, None].expand(B, T, T)
        if after:
            weights = torch.softmax(scores, dim=dim) * pairs
        else:
            value = {"-inf": -math.inf, "0": 0.0, "-1e9": -1e9}[fill]
            weights = torch.softmax(scores.masked_fill(~pairs, value), dim=dim)
        out = weights @ v
        if zero_rows:
            out = torch.where(real[:, :, None], out, torch.zeros_like(out))
        return out.double() if as_double else out

    return padded_attention


def padded_by_slicing(q, k, v, lengths):
    """Another correct style: each sequence cut to its length, attention on that."""
    out = torch.zeros_like(q)
    for b, L in enumerate(lengths.tolist()):
        s = q[b, :L] @ k[b, :L].T / math.sqrt(q.shape[-1])  # (L, L)
        out[b, :L] = torch.softmax(s, dim=-1) @ v[b, :L]
    return out


def padded_by_sdpa(q, k, v, lengths):
    real = torch.arange(q.shape[1])[None, :] < lengths[:, None]
    return F.scaled_dot_product_attention(q, k, v,
                                          attn_mask=real[:, None, :] & real[:, :, None])


def padded_by_mha(q, k, v, lengths):
    mha = nn.MultiheadAttention(q.shape[-1], 1, batch_first=True)
    return mha(q, k, v, need_weights=False)[0]


def test_padded_attention_reference_and_other_styles_pass():
    """Do a masked answer and a per-sequence slicing answer pass every case?"""
    assert_all_pass(run("05.padded_attention", padded_answer()))
    assert_all_pass(run("05.padded_attention", padded_by_slicing))


@pytest.mark.parametrize("library, name", [(padded_by_sdpa, "scaled_dot_product"),
                                           (padded_by_mha, "MultiheadAttention")])
def test_padded_attention_library_scores_zero(library, name):
    """Do F.scaled_dot_product_attention and nn.MultiheadAttention score 0 as library
    calls?"""
    result = run("05.padded_attention", library)
    assert result.status == FORBIDDEN and result.score == 0
    assert name in result.cases[0].message


@pytest.mark.parametrize("wrong, case, word", [
    (padded_answer(scale="none"), "the scores are divided by sqrt(d_k)", "not scaled"),
    (padded_answer(scale="d"), "the scores are divided by sqrt(d_k)", "square root"),
    (padded_answer(after=True), "the padded keys are masked before", "AFTER"),
    (padded_answer(fill="0"), "the padded keys are masked before", "not -inf"),
    (padded_answer(keys=False), "the padded keys are masked before", "take part"),
    (padded_answer(dim=1), "the softmax runs over the keys", "over the queries"),
    (padded_answer(zero_rows=False), "padded queries give zeros", "NaN"),
    (padded_answer(fill="-1e9", zero_rows=False), "padded queries give zeros",
     "averages"),
    (padded_answer(as_double=True), "a float32 tensor", "float32"),
])
def test_padded_attention_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.padded_attention", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_padded_attention_nan_rows_fail_the_padded_cores():
    """Do NaN rows at the padded queries fail the core cases with padding (and pass
    the one without)?"""
    result = run("05.padded_attention", padded_answer(zero_rows=False))
    assert case_of(result, "lengths 7, 7 (no padding)").passed
    assert not case_of(result, "lengths 5, 3, 1").passed
    assert result.score < 0.5


def test_padded_attention_mistakes_are_not_blamed_on_others():
    """Is a missing scale not called a masking mistake, and masking after the softmax
    not called a missing scale?"""
    result = run("05.padded_attention", padded_answer(scale="none"))
    for innocent in ("the padded keys are masked before", "padded queries give zeros",
                     "the softmax runs over the keys"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("05.padded_attention", padded_answer(after=True)),
                      "the scores are divided by sqrt(d_k)")


def test_padded_attention_oracle_gives_zero_rows_and_slices():
    """Is the SDPA oracle zero at the padded queries and, at the real ones, attention
    over the sequence cut to its length (float64)?"""
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 5, 4, dtype=torch.float64) for _ in range(3))
    lengths = torch.tensor([5, 2, 0])
    ref = reference_padded_attention(q, k, v, lengths)
    assert torch.allclose(ref, padded_by_slicing(q, k, v, lengths), atol=1e-12)
    assert ref[1, 2:].abs().max() == 0 and ref[2].abs().max() == 0


def test_padded_attention_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.padded_attention", padded_answer())


# ----------------------------------------------------------- 05.llama_parameter_count
def count_answer(full_kv=False, two_matrices=False, norm_bias=False, no_norms=False,
                 no_final_norm=False, tied_twice=False, no_head=False, per_head=False,
                 as_float=False):
    """An answer to 05.llama_parameter_count with one typical mistake switched on."""
    def llama_parameter_count(vocab_size, n_layer, n_head, n_kv_head, d_model, d_ff,
                              tied=False):
        C, d_k = d_model, d_model // n_head
        kv = C if full_kv else n_kv_head * d_k
        attn = (C * C + C * kv + C * kv + C * C) * (n_head if per_head else 1)
        mlp = (2 if two_matrices else 3) * C * d_ff
        norm = 0 if no_norms else C * (2 if norm_bias else 1)
        total = vocab_size * C + n_layer * (2 * norm + attn + mlp)
        total += 0 if no_final_norm else norm
        if (not tied and not no_head) or (tied and tied_twice):
            total += vocab_size * C
        return float(total) if as_float else total

    return llama_parameter_count


def count_by_building(vocab_size, n_layer, n_head, n_kv_head, d_model, d_ff,
                      tied=False):
    """Another correct style: build the modules (on the meta device) and count."""
    d_k = d_model // n_head
    with torch.device("meta"):
        parts = [nn.Embedding(vocab_size, d_model), nn.RMSNorm(d_model)]
        for _ in range(n_layer):
            parts += [nn.RMSNorm(d_model), nn.RMSNorm(d_model),
                      nn.Linear(d_model, d_model + 2 * n_kv_head * d_k, bias=False),
                      nn.Linear(d_model, d_model, bias=False),
                      nn.Linear(d_model, 2 * d_ff, bias=False),
                      nn.Linear(d_ff, d_model, bias=False)]
        if not tied:
            parts.append(nn.Linear(d_model, vocab_size, bias=False))
    return sum(p.numel() for m in parts for p in m.parameters())


def test_llama_parameter_count_reference_and_other_styles_pass():
    """Do a formula and a count of torch modules pass every case?"""
    assert_all_pass(run("05.llama_parameter_count", count_answer()))
    assert_all_pass(run("05.llama_parameter_count", count_by_building))


@pytest.mark.parametrize("wrong, case, word", [
    (count_answer(full_kv=True), "the keys and values are n_kv_head", "n_kv_head = "),
    (count_answer(two_matrices=True), "the SwiGLU MLP", "two matrices"),
    (count_answer(norm_bias=True), "an RMSNorm has a gain", "with a bias"),
    (count_answer(no_norms=True), "an RMSNorm has a gain", "not counted"),
    (count_answer(no_final_norm=True), "an RMSNorm has a gain", "final"),
    (count_answer(tied_twice=True), "the head:", "in addition"),
    (count_answer(no_head=True), "the head:", "not counted"),
    (count_answer(per_head=True), "the heads split d_model", "once per head"),
    (count_answer(as_float=True), "returns a Python int", "int"),
])
def test_llama_parameter_count_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.llama_parameter_count", wrong)
    assert_shows(result, case, word)


def test_llama_parameter_count_mistakes_fail_a_core_case():
    """Does every counting mistake also cost a core case (the cores mix grouped and
    plain attention, tied and untied heads)?"""
    for mistake in ("full_kv", "two_matrices", "norm_bias", "no_norms", "no_final_norm",
                    "tied_twice", "no_head", "per_head"):
        result = run("05.llama_parameter_count", count_answer(**{mistake: True}))
        assert result.score < 1, mistake


def test_llama_parameter_count_mistakes_are_not_blamed_on_others():
    """Is full-width k and v not called a SwiGLU, RMSNorm or head mistake?"""
    result = run("05.llama_parameter_count", count_answer(full_kv=True))
    for innocent in ("the SwiGLU MLP", "an RMSNorm has a gain", "the head:",
                     "the heads split d_model"):
        assert_not_blamed(result, innocent)


def test_llama_parameter_count_oracle_is_the_published_sizes():
    """Is the oracle Llama 2 7B's 6,738,415,616 parameters and Llama 3 8B's
    8,030,261,248 (their model cards' 7B and 8B), and the check's formula without
    mistakes the same count?"""
    assert reference_llama_parameter_count(32000, 32, 32, 32, 4096, 11008) == \
        6_738_415_616
    assert reference_llama_parameter_count(128256, 32, 32, 8, 4096, 14336) == \
        8_030_261_248
    for config in [(11, 2, 4, 2, 16, 40, True), (13, 2, 8, 2, 32, 48, False)]:
        assert mistaken_count(*config) == reference_llama_parameter_count(*config)
    with torch.device("meta"):
        model = Llama(11, 1, 2, 1, 4, 8, True)
    assert model.output.weight is model.tok_embeddings.weight


def test_llama_parameter_count_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.llama_parameter_count", count_answer())


# ---------------------------------------------------------------- 05.rope_half_layout
def layout_answer(one_head=False, inverse=False, columns=False, unchanged=False,
                  as_double=False):
    """An answer to 05.rope_half_layout with one typical mistake switched on."""
    def rope_half_layout(W, n_head):
        out, C_in = W.shape
        heads = 1 if one_head else n_head
        d_k = out // heads
        if unchanged:
            new = W.clone()
        elif columns:
            new = W.T.reshape(C_in // 2, 2, out).transpose(0, 1).reshape(C_in, out).T
        elif inverse:
            new = W.view(heads, 2, d_k // 2, C_in).transpose(1, 2).reshape(out, C_in)
        else:
            new = W.view(heads, d_k // 2, 2, C_in).transpose(1, 2).reshape(out, C_in)
        return new.double() if as_double else new

    return rope_half_layout


def layout_by_indices(W, n_head):
    """Another correct style: an index list, even rows then odd rows of each head."""
    d_k = W.shape[0] // n_head
    order = [h * d_k + r for h in range(n_head)
             for r in list(range(0, d_k, 2)) + list(range(1, d_k, 2))]
    return W[order]


def test_rope_half_layout_reference_and_other_styles_pass():
    """Do a reshape-transpose answer and an index answer pass every case?"""
    assert_all_pass(run("05.rope_half_layout", layout_answer()))
    assert_all_pass(run("05.rope_half_layout", layout_by_indices))


def test_rope_half_layout_negated_pairs_also_pass():
    """Is an answer that also negates one pair of rows in every head (a rotation of
    pi, which keeps every score) accepted: the cores check the scores, not one
    permutation?"""
    def negated(W, n_head):
        new = layout_by_indices(W, n_head).clone()
        d_k = W.shape[0] // n_head
        for h in range(n_head):
            new[[h * d_k, h * d_k + d_k // 2]] *= -1  # both coordinates of pair 0
        return new

    result = run("05.rope_half_layout", negated)
    assert all(c.passed for c in result.cases if c.kind == "core")


@pytest.mark.parametrize("wrong, case, word", [
    (layout_answer(unchanged=True), "the two layouts differ", "unchanged"),
    (layout_answer(one_head=True), "head by head", "ALL the heads"),
    (layout_answer(columns=True), "head by head", "columns"),
    (layout_answer(inverse=True), "head by head", "inverse"),
    (layout_answer(as_double=True), "a tensor of W's shape and dtype", "float64"),
])
def test_rope_half_layout_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.rope_half_layout", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_rope_half_layout_one_head_mistake_passes_only_the_one_head_core():
    """Is reordering all the rows as one head right with one head and wrong with
    several?"""
    result = run("05.rope_half_layout", layout_answer(one_head=True))
    assert case_of(result, "1 head of d_k = 16").passed
    assert not case_of(result, "2 heads of d_k = 8").passed


def test_rope_half_layout_oracles_are_two_layouts_of_one_rotation():
    """Are the check's two RoPEs the lesson's two layouts (the paper's = complex
    multiplication; rotate-half = the same rotation with coordinates i, i + d/2), and
    does the reference permutation carry one into the other?"""
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    positions = torch.tensor([0, 4, 9, 17, 40])
    perm = [0, 2, 4, 6, 1, 3, 5, 7]
    torch.testing.assert_close(rope_half(x[..., perm], positions),
                               rope_pairs(x, positions)[..., perm])
    torch.testing.assert_close(rope_pairs(x, torch.zeros(5, dtype=torch.long)), x)
    W = torch.arange(16.0).reshape(8, 2)
    assert reference_rope_half_layout(W, 2)[:, 0].tolist() == [0, 4, 2, 6, 8, 12, 10,
                                                               14]
    assert torch.equal(mistaken_rope_half_layout(W, 2),
                       reference_rope_half_layout(W, 2))


def test_rope_half_layout_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.rope_half_layout", layout_answer())


# ---------------------------------------------------------- 05.grouped_query_attention
def gqa_answer(split_view=False, merge_view=False, tile=False, scale="d_k",
               causal=True):
    """An answer to 05.grouped_query_attention with one typical mistake switched on."""
    def grouped_query_attention(x, W_q, W_k, W_v, W_o, n_head, n_kv_head):
        B, T, C = x.shape
        d_k = C // n_head

        def heads(t, n):
            if split_view:
                return t.reshape(B, n, T, d_k)
            return t.reshape(B, T, n, d_k).transpose(1, 2)

        q, k, v = heads(x @ W_q.T, n_head), heads(x @ W_k.T, n_kv_head), \
            heads(x @ W_v.T, n_kv_head)
        g = n_head // n_kv_head
        if tile:
            k, v = k.repeat(1, g, 1, 1), v.repeat(1, g, 1, 1)
        else:
            k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
        s = q @ k.transpose(-2, -1) / {"d_k": math.sqrt(d_k), "C": math.sqrt(C),
                                       "none": 1.0}[scale]
        if causal:
            s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), -math.inf)
        y = torch.softmax(s, -1) @ v
        y = y.reshape(B, T, C) if merge_view else y.transpose(1, 2).reshape(B, T, C)
        return y @ W_o.T

    return grouped_query_attention


def gqa_by_loops(x, W_q, W_k, W_v, W_o, n_head, n_kv_head):
    """Another correct style: one head at a time, by slicing the weights' rows."""
    B, T, C = x.shape
    d_k, g = C // n_head, n_head // n_kv_head
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    outs = []
    for h in range(n_head):
        j = h // g
        q = x @ W_q[h * d_k:(h + 1) * d_k].T  # (B, T, d_k)
        k = x @ W_k[j * d_k:(j + 1) * d_k].T
        v = x @ W_v[j * d_k:(j + 1) * d_k].T
        s = (q @ k.transpose(1, 2) / math.sqrt(d_k)).masked_fill(future, -math.inf)
        outs.append(torch.softmax(s, -1) @ v)
    return torch.cat(outs, dim=-1) @ W_o.T


def gqa_by_sdpa(x, W_q, W_k, W_v, W_o, n_head, n_kv_head):
    B, T, C = x.shape
    q = (x @ W_q.T).view(B, T, n_head, -1).transpose(1, 2)
    k = (x @ W_k.T).view(B, T, n_kv_head, -1).transpose(1, 2)
    v = (x @ W_v.T).view(B, T, n_kv_head, -1).transpose(1, 2)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    return y.transpose(1, 2).reshape(B, T, C) @ W_o.T


def test_grouped_query_attention_reference_and_other_styles_pass():
    """Do a batched answer and a head-by-head answer pass every case?"""
    assert_all_pass(run("05.grouped_query_attention", gqa_answer()))
    assert_all_pass(run("05.grouped_query_attention", gqa_by_loops))


def test_grouped_query_attention_library_scores_zero():
    """Does F.scaled_dot_product_attention(enable_gqa=True) score 0 as a library
    call?"""
    result = run("05.grouped_query_attention", gqa_by_sdpa)
    assert result.status == FORBIDDEN and result.score == 0


@pytest.mark.parametrize("wrong, case, word", [
    (gqa_answer(split_view=True), "heads are split and merged", "split by reshaping"),
    (gqa_answer(merge_view=True), "heads are split and merged", "merged by reshaping"),
    (gqa_answer(split_view=True, merge_view=True), "heads are split and merged",
     "without a transpose"),
    (gqa_answer(tile=True), "consecutive query heads share", "tiled"),
    (gqa_answer(scale="C"), "scores scaled by 1/sqrt(d_k)", "sqrt(C)"),
    (gqa_answer(scale="none"), "scores scaled by 1/sqrt(d_k)", "not scaled"),
    (gqa_answer(causal=False), "scores scaled by 1/sqrt(d_k)", "future"),
])
def test_grouped_query_attention_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.grouped_query_attention", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_grouped_query_attention_tiling_passes_only_the_plain_cases():
    """Is tiling the kv heads right where it cannot matter (one kv head per query head,
    or one for all) and wrong with groups?"""
    result = run("05.grouped_query_attention", gqa_answer(tile=True))
    assert case_of(result, "n_head = n_kv_head = 4").passed
    assert case_of(result, "multi-query").passed
    assert not case_of(result, "n_head = 6, n_kv_head = 2").passed


def test_grouped_query_attention_mistakes_are_not_blamed_on_others():
    """Is a split without transpose not called tiling or a wrong scale?"""
    result = run("05.grouped_query_attention", gqa_answer(split_view=True))
    for innocent in ("consecutive query heads share", "scores scaled by 1/sqrt(d_k)"):
        assert_not_blamed(result, innocent)


def test_grouped_query_attention_oracles_agree():
    """Is the enable_gqa oracle nn.MultiheadAttention when every query head has its own
    kv head, and the head-by-head loop with groups (float64)?"""
    from course_utils.grading.checks.lesson05.grouped_query_attention import _weights
    x = torch.randn(2, 5, 16)
    weights = _weights(0, 16, 4, 4)
    assert torch.allclose(reference_grouped_query_attention(x, *weights, 4, 4).float(),
                          mha_reference(x, *weights, 4), atol=1e-5)
    weights = _weights(1, 24, 6, 2)
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    w64 = [w.double() for w in weights]
    assert torch.allclose(reference_grouped_query_attention(x, *weights, 6, 2),
                          gqa_by_loops(x, *w64, 6, 2), atol=1e-12)
    assert torch.allclose(mistaken_gqa(x, *weights, 6, 2),
                          gqa_by_loops(x, *w64, 6, 2), atol=1e-12)


def test_grouped_query_attention_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.grouped_query_attention", gqa_answer())


# -------------------------------------------------------------------- 05.kv_cache_step
def kv_answer(restart=False, shift=0, top_left=False, cache_only=False,
              no_scale=False, no_residual=False, keep_cache=False, in_place=False):
    """An answer to 05.kv_cache_step with one typical mistake switched on."""
    def kv_cache_step(model, idx, cache):
        B, S = idx.shape
        C, nh = model.tok.embedding_dim, model.attn.num_heads
        t = 0 if cache is None else cache[0].shape[2]
        start = 0 if restart else t + shift
        x = model.tok(idx) + model.pos(torch.arange(start, start + S))
        qkv = F.linear(x, model.attn.in_proj_weight, model.attn.in_proj_bias)
        q, k, v = (u.view(B, S, nh, -1).transpose(1, 2) for u in qkv.split(C, -1))
        if cache is None:
            k_all, v_all = k, v
        elif in_place:  # writes the new keys over the end of the cache given
            with torch.no_grad():
                cache[0][:, :, -1:] = k[:, :, -1:]
            k_all, v_all = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        else:
            k_all, v_all = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        keys, values = (cache if cache_only and cache is not None else (k_all, v_all))
        n = keys.shape[2]
        if top_left:
            y = F.scaled_dot_product_attention(q, keys, values, is_causal=True,
                                               scale=1.0 if no_scale else None)
        else:
            allowed = torch.arange(n)[None, :] <= (n - S + torch.arange(S))[:, None]
            if cache_only and cache is not None:
                allowed = torch.ones(S, n, dtype=torch.bool)
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed,
                                               scale=1.0 if no_scale else None)
        y = model.attn.out_proj(y.transpose(1, 2).reshape(B, S, C))
        logits = model.head(y if no_residual else x + y)
        return logits, (cache if keep_cache and cache is not None else (k_all, v_all))

    return kv_cache_step


def kv_by_hand(model, idx, cache):
    """Another correct style: the attention written out, the mask built from -inf, the
    cache kept as a list [k, v]."""
    B, S = idx.shape
    C, nh = model.tok.embedding_dim, model.attn.num_heads
    d_k = C // nh
    t = 0 if cache is None else cache[0].size(2)
    with torch.no_grad():
        x = model.tok(idx) + model.pos.weight[t:t + S]
        W_q, W_k, W_v = model.attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = model.attn.in_proj_bias.chunk(3)
        q, k, v = (F.linear(x, W, b).view(B, S, nh, d_k).permute(0, 2, 1, 3)
                   for W, b in ((W_q, b_q), (W_k, b_k), (W_v, b_v)))
        if cache is not None:
            k, v = torch.cat((cache[0], k), dim=-2), torch.cat((cache[1], v), dim=-2)
        s = q @ k.transpose(-1, -2) / math.sqrt(d_k)  # (B, nh, S, t + S)
        hidden = torch.ones(S, t + S, dtype=torch.bool).triu(t + 1)
        y = torch.softmax(s.masked_fill(hidden, float("-inf")), -1) @ v
        y = model.attn.out_proj(y.permute(0, 2, 1, 3).reshape(B, S, C))
        return model.head(x + y), [k, v]


def test_kv_cache_step_reference_and_other_styles_pass():
    """Do an SDPA answer with an explicit mask and an answer written out by hand pass
    every case?"""
    assert_all_pass(run("05.kv_cache_step", kv_answer()))
    assert_all_pass(run("05.kv_cache_step", kv_by_hand))


@pytest.mark.parametrize("wrong, case, word", [
    (kv_answer(restart=True), "the new positions continue", "as if the cache"),
    (kv_answer(shift=-1), "the new positions continue", "t0 - 1"),
    (kv_answer(shift=1), "the new positions continue", "t0 + 1"),
    (kv_answer(top_left=True), "each new query sees the whole cache", "top-left"),
    (kv_answer(cache_only=True), "each new query sees the whole cache",
     "not to their own"),
    (kv_answer(keep_cache=True), "the cache returned holds", "not appended"),
    (kv_answer(no_scale=True), "scores scaled by 1/sqrt(d_k)", "not scaled"),
    (kv_answer(no_residual=True), "scores scaled by 1/sqrt(d_k)", "residual"),
    (kv_answer(in_place=True), "the cache given is left unchanged", "in place"),
])
def test_kv_cache_step_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.kv_cache_step", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_kv_cache_step_top_left_mask_passes_only_token_by_token_from_scratch():
    """Is is_causal=True with a cache wrong in every core case (each has a step after
    the first), though right on a prompt from an empty cache?"""
    result = run("05.kv_cache_step", kv_answer(top_left=True))
    assert result.score == 0
    from course_utils.grading.checks.lesson05.kv_cache_step import _model, _run
    ids = torch.randint(0, 13, (2, 5))
    _run(kv_answer(top_left=True), _model(0), ids, [5])  # no failure: one chunk


def test_kv_cache_step_mistakes_are_not_blamed_on_others():
    """Is a position off by one not called a mask mistake or a missing scale?"""
    result = run("05.kv_cache_step", kv_answer(shift=1))
    for innocent in ("each new query sees the whole cache",
                     "scores scaled by 1/sqrt(d_k)"):
        assert_not_blamed(result, innocent)


def test_kv_cache_step_oracle_is_full_recomputation():
    """Does the check's reference step, fed back on itself, give the model's logits on
    the whole prefix at every step (float32)?"""
    torch.manual_seed(0)
    model = TinyAttentionLM(7, 12, 3, 16).eval()
    ids = torch.randint(0, 7, (2, 10))
    cache, t = None, 0
    for S in (4, 1, 3, 2):
        logits, cache = reference_kv_cache_step(model, ids[:, t:t + S], cache)
        with torch.no_grad():
            assert torch.allclose(logits, model(ids[:, :t + S])[:, t:], atol=1e-5)
        t += S
    assert cache[0].shape == (2, 3, 10, 4)


def test_kv_cache_step_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.kv_cache_step", kv_answer())


# --------------------------------------------------------------- 05.attention_backward
def backward_answer(dV_P=False, no_centering=False, no_scale=False, dK_dS=False,
                    no_mask=False, in_place=False):
    """An answer to 05.attention_backward with one typical mistake switched on."""
    def attention_backward(Q, K, V, dO, causal):
        T, d_k = Q.shape[1], Q.shape[2]
        S = np.einsum("bik,bjk->bij", Q, K) / math.sqrt(d_k)
        if causal and not no_mask:
            S[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] = -np.inf
        P = np.exp(S - S.max(-1, keepdims=True))
        P = P / P.sum(-1, keepdims=True)
        dV = np.einsum("bij,bjd->bid", P, dO) if dV_P else np.einsum("bij,bid->bjd", P,
                                                                    dO)
        dP = np.einsum("bid,bjd->bij", dO, V)
        dS = P * dP if no_centering else P * (dP - np.sum(P * dP, -1, keepdims=True))
        c = 1.0 if no_scale else 1 / math.sqrt(d_k)
        dQ = np.einsum("bij,bjk->bik", dS, K) * c
        dK = (np.einsum("bij,bjk->bik", dS, Q) if dK_dS
              else np.einsum("bij,bik->bjk", dS, Q)) * c
        if in_place:
            Q *= 1.0
            Q[0, 0, 0] += 1.0
        return dQ, dK, dV

    return attention_backward


def test_attention_backward_reference_and_other_styles_pass():
    """Do an einsum answer and the check's matrix-product backward pass every case?"""
    assert_all_pass(run("05.attention_backward", backward_answer()))
    assert_all_pass(run("05.attention_backward", mistaken_attention_backward))


@pytest.mark.parametrize("wrong, case, word", [
    (backward_answer(dV_P=True), "dV pairs the attention weights", "not transposed"),
    (backward_answer(no_centering=True), "the softmax's backward subtracts",
     "weighted mean"),
    (backward_answer(no_scale=True), "the 1/sqrt(d_k) of the scores", "too large"),
    (backward_answer(dK_dS=True), "dK pairs dS, transposed", "its transpose"),
    (backward_answer(no_mask=True), "masked pairs get no gradient", "WITHOUT"),
    (backward_answer(in_place=True), "arrays of the inputs' shapes", "in place"),
])
def test_attention_backward_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("05.attention_backward", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_attention_backward_mistakes_are_not_blamed_on_others():
    """Is a missing centring not called a missing scale or a transposed dK, and a
    transposed dV not called a softmax mistake?"""
    result = run("05.attention_backward", backward_answer(no_centering=True))
    for innocent in ("the 1/sqrt(d_k) of the scores", "dK pairs dS, transposed",
                     "dV pairs the attention weights"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("05.attention_backward", backward_answer(dV_P=True)),
                      "the softmax's backward subtracts")


def test_attention_backward_oracle_is_sdpas_backward():
    """Is the autograd oracle the backward of F.scaled_dot_product_attention (causal,
    float64)?"""
    rng = np.random.default_rng(0)
    Q, K = rng.standard_normal((2, 2, 5, 3))
    V, dO = rng.standard_normal((2, 2, 5, 4))
    ref = reference_attention_backward(Q, K, V, dO, True)
    q, k, v = (torch.tensor(a, requires_grad=True) for a in (Q, K, V))
    F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(torch.tensor(dO))
    for got, t in zip(ref, (q, k, v)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_attention_backward_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("05.attention_backward", backward_answer())


def test_not_judged_message_is_the_lessons_words():
    """Is the "not judged yet" text the one the other lessons use?"""
    assert NOT_JUDGED.startswith("Not judged yet")
