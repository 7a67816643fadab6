"""Checks of 04.interpolated_bigram: Interpolate a bigram with a unigram, on validation
text."""
from __future__ import annotations

import math

import numpy as np

from ...asserts import CheckFailure, as_number, call
from ...registry import question
from ._common import _basic, _copies, _num, _parts


q = question("04.interpolated_bigram",
             "Interpolate a bigram with a unigram, on validation text",
             answers=["interpolated_bigram"], timeout=10)


def markov_text(seed: int, V: int, N: int, M: int, allowed: int = 3,
                noise: float = 0.25):
    """(train (N,), val (M,)) int64 ids of a seeded Markov chain over V symbols: from
    each symbol, ``allowed`` likely successors and some probability (``noise``) of any
    symbol, so that the validation text holds pairs the training text never showed.
    Every symbol occurs in the training text followed by another."""
    for attempt in range(100):
        rng = np.random.default_rng(seed + 1000 * attempt)
        P = np.full((V, V), noise / V)  # (V, V): P[a, b] = P(next = b | current = a)
        for a in range(V):
            successors = rng.choice(V, allowed, replace=False)
            P[a, successors] += rng.dirichlet(np.ones(allowed)) * (1 - noise)
        cumulative = np.cumsum(P / P.sum(1, keepdims=True), axis=1)  # (V, V)
        u = rng.random(N + M)
        ids = np.empty(N + M, dtype=np.int64)
        ids[0] = rng.integers(V)
        for t in range(1, N + M):
            row = cumulative[ids[t - 1]]
            ids[t] = min(int(np.searchsorted(row, u[t] * row[-1])), V - 1)
        train, val = ids[:N], ids[N:]
        if len(np.unique(train[:-1])) == V:
            return train, val
    raise RuntimeError("no Markov text with every symbol in the training part")


def _models(train, V, axis=1, pseudo=0.0, smooth_unigram=False):
    """(unigram (V,), bigram (V, V)) counted on ``train`` (maximum likelihood; with a
    ``pseudo`` count added to every bigram count, and to every unigram count too when
    ``smooth_unigram``, for the mistakes)."""
    singles = np.bincount(train, minlength=V) + (pseudo if smooth_unigram else 0.0)
    unigram = singles / singles.sum()  # (V,)
    counts = np.zeros((V, V))
    np.add.at(counts, (train[:-1], train[1:]), 1.0)  # counts[a, b]: a followed by b
    counts += pseudo
    with np.errstate(divide="ignore", invalid="ignore"):
        bigram = counts / counts.sum(axis=axis, keepdims=True)  # rows sum to 1
    return unigram, np.nan_to_num(bigram)


def _losses(unigram, bigram, text, lambdas, swap=False):
    """The mean negative log-likelihood (nats per predicted character) of ``text`` for
    each lambda, predicting text[t] from text[t - 1], t >= 1."""
    prev, nxt = text[:-1], text[1:]
    out = []
    for lam in lambdas:
        w = 1 - lam if swap else lam
        p = w * bigram[prev, nxt] + (1 - w) * unigram[nxt]  # (M - 1,)
        with np.errstate(divide="ignore"):
            out.append(float(-np.log(p).mean()))
    return np.array(out)


def reference_interpolated_bigram(train, val, V, lambdas, on="val", swap=False,
                                  axis=1, pseudo=0.0, smooth_unigram=False,
                                  bits=False):
    """(lambda, validation loss) of the lambda of the grid with the lowest validation
    loss (the first one on a tie); the keywords switch on the typical mistakes."""
    unigram, bigram = _models(train, V, axis, pseudo, smooth_unigram)
    chosen = _losses(unigram, bigram, train if on == "train" else val, lambdas, swap)
    i = int(np.argmin(chosen))
    loss = chosen[i] if on == "train" else _losses(unigram, bigram, val, lambdas,
                                                    swap)[i]
    return float(lambdas[i]), float(loss / (math.log(2) if bits else 1.0))


GRID = np.linspace(0.0, 1.0, 21)


def _setting(seed, V, N, M, allowed=3, noise=0.25, lambdas=GRID):
    train, val = markov_text(seed, V, N, M, allowed, noise)
    return train, val, V, np.array(lambdas, dtype=np.float64)


def _what(train, val, V, lambdas) -> str:
    return (f"interpolated_bigram(train ({len(train)},), val ({len(val)},), V={V}, "
            f"lambdas of {len(lambdas)} values from {lambdas[0]:g} to {lambdas[-1]:g})")


def _answer(fn, train, val, V, lambdas):
    got = call(fn, *_copies(train, val, V, lambdas), check_mutation=False,
               name="interpolated_bigram")
    lam, loss = _parts(got, ("lam", "loss"), "interpolated_bigram")
    what = _what(train, val, V, lambdas)
    return as_number(lam, f"lam of {what}"), as_number(loss, f"the loss of {what}")


def _same(got, expected) -> bool:
    return (math.isclose(got[0], expected[0], rel_tol=1e-9, abs_tol=1e-12)
            and math.isclose(got[1], expected[1], rel_tol=1e-6, abs_tol=1e-9))


def _told(got, expected) -> str:
    return (f"it returned lam = {_num(got[0])} with a loss of {_num(got[1])} "
            f"nats/char; expected lam = {_num(expected[0])} with "
            f"{_num(expected[1])} nats/char")


