"""Checks of 07.quantized_size: The bytes of a model with its 2-D weights quantized."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import _basic, seeded


q = question("07.quantized_size", "The bytes of a model with its 2-D weights quantized",
             answers=["quantized_size"], timeout=5)

SCALE_BYTES = 2  # one float16 scale per group


def is_quantized(name: str, tensor: torch.Tensor) -> bool:
    """Is this entry one the question quantizes: a floating "weight" with two axes (the
    weight of an nn.Linear or an nn.Embedding)?"""
    return (name.split(".")[-1] == "weight" and tensor.ndim == 2
            and tensor.is_floating_point())


def reference_quantized_size(state_dict, bits: int, group_size: int) -> int:
    """Bytes of the state_dict with every 2-D floating weight quantized to ``bits`` per
    value, packed row by row (ceil(n bits / 8) bytes a row of n values), with one
    float16 scale per group of ``group_size`` values of a row (the last group of a row
    may be shorter); every other tensor at its own element size."""
    total = 0
    for name, t in state_dict.items():
        if is_quantized(name, t):
            rows, n = t.shape
            total += rows * (math.ceil(n * bits / 8)
                             + SCALE_BYTES * math.ceil(n / group_size))
        else:
            total += t.numel() * t.element_size()
    return total


def _rows(t: torch.Tensor, how: str) -> tuple[int, int]:
    """(rows, row length) of a tensor seen as a matrix: "first" keeps the first axis
    (a vector is one row), "each" keeps it for a vector too (a row per entry), "last"
    keeps the last axis."""
    if t.ndim == 0:
        return 1, 1
    if how == "last" or (how == "first" and t.ndim == 1):
        return t.numel() // t.shape[-1], t.shape[-1]
    return t.shape[0], t.numel() // t.shape[0]


def mistaken_sizes(state_dict, bits: int, group_size: int) -> dict[str, int]:
    """The totals of typical mistakes, by name ("every floating tensor" under three ways
    of seeing a tensor as rows: "every floating tensor", "... (each)", "... (last)")."""
    def total(values, scales, which=is_quantized, how="first"):
        out = 0
        for name, t in state_dict.items():
            if which(name, t):
                rows, n = _rows(t, how)
                out += values(rows, n) + rows * scales(n)
            else:
                out += t.numel() * t.element_size()
        return out

    packed = lambda rows, n: rows * math.ceil(n * bits / 8)  # noqa: E731
    scales = lambda n: SCALE_BYTES * math.ceil(n / group_size)  # noqa: E731
    floats = lambda name, t: t.is_floating_point()  # noqa: E731
    named = lambda name, t: (name.split(".")[-1] == "weight"  # noqa: E731
                             and t.is_floating_point())
    return {
        "no scales": total(packed, lambda n: 0),
        "a byte a value": total(lambda rows, n: rows * n, scales),
        "float32 scales": total(packed, lambda n: 4 * math.ceil(n / group_size)),
        "floor groups": total(packed, lambda n: SCALE_BYTES * (n // group_size)),
        "groups over the tensor": total(
            lambda rows, n: (rows * math.ceil(n * bits / 8)
                             + SCALE_BYTES * math.ceil(rows * n / group_size)),
            lambda n: 0),
        "packed over the tensor": total(lambda rows, n: math.ceil(rows * n * bits / 8),
                                        scales),
        "every floating tensor": total(packed, scales, floats),
        "every floating tensor (each)": total(packed, scales, floats, "each"),
        "every floating tensor (last)": total(packed, scales, floats, "last"),
        "every weight": total(packed, scales, named),
        "every weight (each)": total(packed, scales, named, "each"),
        "every weight (last)": total(packed, scales, named, "last"),
        "others at float32": reference_quantized_size(
            {k: (v if is_quantized(k, v) else v.float()) for k, v in
             state_dict.items()}, bits, group_size),
    }


# ------------------------------------------------------------ the models of the cases
def mlp(vocab=200, d=64, hidden=48, classes=10, dtype=torch.float32) -> nn.Module:
    """An embedding, two Linear layers with a LayerNorm between: a tiny classifier."""
    return seeded(0, lambda: nn.Sequential(
        nn.Embedding(vocab, d), nn.Linear(d, hidden), nn.LayerNorm(hidden),
        nn.Linear(hidden, classes))).to(dtype)


def cnn(channels=16, classes=33, dtype=torch.float32) -> nn.Module:
    """A convolution (4-D weight, not quantized), a BatchNorm with its buffers (one of
    them an int64 counter), and a Linear head."""
    model = seeded(1, lambda: nn.Sequential(
        nn.Conv2d(3, channels, 3), nn.BatchNorm2d(channels), nn.Flatten(),
        nn.Linear(channels * 4, classes)))
    return model.to(dtype)


class Block(nn.Module):
    """A Transformer-like block: an embedding, an odd-width projection, an MLP."""

    def __init__(self, vocab=300, d=96, ffn=288, odd=75):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.norm = nn.LayerNorm(d)
        self.up = nn.Linear(d, ffn)
        self.down = nn.Linear(ffn, d, bias=False)
        self.odd = nn.Linear(odd, 20)


def block() -> nn.Module:
    return seeded(2, Block)


def _what(state_dict, bits, group_size, name) -> str:
    return (f"quantized_size({name}.state_dict() ({len(state_dict)} tensors), "
            f"bits={bits}, group_size={group_size})")


def _answer(fn, model, bits, group_size, name) -> int:
    """The answer on a copy of the state_dict, checked to be a whole number."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    got = call(fn, sd, bits, group_size, check_mutation=False, name="quantized_size")
    what = _what(sd, bits, group_size, name)
    value = as_number(got, what)
    if not math.isfinite(value) or value != round(value):
        raise _basic(f"{what} returned {_short(got)}; a number of bytes is a whole "
                     "number.", problem="type")
    return int(round(value))


