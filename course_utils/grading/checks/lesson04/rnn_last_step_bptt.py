"""Checks of 04.rnn_last_step_bptt: Backpropagation through time, one loss at the
end."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...asserts import CheckFailure, _short, as_number, call, expect_close
from ...registry import question
from ._common import _basic, _copies, _matches, _parts


q = question("04.rnn_last_step_bptt",
             "Backpropagation through time, one loss at the end",
             answers=["rnn_last_step_bptt"], timeout=10)

NAMES = ("W_xh", "W_hh", "b_h", "W_hy", "b_y", "h0")


def _inputs(seed: int, B: int, T: int, D: int, H: int, C: int):
    """Seeded float64 X (B, T, D), y (B,), h0 (B, H) and the parameters."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, T, D))  # (B, T, D)
    y = rng.integers(0, C, B)  # (B,)
    h0 = rng.standard_normal((B, H)) * 0.5  # (B, H)
    params = {
        "W_xh": rng.standard_normal((H, D)) / np.sqrt(D),  # (H, D)
        "W_hh": rng.standard_normal((H, H)) * 0.9 / np.sqrt(H),  # (H, H)
        "b_h": rng.standard_normal(H) * 0.3,  # (H,)
        "W_hy": rng.standard_normal((C, H)) / np.sqrt(H),  # (C, H)
        "b_y": rng.standard_normal(C) * 0.3,  # (C,)
    }
    return X, y, h0, params


