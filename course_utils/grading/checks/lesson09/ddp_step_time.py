"""Checks of 09.ddp_step_time: how long DDP's backward pass and gradient all-reduces
take together, with the gradients in buckets whose all-reduce overlaps the rest of the
backward pass (Li et al. 2020).

The buckets are DDP's: filled with the gradients in the order the backward pass
produces them, and closed once they hold at least the cap (the tests check this rule
against PyTorch's own ``_compute_bucket_assignment_by_size``); each all-reduce costs
what the lesson's model of a ring all-reduce says.
"""
from __future__ import annotations

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import _num, close

q = question("09.ddp_step_time", "Overlapping the all-reduce with the backward pass",
             answers=["ddp_step_time"], timeout=5)

MB = 2 ** 20


def buckets(grad_bytes, bucket_bytes, how=None) -> list[list[int]]:
    """The layers (indices, in backward order) of each bucket."""
    if how == "one bucket":
        return [list(range(len(grad_bytes)))]
    if how == "bucket per layer":
        return [[i] for i in range(len(grad_bytes))]
    out, current, size = [], [], 0
    for i, b in enumerate(grad_bytes):
        if how == "at most the cap" and current and size + b > bucket_bytes:
            out.append(current)
            current, size = [], 0
        current.append(i)
        size += b
        full = size > bucket_bytes if how == "more than the cap" else \
            size >= bucket_bytes
        if how != "at most the cap" and full:
            out.append(current)
            current, size = [], 0
    if current:
        out.append(current)
    return out


def allreduce_time(m, world_size, latency, bandwidth, how=None) -> float:
    """The lesson's ring all-reduce of m bytes (or a typical mistake's)."""
    P = world_size
    if P == 1:
        return 0.0
    if how == "whole message per step":
        return 2 * (P - 1) * (latency + m / bandwidth)
    if how == "one latency":
        return latency + 2 * (P - 1) / P * m / bandwidth
    if how == "reduce-scatter only":
        return (P - 1) * latency + (P - 1) / P * m / bandwidth
    if how == "no ring factor":
        return 2 * (P - 1) * latency + m / bandwidth
    return 2 * (P - 1) * latency + 2 * (P - 1) / P * m / bandwidth


def reference(grad_bytes, backward_times, bucket_bytes, world_size, latency,
              bandwidth, how=None) -> float:
    """The time from the start of the backward pass to the end of the last
    all-reduce (or what mistake ``how`` computes)."""
    if how == "reversed":
        grad_bytes, backward_times = grad_bytes[::-1], backward_times[::-1]
    ready, t = [], 0.0
    for dt in backward_times:
        t += dt
        ready.append(t)  # ready[i]: when layer i's gradient exists
    cost = how if how in ("whole message per step", "one latency",
                          "reduce-scatter only", "no ring factor") else None
    free, ends = 0.0, []
    for bucket in buckets(grad_bytes, bucket_bytes, how):
        m = sum(grad_bytes[i] for i in bucket)
        comm = allreduce_time(m, world_size, latency, bandwidth, cost)
        start = ready[bucket[0] if how == "first gradient" else bucket[-1]]
        if how == "no overlap":
            start = t
        if how != "in parallel":
            start = max(start, free)
        free = start + comm
        ends.append(free)
    return max([t] + ends)


CASES = {  # name: (grad_bytes, backward_times, bucket_bytes, P, latency, bandwidth)
    "4 layers, 2 buckets, 4 workers": (
        [3 * MB, 2 * MB, 4 * MB, 1 * MB], [0.002, 0.001, 0.003, 0.001], 5 * MB, 4,
        1e-4, 1e9),
    "a GPT-like model in 25 MiB buckets on 8 workers": (
        [50 * MB] + [12 * MB, 4 * MB, 12 * MB, 4 * MB] * 6 + [50 * MB],
        [0.004] + [0.003, 0.001, 0.003, 0.001] * 6 + [0.001], 25 * MB, 8, 2e-5,
        1.25e10),
    "a layer larger than the cap, 2 workers": (
        [1 * MB, 40 * MB, 2 * MB, 2 * MB], [0.001, 0.006, 0.001, 0.002], 25 * MB, 2,
        5e-5, 5e9),
    "a slow network: the all-reduces wait for each other": (
        [8 * MB, 8 * MB, 8 * MB], [0.001, 0.001, 0.001], 8 * MB, 16, 1e-4, 1e9),
    "one worker: nothing to reduce": (
        [8 * MB, 4 * MB], [0.0025, 0.004], 4 * MB, 1, 1e-4, 1e9),
}


def _what(args) -> str:
    grads, times, cap, P, latency, bandwidth = args
    return (f"ddp_step_time(grad_bytes ({len(grads)} layers, {sum(grads) / MB:g} MiB), "
            f"backward_times (total {_num(sum(times))} s), bucket_bytes={cap / MB:g} "
            f"MiB, world_size={P}, latency={latency:g}, bandwidth={bandwidth:g})")


