"""Tests of the lesson 02 checks: the reference and the notebook's own solution pass
every case, answers that compute nothing earn nothing, and each typical mistake is
blamed by its own case (and by no other case's hint)."""
from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils.lessons import autograd, mlp_numpy
from course_utils.authoring.markers import solution_lines
from course_utils.lessons.autograd import Value as RefValue
from course_utils.grading.registry import CASE_KINDS, get_question, questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED
from course_utils.grading.trivial import variants_for

from check_support import case_of, run, stub

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "02_backpropagation.ipynb"


def _blamed(result) -> set[str]:
    """The non-core cases that failed with their hint shown: the mistakes the learner is
    told of."""
    return {c.name for c in result.cases
            if not c.passed and c.kind != "core" and c.shows_hint}


def _assert_blames(qid, answer, name_start, hint_word):
    """The case meant for this mistake fails with its hint shown (naming the mistake),
    no other mistake case shows its hint, and the answer does not earn full credit."""
    result = run(qid, answer)
    case = case_of(result, name_start)
    assert not case.passed, f"{qid}: case {case.name!r} passed a wrong answer"
    assert case.shows_hint, f"{qid}: {case.name!r} failed without hint: {case.message}"
    assert hint_word in case.hint, case.hint
    others = _blamed(result) - {case.name}
    assert others == set(), f"other hints shown: {others}"
    assert result.score < result.possible
    return result


