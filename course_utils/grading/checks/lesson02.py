"""Checks of lesson 02 (backpropagation): the scalar engine, topological order, and NumPy backprop.

The oracles are ``course_utils.autograd`` and ``course_utils.mlp_numpy``, the code the lesson
teaches. Every typical mistake has its own case, and that case's hint names the mistake.
"""
from __future__ import annotations

import math

import numpy as np

from ...autograd import Value as RefValue
from ...autograd import topological_order as ref_topological_order
from ...mlp_numpy import (linear_backward as ref_linear_backward, relu_backward as ref_relu_backward,
                          softmax_cross_entropy as ref_softmax_cross_entropy)
from ..asserts import CheckFailure, call, expect_close, expect_equal, expect_finite, expect_shape, expect_type
from ..registry import question

# =========================================================================== 02.value_mul_backward
q = question("02.value_mul_backward", "The local derivatives of a * b", answers=["Value"])


def _product(a, b, what):
    """a * b, failing with a clear message when __mul__ forgot to return its output node."""
    out = a * b
    if out is None:
        raise CheckFailure(f"{what} returned None: __mul__ must end with `return out`.")
    return out


def _mul_graph(Value, a_data=2.0, b_data=-3.0, out_grad=1.0):
    a, b = call(Value, a_data, name="Value"), call(Value, b_data, name="Value")
    out = _product(a, b, f"Value({a_data}) * Value({b_data})")
    out.grad = out_grad
    call(out._backward, name="out._backward")
    return a, b, out


@q.case("forward: Value(2.0) * Value(-3.0) has data -6.0", hint="__mul__ computes self.data * other.data.")
def _(Value):
    a, b = Value(2.0), Value(-3.0)
    out = _product(a, b, "Value(2.0) * Value(-3.0)")
    expect_close(out.data, -6.0, what="(Value(2.0) * Value(-3.0)).data")


@q.case("the output's _backward is attached (out._backward = _backward)",
        hint="Defining `def _backward(): ...` inside __mul__ is not enough: attach it with "
             "`out._backward = _backward` before `return out`, or backward() never calls it.")
def _(Value):
    a, b, out = _mul_graph(Value)
    if a.grad == 0.0 and b.grad == 0.0:
        raise CheckFailure("after out = a * b (a=2, b=-3), out.grad = 1 and out._backward(), a.grad and b.grad "
                           "are both still 0: out._backward did nothing.")


@q.case("local derivatives: d(a*b)/da = b and d(a*b)/db = a",
        hint="a's gradient uses b's value and b's gradient uses a's value: self.grad += other.data * out.grad.")
def _(Value):
    a, b, _ = _mul_graph(Value)
    expect_close(a.grad, -3.0, what="a.grad after out = a * b (a=2, b=-3), out.grad = 1, out._backward()")
    expect_close(b.grad, 2.0, what="b.grad after out = a * b (a=2, b=-3), out.grad = 1, out._backward()")


@q.case("chain rule: the local derivative is multiplied by out.grad",
        hint="Multiply by out.grad, the gradient that arrives from above (the chain rule).")
def _(Value):
    a, b, _ = _mul_graph(Value, out_grad=5.0)
    expect_close(a.grad, -15.0, what="a.grad after out = a * b (a=2, b=-3), out.grad = 5, out._backward()")
    expect_close(b.grad, 10.0, what="b.grad after out = a * b (a=2, b=-3), out.grad = 5, out._backward()")


@q.case("a node used twice: d(a*a)/da = 2a (gradients accumulate with +=)",
        hint="Use `self.grad += ...`, not `self.grad = ...`: in a * a, the second assignment overwrites "
             "the first contribution, so a gets a instead of 2a.")
def _(Value):
    a = call(Value, 3.0, name="Value")
    out = _product(a, a, "Value(3.0) * itself")
    out.grad = 1.0
    call(out._backward, name="out._backward")
    expect_close(a.grad, 6.0, what="a.grad after out = a * a (a=3), out.grad = 1, out._backward()")


