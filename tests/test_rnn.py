"""Tests of course_utils.lessons.rnn against oracles: autograd, nn.GRU, nn.RNN, Keras.

The NumPy BPTT is compared with torch.autograd in float64, the from-scratch GRU with
nn.GRU and nn.GRUCell from copied weights, the torch-to-Keras GRU copy output for output
to 1e-5; windows, state carrying, sampling and training for what the lesson relies on.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.lessons import rnn

V, H = 11, 7


def torch_rnn_loss(params, inputs, targets, h0):
    """rnn_forward's loss in torch ops (float64), for autograd to differentiate."""
    h, total = h0, 0.0
    B, T = inputs.shape
    for t in range(T):
        x = F.one_hot(inputs[:, t], V).double()                        # (B, V)
        h = torch.tanh(x @ params["W_xh"].T + h @ params["W_hh"].T + params["b_h"])
        logits = h @ params["W_hy"].T + params["b_y"]                  # (B, V)
        total = total + F.cross_entropy(logits, targets[:, t], reduction="sum")
    return total / (B * T)


# ------------------------------------------------------------------ text and n-grams
def test_vocab_round_trip():
    """Do encode and decode invert each other, with ids in sorted-character order?"""
    text = "to be, or not to be\nthat is"
    vocab = rnn.Vocab.from_text(text)
    assert list(vocab.chars) == sorted(set(text)) and len(vocab) == len(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text == vocab.decode(torch.as_tensor(ids))
    assert vocab.encode("\n").tolist() == [0]


def test_split_keeps_order_and_fraction():
    """Is the split the first 90 % and the last 10 %, in order, with nothing lost?"""
    ids = np.arange(1000)
    train, val = rnn.split_train_val(ids)
    assert len(train) == 900 and len(val) == 100
    assert np.array_equal(np.concatenate([train, val]), ids)


def test_ngram_counts_and_losses_by_hand():
    """Do the bigram counts, smoothed probabilities and NLL agree with a hand count?"""
    ids = np.array([0, 1, 0, 1, 1, 2])  # bigrams: 01 10 01 11 12
    counts = rnn.ngram_counts(ids, 3, 2)
    expected = np.zeros((3, 3), dtype=np.int64)
    for a, b in zip(ids[:-1], ids[1:]):
        expected[a, b] += 1
    assert np.array_equal(counts, expected)
    log_probs = rnn.ngram_log_probs(counts, pseudo_count=0.5)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0)
    assert np.isclose(np.exp(log_probs[0, 1]), (2 + 0.5) / (2 + 1.5))
    nll = rnn.ngram_nll(log_probs, ids)
    pairs = zip(ids[:-1], ids[1:])
    assert np.isclose(nll, -np.mean([log_probs[a, b] for a, b in pairs]))
    assert rnn.ngram_counts(ids, 3, 3).sum() == len(ids) - 2
    uniform = rnn.ngram_log_probs(np.zeros(3), pseudo_count=1.0)
    assert np.isclose(rnn.ngram_nll(uniform, ids), math.log(3))