def _expect(fn, model, bits, group_size, name) -> None:
    got = _answer(fn, model, bits, group_size, name)
    ref = reference_quantized_size(model.state_dict(), bits, group_size)
    if got != ref:
        raise CheckFailure(f"{_what(model.state_dict(), bits, group_size, name)} "
                           f"returned {got:,} bytes, expected {ref:,}.")


_HINT = ("Go through the state_dict entry by entry: a 2-D floating weight costs its "
         "packed values, row by row, and the float16 scales of its groups; every other "
         "tensor costs its number of entries times the size of its dtype.")


@q.case("a tiny text classifier (float32), 8 bits, groups of 32", kind="core",
        hint=_HINT)
def _(quantized_size):
    _expect(quantized_size, mlp(), 8, 32, "mlp")


@q.case("a Transformer-like block with a row of odd length (float32), 4 bits, "
        "groups of 128", kind="core", hint=_HINT)
def _(quantized_size):
    _expect(quantized_size, block(), 4, 128, "block")


@q.case("a float16 CNN with a BatchNorm (conv weights stay float16), 4 bits, "
        "groups of 64", kind="core", hint=_HINT)
def _(quantized_size):
    _expect(quantized_size, cnn(dtype=torch.float16), 4, 64, "cnn")


def _judge(fn, key, message, model, bits, group_size, name) -> None:
    """Right: pass. The total of mistake ``key``: fail with ``message``. Anything else:
    a plain mismatch (no hint)."""
    got = _answer(fn, model, bits, group_size, name)
    sd = model.state_dict()
    ref = reference_quantized_size(sd, bits, group_size)
    if got == ref:
        return
    what = _what(sd, bits, group_size, name)
    if got == mistaken_sizes(sd, bits, group_size)[key]:
        raise CheckFailure(f"{what} returned {got:,} bytes, expected {ref:,}: "
                           f"{message}")
    raise CheckFailure(f"{what} returned {got:,} bytes, expected {ref:,}.", basic=True)


@q.case("the scales take space too",
        hint="A quantized weight is useless without its scales: each group of a row "
             "stores one float16 scale, 2 bytes, next to its packed values. With small "
             "groups they are a good part of the size.")
def _(quantized_size):
    _judge(quantized_size, "no scales", "the float16 scales of the groups are not "
           "counted.", mlp(), 4, 16, "mlp")


@q.case("two 4-bit values share a byte",
        hint="At 4 bits two values fit in one byte: a row of n values takes n / 2 "
             "bytes, rounded up; only at 8 bits does a value take a whole byte.")
def _(quantized_size):
    _judge(quantized_size, "a byte a value", "at 4 bits each value is counted as a "
           "whole byte.", mlp(), 4, 32, "mlp")


