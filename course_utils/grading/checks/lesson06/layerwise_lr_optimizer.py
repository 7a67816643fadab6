"""Checks of 06.layerwise_lr_optimizer: AdamW with layer-wise learning rates."""
from __future__ import annotations

import math

import torch

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _basic, _num, describe_model, tiny_classifier


q = question("06.layerwise_lr_optimizer", "AdamW with layer-wise learning rates",
             answers=["layerwise_lr_optimizer"], timeout=10)


def _depth_rate(name: str, L: int, lr: float, decay: float, shift: int = 0,
                flat: bool = False, embeddings_as_layer0: bool = False) -> float:
    """The rate of parameter ``name`` of a BertForSequenceClassification with L layers:
    the head (pooler, classifier) at lr, layer k at lr decay^(L - k), the embeddings
    at lr decay^(L + 1). The keywords switch on typical mistakes."""
    if name.startswith("bert.embeddings."):
        if flat:
            return lr * decay
        return lr * decay ** (L - shift + (0 if embeddings_as_layer0 else 1))
    if name.startswith("bert.encoder.layer."):
        k = int(name.split(".")[3])
        return lr * decay if flat else lr * decay ** (L - k - shift)
    return lr


def settings(model, lr, decay, weight_decay, decay_vectors=False,
             **mistake) -> dict[str, tuple[float, float]]:
    """{parameter name: (rate, weight decay)}: the reference, or a typical mistake."""
    L = model.config.num_hidden_layers
    return {name: (_depth_rate(name, L, lr, decay, **mistake),
                   weight_decay if (p.ndim >= 2 or decay_vectors) else 0.0)
            for name, p in model.named_parameters()}


def _what(model, lr, decay, weight_decay) -> str:
    return (f"layerwise_lr_optimizer(model, lr={lr:g}, decay={decay:g}, "
            f"weight_decay={weight_decay:g}) on a {describe_model(model)}")


def _answer(fn, model, lr, decay, weight_decay):
    """(optimizer, {name: (rate, weight decay)} read from its groups)."""
    what = _what(model, lr, decay, weight_decay)
    got = call(fn, model, lr, decay, weight_decay, check_mutation=False,
               name="layerwise_lr_optimizer")
    if got is None:
        raise _basic(f"{what} returned None: return the optimizer.", problem="none")
    if not isinstance(got, torch.optim.Optimizer):
        raise _basic(f"{what} returned {_short(got)}; expected a torch.optim.AdamW.",
                     problem="type")
    table, missing, twice = {}, [], []
    for name, p in model.named_parameters():
        groups = [g for g in got.param_groups if any(q is p for q in g["params"])]
        if not groups:
            missing.append(name)
        elif len(groups) > 1:
            twice.append(name)
        else:
            table[name] = (float(groups[0]["lr"]), float(groups[0]["weight_decay"]))
    if missing or twice:
        said = ([f"{len(missing)} parameters are in no group (first: {missing[0]})"]
                if missing else []) + (
            [f"{len(twice)} are in several (first: {twice[0]})"] if twice else [])
        raise _basic(f"{what}: {'; '.join(said)}. Every parameter of the model belongs "
                     "to exactly one group.", problem="type")
    return got, table


def _same(table, expected) -> bool:
    return all(math.isclose(table[n][0], expected[n][0], rel_tol=1e-9)
               and math.isclose(table[n][1], expected[n][1], rel_tol=1e-9,
                                abs_tol=1e-15) for n in expected)


def _differences(table, expected, limit: int = 5) -> str:
    lines = []
    for n, (rate, wd) in expected.items():
        got_rate, got_wd = table[n]
        if not math.isclose(got_rate, rate, rel_tol=1e-9):
            lines.append(f"{n}: lr {_num(got_rate)}, expected {_num(rate)}")
        elif not math.isclose(got_wd, wd, rel_tol=1e-9, abs_tol=1e-15):
            lines.append(f"{n}: weight_decay {_num(got_wd)}, expected {_num(wd)}")
    more = f"\n(and {len(lines) - limit} more)" if len(lines) > limit else ""
    return "\n- " + "\n- ".join(lines[:limit]) + more


def _decoupled(optimizer) -> bool:
    return isinstance(optimizer, torch.optim.AdamW) or all(
        g.get("decoupled_weight_decay", False) for g in optimizer.param_groups)


def _expect(fn, model, lr, decay, weight_decay) -> None:
    optimizer, table = _answer(fn, model, lr, decay, weight_decay)
    expected = settings(model, lr, decay, weight_decay)
    what = _what(model, lr, decay, weight_decay)
    if not _same(table, expected):
        raise CheckFailure(f"{what}: some parameters have the wrong settings:"
                           + _differences(table, expected))
    if not _decoupled(optimizer):
        raise CheckFailure(f"{what} returned {_short(optimizer)}, whose weight decay "
                           "is an L2 term in the gradient; expected torch.optim.AdamW.")


_HINT = ("Give the head (the pooler and the classifier) the rate lr, encoder layer k "
         "of L the rate lr times decay to the power of its distance from the head "
         "(L - k), the embeddings one step further down; weight decay on the weight "
         "matrices and embedding tables, none on the vectors (biases, LayerNorm "
         "weights); one group per (rate, weight decay) pair, in a torch.optim.AdamW.")


