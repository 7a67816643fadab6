"""Checks of lesson 02 (backpropagation): the scalar engine, its order, NumPy backprop.

The oracles are ``course_utils.autograd`` and ``course_utils.mlp_numpy``, the code the
lesson teaches, and values worked out by hand. Each question has three kinds of case:

- core: the answer's values against the oracle, on inputs that differ from case to case
  (sizes, seeds, eps); only these earn credit, and no answer that computes nothing
  passes one;
- mistake: one typical mistake, recognised by what it computes (the answer equals the
  mistake's value); its hint names that mistake. A wrong value that is not that mistake
  still fails the case, as a plain mismatch without the hint (a basic failure), so no
  hint blames the wrong thing;
- property: structure and shapes, inputs left unchanged.
"""
from __future__ import annotations

import math

import numpy as np

from ...autograd import Value as RefValue
from ...autograd import random_expression
from ...autograd import topological_order as ref_topological_order
from ...mlp_numpy import linear_backward as ref_linear_backward
from ...mlp_numpy import numerical_gradient as ref_numerical_gradient
from ...mlp_numpy import relu_backward as ref_relu_backward
from ...mlp_numpy import softmax as ref_softmax
from ...mlp_numpy import softmax_cross_entropy as ref_softmax_cross_entropy
from ..asserts import (CheckFailure, _short, as_number, call, describe_call,
                       expect_close, expect_equal, expect_finite, expect_shape,
                       fmt_pair, tolerance_for)
from ..registry import question


# ---------------------------------------------------------------------- shared helpers
def _matches(got, expected, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """Does ``got`` equal ``expected`` within its dtype's tolerance? (never raises)"""
    try:
        expect_close(got, expected, rtol=rtol, atol=atol)
    except Exception:
        return False
    return True


def _plain_mismatch(got, expected, what: str, rtol: float = 1e-7,
                    atol: float = 1e-9) -> None:
    """Fail without the case's hint: ``got`` is wrong, but not by the case's mistake."""
    try:
        expect_close(got, expected, rtol=rtol, atol=atol, what=what)
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=True, call=failure.call,
                           problem=failure.problem) from None


def _on_copies(fn, *args, name: str):
    """Call learner code on copies of the arrays: a change in place is the business of
    the property case that looks for it, and never spoils the values compared here."""
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    return call(fn, *copies, check_mutation=False, name=name)


def _basic(message: str, problem: str = "") -> CheckFailure:
    """A basic failure (None, a wrong type): the case's own hint is not shown with it.
    ``problem`` says which ("type": the answer returned the wrong kind of thing)."""
    return CheckFailure(message, basic=True, problem=problem)


def _num(x: float) -> str:
    """A number for a message: short, and never a NumPy repr."""
    return f"{float(x):.6g}"


# ================================================================= the learner's Value
def _leaf(Value, data):
    """A leaf node made with the learner's class."""
    return call(Value, data, name="Value")


def _children(node) -> tuple:
    """A node's inputs: ``_children`` (the lesson's name) or ``_prev`` (micrograd's)."""
    kids = getattr(node, "_children", None)
    if kids is None:
        kids = getattr(node, "_prev", ())
    try:
        return tuple(kids)
    except TypeError:
        return ()


def _op(text: str, fn, *args):
    """Run one operation of the learner's Value (``text`` names it in messages); the
    result must be a node."""
    describe_call.add(text)
    out = fn(*args)
    describe_call.returned(text, out)
    if out is None:
        method = "tanh" if "tanh" in text else "__mul__"
        raise _basic(f"{text} returned None: {method} must end by returning its output "
                     "node.")
    if not all(hasattr(out, name) for name in ("data", "grad", "_backward")):
        raise _basic(f"{text} returned {_short(out)} (a {type(out).__name__}); it "
                     "should return a new Value, the output node of the operation.",
                     problem="type")
    return out


def _mul(Value, a, b, text: str):
    """a * b with the learner's __mul__ (even where a is a node of another class)."""
    return _op(text, lambda: Value.__mul__(a, b))


def _backward_of(out, text: str) -> None:
    """Call out._backward() once (out.grad is set): the op's own closure only."""
    describe_call.add(f"out._backward() of {text}")
    out._backward()


def _backprop(root, text: str) -> None:
    """backward() over the learner's nodes: root.grad = 1, then every node's _backward
    after all the nodes that use it (the reference order; it reaches only what the
    children link)."""
    order: list = []
    seen: set[int] = set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        for child in _children(node):
            visit(child)
        order.append(node)

    visit(root)
    describe_call.add(f"backward through {text}")
    root.grad = 1.0
    for node in reversed(order):
        node._backward()


