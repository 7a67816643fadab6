"""Checks of 08.teacher_logits: a teacher's logits for a whole tensor, in batches."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ...asserts import CheckFailure, _short, call
from ...registry import question
from ._common import _basic, generator, seeded

q = question("08.teacher_logits", "A teacher's logits for a whole data set",
             answers=["teacher_logits"], timeout=5)


def mlp_teacher() -> nn.Module:
    """An MLP with BatchNorm and dropout, trained a little: its running statistics are
    far from their initial 0 and 1. Left in train mode."""
    model = seeded(0, lambda: nn.Sequential(
        nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(16, 3)))
    with torch.no_grad():
        model[1].running_mean.copy_(torch.randn(16, generator=generator(1)))
        model[1].running_var.copy_(0.5 + torch.rand(16, generator=generator(2)))
    return model.train()


def cnn_teacher() -> nn.Module:
    """A small CNN with BatchNorm2d and dropout, for images (N, 1, 8, 8)."""
    model = seeded(3, lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(4 * 6 * 6, 10)))
    with torch.no_grad():
        model[1].running_mean.copy_(0.3 * torch.randn(4, generator=generator(4)))
        model[1].running_var.copy_(0.5 + torch.rand(4, generator=generator(5)))
    return model.train()


def inputs(seed: int, shape: tuple) -> torch.Tensor:
    return torch.randn(*shape, generator=generator(seed))


def reference_logits(model, X) -> torch.Tensor:
    """One forward of all of X through a copy of the model in eval mode."""
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        return twin(X).float()


def _what(X, batch_size, model) -> str:
    mode = "train" if model.training else "eval"
    return (f"teacher_logits(model in {mode} mode, X {tuple(X.shape)}, "
            f"batch_size={batch_size})")


def _run(fn, model, X, batch_size):
    """(the answer's output checked to be a tensor of N rows, the batch sizes the
    model saw, the model's state after the call)."""
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(len(args[0])))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(123)  # dropout, if it runs, is the same every time
            got = call(fn, model, X, batch_size, name="teacher_logits")
    finally:
        hook.remove()
    what = _what(X, batch_size, model)
    if got is None:
        raise _basic(f"{what} returned None: return the logits.", problem="none")
    if not isinstance(got, torch.Tensor):
        raise _basic(f"{what} returned {_short(got)}; expected a torch.Tensor.",
                     problem="type")
    return got, seen


def _values(fn, model, X, batch_size) -> None:
    before = copy.deepcopy(model)
    what = _what(X, batch_size, before)
    got, _ = _run(fn, model, X, batch_size)
    ref = reference_logits(before, X)
    if got.ndim != 2 or got.shape[1] != ref.shape[1]:
        raise _basic(f"{what} has shape {tuple(got.shape)}, expected "
                     f"{tuple(ref.shape)}.", problem="shape")
    if got.shape[0] < ref.shape[0]:
        raise CheckFailure(f"{what} returned {got.shape[0]} rows for {len(X)} inputs: "
                           "the last, partial batch is missing?")
    if got.shape != ref.shape:
        raise _basic(f"{what} has shape {tuple(got.shape)}, expected "
                     f"{tuple(ref.shape)}.", problem="shape")
    if torch.allclose(got.detach().float(), ref, rtol=1e-4, atol=1e-5):
        return
    if _permuted(got.detach().float(), ref):
        raise CheckFailure(f"{what}: the rows are the right logits in another order; "
                           "row i must be the logits of X[i].")
    raise CheckFailure(f"{what}: the logits differ from the model's in eval mode "
                       f"(largest difference "
                       f"{(got.detach().float() - ref).abs().max().item():.3g}); was "
                       "dropout on, or BatchNorm using the batch's statistics?")


def _permuted(got, ref) -> bool:
    """Is every row of ``got`` some row of ``ref``?"""
    d = torch.cdist(got.double(), ref.double())  # (N, N)
    return bool((d.min(dim=1).values < 1e-4).all())


_HINT = ("The teacher is used for inference: put it in eval mode (dropout off, "
         "BatchNorm with its running statistics), go through X in order, batch by "
         "batch, the last one possibly shorter, without building a graph, and put the "
         "pieces together.")


