"""Checks of 06.lora_merge: Merge a LoRA adapter into its Linear layer."""
from __future__ import annotations

import torch
from torch import nn

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _basic, _matches, _plain_mismatch


q = question("06.lora_merge", "Merge a LoRA adapter into its Linear layer",
             answers=["lora_merge"], timeout=5)


def _inputs(seed: int, k: int, d: int, r: int, bias: bool = True):
    """A seeded nn.Linear(k, d) (the frozen base), a trained adapter A (r, k) and
    B (d, r) float32 (B no longer zero), and inputs x (3, 5, k)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        base = nn.Linear(k, d, bias=bias)
        A = torch.randn(r, k) / k ** 0.5  # (r, k)
        B = torch.randn(d, r) * 0.5  # (d, r)
        x = torch.randn(3, 5, k)  # (3, 5, k)
    return base, A, B, x


def reference_lora_output(base, A, B, alpha, x):
    """The unmerged layer: base(x) + (alpha / r) B A x, float64, (..., d)."""
    r = A.shape[0]
    W, b = base.weight.double(), base.bias
    y = x.double() @ W.T + (alpha / r) * (x.double() @ A.double().T) @ B.double().T
    return y if b is None else y + b.double()


def mistaken_weights(base, A, B, alpha) -> dict[str, torch.Tensor]:
    """The merged weights (d, k) of typical mistakes, float64."""
    W, A, B = base.weight.double(), A.double(), B.double()
    r = A.shape[0]
    out = {"alpha": W + alpha * B @ A, "unscaled": W + B @ A}
    if W.shape[0] == W.shape[1]:
        out["transposed"] = W + (alpha / r) * (B @ A).T
    return out


def _what(base, A, alpha) -> str:
    return (f"lora_merge(nn.Linear({base.in_features}, {base.out_features}"
            f"{'' if base.bias is not None else ', bias=False'}), A {tuple(A.shape)}, "
            f"B, alpha={alpha:g})")


def _merged(fn, base, A, B, alpha) -> nn.Linear:
    """The answer on copies of the inputs (a change in place is the property case's
    business), checked to be an nn.Linear of the base's shape."""
    base_copy = nn.Linear(base.in_features, base.out_features,
                          bias=base.bias is not None)
    base_copy.load_state_dict(base.state_dict())
    got = call(fn, base_copy, A.clone(), B.clone(), alpha, check_mutation=False,
               name="lora_merge")
    what = _what(base, A, alpha)
    if got is None:
        raise _basic(f"{what} returned None: return the merged nn.Linear.",
                     problem="none")
    if not isinstance(got, nn.Linear):
        raise _basic(f"{what} returned {_short(got)}; expected an nn.Linear: the "
                     "merged layer is a plain Linear, with no adapter left to run.",
                     problem="type")
    if tuple(got.weight.shape) != tuple(base.weight.shape):
        raise _basic(f"the weight of {what} has shape {tuple(got.weight.shape)}, "
                     f"expected {tuple(base.weight.shape)} (the base layer's).",
                     problem="shape")
    return got


def _expect(fn, seed, k, d, r, alpha, bias=True) -> None:
    base, A, B, x = _inputs(seed, k, d, r, bias)
    got = _merged(fn, base, A, B, alpha)
    with torch.no_grad():
        y = got(x)  # (3, 5, d)
    expect_close(y, reference_lora_output(base, A, B, alpha, x).float(), rtol=1e-4,
                 atol=1e-5, what=f"the merged layer's output on x {tuple(x.shape)} "
                                 f"(from {_what(base, A, alpha)})")


_HINT = ("The adapter adds (alpha / r) times the product of B and A, a (d, k) matrix "
         "like the base weight, to what the layer computes: fold it into a copy of the "
         "weight, keep the bias, and the merged layer gives the same outputs with one "
         "matrix product.")


@q.case("a square layer (16 -> 16), r = 4, alpha = 8", kind="core", hint=_HINT)
def _(lora_merge):
    _expect(lora_merge, 0, 16, 16, 4, 8.0)


