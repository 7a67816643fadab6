"""Tests of course_utils.lessons.attention against oracles: PyTorch's own attention.

Scaled dot-product attention is compared with F.scaled_dot_product_attention (float64
and float32, causal, padding and additive masks), multi-head attention with
nn.MultiheadAttention from copied weights (outputs and gradients), the key-value cache
with full recomputation, the FLOP formula with torch's FlopCounterMode, and the Keras
copies with keras.layers.MultiHeadAttention, to tolerance.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from course_utils.lessons import attention as A
from course_utils.lessons import rnn

F64 = torch.float64


def qkv(B=2, h=3, T_q=5, T_k=7, d_k=8, d_v=4, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, h, T_q, d_k, generator=g, dtype=dtype),
            torch.randn(B, h, T_k, d_k, generator=g, dtype=dtype),
            torch.randn(B, h, T_k, d_v, generator=g, dtype=dtype))


# ------------------------------------------------------------- attention from scratch
def test_softmax_is_stable_and_gives_masked_entries_zero():
    """Does softmax survive scores of 1000 (where exp overflows), match torch.softmax,
    and give -inf entries a weight of exactly 0?"""
    s = torch.tensor([[1000.0, 999.0, -1000.0], [1.0, float("-inf"), 0.0]], dtype=F64)
    p = A.softmax(s)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p, torch.softmax(s, -1), rtol=1e-15, atol=0)
    assert p[1, 1] == 0 and torch.allclose(p.sum(-1), torch.ones(2, dtype=F64))
    naive = torch.exp(s[0]) / torch.exp(s[0]).sum()
    assert torch.isnan(naive).any()          # what the shift by the maximum avoids


@pytest.mark.parametrize("dtype, tol", [(F64, 1e-12), (torch.float32, 1e-5)])
def test_attention_matches_torch_sdpa(dtype, tol):
    """Is our attention F.scaled_dot_product_attention's, unmasked, causal, with a
    boolean padding mask and with an additive float mask, in float64 and float32?"""
    q, k, v = qkv(dtype=dtype)
    pad = A.padding_mask(torch.tensor([7, 4]), 7)             # (2, 1, 1, 7)
    additive = torch.randn(5, 7, dtype=dtype)
    for mask in (None, A.causal_mask(5, 7), pad, additive):
        out, weights = A.scaled_dot_product_attention(q, k, v, mask)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5, dtype=dtype),
                                   rtol=tol, atol=tol)
    _, weights = A.scaled_dot_product_attention(q, k, v, pad)
    assert (weights[1, :, :, 4:] == 0).all() and (weights[1, :, :, :4] > 0).all()
    out, _ = A.scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3))


def test_attention_gradients_match_torch_sdpa():
    """Does autograd through our attention give SDPA's gradients for q, k and v?"""
    leaves = [t.requires_grad_(True) for t in qkv()]
    mask = A.causal_mask(5, 7)
    grads = []
    for fn in (lambda *a: A.scaled_dot_product_attention(*a, mask)[0],
               lambda *a: F.scaled_dot_product_attention(*a, attn_mask=mask)):
        out = fn(*leaves)
        grads.append(torch.autograd.grad(out.square().sum(), leaves))
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_causal_mask_is_aligned_bottom_right():
    """Is the causal mask the lower triangle for T_q = T_k, and for T_q < T_k does the
    last query see every key (unlike SDPA's top-left is_causal)?"""
    assert torch.equal(A.causal_mask(4), torch.ones(4, 4, dtype=torch.bool).tril())
    m = A.causal_mask(2, 5)
    assert m.tolist() == [[True, True, True, True, False], [True] * 5]
    q, k, v = qkv(T_q=1, T_k=6)
    out, _ = A.scaled_dot_product_attention(q, k, v, A.causal_mask(1, 6))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    top_left = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # sees key 0 only
    torch.testing.assert_close(top_left, v[:, :, :1])


