"""Checks of 05.kv_cache_step: Generation with a key-value cache."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _agrees, _basic, _gen, _parts, _plain_mismatch


q = question("05.kv_cache_step", "Generation with a key-value cache",
             answers=["kv_cache_step"], timeout=10)


class TinyAttentionLM(nn.Module):
    """Token and position embeddings, one causal nn.MultiheadAttention with a residual
    connection, a linear head: ids (B, T) -> logits (B, T, V). The exercise notebook
    defines the same class."""

    def __init__(self, vocab_size, d_model, n_head, block_size):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(block_size, d_model)
        self.attn = nn.MultiheadAttention(d_model, n_head, batch_first=True)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, idx):
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))  # (B, T, C)
        future = torch.ones(T, T, dtype=torch.bool, device=idx.device).triu(1)
        # nn.MultiheadAttention's bool mask: True marks the pairs NOT attended
        y, _ = self.attn(x, x, x, attn_mask=future, need_weights=False)  # (B, T, C)
        return self.head(x + y)  # (B, T, V)


def _model(seed, V=13, C=16, n_head=4, block_size=24):
    """A seeded TinyAttentionLM with biases made large enough to matter."""
    torch.manual_seed(seed)
    model = TinyAttentionLM(V, C, n_head, block_size).eval()
    with torch.no_grad():
        model.attn.in_proj_bias.normal_(0.0, 0.5)
        model.attn.out_proj.bias.normal_(0.0, 0.5)
    return model


def reference_kv_cache_step(model, idx, cache, pos_shift=0, restart=False,
                            top_left=False, cache_only=False, scale=True,
                            residual=True, keep_cache=False):
    """(logits (B, S, V), (k, v) (B, n_head, t + S, d_k)) for S new ids at positions
    t .. t + S - 1, t the cache's length; the keywords switch on typical mistakes."""
    B, S = idx.shape
    t = 0 if cache is None else cache[0].shape[2]
    C, n_head = model.tok.embedding_dim, model.attn.num_heads
    start = 0 if restart else t + pos_shift
    with torch.no_grad():
        x = model.tok(idx) + model.pos(torch.arange(start, start + S))  # (B, S, C)
        qkv = F.linear(x, model.attn.in_proj_weight, model.attn.in_proj_bias)
        q_, k, v = (u.view(B, S, n_head, -1).transpose(1, 2)
                    for u in qkv.split(C, dim=-1))  # each (B, n_head, S, d_k)
        if cache is not None:
            k_all, v_all = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        else:
            k_all, v_all = k, v  # (B, n_head, t + S, d_k)
        keys, values = (cache if cache_only else (k_all, v_all))
        n_keys = keys.shape[2]
        if top_left:  # is_causal=True: query i sees keys 0 .. i
            allowed = torch.ones(S, n_keys, dtype=torch.bool).tril()
        else:  # query i, at position t + i, sees keys 0 .. t + i
            allowed = torch.arange(n_keys)[None, :] <= (t + torch.arange(S))[:, None]
        y = F.scaled_dot_product_attention(q_, keys, values, attn_mask=allowed,
                                           scale=None if scale else 1.0)
        y = model.attn.out_proj(y.transpose(1, 2).reshape(B, S, C))  # (B, S, C)
        logits = model.head(x + y if residual else y)  # (B, S, V)
    return logits, (cache if keep_cache else (k_all, v_all))


def _what(idx, cache) -> str:
    t = 0 if cache is None else cache[0].shape[2]
    held = "None" if cache is None else f"(k, v) of {t} position{'s' * (t != 1)}"
    return f"kv_cache_step(model, idx {tuple(idx.shape)}, cache={held})"


