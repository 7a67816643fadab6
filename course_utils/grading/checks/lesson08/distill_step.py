"""Checks of 08.distill_step: one optimizer step of a student on a teacher's logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import UNLABELLED, generator, seeded, torch_loss

q = question("08.distill_step", "One training step of a distilled student",
             answers=["distill_step"], timeout=10)

N_IN, N_CLASSES = 6, 4


def student() -> nn.Module:
    return seeded(0, lambda: nn.Sequential(nn.Linear(N_IN, 12), nn.ReLU(),
                                           nn.Linear(12, N_CLASSES)))


def teacher() -> nn.Module:
    return seeded(1, lambda: nn.Linear(N_IN, N_CLASSES))


OPTIMIZERS = {
    "SGD(lr=0.1)": lambda params: torch.optim.SGD(params, lr=0.1),
    "SGD(lr=0.05, momentum=0.9)": lambda params: torch.optim.SGD(params, lr=0.05,
                                                                 momentum=0.9),
    "Adam(lr=0.01)": lambda params: torch.optim.Adam(params, lr=0.01),
}


def batches(seed: int, n_batches: int, n: int = 10, unlabelled: int = 3):
    """[(x (n, 6), teacher logits (n, 4), y (n,) with -1s)], the teacher's logits
    detached (the cases that look at the teacher pass its graph)."""
    g = generator(seed)
    out = []
    with torch.no_grad():
        for _ in range(n_batches):
            x = torch.randn(n, N_IN, generator=g)
            y = torch.randint(0, N_CLASSES, (n,), generator=g)
            y[1:1 + unlabelled] = UNLABELLED
            out.append((x, 2.0 * teacher()(x), y))
    return out


def _loss(how, z, v, y, tau, alpha):
    """The loss of a typical mistake (or the right one, how=None)."""
    if how in (None, "no zero_grad"):
        return torch_loss(z, v, y, tau, alpha)
    p_t = F.softmax(v.detach() / tau, dim=-1)
    if how == "probabilities":
        soft = F.kl_div(F.softmax(z / tau, dim=-1), p_t, reduction="batchmean")
    else:
        soft = F.kl_div(F.log_softmax(z / tau, dim=-1), p_t,
                        reduction="mean" if how == "mean" else "batchmean")
    scale = 1.0 if how == "no tau^2" else tau ** 2
    hard = F.cross_entropy(z, y, ignore_index=UNLABELLED, reduction="sum") / len(y)
    if how == "hard over labelled":          # the mean over the labelled rows only
        hard = F.cross_entropy(z, y, ignore_index=UNLABELLED)
    return alpha * scale * soft + (1 - alpha) * hard


def _old_grads(model) -> None:
    """Gradients left over from an earlier backward (an evaluation of the loss, say)."""
    g = generator(99)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def reference_run(opt_name, data, tau, alpha, how=None):
    """(losses, parameters) after the steps of the reference (or of mistake ``how``)."""
    model = student()
    optimizer = OPTIMIZERS[opt_name](model.parameters())
    _old_grads(model)
    losses = []
    for x, v, y in data:
        if how != "no zero_grad":
            optimizer.zero_grad()
        loss = _loss(how, model(x), v, y, tau, alpha)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, [p.detach().clone() for p in model.parameters()]


def learner_run(fn, opt_name, data, tau, alpha):
    """(losses as returned, parameters) after the learner's steps."""
    model = student()
    optimizer = OPTIMIZERS[opt_name](model.parameters())
    _old_grads(model)
    losses = []
    for x, v, y in data:
        losses.append(call(fn, model, optimizer, x.clone(), v.clone(), y.clone(), tau,
                           alpha, name="distill_step"))
    return losses, [p.detach().clone() for p in model.parameters()]


def _what(opt_name, n_steps, tau, alpha) -> str:
    steps = "one step" if n_steps == 1 else f"{n_steps} steps"
    return (f"distill_step(student, {opt_name}, x (10, 6), teacher logits (10, 4), "
            f"y (10,), tau={tau:g}, alpha={alpha:g}), {steps}")


def _same(a, b) -> bool:
    return all(torch.allclose(p, r, rtol=1e-4, atol=1e-6) for p, r in zip(a, b))


MESSAGES = {
    "no zero_grad": "the student's parameters moved as if the old gradients were "
                    "still there: the gradients were not zeroed before backward.",
    "probabilities": "F.kl_div was given the student's probabilities as its input, "
                     "where it expects log-probabilities.",
    "mean": f"the soft term is {N_CLASSES} times too small: F.kl_div's "
            "reduction=\"mean\" divides by N times the number of classes.",
    "no tau^2": "the soft term is not multiplied by tau^2.",
    "hard over labelled": "the hard term is averaged over the labelled rows only "
                          "(F.cross_entropy's mean with ignore_index), not summed over "
                          "them and divided by the batch size.",
}


