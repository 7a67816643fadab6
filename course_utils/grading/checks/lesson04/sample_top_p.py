"""Checks of 04.sample_top_p: Nucleus (top-p) sampling with a temperature."""
from __future__ import annotations

import torch

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _basic, _copies, _gen


q = question("04.sample_top_p", "Nucleus (top-p) sampling with a temperature",
             answers=["sample_top_p"], timeout=10)

DRAWS = 40  # calls per case, each drawing one token per row


def _logits(seed: int, B: int, V: int, scale: float = 2.0):
    """Seeded float32 logits (B, V)."""
    return torch.randn(B, V, generator=_gen(seed)) * scale


def nucleus(logits, temperature, top_p, sorted_only=False, cut_before=False,
            multiply=False, nucleus_first=False):
    """The nucleus distribution (B, V) over the vocabulary (zero outside it), float64;
    the keywords switch on the typical mistakes."""
    z = logits.double()
    z = z * temperature if multiply else z / temperature
    probs = torch.softmax(logits.double() if nucleus_first else z, dim=-1)  # (B, V)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True)  # (B, V)
    cumulative = torch.cumsum(sorted_p, dim=-1)  # (B, V)
    if cut_before:
        keep_sorted = cumulative <= top_p  # drops the token that crosses top_p
        keep_sorted[:, 0] = True
    else:
        keep_sorted = cumulative - sorted_p < top_p  # the mass before it is < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # (B, V)
    if nucleus_first:
        probs = torch.softmax(z, dim=-1)
    kept = probs * keep
    kept = kept / kept.sum(-1, keepdim=True)
    if sorted_only:  # the same distribution, laid out in sorted order
        return torch.gather(kept, -1, order), order
    return kept


def reference_sample_top_p(logits, temperature, top_p, generator, **mistake):
    """One token id per row (B,), int64: torch.multinomial on the nucleus distribution
    in vocabulary order, with ``generator``."""
    if mistake.get("sorted_only") or mistake.get("sorted_mapped"):
        kept, order = nucleus(logits, temperature, top_p, sorted_only=True)
        pos = torch.multinomial(kept.float(), 1, generator=generator)  # (B, 1)
        if mistake.get("sorted_mapped"):
            return torch.gather(order, -1, pos).squeeze(-1)
        return pos.squeeze(-1)
    kept = nucleus(logits, temperature, top_p, **mistake).float()  # (B, V)
    return torch.multinomial(kept, 1, generator=generator).squeeze(-1)


def _what(logits, temperature, top_p) -> str:
    return (f"sample_top_p(logits {tuple(logits.shape)}, temperature={temperature:g}, "
            f"top_p={top_p:g}, generator)")


def _draws(fn, logits, temperature, top_p, seed, n=DRAWS):
    """``n`` calls of the answer with one generator seeded ``seed``: (n, B) int64."""
    g = _gen(seed)
    what = _what(logits, temperature, top_p)
    rows = []
    for _ in range(n):
        got = call(fn, *_copies(logits), temperature, top_p, g, check_mutation=False,
                   name="sample_top_p")
        if not isinstance(got, torch.Tensor):
            if got is None:
                raise _basic(f"{what} returned None: did you forget to `return` the "
                             "ids?", problem="none")
            raise _basic(f"{what} returned {_short(got)}; expected a (B,) int64 "
                         "tensor of token ids.", problem="type")
        if tuple(got.shape) != (logits.shape[0],):
            raise _basic(f"{what} returned a tensor of shape {tuple(got.shape)}; "
                         f"expected ({logits.shape[0]},), one id per row (squeeze the "
                         "sample dimension).", problem="shape")
        rows.append(got.detach().long())
    return torch.stack(rows)  # (n, B)


def _oracle_draws(logits, temperature, top_p, seed, n=DRAWS, **mistake):
    g = _gen(seed)
    return torch.stack([reference_sample_top_p(logits, temperature, top_p, g,
                                               **mistake) for _ in range(n)])


def _differ(got, expected, what) -> str:
    bad = (got != expected).nonzero()
    k, b = (int(v) for v in bad[0])
    return (f"{what}, called {got.shape[0]} times with one generator: "
            f"{len(bad)} of {got.numel()} draws differ from the reference; the first "
            f"at call {k + 1}, row {b}: {int(got[k, b])}, expected "
            f"{int(expected[k, b])}.")


def _expect(fn, seed, B, V, temperature, top_p, scale=2.0):
    logits = _logits(seed, B, V, scale)
    got = _draws(fn, logits, temperature, top_p, seed + 100)
    expected = _oracle_draws(logits, temperature, top_p, seed + 100)
    if not torch.equal(got, expected):
        raise CheckFailure(_differ(got, expected, _what(logits, temperature, top_p)))


_HINT = ("Temperature first (divide the logits), then the softmax; sort, keep the "
         "smallest set of most likely tokens whose probability reaches top_p, zero "
         "the rest, and draw once with torch.multinomial(probs, 1, "
         "generator=generator) from the (B, V) probabilities in vocabulary order.")


