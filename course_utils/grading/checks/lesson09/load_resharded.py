"""Checks of 09.load_resharded: a sharded checkpoint (ZeRO stage 3, FSDP: one file per
rank) written by P_old ranks, each on its own GPU, loaded by a rank of a job restarted
with P_new ranks: its new shard, rebuilt from the old files it overlaps, on its device.

The checks write the old files themselves, as the old ranks would have: each shard file
is tagged for its rank's GPU (cuda:r), so that loading it without ``map_location`` fails
on a machine without that GPU, and the padding at the end of the last old shard holds
NaN (padding is not data: FSDP does not clear it). The oracle of the new shard is
FSDP's own ``FlatParamHandle._get_shard`` of the whole flat vector (the tests check that
the checks' shards are its shards).
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile

import torch
import torch.serialization as serialization

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _basic, generator

q = question("09.load_resharded", "Resuming a sharded checkpoint on another world size",
             answers=["load_resharded"], timeout=10)


def shard(flat: torch.Tensor, rank: int, world_size: int, pad=0.0) -> torch.Tensor:
    """Rank ``rank``'s shard of ``flat`` cut into ``world_size`` equal pieces of
    ceil(n / P) elements, the end padded with ``pad``."""
    size = math.ceil(flat.numel() / world_size)
    out = torch.full((size,), pad, dtype=flat.dtype)
    piece = flat[rank * size:(rank + 1) * size]
    out[:piece.numel()] = piece
    return out


@contextlib.contextmanager
def _tagged_as(location: str):
    """While the block runs, torch.save tags every storage with ``location`` (as if it
    lived there); the registry of locations is restored afterwards."""
    saved = list(serialization._package_registry)
    serialization.register_package(-1000, lambda storage: location,
                                   lambda obj, loc: None)
    try:
        yield
    finally:
        serialization._package_registry[:] = saved


def save_as_on(location: str, obj, path: str) -> None:
    """torch.save(obj, path), its tensors tagged for ``location`` (cuda:r)."""
    with _tagged_as(location):
        torch.save(obj, path)


def write_old_checkpoint(folder: str, flat: torch.Tensor, world_size: int) -> None:
    """The files of the old run: meta.pt (by rank 0) and shard-<r>.pt (by every rank,
    from its GPU), as the question describes them."""
    torch.save({"numel": flat.numel(), "world_size": world_size},
               os.path.join(folder, "meta.pt"))
    for r in range(world_size):
        values = shard(flat, r, world_size, pad=float("nan"))
        save_as_on(f"cuda:{r}", {"rank": r, "values": values},
                   os.path.join(folder, f"shard-{r}.pt"))


CASES = {  # name: (numel, old world size, new world size, rank)
    "10 values, 4 ranks -> 3, rank 1": (10, 4, 3, 1),
    "23 values, 2 ranks -> 5, the last rank (mostly padding)": (23, 2, 5, 4),
    "1,000 values, 3 ranks -> 3 (the same), rank 2": (1000, 3, 3, 2),
    "17 values, 4 ranks -> 1: the whole vector": (17, 4, 1, 0),
    "9 values, 4 ranks (the last old shard all padding) -> 2, rank 1": (9, 4, 2, 1),
}


class Run:
    """The answer called as rank ``rank`` of the new job on the old files; records the
    shard files it read."""

    def __init__(self, fn, numel, old, new, rank, seed=0):
        self.what = (f"load_resharded(folder of {old} shards of {numel:,} values, "
                     f"rank={rank}, world_size={new}, device=torch.device('cpu'))")
        self.numel = numel
        self.flat = torch.randn(numel, generator=generator(seed + numel))
        self.expected = shard(self.flat, rank, new)
        self.start = rank * self.expected.numel()
        self.read, self.error, self.got = [], None, None
        self.overlapping = _overlapping(numel, old, new, rank)
        load = torch.load

        def counting_load(f, *args, **kwargs):
            name = os.path.basename(str(f))
            if name.startswith("shard-"):
                self.read.append(int(name[len("shard-"):-len(".pt")]))
            return load(f, *args, **kwargs)

        with tempfile.TemporaryDirectory() as folder:
            write_old_checkpoint(folder, self.flat, old)
            torch.load = counting_load
            try:
                self.got = call(fn, folder, rank, new, torch.device("cpu"),
                                name="load_resharded")
            except RuntimeError as exc:
                if "deserialize object on" not in str(exc):
                    raise
                self.error = exc
            finally:
                torch.load = load

    def no_map_location(self):
        if self.error is not None:
            return (f"torch.load raised: {str(self.error).split('. ')[0]}. Each shard "
                    "was saved from its rank's GPU, and torch.load puts it back there "
                    "unless told where.")

    def values(self):
        got, ref = self.got, self.expected
        if got is None:
            raise _basic(f"{self.what} returned None: return this rank's new shard.",
                         problem="none")
        if not isinstance(got, torch.Tensor):
            raise _basic(f"{self.what} returned {_short(got)}; expected a tensor.",
                         problem="type")
        if got.ndim != 1:
            raise _basic(f"{self.what} has shape {tuple(got.shape)}, expected "
                         f"{tuple(ref.shape)}.", problem="shape")
        if got.numel() < ref.numel() and torch.equal(got.detach().cpu().float(),
                                                     ref[:got.numel()]):
            return (f"it returned {got.numel()} values, the shard's data without its "
                    f"padding; a shard of the new job holds {ref.numel()} values, its "
                    "end padded with zeros.")
        if got.shape != ref.shape:
            raise _basic(f"{self.what} has shape {tuple(got.shape)}, expected "
                         f"{tuple(ref.shape)}: ceil(numel / world_size) values.",
                         problem="shape")
        g = got.detach().cpu().double()
        if torch.isnan(g).any():
            nan = torch.isnan(g)
            data = max(0, min(ref.numel(), self.numel - self.start))
            if nan[:data].any():  # where the flat vector has values
                return (f"the shard holds NaN at {int(nan.sum())} position(s), "
                        f"{int(nan[:data].sum())} of them where the flat vector has "
                        "values (elements below numel): the old padding was read as "
                        "data, so the old shards' values were taken from the wrong "
                        "places. Old shard r holds elements r * ceil(numel / P_old) "
                        "onwards, and only the last one ends with padding.")
            return (f"the shard holds NaN at {int(nan.sum())} position(s), "
                    "the padding of the old shards: the values past numel are not "
                    "data.")
        if not torch.allclose(g, ref.double(), rtol=0, atol=0):
            wrong = int((g != ref.double()).sum())
            return (f"{wrong} of its {ref.numel()} values differ from elements "
                    f"{self.expected_range()} of the flat vector (and zeros past "
                    "numel).")

    def expected_range(self) -> str:
        return f"{self.start} to {self.start + self.expected.numel() - 1}"

    def device(self):
        if isinstance(self.got, torch.Tensor) and (
                self.got.device.type != "cpu" or self.got.dtype != torch.float32):
            return (f"it returned {self.got.dtype} on {self.got.device}; expected "
                    "float32 on the device given (map_location).")

    def reads(self):
        extra = sorted(set(self.read) - set(self.overlapping))
        if extra:
            return (f"it read the old shards {sorted(set(self.read))}; its new shard "
                    f"overlaps only {self.overlapping}: with thousands of ranks, every "
                    "rank reading every file is thousands of times the I/O.")


def _overlapping(numel, old, new, rank) -> list[int]:
    """The old ranks whose data (not padding) overlaps rank ``rank``'s new range."""
    new_size, old_size = math.ceil(numel / new), math.ceil(numel / old)
    start, stop = rank * new_size, min(numel, (rank + 1) * new_size)
    return [r for r in range(old) if r * old_size < stop and
            min(numel, (r + 1) * old_size) > start]


