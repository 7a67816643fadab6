"""Checks of 02.train_mlp: Make it train: one SGD step of a two-layer tanh MLP."""
from __future__ import annotations

import numpy as np

from ....lessons.mlp_numpy import linear_backward as ref_linear_backward
from ....lessons.mlp_numpy import softmax_cross_entropy as ref_softmax_cross_entropy
from ...asserts import (CheckFailure, as_number, call, expect_close, expect_finite,
                        fmt_pair)
from ...registry import question
from ._common import _basic, _matches, _plain_mismatch


q = question("02.train_mlp", "Make it train: one SGD step of a two-layer tanh MLP",
             answers=["train_step"], timeout=10)


class _Params(dict):
    """The parameter dict, shown in messages as one short line: its keys."""

    def __repr__(self) -> str:
        return "params{" + ", ".join(self) + "}"


def _mlp_setup(seed=0, B=16, D=12, H=20, C=4):
    """Seeded parameters of a D-H-C tanh network and a batch (X, y) of B examples."""
    rng = np.random.default_rng(seed)
    params = _Params({
        "W1": rng.standard_normal((D, H)) * np.sqrt(1 / D),  # variance 1/D_in (tanh)
        "b1": rng.standard_normal(H) * 0.1,
        "W2": rng.standard_normal((H, C)) * np.sqrt(1 / H),
        "b2": rng.standard_normal(C) * 0.1,
    })
    X, y = rng.standard_normal((B, D)), rng.integers(0, C, B)
    return params, X, y


