"""Checks of 05.causal_padding_mask: The causal mask of a padded batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _copies, _randn, _tensor, _verdict


q = question("05.causal_padding_mask", "The causal mask of a padded batch",
             answers=["causal_padding_mask"], timeout=5)


def _real(lengths, T, padding_side):
    """(B, T) bool: True at the real positions of each sequence."""
    t = torch.arange(T)[None, :]  # (1, T)
    L = lengths[:, None]  # (B, 1)
    return t < L if padding_side == "right" else t >= T - L


def reference_causal_padding_mask(lengths, T, padding_side="right"):
    """(B, T, T) bool, True where query i may attend to key j: both are real positions
    and j <= i (F.scaled_dot_product_attention's convention: True takes part)."""
    real = _real(lengths, T, padding_side)  # (B, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T): j <= i
    return causal[None] & real[:, :, None] & real[:, None, :]


def mistaken_causal_padding_mask(lengths, T, padding_side="right", future=False,
                                 strict=False, inverted=False, keys_only=False,
                                 queries_only=False, no_padding=False, side=None):
    """The mask with one typical mistake switched on."""
    real = _real(lengths, T, side or padding_side)  # (B, T)
    ones = torch.ones(T, T, dtype=torch.bool)
    causal = ones.triu() if future else ones.tril(-1) if strict else ones.tril()
    mask = causal[None].expand(len(lengths), T, T).clone()
    if not (no_padding or keys_only):
        mask &= real[:, :, None]
    if not (no_padding or queries_only):
        mask &= real[:, None, :]
    return ~mask if inverted else mask


def _what(lengths, T, padding_side) -> str:
    return (f"causal_padding_mask({_short(lengths)}, T={T}, "
            f"padding_side={padding_side!r})")


def _answer(fn, lengths, T, padding_side):
    got = call(fn, *_copies(lengths), T, padding_side, check_mutation=False,
               name="causal_padding_mask")
    return _tensor(got, _what(lengths, T, padding_side), (len(lengths), T, T))


def _expect(fn, lengths, T, padding_side, mistakes=None):
    """The mask against the reference (a core case), or also against ``mistakes``
    ({message: keywords of mistaken_causal_padding_mask}) in a mistake case."""
    lengths = torch.tensor(lengths)
    got = _answer(fn, lengths, T, padding_side)
    expected = reference_causal_padding_mask(lengths, T, padding_side)
    what = _what(lengths, T, padding_side)
    if mistakes is None:
        expect_close(got, expected, what=what)
        return
    wrong = {told: mistaken_causal_padding_mask(lengths, T, padding_side, **kw)
             for told, kw in mistakes.items()}
    _verdict(got, expected, wrong, "", what)


_HINT = ("Query position i may attend to key position j when both are real tokens of "
         "its sequence and j is not in i's future; everything else is False. Which "
         "positions are real depends on the side the padding is on.")


@q.case("lengths 5, 3, 1; T = 5; padding on the right", kind="core", hint=_HINT)
def _(causal_padding_mask):
    _expect(causal_padding_mask, [5, 3, 1], 5, "right")


@q.case("lengths 2, 6, 4, 0; T = 6; padding on the left", kind="core", hint=_HINT)
def _(causal_padding_mask):
    _expect(causal_padding_mask, [2, 6, 4, 0], 6, "left")


@q.case("used as attn_mask of F.scaled_dot_product_attention: each sequence as if "
        "alone (left padding)", kind="core",
        hint="With your mask, attention over the padded batch must give, at the real "
             "positions of each sequence, what causal attention gives on that sequence "
             "alone, and zeros at the padded positions. The mask must be a bool "
             "tensor: a float mask is ADDED to the scores.")
def _(causal_padding_mask):
    lengths, T, d = torch.tensor([4, 7, 2]), 7, 5
    got = _answer(causal_padding_mask, lengths, T, "left")
    q_, k, v = (_randn(s, 3, T, d) for s in (1, 2, 3))  # each (B, T, d)
    out = F.scaled_dot_product_attention(q_, k, v, attn_mask=got)  # (B, T, d)
    expected = torch.zeros(3, T, d)
    for b, L in enumerate(lengths.tolist()):
        alone = F.scaled_dot_product_attention(q_[b:b + 1, T - L:], k[b:b + 1, T - L:],
                                               v[b:b + 1, T - L:], is_causal=True)
        expected[b, T - L:] = alone[0]  # (L, d)
    expect_close(out, expected, rtol=1e-5, atol=1e-6,
                 what=f"F.scaled_dot_product_attention(q, k, v, attn_mask="
                      f"{_what(lengths, T, 'left')}) for B=3, T={T}, d={d}")


@q.case("True means 'may attend', and a position sees itself and its past",
        hint="F.scaled_dot_product_attention keeps the (query, key) pairs where a bool "
             "mask is True (nn.MultiheadAttention's attn_mask means the opposite). A "
             "token sees itself and the tokens before it: the diagonal is in, the "
             "future is out.")
def _(causal_padding_mask):
    _expect(causal_padding_mask, [4, 2, 3], 4, "right", {
        "True marks the pairs that are HIDDEN, the opposite of "
        "F.scaled_dot_product_attention's convention.": dict(inverted=True),
        "query i sees the FUTURE keys j >= i instead of the past ones.":
            dict(future=True),
        "query i does not see itself: the diagonal is left out.": dict(strict=True)})


@q.case("padded keys are hidden, not only padded queries",
        hint="With padding on the left, a real token's past includes the padding in "
             "front of it: the causal mask alone lets it attend there. Hide the padded "
             "keys as well as the padded queries' rows.")
def _(causal_padding_mask):
    _expect(causal_padding_mask, [3, 5, 1], 5, "left", {
        "a real query attends to the padding before it: the padded KEYS are not "
        "hidden.": dict(queries_only=True),
        "no padding is hidden at all: this is the causal mask alone.":
            dict(no_padding=True)})


@q.case("padded queries' rows are all False",
        hint="A padded position asks nothing: its whole row is False (attention then "
             "returns zeros there), not only the columns of the padded keys.")
def _(causal_padding_mask):
    _expect(causal_padding_mask, [2, 4, 3], 4, "right", {
        "the rows of the padded QUERIES still allow the real keys: only the padded "
        "keys are hidden.": dict(keys_only=True),
        "no padding is hidden at all: this is the causal mask alone.":
            dict(no_padding=True)})


@q.case("padding_side decides which positions are padding",
        hint="'right': the real tokens are the first lengths[b] positions; 'left': the "
             "last lengths[b] positions (batched generation pads prompts on the left, "
             "so that every prompt ends at the last position).")
def _(causal_padding_mask):
    _expect(causal_padding_mask, [2, 4, 1], 4, "left", {
        "the padding was taken to be on the right although padding_side='left'.":
            dict(side="right")})


@q.case("a bool tensor (B, T, T); lengths left unchanged", kind="property",
        hint="Return a torch.bool tensor: F.scaled_dot_product_attention ADDS a float "
             "mask to the scores instead of masking with it.")
def _(causal_padding_mask):
    lengths = torch.tensor([2, 1])
    got = call(causal_padding_mask, lengths, 3, "right", name="causal_padding_mask")
    got = _tensor(got, _what(lengths, 3, "right"), (2, 3, 3))
    if got.dtype != torch.bool:
        raise CheckFailure(f"{_what(lengths, 3, 'right')} returned a {got.dtype} "
                           "tensor; expected torch.bool.")