@q.case("a gradient a node already holds is kept (+=, not =)",
        hint="Add to self.grad (+=): other paths through the graph may already have put a gradient there.")
def _(Value):
    a, b = Value(2.0), Value(-3.0)
    a.grad, b.grad = 0.5, -1.0
    out = _product(a, b, "Value(2.0) * Value(-3.0)")
    out.grad = 1.0
    call(out._backward, name="out._backward")
    expect_close(a.grad, 0.5 - 3.0, what="a.grad (it held 0.5 before) after out = a * b, out._backward()")
    expect_close(b.grad, -1.0 + 2.0, what="b.grad (it held -1.0 before) after out = a * b, out._backward()")


@q.case("works with a plain number: d(a*4)/da = 4", hint="Wrap a number in a Value before multiplying "
        "(`other = other if isinstance(other, Value) else Value(other)`), as __add__ does.")
def _(Value):
    a = Value(2.0)
    out = _product(a, 4, "Value(2.0) * 4")
    out.grad = 1.0
    call(out._backward, name="out._backward")
    expect_close(out.data, 8.0, what="(Value(2.0) * 4).data")
    expect_close(a.grad, 4.0, what="a.grad after out = a * 4, out._backward()")


# =========================================================================== 02.value_tanh
q = question("02.value_tanh", "tanh: forward value and local derivative", answers=["Value"])


def _tanh_graph(Value, x, out_grad=1.0, start_grad=0.0):
    a = Value(x)
    a.grad = start_grad
    out = call(a.tanh, name=f"Value({x}).tanh")
    if out is None:
        raise CheckFailure(f"Value({x}).tanh() returned None: tanh must end with `return out`.")
    out.grad = out_grad
    call(out._backward, name="out._backward")
    return a, out


@q.case("forward: Value(0.8).tanh().data is tanh(0.8)", hint="Compute t = math.tanh(self.data) and return Value(t, ...).")
def _(Value):
    out = call(Value(0.8).tanh, name="Value(0.8).tanh")
    expect_type(out, Value, what="Value(0.8).tanh()")
    expect_close(out.data, math.tanh(0.8), what="Value(0.8).tanh().data")


@q.case("the output remembers its input (children == (a,))",
        hint="Make the output with Value(t, (self,), 'tanh'), so the graph, and topological_order, can reach a.")
def _(Value):
    a = Value(0.8)
    out = call(a.tanh, name="Value(0.8).tanh")
    children = tuple(getattr(out, "_children", ()))
    if len(children) != 1 or children[0] is not a:
        raise CheckFailure(f"out._children is {children!r}; it should be (a,), the Value tanh was called on.")


@q.case("local derivative: 1 - tanh(x)^2, not 1 - x^2",
        hint="d tanh(x)/dx = 1 - tanh(x)^2: square the output t, not the input self.data.")
def _(Value):
    a, _ = _tanh_graph(Value, 0.8)
    expect_close(a.grad, 1 - math.tanh(0.8) ** 2, what="a.grad after out = a.tanh() (a=0.8), out.grad = 1, out._backward()")


@q.case("chain rule: multiplied by out.grad", hint="Multiply the local derivative by out.grad (the chain rule).")
def _(Value):
    a, _ = _tanh_graph(Value, -0.3, out_grad=2.5)
    expect_close(a.grad, 2.5 * (1 - math.tanh(-0.3) ** 2),
                 what="a.grad after out = a.tanh() (a=-0.3), out.grad = 2.5, out._backward()")


@q.case("accumulates: a gradient a already holds is kept (+=)",
        hint="Use `self.grad += ...`, not `=`: a node used twice collects a gradient from each use.")
def _(Value):
    a, _ = _tanh_graph(Value, 0.5, start_grad=1.0)
    expect_close(a.grad, 1.0 + (1 - math.tanh(0.5) ** 2),
                 what="a.grad (it held 1.0 before) after out = a.tanh() (a=0.5), out._backward()")


# =========================================================================== 02.topological_order
q = question("02.topological_order", "Topological order of a graph", answers=["topological_order"])


