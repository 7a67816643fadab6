"""Tests of the lesson 02 checks: the reference passes every case, and each typical mistake fails its own case."""
from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import autograd, mlp_numpy
from course_utils.autograd import Value as RefValue
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED

from check_support import case_of, run, stub


def _assert_fails(qid, answer, name_start, hint_word):
    """The case meant for this mistake fails, and its hint names the mistake."""
    case = case_of(run(qid, answer), name_start)
    assert not case.passed, f"{qid}: case {case.name!r} passed a wrong answer"
    assert hint_word in case.hint, case.hint


# --------------------------------------------------------------------------- correct answers
def _train_step(params, X, y, lr):
    """A correct training step written with the library's layers."""
    Z1 = mlp_numpy.linear_forward(X, params["W1"], params["b1"])
    A1 = mlp_numpy.relu_forward(Z1)
    logits = mlp_numpy.linear_forward(A1, params["W2"], params["b2"])
    loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
    dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, params["W2"])
    _, dW1, db1 = mlp_numpy.linear_backward(mlp_numpy.relu_backward(dA1, Z1), X, params["W1"])
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


def test_lesson_has_at_least_five_questions():
    """Does lesson 02 register at least five questions, each with several cases?"""
    questions = questions_for_lesson("02")
    assert {q.qid for q in questions} == set(REFERENCE)
    assert all(len(q.cases) >= 4 for q in questions)


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_reference_passes_every_case(qid):
    """Does the reference implementation pass every case (full marks)?"""
    result = run(qid, REFERENCE[qid])
    assert result.passed, str(result)
    assert result.score == result.possible


class StubValue(RefValue):
    """The exercise's Value before the learner fills in __mul__'s backward and tanh."""

    def __mul__(self, other):
        other = other if isinstance(other, RefValue) else StubValue(other)
        raise NotImplementedError()

    def tanh(self):
        raise NotImplementedError()


@pytest.mark.parametrize("qid", sorted(REFERENCE))
def test_stub_reports_not_implemented(qid):
    """Does a stub still raising NotImplementedError say "not implemented yet" and score 0?"""
    answer = StubValue if qid.startswith("02.value") else stub
    result = run(qid, answer)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0
    assert any("Not implemented yet" in c.message for c in result.cases)


# --------------------------------------------------------------------------- 02.value_mul_backward
def _value_with_mul(backward_rule, forward=lambda a, b: a * b, wrap=True, attach=True, return_out=True):
    """A Value class whose __mul__ uses a (possibly wrong) forward and backward rule."""

    class V(RefValue):
        def __mul__(self, other):
            if wrap:
                other = other if isinstance(other, RefValue) else V(other)
            out = V(forward(self.data, other.data), (self, other), "*")

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


def _mul_right(a, b, out):
    a.grad += b.data * out.grad
    b.grad += a.data * out.grad


@pytest.mark.parametrize("wrong,case,word", [
    (_value_with_mul(_mul_right, forward=lambda a, b: a + b), "forward", "self.data * other.data"),
    (_value_with_mul(_mul_swapped), "local derivatives", "b's value"),
    (_value_with_mul(_mul_no_chain), "chain rule", "out.grad"),
    (_value_with_mul(_mul_assign), "a node used twice", "+="),
    (_value_with_mul(_mul_assign), "a gradient a node already holds", "+="),
    (_value_with_mul(_mul_right, wrap=False), "works with a plain number", "Wrap a number"),
    (_value_with_mul(_mul_right, attach=False), "the output's _backward is attached", "out._backward = _backward"),
])
def test_value_mul_mistakes(wrong, case, word):
    """Does each wrong __mul__ fail the case for its mistake?"""
    _assert_fails("02.value_mul_backward", wrong, case, word)


def test_value_mul_without_return_says_so():
    """Does a __mul__ that forgets `return out` get told so, instead of an AttributeError on None?"""
    case = case_of(run("02.value_mul_backward", _value_with_mul(_mul_right, return_out=False)), "forward")
    assert not case.passed
    assert "returned None" in case.message and "return out" in case.message


# --------------------------------------------------------------------------- 02.value_tanh
def _value_with_tanh(rule, forward=math.tanh, keep_child=True, return_out=True):
    class V(RefValue):
        def tanh(self):
            t = forward(self.data)
            out = V(t, (self,) if keep_child else (), "tanh")

            def _backward():
                rule(self, out, t)

            out._backward = _backward
            return out if return_out else None

    return V


def _tanh_right(a, out, t):
    a.grad += (1 - t ** 2) * out.grad


