"""Checks of 06.accuracy_f1: Accuracy and F1 from a classifier's logits."""
from __future__ import annotations

import math

import torch

from ...asserts import CheckFailure, _short, as_number, call
from ...registry import question
from ._common import _copies, _num, _parts


q = question("06.accuracy_f1", "Accuracy and F1 from a classifier's logits",
             answers=["accuracy_f1"], timeout=5)


def _inputs(seed: int, N: int, positive: float = 0.5, skill: float = 1.0,
            bias: float = 0.0):
    """Seeded logits (N, 2) float32 of a classifier that is right more often than not
    (``skill``), and labels (N,) int64 with about ``positive`` of them 1. ``bias`` is
    added to the negative class's logit, and both logits are shifted by a common
    offset (which changes no prediction)."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(N, generator=g) < positive).long()  # (N,)
    signal = (2.0 * labels - 1.0) * skill + torch.randn(N, generator=g)  # (N,)
    offset = torch.randn(N, generator=g) * 2.0  # the softmax ignores a common shift
    logits = torch.stack([-signal / 2 + bias, signal / 2], dim=1) + offset[:, None]
    return logits.float(), labels  # (N, 2), (N,)


def _counts(pred, labels, positive: int = 1) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) for class ``positive``."""
    p, y = pred == positive, labels == positive
    return int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum())


def _f1(pred, labels, positive: int = 1) -> float:
    """F1 of class ``positive``: 2 TP / (2 TP + FP + FN), 0 when it is 0 / 0."""
    tp, fp, fn = _counts(pred, labels, positive)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def reference_accuracy_f1(logits, labels) -> tuple[float, float]:
    """(accuracy, F1 of class 1) of the argmax predictions, as scikit-learn's
    accuracy_score and f1_score (zero_division=0) compute them."""
    pred = logits.argmax(dim=1)  # (N,)
    return float((pred == labels).double().mean()), _f1(pred, labels, 1)


def _what(logits, labels) -> str:
    return (f"accuracy_f1(logits {tuple(logits.shape)}, labels) with "
            f"{int(labels.sum())} positive labels of {len(labels)}")


def _answer(fn, logits, labels) -> tuple[float, float]:
    got = call(fn, *_copies(logits, labels), check_mutation=False, name="accuracy_f1")
    acc, f1 = _parts(got, ("accuracy", "f1"), "accuracy_f1")
    what = _what(logits, labels)
    return as_number(acc, f"the accuracy of {what}"), as_number(f1, f"the F1 of {what}")


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _expect(fn, logits, labels) -> None:
    acc, f1 = _answer(fn, logits, labels)
    ref_acc, ref_f1 = reference_accuracy_f1(logits, labels)
    what = _what(logits, labels)
    for name, got, ref in (("accuracy", acc, ref_acc), ("F1", f1, ref_f1)):
        if not _close(got, ref):
            raise CheckFailure(f"the {name} of {what} is {_num(got)}, expected "
                               f"{_num(ref)}.")


_HINT = ("The prediction is the class with the larger logit; the accuracy is the "
         "fraction of predictions equal to the labels, and F1 is the harmonic mean of "
         "the precision and the recall of the POSITIVE class (1).")


@q.case("40 sentences, a classifier right about 3 times in 4", kind="core", hint=_HINT)
def _(accuracy_f1):
    _expect(accuracy_f1, *_inputs(0, 40, skill=1.2))


@q.case("61 sentences, few positive (about 1 in 4)", kind="core", hint=_HINT)
def _(accuracy_f1):
    _expect(accuracy_f1, *_inputs(1, 61, positive=0.25, skill=1.5))


@q.case("300 sentences, about as balanced as SST-2's dev set", kind="core", hint=_HINT)
def _(accuracy_f1):
    _expect(accuracy_f1, *_inputs(2, 300, positive=0.51, skill=2.0))


def _mistake(fn, wrong, message, logits, labels) -> None:
    """Right: pass. ``wrong(logits, labels)`` = (acc, f1) of the mistake: fail with
    ``message``. Anything else: a plain mismatch."""
    acc, f1 = _answer(fn, logits, labels)
    ref = reference_accuracy_f1(logits, labels)
    if _close(acc, ref[0]) and _close(f1, ref[1]):
        return
    w_acc, w_f1 = wrong(logits, labels)
    if _close(acc, w_acc) and _close(f1, w_f1):
        raise CheckFailure(f"{_what(logits, labels)} returned ({_num(acc)}, "
                           f"{_num(f1)}), expected ({_num(ref[0])}, {_num(ref[1])}): "
                           f"{message}")
    _expect_plain(acc, f1, ref, _what(logits, labels))