# --------------------------------------------------------------------- correct answers
def _train_step(params, X, y, lr):
    """A correct training step written with the library's layers."""
    Z1 = mlp_numpy.linear_forward(X, params["W1"], params["b1"])
    A1 = mlp_numpy.relu_forward(Z1)
    logits = mlp_numpy.linear_forward(A1, params["W2"], params["b2"])
    loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
    dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, params["W2"])
    dZ1 = mlp_numpy.relu_backward(dA1, Z1)
    _, dW1, db1 = mlp_numpy.linear_backward(dZ1, X, params["W1"])
    for name, grad in (("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)):
        params[name] -= lr * grad
    return loss


REFERENCE = {
    "02.value_mul_backward": RefValue,
    "02.value_tanh": RefValue,
    "02.topological_order": autograd.topological_order,
    "02.linear_backward": mlp_numpy.linear_backward,
    "02.relu_backward": mlp_numpy.relu_backward,
    "02.softmax_cross_entropy": mlp_numpy.softmax_cross_entropy,
    "02.gradient_check": mlp_numpy.numerical_gradient,
    "02.train_mlp": _train_step,
}


def test_every_question_has_kinds_and_three_core_cases():
    """Does every case have a kind, and every question three core cases?"""
    questions = questions_for_lesson("02")
    assert {q.qid for q in questions} == set(REFERENCE)
    for q in questions:
        assert all(c.kind in CASE_KINDS for c in q.cases), q.qid
        assert len(q.core_cases) >= 3, q.qid
        assert len(q.cases) > len(q.core_cases), f"{q.qid}: no mistake/property case"
        assert q.timeout <= 10, f"{q.qid}: a cheap question gets a short time limit"


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_reference_passes_every_case(qid):
    """Does the reference implementation pass every case (full marks)?"""
    result = run(qid, REFERENCE[qid])
    assert result.passed, str(result)
    assert result.score == result.possible


def _solution_cells() -> list[tuple[str, str, list[str]]]:
    """(question id, answer cell, its solution lines) for every checked question."""
    nb = nbformat.read(SOLUTION, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        m = re.match(r'check\("(02\.[a-z_]+)"', cell.source.strip())
        if cell.cell_type == "code" and m:
            answer = nb.cells[i - 1]
            found.append((m.group(1), answer.source, solution_lines(answer.source)[0]))
    return found


def _solution_namespace() -> dict:
    """The notebook's answers: its code cells run here (no kernel, no check calls)."""
    from course_utils import seed_everything, smoke_mode

    nb = nbformat.read(SOLUTION, as_version=4)
    namespace = {"smoke_mode": smoke_mode, "seed_everything": seed_everything}
    for cell in nb.cells:
        skip = "check(" in cell.source or "import sys" in cell.source
        if cell.cell_type == "code" and not skip:
            exec(compile(cell.source, f"<{cell.get('id')}>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def solution():
    return _solution_namespace()


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_the_notebooks_solution_passes_every_case(qid, solution):
    """Does the solution notebook's own answer (its own Value class) pass every case?"""
    question = get_question(qid)
    result = run(qid, *[solution[name] for name in question.answers])
    assert result.passed, str(result)


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_trivial_answers_earn_nothing(qid, solution):
    """Does every trivial stand-in (None, pass, raise, the input, zeros, ones, a
    constant; for the Value class: None, an empty class, a class whose constructor
    raises) score 0?"""
    question = get_question(qid)
    for variant, answers in variants_for(question, solution).items():
        result = run(qid, *[answers[name] for name in question.answers])
        assert result.score == 0, f"{variant}: {result}"


def _hint_leaks(hint: str, lines: list[str]) -> list[str]:
    """The solution lines, or their expressions (right-hand sides, loop ranges, returned
    values; 6 characters or more, not only names and subscripts), found in ``hint``."""
    squash = lambda text: re.sub(r"\s+", "", text)  # noqa: E731
    leaks = []
    for line in lines:
        code = line.split("#")[0].strip()
        parts = [code]
        m = re.match(r"^[\w\[\]\"', .]+?\s*(?:[-+*/]?=)\s*(.+)$", code)
        if m and not code.startswith(("if ", "for ", "def ")):
            parts.append(m.group(1))
        m = re.match(r"^for .+ in (.+):$", code)
        if m:
            parts.append(m.group(1))
        if code.startswith("return "):
            parts.append(code[len("return "):])
        leaks += [p for p in parts if len(squash(p)) >= 6 and squash(p) in squash(hint)
                  and not re.fullmatch(r"[\w.,\[\]\"']+", squash(p))]
    return leaks


def test_no_hint_prints_a_solution_line():
    """Does no hint of lesson 02 hold a solution line (or its expression) of its
    question?"""
    cells = _solution_cells()
    assert {qid for qid, _, _ in cells} == set(REFERENCE)
    for qid, _, lines in cells:
        assert lines, qid
        for case in get_question(qid).cases:
            leaks = _hint_leaks(case.hint, lines)
            assert not leaks, (qid, case.name, leaks)


def test_the_leak_detector_finds_a_printed_solution():
    """Does the hint test notice a hint printing a solution line or its expression?"""
    lines = ["    dX = dZ @ W.T  # (B, D_in)", "    return dA * (Z > 0)"]
    assert _hint_leaks("Write dX = dZ @ W.T.", lines) == ["dX = dZ @ W.T", "dZ @ W.T"]
    assert _hint_leaks("Return dA * (Z > 0).", lines) == ["dA * (Z > 0)"]
    assert _hint_leaks("Multiply dZ by the transpose of W.", lines) == []


class StubValue(RefValue):
    """The exercise's Value before the learner fills in __mul__'s backward and tanh."""

    def __mul__(self, other):
        other = other if isinstance(other, RefValue) else StubValue(other)
        raise NotImplementedError()

    def tanh(self):
        raise NotImplementedError()


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_stub_reports_not_implemented(qid):
    """Does a stub still raising NotImplementedError say "not implemented yet" and score
    0 (even where the stub's other operations make nodes of the reference class)?"""
    answer = StubValue if qid.startswith("02.value") else stub
    result = run(qid, answer)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0
    assert any("Not implemented yet" in c.message for c in result.cases)


# --------------------------------------------------------------- 02.value_mul_backward
def _value_with_mul(backward_rule, forward=lambda a, b: a * b, wrap=True, attach=True,
                    return_out=True, children=True):
    """A Value class whose __mul__ uses a (possibly wrong) forward and backward rule."""

    class V(RefValue):
        def __mul__(self, other):
            if wrap:
                other = other if isinstance(other, RefValue) else V(other)
            kids = (self, other) if children else ()
            out = V(forward(self.data, other.data), kids, "*")

            def _backward():
                backward_rule(self, other, out)

            if attach:
                out._backward = _backward
            return out if return_out else None

    return V


def _mul_swapped(a, b, out):
    a.grad += a.data * out.grad
    b.grad += b.data * out.grad


def _mul_no_chain(a, b, out):
    a.grad += b.data
    b.grad += a.data


def _mul_assign(a, b, out):
    a.grad = b.data * out.grad
    b.grad = a.data * out.grad


def _mul_grads_not_data(a, b, out):
    a.grad += b.grad * out.grad  # the other input's gradient (0), not its value
    b.grad += a.grad * out.grad


def _mul_right(a, b, out):
    a.grad += b.data * out.grad
    b.grad += a.data * out.grad


@pytest.mark.parametrize("wrong,case,word", [
    (_value_with_mul(_mul_right, forward=lambda a, b: a + b), "a * b: the product",
     "product"),
    (_value_with_mul(_mul_swapped), "local derivatives", "b's value"),
    (_value_with_mul(_mul_grads_not_data), "local derivatives", "b's value"),
    (_value_with_mul(_mul_no_chain), "chain rule", "out.grad"),
    (_value_with_mul(_mul_right, wrap=False), "works with a plain number",
     "plain number"),
    (_value_with_mul(_mul_right, attach=False), "the output's _backward is attached",
     "store"),
    (_value_with_mul(_mul_right, children=False), "the output of a * b lists a and b",
     "children"),
])
def test_value_mul_mistakes(wrong, case, word):
    """Does each wrong __mul__ fail its mistake's case, and no other mistake case?"""
    _assert_blames("02.value_mul_backward", wrong, case, word)


def test_value_mul_assignment_is_blamed_on_accumulation_only():
    """Does `=` instead of `+=` fail the two accumulation cases, and no other one?"""
    result = run("02.value_mul_backward", _value_with_mul(_mul_assign))
    assert _blamed(result) == {
        "a node used twice: d(a*a)/da = 2a (gradients accumulate with +=)",
        "a gradient a node already holds is kept (+=, not =)"}
    assert all("+=" in case_of(result, n).hint for n in _blamed(result))


def test_value_mul_without_children_gets_no_credit_for_the_chain():
    """Does a product without children (zero gradients upstream) fail (a + b) * c,
    with a message that says where the gradient stopped, and lose credit?"""
    result = run("02.value_mul_backward", _value_with_mul(_mul_right, children=False))
    case = case_of(result, "(a + b) * c")
    assert not case.passed and "never reached the node a + b" in case.message
    assert result.score <= 0.5 * (2 / 3)


def test_value_mul_without_return_says_so():
    """Is a __mul__ that forgets `return out` told so (no AttributeError on None)?"""
    result = run("02.value_mul_backward", _value_with_mul(_mul_right, return_out=False))
    case = case_of(result, "a * b: the product")
    assert not case.passed and case.basic
    assert "returned None" in case.message
    assert "returning its output node" in case.message
    assert result.score == 0


# ----------------------------------------------------------------------- 02.value_tanh
def _value_with_tanh(rule, forward=math.tanh, keep_child=True, return_out=True,
                     attach=True):
    class V(RefValue):
        def tanh(self):
            t = forward(self.data)
            out = V(t, (self,) if keep_child else (), "tanh")

            def _backward():
                rule(self, out, t)

            if attach:
                out._backward = _backward
            return out if return_out else None

    return V


def _tanh_right(a, out, t):
    a.grad += (1 - t ** 2) * out.grad


def _tanh_of_input(a, out, t):
    a.grad += (1 - a.data ** 2) * out.grad


def _tanh_no_chain(a, out, t):
    a.grad += 1 - t ** 2


def _tanh_assign(a, out, t):
    a.grad = (1 - t ** 2) * out.grad


@pytest.mark.parametrize("wrong,case,word", [
    (_value_with_tanh(_tanh_right, keep_child=False), "the output remembers",
     "only child"),
    (_value_with_tanh(_tanh_right, attach=False), "the output's _backward is attached",
     "Store"),
    (_value_with_tanh(_tanh_of_input), "local derivative", "output t"),
    (_value_with_tanh(_tanh_no_chain), "chain rule", "out.grad"),
    (_value_with_tanh(_tanh_assign), "accumulates", "+="),
])
def test_value_tanh_mistakes(wrong, case, word):
    """Does each wrong tanh fail the case for its mistake, and no other mistake case?"""
    _assert_blames("02.value_tanh", wrong, case, word)


def test_value_tanh_wrong_forward_fails_the_core_cases():
    """Does a tanh whose forward returns its input score 0, with math.tanh named?"""
    result = run("02.value_tanh", _value_with_tanh(_tanh_right, forward=lambda x: x))
    assert result.score == 0
    case = case_of(result, "Value(0.8).tanh()")
    assert not case.passed and "math.tanh" in case.hint and case.shows_hint


def test_value_tanh_without_return_says_so():
    """Is a tanh that forgets `return out` told so where the cases backpropagate?"""
    result = run("02.value_tanh", _value_with_tanh(_tanh_right, return_out=False))
    case = case_of(result, "local derivative")
    assert not case.passed and case.basic
    assert "returned None" in case.message
    assert "returning its output node" in case.message


# ---------------------------------------------------------------- 02.topological_order
def _topo_direct_children_only(root):
    return list(root._children) + [root]


def _topo_no_visited(root):
    order = []

    def visit(node):
        for child in node._children:
            visit(child)
        order.append(node)

    visit(root)
    return order


def _topo_preorder(root):
    order, visited = [], set()

    def visit(node):
        if node in visited:
            return
        visited.add(node)
        order.append(node)
        for child in node._children:
            visit(child)

    visit(root)
    return order


def _topo_reversed(root):
    return autograd.topological_order(root)[::-1]


def _topo_by_data(root):
    """A visited set of the nodes' values: two nodes with equal data count as one."""
    order, seen = [], set()

    def visit(node):
        if node.data in seen:
            return
        seen.add(node.data)
        for child in node._children:
            visit(child)
        order.append(node)

    visit(root)
    return order


@pytest.mark.parametrize("wrong,case,word", [
    (_topo_direct_children_only, "every node is listed", "recursively"),
    (_topo_preorder, "children come before", "post-order"),
    (_topo_reversed, "the root is last", "in reverse"),
    (_topo_by_data, "nodes with equal data are different nodes", "identity"),
])
def test_topological_order_mistakes(wrong, case, word):
    """Does each wrong topological order fail its mistake's case, and no other?"""
    _assert_blames("02.topological_order", wrong, case, word)


def test_topological_order_without_the_root_fails_the_lone_node_case():
    """Does an order that lists the root's descendants but not the root itself fail the
    lone-node case with its hint (and the root-last case)?"""
    result = run("02.topological_order",
                 lambda root: autograd.topological_order(root)[:-1])
    case = case_of(result, "a single node")
    assert not case.passed and case.shows_hint and "root" in case.hint
    assert result.score == 0


def test_topological_order_of_the_root_alone_earns_nothing():
    """Does `return [root]` score 0 (it only passes the lone-node case)?"""
    result = run("02.topological_order", lambda root: [root])
    assert result.score == 0
    assert case_of(result, "a single node").passed


def test_values_deduplicated_by_data_are_not_blamed_on_the_visited_set():
    """Is a visited set of .data values reported as that, never as "no visited set"?"""
    result = run("02.topological_order", _topo_by_data)
    assert case_of(result, "a chain of 40 shared diamonds").passed
    assert case_of(result, "each node appears exactly once").passed
    assert not any("visited set" in c.message for c in result.cases if not c.passed)
    assert "same data" in case_of(result, "nodes with equal data").message


def test_topological_order_without_visited_times_out_on_diamonds():
    """Does an order without a visited set list nodes twice and time out on diamonds?"""
    result = run("02.topological_order", _topo_no_visited)
    assert not case_of(result, "each node appears exactly once").passed
    case = case_of(result, "a chain of 40 shared diamonds")
    assert not case.passed and case.status == "timeout"
    assert result.score == 0


def test_topological_order_style_variants_pass():
    """Do a visited list (instead of a set) and an iterative search pass every case?"""
    def with_list(root):
        order, visited = [], []

        def visit(node):
            if any(node is v for v in visited):
                return
            visited.append(node)
            for child in node._children:
                visit(child)
            order.append(node)

        visit(root)
        return order

    def iterative(root):
        order, visited, stack = [], set(), [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                children = reversed(node._children)
                stack.extend((c, False) for c in children if c not in visited)
        return order

    for answer in (with_list, iterative):
        result = run("02.topological_order", answer)
        assert result.passed, str(result)


# ------------------------------------------------------------------ 02.linear_backward
def _lin_dx_no_transpose(dZ, X, W):
    return dZ @ W, X.T @ dZ, dZ.sum(axis=0)


def _lin_dw_transposed(dZ, X, W):
    return dZ @ W.T, dZ.T @ X, dZ.sum(axis=0)


def _lin_db_axis1(dZ, X, W):
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=1)


def _lin_db_not_summed(dZ, X, W):
    return dZ @ W.T, X.T @ dZ, dZ


def _lin_db_mean(dZ, X, W):
    return dZ @ W.T, X.T @ dZ, dZ.mean(axis=0)


def _lin_dw_over_b(dZ, X, W):
    return dZ @ W.T, X.T @ dZ / len(X), dZ.sum(axis=0)  # a second 1/B (dZ has one)


def _lin_in_place(dZ, X, W):
    X -= X.mean(axis=0)  # "normalises" the caller's input
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)


@pytest.mark.parametrize("wrong,case,word", [
    (lambda dZ, X, W: (dZ @ W.T, X.T @ dZ), "returns (dX, dW, db)", "(dX, dW, db)"),
    (_lin_dw_over_b, "dW is not divided by B", "already carries the 1/B"),
    (_lin_db_mean, "db is the batch sum", "do not average"),
    (_lin_in_place, "leaves dZ, X and W unchanged", "do not write"),
])
def test_linear_backward_mistakes(wrong, case, word):
    """Does each wrong linear backward fail the case for its mistake, and no other's?"""
    _assert_blames("02.linear_backward", wrong, case, word)


@pytest.mark.parametrize("wrong,case,word", [
    (_lin_dx_no_transpose, "dX uses the transpose of W", "transpose"),
    (_lin_dw_transposed, "dW = X^T dZ, not its transpose", "transpose"),
    (_lin_db_axis1, "db is summed over the batch axis", "axis 0"),
    (_lin_db_not_summed, "returns (dX, dW, db), each shaped", "no sum at all"),
])
def test_linear_backward_shape_mistakes(wrong, case, word):
    """Is a missing transpose or a wrong axis blamed by its case (on a square W the
    shapes fit), besides the shape case that catches it on other sizes?"""
    result = run("02.linear_backward", wrong)
    target = case_of(result, case)
    assert not target.passed and target.shows_hint and word in target.hint
    shape = case_of(result, "returns (dX, dW, db), each shaped")
    assert _blamed(result) <= {target.name, shape.name}
    assert result.score < 0.5


def test_linear_backward_zeros_earn_nothing():
    """Do zero arrays of the right shapes score 0 (they scored 0.57 before)?"""
    def zeros(dZ, X, W):
        return np.zeros_like(X), np.zeros_like(W), np.zeros(W.shape[1])

    result = run("02.linear_backward", zeros)
    assert result.score == 0


def test_linear_backward_partial_credit_follows_the_right_outputs():
    """Does dX, dW right but db averaged keep 2/3 of the credit, halved?"""
    result = run("02.linear_backward", _lin_db_mean)
    assert result.score == pytest.approx(0.5 * 2 / 3, abs=1e-3)


def test_linear_backward_style_variants_pass():
    """Do np.dot / einsum / float32 versions pass every case?"""
    def with_dot(dZ, X, W):
        return np.dot(dZ, W.T), np.dot(X.T, dZ), np.sum(dZ, axis=0)

    def with_einsum(dZ, X, W):
        return np.einsum("bo,io->bi", dZ, W), np.einsum("bi,bo->io", X, dZ), dZ.sum(0)

    def in_float32(dZ, X, W):
        dZ, X, W = (a.astype(np.float32) for a in (dZ, X, W))
        return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)

    for answer in (with_dot, with_einsum, in_float32):
        result = run("02.linear_backward", answer)
        assert result.passed, str(result)


# -------------------------------------------------------------------- 02.relu_backward
def _relu_in_place(dA, Z):
    dA[Z <= 0] = 0
    return dA


@pytest.mark.parametrize("wrong,case,word", [
    (lambda dA, Z: dA * (Z < 0), "passes dA where Z > 0", "Z > 0"),
    (lambda dA, Z: dA * (dA > 0), "the mask comes from the input Z", "not with dA > 0"),
    (lambda dA, Z: (Z > 0).astype(float), "multiplies dA by the mask",
     "upstream gradient"),
    (_relu_in_place, "does not modify dA in place", "new array"),
    (lambda dA, Z: dA * (Z >= 0), "at exactly Z = 0", "strict comparison"),
])
def test_relu_backward_mistakes(wrong, case, word):
    """Does each wrong ReLU backward fail the case for its mistake, and no other's?"""
    _assert_blames("02.relu_backward", wrong, case, word)


def test_relu_backward_style_variants_pass():
    """Do np.where, a float32 mask and a copy-then-zero version pass every case?"""
    def copy_then_zero(dA, Z):
        dZ = dA.copy()
        dZ[Z <= 0] = 0
        return dZ

    for answer in (lambda dA, Z: np.where(Z > 0, dA, 0.0),
                   lambda dA, Z: dA * (Z > 0).astype(np.float32), copy_then_zero):
        result = run("02.relu_backward", answer)
        assert result.passed, str(result)


# ------------------------------------------------------------ 02.softmax_cross_entropy
def _sce(logits, y, axis=1, keepdims=True, shift=True, reduce="mean",
         log_of_softmax=False, sign=1.0, scale_by_b=True, in_place=False,
         global_max=False, onehot_by_column=False, dtype=None):
    """softmax_cross_entropy, one knob per typical mistake (``dtype``: work in it)."""
    if dtype is not None:
        logits = logits.astype(dtype)
    B = logits.shape[0]
    if shift:
        if in_place:
            logits -= logits.max(axis=axis, keepdims=True)
            shifted = logits
        elif global_max:
            shifted = logits - logits.max()  # one number for the whole batch
        else:
            shifted = logits - logits.max(axis=axis, keepdims=True)
    else:
        shifted = logits
    e = np.exp(shifted)
    total = e.sum(axis=axis, keepdims=keepdims)
    p = e / total
    logp = np.log(p) if log_of_softmax else shifted - np.log(total)
    per_example = -logp[np.arange(B), y]
    loss = per_example.mean() if reduce == "mean" else per_example.sum()
    onehot = np.eye(logits.shape[1], dtype=p.dtype)[y]
    dlogits = sign * (p - onehot)
    if onehot_by_column:
        dlogits = p.copy()
        dlogits[:, y] -= 1  # every row, at every label of the batch
    if scale_by_b:
        dlogits = dlogits / B
    return float(loss), dlogits


def _sce_with(**knobs):
    """A softmax_cross_entropy answer with the given knobs of ``_sce``."""
    return lambda logits, y: _sce(logits, y, **knobs)


@pytest.mark.parametrize("wrong,case,word", [
    (lambda logits, y: _sce(logits, y)[0], "returns (loss, dlogits)", "mean loss"),
    (_sce_with(axis=0), "softmax normalises each row", "axis=1"),
    (_sce_with(keepdims=False), "softmax normalises each row", "keepdims"),
    (_sce_with(reduce="sum"), "the loss is the mean", "Average"),
    (_sce_with(log_of_softmax=True), "a hopeless prediction", "log(0)"),
    (_sce_with(sign=-1.0), "gradient: softmax(z) - onehot(y)",
     "not the other way round"),
    (_sce_with(scale_by_b=False), "gradient for a batch", "batch size B"),
    (_sce_with(in_place=True), "does not modify logits in place", "caller's array"),
    (_sce_with(global_max=True), "each row is shifted by its own maximum",
     "whole batch"),
    (_sce_with(onehot_by_column=True),
     "the 1 is subtracted once per row", "(row i, column y_i)"),
])
def test_softmax_cross_entropy_mistakes(wrong, case, word):
    """Does each wrong softmax cross-entropy fail its mistake's case, and no other?"""
    _assert_blames("02.softmax_cross_entropy", wrong, case, word)


def test_softmax_without_max_shift_fails_only_the_large_logits_cases():
    """Does an unshifted softmax pass the core cases (ordinary logits) and fail the
    cases of extreme logits, blaming the missing shift?"""
    result = run("02.softmax_cross_entropy", _sce_with(shift=False))
    failed = {c.name.split(":")[0] for c in result.cases if not c.passed}
    assert failed == {
        "large logits (1000) give a finite loss and gradient",
        "each row is shifted by its own maximum (rows 2000 apart stay finite)",
        "a hopeless prediction gives its true loss (log-softmax, not log(softmax))"}
    assert result.score == 0.5


def test_softmax_one_hot_mistake_is_not_blamed_on_the_batch_size():
    """Does dlogits[:, y] -= 1 pass the 1/B case (every label equal) and get blamed only
    for the one-hot indexing?"""
    result = run("02.softmax_cross_entropy", _sce_with(onehot_by_column=True))
    assert case_of(result, "gradient for a batch").passed
    one_hot = "the 1 is subtracted once per row, at its own label (i, y_i)"
    assert _blamed(result) == {one_hot}


def test_softmax_in_float32_passes():
    """Does a softmax cross-entropy computed in float32 (row sums and all) pass?"""
    result = run("02.softmax_cross_entropy", _sce_with(dtype=np.float32))
    assert result.passed, str(result)

    def float32_loss(logits, y):
        loss, dlogits = _sce(logits, y, dtype=np.float32)
        return np.float32(loss), dlogits

    assert run("02.softmax_cross_entropy", float32_loss).passed


def test_softmax_style_variants_pass():
    """Do a logsumexp-style and a one-hot-matrix-style answer pass every case?"""
    def logsumexp_style(logits, y):
        m = logits.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
        B = len(y)
        loss = (lse[:, 0] - logits[np.arange(B), y]).mean()
        p = np.exp(logits - lse)
        return loss, (p - np.eye(logits.shape[1])[y]) / B

    assert run("02.softmax_cross_entropy", logsumexp_style).passed


# ------------------------------------------------------------------- 02.gradient_check
def _ng(f, x, eps=1e-5, forward=False, denom=2.0, restore=True, flat_rows=False,
        fixed=None, precedence=False):
    """numerical_gradient with one knob per typical mistake (``fixed``: a hard-coded
    step; ``precedence``: (plus - minus) / 2 * eps)."""
    eps = eps if fixed is None else fixed
    grad = np.zeros_like(x, dtype=float)
    indices = range(x.shape[0]) if flat_rows else np.ndindex(x.shape)
    for i in indices:
        old = x[i].copy() if flat_rows else x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old if forward else old - eps
        minus = f(x)
        if restore:
            x[i] = old
        grad[i] = (plus - minus) / (denom * eps if not forward else eps)
        if precedence:
            grad[i] = (plus - minus) / 2 * eps
    return grad


def _ng_with(**knobs):
    """A numerical_gradient answer with the given knobs of ``_ng``."""
    return lambda f, x, eps=1e-5: _ng(f, x, eps, **knobs)


@pytest.mark.parametrize("wrong,case,word", [
    (_ng_with(denom=1.0), "divides by 2*eps", "2 eps"),
    (_ng_with(precedence=True), "divides by 2*eps", "parentheses"),
    (_ng_with(forward=True), "central, not forward", "both sides"),
    (_ng_with(flat_rows=True), "every coordinate of a 2-D x", "not over its rows"),
    (_ng_with(restore=False), "leaves x as it was", "saved value"),
    (_ng_with(fixed=1e-5), "uses the eps it is given", "eps argument"),
])
def test_gradient_check_mistakes(wrong, case, word):
    """Does each wrong numerical gradient fail its mistake's case, and no other?"""
    _assert_blames("02.gradient_check", wrong, case, word)


@pytest.mark.parametrize("fixed", [1e-5, 1e-4, 1e-6])
def test_gradient_check_with_a_hard_coded_eps_earns_nothing(fixed):
    """Does a central difference ignoring its eps argument score 0 (it passed)?"""
    result = run("02.gradient_check", _ng_with(fixed=fixed))
    assert result.score == 0
    assert all(not c.passed for c in result.cases if c.kind == "core")


def test_gradient_check_flattened_result_fails_the_shape_case():
    """Does a gradient returned flattened fail the shape case with its hint shown?"""
    result = run("02.gradient_check", lambda f, x, eps=1e-5: _ng(f, x, eps).ravel())
    case = case_of(result, "returns an array shaped like x")
    assert not case.passed and case.shows_hint and "x's shape" in case.hint


def _ng_step_back(f, x, eps=1e-5):
    """Central differences that undo the perturbation by arithmetic, which can miss the
    old value by an ulp."""
    grad = np.zeros_like(x, dtype=float)
    for i in np.ndindex(x.shape):
        x[i] += eps
        plus = f(x)
        x[i] -= 2 * eps
        minus = f(x)
        x[i] += eps
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def test_gradient_check_step_back_fails_only_the_restore_case():
    """Does x[i] += eps ... x[i] += eps pass the value cases and fail the restore case
    with the rounding named?"""
    result = run("02.gradient_check", _ng_step_back)
    failed = [c for c in result.cases if not c.passed]
    restore = "leaves x as it was (every perturbed entry restored)"
    assert [c.name for c in failed] == [restore]
    assert "floating point" in failed[0].message


def test_gradient_check_style_variants_pass():
    """Do a copy-perturbing and a flat-index version pass every case?"""
    def on_copies(f, x, eps=1e-5):
        grad = np.zeros(x.shape)
        for i in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[i] += eps
            xm[i] -= eps
            grad[i] = (f(xp) - f(xm)) / (2 * eps)
        return grad

    def flat(f, x, eps=1e-5):
        grad = np.zeros(x.size)
        flat_x = x.reshape(-1)  # a view: f sees the perturbation
        for k in range(x.size):
            old = flat_x[k]
            flat_x[k] = old + eps
            plus = f(x)
            flat_x[k] = old - eps
            minus = f(x)
            flat_x[k] = old
            grad[k] = (plus - minus) / (2 * eps)
        return grad.reshape(x.shape)

    for answer in (on_copies, flat):
        result = run("02.gradient_check", answer)
        assert result.passed, str(result)


# ------------------------------------------------------------------------ 02.train_mlp
def _train_step_wrong(params, X, y, lr, sign=1.0, rebind=False, skip_bias=False,
                      no_mask=False, return_after=False, update=True):
    """A training step with one knob per typical mistake."""
    p = {k: v for k, v in params.items()}
    Z1 = X @ p["W1"] + p["b1"]
    A1 = np.maximum(Z1, 0)
    logits = A1 @ p["W2"] + p["b2"]
    loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
    dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, p["W2"])
    dZ1 = dA1 if no_mask else dA1 * (Z1 > 0)
    _, dW1, db1 = mlp_numpy.linear_backward(dZ1, X, p["W1"])
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    if update:
        for name, grad in grads.items():
            if skip_bias and name.startswith("b"):
                continue
            if rebind:
                W = params[name]
                W = W - sign * lr * grad  # noqa: F841 - rebinds a local name only
            else:
                params[name] -= sign * lr * grad
    if return_after:
        return _train_step_wrong(params, X, y, 0.0)
    return loss


def _train_with(**knobs):
    """A train_step answer with the given knobs of ``_train_step_wrong``."""
    return lambda params, X, y, lr: _train_step_wrong(params, X, y, lr, **knobs)


@pytest.mark.parametrize("kwargs,case,word", [
    (dict(return_after=True), "returns the loss computed before", "next step"),
    (dict(sign=-1.0), "one step lowers the loss", "against the gradient"),
    (dict(rebind=True), "updates all four parameters", "rebinds"),
    (dict(skip_bias=True), "updates all four parameters", "dict"),
    (dict(no_mask=True), "the ReLU mask", "mask"),
])
def test_train_step_mistakes(kwargs, case, word):
    """Does each wrong training step fail the case for its mistake, and no other's?"""
    _assert_blames("02.train_mlp", _train_with(**kwargs), case, word)


def test_train_step_that_never_updates_earns_nothing():
    """Does a step that returns the right loss but changes nothing score little (one
    core case of three, halved), and one that returns a constant score 0?"""
    lazy = run("02.train_mlp", _train_with(update=False))
    assert lazy.score == pytest.approx(0.5 / 3, abs=1e-3)
    assert run("02.train_mlp", lambda params, X, y, lr: 0.5).score == 0


def test_train_step_that_caches_its_first_parameters_fails_the_100_steps_case():
    """Does a step that keeps the parameters of its first call fail "100 steps fit"?"""
    first = {}

    def stale(params, X, y, lr):
        key = X.tobytes()  # one network per batch
        start = first.setdefault(key, {k: v.copy() for k, v in params.items()})
        Z1 = X @ start["W1"] + start["b1"]
        A1 = np.maximum(Z1, 0)
        logits = A1 @ start["W2"] + start["b2"]
        loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
        dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, start["W2"])
        _, dW1, db1 = mlp_numpy.linear_backward(dA1 * (Z1 > 0), X, start["W1"])
        for name, grad in (("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)):
            params[name][...] = start[name] - lr * grad
        return loss

    result = run("02.train_mlp", stale)
    case = case_of(result, "100 steps fit")
    assert not case.passed and case.shows_hint and "previous call" in case.hint


def test_train_step_storing_new_arrays_in_the_dict_passes():
    """Does storing new arrays in the dict (params[name] = new array) pass?"""
    def store_new(params, X, y, lr):
        Z1 = X @ params["W1"] + params["b1"]
        A1 = np.maximum(Z1, 0)
        logits = A1 @ params["W2"] + params["b2"]
        loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
        dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, params["W2"])
        _, dW1, db1 = mlp_numpy.linear_backward(dA1 * (Z1 > 0), X, params["W1"])
        for name, grad in (("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)):
            params[name] = params[name] - lr * grad
        return loss

    assert run("02.train_mlp", store_new).passed


# ---------------------------------------------------------------------------- messages
_WRONG_ANSWERS = [
    ("02.value_mul_backward", _value_with_mul(_mul_swapped)),
    ("02.value_mul_backward", _value_with_mul(_mul_right, children=False)),
    ("02.value_tanh", _value_with_tanh(_tanh_of_input)),
    ("02.topological_order", _topo_by_data),
    ("02.linear_backward", _lin_db_mean),
    ("02.relu_backward", lambda dA, Z: dA * (Z >= 0)),
    ("02.softmax_cross_entropy", _sce_with(dtype=np.float32, sign=-1.0)),
    ("02.softmax_cross_entropy", _sce_with(reduce="sum")),
    ("02.gradient_check", _ng_with(fixed=1e-5)),
    ("02.train_mlp", _train_with(no_mask=True)),
]


@pytest.mark.parametrize("qid,answer", _WRONG_ANSWERS)
def test_messages_show_no_equal_numbers_as_a_mismatch_and_no_numpy_reprs(qid, answer):
    """Does no message read "got 0.38689, expected 0.38689", or show np.float64(...)?"""
    for case in run(qid, answer).cases:
        assert "np.float" not in case.message, case.message
        assert "np.int" not in case.message, case.message
        pairs = re.findall(r"(?:got|is) (-?[\d.e+-]+), expected (-?[\d.e+-]+)",
                           case.message)
        for got, expected in pairs:
            assert got.rstrip(".") != expected.rstrip("."), case.message


def test_failure_messages_say_what_was_called():
    """Does a failed case tell the learner what was called and what came back?"""
    case = case_of(run("02.linear_backward", _lin_db_mean), "db is the batch sum")
    assert "Called: linear_backward(" in case.message
    assert "db" in case.message