def _judge(fn, opt_name, n_steps, tau, alpha, hows=None, seed=0) -> None:
    data = batches(seed, n_steps)
    what = _what(opt_name, n_steps, tau, alpha)
    got_losses, got_params = learner_run(fn, opt_name, data, tau, alpha)
    ref_losses, ref_params = reference_run(opt_name, data, tau, alpha)
    values = [as_number(v, what) for v in got_losses]
    right_loss = all(abs(a - b) <= 1e-4 * max(1.0, abs(b))
                     for a, b in zip(values, ref_losses))
    if right_loss and _same(got_params, ref_params):
        return
    for how in hows or MESSAGES:
        losses, params = reference_run(opt_name, data, tau, alpha, how)
        if _same(got_params, params):
            raise CheckFailure(f"{what}: {MESSAGES[how]}")
    if not right_loss:
        raise CheckFailure(f"{what} returned the losses {[round(v, 6) for v in values]}"
                           f", expected {[round(v, 6) for v in ref_losses]}.",
                           basic=hows is not None)
    worst = max((p - r).abs().max().item() for p, r in zip(got_params, ref_params))
    raise CheckFailure(f"{what}: the right loss, but the student's parameters differ "
                       f"from the reference's after the step (by up to {worst:.3g}).",
                       basic=hows is not None)


_HINT = ("One step: the student's logits on x, the distillation loss of the lesson "
         "(soft term at tau with its tau^2, hard term on the labelled rows), fresh "
         "gradients, backward, the optimizer's step; return the loss as a number.")


@q.case("SGD, one step, tau = 4, alpha = 0.9", kind="core", hint=_HINT)
def _(distill_step):
    _judge(distill_step, "SGD(lr=0.1)", 1, 4.0, 0.9)


@q.case("SGD with momentum, two steps, tau = 2, alpha = 0.5", kind="core", hint=_HINT)
def _(distill_step):
    _judge(distill_step, "SGD(lr=0.05, momentum=0.9)", 2, 2.0, 0.5, seed=1)


@q.case("Adam, two steps, tau = 3, alpha = 0.7", kind="core", hint=_HINT)
def _(distill_step):
    _judge(distill_step, "Adam(lr=0.01)", 2, 3.0, 0.7, seed=2)


def _mistake_case(name, how, hint, tau, alpha, seed):
    @q.case(name, hint=hint)
    def _(distill_step):
        _judge(distill_step, "SGD(lr=0.1)", 2, tau, alpha, hows=[how], seed=seed)


_mistake_case("the gradients are zeroed before backward", "no zero_grad",
              "A backward pass ADDS to the .grad of each parameter: whatever an "
              "earlier backward left there (the checks leave some) is stepped too, "
              "unless the gradients are zeroed first.", 4.0, 0.9, 3)
_mistake_case("F.kl_div takes the student's log-probabilities", "probabilities",
              "F.kl_div(input, target) computes target (log target - input): its "
              "input must already be a log-probability (F.log_softmax), its target a "
              "probability (or a log-probability with log_target=True).", 4.0, 0.9, 4)
_mistake_case("the KL divergence is averaged over the batch, not over every entry",
              "mean",
              "F.kl_div's default reduction=\"mean\" averages over all N x n_c "
              "entries, which is not the KL divergence; reduction=\"batchmean\" sums "
              "each row and averages over the batch.", 4.0, 0.9, 5)
_mistake_case("the soft term is multiplied by tau^2", "no tau^2",
              "The soft term's gradient is tau^2 times smaller than the hard term's: "
              "multiply the soft term by tau^2, as the lesson did.", 4.0, 0.5, 6)
_mistake_case("the hard term is divided by N, the batch size", "hard over labelled",
              "With ignore_index, F.cross_entropy's default mean divides by the number "
              "of labelled rows, so a batch with few labels weighs each of them more; "
              "the lesson's hard term divides by every row of the batch.", 4.0, 0.5, 7)


@q.case("the teacher learns nothing: no gradient reaches it",
        hint="The teacher's logits may come with their graph (the teacher's forward "
             "without no_grad): detach them, so that backward stops at the student.")
def _(distill_step):
    t = teacher()
    x, _, y = batches(7, 1)[0]
    v = 2.0 * t(x)  # with the teacher's graph
    model = student()
    optimizer = OPTIMIZERS["SGD(lr=0.1)"](model.parameters())
    call(distill_step, model, optimizer, x, v, y, 4.0, 0.9, check_mutation=False,
         name="distill_step")
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in t.parameters()):
        raise CheckFailure("distill_step(student, SGD(lr=0.1), x, teacher(x) with its "
                           "graph, ...) backpropagated into the teacher: its weights "
                           "got gradients.")


@q.case("returns the loss as a Python float", kind="property",
        hint="Return loss.item(): a float, not the tensor (which keeps the graph of "
             "the step alive).")
def _(distill_step):
    x, v, y = batches(8, 1)[0]
    model = student()
    optimizer = OPTIMIZERS["SGD(lr=0.1)"](model.parameters())
    got = call(distill_step, model, optimizer, x, v, y, 4.0, 0.9, name="distill_step")
    if not isinstance(got, float):
        raise CheckFailure(f"distill_step(...) returned {_short(got)}, a "
                           f"{type(got).__name__}; expected a Python float.")