def _shared_graph():
    """x is used three times and y twice; returns (root, every node)."""
    x, w = RefValue(0.5, label="x"), RefValue(-1.5, label="w")
    y = x * w + x
    z = (y * y + x).tanh() + y
    return z, ref_topological_order(z)


def _order_of(topological_order, root):
    got = call(topological_order, root, name="topological_order")
    if got is None:
        raise CheckFailure("topological_order returned None: did you forget to `return` the list?")
    try:
        return list(got)
    except TypeError:
        raise CheckFailure(f"topological_order should return a list of nodes, not a {type(got).__name__}.") from None


@q.case("a single node: [node]", hint="Start the search at the root and append it after its (zero) children.")
def _(topological_order):
    v = RefValue(1.0)
    got = _order_of(topological_order, v)
    if len(got) != 1 or got[0] is not v:
        raise CheckFailure(f"topological_order(v) for a lone node v returned {got!r}, expected [v].")


@q.case("every node of the graph is listed",
        hint="Visit every child of every node, recursively (not only the root's children).")
def _(topological_order):
    root, nodes = _shared_graph()
    got = _order_of(topological_order, root)
    missing = [n for n in nodes if not any(g is n for g in got)]
    if missing:
        raise CheckFailure(f"{len(missing)} of the {len(nodes)} nodes are missing from the order, e.g. {missing[0]!r}.")


@q.case("each node appears exactly once, even when used several times",
        hint="Keep a set of visited nodes and return early for a node seen before.")
def _(topological_order):
    root, nodes = _shared_graph()
    got = _order_of(topological_order, root)
    seen: dict[int, int] = {}
    for g in got:
        seen[id(g)] = seen.get(id(g), 0) + 1
    repeated = [g for g in got if seen[id(g)] > 1]
    if repeated:
        raise CheckFailure(f"{repeated[0]!r} appears {seen[id(repeated[0])]} times in the order "
                           f"({len(got)} entries for a graph of {len(nodes)} nodes).")


@q.case("children come before the nodes that use them; the root is last",
        hint="Append a node only after visiting all its children (post-order), and do not reverse the list: "
             "backward() reverses it.")
def _(topological_order):
    root, _ = _shared_graph()
    got = _order_of(topological_order, root)
    position = {id(g): i for i, g in enumerate(got)}
    for node in got:
        for child in node._children:
            if id(child) in position and position[id(child)] > position[id(node)]:
                raise CheckFailure(f"{child!r} comes after {node!r}, which uses it (children must come first).")
    if not got or got[-1] is not root:
        raise CheckFailure(f"the last node is {got[-1] if got else None!r}; the root should be last.")


@q.case("a chain of 40 shared diamonds finishes at once (no node walked twice)",
        hint="Without a visited set a node shared by two parents is walked twice, and 40 diamonds "
             "make 2^40 walks: check `visited` before recursing.", timeout=5)
def _(topological_order):
    x = RefValue(0.1)
    node = x
    for _ in range(40):
        node = node + node * 0.5  # the previous node is used twice
    got = _order_of(topological_order, node)
    expect_equal(len(got), 1 + 3 * 40, what="the number of nodes in the order")


@q.case("calling _backward in reversed order gives the right gradients",
        hint="backward() sets root.grad = 1 and calls node._backward() for node in reversed(order).")
def _(topological_order):
    root, nodes = _shared_graph()
    order = _order_of(topological_order, root)
    root.grad = 1.0
    for node in reversed(order):
        node._backward()
    got = {n.label: n.grad for n in nodes if n.label}
    ref_root, ref_nodes = _shared_graph()
    ref_root.backward()
    expected = {n.label: n.grad for n in ref_nodes if n.label}
    for label in ("x", "w"):
        expect_close(got[label], expected[label], rtol=1e-9,
                     what=f"{label}.grad after backpropagating in reversed(topological_order(root))")


# =========================================================================== 02.linear_backward
q = question("02.linear_backward", "Backward of a linear layer Z = X W + b", answers=["linear_backward"])

# B, D_in, D_out all different, so every transpose or wrong axis shows in a shape.
_B, _DIN, _DOUT = 5, 3, 4


