"""Checks of 02.tanh_layer_backward: Backward of a tanh layer in matrix form."""
from __future__ import annotations

import numpy as np
import torch

from ...asserts import call, expect_close
from ...registry import question
from ._common import _on_copies, _parts, _verdict


q = question("02.tanh_layer_backward", "Backward of a tanh layer in matrix form",
             answers=["tanh_layer_backward"], timeout=5)

_NAMES = ("dX", "dW", "db")


def _inputs(seed: int, B: int, D_in: int, D_out: int):
    """Seeded (dA, X, W, A) of a layer A = tanh(X W + b), float64."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, D_in))  # (B, D_in)
    W = rng.standard_normal((D_in, D_out)) / np.sqrt(D_in)  # (D_in, D_out)
    b = rng.standard_normal(D_out) * 0.5  # (D_out,)
    A = np.tanh(X @ W + b)  # (B, D_out)
    dA = rng.standard_normal((B, D_out))  # (B, D_out)
    return dA, X, W, b, A


def _oracle(dA, X, W, b):
    """(dX, dW, db) by torch.autograd: backward of tanh(X W + b) with upstream dA."""
    Xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
    torch.tanh(Xt @ Wt + bt).backward(torch.tensor(dA))
    return tuple(t.grad.numpy() for t in (Xt, Wt, bt))


def _linear(dZ, X, W):
    """The linear part's backward from a given dZ (for the mistakes)."""
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)


def _answer(tanh_layer_backward, dA, X, W, A):
    got = _on_copies(tanh_layer_backward, dA, X, W, A, name="tanh_layer_backward")
    return _parts(got, _NAMES, "tanh_layer_backward")


_HINT = ("Go back through the layer in two steps: first through tanh (its derivative, "
         "written with the output A, times dA), then through the linear map as in the "
         "lesson's linear_backward. Each gradient has the shape of its variable.")


def _core(tanh_layer_backward, seed, B, D_in, D_out):
    dA, X, W, b, A = _inputs(seed, B, D_in, D_out)
    got = _answer(tanh_layer_backward, dA, X, W, A)
    for name, g, e in zip(_NAMES, got, _oracle(dA, X, W, b)):
        expect_close(g, e, rtol=1e-7, atol=1e-10,
                     what=f"{name} for B={B}, D_in={D_in}, D_out={D_out}")


@q.case("B=5, D_in=4, D_out=3, against torch.autograd", kind="core", hint=_HINT)
def _(tanh_layer_backward):
    _core(tanh_layer_backward, 0, 5, 4, 3)


@q.case("B=16, D_in=10, D_out=7, against torch.autograd", kind="core", hint=_HINT)
def _(tanh_layer_backward):
    _core(tanh_layer_backward, 1, 16, 10, 7)


@q.case("one example, B=1, D_in=6, D_out=2, against torch.autograd", kind="core",
        hint=_HINT)
def _(tanh_layer_backward):
    _core(tanh_layer_backward, 2, 1, 6, 2)


def _mistake(tanh_layer_backward, dZ_wrong, message, which=(0, 1, 2), seed=3,
             shape=(6, 5, 4), dX_wrong=None):
    """Fail with ``message`` on the linear backward of ``dZ_wrong(dA, A)``."""
    dA, X, W, b, A = _inputs(seed, *shape)
    got = _answer(tanh_layer_backward, dA, X, W, A)
    expected = _oracle(dA, X, W, b)
    wrong = _linear(dZ_wrong(dA, A), X, W) if dZ_wrong is not None else None
    for i in which:
        mistaken = wrong[i] if wrong is not None else dX_wrong(dA, A, W)
        _verdict(got[i], expected[i], mistaken, message, f"{_NAMES[i]}",
                 rtol=1e-7, atol=1e-10)


@q.case("the gradient goes through tanh's derivative", kind="mistake",
        hint="tanh is between the linear map and the output: dA must be multiplied by "
             "tanh's local derivative before the linear layer's backward.")
def _(tanh_layer_backward):
    _mistake(tanh_layer_backward, lambda dA, A: dA,
             "the gradients are those of the linear layer alone, as if the output were "
             "Z = XW + b: tanh's derivative is missing.")


@q.case("tanh's derivative is 1 - A^2, not the sigmoid's A(1 - A)", kind="mistake",
        hint="Derive tanh's derivative again: it is not the sigmoid's.")
def _(tanh_layer_backward):
    _mistake(tanh_layer_backward, lambda dA, A: dA * A * (1 - A),
             "the gradients use A(1 - A), the derivative of the sigmoid written with "
             "its output, not the derivative of tanh.")


@q.case("the local derivative is multiplied by dA (chain rule)", kind="mistake",
        hint="The chain rule multiplies the local derivative by the upstream gradient "
             "dA, elementwise.")
def _(tanh_layer_backward):
    _mistake(tanh_layer_backward, lambda dA, A: 1 - A ** 2,
             "the gradients come from tanh's local derivative alone: dA was not "
             "multiplied in.")


@q.case("db sums over the batch (not the mean)", kind="mistake",
        hint="b is added to every row, so its gradient collects every row's "
             "contribution: dA already holds the loss's 1/B.")
def _(tanh_layer_backward):
    _mistake(tanh_layer_backward, None,
             "db is the batch mean of dZ; it is the batch sum.",
             which=(2,), dX_wrong=lambda dA, A, W: (dA * (1 - A ** 2)).mean(axis=0))


@q.case("dX multiplies by W transposed (a square W)", kind="mistake",
        hint="dX has the shape of X, (B, D_in): it comes from dZ (B, D_out) times the "
             "transpose of W (D_out, D_in). With a square W the shapes do not warn "
             "you.")
def _(tanh_layer_backward):
    _mistake(tanh_layer_backward, None, "dX is dZ @ W, not dZ @ W.T.", which=(0,),
             shape=(5, 4, 4), dX_wrong=lambda dA, A, W: (dA * (1 - A ** 2)) @ W)


@q.case("leaves its inputs unchanged", kind="property",
        hint="Build new arrays: dA, X, W and A belong to the caller.")
def _(tanh_layer_backward):
    dA, X, W, _, A = _inputs(4, 4, 3, 3)
    call(tanh_layer_backward, dA, X, W, A, name="tanh_layer_backward")