MESSAGES = {
    "no overlap": "the all-reduces start only after the whole backward pass: DDP "
                  "starts a bucket's all-reduce as soon as its gradients are ready, "
                  "while the backward pass goes on.",
    "at most the cap": "the buckets never exceed the cap; DDP closes a bucket once it "
                       "holds at least the cap, the gradient that crosses it included.",
    "in parallel": "the all-reduces run at the same time; they share one network and "
                   "run one after the other, in the order of the buckets.",
    "whole message per step": "each step of the ring sends the whole bucket; it sends "
                              "one chunk, a P-th of it.",
    "one latency": "an all-reduce pays the latency once; the ring takes 2 (P - 1) "
                   "steps, each paying it.",
    "reduce-scatter only": "this is the time of the reduce-scatter alone; the ring "
                           "all-reduce is a reduce-scatter, then an all-gather.",
    "no ring factor": "the bandwidth term is the bucket's bytes over the bandwidth; in "
                      "the ring each worker sends 2 (P - 1) / P times the bucket, as "
                      "the lesson's model of its time says.",
    "reversed": "the layers were taken in reverse: the lists are already in the order "
                "the backward pass produces the gradients (the last layer's first), "
                "the order in which DDP fills its buckets.",
    "more than the cap": "a bucket closes only once it holds more than the cap; DDP "
                         "closes it as soon as it holds at least the cap (a bucket "
                         "of exactly the cap is full).",
    "first gradient": "a bucket's all-reduce starts when its first gradient is ready; "
                      "it can start only once all its gradients are (its last one).",
    "one bucket": "all the gradients are all-reduced at once, after the backward pass: "
                  "DDP cuts them into buckets of the cap, whose all-reduces start while "
                  "the backward pass goes on.",
    "bucket per layer": "every layer's gradient is all-reduced on its own; DDP packs "
                        "the gradients into buckets of at least the cap, and pays the "
                        "latency once per bucket.",
}


def _judge(fn, args, hows=None) -> None:
    grads, times, cap, P, latency, bandwidth = args
    got = as_number(call(fn, list(grads), list(times), cap, P, latency, bandwidth,
                         name="ddp_step_time"), _what(args))
    ref = reference(*args)
    if close(got, ref):
        return
    message = f"{_what(args)} returned {_num(got)} s, expected {_num(ref)} s"
    found = [how for how in MESSAGES if close(got, reference(*args, how=how))]
    if hows is not None and not set(hows) & set(found):
        found = []  # not the mistake this case looks for
    if len(found) == 1:
        raise CheckFailure(f"{message}: {MESSAGES[found[0]]}")
    if found:  # two mistakes give the same time here: name each, blame none
        raise CheckFailure(f"{message}; each of these mistakes gives that here: "
                           + " Or ".join(MESSAGES[how] for how in found),
                           basic=hows is not None)
    raise CheckFailure(message + ".", basic=hows is not None)


_HINT = ("Put the gradients into buckets in the order the backward pass produces "
         "them, as DDP does; a bucket's all-reduce can start when its last gradient is "
         "ready and the previous all-reduce has ended, and takes the time of the "
         "lesson's ring all-reduce of its bytes. The step ends when both the backward "
         "pass and the last all-reduce have.")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(ddp_step_time):
            _judge(ddp_step_time, CASES[name])

    _core(_name)


def _mistake_case(name, how, hint, case):
    @q.case(name, hint=hint)
    def _(ddp_step_time):
        _judge(ddp_step_time, CASES[case], hows=[how])


_mistake_case("a bucket's all-reduce overlaps the rest of the backward pass",
              "no overlap",
              "The last layers' gradients are ready first: their bucket can be reduced "
              "while the backward pass computes the earlier layers' gradients.",
              "4 layers, 2 buckets, 4 workers")
_mistake_case("a bucket closes once it reaches the cap", "at most the cap",
              "DDP adds gradients to the bucket until its size reaches the cap (25 MiB "
              "by default), so a bucket holds at least the cap, and may hold more.",
              "a layer larger than the cap, 2 workers")
_mistake_case("the all-reduces run one after the other", "in parallel",
              "The workers' links are used by one all-reduce at a time: a bucket whose "
              "gradients are ready waits for the previous bucket's all-reduce to end.",
              "a slow network: the all-reduces wait for each other")
_mistake_case("each step of the ring sends a P-th of the bucket",
              "whole message per step",
              "The ring cuts the bucket into P chunks: each of its steps sends one "
              "chunk, which is why its traffic per worker hardly grows with P.",
              "a GPT-like model in 25 MiB buckets on 8 workers")
_mistake_case("each of the ring's steps pays the latency", "one latency",
              "Every step of the ring is a message of its own: 2 (P - 1) of them, each "
              "with its latency.",
              "a slow network: the all-reduces wait for each other")
_mistake_case("an all-reduce is a reduce-scatter and an all-gather",
              "reduce-scatter only",
              "After the reduce-scatter each worker holds one reduced chunk; the "
              "all-gather, as many steps again, gives every worker all of them.",
              "a GPT-like model in 25 MiB buckets on 8 workers")


_mistake_case("the gradients come in the order of the lists", "reversed",
              "grad_bytes and backward_times are given in the order of the backward "
              "pass already: the first entry is the first gradient produced (the last "
              "layer's), and the first bucket is filled from it.",
              "a layer larger than the cap, 2 workers")
_mistake_case("a bucket's all-reduce waits for its last gradient", "first gradient",
              "An all-reduce carries the whole bucket: it can start only when every "
              "gradient in it has been computed.",
              "a layer larger than the cap, 2 workers")


@q.case("returns a Python float, the inputs unchanged", kind="property",
        hint="Return the time in seconds as a float; do not change the lists given.")
def _(ddp_step_time):
    args = CASES["4 layers, 2 buckets, 4 workers"]
    got = call(ddp_step_time, *[list(a) if isinstance(a, list) else a for a in args],
               name="ddp_step_time")
    if not isinstance(got, float):
        raise CheckFailure(f"{_what(args)} returned {_short(got)}, a "
                           f"{type(got).__name__}; expected a Python float.")