def _linear_inputs(seed=0):
    rng = np.random.default_rng(seed)
    dZ = rng.standard_normal((_B, _DOUT))  # (B, D_out)
    X = rng.standard_normal((_B, _DIN))  # (B, D_in)
    W = rng.standard_normal((_DIN, _DOUT))  # (D_in, D_out)
    return dZ, X, W


def _linear_call(linear_backward, seed=0):
    dZ, X, W = _linear_inputs(seed)
    got = call(linear_backward, dZ, X, W, name="linear_backward")
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise CheckFailure(f"linear_backward should return a tuple (dX, dW, db); it returned {type(got).__name__}"
                           + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "") + ".")
    return got, ref_linear_backward(dZ, X, W)


@q.case("returns a tuple (dX, dW, db)", hint="End with `return dX, dW, db`, in that order.")
def _(linear_backward):
    _linear_call(linear_backward)


@q.case("dX = dZ W^T, shape (B, D_in) like X",
        hint="dX = dZ @ W.T: (B, D_out) @ (D_out, D_in) -> (B, D_in). dZ @ W only works when W is square.")
def _(linear_backward):
    (dX, _, _), (rX, _, _) = _linear_call(linear_backward)
    expect_shape(dX, rX.shape, what="dX")
    expect_close(dX, rX, what="dX")


@q.case("dW = X^T dZ, shape (D_in, D_out) like W",
        hint="dW = X.T @ dZ: (D_in, B) @ (B, D_out) -> (D_in, D_out). dZ.T @ X is its transpose, (D_out, D_in).")
def _(linear_backward):
    (_, dW, _), (_, rW, _) = _linear_call(linear_backward)
    expect_shape(dW, rW.shape, what="dW")
    expect_close(dW, rW, what="dW")


@q.case("dW is not divided by B (the 1/B of the mean is already in dZ)",
        hint="Do not divide dW (or db) by the batch size: dZ = dL/dZ already carries the 1/B of the mean loss, "
             "so dW = X.T @ dZ with no extra factor.")
def _(linear_backward):
    (_, dW, _), (_, rW, _) = _linear_call(linear_backward, seed=3)
    if np.shape(dW) == rW.shape and np.allclose(dW, rW / _B, rtol=1e-6, atol=1e-12):
        raise CheckFailure(f"dW is X.T @ dZ divided by B = {_B}: it is {_B} times too small.")


@q.case("db is summed over the batch axis: shape (D_out,) like b",
        hint="db = dZ.sum(axis=0). Summing over axis=1, keeping dims, or not summing at all gives the wrong shape.")
def _(linear_backward):
    (_, _, db), _ = _linear_call(linear_backward)
    expect_shape(db, (_DOUT,), what="db")


@q.case("db is the batch sum, not the mean",
        hint="Sum over the batch, do not average: the 1/B of the mean loss is already inside dZ.")
def _(linear_backward):
    (_, _, db), (_, _, rb) = _linear_call(linear_backward, seed=1)
    expect_close(db, rb, what="db")


@q.case("leaves dZ, X and W unchanged", hint="Build new arrays; do not write into dZ, X or W (e.g. no `dZ *= ...`).")
def _(linear_backward):
    _linear_call(linear_backward, seed=2)  # call() fails if an input changed


# =========================================================================== 02.relu_backward
q = question("02.relu_backward", "Backward of ReLU", answers=["relu_backward"])


def _relu_check(relu_backward, dA, Z, what):
    got = call(relu_backward, dA, Z, name="relu_backward")
    expect_close(got, ref_relu_backward(dA, Z), what=what)


@q.case("passes dA where Z > 0 and blocks it where Z < 0",
        hint="dZ = dA * (Z > 0): the ReLU's slope is 1 where its input was positive, 0 elsewhere.")
def _(relu_backward):
    Z = np.array([[1.5, -2.0, 0.3], [-0.1, 4.0, -3.0]])
    dA = np.array([[0.7, 0.2, 0.4], [0.9, 0.6, 0.8]])
    _relu_check(relu_backward, dA, Z, "relu_backward(dA, Z)")


