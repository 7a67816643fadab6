"""Checks of 02.value_softplus: `softplus`: a stable forward and its local
derivative."""
from __future__ import annotations

import math

from ....lessons.autograd import Value as RefValue
from ...asserts import CheckFailure, _short, expect_close, expect_finite
from ...registry import question
from ._common import (_backprop, _backward_of, _children, _default_backward, _leaf,
                      _matches, _num, _op, _plain_mismatch, _unchanged_grads)


_HINT = ("Check both halves of softplus: the output's data is log(1 + e^a), computed "
         "in a form that cannot overflow, and its _backward adds the local derivative "
         "(differentiate log(1 + e^a) by the chain rule) times out.grad to the input's "
         "grad, with +=.")

q = question("02.value_softplus",
             "`softplus`: a stable forward and its local derivative",
             answers=["Value"], timeout=5)


def _softplus(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x: float) -> float:
    """The reference local derivative, e^x / (1 + e^x), without overflow."""
    return math.exp(x - _softplus(x))


def _sp(Value, a, text: str):
    """a.softplus() with the learner's method (an overflow: this question's mistake)."""
    try:
        return _op(text, lambda: Value.softplus(a), method="softplus")
    except OverflowError:
        raise CheckFailure(f"{text} raised OverflowError: e^a is computed for a "
                           "large a (math.exp overflows above about 709).") from None


def _grad(Value, x, out_grad=1.0, start_grad=0.0):
    """a.grad after out = a.softplus(), out.grad = out_grad, out._backward()."""
    a = _leaf(Value, x)
    a.grad = start_grad
    out = _sp(Value, a, f"Value({x}).softplus()")
    out.grad = out_grad
    _backward_of(out, "out = a.softplus()")
    return a.grad


def _verdict(got, expected, mistaken, message: str, what: str) -> None:
    """Pass on ``expected``; fail with ``message`` on ``mistaken``; else plainly."""
    if _matches(got, expected):
        return
    if _matches(got, mistaken):
        raise CheckFailure(message)
    _plain_mismatch(got, expected, what)


@q.case("Value(0.8).softplus(): the value and the local derivative", kind="core",
        hint=_HINT)
def _(Value):
    a = _leaf(Value, 0.8)
    out = _sp(Value, a, "Value(0.8).softplus()")
    expect_close(out.data, _softplus(0.8), what="Value(0.8).softplus().data")
    _backprop(out, "out = a.softplus()")
    expect_close(a.grad, _sigmoid(0.8),
                 what="a.grad after out = a.softplus() (a = 0.8), backward from out")


def _ref_softplus(v):
    """softplus on the reference engine, from its exp, + and log."""
    return (v.exp() + 1.0).log()


def _against_reference(Value, build, x: float, text: str) -> None:
    """The learner's ``build(x)`` and the reference's agree on the output and x.grad."""
    mine, ref = _leaf(Value, x), RefValue(x)
    out = build(mine, lambda v: _sp(Value, v, "softplus"))
    ref_out = build(ref, _ref_softplus)
    expect_close(out.data, ref_out.data, rtol=1e-9, what=f"({text}).data")
    _backprop(out, text)
    ref_out.backward()
    expect_close(mine.grad, ref.grad, rtol=1e-9,
                 what=f"x.grad after backward through {text}")


@q.case("(x + 0.5).softplus().softplus() at x = -1.3, against the reference engine",
        kind="core", hint=_HINT)
def _(Value):
    _against_reference(Value, lambda x, sp: sp(sp(x + 0.5)), -1.3,
                       "(x + 0.5).softplus().softplus() at x = -1.3")


@q.case("x.softplus() + x at x = 2 (x used twice), against the reference engine",
        kind="core", hint=_HINT)
def _(Value):
    _against_reference(Value, lambda x, sp: sp(x) + x, 2.0, "x.softplus() + x at x = 2")


@q.case("the output remembers its input (children == (a,))", kind="mistake",
        hint="Create the output node with the input node as its only child, so that "
             "the graph, and topological_order, can reach it.")