def test_padding_mask_gives_each_sequence_its_unpadded_result():
    """With a batch of different lengths padded with garbage, is each sequence's result
    at its real positions the attention of that sequence alone, without padding?"""
    lengths = [6, 3, 1]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 6, 4, generator=g, dtype=F64)      # (B, h, T, d)
    mask = A.padding_mask(lengths, 6)
    out, _ = A.scaled_dot_product_attention(x, x, x, mask)
    for b, n in enumerate(lengths):
        alone, _ = A.scaled_dot_product_attention(x[b:b + 1, :, :n], x[b:b + 1, :, :n],
                                                  x[b:b + 1, :, :n])
        torch.testing.assert_close(out[b:b + 1, :, :n], alone)
    unmasked, _ = A.scaled_dot_product_attention(x, x, x)
    assert not torch.allclose(unmasked[1, :, :3], out[1, :, :3])


# ---------------------------------------------------------------- multi-head attention
def test_split_and_merge_heads():
    """Does split_heads put feature c in head c // d_k, and merge_heads undo it?"""
    x = torch.arange(2 * 3 * 8).reshape(2, 3, 8)             # (B, T, C)
    heads = A.split_heads(x, 4)                               # (B, 4, T, 2)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[1, 2, 0], x[1, 0, 4:6])
    assert torch.equal(A.merge_heads(heads), x)


@pytest.mark.parametrize("fast", [True, False])
def test_mha_matches_nn_multiheadattention_both_ways(fast):
    """With weights copied either way, do our outputs and gradients equal
    nn.MultiheadAttention's, unmasked, causal and with padding (opposite mask
    conventions: theirs True = blocked)?"""
    torch.manual_seed(0)
    C, h = 12, 3
    ours = A.MultiHeadAttention(C, h, fast=fast).double()
    ref = nn.MultiheadAttention(C, h, batch_first=True).double()
    A.copy_to_torch_mha(ours, ref)
    x = torch.randn(2, 6, C, dtype=F64)
    pad = A.padding_mask([6, 4], 6)                           # (2, 1, 1, 6)
    cases = [({}, {}),
             ({"causal": True}, {"attn_mask": ~A.causal_mask(6)}),
             ({"mask": pad}, {"key_padding_mask": ~pad[:, 0, 0]})]
    for our_kw, ref_kw in cases:
        y = ours(x, **our_kw)
        y_ref, _ = ref(x, x, x, need_weights=False, **ref_kw)
        torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    ours.zero_grad()
    ref.zero_grad()
    ours(x, causal=True).square().sum().backward()
    ref(x, x, x, attn_mask=~A.causal_mask(6))[0].square().sum().backward()
    torch.testing.assert_close(ours.qkv.weight.grad, ref.in_proj_weight.grad)
    torch.testing.assert_close(ours.proj.weight.grad, ref.out_proj.weight.grad)
    back = A.MultiHeadAttention(C, h, fast=fast).double()
    A.copy_from_torch_mha(ref, back)
    torch.testing.assert_close(back(x, causal=True), ours(x, causal=True))


def test_mha_weights_and_parameter_count():
    """Are the slow path's weights nn.MultiheadAttention's per head, and is the
    parameter count 4 C^2 + 4 C for every number of heads?"""
    torch.manual_seed(1)
    x = torch.randn(1, 5, 8, dtype=F64)
    for h in (1, 2, 4, 8):
        ours = A.MultiHeadAttention(8, h).double()
        ref = nn.MultiheadAttention(8, h, batch_first=True).double()
        A.copy_to_torch_mha(ours, ref)
        _, weights = ours(x, causal=True, need_weights=True)  # (1, h, 5, 5)
        _, ref_w = ref(x, x, x, attn_mask=~A.causal_mask(5),
                       average_attn_weights=False)
        torch.testing.assert_close(weights, ref_w)
        n = sum(p.numel() for p in ours.parameters())
        assert n == A.mha_param_count(8) == sum(p.numel() for p in ref.parameters())
    assert A.mha_param_count(8, bias=False) == 4 * 64
    with pytest.raises(ValueError):
        A.MultiHeadAttention(10, 4)