@pytest.mark.parametrize("wrong,case,word", [
    (_value_with_tanh(_tanh_right, forward=lambda x: x), "forward", "math.tanh"),
    (_value_with_tanh(_tanh_right, keep_child=False), "the output remembers", "(self,)"),
    (_value_with_tanh(lambda a, out, t: a.__setattr__("grad", a.grad + (1 - a.data ** 2) * out.grad)),
     "local derivative", "output t"),
    (_value_with_tanh(lambda a, out, t: a.__setattr__("grad", a.grad + (1 - t ** 2))), "chain rule", "out.grad"),
    (_value_with_tanh(lambda a, out, t: a.__setattr__("grad", (1 - t ** 2) * out.grad)), "accumulates", "+="),
])
def test_value_tanh_mistakes(wrong, case, word):
    """Does each wrong tanh fail the case for its mistake?"""
    _assert_fails("02.value_tanh", wrong, case, word)


def test_value_tanh_without_return_says_so():
    """Does a tanh that forgets `return out` get told so in the cases that backpropagate through it?"""
    case = case_of(run("02.value_tanh", _value_with_tanh(_tanh_right, return_out=False)), "local derivative")
    assert not case.passed
    assert "returned None" in case.message and "return out" in case.message


# --------------------------------------------------------------------------- 02.topological_order
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


@pytest.mark.parametrize("wrong,case,word", [
    (_topo_direct_children_only, "every node of the graph", "recursively"),
    (_topo_no_visited, "each node appears exactly once", "visited"),
    (_topo_preorder, "children come before", "post-order"),
    (_topo_reversed, "children come before", "do not reverse"),
    (_topo_preorder, "calling _backward in reversed order", "reversed(order)"),
    (lambda root: None, "a single node", "root"),
])
def test_topological_order_mistakes(wrong, case, word):
    """Does each wrong topological order fail the case for its mistake?"""
    _assert_fails("02.topological_order", wrong, case, word)


def test_topological_order_without_visited_times_out_on_diamonds():
    """Does the diamond chain stop an order without a visited set by its time limit?"""
    result = run("02.topological_order", _topo_no_visited)
    case = case_of(result, "a chain of 40 shared diamonds")
    assert not case.passed and case.status == "timeout"


# --------------------------------------------------------------------------- 02.linear_backward
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
    return dZ @ W.T, X.T @ dZ / len(X), dZ.sum(axis=0)  # a second 1/B: dZ already has one


def _lin_in_place(dZ, X, W):
    X -= X.mean(axis=0)  # "normalises" the caller's input
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)


@pytest.mark.parametrize("wrong,case,word", [
    (lambda dZ, X, W: (dZ @ W.T, X.T @ dZ), "returns a tuple", "dX, dW, db"),
    (_lin_dx_no_transpose, "dX = dZ W^T", "W.T"),
    (_lin_dw_transposed, "dW = X^T dZ", "transpose"),
    (_lin_db_axis1, "db is summed over the batch axis", "axis=0"),
    (_lin_db_not_summed, "db is summed over the batch axis", "not summing"),
    (_lin_db_mean, "db is the batch sum", "do not average"),
    (_lin_dw_over_b, "dW is not divided by B", "already carries the 1/B"),
    (_lin_in_place, "leaves dZ, X and W unchanged", "do not write"),
])
def test_linear_backward_mistakes(wrong, case, word):
    """Does each wrong linear backward fail the case for its mistake?"""
    _assert_fails("02.linear_backward", wrong, case, word)


# --------------------------------------------------------------------------- 02.relu_backward
def _relu_in_place(dA, Z):
    dA[Z <= 0] = 0
    return dA


@pytest.mark.parametrize("wrong,case,word", [
    (lambda dA, Z: dA * (Z < 0), "passes dA where Z > 0", "Z > 0"),
    (lambda dA, Z: dA * (dA > 0), "the mask comes from the input Z", "not with dA > 0"),
    (lambda dA, Z: (Z > 0).astype(float), "multiplies dA by the mask", "upstream gradient"),
    (_relu_in_place, "does not modify dA in place", "new array"),
    (lambda dA, Z: dA * (Z >= 0), "at exactly Z = 0", "strict mask Z > 0"),
])
def test_relu_backward_mistakes(wrong, case, word):
    """Does each wrong ReLU backward fail the case for its mistake?"""
    _assert_fails("02.relu_backward", wrong, case, word)


# --------------------------------------------------------------------------- 02.softmax_cross_entropy
def _sce(logits, y, axis=1, keepdims=True, shift=True, reduce="mean", log_of_softmax=False, sign=1.0,
         scale_by_b=True, in_place=False, global_max=False, onehot_by_column=False):
    """softmax_cross_entropy with one knob per typical mistake."""
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
    onehot = np.eye(logits.shape[1])[y]
    dlogits = sign * (p - onehot)
    if onehot_by_column:
        dlogits = p.copy()
        dlogits[:, y] -= 1  # every row, at every label of the batch
    if scale_by_b:
        dlogits = dlogits / B
    return float(loss), dlogits