def _judge(fn, name, hows=None) -> None:
    numel, old, new, rank = CASES[name]
    run = Run(fn, numel, old, new, rank)
    for how in hows or ("no_map_location", "values"):
        problem = getattr(run, how)()
        if problem:
            raise CheckFailure(f"{run.what}: {problem}")


_HINT = ("Read meta.pt for the size of the flat vector and the old world size; the new "
         "shard of this rank is a range of that vector, with zeros past its end. Find "
         "which old shards hold that range, load them onto this rank's device, and "
         "copy the overlapping parts; the old padding is not data.")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(load_resharded):
            _judge(load_resharded, name)

    _core(_name)


@q.case("the shards are loaded onto this rank's device",
        hint="Each old rank saved its shard from its own GPU, and torch.load restores "
             "a tensor where it was saved from unless given map_location: this rank's "
             "device.")
def _(load_resharded):
    if torch.cuda.is_available():  # on a GPU machine some of the tags would load
        return
    numel, old, new, rank = CASES["10 values, 4 ranks -> 3, rank 1"]
    run = Run(load_resharded, numel, old, new, rank)
    problem = run.no_map_location()
    if problem:
        raise CheckFailure(f"{run.what}: {problem}")


@q.case("the old padding is not data",
        hint="The last old shard ends with padding (numel / P_old need not be whole), "
             "which may hold anything: only the first numel values of the old shards "
             "put end to end are the vector.")
def _(load_resharded):
    numel, old, new, rank = CASES["23 values, 2 ranks -> 5, the last rank (mostly "
                                  "padding)"]
    run = Run(load_resharded, numel, old, new, rank)
    if run.error is None and isinstance(run.got, torch.Tensor) and \
            torch.isnan(run.got.detach().double()).any():
        raise CheckFailure(f"{run.what}: the shard holds NaN, the padding of the old "
                           "shards.")


@q.case("every new shard has ceil(numel / world_size) values",
        hint="Under ZeRO stage 3 and FSDP every rank's shard has the same size, the "
             "last one padded with zeros, so that the collectives move equal chunks.")
def _(load_resharded):
    numel, old, new, rank = CASES["23 values, 2 ranks -> 5, the last rank (mostly "
                                  "padding)"]
    run = Run(load_resharded, numel, old, new, rank)
    size = math.ceil(numel / new)
    if run.error is None and isinstance(run.got, torch.Tensor) and \
            run.got.numel() != size:
        raise CheckFailure(f"{run.what} returned {run.got.numel()} values; every new "
                           f"shard has {size}.")


@q.case("a rank reads only the old shards it needs",
        hint="A rank's new range overlaps one or two old shards (a few more when the "
             "job shrinks): read meta.pt, work out which, and leave the other files "
             "alone.")
def _(load_resharded):
    numel, old, new, rank = CASES["1,000 values, 3 ranks -> 3 (the same), rank 2"]
    run = Run(load_resharded, numel, old, new, rank)
    problem = run.reads()
    if problem:
        raise CheckFailure(f"{run.what}: {problem}")


@q.case("a float32 tensor on the device given", kind="property",
        hint="Return the shard as the old shards hold it, float32, on `device`.")
def _(load_resharded):
    numel, old, new, rank = CASES["10 values, 4 ranks -> 3, rank 1"]
    run = Run(load_resharded, numel, old, new, rank)
    problem = run.device() if run.error is None else None
    if problem:
        raise CheckFailure(f"{run.what}: {problem}")
