"""Checks of 05.padded_attention: Attention over a padded batch, from scratch."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, _short, expect_close
from ...registry import question
from ._common import (LIBRARY_ATTENTION, _agrees, _copies, _not_judged, _randn, _tensor,
                      _verdict, call_from_scratch)


q = question("05.padded_attention", "Attention over a padded batch, from scratch",
             answers=["padded_attention"], timeout=5)


def _pairs(lengths, T):
    """(B, T, T) bool: True where query i and key j are both real (right padding)."""
    real = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    return real[:, :, None] & real[:, None, :]


def reference_padded_attention(q_, k, v, lengths):
    """F.scaled_dot_product_attention with the mask of the real (query, key) pairs:
    its rows without any real pair (the padded queries) come back as zeros."""
    mask = _pairs(lengths, q_.shape[1])  # (B, T, T)
    return F.scaled_dot_product_attention(q_, k, v, attn_mask=mask)


def mistaken_padded_attention(q_, k, v, lengths, scale="sqrt", fill="-inf",
                              after=False, keys=True, queries=True, dim=-1):
    """Attention with one typical mistake switched on (float64 inside)."""
    B, T, d = q_.shape
    q_, k, v = q_.double(), k.double(), v.double()
    divisor = {"sqrt": math.sqrt(d), "none": 1.0, "d": float(d)}[scale]
    scores = q_ @ k.transpose(1, 2) / divisor  # (B, T, T)
    real = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    hidden = ~real[:, None, :] if keys else torch.zeros(B, 1, T, dtype=torch.bool)
    if after:  # softmax first, then the masked weights set to 0 (no renormalisation)
        weights = torch.softmax(scores, dim=dim).masked_fill(hidden, 0.0)
    else:
        value = {"-inf": -math.inf, "0": 0.0, "-1e9": -1e9}[fill]
        weights = torch.softmax(scores.masked_fill(hidden, value), dim=dim)
    out = weights @ v  # (B, T, d)
    if queries:
        out = torch.where(real[:, :, None], out, torch.zeros_like(out))
    return out


def _inputs(seed, B, T, d, scale=1.0):
    return tuple(_randn(seed + i, B, T, d, scale=scale) for i in range(3))


def _what(q_, lengths) -> str:
    B, T, d = q_.shape
    return (f"padded_attention(q, k, v, lengths={_short(lengths)}) for B={B}, T={T}, "
            f"d={d}")


def _answer(fn, q_, k, v, lengths, check_mutation=False):
    args = (q_, k, v, lengths) if check_mutation else _copies(q_, k, v, lengths)
    got = call_from_scratch(fn, *args, forbid=LIBRARY_ATTENTION,
                            name="padded_attention", check_mutation=check_mutation)
    return _tensor(got, _what(q_, lengths), tuple(q_.shape))


def _expect(fn, seed, lengths, T, d, scale=1.0, mistakes=None):
    """Against SDPA (a core case), or also against ``mistakes`` ({message: keywords of
    mistaken_padded_attention}) in a mistake case."""
    lengths = torch.tensor(lengths)
    q_, k, v = _inputs(seed, len(lengths), T, d, scale)
    got = _answer(fn, q_, k, v, lengths)
    expected = reference_padded_attention(q_, k, v, lengths)
    what = _what(q_, lengths)
    if mistakes is None:
        expect_close(got, expected, rtol=1e-5, atol=1e-6, what=what)
        return
    wrong = {told: mistaken_padded_attention(q_, k, v, lengths, **kw)
             for told, kw in mistakes.items()}
    _verdict(got, expected, wrong, "", what)


_HINT = ("Scaled dot-product attention in which only real tokens take part: each real "
         "query's softmax runs over the real keys of its own sequence alone; a padded "
         "query has no real pair and its output row is zero (as "
         "F.scaled_dot_product_attention returns for a fully masked row), never NaN.")


@q.case("lengths 5, 3, 1; T = 5, d = 4", kind="core", hint=_HINT)
def _(padded_attention):
    _expect(padded_attention, 0, [5, 3, 1], 5, 4)


@q.case("lengths 7, 7 (no padding); T = 7, d = 8", kind="core", hint=_HINT)
def _(padded_attention):
    _expect(padded_attention, 10, [7, 7], 7, 8)


@q.case("lengths 6, 2, 4, 1; T = 6, d = 16, large scores", kind="core", hint=_HINT)
def _(padded_attention):
    _expect(padded_attention, 20, [6, 2, 4, 1], 6, 16, scale=3.0)


@q.case("the scores are divided by sqrt(d_k)",
        hint="Vaswani et al. scale the dot products by 1/sqrt(d_k), d_k the width of a "
             "query: without it the scores grow like sqrt(d_k) and the softmax "
             "saturates. Not 1/d_k either.")
def _(padded_attention):
    _expect(padded_attention, 30, [4, 4, 2], 4, 9, mistakes={
        "the scores were not scaled by 1/sqrt(d_k).": dict(scale="none"),
        "the scores were divided by d_k, not by its square root.": dict(scale="d")})


@q.case("the padded keys are masked before the softmax, with -inf",
        hint="A hidden key must get weight exactly 0 AND the real keys' weights must "
             "still sum to 1: set its score to -inf before the softmax. Zeroing the "
             "weights after the softmax leaves rows that sum to less than 1; a score "
             "of 0 is an ordinary score that still gets weight.")
def _(padded_attention):
    _expect(padded_attention, 40, [5, 2, 3], 5, 4, mistakes={
        "the padded keys' weights were set to 0 AFTER the softmax: the rows no longer "
        "sum to 1.": dict(after=True),
        "the padded keys' scores were set to 0, not -inf: they still get weight.":
            dict(fill="0"),
        "the padded keys take part in the softmax: only the padded queries' rows were "
        "handled.": dict(keys=False)})


@q.case("the softmax runs over the keys",
        hint="Each query's weights over the keys sum to 1: the softmax runs along the "
             "last dimension of the (B, T_query, T_key) scores.")
def _(padded_attention):
    _expect(padded_attention, 50, [4, 3], 4, 5, mistakes={
        "the softmax ran over the queries (dimension 1), not over the keys.":
            dict(dim=1)})


@q.case("padded queries give zeros, not NaN and not an average",
        hint="A padded query's row has no real key: a softmax of all -inf is NaN, and "
             "of all -1e9 an average of the padding. Set those rows to zero (as "
             "F.scaled_dot_product_attention does for a fully masked row).")
def _(padded_attention):
    control = torch.tensor([3, 3])
    q_, k, v = _inputs(60, 2, 3, 4)
    if not _agrees(lambda: expect_close(_answer(padded_attention, q_, k, v, control),
                                        reference_padded_attention(q_, k, v, control))):
        raise _not_judged()
    lengths = torch.tensor([4, 2, 3])
    q_, k, v = _inputs(61, 3, 4, 4)
    got = _answer(padded_attention, q_, k, v, lengths)
    expected = reference_padded_attention(q_, k, v, lengths)
    what = _what(q_, lengths)
    real = torch.arange(4)[None, :] < lengths[:, None]  # (B, T)
    if _agrees(lambda: expect_close(got[real], expected[real])):
        if torch.isnan(got[~real]).any():
            raise CheckFailure(f"{what}: the rows of the padded queries are NaN (a "
                               "softmax over scores that are all -inf).")
        uniform = v.double().mean(1, keepdim=True).expand(v.shape)  # (B, T, d)
        _verdict(got, expected, {
            "the rows of the padded queries are plain averages of all the values (a "
            "softmax of scores that are all the same large negative number), not "
            "zeros.": torch.where(real[:, :, None], expected.double(), uniform),
            "the rows of the padded queries are not zero: they attend to the real "
            "keys.": mistaken_padded_attention(q_, k, v, lengths, queries=False)},
            "", what)
    else:
        _verdict(got, expected, {}, "", what)


@q.case("a float32 tensor (B, T, d); inputs left unchanged", kind="property",
        hint="Return a new float32 tensor of q's shape; build the mask and the scores "
             "as new tensors instead of writing into q, k, v or lengths.")
def _(padded_attention):
    lengths = torch.tensor([2, 1])
    q_, k, v = _inputs(70, 2, 3, 4)
    got = _answer(padded_attention, q_, k, v, lengths, check_mutation=True)
    if got.dtype != torch.float32:
        raise CheckFailure(f"{_what(q_, lengths)} returned a {got.dtype} tensor; "
                           "expected float32, the dtype of q, k and v.")
