"""Checks of 06.mean_max_pool: Mean and max pooling of a padded batch."""
from __future__ import annotations

import torch

from ...asserts import CheckFailure, _short, call, expect_close, expect_shape
from ...registry import question
from ._common import (_agrees, _basic, _copies, _matches, _not_judged,
                      _plain_mismatch)


q = question("06.mean_max_pool", "Mean and max pooling of a padded batch",
             answers=["mean_max_pool"], timeout=5)


def _inputs(seed: int, lengths, C: int, left: bool = False, pad_shift: float = 3.0,
            negative: bool = False):
    """Seeded token states (B, T, C) float32 and attention_mask (B, T) int64. The padded
    positions hold states too (an encoder computes them), shifted up by ``pad_shift`` so
    that an answer that lets them in is off; ``negative``: every real state below 0."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    hidden = torch.randn(B, T, C, generator=g)  # (B, T, C)
    if negative:
        hidden = -hidden.abs() - 0.1
    positions = torch.arange(T)[None, :]  # (1, T)
    n = torch.tensor(lengths)[:, None]  # (B, 1)
    real = positions >= T - n if left else positions < n  # (B, T)
    hidden = torch.where(real[..., None], hidden, hidden + pad_shift)
    return hidden, real.long()


def reference_mean_max_pool(hidden, attention_mask):
    """[mean | max] of the real tokens' states, (B, 2C) float32 (float64 inside)."""
    h = hidden.double()  # (B, T, C)
    real = attention_mask.bool()[..., None]  # (B, T, 1)
    mean = (h * real).sum(1) / real.sum(1)  # (B, C)
    top = h.masked_fill(~real, float("-inf")).amax(1)  # (B, C)
    return torch.cat([mean, top], dim=-1).float()  # (B, 2C)


def mistaken_means(hidden, attention_mask) -> dict[str, torch.Tensor]:
    """The mean halves of typical mistakes, (B, C) each."""
    h = hidden.double()
    real = attention_mask.double()[..., None]  # (B, T, 1)
    T = hidden.shape[1]
    return {"padding": h.mean(1).float(),
            "length": ((h * real).sum(1) / T).float()}


def mistaken_maxes(hidden, attention_mask) -> dict[str, torch.Tensor]:
    """The max halves of typical mistakes, (B, C) each."""
    h = hidden.double()
    real = attention_mask.double()[..., None]
    return {"padding": h.amax(1).float(), "zeros": (h * real).amax(1).float()}


def _what(hidden, lengths) -> str:
    return (f"mean_max_pool(hidden {tuple(hidden.shape)}, attention_mask) with "
            f"sentence lengths {list(lengths)}")


def _answer(fn, hidden, mask, lengths):
    """The answer on copies of the inputs, checked to be a (B, 2C) tensor."""
    got = call(fn, *_copies(hidden, mask), check_mutation=False, name="mean_max_pool")
    B, _, C = hidden.shape
    what = _what(hidden, lengths)
    if isinstance(got, torch.Tensor) and tuple(got.shape) in ((B, 2, C), (2, B, C)):
        raise _basic(f"{what} has shape {tuple(got.shape)}: the two poolings should "
                     f"sit side by side in one row per sentence, (B, 2C) = "
                     f"{(B, 2 * C)}.",
                     problem="shape")
    expect_shape(got, (B, 2 * C), what=what)
    return got


def _core(fn, seed, lengths, C, left=False):
    hidden, mask = _inputs(seed, lengths, C, left)
    got = _answer(fn, hidden, mask, lengths)
    expect_close(got, reference_mean_max_pool(hidden, mask), rtol=1e-5, atol=1e-6,
                 what=_what(hidden, lengths))


_HINT = ("Pool over the real tokens only (attention_mask 1): their mean in the first C "
         "columns, their largest value per feature in the last C; a padded position "
         "holds a state too, and it must not count in either.")


@q.case("3 sentences of lengths 6, 4, 2 (padded on the right), C = 4", kind="core",
        hint=_HINT)
def _(mean_max_pool):
    _core(mean_max_pool, 0, [6, 4, 2], C=4)


@q.case("4 sentences of lengths 9, 1, 5, 7, C = 8", kind="core", hint=_HINT)
def _(mean_max_pool):
    _core(mean_max_pool, 1, [9, 1, 5, 7], C=8)


@q.case("2 sentences of lengths 3, 5 padded on the LEFT, C = 384 (MiniLM's width)",
        kind="core", hint=_HINT)
def _(mean_max_pool):
    _core(mean_max_pool, 2, [3, 5], C=384, left=True)


def _halves(fn, seed, lengths, C, negative=False):
    """(mean half, max half) of the answer and of the reference, with the inputs."""
    hidden, mask = _inputs(seed, lengths, C, negative=negative)
    got = _answer(fn, hidden, mask, lengths)
    ref = reference_mean_max_pool(hidden, mask)
    return got[:, :C], got[:, C:], ref[:, :C], ref[:, C:], hidden, mask


