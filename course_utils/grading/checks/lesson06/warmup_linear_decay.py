"""Checks of 06.warmup_linear_decay: Linear warmup, then linear decay to zero."""
from __future__ import annotations

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _basic, _num


q = question("06.warmup_linear_decay", "Linear warmup, then linear decay to zero",
             answers=["warmup_linear_decay"], timeout=10)


def reference_factor(t: int, warmup_steps: int, total_steps: int) -> float:
    """The factor of the peak rate at update t (t = 0, 1, ...): the course's warmup
    (t + 1) / T_w for t < T_w (book/notation.md: update 0 already learns), then a
    straight line from 1 at t = T_w down to 0 at t = T, and 0 after."""
    if t < warmup_steps:
        return (t + 1) / warmup_steps
    return max(0.0, (total_steps - t) / (total_steps - warmup_steps))


def _optimizer(lrs) -> torch.optim.Optimizer:
    """An AdamW with one parameter group per rate (a head and an encoder, say)."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return torch.optim.AdamW(groups)


def rates(make_scheduler, lrs, steps: int) -> np.ndarray:
    """(steps, groups): each group's rate at updates 0 .. steps-1, the scheduler stepped
    once after every optimizer step (PyTorch's order)."""
    optimizer = _optimizer(lrs)
    scheduler = make_scheduler(optimizer)
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return np.array(out, dtype=np.float64)


def reference_rates(lrs, warmup_steps, total_steps, steps) -> np.ndarray:
    f = np.array([reference_factor(t, warmup_steps, total_steps) for t in range(steps)])
    return f[:, None] * np.array(lrs)[None, :]


def hugging_face_rates(lrs, warmup_steps, total_steps, steps) -> np.ndarray:
    """transformers.get_linear_schedule_with_warmup on the same optimizer: rate 0 at
    update 0, the peak at update T_w."""
    return rates(lambda opt: get_linear_schedule_with_warmup(opt, warmup_steps,
                                                             total_steps), lrs, steps)


def _what(lrs, warmup_steps, total_steps) -> str:
    shown = ", ".join(f"{lr:g}" for lr in lrs)
    return (f"warmup_linear_decay(optimizer with lr {shown}, warmup_steps="
            f"{warmup_steps}, total_steps={total_steps})")


def _answer_rates(fn, lrs, warmup_steps, total_steps, steps) -> np.ndarray:
    """The rates the answer's scheduler gives, or a basic failure saying why not."""
    label = _what(lrs, warmup_steps, total_steps)

    def make(optimizer):
        got = call(fn, optimizer, warmup_steps, total_steps, check_mutation=False,
                   name="warmup_linear_decay")
        if got is None:
            raise _basic(f"{label} returned None: return the "
                         f"scheduler.", problem="none")
        if not callable(getattr(got, "step", None)):
            raise _basic(f"{label} returned {_short(got)}; expected a learning-rate "
                         "scheduler (an object with .step()), such as a "
                         "torch.optim.lr_scheduler.LambdaLR.", problem="type")
        return got

    return rates(make, lrs, steps)


def _table(values: np.ndarray, upto: int = 6) -> str:
    return ", ".join(_num(v) for v in values[:upto]) + (" ..." if len(values) > upto
                                                        else "")


def _expect(fn, lrs, warmup_steps, total_steps) -> None:
    steps = total_steps + 2
    got = _answer_rates(fn, lrs, warmup_steps, total_steps, steps)
    ref = reference_rates(lrs, warmup_steps, total_steps, steps)
    bad = ~np.isclose(got, ref, rtol=1e-6, atol=1e-12)
    if bad.any():
        t, g = (int(i) for i in np.argwhere(bad)[0])
        raise CheckFailure(
            f"with {_what(lrs, warmup_steps, total_steps)}, parameter group {g} has "
            f"rate {_num(got[t, g])} at update t = {t}, expected {_num(ref[t, g])}.\n"
            f"Its rates from t = 0: {_table(got[:, g], 8)}\n"
            f"expected:            {_table(ref[:, g], 8)}")


_HINT = ("Scale each group's own rate by a factor that climbs by 1/T_w per update from "
         "1/T_w at t = 0 to 1 at t = T_w - 1 (the course's warmup), then falls in a "
         "straight line from 1 at t = T_w to 0 at t = T; the scheduler is stepped once "
         "after each optimizer.step().")


@q.case("warmup 3 steps of 10, one group at lr 1e-3", kind="core", hint=_HINT)
def _(warmup_linear_decay):
    _expect(warmup_linear_decay, [1e-3], 3, 10)


@q.case("warmup 6 steps of 40, two groups (encoder 2e-5, head 1e-3)", kind="core",
        hint=_HINT)
def _(warmup_linear_decay):
    _expect(warmup_linear_decay, [2e-5, 1e-3], 6, 40)


@q.case("warmup 1 step of 5, lr 0.1", kind="core", hint=_HINT)
def _(warmup_linear_decay):
    _expect(warmup_linear_decay, [0.1], 1, 5)


def _mistake(fn, lrs, warmup_steps, total_steps, wrong, message) -> None:
    """Right: pass; the rates ``wrong`` (steps, groups): fail with ``message``;
    anything else: a plain failure."""
    steps = total_steps + 2
    got = _answer_rates(fn, lrs, warmup_steps, total_steps, steps)
    ref = reference_rates(lrs, warmup_steps, total_steps, steps)
    if np.allclose(got, ref, rtol=1e-6, atol=1e-12):
        return
    if np.allclose(got, wrong[:steps], rtol=1e-6, atol=1e-12):
        raise CheckFailure(f"with {_what(lrs, warmup_steps, total_steps)} the rates "
                           f"from t = 0 are {_table(got[:, 0], 7)}: {message}")
    try:
        _expect(fn, lrs, warmup_steps, total_steps)
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=True) from None


