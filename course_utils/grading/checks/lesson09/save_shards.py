"""Checks of 09.save_shards: a sharded checkpoint (ZeRO stage 3, FSDP), in which every
rank writes the shard only it holds, rank 0 alone the metadata, and every rank waits at
a barrier.

The ranks are simulated in one process, one call per rank (the other ranks first, rank
0 last); the barrier is a function that records who reached it and whether the rank's
files were complete then. Each rank's shard is handed over as FSDP holds it: a view
into the flat buffer of every parameter, whose storage ``torch.save`` would write whole.
"""
from __future__ import annotations

import math
import os
import tempfile

import torch

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import generator

q = question("09.save_shards", "A sharded checkpoint: every rank writes its own",
             answers=["save_shards"], timeout=10)


def _complete(path) -> bool:
    """Is there a complete file at ``path`` (whatever it holds)?"""
    try:
        torch.load(path, weights_only=False, map_location="cpu")
    except Exception:
        return False
    return True


class Run:
    """What the answer did, rank by rank, in one temporary folder."""

    def __init__(self, fn, numel, world_size, seed=0):
        self.numel, self.world_size = numel, world_size
        size = math.ceil(numel / world_size)
        flat = torch.full((size * world_size,), float("nan"))  # padded at the end
        flat[:numel] = torch.randn(numel, generator=generator(seed + numel))
        self.shards = [flat[r * size:(r + 1) * size] for r in range(world_size)]
        self.expected = [v.clone() for v in self.shards]
        self.shard_bytes = 4 * size
        self.what = (f"save_shards(folder, values, numel={numel:,}, rank, "
                     f"world_size={world_size}, barrier) on each of {world_size} "
                     "rank(s)")
        self.barriers = {r: [] for r in range(world_size)}
        self.written_by, self.files, self.sizes = {}, {}, {}
        with tempfile.TemporaryDirectory() as folder:
            for rank in list(range(1, world_size)) + [0]:
                mine = [os.path.join(folder, f"shard-{rank}.pt")]
                if rank == 0:
                    mine.append(os.path.join(folder, "meta.pt"))

                def barrier(mine=mine, rank=rank):
                    self.barriers[rank].append(all(_complete(p) for p in mine))

                before = set(os.listdir(folder))
                call(fn, folder, self.shards[rank], numel, rank, world_size, barrier,
                     check_mutation=False, name="save_shards")
                self.written_by[rank] = sorted(set(os.listdir(folder)) - before)
            self.unchanged = all(torch.allclose(a, b, equal_nan=True)
                                 for a, b in zip(self.shards, self.expected))
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                self.sizes[name] = os.path.getsize(path)
                try:
                    self.files[name] = torch.load(path, weights_only=True,
                                                  map_location="cpu")
                except Exception as exc:
                    self.files[name] = exc

    # Each problem: None, or what the answer did wrong, in the learner's terms.
    def rank0_only(self):
        silent = [r for r in range(1, self.world_size) if not self.written_by[r]]
        if silent:
            return (f"rank {silent[0]} wrote nothing: under sharding each rank holds a "
                    "part of the model no other rank has, so every rank writes its "
                    "own shard (rank 0 alone is DDP's rule, where all hold the same).")

    def meta_writers(self):
        writers = [r for r in range(1, self.world_size)
                   if "meta.pt" in self.written_by[r]]
        if writers:
            return (f"rank {writers[0]} wrote meta.pt too: every rank writes the same "
                    "small file at once, a race; rank 0 alone writes it.")

    def missing_barrier(self):
        absent = [r for r, calls in self.barriers.items() if not calls]
        if absent and len(absent) < self.world_size:
            waiting = [r for r in self.barriers if self.barriers[r]]
            return (f"rank {absent[0]} never calls the barrier: rank {waiting[0]} "
                    "would wait there forever (a hang, not an error).")
        if absent:
            return ("no rank calls the barrier: a rank may go on (or exit) before the "
                    "others have written their shards.")
        if len({len(c) for c in self.barriers.values()}) > 1:
            return ("the ranks call the barrier different numbers of times: the ranks "
                    "that call it more often would wait forever.")

    def early_barrier(self):
        early = [r for r, calls in self.barriers.items() if calls and not calls[-1]
                 and f"shard-{r}.pt" in self.sizes]  # written, but after the barrier
        if early:
            return (f"rank {early[0]} reaches the barrier before its files are "
                    "written: the barrier must mean that the checkpoint is complete.")

    def contents(self):
        names = [f"shard-{r}.pt" for r in range(self.world_size)] + ["meta.pt"]
        for name in names:
            if name not in self.files:
                return f"there is no {name} in the folder."
            if isinstance(self.files[name], Exception):
                return (f"torch.load cannot read {name} with weights_only=True (its "
                        "default): it holds pickled objects, not tensors and numbers "
                        f"({type(self.files[name]).__name__}).")
        meta = self.files["meta.pt"]
        if not isinstance(meta, dict) or meta.get("numel") != self.numel or \
                meta.get("world_size") != self.world_size:
            return (f"meta.pt holds {_short(meta)}; expected {{'numel': {self.numel}, "
                    f"'world_size': {self.world_size}}}.")
        size = self.expected[0].numel()
        for r in range(self.world_size):
            got = self.files[f"shard-{r}.pt"]
            values = got.get("values") if isinstance(got, dict) else None
            data = max(0, min(size, self.numel - r * size))  # the rest is padding
            name = f"shard-{r}.pt"
            if not isinstance(got, dict) or got.get("rank") != r or \
                    not isinstance(values, torch.Tensor):
                return (f"{name} holds {_short(got)}; expected {{'rank': {r}, "
                        f"'values': the {size} values rank {r} was given}}.")
            if values.dtype != torch.float32:
                return (f"{name} holds the values as {values.dtype}; the shard given "
                        "is float32: save it as it is.")
            if values.shape != self.expected[r].shape:
                return (f"{name} holds {values.numel()} values, shape "
                        f"{tuple(values.shape)}; rank {r}'s shard has {size}, shape "
                        f"({size},): save the whole shard, its padding included "
                        "(every shard has the same size).")
            if not torch.equal(values.detach().cpu()[:data], self.expected[r][:data]):
                return (f"{name} holds other values than the {size} rank {r} was "
                        "given.")

    def whole_storage(self):
        big = {n: s for n, s in self.sizes.items()
               if n.startswith("shard-") and s > 2 * self.shard_bytes + 4096}
        if big:
            name, size = next(iter(big.items()))
            return (f"{name} takes {size:,} bytes for a shard of {self.shard_bytes:,}: "
                    "the shard is a view into the buffer of every parameter, and "
                    "torch.save writes a view's whole storage.")