def _expect_plain(acc, f1, ref, what) -> None:
    for name, got, expected in (("accuracy", acc, ref[0]), ("F1", f1, ref[1])):
        if not _close(got, expected):
            raise CheckFailure(f"the {name} of {what} is {_num(got)}, expected "
                               f"{_num(expected)}.", basic=True)


@q.case("the F1 of the positive class (1)",
        hint="F1 is not symmetric in the two classes: it is computed for one class, "
             "here the positive one (label 1, scikit-learn's pos_label=1), from the "
             "predictions and labels equal to 1.")
def _(accuracy_f1):
    def negative_class(logits, labels):
        pred = logits.argmax(1)
        return reference_accuracy_f1(logits, labels)[0], _f1(pred, labels, 0)

    _mistake(accuracy_f1, negative_class, "the F1 is the negative class's (label 0).",
             *_inputs(6, 45, positive=0.3, skill=1.0))


@q.case("the F1 of one class, not the mean of both (macro)",
        hint="Macro F1 averages the F1 of every class; the question asks for the F1 of "
             "the positive class alone (scikit-learn's average='binary').")
def _(accuracy_f1):
    def macro(logits, labels):
        pred = logits.argmax(1)
        acc = reference_accuracy_f1(logits, labels)[0]
        return acc, (_f1(pred, labels, 0) + _f1(pred, labels, 1)) / 2

    _mistake(accuracy_f1, macro, "the F1 is the mean of the two classes' F1 (macro).",
             *_inputs(4, 50, positive=0.35, skill=1.0))


@q.case("predicts from BOTH logits, not from the sign of one",
        hint="With two logits per sentence the prediction compares them: the positive "
             "logit alone above 0 (or its sigmoid above 0.5) is the rule of a model "
             "with ONE logit, and disagrees whenever the negative logit is not 0.")
def _(accuracy_f1):
    def one_logit(logits, labels):
        pred = (logits[:, 1] > 0).long()
        return float((pred == labels).double().mean()), _f1(pred, labels, 1)

    _mistake(accuracy_f1, one_logit, "the predictions are the sign of the positive "
             "logit alone.", *_inputs(5, 40, skill=1.0))


@q.case("accuracy is a fraction, not a percent",
        hint="Return both numbers between 0 and 1, as scikit-learn does; format them "
             "as percents only when you print them.")
def _(accuracy_f1):
    def percent(logits, labels):
        acc, f1 = reference_accuracy_f1(logits, labels)
        return 100 * acc, 100 * f1

    def acc_percent(logits, labels):
        acc, f1 = reference_accuracy_f1(logits, labels)
        return 100 * acc, f1

    logits, labels = _inputs(6, 30, skill=1.0)
    acc, f1 = _answer(accuracy_f1, logits, labels)
    for wrong in (percent, acc_percent):
        w_acc, w_f1 = wrong(logits, labels)
        if _close(acc, w_acc) and _close(f1, w_f1):
            raise CheckFailure(f"{_what(logits, labels)} returned an accuracy of "
                               f"{_num(acc)}: a percent, not a fraction.")
    _expect_plain(acc, f1, reference_accuracy_f1(logits, labels),
                  _what(logits, labels))


@q.case("a model that predicts no positive: F1 is 0, not NaN",
        hint="When nothing is predicted positive the precision is 0 / 0: scikit-learn "
             "(zero_division=0) and the formula in counts, 2 TP / (2 TP + FP + FN), "
             "both give an F1 of 0.")
def _(accuracy_f1):
    logits, labels = _inputs(7, 30, positive=0.4, skill=1.0, bias=8.0)  # all negative
    acc, f1 = _answer(accuracy_f1, logits, labels)
    if not math.isfinite(f1):
        raise CheckFailure(f"{_what(logits, labels)} for a model that predicts every "
                           f"sentence negative returned an F1 of {f1}.")
    _expect_plain(acc, f1, reference_accuracy_f1(logits, labels),
                  _what(logits, labels) + " (no positive prediction)")


@q.case("returns two Python floats; inputs left unchanged", kind="property",
        hint="Return the accuracy and the F1 as two Python floats (.item(), float()), "
             "and leave logits and labels as they were.")
def _(accuracy_f1):
    logits, labels = _inputs(8, 20, skill=1.0)
    got = call(accuracy_f1, logits, labels, name="accuracy_f1")
    parts = _parts(got, ("accuracy", "f1"), "accuracy_f1")
    for name, value in zip(("accuracy", "f1"), parts):
        if not isinstance(value, float):
            as_number(value, f"the {name}")  # None, a string: a basic failure
            raise CheckFailure(f"the {name} returned by accuracy_f1 is a "
                               f"{type(value).__name__} ({_short(value)}); expected a "
                               "Python float.")