def _judge_mean(fn, key: str, message: str, seed, lengths, C):
    got_mean, got_max, ref_mean, ref_max, hidden, mask = _halves(fn, seed, lengths, C)
    if _matches(got_mean, ref_mean, 1e-5, 1e-6):
        return
    if _matches(got_mean, ref_max, 1e-5, 1e-6):
        raise _not_judged()  # the halves are swapped: the order case says so
    what = _what(hidden, lengths)
    if _matches(got_mean, mistaken_means(hidden, mask)[key], 1e-5, 1e-6):
        raise CheckFailure(f"the first C columns of {what}: {message}")
    _plain_mismatch(got_mean, ref_mean, f"the mean (first C columns) of {what}",
                    rtol=1e-5, atol=1e-6)


@q.case("the mean leaves the padding out",
        hint="A padded position is not a word of the sentence: weight each position by "
             "its attention_mask entry, so that padding adds nothing to the sum.")
def _(mean_max_pool):
    _judge_mean(mean_max_pool, "padding", "it is the mean over all T positions, "
                "padding included.", 3, [7, 3, 2], C=5)


@q.case("the mean divides by the number of real tokens",
        hint="Masking the sum is half the job: divide each sentence's sum by ITS "
             "number of real tokens, not by the padded length T that the batch happens "
             "to have.")
def _(mean_max_pool):
    _judge_mean(mean_max_pool, "length", "the padding is left out of the sum, but the "
                "sum is divided by the padded length T.", 4, [8, 2, 5], C=6)


@q.case("the max never picks a padded position, even when every real value is "
        "negative",
        hint="Multiplying by the mask turns a padded state into zeros, and 0 beats "
             "every negative value: give the padded positions minus infinity (or "
             "leave them out) before taking the max.")
def _(mean_max_pool):
    control = _inputs(5, [4, 4], C=3)
    if not _agrees(lambda: expect_close(
            _answer(mean_max_pool, *control, [4, 4]),
            reference_mean_max_pool(*control), rtol=1e-5, atol=1e-6)):
        raise _not_judged()
    got_mean, got_max, ref_mean, ref_max, hidden, mask = _halves(
        mean_max_pool, 6, [6, 2, 3], C=4, negative=True)
    if _matches(got_max, ref_max, 1e-5, 1e-6):
        return
    what = _what(hidden, [6, 2, 3]) + " (every real state negative)"
    wrong = mistaken_maxes(hidden, mask)
    if _matches(got_max, wrong["zeros"], 1e-5, 1e-6):
        raise CheckFailure(f"the last C columns of {what} hold zeros where the "
                           "sentence is short: the masked-out padding (0) won the max.")
    if _matches(got_max, wrong["padding"], 1e-5, 1e-6):
        raise CheckFailure(f"the last C columns of {what} are the max over all T "
                           "positions, padding included.")
    _plain_mismatch(got_max, ref_max, f"the max (last C columns) of {what}",
                    rtol=1e-5, atol=1e-6)


@q.case("the mean first, then the max",
        hint="The order of the columns is part of the answer (a classifier trained on "
             "them depends on it): the C mean features first, the C max features "
             "after, as sentence-transformers' Pooling concatenates ('mean', 'max').")
def _(mean_max_pool):
    got_mean, got_max, ref_mean, ref_max, hidden, mask = _halves(
        mean_max_pool, 7, [5, 3], C=4)
    if _matches(got_mean, ref_max, 1e-5, 1e-6) and _matches(got_max, ref_mean, 1e-5,
                                                               1e-6):
        raise CheckFailure(f"{_what(hidden, [5, 3])} holds the max in its first C "
                           "columns and the mean in its last C: the halves are "
                           "swapped.")
    if not _matches(torch.cat([got_mean, got_max], -1), torch.cat([ref_mean, ref_max],
                                                                  -1), 1e-5, 1e-6):
        raise _not_judged()


@q.case("returns float32 (B, 2C); inputs left unchanged", kind="property",
        hint="Return a new float32 tensor; do not write into hidden (filling the "
             "padded states in place, as some pooling code does, changes the caller's "
             "tensor).")
def _(mean_max_pool):
    hidden, mask = _inputs(8, [4, 2], C=3)
    before_h, before_m = hidden.clone(), mask.clone()
    got = call(mean_max_pool, hidden, mask, check_mutation=False, name="mean_max_pool")
    if not (torch.equal(hidden, before_h) and torch.equal(mask, before_m)):
        raise CheckFailure("mean_max_pool changed hidden or attention_mask in place; "
                           "work on a copy.")
    expect_shape(got, (2, 6), what=_what(hidden, [4, 2]))
    if got.dtype != torch.float32:
        raise CheckFailure(f"{_what(hidden, [4, 2])} has dtype {got.dtype}; expected "
                           f"torch.float32 (the dtype of hidden). Got {_short(got)}.")