def _default_backward(Value, node) -> bool:
    """Is node._backward still a new node's do-nothing default (no closure attached)?"""
    fresh = call(Value, 0.0, name="Value")
    code = getattr(getattr(fresh, "_backward", None), "__code__", None)
    return code is not None and getattr(node._backward, "__code__", None) is code


def _unchanged_grads(*nodes) -> bool:
    """Do all the nodes still hold the gradient 0?"""
    return all(isinstance(n.grad, (int, float)) and n.grad == 0.0 for n in nodes)


# =============================================================== 02.value_mul_backward
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


# ======================================================================= 02.value_tanh
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


# ================================================================ 02.topological_order
q = question("02.topological_order", "Order a graph for backpropagation",
             answers=["topological_order"], timeout=5)


def _shared_graph():
    """x is used three times and y twice; returns the root."""
    x, w = RefValue(0.5, label="x"), RefValue(-1.5, label="w")
    y = x * w + x
    return (y * y + x).tanh() + y


def _random_graph(seed: int, num_ops: int):
    """A seeded random expression, many nodes shared or equal: (root, leaves)."""
    leaves = [RefValue(0.3), RefValue(-0.8), RefValue(1.2)]
    return random_expression(leaves, num_ops=num_ops, seed=seed), leaves


def _order_of(topological_order, root) -> list:
    """The learner's order of ``root``'s graph, a list of nodes (or a basic failure)."""
    got = call(topological_order, root, name="topological_order")
    if got is None:
        raise _basic("topological_order(root) returned None: did you forget to "
                     "`return` the list?")
    if isinstance(got, (set, frozenset, dict)):
        raise _basic(f"topological_order(root) returned a {type(got).__name__}, which "
                     "has no order: return a list.", problem="type")
    try:
        got = list(got)
    except TypeError:
        raise _basic("topological_order(root) should return a list of nodes, not a "
                     f"{type(got).__name__}.", problem="type") from None
    strange = [g for g in got if not hasattr(g, "_children")]
    if strange:
        raise _basic("topological_order(root) should list the nodes (Values) "
                     f"themselves, but the list holds {_short(strange[0])} (a "
                     f"{type(strange[0]).__name__}).", problem="type")
    return got


def _in_order(got) -> tuple | None:
    """The first (child, node) pair of ``got`` where the child comes after the node
    using it (a node listed twice counts where it is first listed: repeats are another
    case's mistake)."""
    position: dict[int, int] = {}
    for i, g in enumerate(got):
        position.setdefault(id(g), i)
    for node in got:
        for child in node._children:
            if position.get(id(child), -1) > position[id(node)]:
                return child, node
    return None


def _order_problem(got, root) -> str | None:
    """What is wrong with ``got`` as a topological order of ``root``'s graph (None)."""
    nodes = ref_topological_order(root)
    ids = {id(n) for n in nodes}
    listed = {id(g) for g in got}
    missing = [n for n in nodes if id(n) not in listed]
    if missing:
        return (f"{len(missing)} of the {len(nodes)} nodes of the graph are missing "
                f"from the order, e.g. {_short(missing[0])}.")
    if len(got) != len(listed):
        counts: dict[int, int] = {}
        for g in got:
            counts[id(g)] = counts.get(id(g), 0) + 1
        twice = next(g for g in got if counts[id(g)] > 1)
        return (f"{_short(twice)} appears {counts[id(twice)]} times ({len(got)} "
                f"entries for a graph of {len(nodes)} nodes); each node belongs in the "
                "order once.")
    extra = [g for g in got if id(g) not in ids]
    if extra:
        return f"the order holds {_short(extra[0])}, which is not a node of this graph."
    wrong = _in_order(got)
    if wrong:
        return f"{_short(wrong[0])} comes after {_short(wrong[1])}, which uses it."
    if got[-1] is not root:
        return f"the last node is {_short(got[-1])}; the root should be last."
    return None


_ORDER_HINT = ("Depth-first search: visit a node's children before appending the node "
               "itself, and skip nodes already visited, so that every node is listed "
               "once, after its children, with the root last.")


@q.case("a graph with shared nodes: every node once, children first, root last",
        kind="core", hint=_ORDER_HINT)
def _(topological_order):
    root = _shared_graph()
    problem = _order_problem(_order_of(topological_order, root), root)
    if problem:
        raise CheckFailure("For the graph of ((x*w + x)^2 + x).tanh() + (x*w + x): "
                           f"{problem}")


@q.case("a random expression: every node once, children first, root last",
        kind="core", hint=_ORDER_HINT)
def _(topological_order):
    root, _ = _random_graph(seed=1, num_ops=15)
    problem = _order_problem(_order_of(topological_order, root), root)
    if problem:
        size = len(ref_topological_order(root))
        raise CheckFailure(f"For a random expression of {size} nodes: {problem}")


