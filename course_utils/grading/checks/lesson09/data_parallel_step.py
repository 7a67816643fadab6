"""Checks of 09.data_parallel_step: one step of data-parallel training, simulated in one
process, that equals a single process's step on the whole global batch, even when the
workers' micro-batches differ in size; with gradient accumulation, the gradients cross
the network once per step (DDP's ``no_sync``).

The workers are model replicas in a list, and their one means of communicating is the
``all_reduce`` function the checks pass (it sums a list of one tensor per worker, as
``dist.all_reduce`` does, and counts what it carries). The oracle is single-process
training on the concatenation of every micro-batch, in float64, with the same PyTorch
optimizer.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ...asserts import CheckFailure, _short, as_number, call, fmt_pair
from ...registry import question
from ._common import _num, generator, seeded

q = question("09.data_parallel_step", "A data-parallel step equal to one big batch",
             answers=["data_parallel_step"], timeout=10)

OPTIMIZERS = {
    "SGD(lr=0.1)": lambda params: torch.optim.SGD(params, lr=0.1),
    "Adam(lr=0.01)": lambda params: torch.optim.Adam(params, lr=0.01),
    "SGD(lr=0.05, momentum=0.9)": lambda params: torch.optim.SGD(params, lr=0.05,
                                                                 momentum=0.9),
}
TASKS = {  # name: (inputs, outputs, loss_fn)
    "classes": (5, 3, F.cross_entropy),
    "regression": (4, 2, F.mse_loss),
}
SCALARS = 16  # elements a step may all-reduce beyond the gradients (counts, losses)


class AllReduce:
    """``all_reduce(tensors)``: the sum of a list of one tensor per worker, returned
    to every worker (a list of copies), as ``dist.all_reduce`` leaves it on each rank.
    Counts the calls and the elements carried (those of one worker's tensor)."""

    def __init__(self, world_size: int):
        self.world_size, self.calls, self.elements = world_size, 0, 0

    def __repr__(self) -> str:
        return "all_reduce"

    def __call__(self, tensors):
        P = self.world_size
        if not isinstance(tensors, (list, tuple)) or len(tensors) != P:
            raise ValueError(f"all_reduce takes a list of {P} tensors, one per worker; "
                             f"it was given {_short(tensors)}")
        if not all(isinstance(t, torch.Tensor) for t in tensors):
            raise TypeError("all_reduce takes tensors; it was given "
                            f"{[type(t).__name__ for t in tensors]}")
        if len({tuple(t.shape) for t in tensors}) > 1:
            shapes = [tuple(t.shape) for t in tensors]
            raise ValueError("all_reduce takes one tensor of the same shape from every "
                             f"worker; it was given {shapes}")
        total = tensors[0].detach().clone()
        for t in tensors[1:]:
            total = total + t.detach()
        self.calls += 1
        self.elements += total.numel()
        return [total.clone() for _ in range(P)]


class Listed(list):
    """A plain list, shown in a message as what it holds ("[3 replicas]"), not as the
    repr of every model, optimizer or batch in it."""

    def __init__(self, items, what: str):
        super().__init__(items)
        self.what = what

    def __repr__(self) -> str:
        return f"[{self.what}]"


def model_for(task: str, seed: int) -> nn.Module:
    n_in, n_out, _ = TASKS[task]
    return seeded(seed, lambda: nn.Sequential(nn.Linear(n_in, 8), nn.Tanh(),
                                              nn.Linear(8, n_out)).double())


def shards_for(task: str, sizes, seed: int):
    """[[(x, y) per micro-batch] per worker], float64 inputs."""
    n_in, n_out, _ = TASKS[task]
    g = generator(seed)
    out = []
    for worker in sizes:
        micro = []
        for n in worker:
            x = torch.randn(n, n_in, generator=g, dtype=torch.float64)
            if task == "classes":
                y = torch.randint(0, n_out, (n,), generator=g)
            else:
                y = torch.randn(n, n_out, generator=g, dtype=torch.float64)
            micro.append((x, y))
        out.append(micro)
    return out


def _old_grads(models, seed: int = 99) -> None:
    """Gradients left over from an earlier backward, the same on every replica."""
    g = generator(seed)
    grads = [torch.randn(p.shape, generator=g, dtype=p.dtype)
             for p in models[0].parameters()]
    for model in models:
        for p, grad in zip(model.parameters(), grads):
            p.grad = grad.clone()


def reference_run(case: str, how=None):
    """(losses, parameters after each step) of the single process on the global batch
    (how=None), or of the replica 0 of a typical mistake (DDP's equal average, or a
    sum; a missing zero_grad is told by running the answer without old gradients)."""
    sizes, opt_name, steps, task, seed = CASES[case]
    loss_fn = TASKS[task][2]
    model = model_for(task, seed)
    optimizer = OPTIMIZERS[opt_name](model.parameters())
    _old_grads([model])
    losses, params = [], []
    for step in range(steps):
        shards = shards_for(task, sizes, seed + 10 * step + 1)
        optimizer.zero_grad()
        if how in (None, "divided by P too", "sum over rows"):
            x = torch.cat([x for shard in shards for x, _ in shard])
            y = torch.cat([y for shard in shards for _, y in shard])
            loss = loss_fn(model(x), y)
            scale = {"divided by P too": 1 / len(shards), "sum over rows": len(y)}
            (scale.get(how, 1.0) * loss).backward()
            losses.append(loss.item())
        else:  # DDP's average, or its sum: each micro-batch's mean loss
            P, k = len(shards), len(shards[0])
            for shard in shards:
                for x, y in shard:
                    scale = 1.0 if how == "sum" else 1.0 / (P * k)
                    (scale * loss_fn(model(x), y)).backward()
            losses.append(float("nan"))
        optimizer.step()
        params.append([p.detach().clone() for p in model.parameters()])
    return losses, params


class Run:
    """The answer's steps: losses returned, every replica's parameters after each step,
    the rows each replica's forward passes saw, and the all-reduce traffic."""

    def __init__(self, fn, case: str, stale: bool = True):
        sizes, opt_name, steps, task, seed = CASES[case]
        P = len(sizes)
        base = model_for(task, seed)
        models = [copy.deepcopy(base) for _ in range(P)]
        optimizers = [OPTIMIZERS[opt_name](m.parameters()) for m in models]
        if stale:
            _old_grads(models)
        self.rows = [[] for _ in range(P)]
        hooks = [m.register_forward_pre_hook(
            lambda mod, args, r=r: self.rows[r].append(len(args[0])))
            for r, m in enumerate(models)]
        self.losses, self.params, self.traffic, self.kinds = [], [], [], []
        self.n_params = sum(p.numel() for p in base.parameters())
        self.what = (f"data_parallel_step({P} replica{'s' * (P > 1)}, {P} {opt_name}, "
                     "shards of "
                     f"{_rows(sizes)} rows, {TASKS[task][2].__name__}, all_reduce)")
        try:
            for step in range(steps):
                all_reduce = AllReduce(P)
                shards = shards_for(task, sizes, seed + 10 * step + 1)
                got = call(fn, Listed(models, f"{P} replicas"),
                           Listed(optimizers, f"{P} {opt_name}"),
                           Listed(shards, f"shards of {_rows(sizes)} rows"),
                           TASKS[task][2], all_reduce, check_mutation=False,
                           name="data_parallel_step")
                self.losses.append(as_number(got, self.what))
                self.kinds.append(type(got).__name__ if not isinstance(
                    got, torch.Tensor) else f"{str(got.dtype)[6:]} tensor")
                self.params.append([[p.detach().clone() for p in m.parameters()]
                                    for m in models])
                self.traffic.append(all_reduce.elements)
        finally:
            for h in hooks:
                h.remove()
        self.sizes, self.steps = sizes, steps


def _rows(sizes) -> str:
    return " / ".join("+".join(map(str, w)) for w in sizes)


def _gap(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def _same(a, b) -> bool:
    return all(torch.allclose(x, y, rtol=1e-9, atol=1e-11) for x, y in zip(a, b))


MESSAGES = {
    "ddp average": "the gradients of the workers and of their micro-batches were "
                   "averaged with equal weights, as DDP with accumulation does: that "
                   "is the global batch's gradient only when every micro-batch has "
                   "as many rows.",
    "sum": "the gradients were summed over the workers and micro-batches, not "
           "averaged over the rows of the global batch: the step is too large.",
    "no zero_grad": "the replicas stepped on the old gradients as well: they were not "
                    "zeroed before the backward passes.",
    "divided by P too": "the step is P times too small: the gradient of the global "
                        "batch's mean was divided by the number of workers once more "
                        "(the division by the rows of the global batch already makes "
                        "it a mean).",
    "sum over rows": "the step is as many times too large as the global batch has rows: "
                     "the losses of the rows were summed, and the sum never divided by "
                     "the global batch's rows.",
}


def _right_without_old_grads(fn, case: str) -> bool:
    """Does the answer take the right steps when the replicas hold no old gradients?"""
    run = Run(fn, case, stale=False)
    ref = reference_run(case)[1]
    return all(_same(run.params[s][0], ref[s]) for s in range(run.steps))


def _judge(fn, case: str, hows=None) -> None:
    run = Run(fn, case)
    ref_losses, ref_params = reference_run(case)
    for step in range(run.steps):
        replicas = run.params[step]
        for r in range(1, len(replicas)):
            if not _same(replicas[r], replicas[0]):
                raise CheckFailure(
                    f"{run.what}: after step {step + 1}, worker {r}'s weights differ "
                    f"from worker 0's (by up to {_gap(replicas[r], replicas[0]):.3g}): "
                    "every replica must take the same step.", basic=hows is not None)
        if not _same(replicas[0], ref_params[step]):
            for how in hows or MESSAGES:
                if how == "no zero_grad":
                    if _right_without_old_grads(fn, case):
                        raise CheckFailure(f"{run.what}: {MESSAGES[how]}")
                elif _same(replicas[0], reference_run(case, how)[1][step]):
                    raise CheckFailure(f"{run.what}: {MESSAGES[how]}")
            raise CheckFailure(
                f"{run.what}: after step {step + 1} the weights differ from a single "
                f"process's step on the global batch of "
                f"{sum(map(sum, run.sizes))} rows (by up to "
                f"{_gap(replicas[0], ref_params[step]):.3g}).", basic=hows is not None)
        ref_loss = ref_losses[step]
        if abs(run.losses[step] - ref_loss) > 1e-9 * max(1, abs(ref_loss)):
            got_text, ref_text = fmt_pair(run.losses[step], ref_loss)
            kind = run.kinds[step]
            note = (f" (it returned a {kind}, which rounds the loss: return a Python "
                    "float, computed in float64)") if kind != "float" else ""
            raise CheckFailure(
                f"{run.what}: the right step, but it returned the loss {got_text}"
                f"{note}, expected {ref_text}, the mean loss over every row of the "
                "global batch, before the step.", basic=hows is not None)


_HINT = ("The global batch's loss is the mean over all its rows, every worker's and "
         "every micro-batch's: each worker's backward passes must give its part of "
         "that mean's gradient, which one all-reduce then sums. Clear old gradients "
         "first; every replica steps with the same gradient.")

CASES = {  # name: (rows of each worker's micro-batches, optimizer, steps, task, seed)
    "2 workers, one micro-batch of 6 rows each, SGD, one step":
        ([[6], [6]], "SGD(lr=0.1)", 1, "classes", 0),
    "3 workers of 7, 3 and 5 rows, Adam, two steps":
        ([[7], [3], [5]], "Adam(lr=0.01)", 2, "classes", 1),
    "4 workers, 3 micro-batches each of unequal sizes, momentum, regression":
        ([[4, 2, 3], [5, 1, 2], [3, 3, 3], [2, 6, 1]], "SGD(lr=0.05, momentum=0.9)", 2,
         "regression", 2),
    "1 worker, micro-batches of 4 and 9 rows, Adam, two steps":
        ([[4, 9]], "Adam(lr=0.01)", 2, "classes", 3),
}

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(data_parallel_step):
            _judge(data_parallel_step, name)

    _core(_name)


def _mistake_case(name, how, hint, case):
    @q.case(name, hint=hint)
    def _(data_parallel_step):
        _judge(data_parallel_step, case,
               hows=list(how) if isinstance(how, tuple) else [how])


_mistake_case("workers with more rows weigh more", "ddp average",
              "A mean over the global batch gives every row the same weight, so a "
              "worker with 7 rows contributes more than one with 3: weigh each "
              "worker's gradient by its rows, out of the global batch's.",
              "3 workers of 7, 3 and 5 rows, Adam, two steps")
_mistake_case("the gradient is a mean over the global batch, not a sum",
              ("sum", "sum over rows"),
              "all_reduce sums the workers' tensors: divide so that the result is the "
              "gradient of the mean loss, or the step is as many times too large as "
              "there are rows.",
              "2 workers, one micro-batch of 6 rows each, SGD, one step")
_mistake_case("the gradient is divided once, by the global batch's rows",
              "divided by P too",
              "Weighing each worker's loss by its rows and dividing by the rows of the "
              "global batch gives the gradient of the global mean already: there is "
              "no average over the workers left to take.",
              "2 workers, one micro-batch of 6 rows each, SGD, one step")
_mistake_case("old gradients are cleared before the backward passes", "no zero_grad",
              "backward() adds to .grad, and the replicas come with gradients left "
              "from an earlier pass: zero them first, on every replica.",
              "2 workers, one micro-batch of 6 rows each, SGD, one step")


@q.case("every replica takes the same step",
        hint="Each worker holds its own replica and its own optimizer: every one of "
             "them must receive the all-reduced gradient and step, or the replicas "
             "drift apart.")
def _(data_parallel_step):
    run = Run(data_parallel_step, "3 workers of 7, 3 and 5 rows, Adam, two steps")
    for step, replicas in enumerate(run.params):
        for r in range(1, len(replicas)):
            if not _same(replicas[r], replicas[0]):
                raise CheckFailure(f"{run.what}: after step {step + 1}, worker {r}'s "
                                   "weights differ from worker 0's.")


@q.case("the gradients cross the network once per step (no_sync)",
        hint="The workers share their gradients through all_reduce only. With gradient "
             "accumulation, the micro-batches' gradients add up in each worker's .grad "
             "without communicating (DDP's no_sync), and are all-reduced once: one "
             "all-reduce of the gradients per step, not one per micro-batch.")
def _(data_parallel_step):
    case = "4 workers, 3 micro-batches each of unequal sizes, momentum, regression"
    run = Run(data_parallel_step, case)
    budget = run.n_params + SCALARS
    if min(run.traffic) < run.n_params:
        raise CheckFailure(
            f"{run.what}: a step all-reduced {min(run.traffic):,} values for a model "
            f"of {run.n_params:,} parameters: the gradients did not go through "
            "all_reduce, the workers' only link.")
    if max(run.traffic) > budget:
        raise CheckFailure(
            f"{run.what}: one step all-reduced {max(run.traffic):,} values for a model "
            f"of {run.n_params:,} parameters: the gradients were sent "
            f"{max(run.traffic) / run.n_params:.3g} times.")


@q.case("each worker computes on its own micro-batches only",
        hint="In a real run a worker never sees the other workers' data: each replica "
             "runs the forward and backward passes of its own micro-batches, and only "
             "all_reduce carries anything between them.")
def _(data_parallel_step):
    case = "3 workers of 7, 3 and 5 rows, Adam, two steps"
    run = Run(data_parallel_step, case)
    for r, worker in enumerate(run.sizes):
        expected = sorted(worker * run.steps)
        if sorted(run.rows[r]) != expected:
            raise CheckFailure(f"{run.what}: over {run.steps} steps worker {r}'s model "
                               f"ran forward passes of {sorted(run.rows[r])} rows; its "
                               f"own micro-batches have {expected}.")


@q.case("returns the loss as a Python float", kind="property",
        hint="Return the mean loss over every row of the global batch as a Python "
             "float, not a tensor.")
def _(data_parallel_step):
    sizes, opt_name, steps, task, seed = CASES["3 workers of 7, 3 and 5 rows, Adam, "
                                               "two steps"]
    models = [model_for(task, seed) for _ in sizes]
    optimizers = [OPTIMIZERS[opt_name](m.parameters()) for m in models]
    shards = shards_for(task, sizes, seed + 1)
    P = len(sizes)
    got = call(data_parallel_step, Listed(models, f"{P} replicas"),
               Listed(optimizers, f"{P} {opt_name}"),
               Listed(shards, f"shards of {_rows(sizes)} rows"), TASKS[task][2],
               AllReduce(P), check_mutation=False, name="data_parallel_step")
    if not isinstance(got, float):
        raise CheckFailure(f"data_parallel_step(...) returned {_short(got)}, a "
                           f"{type(got).__name__}; expected a Python float.")