@q.case("an MLP with BatchNorm and dropout, train mode, 53 rows in batches of 16",
        kind="core", hint=_HINT)
def _(teacher_logits):
    _values(teacher_logits, mlp_teacher(), inputs(0, (53, 5)), 16)


@q.case("the same MLP, 40 rows in batches of 7", kind="core", hint=_HINT)
def _(teacher_logits):
    _values(teacher_logits, mlp_teacher(), inputs(1, (40, 5)), 7)


@q.case("a CNN with BatchNorm2d and dropout, 30 images, batches of 64", kind="core",
        hint=_HINT)
def _(teacher_logits):
    _values(teacher_logits, cnn_teacher(), inputs(2, (30, 1, 8, 8)), 64)


@q.case("eval mode: BatchNorm's running statistics are left alone",
        hint="In train mode a BatchNorm normalises with the batch's own statistics "
             "and updates its running mean and variance at every forward: the "
             "teacher would change by being asked. Eval mode before the forwards.")
def _(teacher_logits):
    model = mlp_teacher()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    _run(teacher_logits, model, inputs(3, (20, 5)), 8)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, stats[k])]
    if changed:
        raise CheckFailure(f"{_what(inputs(3, (20, 5)), 8, mlp_teacher())} changed the "
                           f"model's {', '.join(changed)}: it ran in train mode.")


@q.case("the model's train/eval mode is restored",
        hint="The caller may be training this model: remember its mode before "
             "switching to eval mode, and give it back afterwards.")
def _(teacher_logits):
    for model in (mlp_teacher(), mlp_teacher().eval()):
        what = _what(inputs(4, (10, 5)), 4, model)
        modes = [m.training for m in model.modules()]
        _run(teacher_logits, model, inputs(4, (10, 5)), 4)
        if [m.training for m in model.modules()] != modes:
            now = "eval" if not model.training else "train"
            raise CheckFailure(f"{what}: the model is left in {now} mode.")


@q.case("the batches are at most batch_size rows, the last one shorter",
        hint="X may be too large for one forward (the lesson's transfer set is "
             "60,000 images): go through it in slices of batch_size rows.")
def _(teacher_logits):
    X = inputs(5, (23, 5))
    _, seen = _run(teacher_logits, mlp_teacher(), X, 5)
    what = _what(X, 5, mlp_teacher())
    if not seen or max(seen) > 5:
        raise CheckFailure(f"{what}: the model saw batches of {seen} rows.")
    if sum(seen) < len(X):
        raise CheckFailure(f"{what}: the model saw {sum(seen)} of {len(X)} rows "
                           f"(batches {seen}): the last, partial batch is missing.")


@q.case("the rows keep the order of X",
        hint="Row i of the result is the teacher's logits of X[i]: the students are "
             "later trained on X with these rows as targets. Do not shuffle.")
def _(teacher_logits):
    model, X = mlp_teacher().eval(), inputs(6, (24, 5))
    got, _ = _run(teacher_logits, model, X, 6)
    ref = reference_logits(model, X)
    if got.shape == ref.shape and not torch.allclose(got.detach().float(), ref,
                                                     rtol=1e-4, atol=1e-5):
        if _permuted(got.detach().float(), ref):
            raise CheckFailure(f"{_what(X, 6, model)}: the rows are in another order "
                               "than X's.")


@q.case("a float32 CPU tensor that does not require a gradient", kind="property",
        hint="Compute under torch.no_grad() (the teacher is not trained: no graph "
             "to keep), and return float32 on the CPU.")
def _(teacher_logits):
    model, X = mlp_teacher(), inputs(7, (12, 5))
    got, _ = _run(teacher_logits, model, X, 5)
    what = _what(X, 5, mlp_teacher())
    if got.requires_grad or got.grad_fn is not None:
        raise CheckFailure(f"{what} returned a tensor that requires a gradient: its "
                           "graph keeps every batch's activations in memory.")
    if got.dtype != torch.float32 or got.device.type != "cpu":
        raise CheckFailure(f"{what} returned {got.dtype} on {got.device}, expected "
                           "torch.float32 on the CPU.")