def test_self_attention_is_permutation_equivariant_unless_causal():
    """Does permuting the positions permute the outputs the same way (no mask), and
    does the causal mask break that symmetry?"""
    torch.manual_seed(2)
    mha = A.MultiHeadAttention(8, 2).double()
    x = torch.randn(1, 7, 8, dtype=F64)
    perm = torch.randperm(7)
    torch.testing.assert_close(mha(x[:, perm]), mha(x)[:, perm])
    assert not torch.allclose(mha(x[:, perm], causal=True), mha(x, causal=True)[:, perm])


# ------------------------------------------------------------- positional information
def test_sinusoidal_encoding_values_and_rotation():
    """Are the encodings sin/cos of p / 10000^(2i/d), and is PE[p + k] a rotation of
    PE[p] by angles that depend on k only?"""
    pe = A.sinusoidal_encoding(50, 8, dtype=F64)
    assert pe.shape == (50, 8)
    assert math.isclose(pe[3, 2], math.sin(3 / 10000 ** (2 / 8)), rel_tol=1e-12)
    assert math.isclose(pe[3, 5], math.cos(3 / 10000 ** (4 / 8)), rel_tol=1e-12)
    omega = 10000.0 ** (-torch.arange(0, 8, 2, dtype=F64) / 8)
    for k in (1, 7):
        rot = torch.zeros(8, 8, dtype=F64)
        for i, w in enumerate(omega):
            c, s = math.cos(k * w), math.sin(k * w)
            rot[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[c, s], [-s, c]])
        torch.testing.assert_close(pe[k:] , pe[:-k] @ rot.T)  # every p at once
    with pytest.raises(ValueError):
        A.sinusoidal_encoding(4, 5)


def test_rope_rotates_pairs_and_depends_on_relative_position_only():
    """Is RoPE a rotation of each feature pair (complex multiplication by e^{i p
    theta}), the identity at position 0, and is <rope(q, m), rope(k, n)> a function of
    n - m only?"""
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(2, 16, generator=g, dtype=F64)
    positions = torch.arange(10)
    rq = A.apply_rope(q.expand(10, 16), positions)            # (10, 16)
    theta = A.rope_frequencies(16)
    z = torch.view_as_complex(q.view(8, 2).contiguous())
    expected = torch.view_as_real(z * torch.polar(torch.ones(10, 8, dtype=F64),
                                                  positions[:, None] * theta))
    torch.testing.assert_close(rq, expected.flatten(1))
    torch.testing.assert_close(rq[0], q)
    torch.testing.assert_close(rq.norm(dim=1), q.norm().expand(10))
    rk = A.apply_rope(k.expand(10, 16), positions)
    dots = rq @ rk.T                                          # (m, n)
    for offset in (-3, 0, 2):
        diag = torch.diagonal(dots, offset)
        torch.testing.assert_close(diag, diag[:1].expand_as(diag))
    assert not torch.allclose(q @ k, dots[0, 5])


# ---------------------------------------------------------------------- the tiny GPT
CONFIGS = [A.GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, d_model=16,
                       pos_encoding=pos, bias=bias, tie_weights=tie)
           for pos, bias, tie in [("learned", True, True), ("sinusoidal", False, True),
                                  ("rope", True, False)]]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.pos_encoding)
def test_gpt_parameter_count_formula(config):
    """Does gpt_param_count(config) count GPT(config)'s parameters, the formula of
    block_param_count included?"""
    model = A.GPT(config)
    assert model.num_parameters() == A.gpt_param_count(config)
    block = sum(p.numel() for p in model.blocks[0].parameters())
    assert block == A.block_param_count(config.d_model, config.bias)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.pos_encoding)
def test_kv_cache_gives_the_logits_of_full_recomputation(config):
    """Do a prefill and then one position at a time through the KV cache give the
    logits of the whole sequence read at once (float64), for each position encoding?"""
    torch.manual_seed(4)
    model = A.GPT(config).double().eval()
    idx = torch.randint(0, 11, (3, 16))
    with torch.no_grad():
        full = model(idx)
        cache = model.new_cache(3)
        parts = [model(idx[:, :6], cache)]
        parts += [model(idx[:, t:t + 1], cache) for t in range(6, 16)]
    assert cache.length == 16
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        model(idx[:, :1], cache)                              # the cache is full
    with pytest.raises(ValueError):
        model(torch.zeros(1, 17, dtype=torch.long))           # longer than block_size


