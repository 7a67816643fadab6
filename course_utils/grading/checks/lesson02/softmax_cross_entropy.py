"""Checks of 02.softmax_cross_entropy: Softmax cross-entropy: stable forward and backward."""
from __future__ import annotations

import math

import numpy as np

from ....lessons.mlp_numpy import softmax as ref_softmax
from ....lessons.mlp_numpy import softmax_cross_entropy as ref_softmax_cross_entropy
from ...asserts import (CheckFailure, _short, as_number, call, expect_close,
                        expect_finite, expect_shape, tolerance_for)
from ...registry import question
from ._common import _basic, _matches, _num, _on_copies, _plain_mismatch


q = question("02.softmax_cross_entropy",
             "Softmax cross-entropy: stable forward and backward",
             answers=["softmax_cross_entropy"], timeout=5)


def _sce_call(softmax_cross_entropy, logits, y):
    """The learner's (loss, dlogits); the loss must be one number (left as returned)."""
    got = _on_copies(softmax_cross_entropy, logits, y, name="softmax_cross_entropy")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise _basic("softmax_cross_entropy should return a tuple (loss, dlogits); it "
                     f"returned {_short(got)}.", problem="type")
    loss, dlogits = got
    as_number(loss, "the loss (the first value returned)")
    return loss, dlogits


def _loss_close(loss, dlogits, expected, what: str, plain: bool = False) -> None:
    """The loss against ``expected``, held to the precision the answer worked in
    (dlogits' dtype: a float32 computation returned as a Python float is not failed for
    float32 rounding)."""
    rtol, atol = tolerance_for(dlogits, 1e-7, 1e-9, expected)
    compare = _plain_mismatch if plain else expect_close
    compare(loss, expected, rtol=rtol, atol=atol, what=what)


def _loss_is(loss, dlogits, expected) -> bool:
    """Is the loss ``expected``, within the precision the answer worked in?"""
    rtol, atol = tolerance_for(dlogits, 1e-7, 1e-9, expected)
    return _matches(loss, expected, rtol=rtol, atol=atol)


_SCE_HINT = ("The loss is the mean over the batch of -log softmax at each example's "
             "label; the gradient is (softmax - onehot(y)) / B. Compare your steps "
             "with the lesson's, one row at a time.")


@q.case("the loss on a batch of 4 examples with 3 classes, against the reference",
        kind="core", hint=_SCE_HINT)
def _(softmax_cross_entropy):
    logits = np.random.default_rng(0).standard_normal((4, 3)) * 2
    y = np.array([0, 2, 1, 2])
    loss, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    _loss_close(loss, dlogits, ref_softmax_cross_entropy(logits, y)[0],
                "loss (B = 4, C = 3)")


@q.case("dlogits on a batch of 6 examples with 5 classes, against the reference",
        kind="core", hint=_SCE_HINT)
def _(softmax_cross_entropy):
    logits = np.random.default_rng(5).standard_normal((6, 5))
    y = np.array([0, 4, 2, 2, 1, 3])
    _, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    expect_close(dlogits, ref_softmax_cross_entropy(logits, y)[1], rtol=1e-7,
                 atol=1e-10, what="dlogits (B = 6, C = 5)")


@q.case("loss and dlogits for one example with 4 classes, against the reference",
        kind="core", hint=_SCE_HINT)
def _(softmax_cross_entropy):
    logits, y = np.array([[2.0, -1.0, 0.5, 0.0]]), np.array([2])
    loss, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    ref_loss, ref_d = ref_softmax_cross_entropy(logits, y)
    _loss_close(loss, dlogits, ref_loss, "loss for logits [2, -1, 0.5, 0] and label 2")
    expect_close(dlogits, ref_d, rtol=1e-7, atol=1e-10,
                 what="dlogits for logits [2, -1, 0.5, 0] and label 2")


@q.case("returns (loss, dlogits): one number and an array shaped like logits",
        kind="property",
        hint="Return the mean loss as one number and dL/dlogits with the shape (B, C) "
             "of logits.")
def _(softmax_cross_entropy):
    logits = np.random.default_rng(1).standard_normal((4, 3))
    _, dlogits = _sce_call(softmax_cross_entropy, logits, np.array([0, 2, 1, 2]))
    expect_shape(dlogits, (4, 3), what="dlogits")