@q.case("the mask comes from the input Z, not from the sign of dA",
        hint="Mask with Z > 0 (where the ReLU was active in the forward pass), not with dA > 0: "
             "a negative gradient through an active unit must pass.")
def _(relu_backward):
    Z = np.array([[1.0, 2.0, 3.0]])
    dA = np.array([[-0.5, -1.0, 2.0]])
    _relu_check(relu_backward, dA, Z, "relu_backward(dA, Z) with every Z > 0")


@q.case("multiplies dA by the mask (chain rule), not just the mask",
        hint="Return dA * (Z > 0): the local derivative (the mask) times the upstream gradient dA.")
def _(relu_backward):
    Z = np.array([[0.5, -0.5], [2.0, 1.0]])
    dA = np.array([[3.0, 7.0], [-2.0, 0.25]])
    _relu_check(relu_backward, dA, Z, "relu_backward(dA, Z)")


@q.case("at exactly Z = 0 the slope is 0 (Z > 0, not Z >= 0)",
        hint="Use the strict mask Z > 0: at Z = 0 we take the slope 0, as PyTorch does (Z >= 0 takes 1).")
def _(relu_backward):
    Z = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
    dA = np.array([[5.0, 1.0, 1.0], [1.0, -2.0, 3.0]])
    _relu_check(relu_backward, dA, Z, "relu_backward(dA, Z) where some Z are exactly 0")


@q.case("does not modify dA in place",
        hint="Build a new array (dA * (Z > 0) or np.where) instead of `dA[Z <= 0] = 0`: the caller still owns dA.")
def _(relu_backward):
    rng = np.random.default_rng(0)
    Z, dA = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    call(relu_backward, dA, Z, name="relu_backward")


# =========================================================================== 02.softmax_cross_entropy
q = question("02.softmax_cross_entropy", "Softmax cross-entropy: stable forward and backward",
             answers=["softmax_cross_entropy"])


def _sce_call(softmax_cross_entropy, logits, y):
    got = call(softmax_cross_entropy, logits, y, name="softmax_cross_entropy")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure("softmax_cross_entropy should return a tuple (loss, dlogits); "
                           f"it returned {type(got).__name__}.")
    loss, dlogits = got
    if np.ndim(loss) != 0:
        raise CheckFailure(f"loss should be one number (the mean over the batch), but it has shape {np.shape(loss)}.")
    return float(loss), dlogits


@q.case("returns (loss, dlogits): a number and an array shaped like logits",
        hint="Return `loss, dlogits`: the mean loss as a float and dL/dlogits of shape (B, C).")
def _(softmax_cross_entropy):
    logits = np.random.default_rng(0).standard_normal((4, 3))
    _, dlogits = _sce_call(softmax_cross_entropy, logits, np.array([0, 2, 1, 2]))
    expect_shape(dlogits, (4, 3), what="dlogits")


@q.case("softmax normalises over the classes (axis=1, keepdims=True)",
        hint="Normalise each row (one example) over its classes: max and sum over axis=1 with keepdims=True, "
             "not over the batch axis 0.")
def _(softmax_cross_entropy):
    rng = np.random.default_rng(1)
    for B in (1, 3):  # B = C = 3: a wrong axis or missing keepdims broadcasts silently
        logits, y = rng.standard_normal((B, 3)) * 2, rng.integers(0, 3, B)
        loss, _ = _sce_call(softmax_cross_entropy, logits, y)
        ref, _ = ref_softmax_cross_entropy(logits, y)
        if not (math.isclose(loss, ref, rel_tol=1e-6) or math.isclose(loss, ref * B, rel_tol=1e-6)):
            expect_close(loss, ref, rtol=1e-6, what=f"loss for a batch of {B} (3 classes)")


@q.case("the loss is the mean over the batch, not the sum",
        hint="Average the per-example losses: .mean(), not .sum().")
def _(softmax_cross_entropy):
    rng = np.random.default_rng(2)
    logits, y = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    loss, _ = _sce_call(softmax_cross_entropy, logits, y)
    expect_close(loss, ref_softmax_cross_entropy(logits, y)[0], rtol=1e-6, what="loss")


