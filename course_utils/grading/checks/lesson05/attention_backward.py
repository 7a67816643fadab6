"""Checks of 05.attention_backward: The backward pass of softmax attention."""
from __future__ import annotations

import numpy as np
import torch

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _basic, _copies, _matches, _parts


q = question("05.attention_backward", "The backward pass of softmax attention",
             answers=["attention_backward"], timeout=10)

NAMES = ("dQ", "dK", "dV")


def _inputs(seed, B, T, d_k, d_v, scale=1.0):
    """Seeded float64 Q, K (B, T, d_k), V and dO (B, T, d_v)."""
    rng = np.random.default_rng(seed)
    Q, K = (rng.standard_normal((B, T, d_k)) * scale for _ in range(2))
    V, dO = (rng.standard_normal((B, T, d_v)) for _ in range(2))
    return Q, K, V, dO


def reference_attention_backward(Q, K, V, dO, causal):
    """(dQ, dK, dV) by torch.autograd in float64 through softmax(Q K^T / sqrt(d_k)
    + mask) V, with dO the gradient of the loss with respect to the output."""
    q_, k, v = (torch.tensor(a, requires_grad=True) for a in (Q, K, V))
    T = Q.shape[1]
    scores = q_ @ k.transpose(1, 2) / np.sqrt(Q.shape[-1])  # (B, T, T)
    if causal:
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, -torch.inf)
    out = torch.softmax(scores, dim=-1) @ v  # (B, T, d_v)
    out.backward(torch.tensor(dO))
    return tuple(t.grad.numpy() for t in (q_, k, v))


def mistaken_attention_backward(Q, K, V, dO, causal, dV_P=False, no_centering=False,
                                no_scale=False, dK_untransposed=False):
    """The backward in NumPy with one typical mistake switched on."""
    T, d_k = Q.shape[1], Q.shape[2]
    S = Q @ K.transpose(0, 2, 1) / np.sqrt(d_k)  # (B, T, T)
    if causal:
        S = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, S)
    P = np.exp(S - S.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)  # (B, T, T)
    dV = (P if dV_P else P.transpose(0, 2, 1)) @ dO  # (B, T, d_v)
    dP = dO @ V.transpose(0, 2, 1)  # (B, T, T)
    dS = P * dP if no_centering else P * (dP - (P * dP).sum(-1, keepdims=True))
    c = 1.0 if no_scale else 1.0 / np.sqrt(d_k)
    dQ = dS @ K * c  # (B, T, d_k)
    dK = (dS if dK_untransposed else dS.transpose(0, 2, 1)) @ Q * c
    return dQ, dK, dV


def _what(Q, V, causal) -> str:
    B, T, d_k = Q.shape
    return (f"attention_backward(Q, K, V, dO, causal={causal}) for B={B}, T={T}, "
            f"d_k={d_k}, d_v={V.shape[2]}")


def _answer(fn, Q, K, V, dO, causal):
    got = call(fn, *_copies(Q, K, V, dO), causal, check_mutation=False,
               name="attention_backward")
    grads = _parts(got, NAMES, "attention_backward")
    for name, g, like in zip(NAMES, grads, (Q, K, V)):
        if g is None or not hasattr(g, "shape"):
            raise _basic(f"{name} of {_what(Q, V, causal)} is {_short(g)}; expected "
                         f"an array of shape {like.shape}.", problem="type")
    return grads


def _expect(fn, seed, B, T, d_k, d_v, causal, scale=1.0):
    Q, K, V, dO = _inputs(seed, B, T, d_k, d_v, scale)
    grads = _answer(fn, Q, K, V, dO, causal)
    for name, got, expected in zip(NAMES, grads, reference_attention_backward(
            Q, K, V, dO, causal)):
        expect_close(got, expected, rtol=1e-6, atol=1e-9,
                     what=f"{name} of {_what(Q, V, causal)}")


_HINT = ("Go back through the forward one product at a time: the output is A V, A "
         "the softmax of each row of the masked scores, the scores Q K^T times "
         "1/sqrt(d_k). Each product's gradient pairs the upstream gradient with the "
         "other factor, transposed; the softmax's Jacobian couples the entries of a "
         "row.")


@q.case("B = 2, T = 4, d_k = 3, d_v = 5, no mask, against autograd", kind="core",
        hint=_HINT)
def _(attention_backward):
    _expect(attention_backward, 0, 2, 4, 3, 5, causal=False)


@q.case("B = 1, T = 6, d_k = d_v = 8, causal, against autograd", kind="core",
        hint=_HINT)
def _(attention_backward):
    _expect(attention_backward, 1, 1, 6, 8, 8, causal=True)


@q.case("B = 3, T = 5, d_k = 4, d_v = 2, causal, large scores", kind="core",
        hint=_HINT)
def _(attention_backward):
    _expect(attention_backward, 2, 3, 5, 4, 2, causal=True, scale=2.5)