def _ref_loss_and_grads(params, X, y, mask: bool = True):
    """The reference forward and backward (``mask=False``: no tanh derivative)."""
    Z1 = X @ params["W1"] + params["b1"]  # (B, H)
    A1 = np.tanh(Z1)  # (B, H)
    logits = A1 @ params["W2"] + params["b2"]  # (B, C)
    loss, dlogits = ref_softmax_cross_entropy(logits, y)
    dA1, dW2, db2 = ref_linear_backward(dlogits, A1, params["W2"])
    dZ1 = dA1 * (1 - A1 ** 2) if mask else dA1  # (B, H)
    _, dW1, db1 = ref_linear_backward(dZ1, X, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _ref_step(params, X, y, lr, mask: bool = True, sign: float = 1.0):
    """(loss, the parameters after one reference step), ``params`` left as they are."""
    loss, grads = _ref_loss_and_grads(params, X, y, mask)
    return loss, {k: params[k] - sign * lr * grads[k] for k in params}


def _step(train_step, params, X, y, lr):
    """One call of the learner's step (it changes params, as it should)."""
    return call(train_step, params, X, y, lr, check_mutation=False, name="train_step")


def _params_are(params, expected, rtol=1e-7, atol=1e-10) -> bool:
    """Does every parameter equal ``expected``'s (never raises)?"""
    return all(_matches(params.get(k), expected[k], rtol, atol) for k in expected)


def _expect_params(params, expected, what: str, plain: bool = False) -> None:
    """Every parameter against ``expected``, the last layer first (``plain``: basic)."""
    compare = _plain_mismatch if plain else expect_close
    for k in ("W2", "b2", "W1", "b1"):
        compare(params.get(k), expected[k], rtol=1e-7, atol=1e-10,
                what=f"params[{k!r}] {what}")


_STEP_HINT = ("Check each piece: the loss and dlogits (softmax_cross_entropy), the "
              "output layer (linear_backward), the tanh layer (your Question 3); then "
              "move every parameter against its own gradient, scaled by lr.")


@q.case("the loss it returns, on a batch of 16, against the reference", kind="core",
        hint="Return the loss of this batch's forward pass, the mean softmax "
             "cross-entropy of the lesson, as one number computed before the "
             "parameters change.")
def _(train_step):
    params, X, y = _mlp_setup(0)
    expected, _ = _ref_loss_and_grads(params, X, y)
    loss = _step(train_step, params, X, y, 0.1)
    expect_close(as_number(loss, "the loss train_step returned"), expected, rtol=1e-7,
                 what="the loss train_step returned")


@q.case("one step with lr = 0.05: every parameter, against the reference step",
        kind="core", hint=_STEP_HINT)
def _(train_step):
    params, X, y = _mlp_setup(3)
    _, expected = _ref_step(params, X, y, 0.05)
    _step(train_step, params, X, y, 0.05)
    _expect_params(params, expected, "after one step (lr = 0.05)")


@q.case("two steps in a row with lr = 0.2 on another network (B=8, D=5, H=7, C=3)",
        kind="core", hint=_STEP_HINT)
def _(train_step):
    params, X, y = _mlp_setup(5, B=8, D=5, H=7, C=3)
    for n in (1, 2):
        _, expected = _ref_step(params, X, y, 0.2)
        _step(train_step, params, X, y, 0.2)
        _expect_params(params, expected, f"after step {n} (lr = 0.2)")


@q.case("returns the loss computed before the update", kind="mistake",
        hint="Keep the loss of the forward pass and return it: the loss after the "
             "update belongs to the next step.")
def _(train_step):
    params, X, y = _mlp_setup(1)
    before, after = _ref_step(params, X, y, 0.1)
    after_loss, _ = _ref_loss_and_grads(after, X, y)
    loss = _step(train_step, params, X, y, 0.1)
    loss = as_number(loss, "the loss train_step returned")
    if _matches(loss, before):
        return
    if _matches(loss, after_loss):
        got, expected = fmt_pair(loss, before)
        raise CheckFailure(f"train_step returned {got}, the loss after its "
                           "update; the loss of the batch before the update is "
                           f"{expected}.")
    _plain_mismatch(loss, before, "the loss train_step returned")


@q.case("one step lowers the loss on a seeded batch", kind="mistake",
        hint="Step against the gradient: subtract lr times the gradient (adding it "
             "climbs the loss).")
def _(train_step):
    params, X, y = _mlp_setup(1)
    before, _ = _ref_loss_and_grads(params, X, y)
    _, uphill = _ref_step(params, X, y, 0.1, sign=-1.0)
    _step(train_step, params, X, y, 0.1)
    if _params_are(params, uphill):
        after, _ = _ref_loss_and_grads(params, X, y)
        was, now = fmt_pair(before, after)
        raise CheckFailure(f"the loss went from {was} to {now} after one step: every "
                           "parameter moved along its gradient, uphill.")
    try:
        after, _ = _ref_loss_and_grads(params, X, y)
    except Exception:
        raise _basic("after train_step, params no longer holds arrays the network can "
                     "use.") from None
    if not after < before:
        was, now = fmt_pair(before, after)
        raise _basic(f"the loss went from {was} to {now} after one step (lr = 0.1); it "
                     "should go down.")


@q.case("updates all four parameters, in the dict", kind="mistake",
        hint="Update the arrays the dict holds (in place, or by storing the new array "
             "under the same key): assigning to a local name such as W1 only rebinds "
             "the name, and the dict keeps the old array.")
def _(train_step):
    params, X, y = _mlp_setup(2)
    before = {k: v.copy() for k, v in params.items()}
    _step(train_step, params, X, y, 0.1)
    unchanged = [k for k in ("W1", "b1", "W2", "b2")
                 if isinstance(params.get(k), np.ndarray)
                 and np.array_equal(params[k], before[k])]
    if unchanged:
        raise CheckFailure(f"after train_step, params[{unchanged[0]!r}] is unchanged "
                           f"(unchanged: {', '.join(unchanged)}).")


@q.case("the gradient passes through tanh between the layers", kind="mistake",
        hint="Between the two linear layers the gradient passes the tanh: use its "
             "derivative (your tanh_layer_backward of Question 3) before the first "
             "layer's weights.")
def _(train_step):
    params, X, y = _mlp_setup(3)
    _, expected = _ref_step(params, X, y, 0.05)
    _, no_mask = _ref_step(params, X, y, 0.05, mask=False)
    _step(train_step, params, X, y, 0.05)
    if _params_are(params, expected):
        return
    if _params_are(params, no_mask):
        raise CheckFailure("params['W1'] and params['b1'] moved by the gradient of a "
                           "network without its tanh: the gradient did not go "
                           "through tanh's derivative.")
    _expect_params(params, expected, "after one step (lr = 0.05)", plain=True)


@q.case("100 steps fit a batch of 32 examples (loss below 0.05)", kind="mistake",
        hint="Each call must start from the parameters as the previous call left "
             "them: nothing cached from an earlier call, nothing reset.")
def _(train_step):
    params, X, y = _mlp_setup(4, B=32, D=20, H=64, C=5)
    _, expected = _ref_step(params, X, y, 0.5)
    _step(train_step, params, X, y, 0.5)
    _expect_params(params, expected, "after the first of 100 steps (lr = 0.5)",
                   plain=True)
    for _ in range(99):
        _step(train_step, params, X, y, 0.5)
    loss, _ = _ref_loss_and_grads(params, X, y)
    expect_finite(loss, what="the loss after 100 steps")
    if not loss < 0.05:
        raise CheckFailure("after 100 steps of lr = 0.5 the loss on the 32 examples "
                           f"is {loss:.4g}, though the first step was right; a correct "
                           "step brings it below 0.05.")
