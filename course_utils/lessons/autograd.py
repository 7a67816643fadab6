"""A scalar autograd engine: ``Value`` records how it was computed and backpropagates.

Taught in lesson 02 (backpropagation), which writes this code cell by cell; the
lesson's checks use it as the reference. Shaped like karpathy/micrograd and like PyTorch
(``.data``, ``.grad``, ``.backward()``), but written for reading: every operation
computes its forward value and, a few lines below, its local derivative, so the chain
rule (Rumelhart, Hinton & Williams, 1986) is visible.

Example:
    >>> a, b = Value(2.0), Value(-3.0)
    >>> loss = a * b + a
    >>> loss.backward()
    >>> a.grad, b.grad  # d(ab + a)/da = b + 1, d(ab + a)/db = a
    (-2.0, 2.0)
"""
from __future__ import annotations

import math
import random

import numpy as np


class Value:
    """A scalar node of a computational graph: its value, its gradient, its backward."""

    def __init__(self, data, _children=(), _op: str = "", label: str = ""):
        self.data = float(data)
        self.grad = 0.0  # d(output)/d(self), filled in by backward()
        # Pushes self.grad to the children; set by the operation that made self.
        self._backward = lambda: None
        self._children = tuple(_children)  # the op's inputs (a tuple: a fixed order)
        self._op = _op  # the op's name, for drawings and repr
        self.label = label

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    # ------------------------------------------------------------ binary operations
    def __add__(self, other) -> "Value":
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            # d(a + b)/da = 1, d(a + b)/db = 1. `+=`: a node used twice collects
            # both contributions.
            self.grad += 1.0 * out.grad
            other.grad += 1.0 * out.grad

        out._backward = _backward
        return out

    def __mul__(self, other) -> "Value":
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            # d(a * b)/da = b, d(a * b)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent) -> "Value":
        if not isinstance(exponent, (int, float)):
            raise TypeError("Value ** x supports a number x only")
        out = Value(self.data ** exponent, (self,), f"**{exponent:g}")

        def _backward():
            # d(a^k)/da = k a^(k-1)
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    # ------------------------------------------------------------- unary operations
    def tanh(self) -> "Value":
        """tanh(a); local derivative 1 - tanh(a)^2, written with the output t."""
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():
            self.grad += (1.0 - t * t) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> "Value":
        """sigma(a) = 1 / (1 + e^-a); local derivative sigma(a) (1 - sigma(a))."""
        # Two branches so that exp never overflows for large |a|.
        if self.data >= 0:
            s = 1.0 / (1.0 + math.exp(-self.data))
        else:
            e = math.exp(self.data)
            s = e / (1.0 + e)
        out = Value(s, (self,), "sigmoid")

        def _backward():
            self.grad += s * (1.0 - s) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> "Value":
        """max(0, a); local derivative 1 if a > 0 else 0 (PyTorch's choice at a = 0)."""
        out = Value(max(0.0, self.data), (self,), "relu")

        def _backward():
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> "Value":
        """e^a; its own local derivative."""
        e = math.exp(self.data)
        out = Value(e, (self,), "exp")

        def _backward():
            self.grad += e * out.grad

        out._backward = _backward
        return out

    def log(self) -> "Value":
        """ln(a) for a > 0; local derivative 1/a."""
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += (1.0 / self.data) * out.grad

        out._backward = _backward
        return out

    # ------------------------------------------------ the rest, built from the above
    def __neg__(self):  # -a
        return self * -1.0

    def __radd__(self, other):  # 2 + a
        return self + other

    def __sub__(self, other):  # a - b
        return self + (-other)

    def __rsub__(self, other):  # 2 - a
        return other + (-self)

    def __rmul__(self, other):  # 2 * a
        return self * other

    def __truediv__(self, other):  # a / b = a * b^-1
        other = other if isinstance(other, Value) else Value(other)
        return self * other ** -1

    def __rtruediv__(self, other):  # 2 / a
        return Value(other) * self ** -1

    # -------------------------------------------------------------- backpropagation
    def backward(self) -> None:
        """Fill ``.grad`` of every node this one depends on with d(self)/d(node).

        Gradients accumulate (like PyTorch): call ``zero_grad`` on the leaves before a
        second pass.
        """
        self.grad = 1.0  # d(self)/d(self)
        # Each node after every node that uses it: its upstream gradient is complete.
        for node in reversed(topological_order(self)):
            node._backward()


def topological_order(root: Value) -> list[Value]:
    """Every node ``root`` depends on, each after its children (``root`` last).

    A depth-first search that appends a node once all its children are appended; the
    ``visited`` set keeps a node used twice from appearing twice (and keeps shared
    sub-graphs from being walked again and again). Recursive for readability: graphs
    deeper than ~900 nodes need a loop instead.
    """
    order: list[Value] = []
    visited: set[int] = set()

    def visit(node: Value) -> None:
        if id(node) in visited:
            return
        visited.add(id(node))
        for child in node._children:
            visit(child)
        order.append(node)

    visit(root)
    return order


def zero_grad(nodes) -> None:
    """Set ``.grad`` of every node in ``nodes`` to 0 (before a new backward pass)."""
    for node in nodes:
        node.grad = 0.0


# ---------------------------------------------------------------- random expressions
_BINARY = ("add", "sub", "mul", "safe_div")
_UNARY = ("tanh", "sigmoid", "relu", "exp", "square", "log1p_square", "none")