@q.case("calling _backward in reversed order gives the reference gradients",
        kind="core",
        hint="backward() sets root.grad = 1 and calls every node's _backward in the "
             "reverse of your order: each node must come once, after all its "
             "children.")
def _(topological_order):
    root, leaves = _random_graph(seed=7, num_ops=10)
    order = _order_of(topological_order, root)
    root.grad = 1.0
    for node in reversed(order):
        node._backward()
    ref_root, ref_leaves = _random_graph(seed=7, num_ops=10)
    ref_root.backward()
    for i, (leaf, ref) in enumerate(zip(leaves, ref_leaves)):
        expect_close(leaf.grad, ref.grad, rtol=1e-9,
                     what=f"the gradient of leaf {i} of a random expression, "
                          "backpropagated in reversed(topological_order(root))")


@q.case("a single node: [node]", kind="mistake",
        hint="Start the search at the root: a node without children is listed on its "
             "own.")
def _(topological_order):
    v = RefValue(1.0)
    got = _order_of(topological_order, v)
    if len(got) != 1 or got[0] is not v:
        raise CheckFailure("topological_order(v) for a lone node v returned a list of "
                           f"{len(got)} entries, expected [v].")


@q.case("every node is listed, not only the root's children", kind="mistake",
        hint="Visit every child of every node, recursively (not only the root's "
             "children).")
def _(topological_order):
    root = _shared_graph()
    got = _order_of(topological_order, root)
    nodes = ref_topological_order(root)
    listed = {id(g) for g in got}
    missing = [n for n in nodes if id(n) not in listed]
    if missing:
        raise CheckFailure(f"{len(missing)} of the {len(nodes)} nodes are missing from "
                           f"the order, e.g. {_short(missing[0])}.")


@q.case("nodes with equal data are different nodes", kind="mistake",
        hint="Keep the nodes themselves in the visited set (they hash by identity), "
             "not their data: two nodes with equal data are still two nodes.")
def _(topological_order):
    a, b = RefValue(2.0, label="a"), RefValue(2.0, label="b")
    c = RefValue(-1.0, label="c")
    root = a * c + b * c  # a * c and b * c both have data -2
    got = _order_of(topological_order, root)
    nodes = ref_topological_order(root)
    listed = {id(g) for g in got}
    missing = [n for n in nodes if id(n) not in listed]
    if not missing:
        return
    twins = [n for n in missing if any(g.data == n.data for g in got)]
    if len(twins) == len(missing):
        raise CheckFailure("for out = a * c + b * c with a = b = 2 and c = -1, the "
                           f"order lists {len(got)} of the {len(nodes)} nodes: each "
                           f"missing node, e.g. {_short(missing[0])}, has the same "
                           "data as a node that is listed. Nodes were told apart by "
                           "their values, not by who they are.")
    raise _basic(f"for out = a * c + b * c, {len(missing)} of the {len(nodes)} nodes "
                 f"are missing from the order, e.g. {_short(missing[0])}.")


@q.case("each node appears exactly once, even when used several times", kind="mistake",
        hint="Keep a set of visited nodes and return early for a node seen before.")
def _(topological_order):
    root = _shared_graph()
    got = _order_of(topological_order, root)
    counts: dict[int, int] = {}
    for g in got:
        counts[id(g)] = counts.get(id(g), 0) + 1
    repeated = [g for g in got if counts[id(g)] > 1]
    if repeated:
        raise CheckFailure(f"{_short(repeated[0])} appears {counts[id(repeated[0])]} "
                           f"times in the order ({len(got)} entries for a graph of "
                           f"{len(ref_topological_order(root))} nodes).")


def _order_graph():
    """x * (x * w).tanh() + w: a pre-order (node before children) is not valid read
    backwards either, so it is told apart from a reversed post-order."""
    x, w = RefValue(0.5, label="x"), RefValue(-1.5, label="w")
    return x * (x * w).tanh() + w


def _reversed_but_valid(got) -> bool:
    """Is ``got`` a valid order read backwards (root first), and not valid as it is?"""
    return len(got) > 1 and _in_order(got) is not None and _in_order(got[::-1]) is None


@q.case("children come before the nodes that use them (post-order)", kind="mistake",
        hint="Append a node only after visiting all its children (post-order), not "
             "before.")
def _(topological_order):
    got = _order_of(topological_order, _order_graph())
    wrong = _in_order(got)
    if wrong and not _reversed_but_valid(got):
        raise CheckFailure(f"{_short(wrong[0])} comes after {_short(wrong[1])}, which "
                           "uses it (children must come first).")


@q.case("the root is last: the order is not reversed", kind="mistake",
        hint="Return the order as built, inputs first and root last: backward() is "
             "the one that walks it in reverse.")