# ------------------------------------------------------------------------ NumPy BPTT
@pytest.mark.parametrize("B, T, scale", [(1, 1, None), (3, 5, None), (2, 12, 0.8)])
def test_rnn_backward_matches_autograd(B, T, scale):
    """Is the hand-written BPTT equal to autograd's gradients (float64), h0 included?"""
    rng = np.random.default_rng(B * 100 + T)
    params = rnn.init_rnn_params(V, H, seed=T, scale=scale)
    inputs, targets = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    h0 = rng.normal(size=(B, H)) * 0.5
    loss, cache = rnn.rnn_forward(params, inputs, targets, h0)
    grads = rnn.rnn_backward(params, cache)

    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h0_t = torch.tensor(h0, requires_grad=True)
    ref = torch_rnn_loss(leaves, torch.as_tensor(inputs), torch.as_tensor(targets),
                         h0_t)
    ref.backward()
    assert np.isclose(loss, ref.item(), rtol=1e-12)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(grads[name], leaf.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_allclose(grads["h0"], h0_t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_rnn_forward_is_nn_rnn_on_one_hot_inputs():
    """Does the NumPy forward compute nn.RNN's hidden states from the same weights?"""
    params = rnn.init_rnn_params(V, H, seed=3)
    inputs = np.random.default_rng(0).integers(0, V, (2, 6))
    _, cache = rnn.rnn_forward(params, inputs, inputs, np.zeros((2, H)))
    layer = nn.RNN(V, H, batch_first=True).double()
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.from_numpy(params["W_xh"]))
        layer.weight_hh_l0.copy_(torch.from_numpy(params["W_hh"]))
        layer.bias_ih_l0.copy_(torch.from_numpy(params["b_h"]))
        layer.bias_hh_l0.zero_()
        out, _ = layer(F.one_hot(torch.as_tensor(inputs), V).double())  # (B, T, H)
    hs = cache["hs"][1:].transpose(1, 0, 2)                          # (B, T, H)
    np.testing.assert_allclose(hs, out.numpy(), atol=1e-12)


# -------------------------------------------------------------------- windows, TBPTT
def test_stream_batches_and_windows():
    """Are the streams contiguous, the targets shifted by one, the windows in order?"""
    ids = np.arange(103)
    streams = rnn.stream_batches(ids, 4)                 # (4, 25): last 3 ids dropped
    assert streams.shape == (4, 25) and streams.dtype == torch.long
    assert streams[1, 0] == 25 and torch.equal(streams[2], torch.arange(50, 75))
    windows = list(rnn.tbptt_windows(streams, 10))
    assert [x.shape[1] for x, _ in windows] == [10, 10, 4]  # 24 predictions per row
    for x, y in windows:
        assert x.shape == y.shape and torch.equal(y, x + 1)  # next id = next character
    assert torch.equal(torch.cat([x for x, _ in windows], dim=1), streams[:, :-1])
    shifted = list(rnn.tbptt_windows(streams, 10, offset=3))
    assert torch.equal(shifted[0][0], streams[:, 3:13])


def test_detach_state_handles_tensors_and_tuples():
    """Does detach_state cut the graph for None, a tensor and an LSTM's (h, c) alike?"""
    h = torch.ones(1, 2, 3, requires_grad=True) * 2
    assert rnn.detach_state(None) is None
    assert not rnn.detach_state(h).requires_grad
    detached = rnn.detach_state((h, h * 3))
    assert isinstance(detached, tuple) and not any(s.requires_grad for s in detached)
    assert torch.equal(detached[1], h * 3)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_carried_state_equals_one_long_window(cell):
    """Do two windows read with the state carried give the logits of one long window?"""
    torch.manual_seed(0)
    model = rnn.CharLM(V, H, cell, embed_dim=5)
    x = torch.randint(0, V, (3, 12))
    full, _ = model(x)
    first, state = model(x[:, :5])
    second, _ = model(x[:, 5:], rnn.detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], dim=1), full)


def test_evaluate_lm_carries_the_state():
    """Is evaluate_lm the loss of each stream read in one piece, whatever T is?"""
    torch.manual_seed(0)
    model = rnn.CharLM(V, H, "gru", embed_dim=5)
    ids = np.random.default_rng(0).integers(0, V, 203)
    streams = rnn.stream_batches(ids, 4)
    with torch.no_grad():
        logits, _ = model(streams[:, :-1])
    expected = F.cross_entropy(logits.flatten(0, 1), streams[:, 1:].flatten()).item()
    for seq_len in (7, 50):
        got = rnn.evaluate_lm(model, ids, 4, seq_len, torch.device("cpu"))
        assert math.isclose(got, expected, rel_tol=1e-5)


# ------------------------------------------------------------------ GRU from scratch
def test_gru_cell_matches_nn_grucell():
    """Does one from-scratch GRU step equal nn.GRUCell with the same weights?"""
    torch.manual_seed(1)
    ref = nn.GRUCell(5, H)
    cell = rnn.GRUCell(5, H)
    cell.load_state_dict(ref.state_dict())
    x, h = torch.randn(4, 5), torch.randn(4, H)
    torch.testing.assert_close(cell(x, h), ref(x, h), rtol=1e-6, atol=1e-6)


def test_scratch_gru_matches_nn_gru_forward_and_backward():
    """Do ScratchGRU's outputs, last state and gradients equal nn.GRU's (float64)?"""
    torch.manual_seed(2)
    ref = nn.GRU(5, H, batch_first=True).double()
    scratch = rnn.ScratchGRU(5, H).double()
    scratch.load_state_dict(ref.state_dict())
    assert set(dict(scratch.named_parameters())) == set(dict(ref.named_parameters()))
    x = torch.randn(3, 9, 5, dtype=torch.float64)
    h0 = torch.randn(1, 3, H, dtype=torch.float64)
    out, h_n = scratch(x, h0)
    out_ref, h_ref = ref(x, h0)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-12, atol=1e-12)
    (out.square().sum() + h_n.sum()).backward()
    (out_ref.square().sum() + h_ref.sum()).backward()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(dict(scratch.named_parameters())[name].grad, p.grad,
                                   rtol=1e-10, atol=1e-12)
    out0, _ = scratch(x)
    torch.testing.assert_close(out0, ref(x)[0], rtol=1e-12, atol=1e-12)  # None: zeros


