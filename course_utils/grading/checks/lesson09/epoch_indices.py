"""Checks of 09.epoch_indices: the examples a rank reads in each epoch, with a
``DistributedSampler`` used right (the exercise ships it used wrong: a seed that
depends on the rank, and no ``set_epoch``)."""
from __future__ import annotations

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
    return [_ints(e, f"{what}[{i}]") for i, e in enumerate(got)]


CASES = {  # name: (n, world_size, rank, epochs, seed)
    "10 examples, 2 ranks, rank 1, 3 epochs": (10, 2, 1, 3, 0),
    "23 examples, 3 ranks, rank 0 (padded), 2 epochs, seed 5": (23, 3, 0, 2, 5),
    "17 examples, 4 ranks, rank 2 (padded), 3 epochs, seed 42": (17, 4, 2, 3, 42),
    "7 examples, 3 ranks, rank 2, 2 epochs, seed 1": (7, 3, 2, 2, 1),
}


def _epochs_alike(got) -> bool:
    return len(got) > 1 and all(e == got[0] for e in got[1:])


def _never_read(fn, n, world_size, epoch, epochs, seed) -> list[int]:
    """The examples that no rank of the answer reads in ``epoch``."""
    seen = set()
    for rank in range(world_size):
        seen.update(_answer(fn, n, world_size, rank, epochs, seed)[epoch])
    return [i for i in range(n) if i not in seen]


def _judge(fn, n, world_size, rank, epochs, seed, hows=None) -> None:
    what = _what(n, world_size, rank, epochs, seed)
    got = _answer(fn, n, world_size, rank, epochs, seed)
    ref = reference(n, world_size, rank, epochs, seed)
    if got == ref:
        return
    hows = hows or ["same order", "ranks disagree", "epoch shifted"]
    if "same order" in hows and _epochs_alike(got):
        raise CheckFailure(f"{what}: every epoch reads the same indices in the same "
                           f"order ({_short(got[0], 60)}): the shuffle never changes.")
    if "ranks disagree" in hows:
        never = _never_read(fn, n, world_size, 0, epochs, seed)
        if never:
            raise CheckFailure(
                f"{what}: in epoch 0, over the {world_size} ranks, the examples "
                f"{never[:8]} are read by no rank, and others by several: the ranks "
                "do not split one shared order between them.")
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


@q.case("a list of lists of Python ints", kind="property",
        hint="Return a list with one list per epoch, each holding the indices as "
             "Python ints (list(sampler) gives them).")
def _(epoch_indices):
    n, p, r, epochs, seed = CASES["7 examples, 3 ranks, rank 2, 2 epochs, seed 1"]
    got = call(epoch_indices, n, p, r, epochs, seed, name="epoch_indices")
    what = _what(n, p, r, epochs, seed)
    if not isinstance(got, list) or not all(isinstance(e, list) for e in got):
        raise CheckFailure(f"{what} returned {_short(got)}; expected a list of lists.")
    bad = [v for e in got for v in e if isinstance(v, bool) or not isinstance(v, int)]
    if bad:
        raise CheckFailure(f"{what} holds {_short(bad[0])}, a {type(bad[0]).__name__}; "
                           "expected Python ints.")