@q.case("large logits (1000) give a finite loss and gradient: subtract the row max",
        hint="exp(1000) overflows to inf and inf/inf is NaN: subtract each row's max before exp "
             "(softmax does not change when a constant is added to a row).")
def _(softmax_cross_entropy):
    logits, y = np.array([[1000.0, 999.0, 998.0], [0.0, 1000.0, 1001.0]]), np.array([1, 2])
    with np.errstate(all="ignore"):
        loss, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    expect_finite(loss, what="loss")
    expect_finite(dlogits, what="dlogits")
    expect_close(loss, ref_softmax_cross_entropy(logits, y)[0], rtol=1e-6, what="loss")


@q.case("each row is shifted by its own maximum (rows 2000 apart stay finite)",
        hint="Subtract each row's own maximum, logits.max(axis=1, keepdims=True), not one number for the whole "
             "batch (logits.max()): a row far below the batch maximum underflows to exp(...) = 0 and log(0) = -inf.")
def _(softmax_cross_entropy):
    logits, y = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1003.0]]), np.array([0, 1])
    with np.errstate(all="ignore"):
        loss, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    expect_finite(loss, what="loss for rows [1000, 999, 998] and [-1000, -1001, -1003]")
    expect_finite(dlogits, what="dlogits for rows [1000, 999, 998] and [-1000, -1001, -1003]")
    expect_close(loss, ref_softmax_cross_entropy(logits, y)[0], rtol=1e-6, what="loss")


@q.case("a hopeless prediction gives its true loss (log-softmax, not log(softmax))",
        hint="Compute log-probabilities directly: log_softmax = shifted - log(sum(exp(shifted))). "
             "log(softmax) takes log(0) = -inf when a probability underflows to 0.")
def _(softmax_cross_entropy):
    logits, y = np.array([[800.0, 0.0, -800.0]]), np.array([2])
    with np.errstate(all="ignore"):
        loss, _ = _sce_call(softmax_cross_entropy, logits, y)
    expect_close(loss, 1600.0, rtol=1e-6, what="loss for logits [800, 0, -800] and true class 2")


@q.case("gradient for one example: softmax(z) - onehot(y)",
        hint="dL/dz = softmax(z) - onehot(y): the probabilities, minus 1 at the true class (not onehot - softmax).")
def _(softmax_cross_entropy):
    logits, y = np.array([[2.0, -1.0, 0.5, 0.0]]), np.array([2])
    _, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    expect_close(dlogits, ref_softmax_cross_entropy(logits, y)[1], rtol=1e-6, what="dlogits (B = 1)")


@q.case("gradient for a batch carries the 1/B of the mean",
        hint="Divide by the batch size B: the loss is a mean over B examples, so dL/dz = (softmax - onehot) / B.")
def _(softmax_cross_entropy):
    rng = np.random.default_rng(3)
    # Every label the same, so this case isolates the 1/B from how the one-hot is indexed (next case).
    logits, y = rng.standard_normal((6, 4)), np.full(6, 2)
    _, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    expect_close(dlogits, ref_softmax_cross_entropy(logits, y)[1], rtol=1e-6, what="dlogits (B = 6, every label 2)")


@q.case("the 1 is subtracted once per row, at its own label (i, y_i)",
        hint="Subtract the one-hot with dlogits[np.arange(B), y] -= 1 (row i, column y_i). dlogits[:, y] -= 1 "
             "subtracts 1 in every row at every label of the batch.")
def _(softmax_cross_entropy):
    rng = np.random.default_rng(5)
    logits, y = rng.standard_normal((6, 4)), np.array([0, 1, 2, 3, 3, 0])
    _, dlogits = _sce_call(softmax_cross_entropy, logits, y)
    row_sums = np.asarray(dlogits, dtype=np.float64).sum(axis=1)
    if not np.allclose(row_sums, 0.0, atol=1e-9):
        raise CheckFailure(f"the rows of dlogits should each sum to 0 (probabilities sum to 1, minus one 1), "
                           f"but they sum to {np.round(row_sums, 4).tolist()} for labels y = {y.tolist()}.")
    expect_close(dlogits, ref_softmax_cross_entropy(logits, y)[1], rtol=1e-6, what="dlogits (B = 6, mixed labels)")