def _wrong_axis_losses(logits, y) -> list[float]:
    """The losses of a softmax normalised over the batch axis, or without keepdims
    (which broadcasts silently when B = C)."""
    rows, losses = np.arange(len(y)), []
    variants = ((0, True, True), (1, True, False), (1, False, False))
    for axis, keep_max, keep_sum in variants:
        with np.errstate(all="ignore"):
            try:
                shifted = logits - logits.max(axis=axis, keepdims=keep_max)
                total = np.exp(shifted).sum(axis=axis, keepdims=keep_sum)
                logp = shifted - np.log(total)
                losses.append(float(-logp[rows, y].mean()))
            except ValueError:
                pass
    return losses


@q.case("softmax normalises each row over the classes (axis=1, keepdims=True)",
        kind="mistake",
        hint="Normalise each row (one example) over its classes: reduce over axis=1 "
             "with keepdims=True, not over the batch axis 0.")
def _(softmax_cross_entropy):
    rng = np.random.default_rng(1)
    for B in (1, 3):  # B = C = 3: a wrong axis or no keepdims broadcasts silently
        logits, y = rng.standard_normal((B, 3)) * 2, rng.integers(0, 3, B)
        loss, dlogits = _sce_call(softmax_cross_entropy, logits, y)
        ref = ref_softmax_cross_entropy(logits, y)[0]
        if _loss_is(loss, dlogits, ref) or _loss_is(loss, dlogits, ref * B):
            continue  # right, or the sum over the batch (the next case's mistake)
        if any(_loss_is(loss, dlogits, w) for w in _wrong_axis_losses(logits, y)):
            raise CheckFailure(f"for a batch of {B} examples with 3 classes the loss "
                               f"is {_num(as_number(loss))}, expected {_num(ref)}: it "
                               "is the loss of a softmax normalised over the wrong "
                               "axis (or without keepdims, which broadcasts against "
                               "the wrong axis).")
        _loss_close(loss, dlogits, ref, f"loss for a batch of {B} (3 classes)",
                    plain=True)


@q.case("the loss is the mean over the batch, not the sum", kind="mistake",
        hint="Average the per-example losses over the batch instead of adding them.")
def _(softmax_cross_entropy):
    logits, y = np.random.default_rng(2).standard_normal((4, 5)), np.array([0, 4, 2, 2])
    loss, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    ref = ref_softmax_cross_entropy(logits, y)[0]
    if _loss_is(loss, dlogits, ref):
        return
    if _loss_is(loss, dlogits, 4 * ref):
        raise CheckFailure(f"the loss for a batch of 4 is {_num(as_number(loss))}, 4 "
                           f"times the mean {_num(ref)}: it is the sum over the batch.")
    _loss_close(loss, dlogits, ref, "loss (B = 4, C = 5)", plain=True)


def _stable_case(softmax_cross_entropy, logits, y, what: str, message: str) -> None:
    """Finite and right for extreme logits; NaN or infinity is the case's mistake."""
    with np.errstate(all="ignore"):
        loss, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    ref_loss, ref_d = ref_softmax_cross_entropy(logits, y)
    finite = math.isfinite(as_number(loss))
    try:
        expect_finite(dlogits, what="dlogits")
    except CheckFailure:
        finite = False
    except Exception:  # not an array: the plain comparison below says so
        pass
    if not finite:
        raise CheckFailure(f"for logits {what} {message}")
    _loss_close(loss, dlogits, ref_loss, f"loss for logits {what}", plain=True)
    _plain_mismatch(dlogits, ref_d, f"dlogits for logits {what}", rtol=1e-7, atol=1e-10)


@q.case("large logits (1000) give a finite loss and gradient: subtract the row max",
        kind="mistake",
        hint="exp(1000) overflows to inf and inf/inf is NaN: subtract each row's max "
             "before exp (softmax does not change when a constant is added to a row).")
def _(softmax_cross_entropy):
    _stable_case(softmax_cross_entropy,
                 np.array([[1000.0, 999.0, 998.0], [0.0, 1000.0, 1001.0]]),
                 np.array([1, 2]), "[[1000, 999, 998], [0, 1000, 1001]]",
                 "the loss or dlogits holds NaN or infinity: exp of a large logit "
                 "overflowed.")


@q.case("each row is shifted by its own maximum (rows 2000 apart stay finite)",
        kind="mistake",
        hint="Subtract each row's own maximum, one number per row, not one number for "
             "the whole batch: a row far below the batch maximum underflows to "
             "exp(...) = 0 and log(0) = -inf.")
