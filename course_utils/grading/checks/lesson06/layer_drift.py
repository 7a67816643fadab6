"""Checks of 06.layer_drift: How far each layer's sentence embeddings drifted."""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import (_agrees, _basic, _matches, _not_judged, _plain_mismatch,
                      describe_model, tiny_bert, token_batch)


q = question("06.layer_drift", "How far each layer's sentence embeddings drifted",
             answers=["layer_drift"], timeout=10)


def encoders(seed: int, from_layer: int, scale: float, layers: int = 3, hidden: int = 8,
             ffn: int = 16):
    """(before, after): a seeded tiny BertModel with dropout 0.1, and a copy of it
    whose layers from ``from_layer`` on (0: the embeddings too) were moved by seeded
    noise of size ``scale``, as fine-tuning moves them. Both in training
    mode, as they are at the end of a training loop."""
    before = tiny_bert(seed, layers=layers, hidden=hidden, ffn=ffn, dropout=0.1)
    after = copy.deepcopy(before)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, p in after.named_parameters():
            parts = name.split(".")
            depth = 0 if parts[0] == "embeddings" else (
                int(parts[2]) + 1 if parts[0] == "encoder" else layers + 1)
            if depth >= from_layer:
                p.add_(scale * torch.randn(p.shape, generator=g))
    return before.train(), after.train()


def _states(model, input_ids, attention_mask) -> list[torch.Tensor]:
    """The L + 1 hidden states (B, T, C), float64, of a copy of ``model`` in eval
    mode."""
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        out = m(input_ids=input_ids, attention_mask=attention_mask,
                output_hidden_states=True)
    return [h.double() for h in out.hidden_states]


def _mean(h, attention_mask):
    real = attention_mask.double()[..., None]  # (B, T, 1)
    return (h * real).sum(1) / real.sum(1)  # (B, C)


def drift_of_states(a, b, attention_mask, how: str = "right") -> np.ndarray:
    """(L + 1,) float64 from the hidden states ``a`` and ``b`` of the two encoders: the
    reference (``how="right"``) or a typical mistake ("padding", "cls", "batch",
    "centroid", "distance")."""
    out = []
    for x, y in zip(a, b):
        if how == "padding":
            u, v = x.mean(1), y.mean(1)
        elif how == "cls":
            u, v = x[:, 0], y[:, 0]
        else:
            u, v = _mean(x, attention_mask), _mean(y, attention_mask)  # (B, C)
        if how == "batch":
            out.append(F.cosine_similarity(u, v, dim=0).mean().item())
        elif how == "centroid":
            out.append(F.cosine_similarity(u.mean(0), v.mean(0), dim=0).item())
        else:
            out.append(F.cosine_similarity(u, v, dim=-1).mean().item())
    out = np.array(out)
    return 1.0 - out if how == "distance" else out


def reference_layer_drift(before, after, input_ids, attention_mask) -> np.ndarray:
    """(L + 1,) float64: for the embeddings' output and each layer's, the mean over the
    sentences of the cosine between the masked-mean embeddings of the two encoders."""
    return drift_of_states(_states(before, input_ids, attention_mask),
                           _states(after, input_ids, attention_mask), attention_mask)


def mistaken_layer_drift(before, after, input_ids, attention_mask, how: str):
    """The drift of a typical mistake (``how``), (L + 1,) float64."""
    return drift_of_states(_states(before, input_ids, attention_mask),
                           _states(after, input_ids, attention_mask), attention_mask,
                           how)


def _what(before, input_ids) -> str:
    return (f"layer_drift(before, after, input_ids {tuple(input_ids.shape)}, "
            f"attention_mask) on a {describe_model(before)}")


def _answer(fn, before, after, input_ids, attention_mask):
    got = call(fn, before, after, input_ids.clone(), attention_mask.clone(),
               check_mutation=False, name="layer_drift")
    if got is None:
        raise _basic(f"{_what(before, input_ids)} returned None: return the array of "
                     "drifts.", problem="none")
    if isinstance(got, (list, tuple)):
        got = np.array([float(v) for v in got]) if all(
            isinstance(v, (int, float)) for v in got) else got
    return got


def _core(fn, seed, lengths, from_layer, scale, **sizes):
    before, after = encoders(seed, from_layer, scale, **sizes)
    ids, mask = token_batch(seed, lengths)
    expected = reference_layer_drift(before, after, ids, mask)
    got = _answer(fn, before, after, ids, mask)
    expect_close(got, expected, rtol=1e-4, atol=1e-5, what=_what(before, ids))


_HINT = ("Run both encoders in eval mode without gradients, asking for every hidden "
         "state (the embeddings' output first, then each layer's); pool each state "
         "over the real tokens (masked mean) and average, over the sentences, the "
         "cosine between a sentence's embedding before and after: one number per "
         "state.")


@q.case("3 layers, the top two moved", kind="core", hint=_HINT)
def _(layer_drift):
    _core(layer_drift, 0, [7, 4, 5, 2], from_layer=2, scale=0.15)


@q.case("4 layers, everything moved a little", kind="core", hint=_HINT)
def _(layer_drift):
    _core(layer_drift, 1, [9, 3, 6], from_layer=0, scale=0.01, layers=4, hidden=12,
          ffn=24)


