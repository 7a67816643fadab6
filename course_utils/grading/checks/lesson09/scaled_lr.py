"""Checks of 09.scaled_lr: the effective batch of data-parallel training with gradient
accumulation, and its learning rate under the linear scaling rule with gradual warmup
(Goyal et al. 2017)."""
from __future__ import annotations

import math

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import _basic, _num, close

q = question("09.scaled_lr", "The learning rate of a larger effective batch",
             answers=["scaled_lr"], timeout=5)

NAMES = ("base_lr", "base_batch", "batch_per_worker", "world_size",
         "accumulation_steps", "step", "warmup_steps")


def reference(base_lr, base_batch, batch_per_worker, world_size, accumulation_steps,
              step, warmup_steps) -> tuple[int, float]:
    """(examples per optimizer step, the learning rate of optimizer step ``step``)."""
    batch = batch_per_worker * world_size * accumulation_steps
    target = base_lr * batch / base_batch
    if step < warmup_steps:
        return batch, base_lr + (target - base_lr) * step / warmup_steps
    return batch, target


def mistaken(args, how: str) -> tuple[float, float]:
    """What a typical mistake returns."""
    base_lr, base_batch, b, p, k, step, warmup = args
    if how == "no accumulation":
        return reference(base_lr, base_batch, b, p, 1, step, warmup)
    if how == "no world size":
        return reference(base_lr, base_batch, b, 1, k, step, warmup)
    batch, target = reference(base_lr, base_batch, b, p, k, warmup, warmup)
    if how == "square root":
        lr = base_lr * math.sqrt(batch / base_batch)
        if step < warmup:
            lr = base_lr + (lr - base_lr) * step / warmup
        return batch, lr
    if how == "warmup from 0":
        return batch, target * step / warmup if step < warmup else target
    if how == "warmup one step ahead":
        if step < warmup:
            return batch, base_lr + (target - base_lr) * (step + 1) / warmup
        return batch, target
    if how == "no warmup":
        return batch, target
    if how == "integer division":
        target = base_lr * (batch // base_batch)
        if step < warmup:
            return batch, base_lr + (target - base_lr) * step / warmup
        return batch, target
    if how == "scaled by P":
        target = base_lr * p
        if step < warmup:
            return batch, base_lr + (target - base_lr) * step / warmup
        return batch, target
    raise ValueError(how)


# name: (base_lr, base_batch, batch_per_worker, P, accumulation, step, warmup)
CASES = {
    "8 workers of 64 examples, after the warmup": (0.1, 256, 64, 8, 1, 3000, 500),
    "4 workers of 32 examples, 4 accumulation steps, no warmup":
        (0.05, 128, 32, 4, 4, 1000, 0),
    "16 workers of 64, 2 accumulation steps, a quarter into the warmup":
        (0.1, 256, 64, 16, 2, 125, 500),
    "step 0 of the warmup": (0.1, 256, 128, 8, 1, 0, 1000),
    "2 workers of 16 for a rate tuned on batches of 256": (0.4, 256, 16, 2, 1, 10, 0),
}


def _what(args) -> str:
    shown = ", ".join(f"{n}={_short(v)}" for n, v in zip(NAMES, args))
    return f"scaled_lr({shown})"


def _answer(fn, args) -> tuple[float, float]:
    got = call(fn, *args, name="scaled_lr")
    what = _what(args)
    if got is None:
        raise _basic(f"{what} returned None: return (effective batch, learning rate).",
                     problem="none")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise _basic(f"{what} returned {_short(got)}; expected a pair (effective "
                     "batch, learning rate).", problem="type")
    return as_number(got[0], f"{what}[0], the effective batch"), as_number(
        got[1], f"{what}[1], the learning rate")


MESSAGES = {
    "no accumulation": "the accumulation steps are left out: each optimizer step "
                       "averages the gradients of every accumulated micro-batch too.",
    "no world size": "the workers are left out: one optimizer step averages the "
                     "gradients of every worker's batch.",
    "square root": "the rate grows with the square root of the batch, not in "
                   "proportion to it (the linear scaling rule).",
    "warmup from 0": "the warmup starts from 0; Goyal et al.'s gradual warmup starts "
                     "from the base rate.",
    "warmup one step ahead": "the warmup is one step ahead: at step 0 the rate must be "
                             "the base rate itself, and the scaled rate is reached at "
                             "step warmup_steps, not one step earlier.",
    "no warmup": "the rate is the scaled one from step 0: the warmup is left out.",
    "integer division": "the batch's growth factor was rounded down (an integer "
                        "division //): the rule multiplies the rate by the exact "
                        "ratio of the batches, which may be a fraction.",
    "scaled by P": "the rate is multiplied by the number of workers; the linear "
                   "scaling rule multiplies it by the factor the batch grew by, "
                   "effective batch / base_batch.",
}


def _judge(fn, args, hows=None) -> None:
    batch, lr = _answer(fn, args)
    ref_batch, ref_lr = reference(*args)
    if batch == ref_batch and close(lr, ref_lr):
        return
    message = (f"{_what(args)} returned ({_num(batch)}, {_num(lr)}), expected "
               f"({ref_batch}, {_num(ref_lr)})")
    for how in hows or MESSAGES:
        wrong_batch, wrong_lr = mistaken(args, how)
        if batch == wrong_batch and close(lr, wrong_lr):
            raise CheckFailure(f"{message}: {MESSAGES[how]}")
    if batch != ref_batch:
        raise CheckFailure(f"{message}: the effective batch is wrong.",
                           basic=hows is not None)
    raise CheckFailure(message + ".", basic=hows is not None)


_HINT = ("The effective batch counts the examples whose gradients one optimizer step "
         "averages, over every worker and every accumulated micro-batch. The linear "
         "scaling rule multiplies the rate by the factor the batch grew by, and the "
         "warmup climbs in equal steps from the base rate to that rate.")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(scaled_lr):
            _judge(scaled_lr, CASES[name])

    _core(_name)


def _mistake_case(name, how, hint, args):
    @q.case(name, hint=hint)
    def _(scaled_lr):
        _judge(scaled_lr, args, hows=[how])


_mistake_case("accumulated micro-batches count in the effective batch",
              "no accumulation",
              "With gradient accumulation (no_sync) a worker adds up the gradients of "
              "several micro-batches before the step: each of them is part of the "
              "step's batch.", (0.05, 128, 32, 4, 4, 1000, 0))
_mistake_case("every worker's batch counts in the effective batch", "no world size",
              "The all-reduce averages the gradients of all the workers: one step "
              "sees every worker's examples.", (0.1, 256, 64, 8, 1, 3000, 500))
_mistake_case("the rate grows in proportion to the batch", "square root",
              "Goyal et al.'s rule for SGD: when the batch is k times larger, so is "
              "the learning rate (the square-root rule is another, for other "
              "optimizers; the lesson uses the linear one).",
              (0.1, 256, 64, 8, 1, 3000, 500))
_mistake_case("the warmup starts at the base rate", "warmup from 0",
              "The warmup of Goyal et al. starts from the rate that works for the "
              "small batch and climbs to the scaled rate, by the same amount each "
              "step.",
              (0.1, 256, 128, 8, 1, 0, 1000))
_mistake_case("the warmup reaches the scaled rate at step warmup_steps",
              "warmup one step ahead",
              "The steps are counted from 0: at step 0 the rate is still the base "
              "rate, and it reaches the scaled rate exactly at step warmup_steps.",
              (0.1, 256, 64, 16, 2, 125, 500))
_mistake_case("the rate climbs during the warmup", "no warmup",
              "Before step warmup_steps the rate is not yet the scaled one: it climbs "
              "to it from the base rate, in equal steps.",
              (0.1, 256, 64, 16, 2, 125, 500))


@q.case("returns an int and a Python float", kind="property",
        hint="Return a tuple (effective batch, learning rate): the batch an int, the "
             "rate a float.")
def _(scaled_lr):
    args = CASES["8 workers of 64 examples, after the warmup"]
    got = call(scaled_lr, *args, name="scaled_lr")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise _basic(f"{_what(args)} returned {_short(got)}; expected a pair.")
    batch, lr = got
    if isinstance(batch, bool) or not isinstance(batch, int):
        raise CheckFailure(f"{_what(args)}: the effective batch is {_short(batch)}, a "
                           f"{type(batch).__name__}; expected an int.")
    if not isinstance(lr, float):
        raise CheckFailure(f"{_what(args)}: the learning rate is {_short(lr)}, a "
                           f"{type(lr).__name__}; expected a Python float.")