def _(Value):
    a = _leaf(Value, 0.8)
    out = _sp(Value, a, "Value(0.8).softplus()")
    kids = _children(out)
    if len(kids) == 1 and kids[0] is a:
        return
    shown = "()" if not kids else "(" + ", ".join(_short(k) for k in kids) + ")"
    raise CheckFailure(f"out = a.softplus() has children {shown}; they should be (a,), "
                       "the Value softplus was called on.")


@q.case("the output's _backward is attached to it", kind="mistake",
        hint="Store the _backward closure on the output node before returning it; "
             "otherwise backward() calls the default _backward, which does nothing.")
def _(Value):
    a = _leaf(Value, 0.8)
    out = _sp(Value, a, "Value(0.8).softplus()")
    out.grad = 1.0
    _backward_of(out, "out = a.softplus()")
    if _unchanged_grads(a) and _default_backward(Value, out):
        raise CheckFailure("after out = a.softplus() (a = 0.8), out.grad = 1 and "
                           "out._backward(), a.grad is still 0: out._backward is "
                           "still the default of a new node, which does nothing.")


@q.case("local derivative: the inner derivative of e^a is kept", kind="mistake",
        hint="log(1 + e^a) is a composition: the derivative of log(u) is 1/u, times "
             "the derivative of u = 1 + e^a.")
def _(Value):
    got = _grad(Value, 0.8)
    wrong = 1 / (1 + math.exp(0.8))
    _verdict(got, _sigmoid(0.8), wrong,
             "after out = a.softplus() (a = 0.8), out.grad = 1, out._backward(): "
             f"a.grad is {_num(wrong)} = 1 / (1 + e^0.8): the derivative of e^a was "
             "left out.",
             "a.grad after out = a.softplus() (a = 0.8), out.grad = 1, out._backward()")


@q.case("chain rule: multiplied by out.grad", kind="mistake",
        hint="Multiply the local derivative by out.grad (the chain rule).")
def _(Value):
    got = _grad(Value, -0.3, out_grad=2.5)
    local = _sigmoid(-0.3)
    _verdict(got, 2.5 * local, local,
             "after out = a.softplus() (a = -0.3), out.grad = 2.5, out._backward(): "
             f"a.grad is {_num(local)}, the local derivative alone; expected 2.5 "
             f"times it, {_num(2.5 * local)}.",
             "a.grad after out = a.softplus() (a = -0.3), out.grad = 2.5, "
             "out._backward()")


@q.case("accumulates: a gradient a already holds is kept (+=)", kind="mistake",
        hint="Add to self.grad (+=), do not assign it: a node used twice collects a "
             "gradient from each use.")
def _(Value):
    got = _grad(Value, 0.5, start_grad=1.0)
    local = _sigmoid(0.5)
    _verdict(got, 1.0 + local, local,
             "a held the gradient 1 before out = a.softplus() (a = 0.5), "
             f"out._backward(); afterwards a.grad is {_num(local)}: the 1 was "
             f"overwritten. Expected 1 + {_num(local)} = {_num(1 + local)}.",
             "a.grad (it held 1 before) after out = a.softplus() (a = 0.5), "
             "out._backward()")


@q.case("stable: a = 1000 and a = -1000 give finite values and slopes", kind="mistake",
        hint="For a large a, e^a overflows: rewrite log(1 + e^a) so that only e to a "
             "non-positive power is computed, and do the same in the local derivative.")
def _(Value):
    for x in (1000.0, -1000.0):
        a = _leaf(Value, x)
        out = _sp(Value, a, f"Value({x:g}).softplus()")
        expect_finite(out.data, what=f"Value({x:g}).softplus().data")
        # Finite but wrong is another case's business: a plain mismatch, no hint.
        _plain_mismatch(out.data, _softplus(x), f"Value({x:g}).softplus().data", 1e-9)
        out.grad = 1.0
        try:
            _backward_of(out, f"out = Value({x:g}).softplus()")
        except OverflowError:
            raise CheckFailure(f"out._backward() of Value({x:g}).softplus() raised "
                               "OverflowError: the local derivative computes e^a for a "
                               "large a.") from None
        expect_finite(a.grad, what=f"a.grad after Value({x:g}).softplus()")
        _plain_mismatch(a.grad, _sigmoid(x),
                        f"a.grad after out = Value({x:g}).softplus(), out._backward()",
                        1e-9, 1e-12)
