"""Checks of 02.train_moons: Train a small network on the two moons with the scalar
engine.

The learner trains a 2-H-1 tanh network by full-batch gradient descent, with gradients
from ``backward()`` of the lesson's ``Value`` (micrograd's demo, with lesson 01's
logistic loss). The oracle does the same steps in torch, from the same initial weights,
in float64, so the parameters agree to rounding error. Pure Python is slow (tens of
microseconds a node on a loaded machine): the cases use a few steps on 12 to 20 points,
and the one long run (30 steps on 16 points) takes about a second on an idle machine.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from ....lessons.autograd import Value as RefValue
from ...asserts import CheckFailure, _short, as_number, call, expect_close, fmt_pair
from ...registry import question
from ._common import _basic, _matches, _plain_mismatch


q = question("02.train_moons", "Train a small network on the two moons with the scalar "
             "engine", answers=["train_moons"], timeout=10)

_NAMES = ("W1", "b1", "W2", "b2")


class _Params(dict):
    """The parameter dict, shown in messages as one short line: its keys."""

    def __repr__(self) -> str:
        return "params{" + ", ".join(self) + "}"


def _two_moons(N: int, seed: int, noise: float = 0.1):
    """N points of two interleaved half circles, standardized, and their labels 0/1.

    The geometry of sklearn.datasets.make_moons (the upper half circle for class 0, the
    lower one shifted by (1, -0.5) for class 1), drawn with NumPy's seeded generator, so
    that a check never imports scikit-learn (seconds on a busy machine).
    """
    rng = np.random.default_rng(seed)
    n0 = N // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, N - n0)
    X = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], axis=1),
                        np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)])  # (N, 2)
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(N - n0, dtype=np.int64)])
    X = X + rng.normal(0.0, noise, X.shape)
    order = rng.permutation(N)
    X, y = X[order], y[order]
    return (X - X.mean(axis=0)) / X.std(axis=0), y  # (N, 2) float64, (N,) int64


def _setup(seed: int, N: int, H: int):
    """Seeded initial parameters of a 2-H-1 network and N moons."""
    rng = np.random.default_rng(1000 + seed)
    params = _Params({
        "W1": rng.standard_normal((2, H)) * 1.5,  # (2, H): wide enough to bend
        "b1": rng.standard_normal(H) * 0.5,  # (H,)
        "W2": rng.standard_normal((H, 1)) / np.sqrt(H),  # (H, 1)
        "b2": rng.standard_normal(1) * 0.1,  # (1,)
    })
    X, y = _two_moons(N, seed)
    return params, X, y


def _oracle(params, X, y, lr, num_steps, accumulate=False, reduction="mean", sign=1.0):
    """(losses before each step, parameters after the last) of the same steps in torch.

    ``accumulate``: gradients never zeroed (each step adds the earlier steps');
    ``reduction="sum"``: the summed loss; ``sign=-1``: steps up the gradient.
    """
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, yt = torch.tensor(X), torch.tensor(y, dtype=torch.float64)
    losses = []
    for _ in range(num_steps):
        s = (torch.tanh(Xt @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"])[:, 0]  # (N,)
        loss = F.binary_cross_entropy_with_logits(s, yt, reduction=reduction)
        if not accumulate:
            for p in t.values():
                p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in t.values():
                p -= sign * lr * p.grad
        losses.append(loss.item())
    return losses, {k: v.detach().numpy().copy() for k, v in t.items()}


def _loss(params, X, y) -> float:
    """The mean logistic loss of the network at ``params`` (NumPy)."""
    s = (np.tanh(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"])[:, 0]
    return float(np.mean(np.logaddexp(0.0, s) - y * s))  # log(1 + e^s) - y s


def _accuracy(params, X, y) -> float:
    s = (np.tanh(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"])[:, 0]
    return float(np.mean((s > 0) == (y == 1)))


@contextlib.contextmanager
def _counting_backward():
    """Count the calls of the lesson's Value.backward while the block runs."""
    calls: list[int] = []
    original = RefValue.backward

    def backward(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    RefValue.backward = backward
    try:
        yield calls
    finally:
        RefValue.backward = original


def _train(train_moons, params, X, y, lr, num_steps):
    """One call of the learner's loop (it changes params, as it should; X and y are
    copies): (the losses as floats, the number of backward() calls of the engine)."""
    with _counting_backward() as calls:
        got = call(train_moons, params, X.copy(), y.copy(), lr, num_steps,
                   check_mutation=False, name="train_moons")
    return _losses(got, num_steps), len(calls)


def _losses(got, num_steps: int) -> list[float]:
    """The returned losses as a list of floats, or a basic failure saying why not."""
    if got is None:
        raise _basic("train_moons returned None: did you forget to `return` the list "
                     "of losses?", problem="none")
    if isinstance(got, np.ndarray) and got.ndim == 1:
        got = got.tolist()
    if not isinstance(got, (list, tuple)):
        raise _basic(f"train_moons should return a list of {num_steps} losses, but it "
                     f"returned {_short(got)}.", problem="type")
    if len(got) != num_steps:
        raise _basic(f"train_moons(..., num_steps={num_steps}) returned {len(got)} "
                     f"losses; it should return one per step, {num_steps}.",
                     problem="type")
    return [as_number(v, f"loss {i} of the list train_moons returned")
            for i, v in enumerate(got)]


def _params_are(params, expected, rtol=1e-9, atol=1e-12) -> bool:
    """Does every parameter equal ``expected``'s (never raises)?"""
    return all(_matches(params.get(k), expected[k], rtol, atol) for k in expected)


def _expect_params(params, expected, what: str, plain: bool = False) -> None:
    """Every parameter against ``expected``, the last layer first (``plain``: basic)."""
    compare = _plain_mismatch if plain else expect_close
    for k in ("W2", "b2", "W1", "b1"):
        compare(params.get(k), expected[k], rtol=1e-9, atol=1e-12,
                what=f"params[{k!r}] {what}")


def _plain_params(params, start, expected, what: str) -> None:
    """Fail without the case's hint: params is wrong, but not by the case's mistake (a
    dict still holding the initial values is the business of the write-back case)."""
    if _params_are(params, start, 0.0, 0.0):
        raise _basic("after train_moons, params still holds the initial values: the "
                     "trained values never reached the dict.")
    _expect_params(params, expected, what, plain=True)


def _core(train_moons, seed, N, H, lr, num_steps, check_losses=True, check_params=True):
    params, X, y = _setup(seed, N, H)
    ref_losses, ref_params = _oracle(params, X, y, lr, num_steps)
    losses, _ = _train(train_moons, params, X, y, lr, num_steps)
    where = f"{num_steps} steps, lr = {lr:g}, N = {N}, H = {H}"
    if check_losses:
        expect_close(np.array(losses), np.array(ref_losses), rtol=1e-9, atol=1e-12,
                     what=f"the losses train_moons returned ({where})")
    if check_params:
        _expect_params(params, ref_params, f"after {where}")


_HINT = ("Each step: the forward pass of all N points with autograd.Value nodes, the "
         "mean logistic loss of lesson 01, one backward(), then every parameter moves "
         "against its gradient, scaled by lr. Compare a step with torch.autograd on "
         "the same arrays.")


@q.case("3 steps on 16 moons (H = 3, lr = 0.5): the losses, against PyTorch",
        kind="core", hint=_HINT)
def _(train_moons):
    _core(train_moons, 0, 16, 3, 0.5, 3, check_params=False)


@q.case("4 steps on 20 moons (H = 4, lr = 1): every parameter, against PyTorch",
        kind="core", hint=_HINT)
def _(train_moons):
    _core(train_moons, 1, 20, 4, 1.0, 4, check_losses=False)


@q.case("5 steps on 12 moons (H = 5, lr = 2): losses and parameters, against PyTorch",
        kind="core", hint=_HINT)
def _(train_moons):
    _core(train_moons, 2, 12, 5, 2.0, 5)


def _mistake(train_moons, knobs: dict, message: str, seed=3, N=14, H=3, lr=1.0,
             num_steps=3):
    """Pass on the oracle's parameters; fail with ``message`` on those of the mistake
    (``knobs`` of ``_oracle``); else plainly."""
    params, X, y = _setup(seed, N, H)
    start = {k: v.copy() for k, v in params.items()}
    _, expected = _oracle(params, X, y, lr, num_steps)
    _, mistaken = _oracle(params, X, y, lr, num_steps, **knobs)
    _train(train_moons, params, X, y, lr, num_steps)
    if _params_are(params, expected):
        return
    if _params_are(params, mistaken):
        raise CheckFailure(message)
    _plain_params(params, start, expected, f"after {num_steps} steps (lr = {lr:g})")


@q.case("the gradients are zeroed before each backward()", kind="mistake",
        hint="backward() adds to .grad, as PyTorch does: clear the parameters' "
             "gradients before each backward pass, or every step also takes the "
             "gradients of all the steps before it.")
def _(train_moons):
    _mistake(train_moons, {"accumulate": True},
             "after 3 steps the parameters are those of gradient descent whose "
             "gradients were never zeroed: step 2 used the gradients of steps 1 and 2 "
             "together, step 3 those of all three.")


@q.case("the loss is the mean over the N points, not their sum", kind="mistake",
        hint="Average the N points' losses: with their sum every gradient, and so "
             "every step, is N times too large.")
def _(train_moons):
    _mistake(train_moons, {"reduction": "sum"},
             "after 3 steps the parameters are those of gradient descent on the sum of "
             "the 14 points' losses, not their mean.")


@q.case("returns the loss of each step before its update", kind="mistake",
        hint="Record the loss of each forward pass, before the parameters move: the "
             "loss after an update belongs to the next step.")
def _(train_moons):
    params, X, y = _setup(4, 14, 3)
    ref_losses, _ = _oracle(params, X, y, 1.0, 4)
    losses, _ = _train(train_moons, params, X, y, 1.0, 3)
    if _matches(np.array(losses), np.array(ref_losses[:3]), 1e-9, 1e-12):
        return
    if _matches(np.array(losses), np.array(ref_losses[1:]), 1e-9, 1e-12):
        raise CheckFailure("the 3 losses train_moons returned are those after each "
                           "update (the losses of steps 2, 3 and 4); the first should "
                           "be the loss at the initial parameters.")
    _plain_mismatch(np.array(losses), np.array(ref_losses[:3]),
                    "the losses train_moons returned (3 steps, lr = 1)", 1e-9, 1e-12)


@q.case("each step starts where the last one left off", kind="mistake",
        hint="Keep the parameters from one step to the next: the numbers a step moves "
             "are the ones the next forward pass must read.")
def _(train_moons):
    params, X, y = _setup(5, 14, 3)
    start = {k: v.copy() for k, v in params.items()}
    ref_losses, expected = _oracle(params, X, y, 1.0, 3)
    _, one_step = _oracle(params, X, y, 1.0, 1)
    losses, _ = _train(train_moons, params, X, y, 1.0, 3)
    if _matches(np.array(losses), np.array(ref_losses), 1e-9, 1e-12) and \
            _params_are(params, expected):
        return
    if _matches(np.array(losses), np.array(ref_losses[:1] * 3), 1e-9, 1e-12):
        raise CheckFailure("the 3 losses train_moons returned are equal, the loss at "
                           "the initial parameters: every step started again from "
                           "them.")
    if _params_are(params, one_step):
        raise CheckFailure("after 3 steps the parameters are those after one step: "
                           "each step started again from the initial parameters.")
    _plain_params(params, start, expected, "after 3 steps (lr = 1)")


@q.case("writes the trained values into the arrays of params", kind="mistake",
        hint="The caller reads the trained network from params: after the last step, "
             "store each trained number in the arrays of the dict (in place, or as new "
             "arrays under the same keys).")
def _(train_moons):
    params, X, y = _setup(6, 14, 3)
    start = {k: v.copy() for k, v in params.items()}
    ref_losses, expected = _oracle(params, X, y, 1.0, 3)
    losses, _ = _train(train_moons, params, X, y, 1.0, 3)
    if _params_are(params, expected):
        return
    unchanged = [k for k in _NAMES if isinstance(params.get(k), np.ndarray)
                 and params[k].shape == start[k].shape
                 and np.array_equal(params[k], start[k])]
    if unchanged:
        raise CheckFailure(f"after train_moons, params[{unchanged[0]!r}] still holds "
                           f"its initial values (unchanged: {', '.join(unchanged)}).")
    _expect_params(params, expected, "after 3 steps (lr = 1)", plain=True)


@q.case("one step lowers the loss", kind="mistake",
        hint="Step against the gradient: subtract lr times the gradient (adding it "
             "climbs the loss).")
def _(train_moons):
    params, X, y = _setup(7, 14, 3)
    start = {k: v.copy() for k, v in params.items()}
    before = _loss(params, X, y)
    _, uphill = _oracle(params, X, y, 0.5, 1, sign=-1.0)
    _train(train_moons, params, X, y, 0.5, 1)
    if _params_are(params, start, 0.0, 0.0):
        raise _basic("after one step, params still holds the initial values: the "
                     "trained values never reached the dict.")
    if _params_are(params, uphill):
        was, now = fmt_pair(before, _loss(params, X, y))
        raise CheckFailure(f"the loss went from {was} to {now} after one step: every "
                           "parameter moved along its gradient, uphill.")
    try:
        after = _loss(params, X, y)
    except Exception:
        raise _basic("after train_moons, params no longer holds arrays the network can "
                     "use: keep the keys and the shapes.") from None
    if not after < before:
        was, now = fmt_pair(before, after)
        raise _basic(f"the loss went from {was} to {now} after one step (lr = 0.5); it "
                     "should go down.")


@q.case("uses the lesson's engine: one backward() of an autograd.Value per step",
        kind="property",
        hint="Build each step's loss from autograd.Value nodes and call its "
             "backward() once: the question is the engine's training loop (gradients "
             "from NumPy or torch do not count).")
def _(train_moons):
    params, X, y = _setup(8, 12, 3)
    _, calls = _train(train_moons, params, X, y, 1.0, 3)
    if calls != 3:
        raise CheckFailure(f"train_moons(..., num_steps=3) called backward() of the "
                           f"lesson's Value (autograd.Value) {calls} time(s); one per "
                           "step, 3, was expected.")


@q.case("returns one loss per step; params keeps its keys and shapes", kind="property",
        hint="Return a list of num_steps Python floats, and leave in params the four "
             "arrays it came with, shaped as they were.")
def _(train_moons):
    params, X, y = _setup(9, 12, 4)
    shapes = {k: v.shape for k, v in params.items()}
    _train(train_moons, params, X, y, 1.0, 2)  # the list is checked inside
    for k in _NAMES:
        if np.shape(params.get(k)) != shapes[k]:
            raise CheckFailure(f"after train_moons, params[{k!r}] has shape "
                               f"{np.shape(params.get(k))}; it came in with shape "
                               f"{shapes[k]}.", basic=True)


@q.case("30 steps separate 16 moons (training accuracy 100%)", kind="property",
        timeout=20,  # the one long run: a second on an idle machine, 5 s on a busy one
        hint="Each step must start from the parameters the previous one left and "
             "nothing may pile up from step to step (gradients, nodes): a correct "
             "loop classifies every training point after 30 steps.")
def _(train_moons):
    params, X, y = _setup(25, 16, 5)
    start_params = {k: v.copy() for k, v in params.items()}
    start = _accuracy(params, X, y)
    ref_losses, _ = _oracle(params, X, y, 4.0, 3)
    losses, _ = _train(train_moons, params, X, y, 4.0, 30)
    # A wrong first step, or no trained values in params: other cases' business.
    _plain_mismatch(np.array(losses[:3]), np.array(ref_losses),
                    "the first 3 of the 30 losses (lr = 4)", 1e-9, 1e-12)
    if _params_are(params, start_params, 0.0, 0.0):
        raise _basic("after 30 steps, params still holds the initial values.")
    accuracy = _accuracy(params, X, y)
    if accuracy < 1.0:
        raise CheckFailure(f"after 30 steps (lr = 4) the network classifies "
                           f"{accuracy:.0%} of the 16 training points correctly (it "
                           f"started at {start:.0%}); a correct loop reaches 100%. The "
                           f"loss went from {losses[0]:.4g} to {losses[-1]:.4g}.")
