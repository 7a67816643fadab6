"""Checks of 02.value_tanh: `tanh`: forward value and local derivative."""
from __future__ import annotations

import math

from ....lessons.autograd import Value as RefValue
from ...asserts import CheckFailure, _short, expect_close
from ...registry import question
from ._common import (_backprop, _backward_of, _children, _default_backward, _leaf,
                      _matches, _num, _op, _plain_mismatch, _unchanged_grads)


_TANH_HINT = ("Check both halves of tanh: the output's data is the hyperbolic tangent "
              "of the input's data (math.tanh), and its _backward adds the local "
              "derivative 1 - t^2 (t: the output) times out.grad to the input's grad, "
              "with +=.")

q = question("02.value_tanh", "`tanh`: forward value and local derivative",
             answers=["Value"], timeout=5)


def _tanh(Value, a, text: str):
    """a.tanh() with the learner's method (even where a is a node of another class)."""
    return _op(text, lambda: Value.tanh(a))


def _tanh_grad(Value, x, out_grad=1.0, start_grad=0.0):
    """a.grad after out = a.tanh(), out.grad = out_grad, out._backward()."""
    a = _leaf(Value, x)
    a.grad = start_grad
    out = _tanh(Value, a, f"Value({x}).tanh()")
    out.grad = out_grad
    _backward_of(out, "out = a.tanh()")
    return a.grad


def _tanh_verdict(got, expected, mistaken, message: str, what: str) -> None:
    """Pass on ``expected``; fail with ``message`` on ``mistaken``; else plainly."""
    if _matches(got, expected):
        return
    if _matches(got, mistaken):
        raise CheckFailure(message)
    _plain_mismatch(got, expected, what)


@q.case("Value(0.8).tanh(): the value and the local derivative", kind="core",
        hint=_TANH_HINT)
def _(Value):
    a = _leaf(Value, 0.8)
    out = _tanh(Value, a, "Value(0.8).tanh()")
    expect_close(out.data, math.tanh(0.8), what="Value(0.8).tanh().data")
    _backprop(out, "out = a.tanh()")
    expect_close(a.grad, 1 - math.tanh(0.8) ** 2,
                 what="a.grad after out = a.tanh() (a = 0.8), backward from out")


def _against_reference(Value, build, x: float, text: str) -> None:
    """The learner's ``build(x)`` and the reference's agree on the output and x.grad."""
    mine, ref = _leaf(Value, x), RefValue(x)
    out = _op(text, lambda: build(mine, Value.tanh))
    ref_out = build(ref, RefValue.tanh)
    expect_close(out.data, ref_out.data, rtol=1e-9, what=f"({text}).data")
    _backprop(out, text)
    ref_out.backward()
    expect_close(mine.grad, ref.grad, rtol=1e-9,
                 what=f"x.grad after backward through {text}")


@q.case("(x + 0.5).tanh().tanh() at x = -0.3, against the reference engine",
        kind="core", hint=_TANH_HINT)
def _(Value):
    _against_reference(Value, lambda x, tanh: tanh(tanh(x + 0.5)), -0.3,
                       "(x + 0.5).tanh().tanh() at x = -0.3")


@q.case("x.tanh() + x at x = 2 (x used twice), against the reference engine",
        kind="core", hint=_TANH_HINT)
def _(Value):
    _against_reference(Value, lambda x, tanh: tanh(x) + x, 2.0, "x.tanh() + x at x = 2")


@q.case("the output remembers its input (children == (a,))", kind="mistake",
        hint="Create the output node with the input node as its only child, so that "
             "the graph, and topological_order, can reach it.")
def _(Value):
    a = _leaf(Value, 0.8)
    out = _tanh(Value, a, "Value(0.8).tanh()")
    kids = _children(out)
    if len(kids) == 1 and kids[0] is a:
        return
    shown = "()" if not kids else "(" + ", ".join(_short(k) for k in kids) + ")"
    raise CheckFailure(f"out = a.tanh() has children {shown}; they should be (a,), the "
                       "Value tanh was called on.")


@q.case("the output's _backward is attached to it", kind="mistake",
        hint="Store the _backward closure on the output node before returning it; "
             "otherwise backward() calls the default _backward, which does nothing.")
def _(Value):
    a = _leaf(Value, 0.8)
    out = _tanh(Value, a, "Value(0.8).tanh()")
    out.grad = 1.0
    _backward_of(out, "out = a.tanh()")
    if _unchanged_grads(a) and _default_backward(Value, out):
        raise CheckFailure("after out = a.tanh() (a = 0.8), out.grad = 1 and "
                           "out._backward(), a.grad is still 0: out._backward is "
                           "still the default of a new node, which does nothing.")


@q.case("local derivative: 1 - tanh(x)^2, not 1 - x^2", kind="mistake",
        hint="d tanh(x)/dx = 1 - tanh(x)^2: square the output t, not the input's data.")
def _(Value):
    got = _tanh_grad(Value, 0.8)
    _tanh_verdict(got, 1 - math.tanh(0.8) ** 2, 1 - 0.8 ** 2,
                  "after out = a.tanh() (a = 0.8), out.grad = 1, out._backward(): "
                  f"a.grad is {_num(1 - 0.8 ** 2)} = 1 - 0.8^2, expected 1 - "
                  f"tanh(0.8)^2 = {_num(1 - math.tanh(0.8) ** 2)}.",
                  "a.grad after out = a.tanh() (a = 0.8), out.grad = 1, "
                  "out._backward()")


@q.case("chain rule: multiplied by out.grad", kind="mistake",
        hint="Multiply the local derivative by out.grad (the chain rule).")
def _(Value):
    got = _tanh_grad(Value, -0.3, out_grad=2.5)
    local = 1 - math.tanh(-0.3) ** 2
    _tanh_verdict(got, 2.5 * local, local,
                  "after out = a.tanh() (a = -0.3), out.grad = 2.5, out._backward(): "
                  f"a.grad is {_num(local)}, the local derivative alone; expected 2.5 "
                  f"times it, {_num(2.5 * local)}.",
                  "a.grad after out = a.tanh() (a = -0.3), out.grad = 2.5, "
                  "out._backward()")


@q.case("accumulates: a gradient a already holds is kept (+=)", kind="mistake",
        hint="Add to self.grad (+=), do not assign it: a node used twice collects a "
             "gradient from each use.")
def _(Value):
    got = _tanh_grad(Value, 0.5, start_grad=1.0)
    local = 1 - math.tanh(0.5) ** 2
    _tanh_verdict(got, 1.0 + local, local,
                  "a held the gradient 1 before out = a.tanh() (a = 0.5), "
                  f"out._backward(); afterwards a.grad is {_num(local)}: the 1 was "
                  f"overwritten. Expected 1 + {_num(local)} = {_num(1 + local)}.",
                  "a.grad (it held 1 before) after out = a.tanh() (a = 0.5), "
                  "out._backward()")