def _(topological_order):
    root = _order_graph()
    got = _order_of(topological_order, root)
    if _reversed_but_valid(got):
        raise CheckFailure("the order is reversed: the root comes first and every "
                           "child after the nodes that use it.")
    if got and got[-1] is not root and _in_order(got) is None:
        raise CheckFailure(f"the last node is {_short(got[-1])}; the root should be "
                           "last.")


@q.case("a chain of 40 shared diamonds finishes at once (no node walked twice)",
        kind="mistake",
        hint="Without a visited set a node shared by two parents is walked twice, and "
             "40 diamonds make 2^40 walks: check whether a node was visited before "
             "recursing into it.")
def _(topological_order):
    node = RefValue(0.1)
    for _ in range(40):
        node = node + node * 0.5  # the previous node is used twice
    got = _order_of(topological_order, node)
    if len(got) > 1 + 3 * 40:
        expect_equal(len(got), 1 + 3 * 40, what="the number of nodes in the order")


# ================================================================== 02.linear_backward
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


# ==================================================================== 02.relu_backward
q = question("02.relu_backward", "Backward of ReLU", answers=["relu_backward"],
             timeout=5)


def _relu_inputs(seed: int, shape: tuple):
    """Seeded (dA, Z) of ``shape``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal(shape)  # dA, Z


def _relu_core(relu_backward, seed: int, shape: tuple) -> None:
    """The learner's ReLU backward against the reference on seeded inputs."""
    dA, Z = _relu_inputs(seed, shape)
    got = _on_copies(relu_backward, dA, Z, name="relu_backward")
    expect_close(got, ref_relu_backward(dA, Z),
                 what=f"relu_backward(dA, Z) for shape {shape}")


_RELU_HINT = ("The slope of ReLU is 1 where its input Z was positive and 0 elsewhere: "
              "the upstream gradient dA passes where Z > 0 and is 0 where Z <= 0.")


@q.case("a (4, 6) batch, against the reference", kind="core", hint=_RELU_HINT)
def _(relu_backward):
    _relu_core(relu_backward, seed=0, shape=(4, 6))


@q.case("a vector of 7, against the reference", kind="core", hint=_RELU_HINT)
def _(relu_backward):
    _relu_core(relu_backward, seed=1, shape=(7,))


@q.case("a (2, 3, 4) array, against the reference", kind="core", hint=_RELU_HINT)
def _(relu_backward):
    _relu_core(relu_backward, seed=2, shape=(2, 3, 4))


def _relu_mistake(relu_backward, dA, Z, mistaken, message: str, what: str) -> None:
    """Pass on the reference; fail with ``message`` on ``mistaken``; else plainly."""
    got = _on_copies(relu_backward, dA, Z, name="relu_backward")
    expected = ref_relu_backward(dA, Z)
    if _matches(got, expected):
        return
    if _matches(got, mistaken):
        raise CheckFailure(message)
    _plain_mismatch(got, expected, what)


@q.case("passes dA where Z > 0 and blocks it where Z < 0", kind="mistake",
        hint="Keep the gradient where the forward input was positive (Z > 0), not "
             "where it was negative.")
def _(relu_backward):
    Z = np.array([[1.5, -2.0, 0.3], [-0.1, 4.0, -3.0]])
    dA = np.array([[0.7, 0.2, 0.4], [0.9, 0.6, 0.8]])
    _relu_mistake(relu_backward, dA, Z, dA * (Z < 0),
                  "the result keeps dA where Z < 0 and zeroes it where Z > 0: the "
                  "mask is inverted.", "relu_backward(dA, Z)")


@q.case("the mask comes from the input Z, not from the sign of dA", kind="mistake",
        hint="Mask with where the ReLU was active in the forward pass (Z > 0), not "
             "with dA > 0: a negative gradient through an active unit must pass.")
def _(relu_backward):
    Z = np.array([[1.0, 2.0, 3.0]])
    dA = np.array([[-0.5, -1.0, 2.0]])
    _relu_mistake(relu_backward, dA, Z, dA * (dA > 0),
                  "with every Z > 0, the negative entries of dA were blocked: the "
                  "mask was taken from dA, not from Z.",
                  "relu_backward(dA, Z) with every Z > 0")


@q.case("multiplies dA by the mask (chain rule), not just the mask", kind="mistake",
        hint="Return the local derivative (the 0/1 mask) times the upstream gradient "
             "dA, not the mask alone.")
def _(relu_backward):
    Z = np.array([[0.5, -0.5], [2.0, 1.0]])
    dA = np.array([[3.0, 7.0], [-2.0, 0.25]])
    _relu_mistake(relu_backward, dA, Z, (Z > 0).astype(float),
                  "the result is the 0/1 mask itself: dA was not multiplied in.",
                  "relu_backward(dA, Z)")


