"""Checks of 02.value_mul_backward: The local derivatives of `a * b`."""
from __future__ import annotations

import numpy as np

from ....lessons.autograd import Value as RefValue
from ...asserts import CheckFailure, _short, expect_close
from ...registry import question
from ._common import (_backprop, _backward_of, _children, _default_backward, _leaf,
                      _matches, _mul, _op, _plain_mismatch, _unchanged_grads)


_MUL_HINT = ("Check the three parts of the product node: its data (the product of the "
             "inputs' data), its children (both inputs, so that backward() can reach "
             "them) and its _backward (each input gets the OTHER input's value times "
             "out.grad, added with +=).")

q = question("02.value_mul_backward", "The local derivatives of `a * b`",
             answers=["Value"], timeout=5)


@q.case("a * b: the product and both gradients (a = 2, b = -3)", kind="core",
        hint=_MUL_HINT)
def _(Value):
    a, b = _leaf(Value, 2.0), _leaf(Value, -3.0)
    out = _mul(Value, a, b, "Value(2.0) * Value(-3.0)")
    expect_close(out.data, -6.0, what="(Value(2.0) * Value(-3.0)).data")
    _backprop(out, "out = a * b")
    expect_close(a.grad, -3.0, what="a.grad after out = a * b (a = 2, b = -3), "
                                    "backward from out")
    expect_close(b.grad, 2.0, what="b.grad after out = a * b (a = 2, b = -3), "
                                   "backward from out")


@q.case("(a + b) * c: backward reaches every leaf (a = 2, b = -0.5, c = 3)",
        kind="core", hint=_MUL_HINT)
def _(Value):
    a, b, c = _leaf(Value, 2.0), _leaf(Value, -0.5), _leaf(Value, 3.0)
    s = _op("Value(2.0) + Value(-0.5)", lambda: a + b)
    out = _mul(Value, s, c, "(a + b) * c")
    expect_close(out.data, 4.5, what="((a + b) * c).data for a = 2, b = -0.5, c = 3")
    _backprop(out, "out = (a + b) * c")
    expect_close(c.grad, 1.5, what="c.grad after out = (a + b) * c, backward from out")
    if _unchanged_grads(a, b):
        raise CheckFailure("after out = (a + b) * c and backward from out, a.grad and "
                           "b.grad are 0 (expected 3 and 3): the gradient never "
                           "reached the node a + b. backward() walks from out through "
                           "each node's children, so the product must list a + b and "
                           "c as its children.")
    expect_close(a.grad, 3.0, what="a.grad after out = (a + b) * c, backward from out")
    expect_close(b.grad, 3.0, what="b.grad after out = (a + b) * c, backward from out")


def _shared_product(x, w, b, mul):
    """h * h * x + w * x with h = x * w + b: x, w and h each used more than once."""
    h = mul(x, w) + b
    return mul(mul(h, h), x) + mul(w, x)


@q.case("shared nodes: h * h * x + w * x with h = x * w + b, against the reference",
        kind="core", hint=_MUL_HINT)
def _(Value):
    data = {"x": 0.5, "w": -1.5, "b": 2.0}
    mine = {k: _leaf(Value, v) for k, v in data.items()}
    ref = {k: RefValue(v) for k, v in data.items()}
    text = "h * h * x + w * x with h = x * w + b (x = 0.5, w = -1.5, b = 2)"
    out = _op(text, lambda: _shared_product(mine["x"], mine["w"], mine["b"],
                                            Value.__mul__))
    ref_out = _shared_product(ref["x"], ref["w"], ref["b"], RefValue.__mul__)
    expect_close(out.data, ref_out.data, rtol=1e-9, what=f"({text}).data")
    _backprop(out, "that expression")
    ref_out.backward()
    for k in data:
        expect_close(mine[k].grad, ref[k].grad, rtol=1e-9,
                     what=f"{k}.grad after backward through {text}")


@q.case("the output of a * b lists a and b as its children", kind="mistake",
        hint="Create the output node with its two inputs as its children, as __add__ "
             "does: backward() walks the graph through them, and stops where they are "
             "missing.")
def _(Value):
    a, b = _leaf(Value, 2.0), _leaf(Value, -3.0)
    out = _mul(Value, a, b, "Value(2.0) * Value(-3.0)")
    kids = _children(out)
    if len(kids) == 2 and {id(k) for k in kids} == {id(a), id(b)}:
        return
    shown = "()" if not kids else "(" + ", ".join(_short(k) for k in kids) + ")"
    raise CheckFailure(f"out = a * b (a = 2, b = -3) has children {shown}; they should "
                       "be a and b themselves. Without them backward() never reaches "
                       "the nodes that made a and b, and their gradients stay 0.")


@q.case("the output's _backward is attached to it", kind="mistake",
        hint="Defining the _backward closure inside __mul__ is not enough: store the "
             "closure on the output node, as __add__ does, before returning the node; "
             "otherwise backward() calls the default _backward, which does nothing.")
def _(Value):
    a, b = _leaf(Value, 2.0), _leaf(Value, -3.0)
    out = _mul(Value, a, b, "Value(2.0) * Value(-3.0)")
    out.grad = 1.0
    _backward_of(out, "out = a * b")
    if _unchanged_grads(a, b) and _default_backward(Value, out):
        raise CheckFailure("after out = a * b (a = 2, b = -3), out.grad = 1 and "
                           "out._backward(), a.grad and b.grad are both still 0: "
                           "out._backward is still the default of a new node, which "
                           "does nothing.")


