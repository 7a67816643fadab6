"""Checks of 09.min_workers: the fewest data-parallel workers on which a training step
with Adam fits in a device's memory, at a ZeRO stage (Rajbhandari et al. 2020)."""
from __future__ import annotations

import math

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import GB

q = question("09.min_workers", "The fewest workers on which a model trains",
             answers=["min_workers"], timeout=5)


def bytes_per_param(mixed_precision: bool, master_weights: bool = True):
    """(weights, gradients, optimizer states) bytes per parameter with Adam."""
    if not mixed_precision:
        return 4, 4, 8                           # float32 weights, gradients, 2 moments
    return 2, 2, 12 if master_weights else 8     # 16-bit; float32 master copy, moments


def worker_bytes(n, P, stage, mixed_precision=False, activation_bytes=0,
                 how=None) -> float:
    """Bytes one of P workers holds (as the lesson counts them), or what mistake
    ``how`` counts."""
    w, g, o = bytes_per_param(mixed_precision and how != "float32 bytes",
                              how != "no master weights")
    if how == "stage off by one":
        stage += 1
    shard = n / P if how == "no ceil" else math.ceil(n / P)
    act = activation_bytes / P if how == "activations sharded" else activation_bytes
    return (w * (shard if stage >= 3 else n) + g * (shard if stage >= 2 else n)
            + o * (shard if stage >= 1 else n) + act)


def reference(n, memory_bytes, stage, mixed_precision=False, activation_bytes=0,
              how=None):
    """The smallest P with worker_bytes(P) <= memory_bytes; None if there is none."""
    def fits(P):
        return worker_bytes(n, P, stage, mixed_precision, activation_bytes,
                            how) <= memory_bytes

    hi = n if how != "activations sharded" else 10 * n
    if not fits(hi):
        return None
    lo = 1
    while lo < hi:  # worker_bytes does not grow with P: bisect
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


CASES = {  # name: (n_params, memory in bytes, stage, mixed precision, activations)
    "1.3 billion parameters in float32, stage 1, 16 GB, 4 GB of activations":
        (1_300_000_000, 16 * GB, 1, False, 4 * GB),
    "7 billion, mixed precision, stage 2, 40 GB, 20 GB of activations":
        (7_000_000_000, 40 * GB, 2, True, 20 * GB),
    "70 billion, mixed precision, stage 3, 141 GB, 30 GB of activations":
        (70_000_000_000, 141 * GB, 3, True, 30 * GB),
    "1.5 billion, mixed precision, stage 1, 24 GB, 12 GB of activations":
        (1_500_000_000, 24 * GB, 1, True, 12 * GB),
    "1000 parameters, stage 3, where a shard's rounding up matters":
        (1000, 16 * 333 + 15, 3, True, 0),
}
NO_FIT = {
    "7 billion in float32 at stage 0 on 80 GB": (7_000_000_000, 80 * GB, 0, False,
                                                  10 * GB),
    "70 billion, mixed precision, stage 2 on 80 GB": (70_000_000_000, 80 * GB, 2,
                                                       True, 10 * GB),
}


def _what(args) -> str:
    n, memory, stage, mixed, act = args
    return (f"min_workers(n_params={n:,}, memory_bytes={memory:,}, stage={stage}, "
            f"mixed_precision={mixed}, activation_bytes={act:,})")


def _gib(x: float) -> str:
    return f"{x / GB:.4g} GB" if x >= 10 ** 6 else f"{x:,.0f} bytes"


def _answer(fn, args):
    """The answer's number of workers, or "ValueError" if it raised one."""
    try:
        got = call(fn, *args, name="min_workers")
    except ValueError:
        return "ValueError"
    value = as_number(got, _what(args))
    return int(value) if value == int(value) else value


MESSAGES = {
    "activations sharded": "the activations are divided among the workers, but no "
                           "ZeRO stage shards them: each worker keeps those of its own "
                           "batch.",
    "no ceil": "the shards are counted as n_params / P parameters; a worker's shard "
               "is a whole number of parameters, rounded up.",
    "no master weights": "mixed precision's optimizer also keeps a float32 copy of "
                         "the weights (the master weights), 4 more bytes per "
                         "parameter.",
    "stage off by one": "the stage shards one kind of state too many.",
    "float32 bytes": "mixed precision was counted as float32 training (4 + 4 + 8 bytes "
                     "per parameter): the total is 16 bytes either way, but the 16-bit "
                     "weights and gradients take 2 + 2 bytes and the optimizer's "
                     "states 12 (its moments and the float32 master weights), and the "
                     "stages shard those parts differently.",
}


def _judge(fn, args, hows=None) -> None:
    got = _answer(fn, args)
    ref = reference(*args)
    if got == ref:
        return
    what = _what(args)
    n, memory, stage, mixed, act = args
    if got == "ValueError":
        message = (f"{what} raised ValueError, but {ref} worker(s) suffice: each then "
                   f"holds {_gib(worker_bytes(n, ref, *args[2:]))} of {_gib(memory)}")
        found = [how for how in hows or MESSAGES if reference(*args, how=how) is None
                 and _confirms(fn, args, how)]
        if len(found) == 1:
            raise CheckFailure(f"{message}; {MESSAGES[found[0]]}")
        raise CheckFailure(message + ".", basic=hows is not None)
    message = f"{what} returned {got:g}, expected {ref}"
    found = [how for how in hows or MESSAGES if got == reference(*args, how=how)]
    if len(found) == 1:
        raise CheckFailure(f"{message}: {MESSAGES[found[0]]}")
    if found:  # a whole number: several mistakes can give it; name each, blame none
        raise CheckFailure(f"{message}; each of these mistakes gives that here: "
                           + " Or ".join(MESSAGES[how] for how in found))
    if isinstance(got, int) and got >= 1:
        need = worker_bytes(n, got, *args[2:])
        if need > memory:
            message += (f" (with {got} workers each needs {_gib(need)}, more than "
                        f"{_gib(memory)})")
        else:
            message += f" ({ref} already fit: each then needs " \
                       f"{_gib(worker_bytes(n, ref, *args[2:]))})"
    raise CheckFailure(message + ".", basic=hows is not None)