@q.case("at exactly Z = 0 the slope is 0 (Z > 0, not Z >= 0)", kind="mistake",
        hint="Use the strict comparison: at Z = 0 we take the slope 0, as PyTorch "
             "does (>= takes 1).")
def _(relu_backward):
    Z = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
    dA = np.array([[5.0, 1.0, 1.0], [1.0, -2.0, 3.0]])
    _relu_mistake(relu_backward, dA, Z, dA * (Z >= 0),
                  "where Z is exactly 0 the gradient passed: the slope at 0 is taken "
                  "as 1.",
                  "relu_backward(dA, Z) where some Z are exactly 0")


@q.case("does not modify dA in place", kind="property",
        hint="Build a new array instead of zeroing entries of dA: the caller still "
             "owns dA.")
def _(relu_backward):
    dA, Z = _relu_inputs(3, (4, 6))
    call(relu_backward, dA, Z, name="relu_backward")


# ============================================================ 02.softmax_cross_entropy
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


# =================================================================== 02.gradient_check
q = question("02.gradient_check", "Numerical gradient by central differences",
             answers=["numerical_gradient"], timeout=5)


def sum_of_cubes(x):
    """f(x) = sum(x**3); its central difference 3x^2 + eps^2 differs for every eps."""
    return float((x ** 3).sum())


def sum_of_sines(x):
    """f(x) = sum(sin(x)); its central difference is cos(x) sin(eps) / eps."""
    return float(np.sin(x).sum())


_W23 = np.arange(6.0).reshape(2, 3) - 2.5  # (2, 3)


def weighted_cubes(x):
    """f(x) = sum(W * x**3) for a fixed (2, 3) W."""
    return float((_W23 * x ** 3).sum())


def weighted_squares(x):
    """f(x) = sum(W * x**2) for a fixed (2, 3) W."""
    return float((_W23 * x ** 2).sum())


_W4 = np.array([2.0, -1.0, 0.5, 3.0])


def linear(x):
    """f(x) = w . x for a fixed w: every finite difference of it is exact."""
    return float(_W4 @ x)


def _gradient(numerical_gradient, f, x, eps, positional: bool = False):
    """The learner's numerical gradient of f at a copy of x (x is checked elsewhere)."""
    x = np.array(x, dtype=np.float64)
    if positional:
        return call(numerical_gradient, f, x, eps, check_mutation=False,
                    name="numerical_gradient")
    return call(numerical_gradient, f, x, eps=eps, check_mutation=False,
                name="numerical_gradient")


def _central(f, x, eps):
    """The reference central difference of f at (a float64 copy of) x."""
    return ref_numerical_gradient(f, np.array(x, dtype=np.float64), eps)


_NG_HINT = ("For each index i of x: f at x with x[i] raised by eps, minus f at x with "
            "x[i] lowered by eps, over the whole step 2 eps; use the eps argument, "
            "and put x[i] back.")


@q.case("f(x) = sum(x**3) at a vector, eps = 0.05, against the reference", kind="core",
        hint=_NG_HINT)
def _(numerical_gradient):
    x = [1.0, -1.5, 2.0]
    got = _gradient(numerical_gradient, sum_of_cubes, x, 0.05)
    expect_close(got, _central(sum_of_cubes, x, 0.05), rtol=1e-7, atol=1e-9,
                 what="numerical_gradient(sum_of_cubes, x, eps=0.05)")


@q.case("f(x) = sum(W * x**3) at a (2, 3) array, eps = 0.1, against the reference",
        kind="core", hint=_NG_HINT)
def _(numerical_gradient):
    x = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]
    got = _gradient(numerical_gradient, weighted_cubes, x, 0.1)
    expect_close(got, _central(weighted_cubes, x, 0.1), rtol=1e-7, atol=1e-9,
                 what="numerical_gradient(weighted_cubes, x, eps=0.1) for x of shape "
                      "(2, 3)")


@q.case("f(x) = sum(sin(x)) at a vector of 4, eps = 0.2 given by position", kind="core",
        hint=_NG_HINT)
def _(numerical_gradient):
    x = [0.1, -0.5, 0.7, 1.3]
    got = _gradient(numerical_gradient, sum_of_sines, x, 0.2, positional=True)
    expect_close(got, _central(sum_of_sines, x, 0.2), rtol=1e-7, atol=1e-9,
                 what="numerical_gradient(sum_of_sines, x, 0.2)")


@q.case("returns an array shaped like x", kind="property",
        hint="Fill one entry per index of x, and return an array with x's shape (x "
             "may have any number of axes).")
def _(numerical_gradient):
    got = _gradient(numerical_gradient, weighted_squares, np.ones((2, 3)), 1e-3)
    expect_shape(got, (2, 3),
                 what="numerical_gradient(weighted_squares, x) for x of shape (2, 3)")


