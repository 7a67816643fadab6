"""Checks of 05.rope_half_layout: Rotary embeddings, from the paper's pair layout to
the rotate-half layout."""
from __future__ import annotations

import torch

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _copies, _gen, _randn, _tensor


q = question("05.rope_half_layout",
             "Rotary embeddings: from the paper's pair layout to rotate-half",
             answers=["rope_half_layout"], timeout=5)

BASE = 10000.0


def _angles(positions, d_k):
    """(T, d_k/2) float64: position times theta_i = BASE^(-2i/d_k)."""
    theta = BASE ** (-torch.arange(0, d_k, 2, dtype=torch.float64) / d_k)
    return positions.double()[:, None] * theta


def rope_pairs(x, positions):
    """RoPE in the paper's layout: (x[..., 2i], x[..., 2i + 1]) turned by the angle
    position * theta_i, as complex numbers (Su et al. 2021). x (..., T, d_k)."""
    d_k = x.shape[-1]
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d_k // 2, 2)
                              .contiguous())  # (..., T, d_k/2)
    a = _angles(positions, d_k)
    return torch.view_as_real(z * torch.polar(torch.ones_like(a), a)).flatten(-2)


def rope_half(x, positions):
    """RoPE in the rotate-half layout of GPT-NeoX and Hugging Face's Llama:
    (x[..., i], x[..., i + d_k/2]) turned by the same angle."""
    d_k = x.shape[-1]
    a = _angles(positions, d_k)
    cos, sin = torch.cat([a.cos(), a.cos()], -1), torch.cat([a.sin(), a.sin()], -1)
    x = x.double()
    rotated_half = torch.cat([-x[..., d_k // 2:], x[..., : d_k // 2]], -1)
    return x * cos + rotated_half * sin  # (..., T, d_k)


def _scores(W_q, W_k, x, positions, n_head, rope):
    """Per-head scores (n_head, T, T) of the queries and keys x @ W^T, rotated by
    ``rope`` at ``positions``."""
    T = x.shape[0]
    q_, k = ((x.double() @ W.double().T).view(T, n_head, -1).transpose(0, 1)
             for W in (W_q, W_k))  # (n_head, T, d_k)
    return rope(q_, positions) @ rope(k, positions).transpose(-2, -1)


def reference_rope_half_layout(W, n_head):
    """The rows of each head reordered: new row i is old row 2i, new row i + d_k/2 is
    old row 2i + 1 (the permutation of Hugging Face's Llama conversion script)."""
    out, C_in = W.shape
    return W.reshape(n_head, out // n_head // 2, 2, C_in).transpose(1, 2).reshape(
        out, C_in)


def mistaken_rope_half_layout(W, n_head, one_head=False, inverse=False,
                              columns=False, unchanged=False):
    """The rearrangement with one typical mistake switched on."""
    if unchanged:
        return W.clone()
    if columns:
        return reference_rope_half_layout(W.T, 1).T
    if one_head:
        return reference_rope_half_layout(W, 1)
    if inverse:  # rotate-half -> pairs
        out, C_in = W.shape
        return W.reshape(n_head, 2, out // n_head // 2, C_in).transpose(1, 2).reshape(
            out, C_in)
    return reference_rope_half_layout(W, n_head)


def _what(W, n_head) -> str:
    return f"rope_half_layout(W {tuple(W.shape)}, n_head={n_head})"


def _setting(seed, n_head, d_k, C_in, T=5):
    """Seeded W_q, W_k (n_head d_k, C_in), inputs x (T, C_in) and positions (T,)."""
    W_q, W_k = (_randn(seed + i, n_head * d_k, C_in) for i in (0, 1))
    x = _randn(seed + 2, T, C_in)
    positions = torch.randint(0, 60, (T,), generator=_gen(seed + 3))
    return W_q, W_k, x, positions


def _answers(fn, W_q, W_k, n_head):
    return tuple(_tensor(call(fn, *_copies(W), n_head, check_mutation=False,
                              name="rope_half_layout"), _what(W, n_head),
                         tuple(W.shape)) for W in (W_q, W_k))


def _expect(fn, seed, n_head, d_k, C_in):
    """The scores with the rotate-half RoPE on the answer's rows against those with
    the paper's RoPE on the original rows."""
    W_q, W_k, x, positions = _setting(seed, n_head, d_k, C_in)
    new_q, new_k = _answers(fn, W_q, W_k, n_head)
    expect_close(_scores(new_q, new_k, x, positions, n_head, rope_half),
                 _scores(W_q, W_k, x, positions, n_head, rope_pairs), rtol=1e-4,
                 atol=1e-4,
                 what=f"the attention scores (n_head, T, T) with the rotate-half RoPE "
                      f"on the rows of {_what(W_q, n_head)} (for W_q and W_k), "
                      f"compared with the paper's RoPE on the original rows, at "
                      f"positions {positions.tolist()}")


_HINT = ("Both layouts turn pair i by the same angle; they only store its two "
         "coordinates in different places of each head. Move the rows of W so that "
         "the coordinates the paper pairs land where rotate-half pairs them, head by "
         "head: then every rotated query and key is the same vector with its "
         "coordinates reordered, and the dot products do not change.")


@q.case("2 heads of d_k = 8, C_in = 12", kind="core", hint=_HINT)
def _(rope_half_layout):
    _expect(rope_half_layout, 0, 2, 8, 12)


@q.case("4 heads of d_k = 4, C_in = 16", kind="core", hint=_HINT)
def _(rope_half_layout):
    _expect(rope_half_layout, 10, 4, 4, 16)


@q.case("1 head of d_k = 16, C_in = 6", kind="core", hint=_HINT)
def _(rope_half_layout):
    _expect(rope_half_layout, 20, 1, 16, 6)


def _mistake(fn, seed, n_head, d_k, C_in, mistakes):
    """Right (the scores kept), one of ``mistakes`` (hint shown), or a plain
    mismatch."""
    W_q, W_k, x, positions = _setting(seed, n_head, d_k, C_in)
    new_q, new_k = _answers(fn, W_q, W_k, n_head)
    scores = _scores(new_q, new_k, x, positions, n_head, rope_half)
    expected = _scores(W_q, W_k, x, positions, n_head, rope_pairs)
    if torch.allclose(scores, expected, rtol=1e-4, atol=1e-4):
        return
    for told, keywords in mistakes.items():
        wrong = mistaken_rope_half_layout(W_q, n_head, **keywords)
        if torch.allclose(new_q.double(), wrong.double(), atol=1e-6):
            raise CheckFailure(f"{_what(W_q, n_head)}: {told}")
    raise CheckFailure(f"{_what(W_q, n_head)}: the scores with the rotate-half RoPE "
                       "on your rows differ from those with the paper's RoPE on the "
                       "original rows.", basic=True)


@q.case("the two layouts differ",
        hint="The paper pairs neighbouring coordinates (2i, 2i + 1) of a head, "
             "rotate-half pairs i with i + d_k/2: the same rows in the other layout "
             "rotate other pairs, by other angles, and the scores change.")
def _(rope_half_layout):
    _mistake(rope_half_layout, 30, 2, 8, 4, {
        "returned the rows unchanged: in the rotate-half layout they are paired "
        "differently.": dict(unchanged=True)})


@q.case("head by head, rows not columns, in the right direction",
        hint="Each head's d_k rows are reordered on their own (the heads stay where "
             "they are); the rows of W are the output coordinates, the columns the "
             "input features, which no rotation touches; and the new layout is "
             "rotate-half, the old one the paper's, not the other way round.")
def _(rope_half_layout):
    _mistake(rope_half_layout, 40, 2, 8, 6, {
        "the rows of ALL the heads were reordered as one block of n_head d_k rows, "
        "not head by head.": dict(one_head=True),
        "the columns were reordered instead of the rows.": dict(columns=True),
        "the rows were reordered from rotate-half to the paper's layout, the inverse "
        "of the rearrangement asked for.": dict(inverse=True)})


@q.case("a tensor of W's shape and dtype; W left unchanged", kind="property",
        hint="Return a new tensor of W's shape and dtype (a reshape, a transpose and "
             "a copy), without writing into W.")
def _(rope_half_layout):
    W = _randn(50, 8, 3)
    got = call(rope_half_layout, W, 2, name="rope_half_layout")
    got = _tensor(got, _what(W, 2), (8, 3))
    if got.dtype != W.dtype:
        raise CheckFailure(f"{_what(W, 2)} returned a {got.dtype} tensor; W is "
                           f"{W.dtype}. ({_short(got)})")