PROBLEMS = ("rank0_only", "meta_writers", "missing_barrier", "early_barrier",
            "contents")


def _judge(fn, numel, world_size, hows=None) -> None:
    run = Run(fn, numel, world_size)
    for how in hows or PROBLEMS:
        problem = getattr(run, how)()
        if problem:
            raise CheckFailure(f"{run.what}: {problem}")


CASES = {  # name: (numel, world size)
    "2 ranks, 1,001 values": (1001, 2),
    "4 ranks, 10,003 values (the last shard padded)": (10003, 4),
    "1 rank, 50 values": (50, 1),
}

_HINT = ("Every rank saves the shard it was given, in its own file, rank 0 also the "
         "sizes the shards were cut from, and every rank then waits at the barrier, "
         "once its files are complete.")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(save_shards):
            _judge(save_shards, *CASES[name])

    _core(_name)


def _mistake_case(name, how, hint, case):
    @q.case(name, hint=hint)
    def _(save_shards):
        _judge(save_shards, *CASES[case], hows=[how])


_mistake_case("every rank writes its own shard", "rank0_only",
              "With DDP every rank holds the same model, and one copy is enough. With "
              "ZeRO stage 3 or FSDP a rank holds only its shard: if it does not write "
              "it, nobody can.", "4 ranks, 10,003 values (the last shard padded)")
_mistake_case("rank 0 alone writes the metadata", "meta_writers",
              "The sizes are the same on every rank: one writer is enough, and several "
              "writing one file at once can leave it corrupt.",
              "4 ranks, 10,003 values (the last shard padded)")
_mistake_case("every rank reaches the barrier", "missing_barrier",
              "A barrier returns only when every rank has reached it: called by some "
              "ranks and not by others, it hangs the run.",
              "4 ranks, 10,003 values (the last shard padded)")
_mistake_case("a rank reaches the barrier after writing", "early_barrier",
              "The barrier is there so that, once past it, every rank knows the whole "
              "checkpoint exists: write first, then wait.", "2 ranks, 1,001 values")
_mistake_case("a shard's file holds that shard only", "whole_storage",
              "torch.save of a view (a slice of a larger tensor) writes the whole "
              "storage under it: here every parameter of every rank. Save a copy of "
              "the view (.clone()) instead.",
              "4 ranks, 10,003 values (the last shard padded)")


@q.case("the folder holds the checkpoint's files only; the shards unchanged",
        kind="property",
        hint="Write shard-<rank>.pt and meta.pt and nothing else, and leave the values "
             "given as they were.")
def _(save_shards):
    run = Run(save_shards, 1001, 2, seed=5)
    extra = sorted(set(run.sizes) - {"shard-0.pt", "shard-1.pt", "meta.pt"})
    if extra:
        raise CheckFailure(f"{run.what}: the folder also holds {extra}.")
    if not run.unchanged:
        raise CheckFailure(f"{run.what}: the values given changed.")