def _ng_verdict(got, expected, mistakes: dict, what: str, rtol=1e-7, atol=1e-9) -> None:
    """Pass on ``expected``; fail with the message of the first mistake ``got`` equals;
    else plainly."""
    if _matches(got, expected, rtol, atol):
        return
    for message, mistaken in mistakes.items():
        if _matches(got, mistaken, rtol, atol):
            raise CheckFailure(message)
    _plain_mismatch(got, expected, what, rtol, atol)


@q.case("uses the eps it is given (not a fixed step)", kind="mistake",
        hint="Perturb x[i] by the eps argument of the function; a step written as a "
             "number inside it ignores what the caller asks for.")
def _(numerical_gradient):
    x = np.array([0.5, -1.0, 1.5, 2.0])
    got = _gradient(numerical_gradient, sum_of_cubes, x, 0.1)
    exact = 3 * x ** 2
    if _matches(got, _central(sum_of_cubes, x, 0.1)):
        return
    if _matches(got, exact, rtol=0.0, atol=1e-4):
        raise CheckFailure("numerical_gradient(sum_of_cubes, x, eps=0.1) returned "
                           "3x^2 to within 1e-4, the central difference of a much "
                           "smaller step; with eps = 0.1 it is 3x^2 + eps^2 = 3x^2 + "
                           "0.01. The eps argument was not used.")
    _plain_mismatch(got, _central(sum_of_cubes, x, 0.1),
                    "numerical_gradient(sum_of_cubes, x, eps=0.1)")


@q.case("divides by 2*eps: exact for a linear function", kind="mistake",
        hint="The central difference spans the whole step from x - eps to x + eps, 2 "
             "eps: divide by all of it (without parentheses, a / 2 * eps divides by 2 "
             "and multiplies by eps).")
def _(numerical_gradient):
    x = [0.3, -0.7, 1.1, 0.0]
    got = _gradient(numerical_gradient, linear, x, 1e-3)
    _ng_verdict(got, _W4, {
        "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x is 2w, twice the "
        "gradient: f(x + eps) - f(x - eps) was divided by eps instead of 2 eps.":
        2 * _W4,
        "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x is w / 2, half the "
        "gradient: the difference was divided by 4 eps.": _W4 / 2,
        "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x is w times eps^2 = "
        "1e-6 w: the difference was divided by 2 and then multiplied by eps (in "
        "a / 2 * eps the product comes after the division).": _W4 * 1e-6,
    }, "numerical_gradient(linear, x, eps=1e-3) for f(x) = w . x",
        rtol=1e-6, atol=1e-12)


def _one_sided(f, x, eps, forward: bool):
    """The forward (or backward) difference of f at x, for every index of x."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x)) / eps if forward else (f(x) - f(x - step)) / eps
    return grad


@q.case("central, not forward difference: error O(eps^2) on sum(x^3)", kind="mistake",
        hint="Evaluate f on both sides of x, at x + eps and at x - eps, not at x + "
             "eps and x: the central difference's error shrinks like eps^2, a "
             "one-sided one only like eps.")
def _(numerical_gradient):
    x = [1.0, -1.5, 2.0]
    got = _gradient(numerical_gradient, sum_of_cubes, x, 1e-2)
    message = ("numerical_gradient(sum_of_cubes, x, eps=1e-2) is the {} difference, "
               "which is off by about 3 x eps; the central difference is off by only "
               "eps^2.")
    _ng_verdict(got, _central(sum_of_cubes, x, 1e-2), {
        message.format("forward"): _one_sided(sum_of_cubes, x, 1e-2, forward=True),
        message.format("backward"): _one_sided(sum_of_cubes, x, 1e-2, forward=False),
    }, "numerical_gradient(sum_of_cubes, x, eps=1e-2)", rtol=1e-7, atol=1e-8)


def _by_rows(f, x, eps):
    """What a loop over range(len(x)) computes: a whole row perturbed at once."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in range(x.shape[0]):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


@q.case("every coordinate of a 2-D x, not one row at a time", kind="mistake",
        hint="Loop over every index of x, not over its rows: range(len(x)) gives "
             "whole rows of a 2-D x (np.ndindex gives every index of an array of any "
             "shape).")
def _(numerical_gradient):
    x = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]
    got = _gradient(numerical_gradient, weighted_squares, x, 1e-5)
    _ng_verdict(got, _central(weighted_squares, x, 1e-5), {
        "for x of shape (2, 3), each entry of the result holds the sum of its row's "
        "partial derivatives: a whole row of x was perturbed at once.":
        _by_rows(weighted_squares, x, 1e-5),
    }, "numerical_gradient(weighted_squares, x) for x of shape (2, 3)",
        rtol=1e-5, atol=1e-7)


@q.case("leaves x as it was (every perturbed entry restored)", kind="property",
        hint="Save each entry before perturbing it and assign the saved value back "
             "afterwards (or perturb a copy of x).")