@q.case("2 layers, the top one moved a lot", kind="core", hint=_HINT)
def _(layer_drift):
    _core(layer_drift, 2, [5, 5, 1, 3, 4], from_layer=2, scale=0.5, layers=2)


def _mistake(fn, how, message, seed, lengths=(6, 2, 4), from_layer=1, scale=0.2):
    before, after = encoders(seed, from_layer, scale)
    ids, mask = token_batch(seed, list(lengths))
    a, b = _states(before, ids, mask), _states(after, ids, mask)
    expected = drift_of_states(a, b, mask)
    got = _answer(fn, before, after, ids, mask)
    if _matches(got, expected, 1e-4, 1e-5):
        return
    if _matches(got, drift_of_states(a, b, mask, how), 1e-4, 1e-5):
        raise CheckFailure(f"{_what(before, ids)} returned {_short(got)}: {message}")
    _plain_mismatch(got, expected, _what(before, ids), rtol=1e-4, atol=1e-5)


@q.case("both encoders in eval mode: dropout off",
        hint="An encoder fresh from training is in training mode, and its dropout then "
             "changes the embeddings at every call: the same sentence through the same "
             "weights would seem to drift. Switch both to eval mode before you "
             "measure.")
def _(layer_drift):
    before, after = encoders(3, from_layer=1, scale=0.2)
    ids, mask = token_batch(3, [6, 3, 5])
    first = _answer(layer_drift, before, after, ids, mask)
    second = _answer(layer_drift, before, after, ids, mask)
    if not _agrees(lambda: expect_close(first, second, rtol=1e-6, atol=1e-7)):
        raise CheckFailure(f"{_what(before, ids)} twice on the same encoders and "
                           f"sentences returned {_short(first)}, then "
                           f"{_short(second)}: dropout is on.")
    if not _matches(first, reference_layer_drift(before, after, ids, mask), 1e-4,
                    1e-5):
        raise _not_judged()


@q.case("the padding is left out of each sentence's embedding",
        hint="Pool each sentence over its real tokens (attention_mask), as the lesson "
             "pools its features: the padded positions carry states too.")
def _(layer_drift):
    _mistake(layer_drift, "padding", "it pools every position, padding included.", 4)


@q.case("the sentence embedding is the masked mean, not the [CLS] state",
        hint="all-MiniLM-L6-v2 was trained with mean pooling, and the lesson measures "
             "drift on the embeddings it uses: pool the tokens' states, not the state "
             "at position 0.")
def _(layer_drift):
    _mistake(layer_drift, "cls", "it compares the [CLS] states (position 0).", 5)


@q.case("one cosine per sentence, across its features",
        hint="The cosine compares a sentence's C features before and after (along the "
             "last dimension of a (B, C) pair); along dimension 0 it compares one "
             "feature across the sentences.")
def _(layer_drift):
    _mistake(layer_drift, "batch", "the cosines were taken along the batch "
             "dimension (one per feature), then averaged.", 6)


@q.case("the mean of the cosines, not the cosine of the mean embeddings",
        hint="Average the per-sentence cosines; the cosine between the two centroids "
             "stays near 1 even when every sentence moved, because the movements "
             "cancel out in the average.")
def _(layer_drift):
    _mistake(layer_drift, "centroid", "it is the cosine between the mean embeddings "
             "of the batch before and after.", 7)


@q.case("a similarity (1: no drift), not a distance",
        hint="Return the cosine itself: 1 where nothing moved, lower where the layer "
             "drifted; 1 minus it is a distance.")
def _(layer_drift):
    _mistake(layer_drift, "distance", "it is 1 - cosine, a distance.", 8)


@q.case("one value per hidden state, the embeddings' output included",
        hint="With output_hidden_states=True a BertModel returns L + 1 states: the "
             "embeddings' output, then one per layer. Keep them all (the first is "
             "where nothing but the embedding tables can have moved).")
def _(layer_drift):
    before, after = encoders(9, from_layer=1, scale=0.2)
    ids, mask = token_batch(9, [5, 3])
    expected = reference_layer_drift(before, after, ids, mask)
    got = _answer(layer_drift, before, after, ids, mask)
    shape = tuple(getattr(got, "shape", ()))
    if shape == (len(expected) - 1,) and _matches(got, expected[1:], 1e-4, 1e-5):
        raise CheckFailure(f"{_what(before, ids)} returned {len(expected) - 1} values, "
                           f"one per layer: the embeddings' output is missing "
                           f"({len(expected)} expected).")
    _plain_mismatch(got, expected, _what(before, ids), rtol=1e-4, atol=1e-5)


@q.case("leaves the encoders' weights unchanged", kind="property",
        hint="Measure without training: no optimizer step and no change in place "
             "(torch.no_grad() around the forward passes).")
def _(layer_drift):
    before, after = encoders(10, from_layer=1, scale=0.2, layers=2)
    ids, mask = token_batch(10, [4, 2])
    saved = [{n: p.detach().clone() for n, p in m.named_parameters()}
             for m in (before, after)]
    _answer(layer_drift, before, after, ids, mask)
    for which, m, s in zip(("before", "after"), (before, after), saved):
        for n, p in m.named_parameters():
            if not torch.equal(p.detach(), s[n]):
                raise CheckFailure(f"layer_drift changed {which}.{n}.")