def test_update_gate_bias():
    """Is the update gate's total bias b_iz + b_hz the value asked for, the other gates
    untouched, and an LSTM refused?"""
    gru = nn.GRU(4, H, num_layers=2)
    before = gru.bias_ih_l1.detach().clone()
    rnn.set_gru_update_bias(gru, 1.0)
    for layer in range(2):
        b_ih = getattr(gru, f"bias_ih_l{layer}")
        b_hh = getattr(gru, f"bias_hh_l{layer}")
        torch.testing.assert_close(b_ih[H:2 * H] + b_hh[H:2 * H], torch.ones(H))
    torch.testing.assert_close(gru.bias_ih_l1[:H], before[:H])
    torch.testing.assert_close(gru.bias_ih_l1[2 * H:], before[2 * H:])
    with pytest.raises(TypeError):
        rnn.set_gru_update_bias(nn.LSTM(4, H))


# -------------------------------------------------------------------- gradient probe
def test_gradient_probe_matches_autograd_through_the_fused_layer():
    """Is the probe's gradient at the first state the gradient of the last loss w.r.t.
    that state, computed by autograd through one call of the fused nn.GRU?"""
    torch.manual_seed(3)
    model = rnn.CharLM(V, H, "gru", embed_dim=5).double()
    x = torch.randint(0, V, (2, 8))
    norms = rnn.gradient_vs_distance(model, x, x)
    assert norms.shape == (8,) and norms.dtype == np.float64
    # autograd: h after step 0 as a leaf, then the remaining 7 steps in one call
    emb = model.embed(x)
    _, h1 = model.rnn(emb[:, :1])
    h1 = h1.detach().requires_grad_(True)
    _, h_last = model.rnn(emb[:, 1:], h1)
    F.cross_entropy(model.head(h_last[-1]), x[:, -1]).backward()
    assert math.isclose(norms[0], h1.grad.norm(dim=-1).mean().item(), rel_tol=1e-9)


def test_gradient_probe_vanishes_without_recurrence():
    """With W_hh = 0, does no gradient reach back further than the last state?"""
    model = rnn.CharLM(V, H, "rnn", embed_dim=5)
    with torch.no_grad():
        model.rnn.weight_hh_l0.zero_()
    x, y = torch.randint(0, V, (2, 6)), torch.zeros(2, 6, dtype=torch.long)
    norms = rnn.gradient_vs_distance(model, x, y)
    assert np.all(norms[:-1] == 0) and norms[-1] > 0


def test_decay_per_step_of_a_geometric_series():
    """Does decay_per_step return r for norms r^distance, skipping underflowed zeros?"""
    distance = np.arange(50)[::-1]
    assert math.isclose(rnn.decay_per_step(0.7 ** distance), 0.7, rel_tol=1e-9)
    norms = 0.5 ** distance
    norms[:3] = 0.0
    assert math.isclose(rnn.decay_per_step(norms), 0.5, rel_tol=1e-9)


# -------------------------------------------------------------------------- sampling
def test_sampling_is_deterministic_and_respects_top_k():
    """Same seed, same draws; top-k never leaves the k best; temperature 0 is argmax?"""
    logits = torch.randn(4, V, generator=torch.Generator().manual_seed(0))

    def draw(seed, **kw):
        g = torch.Generator().manual_seed(seed)
        return torch.stack([rnn.sample_next(logits, generator=g, **kw)
                            for _ in range(200)])                   # (200, 4)

    assert torch.equal(draw(5, temperature=0.8), draw(5, temperature=0.8))
    top3 = torch.topk(logits, 3).indices                             # (4, 3)
    drawn = draw(1, top_k=3)
    for b in range(4):
        assert set(drawn[:, b].tolist()) <= set(top3[b].tolist())
    assert torch.equal(rnn.sample_next(logits, temperature=0), logits.argmax(1))
    assert torch.equal(draw(2, top_k=1)[0], logits.argmax(1))