def random_expression(leaves, num_ops: int = 20, seed: int = 0):
    """A seeded random expression of ``leaves``, written with operators only.

    The same code runs on ``Value``s and on ``torch.Tensor``s, so the two autograds
    can be compared on the same expression. Nodes are picked from a growing pool, so
    many are used more than once (the case where gradients must accumulate). Every op
    keeps values in a modest range: products and squares go through tanh, division is
    by 1 + b^2 and log is of 1 + a^2.

    Args:
        leaves: the inputs (``Value``s or 0-d tensors with ``requires_grad=True``).
        num_ops: how many binary operations to apply.
        seed: picks the ops and operands (same seed, same expression).
    Returns:
        The output node: the sum of the last three nodes made.
    """
    rng = random.Random(seed)
    pool = list(leaves)
    for _ in range(num_ops):
        a, b = rng.choice(pool), rng.choice(pool)
        op = rng.choice(_BINARY)
        if op == "add":
            c = a + b
        elif op == "sub":
            c = a - b
        elif op == "mul":
            c = (a * b).tanh()
        else:
            c = a / (1.0 + b ** 2)
        unary = rng.choice(_UNARY)
        if unary == "tanh":
            c = c.tanh()
        elif unary == "sigmoid":
            c = c.sigmoid()
        elif unary == "relu":
            c = c.relu()
        elif unary == "exp":
            c = (0.5 * c.tanh()).exp()
        elif unary == "square":
            c = (c ** 2).tanh()
        elif unary == "log1p_square":
            c = (1.0 + c ** 2).log()
        pool.append(c)
    return pool[-1] + pool[-2] + pool[-3] if len(pool) >= 3 else pool[-1]


# --------------------------------------------------------------------------- drawing
_CHAR_IN = 0.052  # width of a character at fontsize 8, in inches (DejaVu Sans)
_ROW_IN = 0.5  # vertical distance between nodes, in inches


def draw_graph(root: Value, show_grad: bool = True):
    """Draw the graph of ``root`` with matplotlib (no graphviz); returns the Axes.

    Value nodes are boxes ("label | data | grad"), ops are orange boxes; columns are
    depths from the inputs (left) to ``root`` (right), and each column is ordered by
    where its users sit, so that few arrows cross. The axes are measured in inches, so
    the figure grows with the graph.
    """
    import matplotlib.pyplot as plt

    nodes = topological_order(root)
    depth: dict[int, int] = {}
    users: dict[int, list[Value]] = {id(n): [] for n in nodes}
    for node in nodes:  # children come first, so their depth is known
        depth[id(node)] = (0 if not node._children
                           else 1 + max(depth[id(c)] for c in node._children))
        for child in node._children:
            users[id(child)].append(node)
    # An input sits just left of its first user, so that no arrow runs through a column.
    for node in nodes:
        if not node._children and users[id(node)]:
            depth[id(node)] = min(depth[id(u)] for u in users[id(node)]) - 1
    columns: list[list[Value]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in nodes:
        columns[depth[id(node)]].append(node)
    columns = [col for col in columns if col]

    def box_text(node):
        text = f"{node.label + ' | ' if node.label else ''}data {node.data:.4g}"
        return text + (f" | grad {node.grad:.4g}" if show_grad else "")

    width = {id(n): len(box_text(n)) * _CHAR_IN + 0.2 for n in nodes}
    op_width = {id(n): len(n._op) * _CHAR_IN + 0.2 for n in nodes if n._children}
    # Rows: from the root leftwards, each node at the mean height of its users (the
    # barycentre heuristic).
    y: dict[int, float] = {}
    for col in reversed(columns):
        key = [float(np.mean([y[id(u)] for u in users[id(n)]])) if users[id(n)] else 0.0
               for n in col]
        ranked = sorted(zip(key, range(len(col)), col), key=lambda t: (-t[0], t[1]))
        ordered = [n for _, _, n in ranked]
        for i, n in enumerate(ordered):
            y[id(n)] = -(i - (len(ordered) - 1) / 2.0) * _ROW_IN
    # Columns: each is as wide as its widest box, preceded by a gap that holds the ops.
    x: dict[int, float] = {}
    left = 0.2
    for d, col in enumerate(columns):
        gap = 0.0 if d == 0 else max(op_width.get(id(n), 0.0) for n in col) + 0.7
        col_w = max(width[id(n)] for n in col)
        for n in col:
            x[id(n)] = left + gap + col_w / 2.0
        left += gap + col_w
    total_w = left + 0.2
    ys = list(y.values())
    y_lo, y_hi = min(ys) - 0.45, max(ys) + 0.45
    fig = plt.figure(figsize=(total_w, y_hi - y_lo))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, total_w)
    ax.set_ylim(y_lo, y_hi)
    ax.axis("off")

    arrow = dict(arrowstyle="-|>", color="0.45", lw=0.9, shrinkA=0, shrinkB=1)
    for node in nodes:
        nx, ny = x[id(node)], y[id(node)]
        ax.text(nx, ny, box_text(node), ha="center", va="center", fontsize=8, zorder=3,
                bbox=dict(boxstyle="round,pad=0.25", fc="#eef4fb", ec="#4a7ab5"))
        if node._children:
            # The op sits left of its output.
            ox = nx - width[id(node)] / 2.0 - 0.25 - op_width[id(node)] / 2.0
            ax.text(ox, ny, node._op, ha="center", va="center", fontsize=8, zorder=3,
                    bbox=dict(boxstyle="round,pad=0.25", fc="#fff4e0", ec="#d08a1a"))
            ax.annotate("", xy=(nx - width[id(node)] / 2.0, ny),
                        xytext=(ox + op_width[id(node)] / 2.0, ny), arrowprops=arrow)
            for child in node._children:
                start = (x[id(child)] + width[id(child)] / 2.0, y[id(child)])
                ax.annotate("", xy=(ox - op_width[id(node)] / 2.0, ny), xytext=start,
                            arrowprops=arrow)
    return ax
