"""Checks of 05.alibi_bias: ALiBi's attention biases."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, call, expect_close
from ...registry import question
from ._common import _randn, _tensor, _verdict


q = question("05.alibi_bias", "ALiBi's attention biases", answers=["alibi_bias"],
             timeout=5)


def _slopes(n_head, first_at_one=False, increasing=False):
    """Press et al. (2022), section 3: the geometric sequence 2^(-8/n), 2^(-16/n), ...,
    2^(-8) of n_head slopes (n_head a power of 2); or a typical mistake."""
    h = torch.arange(n_head, dtype=torch.float64)  # head 0 .. n_head - 1
    m = 2.0 ** (-8.0 * (h if first_at_one else h + 1) / n_head)  # (n_head,)
    return m.flip(0) if increasing else m


def reference_alibi_bias(n_head, T):
    """(n_head, T, T) float64: -m_h (i - j) where key j <= query i, -inf above the
    diagonal, as the float attn_mask of a causal model (Press et al. 2022)."""
    i = torch.arange(T, dtype=torch.float64)
    distance = i[:, None] - i[None, :]  # (T, T): i - j
    bias = -_slopes(n_head)[:, None, None] * distance  # (n_head, T, T)
    return bias.masked_fill(distance < 0, -math.inf)


def mistaken_alibi_bias(n_head, T, first_at_one=False, increasing=False,
                        positive=False, no_causal=False, symmetric=False):
    """ALiBi's biases with one typical mistake switched on (float64)."""
    i = torch.arange(T, dtype=torch.float64)
    distance = i[:, None] - i[None, :]  # (T, T)
    if symmetric:
        distance = distance.abs()
    m = _slopes(n_head, first_at_one, increasing)[:, None, None]
    bias = (m if positive else -m) * distance  # (n_head, T, T)
    if no_causal:
        return bias
    return bias.masked_fill(i[:, None] < i[None, :], -math.inf)


def _what(n_head, T) -> str:
    return f"alibi_bias(n_head={n_head}, T={T})"


def _answer(fn, n_head, T):
    got = call(fn, n_head, T, name="alibi_bias")
    return _tensor(got, _what(n_head, T), (n_head, T, T))


def _expect(fn, n_head, T, mistakes=None):
    """Against the paper's biases (a core case), or also against ``mistakes``
    ({message: keywords of mistaken_alibi_bias}) in a mistake case."""
    got = _answer(fn, n_head, T)
    expected = reference_alibi_bias(n_head, T)
    with np.errstate(invalid="ignore"):  # -inf - (-inf) in the error report
        if mistakes is None:
            expect_close(got, expected, rtol=1e-5, atol=1e-6, what=_what(n_head, T))
            return
        wrong = {told: mistaken_alibi_bias(n_head, T, **kw)
                 for told, kw in mistakes.items()}
        _verdict(got, expected, wrong, "", _what(n_head, T))


_HINT = ("Each head's score of the key at position u for the query at position t "
         "gets a penalty proportional to the distance t - u, with the head's own slope "
         "from the paper's geometric sequence (the first head has the largest slope); "
         "keys in the query's future get -inf, so that the bias is also the causal "
         "mask.")


@q.case("8 heads, T = 5", kind="core", hint=_HINT)
def _(alibi_bias):
    _expect(alibi_bias, 8, 5)


@q.case("4 heads, T = 7", kind="core", hint=_HINT)
def _(alibi_bias):
    _expect(alibi_bias, 4, 7)


@q.case("used as attn_mask of F.scaled_dot_product_attention: 2 heads, T = 6",
        kind="core",
        hint="Your biases, given as the float attn_mask of F.scaled_dot_product_"
             "attention, are ADDED to the scaled scores: the result must be causal "
             "attention with each head's linear penalty on distance.")
def _(alibi_bias):
    got = _answer(alibi_bias, 2, 6)
    q_, k, v = (_randn(s, 3, 2, 6, 4) for s in (1, 2, 3))  # (B, n_head, T, d_k)
    out = F.scaled_dot_product_attention(q_, k, v, attn_mask=got.float())
    expected = F.scaled_dot_product_attention(q_.double(), k.double(), v.double(),
                                              attn_mask=reference_alibi_bias(2, 6))
    expect_close(out, expected, rtol=1e-4, atol=1e-5,
                 what="F.scaled_dot_product_attention(q, k, v, attn_mask="
                      "alibi_bias(2, 6)) for B=3, d_k=4")


@q.case("the slopes 2^(-8/h), 2^(-16/h), ..., 2^(-8), largest first",
        hint="For h heads the paper's slopes are a geometric sequence whose first term "
             "and ratio are both 2^(-8/h): head 0 gets 2^(-8/h) (not 2^0 = 1), the "
             "last head 2^(-8); the first heads look closest.")
def _(alibi_bias):
    _expect(alibi_bias, 8, 4, mistakes={
        "the slopes start at 1 = 2^0: the sequence is shifted by one head.":
            dict(first_at_one=True),
        "the slopes are in increasing order: the first head has the smallest.":
            dict(increasing=True)})


@q.case("a penalty: the bias falls with the distance, and the future is -inf",
        hint="ALiBi subtracts the slope times the distance t - u: the further back a "
             "key, the lower its score. Above the diagonal (u > t) the bias is -inf, "
             "the causal mask; 0 or a penalty of |t - u| there would let a token see "
             "its future.")
def _(alibi_bias):
    _expect(alibi_bias, 4, 5, mistakes={
        "the bias GROWS with the distance (+slope (t - u) instead of -slope (t - u)).":
            dict(positive=True),
        "the future keys (u > t) are not -inf: the bias is not causal.":
            dict(no_causal=True),
        "the future keys get -slope |t - u| instead of -inf: the bias is not causal.":
            dict(symmetric=True, no_causal=True)})


@q.case("a float32 tensor (n_head, T, T), zero on the diagonal", kind="property",
        hint="Return a float32 tensor: a token's own key is at distance 0, so the "
             "diagonal is 0 in every head.")
def _(alibi_bias):
    got = _answer(alibi_bias, 2, 3)
    if got.dtype != torch.float32:
        raise CheckFailure(f"{_what(2, 3)} returned a {got.dtype} tensor; expected "
                           "float32, the dtype of the scores it is added to.")
    diagonal = torch.diagonal(got.double(), dim1=-2, dim2=-1)
    if not torch.equal(diagonal, torch.zeros_like(diagonal)):
        raise CheckFailure(f"the diagonal of {_what(2, 3)} is not 0: a token's own key "
                           "is at distance 0.")
