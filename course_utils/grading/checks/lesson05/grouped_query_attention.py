"""Checks of 05.grouped_query_attention: Causal grouped-query attention."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...asserts import CheckFailure, expect_close
from ...registry import question
from ._common import (LIBRARY_ATTENTION, _copies, _randn, _tensor, _verdict,
                      call_from_scratch)


q = question("05.grouped_query_attention", "Causal grouped-query attention",
             answers=["grouped_query_attention"], timeout=5)


def _weights(seed, C, n_head, n_kv_head):
    """Seeded W_q (C, C), W_k and W_v (n_kv_head d_k, C), W_o (C, C), nn.Linear's
    layout (out, in), scaled like its default initialisation."""
    d_k = C // n_head
    shapes = [(C, C), (n_kv_head * d_k, C), (n_kv_head * d_k, C), (C, C)]
    return tuple(_randn(seed + i, *s, scale=1 / math.sqrt(C)) for i, s in
                 enumerate(shapes))


def _heads(t, n, B, T):
    """(B, T, n d) -> (B, n, T, d): head h takes the columns h d .. (h + 1) d."""
    return t.view(B, T, n, -1).transpose(1, 2)


def reference_grouped_query_attention(x, W_q, W_k, W_v, W_o, n_head, n_kv_head):
    """Causal attention with query head h reading key/value head h // (n_head /
    n_kv_head): F.scaled_dot_product_attention's enable_gqa (float64)."""
    B, T, C = x.shape
    x, W_q, W_k, W_v, W_o = (t.double() for t in (x, W_q, W_k, W_v, W_o))
    q_ = _heads(x @ W_q.T, n_head, B, T)  # (B, n_head, T, d_k)
    k = _heads(x @ W_k.T, n_kv_head, B, T)  # (B, n_kv_head, T, d_k)
    v = _heads(x @ W_v.T, n_kv_head, B, T)
    y = F.scaled_dot_product_attention(q_, k, v, is_causal=True, enable_gqa=True)
    return y.transpose(1, 2).reshape(B, T, C) @ W_o.T  # (B, T, C)


def mha_reference(x, W_q, W_k, W_v, W_o, n_head):
    """nn.MultiheadAttention (no biases, causal) with these weights: the oracle when
    every query head has its own key/value head."""
    B, T, C = x.shape
    mha = nn.MultiheadAttention(C, n_head, bias=False, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([W_q, W_k, W_v]))
        mha.out_proj.weight.copy_(W_o)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # True: NOT allowed
        y, _ = mha(x, x, x, attn_mask=future, need_weights=False)
    return y


def mistaken_gqa(x, W_q, W_k, W_v, W_o, n_head, n_kv_head, split_view=False,
                 merge_view=False, tile=False, scale="d_k", causal=True):
    """Grouped-query attention with one typical mistake switched on (float64)."""
    B, T, C = x.shape
    d_k = C // n_head
    x, W_q, W_k, W_v, W_o = (t.double() for t in (x, W_q, W_k, W_v, W_o))

    def heads(t, n):
        if split_view:  # (B, T, n d) read as (B, n, T, d) without the transpose
            return t.reshape(B, n, T, -1)
        return _heads(t, n, B, T)

    q_, k, v = heads(x @ W_q.T, n_head), heads(x @ W_k.T, n_kv_head), \
        heads(x @ W_v.T, n_kv_head)
    group = n_head // n_kv_head
    if tile:  # query head h reads kv head h % n_kv_head
        k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
    else:
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    divisor = {"d_k": math.sqrt(d_k), "C": math.sqrt(C), "none": 1.0}[scale]
    scores = q_ @ k.transpose(-2, -1) / divisor  # (B, n_head, T, T)
    if causal:
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, -math.inf)
    y = torch.softmax(scores, dim=-1) @ v  # (B, n_head, T, d_k)
    y = y.reshape(B, T, C) if merge_view else y.transpose(1, 2).reshape(B, T, C)
    return y @ W_o.T


def _what(x, n_head, n_kv_head) -> str:
    return (f"grouped_query_attention(x {tuple(x.shape)}, W_q, W_k, W_v, W_o, "
            f"n_head={n_head}, n_kv_head={n_kv_head})")


def _answer(fn, x, weights, n_head, n_kv_head, check_mutation=False):
    args = (x, *weights) if check_mutation else _copies(x, *weights)
    got = call_from_scratch(fn, *args, n_head, n_kv_head, forbid=LIBRARY_ATTENTION,
                            name="grouped_query_attention",
                            check_mutation=check_mutation)
    return _tensor(got, _what(x, n_head, n_kv_head), tuple(x.shape))


