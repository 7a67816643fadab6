"""Checks of 09.epoch_indices: the examples a rank reads in each epoch, with a
``DistributedSampler`` used right (the exercise ships it used wrong: a seed that
depends on the rank, and no ``set_epoch``)."""
from __future__ import annotations

import math

import torch
from torch.utils.data import DistributedSampler

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _basic, _ints

q = question("09.epoch_indices", "What each rank reads, epoch after epoch",
             answers=["epoch_indices"], timeout=5)


def reference(n, world_size, rank, epochs, seed=0) -> list[list[int]]:
    """DistributedSampler itself, shuffled with ``seed``, told each epoch."""
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                 shuffle=True, seed=seed)
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    return out


def mistaken(n, world_size, rank, epochs, seed, how) -> list[list[int]]:
    """What a typical mistake reads (with the right shared seed and epochs)."""
    if how == "drop_last":
        sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                     shuffle=True, seed=seed, drop_last=True)
        out = []
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out
    out = []
    for epoch in range(epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(
            seed + epoch)).tolist()
        size = math.ceil(n / world_size)
        padded = (order * math.ceil(size * world_size / n))[:size * world_size]
        if how == "no padding":
            out.append(order[rank::world_size])
        elif how == "blocks":
            out.append(padded[rank * size:(rank + 1) * size])
        else:
            raise ValueError(how)
    return out


def _what(n, world_size, rank, epochs, seed) -> str:
    return (f"epoch_indices(n={n}, world_size={world_size}, rank={rank}, "
            f"epochs={epochs}, seed={seed})")


def _answer(fn, n, world_size, rank, epochs, seed) -> list[list[int]]:
    what = _what(n, world_size, rank, epochs, seed)
    got = call(fn, n, world_size, rank, epochs, seed, name="epoch_indices")
    if got is None:
        raise _basic(f"{what} returned None: return one list of indices per epoch.",
                     problem="none")
    if not isinstance(got, (list, tuple)):
        raise _basic(f"{what} returned {_short(got)}; expected a list with one list "
                     "of indices per epoch.", problem="type")
    if len(got) != epochs:
        raise _basic(f"{what} returned {len(got)} lists; expected {epochs}, one per "
                     "epoch.", problem="shape")
    got = [_ints(e, f"{what}[{i}]") for i, e in enumerate(got)]
    if any(not e for e in got):
        raise _basic(f"{what}: epoch {[len(e) for e in got].index(0)} reads no index; "
                     f"a rank reads {math.ceil(n / world_size)} of them each epoch.",
                     problem="empty")
    return got


CASES = {  # name: (n, world_size, rank, epochs, seed)
    "10 examples, 2 ranks, rank 1, 3 epochs": (10, 2, 1, 3, 0),
    "23 examples, 3 ranks, rank 0 (padded), 2 epochs, seed 5": (23, 3, 0, 2, 5),
    "17 examples, 4 ranks, rank 2 (padded), 3 epochs, seed 42": (17, 4, 2, 3, 42),
    "7 examples, 3 ranks, rank 2, 2 epochs, seed 1": (7, 3, 2, 2, 1),
}


def _epochs_alike(got) -> bool:
    return len(got) > 1 and all(e == got[0] for e in got[1:])


def _reads(fn, n, world_size, epoch, epochs, seed) -> tuple[list[int], list[int]]:
    """The examples that no rank of the answer reads in ``epoch``, and those it reads
    more often than DistributedSampler's padding does."""
    got, ref = [0] * n, [0] * n
    for rank in range(world_size):
        for i in _answer(fn, n, world_size, rank, epochs, seed)[epoch]:
            if 0 <= i < n:
                got[i] += 1
        for i in reference(n, world_size, rank, epoch + 1, seed)[epoch]:
            ref[i] += 1
    never = [i for i in range(n) if got[i] == 0]
    more = [i for i in range(n) if got[i] > max(ref[i], 1)]
    return never, more


MESSAGES = {  # checked in this order: where two give the same indices, the first
    "no padding": "this rank reads floor(n / P) indices, one fewer than ceil(n / P): the "
                  "shuffled order is not padded to a multiple of P (or its tail is "
                  "dropped, as with drop_last=True). Without drop_last, "
                  "DistributedSampler repeats the first indices of the order so that "
                  "every rank reads as many, and no example is left out.",
    "drop_last": "each rank reads floor(n / P) indices: the tail of the shuffled order "
                 "is dropped, as with drop_last=True; without drop_last "
                 "DistributedSampler pads the order instead, so that no example is "
                 "left out.",
    "blocks": "each rank reads a contiguous block of the shuffled order; "
              "DistributedSampler gives rank r every P-th index, starting at "
              "position r.",
}