def test_gpt_is_causal_and_its_fast_path_is_the_readable_one():
    """Do the logits at position t ignore the ids after t, and do the fused (SDPA) and
    the written-out attention give the same logits and attention maps?"""
    torch.manual_seed(5)
    model = A.GPT(CONFIGS[0]).double().eval()
    idx = torch.randint(0, 11, (2, 12))
    changed = idx.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 11
    with torch.no_grad():
        a, b = model(idx), model(changed)
        torch.testing.assert_close(a[:, :8], b[:, :8])
        assert not torch.allclose(a[:, 8:], b[:, 8:])
        logits, maps = model(idx, need_weights=True)
    torch.testing.assert_close(logits, a)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 12, 12)
    assert torch.all(maps[1].triu(1) == 0)


def test_generation_with_the_cache_equals_recomputation():
    """Within block_size, does cached generation draw the same ids as recomputing
    every step (greedy and sampled), and past it, keep producing ids?"""
    torch.manual_seed(6)
    model = A.GPT(CONFIGS[0]).eval()
    prompt = torch.randint(0, 11, (2, 4))
    for temperature, top_k in [(0, None), (1.0, 3)]:
        outs = [A.generate_ids(model, prompt, 12, temperature, top_k,
                               torch.Generator().manual_seed(0), use_cache=cached)
                for cached in (True, False)]
        assert torch.equal(outs[0], outs[1]) and outs[0].shape == (2, 16)
        assert torch.equal(outs[0][:, :4], prompt)
    long = A.generate_ids(model, prompt, 40, 1.0, None, torch.Generator().manual_seed(0))
    assert long.shape == (2, 44) and long.max() < 11
    vocab = rnn.Vocab.from_text("abcdefghijk")
    text = A.generate(model, vocab, "abc", 20, 0.8, 5, torch.Generator().manual_seed(1))
    assert text.startswith("abc") and len(text) == 23


# ------------------------------------------------------------------- training, FLOPs
def test_evaluate_gpt_scores_the_characters_evaluate_lm_scores():
    """With a context as long as each stream, is evaluate_gpt the cross-entropy of every
    character of every stream but the first (evaluate_lm's targets), and with a short
    context the mean over the same number of predictions, each from its window?"""
    torch.manual_seed(7)
    ids = np.random.default_rng(0).integers(0, 11, 203)        # 4 streams of 50
    streams = rnn.stream_batches(ids, 4)
    config = A.GPTConfig(vocab_size=11, block_size=64, n_layer=1, n_head=2, d_model=8)
    model = A.GPT(config).double()
    with torch.no_grad():
        logits = model(streams[:, :-1])
    expected = F.cross_entropy(logits.flatten(0, 1), streams[:, 1:].flatten()).item()
    assert math.isclose(A.evaluate_gpt(model, ids, 4), expected, rel_tol=1e-12)
    short = A.GPT(A.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2,
                              d_model=8)).double()
    with torch.no_grad():                                      # stride 1: each target
        losses = [F.cross_entropy(short(streams[:, max(0, p - 8):p])[:, -1],
                                  streams[:, p], reduction="sum").item()
                  for p in range(1, 50)]                       # from its last 8 chars
    got = A.evaluate_gpt(short, ids, 4, stride=1)
    assert math.isclose(got, sum(losses) / (4 * 49), rel_tol=1e-10)


