"""Checks of 01.torch_train: Make it train with `torch.optim`."""
from __future__ import annotations

import math

from ...asserts import CheckFailure, _short, as_number, call, expect_close
from ...registry import question
from ._common import _matches


q = question("01.torch_train", "Make it train with `torch.optim`",
             answers=["train_step"], timeout=20)


def _torch_setup(seed: int = 0, optimizer: str = "SGD", hidden: int = 0, **hyper):
    """A seeded regression batch, a fresh model (no .grad yet), MSELoss, an optimizer.

    The model is built under a forked RNG: the learner's global torch seed stays put.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.randn(32, 3, generator=g)  # (N, D)
    y = X @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3  # (N, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hidden:
            model = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.Tanh(),
                                        torch.nn.Linear(hidden, 1))
        else:
            model = torch.nn.Linear(3, 1)
    loss_fn = torch.nn.MSELoss()
    opt = getattr(torch.optim, optimizer)(model.parameters(), **(hyper or {"lr": 0.1}))
    return model, X, y, loss_fn, opt


def _reference_step(model, X, y, loss_fn, optimizer) -> float:
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _accumulating_step(model, X, y, loss_fn, optimizer) -> float:
    """The classic bug: no zero_grad, so .grad holds the sum of the gradients so far."""
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _parameters(model) -> list:
    return [p.detach().clone() for p in model.parameters()]


def _same_parameters(a, b, rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    return all(_matches(x, y, rtol, atol) for x, y in zip(a, b))


def _steps_match_reference(train_step, num_steps: int, optimizer: str, hidden: int = 0,
                           **hyper):
    """Core: each of ``num_steps`` learner steps leaves the parameters where a reference
    step with the same (given) optimizer does, from the same start."""
    mine = _torch_setup(1, optimizer, hidden, **hyper)
    ref = _torch_setup(1, optimizer, hidden, **hyper)
    shown = _short(mine[4])
    for k in range(1, num_steps + 1):
        call(train_step, *mine, check_mutation=False)
        _reference_step(*ref)
        for (name, p), r in zip(mine[0].named_parameters(), ref[0].parameters()):
            expect_close(p.detach(), r.detach(), rtol=1e-5, atol=1e-7,
                         what=f"{name} after {k} call(s) of train_step with {shown}")


_TRAIN_HINT = ("One step with the optimizer you are given: clear the old gradients "
               "(before backward() or after step()), compute the loss, backpropagate "
               "it, and let that optimizer update the parameters.")


@q.case("returns the loss of the batch (before the update)",
        hint="Return the loss computed on (X, y) in this step, before the optimizer "
             "changed the parameters, as a Python number.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    expected = loss_fn(model(X), y).item()
    got = call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    value = as_number(got, "the loss train_step returned")
    after = loss_fn(model(X), y).item()
    before_ok = math.isclose(value, expected, rel_tol=1e-5)
    if not before_ok and math.isclose(value, after, rel_tol=1e-5):
        raise CheckFailure(f"train_step returned {value:.6g}, the loss after the "
                           f"update; expected {expected:.6g}, the loss of the batch "
                           "before it.")
    expect_close(value, expected, rtol=1e-5, what="the loss train_step returned")


@q.case("returns a Python number (loss.item()), not a tensor", kind="property",
        hint="Return a plain float: the tensor `loss` keeps its whole computation "
             "graph alive (memory grows with every loss you store), and a list of such "
             "tensors cannot be plotted directly. Tensors have a method that gives "
             "their one number.")
def _(train_step):
    import torch

    model, X, y, loss_fn, optimizer = _torch_setup()
    got = call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    if isinstance(got, torch.Tensor):
        grad = " that requires grad" if got.requires_grad else ""
        raise CheckFailure(f"train_step returned a tensor of shape {tuple(got.shape)}"
                           f"{grad}, not a Python float.")


@q.case("changes the parameters (loss.backward() then optimizer.step())",
        hint="No update: backpropagate the loss to fill the gradients, then let the "
             "optimizer step to apply them (zeroing the gradients between the two "
             "erases them).")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup()
    before = _parameters(model)
    call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    if all(bool((p.detach() == b).all()) for p, b in zip(model.parameters(), before)):
        raise CheckFailure("After one train_step the parameters are unchanged.")


@q.case("steps with the optimizer it is given (here Adam)",
        hint="Use the optimizer passed in as the argument `optimizer`: a new "
             "torch.optim.SGD made inside train_step ignores the caller's choice of "
             "optimizer, learning rate and momentum, and starts from an empty state at "
             "every call.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup(optimizer="Adam", lr=0.01)
    before = _parameters(model)
    call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    moved = not _same_parameters(_parameters(model), before, rtol=0, atol=0)
    if moved and not optimizer.state:
        raise CheckFailure("The parameters changed, but the optimizer passed in "
                           "(Adam(lr=0.01)) never took a step.")


@q.case("zeroes the gradients between steps (they do not accumulate)",
        hint="Forgot to zero the gradients (the optimizer's zero_grad): PyTorch adds "
             "each new gradient to .grad, so without zeroing (before backward() or "
             "after step()), step k uses the sum of all k gradients so far.")
def _(train_step):
    mine = _torch_setup(2, "SGD", lr=0.05)
    ref = _torch_setup(2, "SGD", lr=0.05)
    acc = _torch_setup(2, "SGD", lr=0.05)
    for k in range(1, 4):
        call(train_step, *mine, check_mutation=False)
        _reference_step(*ref)
        _accumulating_step(*acc)
        got = _parameters(mine[0])
        if _same_parameters(got, _parameters(ref[0])):
            continue
        if k > 1 and _same_parameters(got, _parameters(acc[0])):
            raise CheckFailure(f"After {k} calls of train_step your parameters are "
                               "where steps that never zero the gradients put them: "
                               f"step {k} used the sum of the {k} gradients so far.")
        return  # another mistake: the cases that compare with the reference report it


@q.case("one step with SGD(lr=0.05, momentum=0.9) equals the reference step",
        kind="core", hint=_TRAIN_HINT)
def _(train_step):
    _steps_match_reference(train_step, 1, "SGD", lr=0.05, momentum=0.9)


@q.case("three steps with Adam(lr=0.01) equal three reference steps", kind="core",
        hint=_TRAIN_HINT)
def _(train_step):
    _steps_match_reference(train_step, 3, "Adam", lr=0.01)


@q.case("four steps of SGD(lr=0.2) on a two-layer model equal four reference steps",
        kind="core", hint=_TRAIN_HINT)
def _(train_step):
    _steps_match_reference(train_step, 4, "SGD", hidden=4, lr=0.2)


@q.case("trains: the loss goes down over 50 steps, to under 1% of where it started",
        hint="The loss does not go down: backpropagate the loss itself (not its "
             "negative, not a scaled copy), zero the gradients each step, and let the "
             "optimizer do the update.")
def _(train_step):
    model, X, y, loss_fn, optimizer = _torch_setup(seed=1)
    start = loss_fn(model(X), y).item()
    for _ in range(50):
        call(train_step, model, X, y, loss_fn, optimizer, check_mutation=False)
    final = loss_fn(model(X), y).item()
    if not math.isfinite(final):
        raise CheckFailure(f"After 50 steps of SGD(lr=0.1) the loss is {final}: the "
                           "update blew up (learning rate, sign?).")
    if not final < 0.01 * start:
        raise CheckFailure(f"The loss went from {start:.4g} to {final:.4g} in 50 steps "
                           "of SGD(lr=0.1); the reference gets under 1% of the start.")
