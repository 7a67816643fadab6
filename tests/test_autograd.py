"""Tests of course_utils.lessons.autograd, lesson 02's scalar engine (oracle: torch)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils.lessons.autograd import (Value, draw_graph, random_expression,
                                           topological_order, zero_grad)


def _grads_both(leaf_values, num_ops, seed):
    """(output, leaf grads) from our engine and from torch.autograd, same expression."""
    ours = [Value(v) for v in leaf_values]
    out = random_expression(ours, num_ops=num_ops, seed=seed)
    out.backward()
    theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for v in leaf_values]
    out_t = random_expression(theirs, num_ops=num_ops, seed=seed)
    out_t.backward()
    grads_t = [t.grad.item() if t.grad is not None else 0.0 for t in theirs]
    return (out.data, [v.grad for v in ours]), (out_t.item(), grads_t)


@pytest.mark.parametrize("seed", range(25))
def test_random_expressions_match_torch(seed):
    """Do value and gradients of a random expression match torch.autograd to 1e-6?"""
    rng = np.random.default_rng(seed)
    leaves = rng.uniform(-2, 2, size=4).tolist()
    (ours, ours_g), (theirs, theirs_g) = _grads_both(leaves, num_ops=30, seed=seed)
    assert abs(ours - theirs) < 1e-6
    assert np.max(np.abs(np.array(ours_g) - np.array(theirs_g))) < 1e-6
    assert any(g != 0 for g in theirs_g)  # the comparison is not vacuous


def test_random_expressions_reuse_nodes():
    """Do the random expressions use a node twice or more (the case that needs `+=`)?"""
    leaves = [Value(0.3), Value(-1.1), Value(0.7)]
    out = random_expression(leaves, num_ops=30, seed=0)
    uses: dict[int, int] = {}
    for node in topological_order(out):
        for child in node._children:
            uses[id(child)] = uses.get(id(child), 0) + 1
    assert max(uses.values()) >= 2


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "exp"])
@pytest.mark.parametrize("x", [-2.5, -0.3, 0.7, 3.0])
def test_unary_ops_match_torch(name, x):
    """Does each unary op give torch's value and derivative?"""
    v = Value(x)
    out = getattr(v, name)()
    out.backward()
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out_t = getattr(t, name)()
    out_t.backward()
    assert out.data == pytest.approx(out_t.item(), abs=1e-12)
    assert v.grad == pytest.approx(t.grad.item(), abs=1e-12)


def test_binary_ops_and_reflected_ops():
    """Do +, -, *, /, ** and reflected forms (2 - a, 2 / a) give the right gradients?"""
    a, b = Value(1.5), Value(-0.5)
    out = (2 - a) * b + a / b - 3 / a + a ** 3 + (1 + b).log()
    out.backward()
    # d/da = -b + 1/b + 3/a^2 + 3a^2; d/db = (2 - a) - a/b^2 + 1/(1 + b)
    assert a.grad == pytest.approx(0.5 + 1 / -0.5 + 3 / 1.5 ** 2 + 3 * 1.5 ** 2)
    assert b.grad == pytest.approx(0.5 - 1.5 / 0.25 + 1 / 0.5)


def test_node_used_twice_accumulates():
    """Does a node used twice get both contributions (d(a*a)/da = 2a, d(a+a)/da = 2)?"""
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0
    b = Value(3.0)
    (b + b).backward()
    assert b.grad == 2.0


def test_sigmoid_is_finite_for_large_inputs():
    """Does sigmoid stay finite (no overflow) at +-1000?"""
    assert Value(1000.0).sigmoid().data == 1.0
    assert Value(-1000.0).sigmoid().data == 0.0


def test_topological_order_puts_children_first_once():
    """Does every node come after its children, exactly once, with the root last?"""
    x = Value(2.0)
    y = x * x + x
    z = y * y + y.tanh()
    order = topological_order(z)
    position = {id(n): i for i, n in enumerate(order)}
    assert len(position) == len(order)
    assert order[-1] is z
    for node in order:
        for child in node._children:
            assert position[id(child)] < position[id(node)]


def test_diamond_chain_is_linear_time():
    """Does a chain of 200 diamonds (2^200 paths) have 1 + 2*200 nodes in its order?"""
    x = Value(0.1)
    node = x
    for _ in range(200):
        node = node + node * 0.5  # a mul node with a constant leaf, then an add node
    order = topological_order(node)
    assert len(order) == 1 + 3 * 200  # x, then per step: the 0.5 leaf, product, sum
    node.backward()
    assert x.grad == pytest.approx(1.5 ** 200, rel=1e-9)


def test_zero_grad_and_accumulation():
    """Do gradients accumulate over two backward passes until zero_grad resets them?"""
    a = Value(2.0)
    out = a * 3.0
    out.backward()
    out.backward()
    assert a.grad == 6.0
    zero_grad(topological_order(out))
    assert a.grad == 0.0 and out.grad == 0.0


def test_repr_shows_data_and_grad():
    """Does repr show label, data and grad?"""
    assert repr(Value(1.5, label="w")) == "Value(w: data=1.5, grad=0)"


def test_draw_graph_draws_every_node():
    """Does draw_graph put one box per node and one box per op on the axes?"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b + a).tanh()
    out.label = "L"
    out.backward()
    ax = draw_graph(out)
    texts = [t.get_text() for t in ax.texts]
    assert sum("data" in t for t in texts) == len(topological_order(out))
    assert sorted(t for t in texts if t and "data" not in t) == ["*", "+", "tanh"]
    assert any(t.startswith("L | data") for t in texts)
    plt.close(ax.figure)


def test_pow_rejects_value_exponent():
    """Does Value ** Value fail clearly (only number exponents are supported)?"""
    with pytest.raises(TypeError):
        Value(2.0) ** Value(3.0)


def test_log_derivative():
    """Is d ln(a)/da = 1/a?"""
    a = Value(4.0)
    a.log().backward()
    assert a.grad == pytest.approx(0.25)
    assert Value(math.e).log().data == pytest.approx(1.0)


@pytest.mark.parametrize("cell_id,names", [
    ("cell-08-value-class", ["Value"]),
    ("cell-10-topo-code", ["topological_order", "zero_grad"]),
])
def test_the_lesson_shows_the_librarys_engine(cell_id, names):
    """Are the Value class and the functions that lesson 02's Section 2 writes out the
    library's, line for line (the lesson says so, and the checks use the library's)?"""
    import inspect
    from pathlib import Path

    import nbformat

    from course_utils.lessons import autograd

    root = Path(__file__).resolve().parents[1]
    path = root / "notebooks" / "02_backpropagation.ipynb"
    source = next(c.source for c in nbformat.read(path, as_version=4).cells
                  if c.get("id") == cell_id)
    for name in names:
        assert inspect.getsource(getattr(autograd, name)) in source + "\n", name