@q.case("3 layers, lr 1e-3, decay 0.9, weight_decay 0.01", kind="core", hint=_HINT)
def _(layerwise_lr_optimizer):
    _expect(layerwise_lr_optimizer, tiny_classifier(0, layers=3), 1e-3, 0.9, 0.01)


@q.case("4 layers, lr 5e-4, decay 0.8, weight_decay 0.1", kind="core", hint=_HINT)
def _(layerwise_lr_optimizer):
    _expect(layerwise_lr_optimizer, tiny_classifier(1, layers=4, hidden=12, heads=3,
                                                    ffn=24), 5e-4, 0.8, 0.1)


@q.case("2 layers, lr 2e-3, decay 0.5, weight_decay 0.05", kind="core", hint=_HINT)
def _(layerwise_lr_optimizer):
    _expect(layerwise_lr_optimizer, tiny_classifier(2, layers=2), 2e-3, 0.5, 0.05)


def _mistake(fn, mistake, message, seed, layers=3) -> None:
    """Right: pass; the table of ``mistake`` (keywords of ``settings``): fail with
    ``message``; anything else: a plain failure."""
    model = tiny_classifier(seed, layers=layers)
    lr, decay, wd = 1e-3, 0.7, 0.02
    _, table = _answer(fn, model, lr, decay, wd)
    expected = settings(model, lr, decay, wd)
    if _same(table, expected):
        return
    if _same(table, settings(model, lr, decay, wd, **mistake)):
        raise CheckFailure(f"{_what(model, lr, decay, wd)}: {message}")
    raise CheckFailure(f"{_what(model, lr, decay, wd)}: some parameters have the wrong "
                       "settings:" + _differences(table, expected), basic=True)


@q.case("the top layer is one step below the head",
        hint="Count the distance from the head: the top encoder layer (k = L - 1) is "
             "one step away and gets lr times decay; only the head itself trains at "
             "lr.")
def _(layerwise_lr_optimizer):
    _mistake(layerwise_lr_optimizer, {"shift": 1}, "the top encoder layer trains "
                   "at lr, the head's rate: every layer is one step too close to the "
                   "head.", 3)


@q.case("the embeddings sit one step below layer 0",
        hint="The embeddings are under the first encoder layer: their distance from "
             "the head is L + 1, one more than layer 0's.")
def _(layerwise_lr_optimizer):
    _mistake(layerwise_lr_optimizer, {"embeddings_as_layer0": True},
                   "the embeddings get the rate of encoder layer 0.", 4)


@q.case("the rate decays layer by layer (not one rate for the encoder)",
        hint="A single lower rate for the whole encoder is the simplest discriminative "
             "fine-tuning; here every layer gets its own rate, decay times the rate of "
             "the layer above it.")
def _(layerwise_lr_optimizer):
    _mistake(layerwise_lr_optimizer, {"flat": True}, "the embeddings and every "
                   "encoder layer share the rate lr x decay.", 5)


@q.case("no weight decay on biases and LayerNorm weights",
        hint="Weight decay pulls weights toward 0: that regularises a matrix, but a "
             "LayerNorm gain pulled to 0 switches its features off, and biases need no "
             "shrinking. Give the parameters with one dimension a weight decay of 0.")
def _(layerwise_lr_optimizer):
    _mistake(layerwise_lr_optimizer, {"decay_vectors": True}, "the biases and "
                   "LayerNorm weights are decayed too.", 6)


@q.case("AdamW's decoupled weight decay, not Adam's L2",
        hint="torch.optim.Adam's weight_decay adds lambda w to the gradient, which "
             "Adam's per-parameter scaling then distorts; AdamW decays the weights "
             "directly (Loshchilov & Hutter). Build a torch.optim.AdamW.")
def _(layerwise_lr_optimizer):
    model = tiny_classifier(7, layers=2)
    optimizer, _ = _answer(layerwise_lr_optimizer, model, 1e-3, 0.9, 0.01)
    if not _decoupled(optimizer):
        raise CheckFailure(f"{_what(model, 1e-3, 0.9, 0.01)} returned "
                           f"{type(optimizer).__name__}, whose weight decay is an L2 "
                           "term added to the gradient.")


@q.case("steps the model's own parameters", kind="property",
        hint="Put the model's Parameter objects themselves into the groups (not "
             "copies), so that optimizer.step() moves the model.")
def _(layerwise_lr_optimizer):
    model = tiny_classifier(8, layers=2)
    optimizer, _ = _answer(layerwise_lr_optimizer, model, 1e-3, 0.9, 0.01)
    before = model.classifier.weight.detach().clone()
    model.zero_grad()
    out = model(input_ids=torch.tensor([[3, 5, 7]])).logits  # (1, 2)
    out.sum().backward()
    optimizer.step()
    if torch.equal(model.classifier.weight.detach(), before):
        raise CheckFailure("after a backward and optimizer.step(), the classifier's "
                           "weight did not move.")
