"""Trivial answers: stand-ins that compute nothing, built from a real answer, that must score 0.

A question gives credit only for an answer that works (``results.QuestionResult.score``). This
module makes the answers a learner could hand in without doing the work, for any registered
question, so a test can assert that each of them earns nothing, in ``check`` and in ``course
grade``::

    variants = trivial_variants(real_answer)   # {"returns None": ..., "zeros of the shape": ...}

For a function: return None (a body of ``pass``), raise, return the first input unchanged,
return zeros / ones / a constant of the shape the real answer returns (the real answer is called
on deep copies of the inputs to learn that shape, so the stand-in changes nothing). For a class:
None, a class that does nothing, a class whose constructor raises, and for a ``torch.nn.Module``
a module whose forward returns zeros of the real output's shape. For a value (``lr = ...``):
None, 0, 1, a constant, and the right number written as a string.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any, Callable

import numpy as np

CONSTANT = 0.5  # the constant of "a constant": not 0 or 1, which have variants of their own
INT_CONSTANT = 2


class _NotApplicable(Exception):
    """This variant cannot be built for this output (it holds something other than numbers)."""


def _fill(value: Any, how: str) -> Any:
    """``value`` with every number replaced by 0, 1 or the constant; raises _NotApplicable for
    anything that is not a number, an array, a tensor or a tuple/list/dict of those."""
    fill = {"zeros": 0.0, "ones": 1.0, "constant": CONSTANT}[how]
    if value is None or isinstance(value, (bool, np.bool_)):
        raise _NotApplicable()
    if isinstance(value, numbers.Integral):
        return type(value)({"zeros": 0, "ones": 1, "constant": INT_CONSTANT}[how])
    if isinstance(value, numbers.Real):
        return type(value)(fill)
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.number):
            raise _NotApplicable()
        return np.full_like(value, fill if np.issubdtype(value.dtype, np.floating) else int(fill * 2))
    mod = type(value).__module__
    if mod.startswith("torch") and hasattr(value, "detach"):
        return value.detach().clone().fill_(fill)
    if mod.startswith("tensorflow") and hasattr(value, "numpy"):
        import tensorflow as tf

        return tf.fill(tf.shape(value), tf.cast(fill, value.dtype))
    if isinstance(value, (tuple, list)):
        items = [_fill(v, how) for v in value]
        return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
    if isinstance(value, dict):
        return {k: _fill(v, how) for k, v in value.items()}
    raise _NotApplicable()


def _shaped(real: Callable, how: str) -> Callable:
    """A function that returns ``how``-filled copies of what ``real`` returns, changing nothing."""

    def answer(*args, **kwargs):
        try:
            args_copy, kwargs_copy = copy.deepcopy((args, kwargs))
        except Exception:
            args_copy, kwargs_copy = args, kwargs
        return _fill(real(*args_copy, **kwargs_copy), how)

    answer.__name__ = getattr(real, "__name__", "answer")
    return answer


def _function_variants(real: Callable) -> dict[str, Any]:
    name = getattr(real, "__name__", "answer")

    def returns_none(*args, **kwargs):
        pass

    def raises(*args, **kwargs):
        raise RuntimeError("a trivial answer that always raises")

    def first_input(*args, **kwargs):
        return args[0] if args else next(iter(kwargs.values()), None)

    variants = {"None": None, "returns None (pass)": returns_none, "raises": raises, "returns its first input": first_input}
    for how, label in (("zeros", "zeros of the right shape"), ("ones", "ones of the right shape"),
                       ("constant", "a constant of the right shape")):
        variants[label] = _shaped(real, how)
    for fn in variants.values():
        if fn is not None:
            fn.__name__ = name
    return variants


def _class_variants(real: type) -> dict[str, Any]:
    variants: dict[str, Any] = {"None": None, "an empty class": type(real.__name__, (), {})}

    def raising_init(self, *args, **kwargs):
        raise RuntimeError("a trivial class whose constructor raises")

    variants["a class whose constructor raises"] = type(real.__name__, (real,), {"__init__": raising_init})
    try:
        import torch

        if issubclass(real, torch.nn.Module):
            real_forward = real.forward

            def forward(self, *args, **kwargs):
                with torch.no_grad():
                    out = real_forward(self, *copy.deepcopy(args), **copy.deepcopy(kwargs))
                return _fill(out, "zeros")

            variants["a module whose forward returns zeros"] = type(real.__name__, (real,), {"forward": forward})
    except ImportError:  # pragma: no cover
        pass
    return variants


def _value_variants(real: Any) -> dict[str, Any]:
    variants: dict[str, Any] = {"None": None}
    if isinstance(real, numbers.Real) and not isinstance(real, bool):
        constant = CONSTANT if real != CONSTANT else CONSTANT / 2  # never the right answer itself
        variants.update({"0": 0.0, "1": 1.0, "a constant": constant, "the number as a string": str(real)})
        variants = {k: v for k, v in variants.items() if not (isinstance(v, float) and v == real)}
    return variants


def trivial_variants(real: Any) -> dict[str, Any]:
    """Every trivial stand-in for the real answer ``real``, by name (see the module docstring)."""
    if isinstance(real, type):
        return _class_variants(real)
    if callable(real):
        return _function_variants(real)
    return _value_variants(real)


def variants_for(question, namespace: dict) -> dict[str, dict[str, Any]]:
    """{variant name: {answer name: stand-in}} for ``question``, from the real answers in ``namespace``.

    A question with several answers gets each variant for all of them at once (None where one of
    its answers has no such variant).
    """
    per_answer = {name: trivial_variants(namespace[name]) for name in question.answers}
    names = sorted({v for variants in per_answer.values() for v in variants})
    return {v: {name: per_answer[name].get(v) for name in question.answers} for v in names}


def check_every_variant(lesson: str, namespace: dict | None = None) -> list[dict]:
    """Run ``check`` on every trivial variant of every question of ``lesson`` (the real answers
    are taken from ``namespace``, default the kernel's globals); one row per question and variant."""
    import sys

    from .check import check
    from .registry import questions_for_lesson

    namespace = vars(sys.modules["__main__"]) if namespace is None else namespace
    rows = []
    for q in questions_for_lesson(lesson):
        for variant, answers in variants_for(q, namespace).items():
            r = check(q.qid, **answers)
            rows.append({"id": q.qid, "variant": variant, "score": r.score, "status": r.status,
                         "first_problem": r.first_problem(), "text": str(r)})
    return rows


_REAL = "_course_real_answers"


def rebind(lesson: str, variant: str, namespace: dict | None = None) -> list[str]:
    """Put ``variant`` in place of the answers of every question of ``lesson`` that has it (the
    real answers are kept in the namespace, for ``restore``); returns the ids of those questions."""
    import sys

    from .registry import questions_for_lesson

    namespace = vars(sys.modules["__main__"]) if namespace is None else namespace
    real = namespace.setdefault(_REAL, {})
    affected = []
    for q in questions_for_lesson(lesson):
        source = {**namespace, **real}
        variants = variants_for(q, source)
        if variant in variants:
            for name, stand_in in variants[variant].items():
                real.setdefault(name, namespace[name])
                namespace[name] = stand_in
            affected.append(q.qid)
    return affected


def restore(namespace: dict | None = None) -> None:
    """Undo ``rebind``: the real answers go back."""
    import sys

    namespace = vars(sys.modules["__main__"]) if namespace is None else namespace
    namespace.update(namespace.pop(_REAL, {}))