@q.case("only 2-D weights are quantized: biases, LayerNorms and convolutions keep "
        "their dtype",
        hint="The question quantizes the 2-D weights, those of nn.Linear and "
             "nn.Embedding; a bias, a LayerNorm's gain and shift and a 4-D convolution "
             "weight are stored as they are (they are few, and sensitive).")
def _(quantized_size):
    model = cnn()
    sd = model.state_dict()
    got = _answer(quantized_size, model, 4, 64, "cnn")
    ref = reference_quantized_size(sd, 4, 64)
    if got == ref:
        return
    wrong = mistaken_sizes(sd, 4, 64)
    what = _what(sd, 4, 64, "cnn")
    if got in (wrong["every floating tensor"], wrong["every floating tensor (each)"],
               wrong["every floating tensor (last)"]):
        raise CheckFailure(f"{what} returned {got:,} bytes, expected {ref:,}: every "
                           "floating tensor (biases, BatchNorm statistics, the 4-D "
                           "convolution weight) is counted as quantized.")
    if got in (wrong["every weight"], wrong["every weight (each)"],
               wrong["every weight (last)"]):
        raise CheckFailure(f"{what} returned {got:,} bytes, expected {ref:,}: every "
                           "entry named weight is counted as quantized, whatever its "
                           "number of axes (the BatchNorm's 1-D weight, the 4-D "
                           "convolution weight).")
    raise CheckFailure(f"{what} returned {got:,} bytes, expected {ref:,}.", basic=True)


@q.case("a scale is a float16, 2 bytes",
        hint="The question stores each scale as a float16 (2 bytes), not as the "
             "float32 the model computes in.")
def _(quantized_size):
    _judge(quantized_size, "float32 scales", "each scale is counted as 4 bytes "
           "(float32).", block(), 8, 32, "block")


@q.case("a shorter last group has a scale too",
        hint="Groups are counted row by row, and a group never runs on into the next "
             "row: when group_size does not divide the row, the values left over form "
             "one more, shorter group, with its own scale. The number of groups of a "
             "row is rounded up, not down.")
def _(quantized_size):
    sd = block().state_dict()
    if _answer(quantized_size, block(), 8, 40, "block") == mistaken_sizes(
            sd, 8, 40)["groups over the tensor"]:
        raise CheckFailure(f"{_what(sd, 8, 40, 'block')} returned "
                           f"{mistaken_sizes(sd, 8, 40)['groups over the tensor']:,} "
                           f"bytes, expected {reference_quantized_size(sd, 8, 40):,}: "
                           "the groups are counted over the whole tensor, as if a "
                           "group could run on from one row into the next.")
    _judge(quantized_size, "floor groups", "the last, shorter group of a row has no "
           "scale (the number of groups is rounded down).", block(), 8, 40, "block")


@q.case("each row is packed on its own",
        hint="A row of odd length at 4 bits ends with half a byte; the next row starts "
             "on a fresh byte, so that every row can be read on its own. Round up row "
             "by row.")
def _(quantized_size):
    _judge(quantized_size, "packed over the tensor", "the 4-bit values are packed "
           "over the whole tensor, not row by row (a row of odd length ends on a half "
           "byte).", block(), 4, 128, "block")


@q.case("the other tensors keep their own dtype's size",
        hint="A float16 model stores its biases and norms in 2 bytes, and an int64 "
             "buffer (BatchNorm's num_batches_tracked) in 8: use each tensor's own "
             "element size.")
def _(quantized_size):
    _judge(quantized_size, "others at float32", "the tensors that stay unquantized "
           "are counted as float32 (4 bytes an entry) whatever their dtype.",
           cnn(dtype=torch.float16), 8, 64, "cnn")


@q.case("returns a Python int; the state_dict left unchanged", kind="property",
        hint="Return the number of bytes as a Python int (int(...)), and read the "
             "state_dict without changing it.")
def _(quantized_size):
    model = mlp()
    sd = model.state_dict()
    before = {k: v.clone() for k, v in sd.items()}
    got = call(quantized_size, sd, 8, 32, check_mutation=False, name="quantized_size")
    as_number(got, _what(sd, 8, 32, "mlp"))
    if set(sd) != set(before) or any(not torch.equal(sd[k], before[k]) for k in sd):
        raise CheckFailure("quantized_size changed the state_dict it was given.")
    if not isinstance(got, int) or isinstance(got, bool):
        raise CheckFailure(f"quantized_size returned a {type(got).__name__} "
                           f"({_short(got)}); expected a Python int.")