def _(softmax_cross_entropy):
    _stable_case(softmax_cross_entropy,
                 np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1003.0]]),
                 np.array([0, 1]),
                 "[[1000, 999, 998], [-1000, -1001, -1003]]",
                 "the loss or dlogits holds NaN or infinity: the second row "
                 "underflowed to 0.")


@q.case("a hopeless prediction gives its true loss (log-softmax, not log(softmax))",
        kind="mistake",
        hint="Compute the log-probabilities directly, as the shifted logits minus the "
             "log of the row's sum of exponentials: log(softmax) takes log(0) = -inf "
             "when a probability underflows to 0.")
def _(softmax_cross_entropy):
    _stable_case(softmax_cross_entropy, np.array([[800.0, 0.0, -800.0]]), np.array([2]),
                 "[800, 0, -800] and label 2",
                 "the loss is not finite (expected 1600): the probability of class 2, "
                 "exp(-1600), underflows to 0 and its log is -inf.")


def _sce_grad_case(softmax_cross_entropy, logits, y, mistaken, message: str,
                   what: str) -> None:
    """dlogits: pass on the reference; fail with ``message`` on ``mistaken``; else
    plainly."""
    _, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    expected = ref_softmax_cross_entropy(logits, y)[1]
    if _matches(dlogits, expected, atol=1e-10):
        return
    if _matches(dlogits, mistaken, atol=1e-10):
        raise CheckFailure(message)
    _plain_mismatch(dlogits, expected, what, atol=1e-10)


@q.case("gradient: softmax(z) - onehot(y), not onehot - softmax", kind="mistake",
        hint="dL/dz is the probabilities minus the one-hot of the label (the "
             "probabilities, minus 1 at the true class), not the other way round.")
def _(softmax_cross_entropy):
    logits, y = np.array([[2.0, -1.0, 0.5, 0.0]]), np.array([2])
    flipped = -ref_softmax_cross_entropy(logits, y)[1]
    _sce_grad_case(softmax_cross_entropy, logits, y, flipped,
                   "dlogits has the opposite sign: it is onehot(y) - softmax(z), "
                   "which points up the loss.", "dlogits (B = 1)")


@q.case("gradient for a batch carries the 1/B of the mean", kind="mistake",
        hint="Divide by the batch size B: the loss is a mean over B examples, so its "
             "gradient carries a 1/B.")
def _(softmax_cross_entropy):
    # Every label the same: this case isolates the 1/B from how the one-hot is indexed.
    logits, y = np.random.default_rng(3).standard_normal((6, 4)), np.full(6, 2)
    too_large = ref_softmax_cross_entropy(logits, y)[1] * 6
    _sce_grad_case(softmax_cross_entropy, logits, y, too_large,
                   "dlogits for a batch of 6 is 6 times too large: the 1/B of the "
                   "mean is missing.",
                   "dlogits (B = 6, every label 2)")


@q.case("the 1 is subtracted once per row, at its own label (i, y_i)", kind="mistake",
        hint="Subtract the one-hot at the pairs (row i, column y_i), indexing rows "
             "and labels together; indexing the columns y alone subtracts 1 in every "
             "row at every label of the batch.")
def _(softmax_cross_entropy):
    logits = np.random.default_rng(5).standard_normal((6, 4))
    y = np.array([0, 1, 2, 3, 3, 0])
    _, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    expected = ref_softmax_cross_entropy(logits, y)[1]
    if _matches(dlogits, expected, atol=1e-10):
        return
    by_column = ref_softmax(logits)  # (B, C)
    by_column[:, y] -= 1  # every row, at every label of the batch
    by_column /= 6
    if _matches(dlogits, by_column, atol=1e-10):
        sums = ", ".join(_num(s) for s in by_column.sum(axis=1))
        raise CheckFailure("the rows of dlogits should each sum to 0 (probabilities "
                           f"that sum to 1, minus one 1), but they sum to [{sums}] for "
                           f"labels y = {y.tolist()}: 1 was subtracted in every row at "
                           "every label.")
    _plain_mismatch(dlogits, expected, "dlogits (B = 6, mixed labels)", atol=1e-10)


@q.case("does not modify logits in place", kind="property",
        hint="Subtracting the row max in place changes the caller's array: build a "
             "new shifted array instead.")
def _(softmax_cross_entropy):
    logits = np.random.default_rng(4).standard_normal((3, 4)) * 5
    call(softmax_cross_entropy, logits, np.array([3, 0, 1]),
         name="softmax_cross_entropy")