def test_sampling_frequencies_follow_the_tempered_softmax():
    """Do the draws follow softmax(logits / temperature)?"""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([rnn.sample_next(logits.expand(1000, 4), 0.5, generator=g)
                         for _ in range(20)]).flatten()
    freq = torch.bincount(draws, minlength=4).double() / draws.numel()
    expected = torch.softmax(logits[0].double() / 0.5, 0)
    torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)


def test_generate_is_reproducible():
    """Does generate give the same text for the same seed, starting with the prompt?"""
    vocab = rnn.Vocab.from_text("abcdefghij")
    torch.manual_seed(0)
    model = rnn.CharLM(len(vocab), 8, "lstm", embed_dim=4)
    texts = [rnn.generate(model, vocab, "abc", 30, 0.9, 5,
                          torch.Generator().manual_seed(7)) for _ in range(2)]
    assert texts[0] == texts[1] and texts[0].startswith("abc") and len(texts[0]) == 33


# -------------------------------------------------------------------------- training
def test_train_lm_learns_is_deterministic_and_records_the_norm_before_clipping():
    """Does a short run learn, repeat exactly, and log the norm before clipping?"""
    ids = np.tile(np.arange(V), 60)  # a periodic text: easy to learn
    config = rnn.TrainConfig(steps=30, batch_size=4, seq_len=12, lr=3e-2,
                             warmup_steps=3, max_norm=0.25, eval_every=15,
                             eval_chars=None, eval_batch_size=4)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = rnn.CharLM(V, 16, "gru", embed_dim=8)
        history = rnn.train_lm(model, ids[:500], ids[500:], config, torch.device("cpu"))
        runs.append((history, model))
    (history, model), (again, _) = runs
    assert history.train_loss == again.train_loss and history.val_loss == again.val_loss
    assert history.val_step == [15, 30] and len(history.train_loss) == 30
    assert history.val_loss[-1] < 0.2 * math.log(V)
    assert max(history.grad_norm) > 0.25  # the norm before clipping is recorded
    assert history.tokens_per_s > 0 and history.lr[0] == pytest.approx(3e-2 / 3)


# ----------------------------------------------------------------------------- Keras
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


def test_torch_gru_copied_to_keras_gives_the_same_outputs():
    """Does a Keras GRU with the reordered weights give nn.GRU's outputs and state?"""
    keras = _keras()
    torch.manual_seed(4)
    gru = nn.GRU(5, H, batch_first=True)
    layer = keras.layers.GRU(H, return_sequences=True, return_state=True,
                             reset_after=True)
    x, h0 = torch.randn(3, 10, 5), torch.randn(1, 3, H)
    layer(x.numpy(), initial_state=h0[0].numpy())  # builds the weights
    layer.set_weights(rnn.torch_gru_to_keras(gru))
    out, h_last = layer(x.numpy(), initial_state=h0[0].numpy())
    out_ref, h_ref = gru(x, h0)
    np.testing.assert_allclose(np.asarray(out), out_ref.detach().numpy(), atol=1e-5,
                               rtol=0)
    np.testing.assert_allclose(np.asarray(h_last), h_ref[0].detach().numpy(), atol=1e-5,
                               rtol=0)


def test_char_lm_copied_to_keras_gives_the_same_logits():
    """Does the GRU language model copied to keras_gru_lm give the same logits (1e-5),
    and a plain transpose, gates not reordered, not?"""
    _keras()
    torch.manual_seed(5)
    model = rnn.CharLM(V, H, "gru", embed_dim=6)
    keras_model = rnn.keras_gru_lm(V, H, embed_dim=6)
    rnn.copy_char_lm_to_keras(model, keras_model)
    x, h0 = torch.randint(0, V, (2, 15)), torch.randn(1, 2, H)
    logits, h_last = keras_model([x.numpy().astype("int32"), h0[0].numpy()])
    with torch.no_grad():
        ref, h_ref = model(x, h0)
    np.testing.assert_allclose(np.asarray(logits), ref.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(h_last), h_ref[0].numpy(), atol=1e-5, rtol=0)
    g = model.rnn
    naive = [g.weight_ih_l0.detach().numpy().T, g.weight_hh_l0.detach().numpy().T,
             np.stack([g.bias_ih_l0.detach().numpy(), g.bias_hh_l0.detach().numpy()])]
    keras_model.get_layer("gru").set_weights(naive)
    wrong, _ = keras_model([x.numpy().astype("int32"), h0[0].numpy()])
    assert np.abs(np.asarray(wrong) - ref.numpy()).max() > 1e-2