@q.case("does not modify logits in place",
        hint="`logits -= logits.max(...)` changes the caller's array: write `shifted = logits - ...` instead.")
def _(softmax_cross_entropy):
    logits = np.random.default_rng(4).standard_normal((3, 4)) * 5
    _sce_call(softmax_cross_entropy, logits, np.array([3, 0, 1]))


# =========================================================================== 02.gradient_check
q = question("02.gradient_check", "Numerical gradient by central differences", answers=["numerical_gradient"])


@q.case("divides by 2*eps: exact for a linear function",
        hint="The central difference is (f(x + eps) - f(x - eps)) / (2 * eps): the step spans 2 eps.")
def _(numerical_gradient):
    w = np.array([2.0, -1.0, 0.5, 3.0])
    x = np.array([0.3, -0.7, 1.1, 0.0])
    got = call(numerical_gradient, lambda v: float(w @ v), x, eps=1e-4, check_mutation=False,
               name="numerical_gradient")
    expect_close(got, w, rtol=1e-6, atol=1e-8, what="numerical_gradient(f, x) for f(x) = w . x")


@q.case("central, not forward difference: error O(eps^2) on sum(x^3)",
        hint="Use f(x + eps) - f(x - eps), not f(x + eps) - f(x): the central difference's error shrinks like "
             "eps^2, a forward difference's only like eps.")
def _(numerical_gradient):
    x = np.array([1.0, -1.5, 2.0])
    got = call(numerical_gradient, lambda v: float((v ** 3).sum()), x, eps=1e-3, check_mutation=False,
               name="numerical_gradient")
    expect_close(got, 3 * np.array([1.0, -1.5, 2.0]) ** 2, rtol=0, atol=1e-5,
                 what="numerical_gradient(f, x, eps=1e-3) for f(x) = sum(x**3), against 3x^2")


@q.case("every coordinate of a 2-D x, result shaped like x",
        hint="Loop over every index of x (for i in np.ndindex(x.shape)) and return an array shaped like x.")
def _(numerical_gradient):
    W = np.arange(6.0).reshape(2, 3) - 2.5
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    got = call(numerical_gradient, lambda v: float((W * v ** 2).sum()), x, eps=1e-5, check_mutation=False,
               name="numerical_gradient")
    expect_shape(got, (2, 3), what="numerical_gradient(f, x) for x of shape (2, 3)")
    expect_close(got, 2 * W * np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]]), rtol=1e-5, atol=1e-7,
                 what="numerical_gradient(f, x) for f(x) = sum(W * x**2)")


@q.case("leaves x as it was (every perturbed entry restored)",
        hint="Save old = x[i] before perturbing and put it back with x[i] = old (or perturb a copy of x).")
def _(numerical_gradient):
    original = np.array([0.1, -0.5, 0.7, 1.3])
    x = original.copy()
    call(numerical_gradient, lambda v: float(np.sin(v).sum()), x, eps=1e-5, check_mutation=False,
         name="numerical_gradient")
    if np.array_equal(x, original):
        return
    drift = float(np.max(np.abs(x - original)))
    if drift < 1e-12:
        raise CheckFailure(f"x changed by {drift:.1e}: x[i] += eps; x[i] -= 2 * eps; x[i] += eps does not come back "
                           "exactly to the old value in floating point (each step rounds).")
    raise CheckFailure(f"x changed in place (by up to {drift:.3g}): an entry was left perturbed.")


# =========================================================================== 02.train_mlp
q = question("02.train_mlp", "One training step of a 2-layer MLP", answers=["train_step"], timeout=30)


def _mlp_setup(seed=0, B=16, D=12, H=20, C=4):
    rng = np.random.default_rng(seed)
    params = {
        "W1": rng.standard_normal((D, H)) * np.sqrt(2 / D),  # He init
        "b1": rng.standard_normal(H) * 0.1,
        "W2": rng.standard_normal((H, C)) * np.sqrt(2 / H),
        "b2": rng.standard_normal(C) * 0.1,
    }
    X, y = rng.standard_normal((B, D)), rng.integers(0, C, B)
    return params, X, y


