"""What the checks of lesson 02's questions share."""
from __future__ import annotations

import numpy as np

from ...asserts import CheckFailure, _short, call, describe_call
from .._shared import _basic, _num, _parts, comparisons  # noqa: F401 - for the checks

_matches, _plain_mismatch = comparisons(rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ shared helpers
def _on_copies(fn, *args, name: str):
    """Call learner code on copies of the arrays: a change in place is the business of
    the property case that looks for it, and never spoils the values compared here."""
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    return call(fn, *copies, check_mutation=False, name=name)


# ------------------------------------------------------------- the learner's Value
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


def _op(text: str, fn, *args, method: str = "the operation"):
    """Run one operation of the learner's Value (``text`` names it in messages,
    ``method`` the method that made the node); the result must be a node."""
    describe_call.add(text)
    out = fn(*args)
    describe_call.returned(text, out)
    if out is None:
        raise _basic(f"{text} returned None: {method} must end by returning its output "
                     "node.")
    if not all(hasattr(out, name) for name in ("data", "grad", "_backward")):
        raise _basic(f"{text} returned {_short(out)} (a {type(out).__name__}); it "
                     "should return a new Value, the output node of the operation.",
                     problem="type")
    return out


def _div(Value, a, b, text: str):
    """a / b with the learner's __truediv__ (even where a is another class's node)."""
    return _op(text, lambda: Value.__truediv__(a, b), method="__truediv__")


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


# ------------------------------------------------------------ NumPy answers
def _verdict(got, expected, mistaken, message: str, what: str, rtol: float = 1e-7,
             atol: float = 1e-9) -> None:
    """Pass on ``expected``; fail with ``message`` (the case's hint shown) on
    ``mistaken``; fail plainly on any other value."""
    if _matches(got, expected, rtol, atol):
        return
    if mistaken is not None and _matches(got, mistaken, rtol, atol):
        raise CheckFailure(message)
    _plain_mismatch(got, expected, what, rtol, atol)
