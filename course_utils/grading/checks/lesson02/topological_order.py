"""Checks of 02.topological_order: Order a graph for backpropagation."""
from __future__ import annotations

from ....lessons.autograd import Value as RefValue
from ....lessons.autograd import random_expression
from ....lessons.autograd import topological_order as ref_topological_order
from ...asserts import CheckFailure, _short, call, expect_close, expect_equal
from ...registry import question
from ._common import _basic


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
