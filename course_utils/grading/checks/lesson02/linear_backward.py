"""Checks of 02.linear_backward: Backward of a linear layer."""
from __future__ import annotations

import numpy as np

from ....lessons.mlp_numpy import linear_backward as ref_linear_backward
from ...asserts import CheckFailure, call, expect_close, expect_shape
from ...registry import question
from ._common import _basic, _matches, _on_copies, _plain_mismatch


q = question("02.linear_backward", "Backward of a linear layer",
             answers=["linear_backward"], timeout=5)


def _linear_inputs(seed: int, B: int, D_in: int, D_out: int):
    """Seeded (dZ, X, W) for a layer of D_in inputs and D_out outputs, batch B."""
    rng = np.random.default_rng(seed)
    dZ = rng.standard_normal((B, D_out))  # (B, D_out)
    X = rng.standard_normal((B, D_in))  # (B, D_in)
    W = rng.standard_normal((D_in, D_out))  # (D_in, D_out)
    return dZ, X, W


def _linear_call(linear_backward, seed: int, B: int = 5, D_in: int = 3, D_out: int = 4):
    """The learner's (dX, dW, db), the inputs and the reference (dX, dW, db)."""
    dZ, X, W = _linear_inputs(seed, B, D_in, D_out)
    got = _on_copies(linear_backward, dZ, X, W, name="linear_backward")
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        size = f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""
        raise _basic("linear_backward should return a tuple (dX, dW, db); it returned "
                     f"{type(got).__name__}{size}.", problem="type")
    return got, (dZ, X, W), ref_linear_backward(dZ, X, W)


def _sizes(B, D_in, D_out) -> str:
    """The sizes of a case, for messages."""
    return f"B = {B}, D_in = {D_in}, D_out = {D_out}"


@q.case("dX on a batch of 5 (D_in = 3, D_out = 4), against the reference", kind="core",
        hint="dX has the shape of X, (B, D_in): the upstream gradient dZ (B, D_out) "
             "times the transpose of W, (D_out, D_in).")
def _(linear_backward):
    got, _, ref = _linear_call(linear_backward, seed=0, B=5, D_in=3, D_out=4)
    expect_close(got[0], ref[0], what=f"dX ({_sizes(5, 3, 4)})")


@q.case("dW on a batch of 6 (D_in = 2, D_out = 3), against the reference", kind="core",
        hint="dW has the shape of W, (D_in, D_out): the transpose of the layer's "
             "input X times dZ, a sum over the batch.")
def _(linear_backward):
    got, _, ref = _linear_call(linear_backward, seed=1, B=6, D_in=2, D_out=3)
    expect_close(got[1], ref[1], what=f"dW ({_sizes(6, 2, 3)})")


@q.case("db on a batch of 7 (D_in = 4, D_out = 2), against the reference", kind="core",
        hint="db has the shape of b, (D_out,): b is added to every row, so its "
             "gradient is the sum of dZ's rows.")
def _(linear_backward):
    got, _, ref = _linear_call(linear_backward, seed=2, B=7, D_in=4, D_out=2)
    expect_close(got[2], ref[2], what=f"db ({_sizes(7, 4, 2)})")


@q.case("returns (dX, dW, db), each shaped like its variable (X, W, b)",
        kind="property",
        hint="Return the tuple (dX, dW, db): dX is (B, D_in) like X, dW is (D_in, "
             "D_out) like W, db is (D_out,) like b. A missing transpose, a sum over "
             "the wrong axis, keepdims or no sum at all shows in a shape.")
def _(linear_backward):
    (dX, dW, db), _, (rX, rW, rb) = _linear_call(linear_backward, seed=3)
    expect_shape(dX, rX.shape, what=f"dX ({_sizes(5, 3, 4)})")
    expect_shape(dW, rW.shape, what=f"dW ({_sizes(5, 3, 4)})")
    expect_shape(db, rb.shape, what=f"db ({_sizes(5, 3, 4)})")