def _mul_grads(Value, a_data, b_data, out_grad, start=(0.0, 0.0)):
    """(a.grad, b.grad) and out, after out = a * b and one out._backward()."""
    a, b = _leaf(Value, a_data), _leaf(Value, b_data)
    a.grad, b.grad = start
    out = _mul(Value, a, b, f"Value({a_data}) * Value({b_data})")
    out.grad = out_grad
    _backward_of(out, "out = a * b")
    return (a.grad, b.grad), out


def _mul_verdict(got, expected, mistakes: dict, what: str) -> None:
    """Pass on ``expected``; fail with the message of the first mistake ``got`` equals
    (the hint shown); else plainly."""
    if _numbers(got):
        grads = np.array(got, dtype=float)
        if _matches(grads, expected):
            return
        for message, mistaken in mistakes.items():
            if mistaken is not None and _matches(grads, mistaken):
                raise CheckFailure(message)
    for g, e, name in zip(got, expected, ("a.grad", "b.grad")):
        _plain_mismatch(g, e, f"{name} {what}")


def _numbers(values) -> bool:
    """Are all ``values`` plain numbers (no None, no bool, no array)?"""
    kinds = (int, float, np.integer, np.floating)
    return all(isinstance(v, kinds) and not isinstance(v, bool) for v in values)


@q.case("local derivatives: d(ab)/da = b and d(ab)/db = a, not swapped", kind="mistake",
        hint="a's gradient uses b's value and b's gradient uses a's value: the "
             "derivative of a*b with respect to a is b.")
def _(Value):
    got, out = _mul_grads(Value, 2.0, -3.0, 1.0)
    attached = not _default_backward(Value, out)
    _mul_verdict(got, [-3.0, 2.0], {
        "after out = a * b (a = 2, b = -3), out.grad = 1, out._backward(): a.grad is "
        "2 and b.grad is -3, each input's own value; expected a.grad = -3 (the value "
        "of b) and b.grad = 2 (the value of a).": [2.0, -3.0],
        "after out = a * b (a = 2, b = -3), out.grad = 1, out._backward(): a.grad and "
        "b.grad are still 0 although out._backward ran: the local derivatives are the "
        "inputs' values (.data), not their gradients.":
        [0.0, 0.0] if attached else None,
    }, "after out = a * b (a = 2, b = -3), out.grad = 1, out._backward()")


@q.case("chain rule: the local derivative is multiplied by out.grad", kind="mistake",
        hint="Multiply each local derivative by out.grad, the gradient that arrives "
             "from above (the chain rule).")
def _(Value):
    got, _ = _mul_grads(Value, 2.0, -3.0, 5.0)
    _mul_verdict(got, [-15.0, 10.0], {
        "after out = a * b (a = 2, b = -3), out.grad = 5, out._backward(): a.grad is "
        "-3 and b.grad is 2, the local derivatives alone; expected -15 and 10 (times "
        "out.grad = 5).": [-3.0, 2.0],
    }, "after out = a * b (a = 2, b = -3), out.grad = 5, out._backward()")


@q.case("a node used twice: d(a*a)/da = 2a (gradients accumulate with +=)",
        kind="mistake",
        hint="Add to the inputs' grads (+=) instead of assigning them (=): in a * a "
             "both inputs are a, and the second assignment overwrites the first "
             "contribution.")
def _(Value):
    a = _leaf(Value, 3.0)
    out = _mul(Value, a, a, "Value(3.0) * itself")
    out.grad = 1.0
    _backward_of(out, "out = a * a")
    what = "a.grad after out = a * a (a = 3), out.grad = 1, out._backward()"
    if _matches(a.grad, 6.0):
        return
    if _matches(a.grad, 3.0):
        raise CheckFailure(f"{what} is 3, expected 6: the contribution of the second "
                           "use of a replaced the first one.")
    _plain_mismatch(a.grad, 6.0, what)


@q.case("a gradient a node already holds is kept (+=, not =)", kind="mistake",
        hint="Add to self.grad and other.grad (+=): other paths through the graph may "
             "already have put a gradient there.")
def _(Value):
    got, _ = _mul_grads(Value, 2.0, -3.0, 1.0, start=(0.5, -1.0))
    _mul_verdict(got, [-2.5, 1.0], {
        "a and b held gradients 0.5 and -1 before out = a * b (a = 2, b = -3), "
        "out.grad = 1, out._backward(); afterwards they hold -3 and 2: the earlier "
        "gradients were overwritten. Expected -2.5 and 1.": [-3.0, 2.0],
    }, "(it held a gradient before) after out = a * b, out._backward()")


@q.case("works with a plain number: d(a*4)/da = 4", kind="mistake",
        hint="Turn a plain number into a Value before using its .data, as __add__ "
             "does.")
def _(Value):
    a = _leaf(Value, 2.0)
    try:
        out = _mul(Value, a, 4, "Value(2.0) * 4")
    except AttributeError as exc:
        if "'int' object" in str(exc) or "'float' object" in str(exc):
            raise CheckFailure(f"Value(2.0) * 4 raised AttributeError: {exc}: a plain "
                               "number has no .data.") from None
        raise
    _plain_mismatch(out.data, 8.0, "(Value(2.0) * 4).data")
    out.grad = 1.0
    _backward_of(out, "out = a * 4")
    _plain_mismatch(a.grad, 4.0, "a.grad after out = a * 4 (a = 2), out.grad = 1, "
                                 "out._backward()")
