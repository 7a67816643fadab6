"""Checks of 02.value_truediv: Division `a / b` as one node, with its own local
derivatives.

The lesson builds a / b from two nodes, a * b**-1, and never writes the local
derivatives of a quotient; the question asks for one node with both of them (PyTorch's
DivBackward). So two core cases call the output's own ``_backward`` once, which is where
a node's local derivatives live, and one compares a whole graph with the reference
engine.
"""
from __future__ import annotations

import numpy as np

from ....lessons.autograd import Value as RefValue
from ...asserts import CheckFailure, _short, expect_close
from ...registry import question
from ._common import (_backprop, _backward_of, _children, _default_backward, _div,
                      _leaf, _matches, _num, _op, _plain_mismatch, _unchanged_grads)


_HINT = ("Check the three parts of the quotient node: its data (the quotient of the "
         "inputs' data), its children (both inputs, the node b itself among them) and "
         "its _backward, which adds each input's local derivative of a / b times "
         "out.grad to that input's grad, with +=.")

q = question("02.value_truediv",
             "Division `a / b` as one node: its two local derivatives",
             answers=["Value"], timeout=5)


def _quotient_grads(Value, a_data, b_data, out_grad=1.0, start=(0.0, 0.0)):
    """(a.grad, b.grad), out and (a, b) after out = a / b and one out._backward()."""
    a, b = _leaf(Value, a_data), _leaf(Value, b_data)
    a.grad, b.grad = start
    out = _div(Value, a, b, f"Value({a_data:g}) / Value({b_data:g})")
    out.grad = out_grad
    _backward_of(out, "out = a / b")
    return (a.grad, b.grad), out, (a, b)


def _two_nodes(out, b) -> bool:
    """Is ``out`` a product whose second child is a node made from b alone (b ** -1)?"""
    kids = _children(out)
    return (len(kids) == 2 and kids[1] is not b
            and [id(k) for k in _children(kids[1])] == [id(b)])


def _one_closure(Value, a_data, b_data, out_grad):
    """The core of the question: what out._backward() alone passes to a and to b."""
    (ga, gb), out, (a, b) = _quotient_grads(Value, a_data, b_data, out_grad)
    text = (f"out = a / b (a = {a_data:g}, b = {b_data:g}), out.grad = {out_grad:g}, "
            "out._backward()")
    expect_close(out.data, a_data / b_data, rtol=1e-12,
                 what=f"(Value({a_data:g}) / Value({b_data:g})).data")
    expect_close(ga, out_grad / b_data, rtol=1e-12, what=f"a.grad after {text}")
    if gb == 0.0 and _two_nodes(out, b):
        raise CheckFailure(f"after {text}, b.grad is still 0: out is the product a * "
                           "b**-1, two nodes, so its own _backward reaches b**-1 and "
                           "never b. The question asks for one node whose _backward "
                           "gives b its gradient directly.")
    expect_close(gb, -out_grad * a_data / b_data ** 2, rtol=1e-12,
                 what=f"b.grad after {text}")


@q.case("a / b with a = 3, b = -2: the quotient and both local derivatives",
        kind="core", hint=_HINT)
def _(Value):
    _one_closure(Value, 3.0, -2.0, 1.0)


@q.case("a / b with a = -1, b = 4 and out.grad = 2.5: both gradients", kind="core",
        hint=_HINT)
def _(Value):
    _one_closure(Value, -1.0, 4.0, 2.5)


def _expression(x, y, div, const):
    """(x / y + x) / (y * y) + const / x, with const a node of the same class."""
    return div(div(x, y) + x, y * y) + div(const, x)


@q.case("(x / y + x) / (y * y) + 2 / x at x = 1.5, y = -0.8 (shared nodes), against "
        "the reference engine", kind="core", hint=_HINT)
def _(Value):
    data = {"x": 1.5, "y": -0.8}
    mine = {k: _leaf(Value, v) for k, v in data.items()}
    ref = {k: RefValue(v) for k, v in data.items()}
    text = "(x / y + x) / (y * y) + 2 / x at x = 1.5, y = -0.8"
    out = _op(text, lambda: _expression(mine["x"], mine["y"], Value.__truediv__,
                                        _leaf(Value, 2.0)), method="__truediv__")
    ref_out = _expression(ref["x"], ref["y"], RefValue.__truediv__, RefValue(2.0))
    expect_close(out.data, ref_out.data, rtol=1e-9, what=f"({text}).data")
    _backprop(out, "that expression")
    ref_out.backward()
    for k in data:
        expect_close(mine[k].grad, ref[k].grad, rtol=1e-9,
                     what=f"{k}.grad after backward through {text}")


