"""Checks of 04.masked_perplexity: Perplexity of padded sequences."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, as_number, call, expect_close
from ...registry import question
from ._common import _copies, _gen, _num, _plain_mismatch


q = question("04.masked_perplexity", "Perplexity of padded sequences",
             answers=["masked_perplexity"], timeout=5)

PAD = 0  # the id the padding positions hold in `targets` (a real symbol's id too)


def _inputs(seed: int, lengths, T: int, V: int, scale: float = 2.0):
    """Seeded logits (B, T, V) float32, targets (B, T) int64 and mask (B, T) bool: row
    b holds lengths[b] real positions, then padding (target PAD, mask False)."""
    g = _gen(seed)
    B = len(lengths)
    logits = torch.randn(B, T, V, generator=g) * scale  # (B, T, V)
    targets = torch.randint(0, V, (B, T), generator=g)  # (B, T)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
    return logits, targets.masked_fill(~mask, PAD), mask


def _nll(logits, targets):
    """The per-position negative log-likelihoods (B, T), float64."""
    B, T, V = logits.shape
    nll = F.cross_entropy(logits.double().reshape(B * T, V), targets.reshape(B * T),
                          reduction="none")  # (B*T,)
    return nll.view(B, T)


def reference_masked_perplexity(logits, targets, mask) -> float:
    """exp of the mean negative log-likelihood over the real (unmasked) positions."""
    nll = _nll(logits, targets)  # (B, T)
    return math.exp(nll[mask].sum().item() / mask.sum().item())


def _what(logits, lengths) -> str:
    return (f"masked_perplexity(logits {tuple(logits.shape)}, targets, mask) with "
            f"sequence lengths {list(lengths)}")


def _answer(fn, logits, targets, mask, lengths) -> float:
    got = call(fn, *_copies(logits, targets, mask), check_mutation=False,
               name="masked_perplexity")
    return as_number(got, _what(logits, lengths))


def _core(fn, seed, lengths, T, V, scale=2.0):
    logits, targets, mask = _inputs(seed, lengths, T, V, scale)
    got = _answer(fn, logits, targets, mask, lengths)
    expect_close(got, reference_masked_perplexity(logits, targets, mask), rtol=1e-4,
                 what=_what(logits, lengths))


_HINT = ("Perplexity is exp of the mean negative log-likelihood per predicted token: "
         "average over the real positions only (every real token of every sequence "
         "counts once), then exponentiate.")


@q.case("3 sequences of lengths 6, 4, 2; V = 5", kind="core", hint=_HINT)
def _(masked_perplexity):
    _core(masked_perplexity, 0, [6, 4, 2], T=6, V=5)


@q.case("4 sequences of lengths 9, 1, 5, 7; V = 11", kind="core", hint=_HINT)
def _(masked_perplexity):
    _core(masked_perplexity, 1, [9, 1, 5, 7], T=9, V=11, scale=3.0)


@q.case("2 sequences of lengths 5, 3; V = 65 (Tiny Shakespeare's vocabulary)",
        kind="core", hint=_HINT)
def _(masked_perplexity):
    _core(masked_perplexity, 2, [5, 3], T=5, V=65, scale=1.0)


def _mistake(fn, mistaken, message, seed, lengths, T, V, scale=2.0):
    """Pass on the reference; fail with ``message`` (hint shown) when the answer is
    ``mistaken(logits, targets, mask)``; fail plainly on any other value."""
    logits, targets, mask = _inputs(seed, lengths, T, V, scale)
    got = _answer(fn, logits, targets, mask, lengths)
    expected = reference_masked_perplexity(logits, targets, mask)
    if math.isclose(got, expected, rel_tol=1e-4):
        return
    wrong = mistaken(logits, targets, mask)
    if math.isfinite(wrong) and math.isclose(got, wrong, rel_tol=1e-4):
        raise CheckFailure(f"{_what(logits, lengths)} returned {_num(got)}, expected "
                           f"{_num(expected)}: {message}")
    _plain_mismatch(got, expected, _what(logits, lengths), rtol=1e-4)


@q.case("padding positions are left out",
        hint="The mask says which positions are real: a padding position's target is "
             "a placeholder, and its loss must not enter the average.")
def _(masked_perplexity):
    def unmasked(logits, targets, mask):
        return math.exp(_nll(logits, targets).mean().item())

    _mistake(masked_perplexity, unmasked, "it averages over every position, padding "
             "included.", 3, [7, 3, 2], T=7, V=6)


@q.case("divides by the number of real tokens, not B x T",
        hint="Zeroing the padded losses is half the job: the mean must then divide by "
             "the number of real positions, not by every position of the (B, T) grid.")
def _(masked_perplexity):
    def all_positions(logits, targets, mask):
        nll = _nll(logits, targets)
        return math.exp((nll * mask).sum().item() / mask.numel())

    _mistake(masked_perplexity, all_positions, "the padded losses are zeroed, but the "
             "sum is divided by B x T, every position of the grid.", 4, [8, 2, 5],
             T=8, V=7)


@q.case("every token weighs the same (not every sequence)",
        hint="Average over all the real tokens of the batch at once: a mean of "
             "per-sequence means (or of per-sequence perplexities) lets a short "
             "sequence weigh as much as a long one.")
def _(masked_perplexity):
    def per_sequence(logits, targets, mask):
        nll = _nll(logits, targets)
        means = (nll * mask).sum(1) / mask.sum(1)  # (B,)
        return math.exp(means.mean().item())

    def per_sequence_perplexity(logits, targets, mask):
        nll = _nll(logits, targets)
        means = (nll * mask).sum(1) / mask.sum(1)  # (B,)
        return means.exp().mean().item()

    logits, targets, mask = _inputs(5, [9, 2, 4], T=9, V=5)
    what = _what(logits, [9, 2, 4])
    got = _answer(masked_perplexity, logits, targets, mask, [9, 2, 4])
    expected = reference_masked_perplexity(logits, targets, mask)
    if math.isclose(got, expected, rel_tol=1e-4):
        return
    for wrong, how in ((per_sequence, "exp of the mean of the per-sequence mean "
                                      "losses"),
                       (per_sequence_perplexity, "the mean of the per-sequence "
                                                 "perplexities")):
        if math.isclose(got, wrong(logits, targets, mask), rel_tol=1e-4):
            raise CheckFailure(f"{what} returned {_num(got)}, expected "
                               f"{_num(expected)}: it is {how}.")
    _plain_mismatch(got, expected, what, rtol=1e-4)


@q.case("the classes are the last dimension of the logits",
        hint="F.cross_entropy wants the classes in dimension 1: flatten (B, T, V) to "
             "(B*T, V) (and the targets to (B*T,)), or move V to dimension 1; given "
             "(B, T, V) as it is, it takes T for the classes.")
def _(masked_perplexity):
    def time_as_classes(logits, targets, mask):
        nll = F.cross_entropy(logits.double(), targets, reduction="none")  # (B, V)
        return math.exp((nll * mask).sum().item() / mask.sum().item())

    _mistake(masked_perplexity, time_as_classes, "the softmax ran over the T positions "
             "of each sequence instead of the V symbols (T = V here, so the shapes "
             "did not warn you).", 6, [6, 4, 5], T=6, V=6)


@q.case("perplexity, not the loss: exp of nats",
        hint="Perplexity is e to the mean loss in nats (PyTorch's cross-entropy uses "
             "the natural log), not the loss itself and not 2 to the nats.")
def _(masked_perplexity):
    def loss_only(logits, targets, mask):
        return math.log(reference_masked_perplexity(logits, targets, mask))

    def base_two(logits, targets, mask):
        return 2 ** math.log(reference_masked_perplexity(logits, targets, mask))

    logits, targets, mask = _inputs(7, [5, 5, 3], T=5, V=8)
    what = _what(logits, [5, 5, 3])
    got = _answer(masked_perplexity, logits, targets, mask, [5, 5, 3])
    expected = reference_masked_perplexity(logits, targets, mask)
    if math.isclose(got, expected, rel_tol=1e-4):
        return
    for wrong, how in ((loss_only, "the mean loss, not its exponential"),
                       (base_two, "2 to the mean loss in nats")):
        if math.isclose(got, wrong(logits, targets, mask), rel_tol=1e-4):
            raise CheckFailure(f"{what} returned {_num(got)}, expected "
                               f"{_num(expected)}: it is {how}.")
    _plain_mismatch(got, expected, what, rtol=1e-4)


@q.case("stable for logits of size 100 (float32)",
        hint="exp(100) overflows float32: take the log-softmax with the row maximum "
             "subtracted (F.log_softmax and F.cross_entropy do), never log(softmax).")
def _(masked_perplexity):
    logits, targets, mask = _inputs(8, [4, 2], T=4, V=6, scale=3.0)
    logits = logits + 100.0
    got = _answer(masked_perplexity, logits, targets, mask, [4, 2])
    expected = reference_masked_perplexity(logits, targets, mask)
    if not math.isfinite(got):
        raise CheckFailure(f"{_what(logits, [4, 2])} for logits near 100 returned "
                           f"{got}: a float32 exp overflowed.")
    _plain_mismatch(got, expected, _what(logits, [4, 2]) + " for logits near 100",
                    rtol=1e-4)


@q.case("returns a Python float; inputs left unchanged", kind="property",
        hint="Return the perplexity as a number (a tensor's .item()), and build new "
             "tensors rather than writing into logits, targets or mask.")
def _(masked_perplexity):
    logits, targets, mask = _inputs(9, [3, 2], T=3, V=4)
    got = call(masked_perplexity, logits, targets, mask, name="masked_perplexity")
    if not isinstance(got, float):
        as_number(got, _what(logits, [3, 2]))  # None, a string: a basic failure
        raise CheckFailure(f"{_what(logits, [3, 2])} returned a "
                           f"{type(got).__name__}; expected a Python float.")