def _factors(factor, lrs, steps) -> np.ndarray:
    return np.array([[factor(t) * lr for lr in lrs] for t in range(steps)])


@q.case("update 0 already learns (not Hugging Face's rate 0)",
        hint="transformers.get_linear_schedule_with_warmup spends update 0 at rate 0 "
             "(a gradient computed and thrown away) and reaches the peak one update "
             "later than the course's convention (book/notation.md): the first update "
             "runs at 1/T_w of the peak.")
def _(warmup_linear_decay):
    lrs, Tw, T = [1e-3], 4, 12
    _mistake(warmup_linear_decay, lrs, Tw, T, hugging_face_rates(lrs, Tw, T, T + 2),
             "update 0 runs at rate 0 and the peak comes at t = T_w, as in "
             "get_linear_schedule_with_warmup.")


@q.case("the last update, t = T - 1, still learns",
        hint="The decay reaches 0 at t = T, one past the last of the T updates t = 0 "
             ".. T - 1; a line that is already 0 at t = T - 1 wastes the last update.")
def _(warmup_linear_decay):
    lrs, Tw, T = [1e-3], 2, 8

    def early(t):
        return (t + 1) / Tw if t < Tw else max(0.0, (T - 1 - t) / (T - 1 - Tw))

    _mistake(warmup_linear_decay, lrs, Tw, T, _factors(early, lrs, T + 2),
             "the rate is already 0 at t = T - 1, the last update.")


@q.case("the decay starts from the peak after the warmup",
        hint="After the warmup the line runs from the peak at t = T_w to 0 at t = T: "
             "a line over the whole run (from t = 0) starts below the peak, and the "
             "rate drops abruptly when the warmup ends.")
def _(warmup_linear_decay):
    lrs, Tw, T = [1e-3], 5, 20

    def whole_run(t):
        return (t + 1) / Tw if t < Tw else max(0.0, (T - t) / T)

    _mistake(warmup_linear_decay, lrs, Tw, T, _factors(whole_run, lrs, T + 2),
             "after the warmup the line is (T - t) / T, which drops from 1 to "
             f"{_num((T - Tw) / T)} when the warmup ends.")


@q.case("each parameter group keeps its own peak rate",
        hint="A scheduler multiplies EACH group's initial rate by the factor (LambdaLR "
             "does): the encoder's lower rate must stay lower than the head's all "
             "along.")
def _(warmup_linear_decay):
    lrs, Tw, T = [1e-5, 1e-3], 2, 6
    steps = T + 2
    got = _answer_rates(warmup_linear_decay, lrs, Tw, T, steps)
    ref = reference_rates(lrs, Tw, T, steps)
    if np.allclose(got, ref, rtol=1e-6, atol=1e-12):
        return
    if np.allclose(got[:, 0], got[:, 1], rtol=1e-6, atol=1e-12):
        raise CheckFailure(f"with {_what(lrs, Tw, T)} both groups get the same rates "
                           f"({_table(got[:, 0], 5)}): the encoder's group lost its "
                           "own lower rate.")
    _expect_plain(warmup_linear_decay, lrs, Tw, T)


def _expect_plain(fn, lrs, Tw, T) -> None:
    try:
        _expect(fn, lrs, Tw, T)
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=True) from None


@q.case("a scheduler of the optimizer it was given", kind="property",
        hint="Build the scheduler on the optimizer passed in (and do not step it "
             "yourself): the training loop steps it after each optimizer.step().")
def _(warmup_linear_decay):
    optimizer = _optimizer([1e-3])
    got = call(warmup_linear_decay, optimizer, 2, 6, check_mutation=False,
               name="warmup_linear_decay")
    if got is None or not callable(getattr(got, "step", None)):
        raise _basic(f"warmup_linear_decay returned {_short(got)}; expected a "
                     "learning-rate scheduler (an object with .step()).",
                     problem="none" if got is None else "type")
    owner = getattr(got, "optimizer", optimizer)
    if owner is not optimizer:
        raise CheckFailure("the scheduler returned by warmup_linear_decay belongs to "
                           "another optimizer than the one given.")
    lr = optimizer.param_groups[0]["lr"]
    if not np.isclose(lr, 1e-3 * reference_factor(0, 2, 6), rtol=1e-6):
        raise CheckFailure(f"right after warmup_linear_decay(optimizer, 2, 6) the "
                           f"optimizer's rate is {_num(lr)}, expected the rate of "
                           f"update 0, {_num(1e-3 * reference_factor(0, 2, 6))}.")