@q.case("a / b is one node whose children are a and b", kind="mistake",
        hint="Create one output node with the two inputs themselves as its children, "
             "as __add__ does; a / b written as a * b**-1 is the lesson's two-node "
             "version, not the node this question asks for.")
def _(Value):
    a, b = _leaf(Value, 3.0), _leaf(Value, -2.0)
    out = _div(Value, a, b, "Value(3) / Value(-2)")
    kids = _children(out)
    if len(kids) == 2 and sorted(map(id, kids)) == sorted([id(a), id(b)]):
        return
    if _two_nodes(out, b):
        raise CheckFailure("out = a / b (a = 3, b = -2) has children (a, b**-1): it "
                           "is a product of two nodes, not one quotient node.")
    shown = "()" if not kids else "(" + ", ".join(_short(k) for k in kids) + ")"
    raise CheckFailure(f"out = a / b (a = 3, b = -2) has children {shown}; they should "
                       "be a and b themselves. Without them backward() never reaches "
                       "the nodes that made a and b.")


@q.case("the output's _backward is attached to it", kind="mistake",
        hint="Defining the _backward closure inside __truediv__ is not enough: store "
             "it on the output node, as __add__ does, before returning the node; "
             "otherwise backward() calls the default _backward, which does nothing.")
def _(Value):
    (ga, gb), out, (a, b) = _quotient_grads(Value, 3.0, -2.0)
    if _unchanged_grads(a, b) and _default_backward(Value, out):
        raise CheckFailure("after out = a / b (a = 3, b = -2), out.grad = 1 and "
                           "out._backward(), a.grad and b.grad are both still 0: "
                           "out._backward is still the default of a new node, which "
                           "does nothing.")


def _numbers(values) -> bool:
    """Are all ``values`` plain numbers (no None, no bool, no array)?"""
    kinds = (int, float, np.integer, np.floating)
    return all(isinstance(v, kinds) and not isinstance(v, bool) for v in values)


def _verdict(got, expected, mistakes: dict, what: str) -> None:
    """Pass on ``expected`` (a number); fail with the message of the first mistake
    ``got`` equals (the hint shown); else plainly."""
    if _numbers([got]):
        if _matches(got, expected):
            return
        for message, mistaken in mistakes.items():
            if mistaken is not None and _matches(got, mistaken):
                raise CheckFailure(message)
    _plain_mismatch(got, expected, what)


_AFTER = "after out = a / b (a = 3, b = -2), out.grad = 1, out._backward()"


@q.case("d(a/b)/da = 1/b", kind="mistake",
        hint="Treat b as a constant and differentiate a / b with respect to a; a "
             "product's local derivative (the other input's value) is not a "
             "quotient's.")
def _(Value):
    (ga, _), _, _ = _quotient_grads(Value, 3.0, -2.0)
    _verdict(ga, -0.5, {
        f"{_AFTER}: a.grad is -2, the value of b, as for a product; expected 1/b = "
        "-0.5.": -2.0,
        f"{_AFTER}: a.grad is -0.75, the local derivative with respect to b; expected "
        "1/b = -0.5 (the two were swapped).": -0.75,
    }, f"a.grad {_AFTER}")


@q.case("d(a/b)/db = -a/b^2 (its sign and its square)", kind="mistake",
        hint="Write a / b as a times b to the power -1 and differentiate the power "
             "with respect to b: mind the sign that the exponent -1 brings down, and "
             "the exponent that is left.")