@q.case("B = 4, V = 10, temperature 1, top_p 0.9", kind="core", hint=_HINT)
def _(sample_top_p):
    _expect(sample_top_p, 0, 4, 10, 1.0, 0.9)


@q.case("B = 3, V = 65, temperature 0.7, top_p 0.8", kind="core", hint=_HINT)
def _(sample_top_p):
    _expect(sample_top_p, 1, 3, 65, 0.7, 0.8)


@q.case("B = 5, V = 30, temperature 1.5, top_p 0.5", kind="core", hint=_HINT)
def _(sample_top_p):
    _expect(sample_top_p, 2, 5, 30, 1.5, 0.5)


def _mistake(fn, seed, B, V, temperature, top_p, message, scale=2.0, **mistake):
    """Right, or the draws of the mistake (its message shown), or a plain mismatch."""
    logits = _logits(seed, B, V, scale)
    what = _what(logits, temperature, top_p)
    got = _draws(fn, logits, temperature, top_p, seed + 100)
    expected = _oracle_draws(logits, temperature, top_p, seed + 100)
    if torch.equal(got, expected):
        return
    if torch.equal(got, _oracle_draws(logits, temperature, top_p, seed + 100,
                                      **mistake)):
        raise CheckFailure(f"{_differ(got, expected, what)}\nYour draws are those of "
                           f"{message}")
    raise CheckFailure(_differ(got, expected, what), basic=True)


@q.case("the token that crosses top_p is kept",
        hint="The nucleus is the SMALLEST set whose probability reaches top_p: keep "
             "tokens while the mass before them is below top_p, so the token that "
             "crosses the threshold is in (and the most likely token always is).")
def _(sample_top_p):
    _mistake(sample_top_p, 3, 4, 12, 1.0, 0.7,
             "a nucleus that stops one token short (only tokens whose cumulative "
             "probability, themselves included, stays below top_p).", cut_before=True)


@q.case("the logits are divided by the temperature",
        hint="A temperature below 1 sharpens the distribution: divide the logits by "
             "it before the softmax (multiplying flattens it instead).")
def _(sample_top_p):
    _mistake(sample_top_p, 4, 4, 12, 0.5, 0.9,
             "logits MULTIPLIED by the temperature.", multiply=True)


@q.case("the nucleus is taken at the temperature",
        hint="Apply the temperature first, then cut the nucleus from that "
             "distribution: the temperature changes which tokens make up top_p.")
def _(sample_top_p):
    _mistake(sample_top_p, 5, 4, 12, 2.0, 0.6,
             "a nucleus cut from the distribution at temperature 1, then sampled at "
             "the temperature.", nucleus_first=True)


@q.case("returns token ids, not positions in the sorted order",
        hint="After sorting, a draw is a position in the SORTED list: map it back "
             "through the sort's indices to a token id (or draw from the probabilities "
             "in vocabulary order, as the question asks).")
def _(sample_top_p):
    _mistake(sample_top_p, 6, 4, 12, 1.0, 0.8,
             "positions in the sorted order, not token ids.", sorted_only=True)


@q.case("draws from the probabilities in vocabulary order",
        hint="The check compares draws exactly: draw with torch.multinomial from the "
             "(B, V) probabilities in vocabulary order (zero outside the nucleus), not "
             "from the sorted ones mapped back (the same distribution, other draws).")
def _(sample_top_p):
    _mistake(sample_top_p, 7, 4, 12, 1.0, 0.8,
             "a draw from the sorted probabilities mapped back to ids: right in "
             "distribution, but not the draws of the question's procedure.",
             sorted_mapped=True)


@q.case("never draws outside the nucleus",
        hint="Zero every token outside the nucleus before drawing: with top_p = 0.3 "
             "here the nucleus holds two or three tokens per row.")
def _(sample_top_p):
    logits = _logits(8, 6, 20, scale=0.8)
    got = _draws(sample_top_p, logits, 1.0, 0.3, 108, n=60)  # (60, B)
    allowed = nucleus(logits, 1.0, 0.3) > 0  # (B, V)
    inside = torch.gather(allowed, 1, got.T)  # (B, 60)
    if not bool(inside.all()):
        b, k = (int(v) for v in (~inside).nonzero()[0])
        raise CheckFailure(f"call {k + 1} drew token {int(got[k, b])} for row {b}, "
                           "which is outside the nucleus of top_p = 0.3.")


@q.case("returns a (B,) int64 tensor; logits left unchanged", kind="property",
        hint="Return the ids as a (B,) tensor of int64 (squeeze multinomial's (B, 1)), "
             "and leave the logits as they are (divide into a new tensor).")
def _(sample_top_p):
    logits = _logits(9, 3, 7)
    got = call(sample_top_p, logits, 0.8, 0.9, _gen(9), name="sample_top_p")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (3,):
        raise CheckFailure(f"sample_top_p returned {_short(got)}; expected a (3,) "
                           "tensor for 3 rows.", basic=True, problem="shape")
    if got.dtype != torch.int64:
        raise CheckFailure(f"sample_top_p returned a {got.dtype} tensor; token ids are "
                           "int64 (torch.multinomial's dtype).")

