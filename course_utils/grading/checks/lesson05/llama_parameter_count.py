"""Checks of 05.llama_parameter_count: The parameter count of a Llama from its sizes."""
from __future__ import annotations

import numbers

import torch
from torch import nn

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question


q = question("05.llama_parameter_count",
             "The parameter count of a Llama from its sizes",
             answers=["llama_parameter_count"], timeout=10)


class LlamaBlock(nn.Module):
    """Llama's block: RMSNorm, grouped-query attention without biases (RoPE adds no
    parameters), RMSNorm, the SwiGLU MLP down(silu(gate(x)) * up(x))."""

    def __init__(self, d_model, n_head, n_kv_head, d_ff):
        super().__init__()
        d_k = d_model // n_head
        self.attention_norm = nn.RMSNorm(d_model)
        self.wq = nn.Linear(d_model, n_head * d_k, bias=False)
        self.wk = nn.Linear(d_model, n_kv_head * d_k, bias=False)
        self.wv = nn.Linear(d_model, n_kv_head * d_k, bias=False)
        self.wo = nn.Linear(n_head * d_k, d_model, bias=False)
        self.ffn_norm = nn.RMSNorm(d_model)
        self.gate = nn.Linear(d_model, d_ff, bias=False)
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)


class Llama(nn.Module):
    """Token embedding, n_layer blocks, a final RMSNorm and a head without bias, tied
    (the same Parameter) to the token embedding when ``tied``. Built only to be counted,
    on the meta device (no memory, no initialisation)."""

    def __init__(self, vocab_size, n_layer, n_head, n_kv_head, d_model, d_ff, tied):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(LlamaBlock(d_model, n_head, n_kv_head, d_ff)
                                    for _ in range(n_layer))
        self.norm = nn.RMSNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size, bias=False)
        if tied:
            self.output.weight = self.tok_embeddings.weight


def reference_llama_parameter_count(vocab_size, n_layer, n_head, n_kv_head, d_model,
                                    d_ff, tied=False) -> int:
    """sum(p.numel()) over the parameters of a real model (a tied weight once)."""
    with torch.device("meta"):
        model = Llama(vocab_size, n_layer, n_head, n_kv_head, d_model, d_ff, tied)
    return sum(p.numel() for p in model.parameters())


def mistaken_count(vocab_size, n_layer, n_head, n_kv_head, d_model, d_ff, tied=False,
                   full_kv=False, two_matrices=False, norm_bias=False, no_norms=False,
                   no_final_norm=False, tied_twice=False, no_head=False,
                   per_head=False) -> int:
    """The count by a formula with one typical mistake switched on."""
    C, d_k = d_model, d_model // n_head
    kv = C if full_kv else n_kv_head * d_k
    attention = (2 * C * C + 2 * C * kv) * (n_head if per_head else 1)
    mlp = (2 if two_matrices else 3) * C * d_ff
    norm = 0 if no_norms else (2 * C if norm_bias else C)
    head = 0 if (tied and not tied_twice) or no_head else vocab_size * C
    return (vocab_size * C + n_layer * (2 * norm + attention + mlp)
            + (0 if no_final_norm else norm) + head)


SIZES = ("vocab_size", "n_layer", "n_head", "n_kv_head", "d_model", "d_ff", "tied")


def _what(config) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in zip(SIZES, config))
    return f"llama_parameter_count({shown})"


def _answer(fn, config) -> float:
    got = call(fn, *config, check_mutation=False, name="llama_parameter_count")
    return as_number(got, _what(config))


def _expect(fn, config, mistakes=None):
    """The count against a real model's (a core case), or also against ``mistakes``
    ({message: keywords of mistaken_count}) in a mistake case."""
    got = _answer(fn, config)
    expected = reference_llama_parameter_count(*config)
    if got == expected:
        return
    for told, keywords in (mistakes or {}).items():
        if got == mistaken_count(*config, **keywords):
            raise CheckFailure(f"{_what(config)} returned {got:,.0f}, expected "
                               f"{expected:,}: {told}")
    raise CheckFailure(f"{_what(config)} returned {got:,.15g}, expected {expected:,} "
                       f"(off by {got - expected:+,.15g}).", basic=mistakes is not None)