def _square_call(linear_backward, seed: int = 4):
    """B = D_in = D_out = 4: a missing transpose or a wrong axis keeps the shape."""
    return _linear_call(linear_backward, seed=seed, B=4, D_in=4, D_out=4)


@q.case("dX uses the transpose of W (a square W hides it in the shape)", kind="mistake",
        hint="dX is dZ times the transpose of W, (D_out, D_in): without the transpose "
             "the shapes only fit when W is square, and the values are wrong.")
def _(linear_backward):
    (dX, _, _), (dZ, _, W), (rX, _, _) = _square_call(linear_backward)
    if _matches(dX, rX):
        return
    if _matches(dX, dZ @ W):
        raise CheckFailure("dX (B = D_in = D_out = 4) equals dZ times W itself, not "
                           "times its transpose.")
    _plain_mismatch(dX, rX, f"dX ({_sizes(4, 4, 4)})")


@q.case("dW = X^T dZ, not its transpose (a square W hides it in the shape)",
        kind="mistake",
        hint="dW pairs each input feature (a row of W) with each output (a column): "
             "the transpose of X times dZ, (D_in, B) @ (B, D_out). The other product "
             "is its transpose.")
def _(linear_backward):
    (_, dW, _), (dZ, X, _), (_, rW, _) = _square_call(linear_backward)
    if _matches(dW, rW):
        return
    if _matches(dW, rW.T):
        raise CheckFailure("dW (B = D_in = D_out = 4) is the transpose of the right "
                           "gradient: it has the shape of W only because W is square.")
    _plain_mismatch(dW, rW, f"dW ({_sizes(4, 4, 4)})")


@q.case("dW is not divided by B (the 1/B of the mean is already in dZ)", kind="mistake",
        hint="Do not divide dW (or db) by the batch size: dZ = dL/dZ already carries "
             "the 1/B of the mean loss.")
def _(linear_backward):
    (_, dW, _), _, (_, rW, _) = _linear_call(linear_backward, seed=5)
    if _matches(dW, rW):
        return
    if _matches(dW, rW / 5):
        raise CheckFailure("dW is the right gradient divided by B = 5: it is 5 times "
                           "too small.")
    _plain_mismatch(dW, rW, f"dW ({_sizes(5, 3, 4)})")


@q.case("db is summed over the batch axis (axis 0), not over the outputs",
        kind="mistake",
        hint="b is shared by the B rows of the batch: sum dZ over the batch axis, "
             "axis 0, which leaves one number per output.")
def _(linear_backward):
    (_, _, db), (dZ, _, _), (_, _, rb) = _square_call(linear_backward)
    if _matches(db, rb):
        return
    if _matches(db, dZ.sum(axis=1)):
        raise CheckFailure("db (B = D_out = 4) holds the sums of dZ's rows (one per "
                           "example), not the sums of its columns (one per output).")
    _plain_mismatch(db, rb, f"db ({_sizes(4, 4, 4)})")


@q.case("db is the batch sum, not the mean", kind="mistake",
        hint="Sum over the batch, do not average: the 1/B of the mean loss is already "
             "inside dZ.")
def _(linear_backward):
    (_, _, db), (dZ, _, _), (_, _, rb) = _linear_call(linear_backward, seed=6)
    if _matches(db, rb):
        return
    if _matches(db, dZ.mean(axis=0)):
        raise CheckFailure("db is the mean of dZ's rows, B = 5 times too small.")
    _plain_mismatch(db, rb, f"db ({_sizes(5, 3, 4)})")


@q.case("leaves dZ, X and W unchanged", kind="property",
        hint="Build new arrays; do not write into dZ, X or W (no in-place `-=`, `*=` "
             "on them).")
def _(linear_backward):
    dZ, X, W = _linear_inputs(7, 5, 3, 4)
    call(linear_backward, dZ, X, W, name="linear_backward")  # fails if an input changed
