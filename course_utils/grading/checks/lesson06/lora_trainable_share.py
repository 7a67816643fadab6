"""Checks of 06.lora_trainable_share: LoRA's share of a BERT's parameters, by
formula."""
from __future__ import annotations

import math

from ...asserts import CheckFailure, as_number, call
from ...registry import question
from ._common import _not_judged, _num, _parts, bert_config


TITLE = "LoRA's share of a BERT's parameters, by formula"
q = question("06.lora_trainable_share", TITLE,
             answers=["lora_trainable_share"], timeout=5)

TARGETS = ("query", "key", "value", "intermediate.dense")


def _shapes(config) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of the Linear layers LoRA may target, per layer."""
    d, f = config.hidden_size, config.intermediate_size
    return {"query": (d, d), "key": (d, d), "value": (d, d),
            "intermediate.dense": (d, f)}


def bert_parameters(config, pooler: bool = True, parts: tuple = ()) -> int:
    """Parameters of transformers' BertModel(config), counted by formula. ``parts``
    leaves out what a typical mistake forgets: "positions", "types", "layernorm",
    "biases", "pooler", "ffn_square"."""
    d, f, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    V, P, S = config.vocab_size, config.max_position_embeddings, config.type_vocab_size
    bias = 0 if "biases" in parts else 1
    norm = 0 if "layernorm" in parts else 2 * d  # a gain and a shift
    embeddings = V * d + (0 if "positions" in parts else P * d) + (
        0 if "types" in parts else S * d) + norm
    ffn = f if "ffn_square" not in parts else d
    attention = 4 * (d * d + bias * d) + norm  # query, key, value, output; LayerNorm
    feed_forward = (d * ffn + bias * ffn) + (ffn * d + bias * d) + norm
    head = d * d + bias * d if pooler and "pooler" not in parts else 0
    return embeddings + L * (attention + feed_forward) + head


def lora_parameters(config, r: int, target_modules, per_layer: bool = True,
                    rule: str = "both") -> int:
    """LoRA's parameters: A (r, in) and B (out, r) for every targeted Linear of every
    layer. ``rule`` and ``per_layer`` switch on typical mistakes."""
    shapes = _shapes(config)
    total = 0
    for t in target_modules:
        k, d = shapes[t]
        total += {"both": r * (k + d), "in": r * k, "out": r * d,
                  "bias": r * (k + d) + d}[rule]
    return total * (config.num_hidden_layers if per_layer else 1)


def reference_lora_trainable_share(config, r, target_modules) -> tuple[int, float]:
    """(LoRA's parameters, their share of all the parameters of the LoRA model), as
    peft's print_trainable_parameters reports them."""
    lora = lora_parameters(config, r, target_modules)
    return lora, lora / (bert_parameters(config) + lora)


def _config(case: str):
    if case == "minilm":  # all-MiniLM-L6-v2's sizes
        return bert_config(hidden=384, layers=6, heads=12, ffn=1536, vocab=30522,
                           positions=512)
    if case == "tiny":
        return bert_config(hidden=16, layers=2, heads=2, ffn=64, vocab=100,
                           positions=32)
    return bert_config(hidden=32, layers=3, heads=4, ffn=40, vocab=1000, positions=64,
                       type_vocab=3)


def _what(config, r, targets) -> str:
    c = config
    return (f"lora_trainable_share(config, r={r}, target_modules={list(targets)!r}) "
            f"for a BertModel of hidden size {c.hidden_size}, {c.num_hidden_layers} "
            f"layers, ffn {c.intermediate_size}, vocabulary {c.vocab_size}, "
            f"{c.max_position_embeddings} positions, {c.type_vocab_size} token types")


def _answer(fn, config, r, targets) -> tuple[float, float]:
    got = call(fn, config, r, list(targets), check_mutation=False,
               name="lora_trainable_share")
    lora, share = _parts(got, ("lora_params", "share"), "lora_trainable_share")
    what = _what(config, r, targets)
    return (as_number(lora, f"the LoRA parameters of {what}"),
            as_number(share, f"the share of {what}"))


def _expect(fn, case, r, targets) -> None:
    config = _config(case)
    lora, share = _answer(fn, config, r, targets)
    ref_lora, ref_share = reference_lora_trainable_share(config, r, targets)
    what = _what(config, r, targets)
    if lora != ref_lora:
        raise CheckFailure(f"{what}: {lora:,.0f} LoRA parameters, expected "
                           f"{ref_lora:,}.")
    if not math.isclose(share, ref_share, rel_tol=1e-9):
        raise CheckFailure(f"{what}: a share of {_num(share)}, expected "
                           f"{_num(ref_share)}.")


_HINT = ("LoRA trains, for each targeted Linear of each layer, an A of r rows by the "
         "layer's inputs and a B of the layer's outputs by r columns (no bias); the "
         "share divides them by all the parameters of the model with LoRA: BertModel's "
         "own (embeddings, layers, pooler, every bias and LayerNorm) plus LoRA's.")


@q.case("all-MiniLM-L6-v2's sizes, r = 8 on query and value", kind="core", hint=_HINT)
def _(lora_trainable_share):
    _expect(lora_trainable_share, "minilm", 8, ["query", "value"])


@q.case("a tiny BERT, r = 2 on query, key, value and intermediate.dense",
        kind="core", hint=_HINT)
def _(lora_trainable_share):
    _expect(lora_trainable_share, "tiny", 2, list(TARGETS))


@q.case("3 layers, 3 token types, r = 4 on value and intermediate.dense", kind="core",
        hint=_HINT)
def _(lora_trainable_share):
    _expect(lora_trainable_share, "other", 4, ["value", "intermediate.dense"])


def _lora_mistake(fn, variants, case="other", r=4,
                  targets=("key", "intermediate.dense")):
    """Right LoRA count: pass; one of ``variants`` ({message: keywords of
    lora_parameters}): fail with its message; anything else: a plain failure."""
    config = _config(case)
    lora, _ = _answer(fn, config, r, targets)
    expected = lora_parameters(config, r, targets)
    if lora == expected:
        return
    for message, keywords in variants.items():
        if lora == lora_parameters(config, r, targets, **keywords):
            raise CheckFailure(f"{_what(config, r, targets)}: {lora:,.0f} LoRA "
                               f"parameters, expected {expected:,}: {message}")
    raise CheckFailure(f"{_what(config, r, targets)}: {lora:,.0f} LoRA parameters, "
                       f"expected {expected:,}.", basic=True)


@q.case("A and B both count: r (inputs + outputs) per targeted layer",
        hint="The low-rank update is the product of two trained matrices, A with r "
             "rows and B with r columns; count both, each with the size of its side "
             "of the layer (intermediate.dense has different sides).")
def _(lora_trainable_share):
    _lora_mistake(lora_trainable_share, {
        "only A (r x inputs) is counted.": dict(rule="in"),
        "only B (outputs x r) is counted.": dict(rule="out"),
        "a bias per targeted layer is counted, and LoRA's matrices have none.":
            dict(rule="bias")})


@q.case("every layer has its own adapters",
        hint="target_modules names a layer TYPE: the query of layer 0, of layer 1, ... "
             "each get their own A and B.")
def _(lora_trainable_share):
    _lora_mistake(lora_trainable_share, {
        "the adapters of one layer only; every layer has its own.":
            dict(per_layer=False)})


@q.case("a share, not a percent",
        hint="Return the fraction (about 0.003 for MiniLM with r = 8 on query and "
             "value); peft prints it as a percent, 100 times larger.")
def _(lora_trainable_share):
    config, r, targets = _config("tiny"), 2, ["query"]
    _, share = _answer(lora_trainable_share, config, r, targets)
    _, expected = reference_lora_trainable_share(config, r, targets)
    if math.isclose(share, expected, rel_tol=1e-9):
        return
    if math.isclose(share, 100 * expected, rel_tol=1e-6):
        raise CheckFailure(f"{_what(config, r, targets)}: a share of {_num(share)}, a "
                           "percent; expected the fraction.")
    _plain_share(share, expected, config, r, targets)


def _plain_share(share, expected, config, r, targets) -> None:
    """A wrong share that is not the case's mistake: a basic failure, no hint."""
    raise CheckFailure(f"{_what(config, r, targets)}: a share of {_num(share)}, "
                       f"expected {_num(expected)}.", basic=True)


@q.case("the share of ALL the parameters, LoRA's included",
        hint="peft's trainable share divides the trainable parameters by all the "
             "parameters of the adapted model: the frozen base AND the adapters.")
def _(lora_trainable_share):
    config, r, targets = _config("tiny"), 4, ["query", "value"]
    lora, share = _answer(lora_trainable_share, config, r, targets)
    ref_lora, expected = reference_lora_trainable_share(config, r, targets)
    if math.isclose(share, expected, rel_tol=1e-9):
        return
    if lora != ref_lora:
        raise _not_judged()
    if math.isclose(share, lora / bert_parameters(config), rel_tol=1e-9):
        raise CheckFailure(f"{_what(config, r, targets)}: the share {_num(share)} "
                           "divides by the base model's parameters only.")
    _plain_share(share, expected, config, r, targets)


@q.case("BertModel's count: embeddings, layers and pooler, biases and LayerNorms",
        hint="Count what BertModel builds: word, position and token-type embeddings "
             "and their LayerNorm; per layer four d x d attention Linears, the "
             "feed-forward pair through intermediate_size, two LayerNorms, every bias; "
             "and the pooler's d x d Linear.")
def _(lora_trainable_share):
    config, r, targets = _config("other"), 2, ["query"]
    lora, share = _answer(lora_trainable_share, config, r, targets)
    ref_lora, expected = reference_lora_trainable_share(config, r, targets)
    if math.isclose(share, expected, rel_tol=1e-9):
        return
    if lora != ref_lora:
        raise _not_judged()
    forgotten = {"positions": "leaves out the position embeddings",
                 "types": "leaves out the token-type embeddings",
                 "layernorm": "leaves out the LayerNorms",
                 "biases": "leaves out the biases", "pooler": "leaves out the pooler",
                 "ffn_square": "counts the feed-forward Linears as d x d, not through "
                               "intermediate_size"}
    for part, how in forgotten.items():
        total = bert_parameters(config, parts=(part,))
        if math.isclose(share, ref_lora / (total + ref_lora), rel_tol=1e-9):
            raise CheckFailure(f"{_what(config, r, targets)}: the share {_num(share)} "
                               f"{how} of the model's count.")
    _plain_share(share, expected, config, r, targets)