_HINT = ("Count every weight matrix and vector of the model described: the token "
         "embedding, per block two RMSNorms, the attention's four projections (the "
         "keys and values only n_kv_head heads wide) and the MLP's three matrices, the "
         "final RMSNorm, and the head unless it is tied. Check your formula against "
         "sum(p.numel() for p in model.parameters()) of a small model you build.")

LLAMA2_7B = (32000, 32, 32, 32, 4096, 11008, False)
LLAMA3_8B = (128256, 32, 32, 8, 4096, 14336, False)


@q.case("Llama 2 7B: 32000, 32 layers, 32 heads, 32 kv heads, 4096, 11008, untied",
        kind="core", hint=_HINT)
def _(llama_parameter_count):
    _expect(llama_parameter_count, LLAMA2_7B)


@q.case("Llama 3 8B: 128256, 32 layers, 32 heads, 8 kv heads, 4096, 14336, untied",
        kind="core", hint=_HINT)
def _(llama_parameter_count):
    _expect(llama_parameter_count, LLAMA3_8B)


@q.case("a tiny model: 11, 2 layers, 4 heads, 2 kv heads, 16, 40, tied", kind="core",
        hint=_HINT)
def _(llama_parameter_count):
    _expect(llama_parameter_count, (11, 2, 4, 2, 16, 40, True))


@q.case("the keys and values are n_kv_head heads wide",
        hint="With grouped-query attention the key and value projections produce "
             "n_kv_head heads of d_model / n_head each, not d_model columns; the "
             "queries and the output projection stay d_model x d_model.")
def _(llama_parameter_count):
    _expect(llama_parameter_count, (13, 2, 8, 2, 32, 48, False), {
        "the key and value projections were counted d_model x d_model, as if "
        "n_kv_head = n_head.": dict(full_kv=True)})


@q.case("the SwiGLU MLP has three matrices",
        hint="SwiGLU multiplies two projections of x, silu(gate(x)) * up(x), before "
             "projecting down: three d_model x d_ff matrices, not the two of GPT's "
             "MLP.")
def _(llama_parameter_count):
    _expect(llama_parameter_count, (13, 2, 4, 2, 16, 44, False), {
        "the MLP was counted with two matrices, as GPT's, not SwiGLU's three.":
            dict(two_matrices=True)})


@q.case("an RMSNorm has a gain and no bias; two per block and a final one",
        hint="RMSNorm divides by the root mean square and multiplies by a learned gain "
             "of d_model numbers; it has no bias (nor a mean to subtract). Each block "
             "has two, and one more follows the last block.")
def _(llama_parameter_count):
    _expect(llama_parameter_count, (17, 3, 4, 4, 16, 24, False), {
        "each RMSNorm was counted with a bias, like a LayerNorm.": dict(norm_bias=True),
        "the RMSNorms were not counted.": dict(no_norms=True),
        "the final RMSNorm (after the last block) was not counted.":
            dict(no_final_norm=True)})


@q.case("the head: its own matrix when untied, nothing when tied",
        hint="An untied head is a (vocab_size, d_model) matrix of its own; a tied one "
             "is the token embedding itself (one Parameter, which model.parameters() "
             "lists once).")
def _(llama_parameter_count):
    for config in ((19, 2, 2, 1, 8, 20, True), (19, 2, 2, 1, 8, 20, False)):
        _expect(llama_parameter_count, config, {
            "the tied head was counted as a matrix of its own, in addition to the "
            "token embedding.": dict(tied_twice=True),
            "the untied head (vocab_size x d_model) was not counted.":
                dict(no_head=True)})


@q.case("the heads split d_model; they add no parameters",
        hint="The heads split the columns of the projections into groups of d_model / "
             "n_head: the matrices are the same size whatever the number of heads.")
def _(llama_parameter_count):
    _expect(llama_parameter_count, (17, 2, 4, 4, 16, 32, False), {
        "the attention's projections were counted once per head, as if every head "
        "had full-size matrices.": dict(per_head=True)})


@q.case("returns a Python int", kind="property",
        hint="A parameter count is a whole number: return an int (no float, no "
             "tensor).")
def _(llama_parameter_count):
    config = (7, 1, 2, 1, 4, 8, True)
    got = call(llama_parameter_count, *config, name="llama_parameter_count")
    as_number(got, _what(config))  # None, a string: a basic failure
    if not isinstance(got, numbers.Integral) or isinstance(got, bool):
        raise CheckFailure(f"{_what(config)} returned {_short(got)}, a "
                           f"{type(got).__name__}; expected an int.")