def _(numerical_gradient):
    original = np.array([0.1, -0.5, 0.7, 1.3])
    x = original.copy()
    call(numerical_gradient, sum_of_sines, x, eps=1e-5, check_mutation=False,
         name="numerical_gradient")
    if np.array_equal(x, original):
        return
    drift = float(np.max(np.abs(x - original)))
    if drift < 1e-12:
        raise CheckFailure(f"x changed by {drift:.1e}: raising x[i] by eps, lowering "
                           "it by 2 eps and raising it by eps again does not come "
                           "back exactly to the old value in floating point (each "
                           "step rounds).")
    raise CheckFailure(f"x changed in place (by up to {drift:.3g}): an entry was left "
                       "perturbed.")


# ======================================================================== 02.train_mlp
q = question("02.train_mlp", "Make it train: one SGD step of a two-layer MLP",
             answers=["train_step"], timeout=10)


class _Params(dict):
    """The parameter dict, shown in messages as one short line: its keys."""

    def __repr__(self) -> str:
        return "params{" + ", ".join(self) + "}"


def _mlp_setup(seed=0, B=16, D=12, H=20, C=4):
    """Seeded parameters of a D-H-C ReLU network and a batch (X, y) of B examples."""
    rng = np.random.default_rng(seed)
    params = _Params({
        "W1": rng.standard_normal((D, H)) * np.sqrt(2 / D),  # He init
        "b1": rng.standard_normal(H) * 0.1,
        "W2": rng.standard_normal((H, C)) * np.sqrt(2 / H),
        "b2": rng.standard_normal(C) * 0.1,
    })
    X, y = rng.standard_normal((B, D)), rng.integers(0, C, B)
    return params, X, y