@q.case("a wide layer (12 -> 20), r = 2, alpha = 16", kind="core", hint=_HINT)
def _(lora_merge):
    _expect(lora_merge, 1, 12, 20, 2, 16.0)


@q.case("MiniLM's query size (384 -> 384), r = 8, alpha = 16, no bias", kind="core",
        hint=_HINT)
def _(lora_merge):
    _expect(lora_merge, 2, 384, 384, 8, 16.0, bias=False)


def _judge_weight(fn, key, message, seed, k, d, r, alpha) -> None:
    base, A, B, _ = _inputs(seed, k, d, r)
    got = _merged(fn, base, A, B, alpha).weight.detach()
    W, A64, B64 = base.weight.double(), A.double(), B.double()
    expected = W + (alpha / r) * B64 @ A64
    what = f"the weight of {_what(base, A, alpha)}"
    if _matches(got, expected.float(), 1e-4, 1e-5):
        return
    if _matches(got, mistaken_weights(base, A, B, alpha)[key].float(), 1e-4, 1e-5):
        raise CheckFailure(f"{what}: {message}")
    _plain_mismatch(got, expected.float(), what, rtol=1e-4, atol=1e-5)


@q.case("the update is scaled by alpha / r, not alpha",
        hint="LoRA scales its update by alpha / r (Hu et al.), so that changing the "
             "rank does not change how far the first steps move the layer; alpha alone "
             "is r times too large.")
def _(lora_merge):
    _judge_weight(lora_merge, "alpha", "the update is alpha times B A: the division by "
                  "r is missing.", 3, 10, 6, 2, 8.0)


@q.case("the update is scaled at all",
        hint="The adapter's output is multiplied by alpha / r in the forward pass: the "
             "merged weight must carry the same factor, or merged and unmerged layers "
             "disagree.")
def _(lora_merge):
    _judge_weight(lora_merge, "unscaled", "the update B A is added without its factor "
                  "alpha / r.", 4, 10, 6, 2, 8.0)


@q.case("the update has the weight's layout (d, k), not its transpose",
        hint="nn.Linear stores its weight as (out_features, in_features) and computes "
             "x times its transpose; B is (d, r) and A is (r, k): their product in "
             "that order already has the weight's layout. On a square layer the "
             "transposed product has the right shape and the wrong values.")
def _(lora_merge):
    _judge_weight(lora_merge, "transposed", "on this square layer the added update is "
                  "the TRANSPOSE of B A.", 5, 8, 8, 2, 4.0)


@q.case("the bias is kept",
        hint="LoRA changes the weight only: the merged layer keeps the base layer's "
             "bias (copy it, do not drop it).")
def _(lora_merge):
    base, A, B, _ = _inputs(6, 6, 5, 2)
    got = _merged(lora_merge, base, A, B, 4.0)
    if got.bias is None:
        raise CheckFailure(f"{_what(base, A, 4.0)} returned a Linear without a bias; "
                           "the base layer has one.")
    if not torch.allclose(got.bias.detach(), base.bias.detach(), atol=1e-6):
        raise CheckFailure(f"the bias of {_what(base, A, 4.0)} differs from the base "
                           f"layer's: {_short(got.bias.detach())} instead of "
                           f"{_short(base.bias.detach())}.")


@q.case("a new layer; the base layer left unchanged", kind="property",
        hint="Build a new nn.Linear (or a deep copy) for the merged weight: the base "
             "weights are the pretrained ones, and keeping them untouched is what lets "
             "you unplug the adapter (or plug in another).")
def _(lora_merge):
    base, A, B, _ = _inputs(7, 6, 4, 2)
    before = base.weight.detach().clone()
    got = call(lora_merge, base, A, B, 4.0, check_mutation=False, name="lora_merge")
    if got is base:
        raise CheckFailure("lora_merge returned the base layer itself; return a new "
                           "one.")
    if not torch.equal(base.weight.detach(), before):
        raise CheckFailure("lora_merge changed the base layer's weight in place.")
