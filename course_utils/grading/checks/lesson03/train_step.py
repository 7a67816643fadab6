"""Checks of 03.train_step: One training step."""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ...asserts import CheckFailure, _short, as_number, call, expect_close
from ...registry import question
from ._common import _not_judged


# The course's one rule for zero_grad: before backward or right after step, both are
# correct. The cases start from models with no gradients and compare every step with a
# reference step on the same optimizer: both orders pass, gradients that pile up fail.
q = question("03.train_step", "One training step", answers=["train_step"], timeout=10)


def _step_setup(seed=0, dropout=False):
    """A tiny seeded CNN with BatchNorm (and dropout), a batch and a loss."""
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
              nn.MaxPool2d(2), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(4 * 4 * 4, 3))
    model = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    return model, X, y, nn.CrossEntropyLoss()


# The optimizers of the cases, by the names the messages use: several kinds and rates,
# so that a step which makes its own optimizer (or ignores its argument) cannot pass.
OPTIMIZERS = {
    "SGD(lr=0.1)": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "SGD(lr=0.05, momentum=0.9)": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    "Adam(lr=0.01)": lambda ps: torch.optim.Adam(ps, lr=0.01),
    "SGD(lr=0.3, momentum=0.5, weight_decay=0.01)":
        lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.5, weight_decay=0.01),
}


def _reference_step(model, X, y, loss_fn, optimizer) -> float:
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _learner_step(train_step, model, X, y, loss_fn, optimizer):
    try:
        return call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    except RuntimeError as exc:
        if "backward through the graph a second time" in str(exc):
            raise CheckFailure("loss.backward() was called twice on the same graph "
                               "(PyTorch frees the graph after the first backward).",
                               basic=True) from None
        raise


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _same_params(a, b) -> bool:
    return torch.allclose(_params(a), _params(b), rtol=1e-4, atol=1e-6)


def _pair(optimizer_name: str, seed: int, dropout: bool = False):
    """(learner's model and optimizer, reference model and optimizer, X, y, loss_fn):
    two identical models, each with its own optimizer of the same kind and settings."""
    model, X, y, loss_fn = _step_setup(seed, dropout)
    ref = copy.deepcopy(model)
    make = OPTIMIZERS[optimizer_name]
    ours, theirs = (model, make(model.parameters())), (ref, make(ref.parameters()))
    return ours, theirs, X, y, loss_fn


def _steps_match(train_step, optimizer_name: str, num_steps: int, seed: int) -> None:
    """Every one of ``num_steps`` steps returns the reference's loss and leaves the
    reference's parameters."""
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair(optimizer_name, seed)
    for k in range(1, num_steps + 1):
        what = f"step {k} of {num_steps} with {optimizer_name}"
        expected_loss = _reference_step(ref, X, y, loss_fn, ref_opt)
        loss = as_number(_learner_step(train_step, model, X, y, loss_fn, optimizer),
                         f"the loss returned by {what}")
        expect_close(loss, expected_loss, rtol=1e-5, atol=1e-6,
                     what=f"the loss returned by {what}")
        expect_close(_params(model), _params(ref), rtol=1e-4, atol=1e-6,
                     what=f"the parameters after {what}")


@q.case("one step with SGD(lr=0.05, momentum=0.9)", kind="core",
        hint="One step: training mode, clear the old gradients, forward, loss, one "
             "backward, then the GIVEN optimizer's step; return the loss of this "
             "forward pass.")
def _(train_step):
    _steps_match(train_step, "SGD(lr=0.05, momentum=0.9)", 1, seed=6)


@q.case("three steps with Adam(lr=0.01)", kind="core",
        hint="Use the optimizer you are given (whatever its kind and rate), and clear "
             "the gradients once per step, so that step k uses only its own gradient.")
def _(train_step):
    _steps_match(train_step, "Adam(lr=0.01)", 3, seed=7)


@q.case("four steps with SGD(lr=0.3, momentum=0.5, weight_decay=0.01)", kind="core",
        hint="Each call is one step of the given optimizer: its momentum and weight "
             "decay carry over between calls by themselves.")
def _(train_step):
    _steps_match(train_step, "SGD(lr=0.3, momentum=0.5, weight_decay=0.01)", 4, seed=8)


@q.case("returns the loss as a Python float", kind="property",
        hint="Return the loss as a number (the tensor's .item()), not the tensor: a "
             "tensor keeps the whole graph alive in a training loop.")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=0)
    got = _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if not isinstance(got, float):
        raise CheckFailure(f"train_step returned {_short(got)}; expected a Python "
                           "float (the loss's .item()).", basic=got is None)


@q.case("updates the parameters (optimizer.step)",
        hint="Call the optimizer's step() after backward, and zero the gradients "
             "before backward or after step, never between backward and step (that "
             "erases them).")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=0)
    before = _params(model).clone()
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if torch.equal(before, _params(model)):
        raise CheckFailure("after train_step the parameters are unchanged.")