def reference_rnn_last_step_bptt(X, y, h0, params):
    """(loss, grads) by torch.autograd in float64: the oracle."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h0_t = torch.tensor(h0, requires_grad=True)
    h = h0_t
    for step in range(X.shape[1]):
        x_t = torch.tensor(X[:, step])  # (B, D)
        h = torch.tanh(x_t @ t["W_xh"].T + h @ t["W_hh"].T + t["b_h"])  # (B, H)
    logits = h @ t["W_hy"].T + t["b_y"]  # (B, C)
    loss = F.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in t.items()}
    grads["h0"] = h0_t.grad.numpy()
    return loss.item(), grads


def mistaken_bptt(X, y, h0, params, no_recurrence=False, deriv_prev=False,
                  batch_sum=False, first_step_only=False, transposed_hh=False,
                  pairs_h_t=False):
    """BPTT in NumPy with one typical mistake switched on: (loss, grads)."""
    W_xh, W_hh, b_h = params["W_xh"], params["W_hh"], params["b_h"]
    W_hy, b_y = params["W_hy"], params["b_y"]
    B, T, _ = X.shape
    hs = [h0]
    for step in range(T):
        hs.append(np.tanh(X[:, step] @ W_xh.T + hs[-1] @ W_hh.T + b_h))  # (B, H)
    logits = hs[-1] @ W_hy.T + b_y  # (B, C)
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)  # (B, C)
    loss = float(-np.log(p[np.arange(B), y]).mean())
    dlogits = p.copy()
    dlogits[np.arange(B), y] -= 1
    dlogits /= 1 if batch_sum else B  # (B, C)
    grads = {"W_hy": dlogits.T @ hs[-1], "b_y": dlogits.sum(0)}
    dh = dlogits @ W_hy  # (B, H): dL/dh_T
    dW_xh, dW_hh, db_h = (np.zeros_like(W_xh), np.zeros_like(W_hh),
                          np.zeros_like(b_h))
    for step in reversed(range(T)):
        h_t, h_prev = hs[step + 1], hs[step]
        dz = dh * (1 - (h_prev if deriv_prev else h_t) ** 2)  # (B, H)
        parts = (dz.T @ X[:, step], dz.T @ (h_t if pairs_h_t else h_prev),
                 dz.sum(0))
        if first_step_only:
            dW_xh, dW_hh, db_h = parts
        else:
            dW_xh, dW_hh, db_h = dW_xh + parts[0], dW_hh + parts[1], db_h + parts[2]
        dh_prev = dz @ W_hh  # (B, H): dL/dh_{t-1}
        dh = dh if no_recurrence else dh_prev
    grads.update(W_xh=dW_xh, W_hh=dW_hh.T if transposed_hh else dW_hh, b_h=db_h,
                 h0=dh_prev)
    return loss, grads


def _what(X, H, C) -> str:
    B, T, D = X.shape
    return f"rnn_last_step_bptt for B={B}, T={T}, D={D}, H={H}, C={C}"


def _answer(fn, X, y, h0, params):
    got = call(fn, *_copies(X, y, h0), {k: v.copy() for k, v in params.items()},
               check_mutation=False, name="rnn_last_step_bptt")
    loss, grads = _parts(got, ("loss", "grads"), "rnn_last_step_bptt")
    if not isinstance(grads, dict):
        raise _basic(f"the grads returned are {_short(grads)}; expected a dict with "
                     f"the keys {', '.join(NAMES)}.", problem="type")
    missing = [k for k in NAMES if k not in grads]
    if missing:
        raise _basic(f"the grads dict has no {', '.join(missing)}; expected the keys "
                     f"{', '.join(NAMES)}.", problem="type")
    return as_number(loss, "the loss"), grads


def _core(fn, seed, B, T, D, H, C):
    X, y, h0, params = _inputs(seed, B, T, D, H, C)
    loss, grads = _answer(fn, X, y, h0, params)
    ref_loss, ref = reference_rnn_last_step_bptt(X, y, h0, params)
    what = _what(X, H, C)
    expect_close(loss, ref_loss, rtol=1e-7, what=f"the loss of {what}")
    for k in NAMES:
        expect_close(grads[k], ref[k], rtol=1e-6, atol=1e-10,
                     what=f"grads['{k}'] of {what}")


_HINT = ("The loss sees only h_T: start from dL/dh_T (through the readout), then walk "
         "back in time, at each step through tanh's derivative, adding that step's "
         "contribution to the shared weights and passing the gradient on to h_{t-1} "
         "through W_hh.")


@q.case("B=3, T=5, D=4, H=6, C=3, against autograd", kind="core", hint=_HINT)
def _(rnn_last_step_bptt):
    _core(rnn_last_step_bptt, 0, 3, 5, 4, 6, 3)


@q.case("one step: B=2, T=1, D=3, H=4, C=2", kind="core", hint=_HINT)
def _(rnn_last_step_bptt):
    _core(rnn_last_step_bptt, 1, 2, 1, 3, 4, 2)


@q.case("a longer sequence: B=4, T=12, D=H=5, C=4", kind="core", hint=_HINT)
def _(rnn_last_step_bptt):
    _core(rnn_last_step_bptt, 2, 4, 12, 5, 5, 4)


def _mistake(fn, message, keys=NAMES, seed=3, shape=(3, 6, 4, 5, 3), **mistake):
    """Right on ``keys``, or the mistake's values there (message shown), or a plain
    mismatch (no hint)."""
    X, y, h0, params = _inputs(seed, *shape)
    what = _what(X, shape[3], shape[4])
    loss, grads = _answer(fn, X, y, h0, params)
    _, ref = reference_rnn_last_step_bptt(X, y, h0, params)
    wrong = mistaken_bptt(X, y, h0, params, **mistake)[1]
    bad = [k for k in keys if not _matches(grads[k], ref[k], 1e-6, 1e-10)]
    if not bad:
        return
    if all(_matches(grads[k], wrong[k], 1e-6, 1e-10) for k in bad):
        raise CheckFailure(f"{what}: grads {', '.join(bad)} {message}")
    k = bad[0]
    try:
        expect_close(grads[k], ref[k], rtol=1e-6, atol=1e-10,
                     what=f"grads['{k}'] of {what}")
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=True, call=failure.call,
                           problem=failure.problem) from None


@q.case("the gradient flows back through W_hh to earlier steps",
        hint="h_T depends on h_{T-1}, which depends on h_{T-2}...: after each step "
             "pass the gradient on to the previous hidden state through W_hh, or only "
             "the last step learns.")
def _(rnn_last_step_bptt):
    _mistake(rnn_last_step_bptt, "are those of a backward in which every step "
             "received dL/dh_T: the gradient was not carried back through W_hh from "
             "h_t to h_{t-1}.",
             keys=("W_xh", "W_hh", "b_h"), no_recurrence=True)


@q.case("tanh's derivative at step t uses h_t",
        hint="h_t = tanh(z_t), so dh_t/dz_t = 1 - h_t^2 with the output of THIS step, "
             "not of the step before (an index off by one).")
def _(rnn_last_step_bptt):
    _mistake(rnn_last_step_bptt, "use 1 - h_{t-1}^2 for tanh's derivative at step t, "
             "an index off by one.", keys=("W_xh", "W_hh", "b_h", "h0"),
             deriv_prev=True)


@q.case("the shared weights add up every step's contribution",
        hint="W_xh, W_hh and b_h are used at every step: their gradients are SUMS over "
             "the T steps (+= in the loop), not the value of one step.")
def _(rnn_last_step_bptt):
    _mistake(rnn_last_step_bptt, "hold one step's contribution (the first step, the "
             "last one the backward loop visits) instead of the sum over the steps.",
             keys=("W_xh", "W_hh", "b_h"), first_step_only=True)


@q.case("W_hh's gradient pairs dz_t with h_{t-1}, not transposed",
        hint="W_hh multiplies h_{t-1} at step t: its gradient sums dz_t^T h_{t-1}, of "
             "W_hh's shape (H, H) with rows for the NEW state. A square matrix never "
             "warns you that it is transposed or paired with the wrong step.")
def _(rnn_last_step_bptt):
    X, y, h0, params = _inputs(4, 3, 6, 4, 5, 3)
    _, grads = _answer(rnn_last_step_bptt, X, y, h0, params)
    _, ref = reference_rnn_last_step_bptt(X, y, h0, params)
    if _matches(grads["W_hh"], ref["W_hh"], 1e-6, 1e-10):
        return
    what = _what(X, 5, 3)
    for told, mistake in (("is transposed", dict(transposed_hh=True)),
                          ("pairs dz_t with h_t instead of h_{t-1}",
                           dict(pairs_h_t=True))):
        wrong = mistaken_bptt(X, y, h0, params, **mistake)[1]["W_hh"]
        if _matches(grads["W_hh"], wrong, 1e-6, 1e-10):
            raise CheckFailure(f"{what}: grads['W_hh'] {told}.")
    try:
        expect_close(grads["W_hh"], ref["W_hh"], rtol=1e-6, atol=1e-10,
                     what=f"grads['W_hh'] of {what}")
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=True, call=failure.call) from None


@q.case("the loss and the gradients are means over the batch",
        hint="The loss is the mean of the B examples' cross-entropies, so dL/dlogits "
             "carries a 1/B, and so does every gradient after it.")
def _(rnn_last_step_bptt):
    _mistake(rnn_last_step_bptt, "are B = 3 times too large: the 1/B of the batch mean "
             "is missing.", batch_sum=True)


@q.case("leaves its inputs unchanged", kind="property",
        hint="Build new arrays: X, y, h0 and the parameters belong to the caller.")
def _(rnn_last_step_bptt):
    X, y, h0, params = _inputs(5, 2, 3, 3, 4, 2)
    before = {k: v.copy() for k, v in params.items()}
    call(rnn_last_step_bptt, X, y, h0, params, name="rnn_last_step_bptt")
    for k, v in before.items():
        if not np.array_equal(params[k], v):
            raise CheckFailure(f"rnn_last_step_bptt changed params['{k}'] in place.")
