"""Checks of 02.batchnorm_backward: Backward of batch normalization (training mode)."""
from __future__ import annotations

import numpy as np
import torch

from ...asserts import call, expect_close
from ...registry import question
from ._common import _on_copies, _parts, _verdict


q = question("02.batchnorm_backward", "Backward of batch normalization (training mode)",
             answers=["batchnorm_backward"], timeout=5)

_NAMES = ("dX", "dgamma", "dbeta")


def _inputs(seed: int, B: int, D: int):
    """Seeded (dY, X, gamma, beta), float64; X has a mean and a scale per feature."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, D)) * rng.uniform(0.5, 3.0, D) + rng.normal(0, 2, D)
    gamma, beta = rng.uniform(0.5, 2.0, D), rng.standard_normal(D)  # (D,), (D,)
    dY = rng.standard_normal((B, D))  # (B, D)
    return dY, X, gamma, beta


def _oracle(dY, X, gamma, beta, eps, unbiased=False):
    """(dX, dgamma, dbeta) by torch.autograd through training-mode batch norm.
    ``unbiased``: the mistake of normalising with the (B - 1) variance."""
    Xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (X, gamma, beta))
    if unbiased:
        mean, var = Xt.mean(0), Xt.var(0, unbiased=True)
        Y = (Xt - mean) / torch.sqrt(var + eps) * gt + bt
    else:
        Y = torch.nn.functional.batch_norm(Xt, None, None, gt, bt, training=True,
                                           eps=eps)
    Y.backward(torch.tensor(dY))
    return tuple(t.grad.numpy() for t in (Xt, gt, bt))


def _pieces(dY, X, gamma, eps):
    mean, var = X.mean(0), X.var(0)
    std = np.sqrt(var + eps)  # (D,)
    xhat = (X - mean) / std  # (B, D)
    dxhat = dY * gamma  # (B, D)
    return std, xhat, dxhat


def _answer(fn, dY, X, gamma, eps):
    got = _on_copies(fn, dY, X, gamma, eps, name="batchnorm_backward")
    return _parts(got, _NAMES, "batchnorm_backward")


_HINT = ("The batch mean and variance are functions of every row of X, so dX has three "
         "paths: through x_hat directly, through the mean and through the variance. "
         "Draw the graph, backpropagate through each node, and compare with "
         "torch.autograd on a small batch.")


def _core(fn, seed, B, D, eps):
    dY, X, gamma, beta = _inputs(seed, B, D)
    got = _answer(fn, dY, X, gamma, eps)
    for name, g, e in zip(_NAMES, got, _oracle(dY, X, gamma, beta, eps)):
        expect_close(g, e, rtol=1e-6, atol=1e-9,
                     what=f"{name} for B={B}, D={D}, eps={eps}")


@q.case("B=8, D=3, eps=1e-5, against torch.autograd", kind="core", hint=_HINT)
def _(batchnorm_backward):
    _core(batchnorm_backward, 0, 8, 3, 1e-5)


@q.case("B=32, D=6, eps=1e-3, against torch.autograd", kind="core", hint=_HINT)
def _(batchnorm_backward):
    _core(batchnorm_backward, 1, 32, 6, 1e-3)


@q.case("B=3, D=5, eps=0.1, against torch.autograd", kind="core", hint=_HINT)
def _(batchnorm_backward):
    _core(batchnorm_backward, 2, 3, 5, 0.1)


def _mistake(fn, index, wrong_of, message, seed=3, B=10, D=4, eps=1e-5):
    dY, X, gamma, beta = _inputs(seed, B, D)
    got = _answer(fn, dY, X, gamma, eps)
    expected = _oracle(dY, X, gamma, beta, eps)
    _verdict(got[index], expected[index], wrong_of(dY, X, gamma, beta, eps), message,
             _NAMES[index], rtol=1e-6, atol=1e-9)


@q.case("dX: the mean and the variance depend on X too", kind="mistake",
        hint="Treating the batch statistics as constants leaves out two of the three "
             "paths from X to the output.")
def _(batchnorm_backward):
    def wrong(dY, X, gamma, beta, eps):
        std, _, dxhat = _pieces(dY, X, gamma, eps)
        return dxhat / std
    _mistake(batchnorm_backward, 0, wrong, "dX is dY * gamma / sqrt(var + eps): the "
             "mean and the variance were treated as constants.")


@q.case("dX: the path through the variance is included", kind="mistake",
        hint="The variance is a function of X as well: its path adds a term "
             "proportional to x_hat.")
def _(batchnorm_backward):
    def wrong(dY, X, gamma, beta, eps):
        std, _, dxhat = _pieces(dY, X, gamma, eps)
        return (dxhat - dxhat.mean(0)) / std
    _mistake(batchnorm_backward, 0, wrong, "dX has the mean's path but not the "
             "variance's.")


@q.case("dX: the path through the mean is included", kind="mistake",
        hint="The mean is a function of X as well: its path subtracts the batch mean "
             "of the upstream gradient.")
def _(batchnorm_backward):
    def wrong(dY, X, gamma, beta, eps):
        std, xhat, dxhat = _pieces(dY, X, gamma, eps)
        return (dxhat - xhat * (dxhat * xhat).mean(0)) / std
    _mistake(batchnorm_backward, 0, wrong, "dX has the variance's path but not the "
             "mean's.")


@q.case("training mode normalises with the biased variance (divide by B)",
        kind="mistake",
        hint="Batch norm normalises with the variance of the batch, a mean over B "
             "(np.var's default), not the unbiased estimate over B - 1.")
def _(batchnorm_backward):
    _mistake(batchnorm_backward, 0,
             lambda dY, X, g, b, eps: _oracle(dY, X, g, b, eps, unbiased=True)[0],
             "dX is the gradient of batch norm with the unbiased (B - 1) variance.",
             B=5)


@q.case("dgamma sums dY times x_hat over the batch", kind="mistake",
        hint="gamma multiplies x_hat: its gradient weights each row's dY by that "
             "row's x_hat.")
def _(batchnorm_backward):
    _mistake(batchnorm_backward, 1, lambda dY, X, g, b, eps: dY.sum(0),
             "dgamma is the batch sum of dY, without x_hat.")


@q.case("dbeta sums over the batch (not the mean)", kind="mistake",
        hint="beta is added to every row: its gradient collects every row's dY.")
def _(batchnorm_backward):
    _mistake(batchnorm_backward, 2, lambda dY, X, g, b, eps: dY.mean(0),
             "dbeta is the batch mean of dY; it is the batch sum.")


@q.case("leaves its inputs unchanged", kind="property",
        hint="Build new arrays: dY, X and gamma belong to the caller.")
def _(batchnorm_backward):
    dY, X, gamma, _ = _inputs(4, 6, 3)
    call(batchnorm_backward, dY, X, gamma, 1e-5, name="batchnorm_backward")