@q.case("one backward per step",
        hint="One step has ONE backward pass: calling backward twice "
             "(retain_graph=True) adds the gradient twice, so the step is twice as "
             "long.")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=2)
    start = _params(model).clone()
    _reference_step(ref, X, y, loss_fn, ref_opt)
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    moved, expected = _params(model) - start, _params(ref) - start
    doubled = torch.allclose(moved, 2 * expected, rtol=1e-3, atol=1e-7)
    if expected.abs().max() > 0 and doubled:
        raise CheckFailure("the parameters moved twice as far as one SGD step: the "
                           "gradient was added twice (two backward passes).")
    if not _same_params(model, ref):
        raise _not_judged()  # wrong, but not by a doubled gradient


@q.case("gradients do not pile up across steps (zero_grad)",
        hint="PyTorch ADDS each new gradient to .grad: clear the gradients once per "
             "step (before backward, or after step), or step k uses the sum of all k "
             "gradients so far.")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=3)
    for k in range(1, 4):
        _reference_step(ref, X, y, loss_fn, ref_opt)
        _learner_step(train_step, model, X, y, loss_fn, optimizer)
        if k == 1 and not _same_params(model, ref):
            raise _not_judged()  # step 1 is already wrong: not this case's mistake
        if not _same_params(model, ref):
            stale = any(p.grad is not None and bool(p.grad.abs().sum() > 0)
                        for p in model.parameters())
            raise CheckFailure(
                f"step 1 matches a reference SGD step, but step {k} does not"
                + (": the gradients of the earlier steps are still in .grad and were "
                   "added to this step's." if stale else "."))


@q.case("uses the optimizer it is given",
        hint="Step with the optimizer argument; do not create an optimizer inside "
             "train_step (the caller chooses its kind, rate and momentum, and its "
             "state must carry over).")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=4)
    _reference_step(ref, X, y, loss_fn, ref_opt)
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if not _same_params(model, ref):
        raise _not_judged()  # already wrong with SGD(lr=0.1)
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("Adam(lr=0.01)", seed=4)
    sgd = copy.deepcopy(model)
    _reference_step(sgd, X, y, loss_fn, torch.optim.SGD(sgd.parameters(), lr=0.1))
    _reference_step(ref, X, y, loss_fn, ref_opt)
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if _same_params(model, sgd):
        raise CheckFailure("given Adam(lr=0.01), train_step made the step of "
                           "SGD(lr=0.1): it does not use the optimizer it is given.")
    expect_close(_params(model), _params(ref), rtol=1e-4, atol=1e-6,
                 what="the parameters after one step with Adam(lr=0.01)")


@q.case("puts the model in training mode",
        hint="Switch the model to training mode first: a model left in eval mode "
             "(after an evaluation) uses BatchNorm's running statistics and switches "
             "dropout off.")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=5, dropout=True)
    model.eval()  # as after an evaluation pass
    _learner_step(train_step, model, X, y, loss_fn, optimizer)
    if not model.training:
        raise CheckFailure("after train_step the model is still in eval mode "
                           "(model.training is False).")
    bn = model[1]
    if torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)):
        raise CheckFailure("BatchNorm's running mean did not move: the forward pass "
                           "ran in eval mode.")


@q.case("returns the batch loss from before the update",
        hint="Return the loss of this step's own forward pass, computed before the "
             "optimizer's step; do not evaluate the model again after the update.")
def _(train_step):
    (model, optimizer), (ref, ref_opt), X, y, loss_fn = _pair("SGD(lr=0.1)", seed=1)
    expected = _reference_step(ref, X, y, loss_fn, ref_opt)
    with torch.no_grad():
        after = loss_fn(ref.train()(X), y).item()  # the loss of the updated model
    got = as_number(_learner_step(train_step, model, X, y, loss_fn, optimizer),
                    "the returned loss")
    if abs(got - after) <= 1e-6 * max(1.0, abs(after)) < abs(after - expected):
        raise CheckFailure(f"train_step returned {got:.6g}, the loss AFTER the update; "
                           f"the loss of this step's forward pass was {expected:.6g}.")
    if abs(got - expected) > 1e-5 * max(1.0, abs(expected)):
        raise _not_judged()  # wrong, but not the loss after the update


@q.case("the loss goes down over 20 steps",
        hint="Step against the gradient (the optimizer's step() does), clear the "
             "gradients each step, and compute the loss on the model's output for X.")
def _(train_step):
    (model, optimizer), _, X, y, loss_fn = _pair("SGD(lr=0.1)", seed=5)
    losses = [as_number(_learner_step(train_step, model, X, y, loss_fn, optimizer),
                        f"the loss returned by step {k + 1}") for k in range(20)]
    first, last = losses[0], losses[-1]
    if first == last:
        raise _not_judged()  # nothing changed: "updates the parameters" says why
    if not (np.isfinite(last) and last < 0.8 * first):
        raise CheckFailure(f"over 20 steps on one batch the loss went from {first:.4g} "
                           f"to {last:.4g}; it should fall well below its start.")