def _(Value):
    (_, gb), out, (_, b) = _quotient_grads(Value, 3.0, -2.0)
    if gb == 0.0 and _two_nodes(out, b):
        _plain_mismatch(gb, -0.75, f"b.grad {_AFTER}")
    _verdict(gb, -0.75, {
        f"{_AFTER}: b.grad is 0.75 = a/b^2; expected -a/b^2 = -0.75 (the sign is "
        "missing).": 0.75,
        f"{_AFTER}: b.grad is 1.5 = -a/b; expected -a/b^2 = -0.75 (b is squared in the "
        "derivative of 1/b).": 1.5,
        f"{_AFTER}: b.grad is -0.25 = -1/b^2; expected -a/b^2 = -0.75 (the factor a is "
        "missing).": -0.25,
        f"{_AFTER}: b.grad is -0.5 = 1/b, the local derivative with respect to a; "
        "expected -a/b^2 = -0.75 (the two were swapped).": -0.5,
    }, f"b.grad {_AFTER}")


@q.case("chain rule: each local derivative is multiplied by out.grad", kind="mistake",
        hint="Multiply each local derivative by out.grad, the gradient that arrives "
             "from above (the chain rule).")
def _(Value):
    (ga, gb), _, _ = _quotient_grads(Value, 3.0, -2.0, out_grad=5.0)
    after = "after out = a / b (a = 3, b = -2), out.grad = 5, out._backward()"
    _verdict(ga, -2.5, {
        f"{after}: a.grad is -0.5, the local derivative alone; expected 5 times it, "
        "-2.5.": -0.5}, f"a.grad {after}")
    _verdict(gb, -3.75, {
        f"{after}: b.grad is -0.75, the local derivative alone; expected 5 times it, "
        "-3.75.": -0.75}, f"b.grad {after}")


@q.case("a node used twice: d(a/a)/da = 0 (gradients accumulate with +=)",
        kind="mistake",
        hint="Add to the inputs' grads (+=) instead of assigning them (=): in a / a "
             "both inputs are a, and the second assignment overwrites the first "
             "contribution.")
def _(Value):
    a = _leaf(Value, 3.0)
    out = _div(Value, a, a, "Value(3) / itself")
    out.grad = 1.0
    _backward_of(out, "out = a / a")
    what = "a.grad after out = a / a (a = 3), out.grad = 1, out._backward()"
    if _numbers([a.grad]) and _matches(a.grad, 0.0, atol=1e-12):
        return
    if _two_nodes(out, a):  # the lesson's a * a**-1: another case's business
        _plain_mismatch(a.grad, 0.0, what, atol=1e-12)
    for kept in (1 / 3, -1 / 3):
        if _numbers([a.grad]) and _matches(a.grad, kept):
            raise CheckFailure(f"{what} is {_num(kept)}, expected 0 (1/a - a/a^2): the "
                               "contribution of one use of a replaced the other's.")
    _plain_mismatch(a.grad, 0.0, what, atol=1e-12)


@q.case("a gradient a node already holds is kept (+=, not =)", kind="mistake",
        hint="Add to self.grad and other.grad (+=): other paths through the graph may "
             "already have put a gradient there.")
def _(Value):
    (ga, gb), _, _ = _quotient_grads(Value, 3.0, -2.0, start=(0.5, -1.0))
    before = ("a and b held gradients 0.5 and -1 before out = a / b (a = 3, b = -2), "
              "out.grad = 1, out._backward()")
    _verdict(ga, 0.0, {
        f"{before}; afterwards a.grad is -0.5: the 0.5 was overwritten. Expected "
        "0.5 + (-0.5) = 0.": -0.5}, f"a.grad ({before})")
    _verdict(gb, -1.75, {
        f"{before}; afterwards b.grad is -0.75: the -1 was overwritten. Expected "
        "-1 + (-0.75) = -1.75.": -0.75}, f"b.grad ({before})")


@q.case("works with a plain number: d(a/4)/da = 1/4", kind="mistake",
        hint="Turn a plain number into a Value before using its .data, as __add__ "
             "does.")
def _(Value):
    a = _leaf(Value, 2.0)
    try:
        out = _div(Value, a, 4, "Value(2) / 4")
    except AttributeError as exc:
        if "'int' object" in str(exc) or "'float' object" in str(exc):
            raise CheckFailure(f"Value(2) / 4 raised AttributeError: {exc}: a plain "
                               "number has no .data.") from None
        raise
    _plain_mismatch(out.data, 0.5, "(Value(2) / 4).data")
    out.grad = 1.0
    _backward_of(out, "out = a / 4")
    _plain_mismatch(a.grad, 0.25, "a.grad after out = a / 4 (a = 2), out.grad = 1, "
                                  "out._backward()")