def test_train_gpt_learns_and_is_deterministic():
    """Does a short run learn a periodic text, repeat exactly, and record its
    evaluations and schedule?"""
    ids = np.tile(np.arange(11), 80)
    config = A.GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=2, d_model=16)
    train_config = A.GPTTrainConfig(steps=40, batch_size=8, lr=1e-2, min_lr=1e-3,
                                    warmup_steps=4, eval_every=20, eval_chars=None,
                                    eval_batch_size=4)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = A.GPT(config)
        runs.append(A.train_gpt(model, ids[:700], ids[700:], train_config, "cpu"))
    history, again = runs
    assert history.train_loss == again.train_loss and history.val_loss == again.val_loss
    assert history.val_step == [20, 40] and len(history.train_loss) == 40
    assert history.val_loss[-1] < 0.2 * math.log(11)         # uniform: log(11)
    assert history.lr[0] == pytest.approx(1e-2 / 4) and history.seconds > 0


def test_training_flops_match_the_flop_counter():
    """Are gpt_train_flops_per_token and gru_train_flops_per_char the FLOPs that
    torch's FlopCounterMode counts for one forward and backward pass? (It does not
    count the CPU's fused SDPA kernel: the GPT runs its written-out attention.)"""
    config = A.GPTConfig(vocab_size=13, block_size=32, n_layer=2, n_head=4, d_model=32)
    model = A.GPT(config)
    for block in model.blocks:
        block.attn.fast = False                                # q k^T and w v as bmm
    idx = torch.randint(0, 13, (3, 32))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(idx).flatten(0, 1), idx.flatten()).backward()
    per_token = counter.get_total_flops() / idx.numel()
    assert math.isclose(per_token, A.gpt_train_flops_per_token(config), rel_tol=0.01)
    V, H, E = 13, 24, 8                                        # ScratchGRU: plain matmuls
    lm = rnn.CharLM(V, H, rnn.ScratchGRU(E, H), embed_dim=E)
    x = torch.randint(0, V, (4, 50))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(lm(x)[0].flatten(0, 1), x.flatten()).backward()
    per_char = counter.get_total_flops() / x.numel()
    assert math.isclose(per_char, A.gru_train_flops_per_char(V, H, E), rel_tol=0.03)


# ----------------------------------------------------------------------------- Keras
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


def test_keras_multiheadattention_with_our_weights_gives_our_output():
    """Given our weights, does keras.layers.MultiHeadAttention compute our causal
    multi-head attention (1e-5), and do unreordered weights not?"""
    keras = _keras()
    torch.manual_seed(8)
    ours = A.MultiHeadAttention(16, 4)
    x = torch.randn(2, 9, 16)
    layer = keras.layers.MultiHeadAttention(4, 4)
    layer(x.numpy(), x.numpy())                                # builds the weights
    layer.set_weights(A.torch_mha_to_keras(ours))
    out = layer(x.numpy(), x.numpy(), use_causal_mask=True)
    with torch.no_grad():
        ref = ours(x, causal=True)
    np.testing.assert_allclose(np.asarray(out), ref.numpy(), atol=1e-5, rtol=0)
    weights = A.torch_mha_to_keras(ours)
    weights[0] = weights[0].transpose(0, 2, 1).reshape(16, 4, 4)  # heads mixed up
    layer.set_weights(weights)
    wrong = layer(x.numpy(), x.numpy(), use_causal_mask=True)
    assert np.abs(np.asarray(wrong) - ref.numpy()).max() > 1e-3


def test_keras_block_with_copied_weights_gives_the_block_output():
    """Does keras_block with a Block's weights give its output (1e-5), and does Keras's
    default LayerNorm epsilon (1e-3) not?"""
    _keras()
    torch.manual_seed(9)
    config = A.GPTConfig(vocab_size=11, block_size=16, n_layer=1, n_head=4, d_model=16)
    block = A.Block(config).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))                  # not the trivial init
        x = torch.randn(2, 10, 16) * 0.1                       # small: epsilon matters
        ref, _ = block(x)
    for eps, close in ((1e-5, True), (1e-3, False)):
        keras_model = A.keras_block(16, 4, eps=eps)
        A.copy_block_to_keras(block, keras_model)
        diff = np.abs(np.asarray(keras_model(x.numpy())) - ref.numpy()).max()
        assert (diff < 1e-5) == close, diff