def _ref_loss_and_grads(params, X, y, mask: bool = True):
    """The reference forward and backward (``mask=False``: the ReLU mask forgotten)."""
    Z1 = X @ params["W1"] + params["b1"]  # (B, H)
    A1 = np.maximum(Z1, 0)
    logits = A1 @ params["W2"] + params["b2"]  # (B, C)
    loss, dlogits = ref_softmax_cross_entropy(logits, y)
    dA1, dW2, db2 = ref_linear_backward(dlogits, A1, params["W2"])
    dZ1 = ref_relu_backward(dA1, Z1) if mask else dA1
    _, dW1, db1 = ref_linear_backward(dZ1, X, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _ref_step(params, X, y, lr, mask: bool = True, sign: float = 1.0):
    """(loss, the parameters after one reference step), ``params`` left as they are."""
    loss, grads = _ref_loss_and_grads(params, X, y, mask)
    return loss, {k: params[k] - sign * lr * grads[k] for k in params}


def _step(train_step, params, X, y, lr):
    """One call of the learner's step (it changes params, as it should)."""
    return call(train_step, params, X, y, lr, check_mutation=False, name="train_step")


def _params_are(params, expected, rtol=1e-7, atol=1e-10) -> bool:
    """Does every parameter equal ``expected``'s (never raises)?"""
    return all(_matches(params.get(k), expected[k], rtol, atol) for k in expected)


def _expect_params(params, expected, what: str, plain: bool = False) -> None:
    """Every parameter against ``expected``, the last layer first (``plain``: basic)."""
    compare = _plain_mismatch if plain else expect_close
    for k in ("W2", "b2", "W1", "b1"):
        compare(params.get(k), expected[k], rtol=1e-7, atol=1e-10,
                what=f"params[{k!r}] {what}")


_STEP_HINT = ("Check each piece against the question that taught it: the loss and "
              "dlogits (Question 6), both linear layers (Question 4), the ReLU "
              "between them (Question 5); then move every parameter against its own "
              "gradient, scaled by lr.")


@q.case("the loss it returns, on a batch of 16, against the reference", kind="core",
        hint="Return the loss of this batch's forward pass, the mean softmax "
             "cross-entropy of Question 6, as one number computed before the "
             "parameters change.")
def _(train_step):
    params, X, y = _mlp_setup(0)
    expected, _ = _ref_loss_and_grads(params, X, y)
    loss = _step(train_step, params, X, y, 0.1)
    expect_close(as_number(loss, "the loss train_step returned"), expected, rtol=1e-7,
                 what="the loss train_step returned")


@q.case("one step with lr = 0.05: every parameter, against the reference step",
        kind="core", hint=_STEP_HINT)
def _(train_step):
    params, X, y = _mlp_setup(3)
    _, expected = _ref_step(params, X, y, 0.05)
    _step(train_step, params, X, y, 0.05)
    _expect_params(params, expected, "after one step (lr = 0.05)")


@q.case("two steps in a row with lr = 0.2 on another network (B=8, D=5, H=7, C=3)",
        kind="core", hint=_STEP_HINT)
def _(train_step):
    params, X, y = _mlp_setup(5, B=8, D=5, H=7, C=3)
    for n in (1, 2):
        _, expected = _ref_step(params, X, y, 0.2)
        _step(train_step, params, X, y, 0.2)
        _expect_params(params, expected, f"after step {n} (lr = 0.2)")


@q.case("returns the loss computed before the update", kind="mistake",
        hint="Keep the loss of the forward pass and return it: the loss after the "
             "update belongs to the next step.")
def _(train_step):
    params, X, y = _mlp_setup(1)
    before, after = _ref_step(params, X, y, 0.1)
    after_loss, _ = _ref_loss_and_grads(after, X, y)
    loss = _step(train_step, params, X, y, 0.1)
    loss = as_number(loss, "the loss train_step returned")
    if _matches(loss, before):
        return
    if _matches(loss, after_loss):
        got, expected = fmt_pair(loss, before)
        raise CheckFailure(f"train_step returned {got}, the loss after its "
                           "update; the loss of the batch before the update is "
                           f"{expected}.")
    _plain_mismatch(loss, before, "the loss train_step returned")


@q.case("one step lowers the loss on a seeded batch", kind="mistake",
        hint="Step against the gradient: subtract lr times the gradient (adding it "
             "climbs the loss).")
def _(train_step):
    params, X, y = _mlp_setup(1)
    before, _ = _ref_loss_and_grads(params, X, y)
    _, uphill = _ref_step(params, X, y, 0.1, sign=-1.0)
    _step(train_step, params, X, y, 0.1)
    if _params_are(params, uphill):
        after, _ = _ref_loss_and_grads(params, X, y)
        was, now = fmt_pair(before, after)
        raise CheckFailure(f"the loss went from {was} to {now} after one step: every "
                           "parameter moved along its gradient, uphill.")
    try:
        after, _ = _ref_loss_and_grads(params, X, y)
    except Exception:
        raise _basic("after train_step, params no longer holds arrays the network can "
                     "use.") from None
    if not after < before:
        was, now = fmt_pair(before, after)
        raise _basic(f"the loss went from {was} to {now} after one step (lr = 0.1); it "
                     "should go down.")


@q.case("updates all four parameters, in the dict", kind="mistake",
        hint="Update the arrays the dict holds (in place, or by storing the new array "
             "under the same key): assigning to a local name such as W1 only rebinds "
             "the name, and the dict keeps the old array.")
def _(train_step):
    params, X, y = _mlp_setup(2)
    before = {k: v.copy() for k, v in params.items()}
    _step(train_step, params, X, y, 0.1)
    unchanged = [k for k in ("W1", "b1", "W2", "b2")
                 if isinstance(params.get(k), np.ndarray)
                 and np.array_equal(params[k], before[k])]
    if unchanged:
        raise CheckFailure(f"after train_step, params[{unchanged[0]!r}] is unchanged "
                           f"(unchanged: {', '.join(unchanged)}).")


@q.case("the ReLU mask between the layers (Z1 > 0) is applied", kind="mistake",
        hint="Between the two linear layers the gradient passes the ReLU: multiply "
             "dA1 by its mask (relu_backward of Question 5) before the first layer's "
             "backward.")
def _(train_step):
    params, X, y = _mlp_setup(3)
    _, expected = _ref_step(params, X, y, 0.05)
    _, no_mask = _ref_step(params, X, y, 0.05, mask=False)
    _step(train_step, params, X, y, 0.05)
    if _params_are(params, expected):
        return
    if _params_are(params, no_mask):
        raise CheckFailure("params['W1'] and params['b1'] moved by the gradient of a "
                           "network without its ReLU: the gradient was not masked "
                           "where Z1 <= 0.")
    _expect_params(params, expected, "after one step (lr = 0.05)", plain=True)


@q.case("100 steps fit a batch of 32 examples (loss below 0.05)", kind="mistake",
        hint="Each call must start from the parameters as the previous call left "
             "them: nothing cached from an earlier call, nothing reset.")
def _(train_step):
    params, X, y = _mlp_setup(4, B=32, D=20, H=64, C=5)
    _, expected = _ref_step(params, X, y, 0.5)
    _step(train_step, params, X, y, 0.5)
    _expect_params(params, expected, "after the first of 100 steps (lr = 0.5)",
                   plain=True)
    for _ in range(99):
        _step(train_step, params, X, y, 0.5)
    loss, _ = _ref_loss_and_grads(params, X, y)
    expect_finite(loss, what="the loss after 100 steps")
    if not loss < 0.05:
        raise CheckFailure("after 100 steps of lr = 0.5 the loss on the 32 examples "
                           f"is {loss:.4g}, though the first step was right; a correct "
                           "step brings it below 0.05.")