@pytest.mark.parametrize("wrong,case,word", [
    (lambda logits, y: _sce(logits, y)[0], "returns (loss, dlogits)", "loss, dlogits"),
    (lambda logits, y: _sce(logits, y, axis=0), "softmax normalises over the classes", "axis=1"),
    (lambda logits, y: _sce(logits, y, keepdims=False), "softmax normalises over the classes", "keepdims"),
    (lambda logits, y: _sce(logits, y, reduce="sum"), "the loss is the mean", ".mean()"),
    (lambda logits, y: _sce(logits, y, shift=False), "large logits", "subtract each row's max"),
    (lambda logits, y: _sce(logits, y, log_of_softmax=True), "a hopeless prediction", "log(0)"),
    (lambda logits, y: _sce(logits, y, sign=-1.0), "gradient for one example", "not onehot - softmax"),
    (lambda logits, y: _sce(logits, y, scale_by_b=False), "gradient for a batch", "batch size B"),
    (lambda logits, y: _sce(logits, y, in_place=True), "does not modify logits in place", "logits -="),
    (lambda logits, y: _sce(logits, y, global_max=True), "each row is shifted by its own maximum", "logits.max()"),
    (lambda logits, y: _sce(logits, y, onehot_by_column=True), "the 1 is subtracted once per row", "np.arange(B), y"),
])
def test_softmax_cross_entropy_mistakes(wrong, case, word):
    """Does each wrong softmax cross-entropy fail the case for its mistake?"""
    _assert_fails("02.softmax_cross_entropy", wrong, case, word)


def test_softmax_without_max_shift_passes_small_logits_cases():
    """Does the overflow case single out a missing shift (other cases accept an unshifted softmax)?"""
    result = run("02.softmax_cross_entropy", lambda logits, y: _sce(logits, y, shift=False))
    failed = {c.name.split(":")[0] for c in result.cases if not c.passed}
    assert failed == {"large logits (1000) give a finite loss and gradient",
                      "each row is shifted by its own maximum (rows 2000 apart stay finite)",
                      "a hopeless prediction gives its true loss (log-softmax, not log(softmax))"}


def test_softmax_one_hot_mistake_is_not_blamed_on_the_batch_size():
    """Does dlogits[:, y] -= 1 fail the one-hot case only, not the 1/B case (whose hint would mislead)?"""
    result = run("02.softmax_cross_entropy", lambda logits, y: _sce(logits, y, onehot_by_column=True))
    failed = {c.name for c in result.cases if not c.passed}
    assert failed == {"the 1 is subtracted once per row, at its own label (i, y_i)"}


# --------------------------------------------------------------------------- 02.gradient_check
def _ng(f, x, eps=1e-5, forward=False, denom=2.0, restore=True, flat_rows=False):
    """numerical_gradient with one knob per typical mistake."""
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
    return grad


@pytest.mark.parametrize("wrong,case,word", [
    (lambda f, x, eps=1e-5: _ng(f, x, eps, denom=1.0), "divides by 2*eps", "2 * eps"),
    (lambda f, x, eps=1e-5: _ng(f, x, eps, forward=True), "central, not forward", "f(x + eps) - f(x - eps)"),
    (lambda f, x, eps=1e-5: _ng(f, x, eps, flat_rows=True), "every coordinate of a 2-D x", "np.ndindex"),
    (lambda f, x, eps=1e-5: _ng(f, x, eps, restore=False), "leaves x as it was", "x[i] = old"),
])
def test_gradient_check_mistakes(wrong, case, word):
    """Does each wrong numerical gradient fail the case for its mistake?"""
    _assert_fails("02.gradient_check", wrong, case, word)


def _ng_step_back(f, x, eps=1e-5):
    """Central differences that undo the perturbation by arithmetic, which can miss the old value by an ulp."""
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
    """Does x[i] += eps ... x[i] += eps pass the value cases and fail the restore case with the rounding named?"""
    result = run("02.gradient_check", _ng_step_back)
    failed = [c for c in result.cases if not c.passed]
    assert [c.name for c in failed] == ["leaves x as it was (every perturbed entry restored)"]
    assert "floating point" in failed[0].message

# --------------------------------------------------------------------------- 02.train_mlp
def _train_step_wrong(params, X, y, lr, sign=1.0, rebind=False, skip_bias=False, no_mask=False,
                      return_after=False, update=True):
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


@pytest.mark.parametrize("kwargs,case,word", [
    (dict(return_after=True), "returns the batch's loss", "before the parameters change"),
    (dict(sign=-1.0), "one step lowers the loss", "against the gradient"),
    (dict(rebind=True), "updates all four parameters", "rebinds"),
    (dict(skip_bias=True), "updates all four parameters", "b1"),
    (dict(no_mask=True), "the update is exactly", "ReLU mask"),
    (dict(update=False), "100 steps fit", "many steps train"),
])
def test_train_step_mistakes(kwargs, case, word):
    """Does each wrong training step fail the case for its mistake?"""
    _assert_fails("02.train_mlp", lambda params, X, y, lr: _train_step_wrong(params, X, y, lr, **kwargs), case, word)


def test_failure_messages_say_what_was_called():
    """Does a failed case tell the learner what was called and what came back?"""
    case = case_of(run("02.linear_backward", _lin_db_mean), "db is the batch sum")
    assert "Called: linear_backward(" in case.message
    assert "db" in case.message