def _core(fn, setting):
    what = _what(*setting)
    got = _answer(fn, *setting)
    expected = reference_interpolated_bigram(*setting)
    if not _same(got, expected):
        raise CheckFailure(f"{what}: {_told(got, expected)}.")


_HINT = ("Count the unigram and the bigram on the training text only, score every "
         "lambda of the grid on the validation text (each character predicted from the "
         "one before it, the first one not scored), and return the best lambda with "
         "its validation loss in nats per character.")


@q.case("V = 8, 800 training and 1,000 validation characters", kind="core",
        hint=_HINT)
def _(interpolated_bigram):
    _core(interpolated_bigram, _setting(0, 8, 800, 1000, noise=0.3))


@q.case("V = 20, a sparser chain, lambdas 0.5 to 1", kind="core", hint=_HINT)
def _(interpolated_bigram):
    _core(interpolated_bigram, _setting(1, 20, 2000, 1000, allowed=2, noise=0.3,
                                        lambdas=np.linspace(0.5, 1.0, 11)))


@q.case("V = 12, a short training text, an uneven grid", kind="core", hint=_HINT)
def _(interpolated_bigram):
    _core(interpolated_bigram, _setting(1, 12, 600, 800, allowed=4, noise=0.3,
                                        lambdas=[0.05, 0.2, 0.45, 0.6, 0.75, 0.9,
                                                 0.97, 1.0]))


def _mistake(fn, setting, message, *variants, **mistake):
    """Pass on the reference; fail with ``message`` (hint shown) on the answer of the
    mistake (``mistake``, or one of ``variants``, dicts of keywords); fail plainly (no
    hint) on anything else."""
    what = _what(*setting)
    got = _answer(fn, *setting)
    expected = reference_interpolated_bigram(*setting)
    if _same(got, expected):
        return
    for keywords in variants or (mistake,):
        if _same(got, reference_interpolated_bigram(*setting, **keywords)):
            raise CheckFailure(f"{what}: {_told(got, expected)}: {message}")
    raise _basic(f"{what}: {_told(got, expected)}.")


@q.case("lambda is chosen on the validation text",
        hint="Choose lambda by the loss on held-out text: on the training text the "
             "bigram's own counts always fit best, so the choice there is the largest "
             "lambda, whatever the validation text says.")
def _(interpolated_bigram):
    _mistake(interpolated_bigram, _setting(3, 10, 1000, 1000),
             "this is the lambda (and the loss) that fits the TRAINING text best.",
             on="train")


@q.case("lambda weighs the bigram",
        hint="Read the mixture again: lambda multiplies the bigram's probability and "
             "1 - lambda the unigram's.")
def _(interpolated_bigram):
    _mistake(interpolated_bigram, _setting(4, 10, 1000, 1000),
             "lambda was given to the unigram and 1 - lambda to the bigram.", swap=True)


@q.case("the bigram is P(next | previous): rows sum to 1",
        hint="The bigram conditions on the previous character: normalise each count "
             "by how often its PREVIOUS character was followed by anything, not by how "
             "often the next character occurs.")
def _(interpolated_bigram):
    _mistake(interpolated_bigram, _setting(5, 9, 900, 1000),
             "the bigram counts were normalised over the previous character (each "
             "column sums to 1): that is P(previous | next).", axis=0)


@q.case("counted estimates, no pseudo-counts",
        hint="Use the plain counts (maximum likelihood): here the interpolation with "
             "the unigram is the smoothing, and pseudo-counts (the lesson's add-a "
             "smoothing, ngram_log_probs's pseudo_count) change both the best lambda "
             "and its loss.")
def _(interpolated_bigram):
    _mistake(interpolated_bigram, _setting(6, 12, 1200, 1000),
             "pseudo-counts were added to the counts (add-a smoothing).",
             *[dict(pseudo=a, smooth_unigram=both) for a in (1.0, 0.1)
               for both in (False, True)])


@q.case("the loss is in nats (natural log)",
        hint="The lesson reports losses in nats per character: use the natural log "
             "(a loss in bits is 1/ln 2 = 1.44 times larger).")
def _(interpolated_bigram):
    _mistake(interpolated_bigram, _setting(7, 8, 1000, 1000),
             "the loss is in bits (log base 2), not in nats.", bits=True)


@q.case("returns lambda itself, not its index in the grid",
        hint="Return the value of lambda from the grid, not its position.")
def _(interpolated_bigram):
    setting = _setting(8, 10, 1000, 1000)
    what = _what(*setting)
    got = _answer(interpolated_bigram, *setting)
    expected = reference_interpolated_bigram(*setting)
    if _same(got, expected):
        return
    index = int(np.flatnonzero(setting[3] == expected[0])[0])
    if got[0] == index and math.isclose(got[1], expected[1], rel_tol=1e-6):
        raise CheckFailure(f"{what}: {_told(got, expected)}: {_num(got[0])} is the "
                           "position of the best lambda in the grid.")
    raise _basic(f"{what}: {_told(got, expected)}.")


@q.case("returns two numbers; inputs left unchanged", kind="property",
        hint="Return the tuple (lam, loss) of two numbers, and leave the arrays you "
             "are given as they are.")
def _(interpolated_bigram):
    train, val, V, lambdas = _setting(9, 6, 600, 300)
    got = call(interpolated_bigram, train, val, V, lambdas,
               name="interpolated_bigram")
    lam, loss = _parts(got, ("lam", "loss"), "interpolated_bigram")
    as_number(lam, "lam")
    as_number(loss, "the loss")