def _expect(fn, seed, B, T, C, n_head, n_kv_head, mistakes=None, oracle=None):
    """Against the reference (or ``oracle``) in a core case, or also against
    ``mistakes`` ({message: keywords of mistaken_gqa}) in a mistake case."""
    x = _randn(seed, B, T, C)
    weights = _weights(seed + 10, C, n_head, n_kv_head)
    got = _answer(fn, x, weights, n_head, n_kv_head)
    expected = (oracle or reference_grouped_query_attention)(x, *weights, n_head,
                                                             n_kv_head)
    what = _what(x, n_head, n_kv_head)
    if mistakes is None:
        expect_close(got, expected, rtol=1e-4, atol=1e-5, what=what)
        return
    wrong = {told: mistaken_gqa(x, *weights, n_head, n_kv_head, **kw)
             for told, kw in mistakes.items()}
    _verdict(got, expected, wrong, "", what, rtol=1e-4, atol=1e-5)


_HINT = ("Project, split the columns into heads (head h: columns h d_k .. (h+1) d_k), "
         "let each group of n_head / n_kv_head consecutive query heads share one key/"
         "value head, run causal scaled dot-product attention per head, put the heads' "
         "outputs side by side in head order, and project with W_o.")


@q.case("n_head = n_kv_head = 4 (plain multi-head attention), against "
        "nn.MultiheadAttention", kind="core", hint=_HINT)
def _(grouped_query_attention):
    _expect(grouped_query_attention, 0, 2, 5, 16, 4, 4,
            oracle=lambda x, Wq, Wk, Wv, Wo, n_head, _: mha_reference(x, Wq, Wk, Wv,
                                                                      Wo, n_head))


@q.case("n_head = 6, n_kv_head = 2; B = 2, T = 7, C = 24", kind="core", hint=_HINT)
def _(grouped_query_attention):
    _expect(grouped_query_attention, 20, 2, 7, 24, 6, 2)


@q.case("multi-query: n_head = 4, n_kv_head = 1; B = 3, T = 4, C = 8", kind="core",
        hint=_HINT)
def _(grouped_query_attention):
    _expect(grouped_query_attention, 40, 3, 4, 8, 4, 1)


@q.case("heads are split and merged with a transpose",
        hint="(B, T, C) -> (B, T, n_head, d_k) -> transpose to (B, n_head, T, d_k), "
             "and back the same way: a view or reshape straight to (B, n_head, T, "
             "d_k), or from it to (B, T, C), has the right shape and mixes tokens "
             "with heads.")
def _(grouped_query_attention):
    _expect(grouped_query_attention, 60, 2, 6, 12, 3, 3, mistakes={
        "the heads were split by reshaping (B, T, C) straight to (B, n_head, T, d_k), "
        "without the transpose: tokens and heads are mixed.": dict(split_view=True),
        "the heads' outputs were merged by reshaping (B, n_head, T, d_k) straight to "
        "(B, T, C), without the transpose.": dict(merge_view=True),
        "the heads were split and merged without a transpose.":
            dict(split_view=True, merge_view=True)})


@q.case("consecutive query heads share a key/value head",
        hint="Query heads 0 .. g-1 share key/value head 0, heads g .. 2g-1 head 1, ... "
             "(g = n_head / n_kv_head; the convention of enable_gqa and of Llama's "
             "repeat_kv): repeat each kv head g times in place (repeat_interleave), "
             "not the whole stack of kv heads g times.")
def _(grouped_query_attention):
    _expect(grouped_query_attention, 70, 2, 5, 24, 6, 3, mistakes={
        "query head h read key/value head h % n_kv_head (the stack of kv heads tiled), "
        "not h // (n_head / n_kv_head).": dict(tile=True)})


@q.case("scores scaled by 1/sqrt(d_k), under a causal mask",
        hint="d_k is the width of ONE head, C / n_head, not C; and a token attends to "
             "itself and its past only.")
def _(grouped_query_attention):
    _expect(grouped_query_attention, 80, 2, 5, 16, 4, 2, mistakes={
        "the scores were divided by sqrt(C), the model's width, not by sqrt(d_k) of "
        "one head.": dict(scale="C"),
        "the scores were not scaled.": dict(scale="none"),
        "there is no causal mask: tokens attend to their future.": dict(causal=False)})


@q.case("a float32 tensor (B, T, C); inputs left unchanged", kind="property",
        hint="Return a new float32 tensor of x's shape, and leave x and the weights as "
             "they are.")
def _(grouped_query_attention):
    x, weights = _randn(90, 1, 3, 8), _weights(91, 8, 2, 1)
    got = _answer(grouped_query_attention, x, weights, 2, 1, check_mutation=True)
    if got.dtype != torch.float32:
        raise CheckFailure(f"{_what(x, 2, 1)} returned a {got.dtype} tensor; expected "
                           "float32, the dtype of x.")