def _ref_loss_and_grads(params, X, y):
    Z1 = X @ params["W1"] + params["b1"]  # (B, H)
    A1 = np.maximum(Z1, 0)
    logits = A1 @ params["W2"] + params["b2"]  # (B, C)
    loss, dlogits = ref_softmax_cross_entropy(logits, y)
    dA1, dW2, db2 = ref_linear_backward(dlogits, A1, params["W2"])
    dZ1 = ref_relu_backward(dA1, Z1)
    _, dW1, db1 = ref_linear_backward(dZ1, X, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _step(train_step, params, X, y, lr):
    return call(train_step, params, X, y, lr, check_mutation=False, name="train_step")


@q.case("returns the batch's loss, computed before the update",
        hint="Return the loss of the forward pass (a float), computed before the parameters change.")
def _(train_step):
    params, X, y = _mlp_setup(0)
    expected, _ = _ref_loss_and_grads(params, X, y)
    loss = _step(train_step, params, X, y, 0.1)
    if loss is None:
        raise CheckFailure("train_step returned None: did you forget to `return loss`?")
    expect_close(float(np.asarray(loss)), expected, rtol=1e-6, what="the loss train_step returned")


@q.case("one step lowers the loss on a seeded batch",
        hint="Step against the gradient: params[name] -= lr * grad (a + climbs the loss).")
def _(train_step):
    params, X, y = _mlp_setup(1)
    before, _ = _ref_loss_and_grads(params, X, y)
    _step(train_step, params, X, y, 0.1)
    after, _ = _ref_loss_and_grads(params, X, y)
    if not after < before:
        raise CheckFailure(f"the loss went from {before:.6g} to {after:.6g} after one step; it should go down.")


@q.case("updates all four parameters in place, in the dict",
        hint="Write `params['W1'] -= lr * dW1` for W1, b1, W2 and b2: `W1 = W1 - lr * dW1` only rebinds a "
             "local name and the dict keeps the old array.")
def _(train_step):
    params, X, y = _mlp_setup(2)
    before = {k: v.copy() for k, v in params.items()}
    _step(train_step, params, X, y, 0.1)
    unchanged = [k for k in ("W1", "b1", "W2", "b2") if np.array_equal(params[k], before[k])]
    if unchanged:
        raise CheckFailure(f"after train_step, params[{unchanged[0]!r}] is unchanged "
                           f"(unchanged: {', '.join(unchanged)}).")


@q.case("the update is exactly -lr times each gradient",
        hint="Check each gradient: (softmax - onehot)/B for the logits, dW = A^T dZ, db = dZ.sum(0), dA = dZ W^T, "
             "and the ReLU mask Z1 > 0 between the layers.")
def _(train_step):
    params, X, y = _mlp_setup(3)
    lr = 0.05
    _, grads = _ref_loss_and_grads(params, X, y)
    expected = {k: params[k] - lr * grads[k] for k in params}
    _step(train_step, params, X, y, lr)
    for k in ("W2", "b2", "W1", "b1"):
        expect_close(params[k], expected[k], rtol=1e-6, atol=1e-9, what=f"params[{k!r}] after one step (lr={lr})")


@q.case("100 steps fit a batch of 32 examples (loss below 0.05)",
        hint="If one step is right, many steps train: check that each step uses the current parameters "
             "and that nothing is reset between steps.")
def _(train_step):
    params, X, y = _mlp_setup(4, B=32, D=20, H=64, C=5)
    for _ in range(100):
        _step(train_step, params, X, y, 0.5)
    loss, _ = _ref_loss_and_grads(params, X, y)
    expect_finite(loss, what="the loss after 100 steps")
    if not loss < 0.05:
        raise CheckFailure(f"after 100 steps of lr=0.5 the loss on the 32 examples is {loss:.4g}; "
                           "a correct step brings it below 0.05.")