def _judge(fn, n, world_size, rank, epochs, seed, hows=None) -> None:
    what = _what(n, world_size, rank, epochs, seed)
    got = _answer(fn, n, world_size, rank, epochs, seed)
    ref = reference(n, world_size, rank, epochs, seed)
    if got == ref:
        return
    hows = hows or ["same order", *MESSAGES, "ranks disagree", "epoch shifted"]
    if "same order" in hows and _epochs_alike(got):
        raise CheckFailure(f"{what}: every epoch reads the same indices in the same "
                           f"order ({_short(got[0], 60)}): the shuffle never changes.")
    for how in MESSAGES:
        if how in hows and got == mistaken(n, world_size, rank, epochs, seed, how):
            raise CheckFailure(f"{what}: {MESSAGES[how]}")
    if "ranks disagree" in hows:
        never, more = _reads(fn, n, world_size, 0, epochs, seed)
        if never and more:
            raise CheckFailure(
                f"{what}: in epoch 0, over the {world_size} ranks, the examples "
                f"{never[:8]} are read by no rank, and {more[:8]} by several: the "
                "ranks do not split one shared order between them.")
    if "epoch shifted" in hows:
        later = reference(n, world_size, rank, epochs + 1, seed)
        if got == later[1:]:
            raise CheckFailure(f"{what}: epoch e reads what epoch e + 1 should: the "
                               "epochs are counted from 1.")
    for e, (a, b) in enumerate(zip(got, ref)):
        if a != b:
            raise CheckFailure(f"{what}: epoch {e} reads {_short(a, 60)}, expected "
                               f"{_short(b, 60)}.", basic=len(hows) < 3)


_HINT = ("Every rank must shuffle the data set the same way, so that each takes its "
         "own share of one order; and the order must change from one epoch to the "
         "next. Look at what the sampler's seed is, and at what tells it the epoch.")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(epoch_indices):
            _judge(epoch_indices, *CASES[name])

    _core(_name)


@q.case("a new order every epoch",
        hint="DistributedSampler shuffles with a generator seeded by its seed plus its "
             "epoch, and its epoch is 0 until set_epoch tells it otherwise: told "
             "nothing, it gives every epoch the same order.")
def _(epoch_indices):
    _judge(epoch_indices, *CASES["10 examples, 2 ranks, rank 1, 3 epochs"],
           hows=["same order"])


@q.case("the ranks share one shuffled order, each reading its own part",
        hint="A rank's share is every P-th index of one permutation. If every rank "
             "draws its own permutation (a seed that depends on the rank), the shares "
             "overlap: some examples are read twice per epoch and others never.")
def _(epoch_indices):
    _judge(epoch_indices, *CASES["17 examples, 4 ranks, rank 2 (padded), 3 epochs, "
                                 "seed 42"], hows=["ranks disagree"])


@q.case("the first epoch is epoch 0",
        hint="Epochs are numbered from 0, as DistributedSampler numbers them: the "
             "first epoch's order is the one seeded by the seed itself.")
def _(epoch_indices):
    _judge(epoch_indices, *CASES["23 examples, 3 ranks, rank 0 (padded), 2 epochs, "
                                 "seed 5"], hows=["epoch shifted"])


@q.case("every rank reads ceil(n / P) indices: the order is padded",
        hint="Without drop_last, DistributedSampler repeats the first indices of the "
             "shuffled order until its length is a multiple of P: every rank reads as "
             "many indices, and every example is read.")
def _(epoch_indices):
    _judge(epoch_indices, *CASES["7 examples, 3 ranks, rank 2, 2 epochs, seed 1"],
           hows=["no padding", "drop_last"])


@q.case("a rank reads every P-th index of the shuffled order",
        hint="DistributedSampler interleaves the ranks: rank r reads the positions r, "
             "r + P, r + 2P, ... of the padded order, not a block of it.")
def _(epoch_indices):
    _judge(epoch_indices, *CASES["10 examples, 2 ranks, rank 1, 3 epochs"],
           hows=["blocks"])


@q.case("a list of lists of Python ints", kind="property",
        hint="Return a list with one list per epoch, each holding the indices as "
             "Python ints (list(sampler) gives them).")
def _(epoch_indices):
    n, p, r, epochs, seed = CASES["7 examples, 3 ranks, rank 2, 2 epochs, seed 1"]
    got = call(epoch_indices, n, p, r, epochs, seed, name="epoch_indices")
    what = _what(n, p, r, epochs, seed)
    if not isinstance(got, list) or not all(isinstance(e, list) for e in got):
        kinds = (f", a {type(got).__name__} of "
                 + " and ".join(sorted({type(e).__name__ for e in got}))
                 if isinstance(got, (list, tuple)) and got else "")
        raise CheckFailure(f"{what} returned {_short(got)}{kinds}; expected a list of "
                           "lists of Python ints.")
    bad = [v for e in got for v in e if isinstance(v, bool) or not isinstance(v, int)]
    if bad:
        raise CheckFailure(f"{what} holds {_short(bad[0])}, a {type(bad[0]).__name__}; "
                           "expected Python ints.")