def _confirms(fn, args, how) -> bool:
    """Does the answer compute what mistake ``how`` does on a larger device, where the
    mistake gives a number (and the right count another)? (An answer that raises
    ValueError wherever the mistake finds no number may raise it for another reason.)"""
    n, memory, stage, mixed, act = args
    for scale in (1.1, 1.25, 1.5, 2, 4, 16):
        probe = (n, int(memory * scale), stage, mixed, act)
        wrong = reference(*probe, how=how)
        if wrong is not None and wrong != reference(*probe):
            try:
                return _answer(fn, probe) == wrong
            except Exception:
                return False
    return False


_HINT = ("Count, as the lesson does, the bytes of one worker: weights, gradients and "
         "Adam's states, each whole or a shard depending on the stage, plus the "
         "activations of its batch. Then find the smallest number of workers for which "
         "that fits; the shards stop shrinking once each holds one parameter.")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(min_workers):
            _judge(min_workers, CASES[name])

    _core(_name)


def _mistake_case(name, how, hint, case):
    @q.case(name, hint=hint)
    def _(min_workers):
        _judge(min_workers, CASES[case], hows=[how])


_mistake_case("each worker keeps the activations of its own batch",
              "activations sharded",
              "Data parallelism splits the global batch, but each worker's activations "
              "are those of its own batch, whatever the stage: they do not shrink "
              "with more workers.",
              "7 billion, mixed precision, stage 2, 40 GB, 20 GB of activations")
_mistake_case("a shard holds a whole number of parameters", "no ceil",
              "When P does not divide n_params, the shards are padded to the same "
              "size: a worker holds n_params / P parameters rounded up.",
              "1000 parameters, stage 3, where a shard's rounding up matters")
_mistake_case("mixed precision keeps float32 master weights", "no master weights",
              "With 16-bit weights and gradients, Adam still updates a float32 copy of "
              "the weights and keeps its moments in float32: 12 bytes per parameter "
              "of optimizer states.",
              "70 billion, mixed precision, stage 3, 141 GB, 30 GB of activations")
_mistake_case("mixed precision: 2 + 2 bytes of 16-bit weights and gradients, 12 of "
              "optimizer states", "float32 bytes",
              "With mixed precision what a stage keeps whole is smaller (the 16-bit "
              "weights and gradients) and what stage 1 shards larger (Adam's moments "
              "and the float32 master weights) than in float32.",
              "7 billion, mixed precision, stage 2, 40 GB, 20 GB of activations")
_mistake_case("stage 2 shards the optimizer states and the gradients only",
              "stage off by one",
              "Stage 1 shards the optimizer states, stage 2 the gradients too, stage 3 "
              "the weights too (stage 0 is plain data parallelism).",
              "7 billion, mixed precision, stage 2, 40 GB, 20 GB of activations")


@q.case("a model that fits on one worker needs one",
        hint="When the whole training step fits on one device, at any stage, one "
             "worker is enough.")
def _(min_workers):
    for args in [(10_000_000, 8 * GB, 0, False, GB), (10_000_000, 8 * GB, 3, True,
                                                        GB)]:
        _judge(min_workers, args)


def _no_fit_case(name, hint):
    @q.case(f"{name}: no number of workers suffices (ValueError)", hint=hint)
    def _(min_workers):
        args = NO_FIT[name]
        what = _what(args)
        try:
            got = call(min_workers, *args, name="min_workers")
        except ValueError:
            return
        if got is None:
            raise CheckFailure(f"{what} returned None; when no number of workers is "
                               "enough, raise ValueError (a caller would take None for "
                               "a number).")
        got = _answer(min_workers, args)
        n, memory, stage, mixed, act = args
        whole = worker_bytes(n, n, stage, mixed, act)
        raise CheckFailure(f"{what} returned {_short(got)}, expected a ValueError: "
                           f"even with one parameter per shard a worker holds "
                           f"{_gib(whole)}, more than {_gib(memory)}.")


_no_fit_case("7 billion in float32 at stage 0 on 80 GB",
             "Plain data parallelism (stage 0) gives every worker a full copy of the "
             "model and its states: more workers shrink nobody's memory. Raise "
             "ValueError when no number of workers makes the step fit.")
_no_fit_case("70 billion, mixed precision, stage 2 on 80 GB",
             "At stages 1 and 2 what is not sharded stays whole on every worker "
             "(the weights at stage 2), however many workers share the rest: "
             "when that part alone does not fit, raise ValueError.")


@q.case("returns a Python int", kind="property",
        hint="Return the number of workers as an int (math.ceil returns one; "
             "a division returns a float).")
def _(min_workers):
    args = CASES["70 billion, mixed precision, stage 3, 141 GB, 30 GB of activations"]
    got = call(min_workers, *args, name="min_workers")
    if isinstance(got, bool) or not isinstance(got, int):
        raise CheckFailure(f"{_what(args)} returned {_short(got)}, a "
                           f"{type(got).__name__}; expected a Python int.")