def _step(fn, model, idx, cache):
    """The answer's (logits, cache) for one call, with the cache's shapes checked."""
    what = _what(idx, cache)
    shown = None if cache is None else tuple(c.clone() for c in cache)
    got = call(fn, model, idx.clone(), shown, check_mutation=False,
               name="kv_cache_step")
    logits, new_cache = _parts(got, ("logits", "cache"), "kv_cache_step")
    B, S = idx.shape
    V, C = model.head.out_features, model.tok.embedding_dim
    n_head = model.attn.num_heads
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (B, S, V):
        raise _basic(f"the logits of {what} are {_short(logits)}; expected a "
                     f"({B}, {S}, {V}) tensor, one row per new position.",
                     problem="shape")
    t = 0 if cache is None else cache[0].shape[2]
    shape = (B, n_head, t + S, C // n_head)
    if (not isinstance(new_cache, (tuple, list)) or len(new_cache) != 2
            or not all(isinstance(c, torch.Tensor) for c in new_cache)):
        raise _basic(f"the cache returned by {what} is {_short(new_cache)}; expected "
                     f"a tuple (k, v) of two tensors {shape}.", problem="type")
    return logits, tuple(new_cache), shape


def _run(fn, model, ids, chunks):
    """Feed ``ids`` (B, T) in chunks of the given sizes, the answer's cache carried
    along; compare every chunk's logits with the model on the whole prefix."""
    cache, t = None, 0
    for S in chunks:
        idx = ids[:, t:t + S]
        what = _what(idx, cache)
        logits, cache, shape = _step(fn, model, idx, cache)
        if tuple(cache[0].shape) != shape or tuple(cache[1].shape) != shape:
            raise CheckFailure(f"the cache returned by {what} holds k "
                               f"{tuple(cache[0].shape)} and v "
                               f"{tuple(cache[1].shape)}; expected {shape} each: "
                               "the cache grows by the new positions.")
        with torch.no_grad():
            expected = model(ids[:, :t + S])[:, t:]  # (B, S, V): full recomputation
        expect_close(logits, expected, rtol=1e-4, atol=1e-5,
                     what=f"the logits of {what}, against model(ids[:, :{t + S}])"
                          f"[:, {t}:]")
        t += S


_HINT = ("The T_q new ids sit at positions t0 .. t0 + T_q - 1 after the t0 cached "
         "ones: embed them with those positions, compute their queries, keys and "
         "values with the attention's in_proj weights, append the keys and values to "
         "the cache, let each new query attend to every cached key and to the new keys "
         "up to its own position, then out_proj, the residual and the head, as the "
         "model does.")


@q.case("token by token from an empty cache, 8 steps (B = 2)", kind="core",
        hint=_HINT)
def _(kv_cache_step):
    ids = torch.randint(0, 13, (2, 8), generator=_gen(0))
    _run(kv_cache_step, _model(0), ids, [1] * 8)


@q.case("a prompt of 5 at once, then 4 single steps (B = 3)", kind="core", hint=_HINT)
def _(kv_cache_step):
    ids = torch.randint(0, 13, (3, 9), generator=_gen(1))
    _run(kv_cache_step, _model(1), ids, [5, 1, 1, 1, 1])


@q.case("chunks of 3, 2 and 4 new tokens (B = 2, d_model 24, 3 heads)", kind="core",
        hint=_HINT)
def _(kv_cache_step):
    ids = torch.randint(0, 11, (2, 9), generator=_gen(2))
    _run(kv_cache_step, _model(2, V=11, C=24, n_head=3), ids, [3, 2, 4])


def _mistake(fn, seed, prefix, S, mistakes):
    """A cache of ``prefix`` positions built by the reference, then one call of the
    answer with S new ids: right, one of ``mistakes`` ({message: keywords of
    reference_kv_cache_step}, hint shown), or a plain mismatch (no hint)."""
    model = _model(seed)
    ids = torch.randint(0, 13, (2, prefix + S), generator=_gen(seed))
    cache = reference_kv_cache_step(model, ids[:, :prefix], None)[1]
    idx = ids[:, prefix:]
    what = _what(idx, cache)
    logits, new_cache, shape = _step(fn, model, idx, cache)
    expected, _ = reference_kv_cache_step(model, idx, cache)
    if all(tuple(c.shape) == shape for c in new_cache) and _agrees(
            lambda: expect_close(logits, expected, rtol=1e-4, atol=1e-5)):
        return
    for told, keywords in mistakes.items():
        wrong, wrong_cache = reference_kv_cache_step(model, idx, cache, **keywords)
        same_shapes = all(tuple(c.shape) == tuple(w.shape)
                          for c, w in zip(new_cache, wrong_cache))
        if (same_shapes
                and _agrees(lambda: expect_close(logits, wrong, rtol=1e-4, atol=1e-5))):
            raise CheckFailure(f"{what}: {told}")
    _plain_mismatch(logits, expected, f"the logits of {what}", rtol=1e-4, atol=1e-5)
    raise _basic(f"the cache returned by {what} holds k {tuple(new_cache[0].shape)}; "
                 f"expected {shape}.")


@q.case("the new positions continue after the cache",
        hint="t0 tokens are in the cache, so the new ones are at positions t0, "
             "t0 + 1, ...: their position embeddings start at t0, the length of the "
             "cache (dimension 2 of k), not at 0 and not at t0 - 1 or t0 + 1.")
def _(kv_cache_step):
    _mistake(kv_cache_step, 3, 4, 2, {
        "the new tokens got the position embeddings of 0, 1, ... as if the cache "
        "were empty.": dict(restart=True),
        "the new tokens' positions are off by one: they start at t0 - 1.":
            dict(pos_shift=-1),
        "the new tokens' positions are off by one: they start at t0 + 1.":
            dict(pos_shift=1)})


@q.case("each new query sees the whole cache and the new keys up to itself",
        hint="With a cache, the (T_q, t0 + T_q) mask is not the square causal one: "
             "new query i is at position t0 + i and sees keys 0 .. t0 + i. "
             "F.scaled_dot_product_attention's is_causal=True aligns its mask to the "
             "top left, so with a cache query i would see only keys 0 .. i.")
def _(kv_cache_step):
    _mistake(kv_cache_step, 4, 5, 2, {
        "the mask is the top-left causal one (is_causal=True with a cache): new query "
        "i sees only keys 0 .. i, not the whole cache.": dict(top_left=True),
        "the new tokens attend to the cached keys only, not to their own.":
            dict(cache_only=True)})


@q.case("the cache returned holds the new keys and values too",
        hint="Return the cache extended by the new positions, (B, n_head, t0 + T_q, "
             "d_k) for k and v: the next call must see these tokens.")
def _(kv_cache_step):
    model = _model(5)
    ids = torch.randint(0, 13, (2, 4), generator=_gen(5))
    cache = reference_kv_cache_step(model, ids[:, :3], None)[1]
    idx = ids[:, 3:]
    logits, new_cache, shape = _step(kv_cache_step, model, idx, cache)
    if all(tuple(c.shape) == shape for c in new_cache):
        return
    if all(tuple(c.shape) == tuple(o.shape) for c, o in zip(new_cache, cache)):
        raise CheckFailure(f"{_what(idx, cache)} returned the cache it was given, of 3 "
                           "positions: the new keys and values were not appended.")
    raise _basic(f"the cache returned by {_what(idx, cache)} holds k "
                 f"{tuple(new_cache[0].shape)}; expected {shape}.")


@q.case("scores scaled by 1/sqrt(d_k); the residual kept",
        hint="nn.MultiheadAttention scales the scores by 1/sqrt(d_k) of one head, and "
             "the model adds the attention's output to its input before the head.")
def _(kv_cache_step):
    _mistake(kv_cache_step, 6, 3, 1, {
        "the scores were not scaled by 1/sqrt(d_k).": dict(scale=False),
        "the residual connection is missing: the head reads the attention's output "
        "alone.": dict(residual=False)})


@q.case("the cache given is left unchanged", kind="property",
        hint="Build the longer cache with torch.cat into new tensors; the caller may "
             "still need the old one (beam search keeps several).")
def _(kv_cache_step):
    model = _model(7)
    ids = torch.randint(0, 13, (1, 3), generator=_gen(7))
    cache = reference_kv_cache_step(model, ids[:, :2], None)[1]
    before = tuple(c.clone() for c in cache)
    call(kv_cache_step, model, ids[:, 2:], cache, name="kv_cache_step")
    if not all(torch.equal(a, b) for a, b in zip(before, cache)):
        raise CheckFailure("kv_cache_step changed the tensors of the cache it was "
                           "given, in place.")