def _mistake(fn, seed, causal, names, mistakes, shape=(2, 5, 4, 3)):
    """Right on ``names``, else one of ``mistakes`` ({message: keywords of
    mistaken_attention_backward}, hint shown), else a plain mismatch (no hint)."""
    Q, K, V, dO = _inputs(seed, *shape)
    what = _what(Q, V, causal)
    got = dict(zip(NAMES, _answer(fn, Q, K, V, dO, causal)))
    ref = dict(zip(NAMES, reference_attention_backward(Q, K, V, dO, causal)))
    bad = [k for k in names if not _matches(got[k], ref[k], 1e-6, 1e-9)]
    if not bad:
        return
    for told, keywords in mistakes.items():
        wrong = dict(zip(NAMES, mistaken_attention_backward(Q, K, V, dO, causal,
                                                            **keywords)))
        if all(_matches(got[k], wrong[k], 1e-6, 1e-9) for k in bad):
            raise CheckFailure(f"{what}: {', '.join(bad)} {told}")
    try:
        expect_close(got[bad[0]], ref[bad[0]], rtol=1e-6, atol=1e-9,
                     what=f"{bad[0]} of {what}")
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=True, call=failure.call,
                           problem=failure.problem) from None


@q.case("dV pairs the attention weights, transposed, with dO",
        hint="The value at position u is used by every query t, with weight A[t, u]: "
             "its gradient sums dO[t] over the queries, weighted by the column u of "
             "A. A square A never warns you that it is not transposed.")
def _(attention_backward):
    _mistake(attention_backward, 3, True, ("dV",), {
        "is A dO, not A^T dO: the attention weights are not transposed.":
            dict(dV_P=True)})


@q.case("the softmax's backward subtracts each row's weighted mean",
        hint="Each weight of a row depends on every score of the row (they sum to "
             "1): the softmax's backward subtracts, in each row, the A-weighted mean "
             "of dA from dA before multiplying by A; A * dA alone would be the "
             "backward of an elementwise exp.")
def _(attention_backward):
    _mistake(attention_backward, 4, False, ("dQ", "dK"), {
        "ignore that the weights of a row sum to 1: the softmax's backward is missing "
        "the term that subtracts the row's weighted mean of dA.":
            dict(no_centering=True)})


@q.case("the 1/sqrt(d_k) of the scores reaches dQ and dK",
        hint="The scores are (Q K^T) / sqrt(d_k), so the chain rule multiplies the "
             "gradients of Q and K by the same 1/sqrt(d_k).")
def _(attention_backward):
    _mistake(attention_backward, 5, True, ("dQ", "dK"), {
        "are sqrt(d_k) times too large: the 1/sqrt(d_k) of the scores is missing "
        "from the backward.": dict(no_scale=True)})


@q.case("dK pairs dS, transposed, with Q",
        hint="The key at position u meets every query t in the score S[t, u]: dK "
             "sums over the queries, a product of the TRANSPOSE of dS with Q (the "
             "mirror image of dQ).")
def _(attention_backward):
    _mistake(attention_backward, 6, False, ("dK",), {
        "uses dS where its transpose belongs (dS Q instead of dS^T Q).":
            dict(dK_untransposed=True)}, shape=(2, 4, 3, 3))


@q.case("masked pairs get no gradient",
        hint="With causal=True the future scores are -inf and their weights exactly "
             "0: they must not reach dQ or dK (apply the mask in your forward, before "
             "the softmax).")
def _(attention_backward):
    Q, K, V, dO = _inputs(7, 1, 4, 3, 2)
    got = dict(zip(NAMES, _answer(attention_backward, Q, K, V, dO, True)))
    ref = dict(zip(NAMES, reference_attention_backward(Q, K, V, dO, True)))
    unmasked = dict(zip(NAMES, reference_attention_backward(Q, K, V, dO, False)))
    if all(_matches(got[k], ref[k], 1e-6, 1e-9) for k in NAMES):
        return
    if all(_matches(got[k], unmasked[k], 1e-6, 1e-9) for k in NAMES):
        raise CheckFailure(f"{_what(Q, V, True)}: the gradients are those of attention "
                           "WITHOUT the causal mask.")
    raise _basic(f"{_what(Q, V, True)} differs from autograd (not only by the mask).")


@q.case("arrays of the inputs' shapes; inputs left unchanged", kind="property",
        hint="Return three new arrays, each of the shape of its variable (dQ like Q, "
             "dK like K, dV like V), without writing into Q, K, V or dO.")
def _(attention_backward):
    Q, K, V, dO = _inputs(8, 1, 3, 2, 4)
    got = call(attention_backward, Q, K, V, dO, False, name="attention_backward")
    grads = _parts(got, NAMES, "attention_backward")
    for name, g, like in zip(NAMES, grads, (Q, K, V)):
        if tuple(getattr(g, "shape", ())) != like.shape:
            raise CheckFailure(f"{name} is {_short(g)}; expected shape {like.shape}.",
                               basic=True, problem="shape")
