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
import torch

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
    """A correct training step of the tanh network, written with torch.autograd."""
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    A1 = torch.tanh(torch.tensor(X) @ tensors["W1"] + tensors["b1"])
    logits = A1 @ tensors["W2"] + tensors["b2"]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    loss.backward()
    for name, t in tensors.items():
        params[name] -= lr * t.grad.numpy()
    return loss.item()


def _tanh_layer_backward(dA, X, W, A):
    """A correct tanh layer backward, by torch.autograd (b recovered from A)."""
    Z = np.arctanh(A)
    b = (Z - X @ W).mean(axis=0)
    Xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
    torch.tanh(Xt @ Wt + bt).backward(torch.tensor(dA))
    return Xt.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()


def _smoothed_ce(logits, y, alpha):
    """PyTorch's label smoothing, as a learner could answer."""
    z = torch.tensor(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(z, torch.tensor(y), label_smoothing=alpha)
    loss.backward()
    return loss.item(), z.grad.numpy()


def _directional(f, grad, x, U, delta, one_sided=False, denom=2.0, fixed=None,
                 normalise=False, in_place=False):
    """A directional check with one knob per typical mistake."""
    delta = fixed if fixed is not None else delta
    numeric, analytic = [], []
    for u in U:
        if normalise:
            u = u / np.linalg.norm(u)
        if in_place:  # steps x itself and never steps back
            x += delta * u
            f_plus, low = f(x), f(x - 2 * delta * u)
        else:
            f_plus = f(x + delta * u)
            low = f(x) if one_sided else f(x - delta * u)
        numeric.append((f_plus - low) / ((1.0 if one_sided else denom) * delta))
        analytic.append(float(np.sum(grad * u)))
    return np.array(numeric), np.array(analytic)


def _batchnorm(dY, X, gamma, eps, constant_stats=False, no_var=False, no_mean=False,
               unbiased=False, dgamma_plain=False, dbeta_mean=False):
    """Batch norm backward with one knob per typical mistake."""
    B = len(X)
    mean = X.mean(0)
    var = X.var(0, ddof=1 if unbiased else 0)
    std = np.sqrt(var + eps)
    xhat = (X - mean) / std
    dxhat = dY * gamma
    if constant_stats:
        dX = dxhat / std
    elif no_var:
        dX = (dxhat - dxhat.mean(0)) / std
    elif no_mean:
        dX = (dxhat - xhat * (dxhat * xhat).mean(0)) / std
    elif unbiased:  # the exact gradient of the (B - 1)-variance forward
        dX = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).sum(0) / (B - 1)) / std
    else:
        dX = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / std
    dgamma = dY.sum(0) if dgamma_plain else (dY * xhat).sum(0)
    dbeta = dY.mean(0) if dbeta_mean else dY.sum(0)
    return dX, dgamma, dbeta


def _train_moons(params, X, y, lr, num_steps, zero=True, mean=True, before=True,
                 sign=1.0, keep=True, write_back=True, engine=True):
    """A training loop on the lesson's scalar engine, with one knob per typical mistake
    (``engine=False``: the same loop with torch.autograd)."""
    if not engine:
        t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        losses = []
        for _ in range(num_steps):
            hidden = torch.tanh(torch.tensor(X) @ t["W1"] + t["b1"])  # (N, H)
            s = (hidden @ t["W2"] + t["b2"])[:, 0]  # (N,)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                s, torch.tensor(y, dtype=torch.float64))
            for p in t.values():
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in t.values():
                    p -= lr * p.grad
            losses.append(loss.item())
        for k in params:
            params[k][...] = t[k].detach().numpy()
        return losses
    start = {k: v.copy() for k, v in params.items()}
    V = autograd.Value

    def wrap(arrays):
        return {k: [V(v) for v in a.ravel()] for k, a in arrays.items()}

    nodes = wrap(params)
    H = len(nodes["b1"])
    losses = []
    for _ in range(num_steps):
        if not keep:
            nodes = wrap(start)  # every step from the initial parameters
        W1, b1, W2, b2 = nodes["W1"], nodes["b1"], nodes["W2"], nodes["b2"][0]
        terms = []
        for x, label in zip(X, y):
            h = [(W1[j] * x[0] + W1[H + j] * x[1] + b1[j]).tanh() for j in range(H)]
            s = sum((h[j] * W2[j] for j in range(H)), b2)
            terms.append((1.0 + s.exp()).log() - float(label) * s)
        loss = sum(terms[1:], terms[0])
        if mean:
            loss = loss / len(X)
        every = [v for vs in nodes.values() for v in vs]
        if zero:
            autograd.zero_grad(every)
        loss.backward()
        for v in every:
            v.data -= sign * lr * v.grad
        if before:
            losses.append(loss.data)
        else:
            losses.append(float(np.mean(_moons_losses(nodes, X, y))))
        if write_back:
            for k, vs in nodes.items():
                params[k][...] = np.array([v.data for v in vs]).reshape(params[k].shape)
    return losses


def _moons_losses(nodes, X, y):
    """The per-point logistic losses at the nodes' current values (NumPy)."""
    W1 = np.array([v.data for v in nodes["W1"]]).reshape(2, -1)
    b1 = np.array([v.data for v in nodes["b1"]])
    W2 = np.array([v.data for v in nodes["W2"]])
    s = np.tanh(X @ W1 + b1) @ W2 + nodes["b2"][0].data
    return np.logaddexp(0.0, s) - y * s


REFERENCE = {
    "02.value_truediv": None,  # set below, with the division helpers
    "02.value_softplus": None,  # set below, with the softplus helpers
    "02.tanh_layer_backward": _tanh_layer_backward,
    "02.smoothed_cross_entropy": _smoothed_ce,
    "02.directional_check": _directional,
    "02.train_mlp": _train_step,
    "02.train_moons": _train_moons,
    "02.batchnorm_backward": _batchnorm,
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
        skip = (cell.source.lstrip().startswith("check(") or "import sys" in cell.source
                or "plt.show()" in cell.source)  # no demos: answers only
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
    """The exercise's Value before the learner fills in __truediv__ and softplus."""

    def __truediv__(self, other):
        other = other if isinstance(other, RefValue) else StubValue(other)
        raise NotImplementedError()

    def softplus(self):
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


# ------------------------------------------------------------------- 02.value_truediv
def _value_with_div(backward_rule, forward=lambda a, b: a / b, wrap=True, attach=True,
                    return_out=True, children=True):
    """A Value class whose __truediv__ is one node with a (possibly wrong) forward and
    backward rule."""

    class V(RefValue):
        def __truediv__(self, other):
            if wrap:
                other = other if isinstance(other, RefValue) else V(other)
            kids = (self, other) if children else ()
            out = V(forward(self.data, other.data), kids, "/")

            def _backward():
                backward_rule(self, other, out)

            if attach:
                out._backward = _backward
            return out if return_out else None

    return V


def _div_right(a, b, out):
    a.grad += out.grad / b.data
    b.grad -= out.grad * a.data / b.data ** 2


def _div_like_mul(a, b, out):  # a product's local derivatives
    a.grad += b.data * out.grad
    b.grad += a.data * out.grad


def _div_sign(a, b, out):
    a.grad += out.grad / b.data
    b.grad += out.grad * a.data / b.data ** 2


def _div_no_square(a, b, out):
    a.grad += out.grad / b.data
    b.grad -= out.grad * a.data / b.data


def _div_no_a(a, b, out):
    a.grad += out.grad / b.data
    b.grad -= out.grad / b.data ** 2


def _div_swapped(a, b, out):
    a.grad -= out.grad * a.data / b.data ** 2
    b.grad += out.grad / b.data


def _div_no_chain(a, b, out):
    a.grad += 1.0 / b.data
    b.grad -= a.data / b.data ** 2


def _div_assign(a, b, out):
    a.grad = out.grad / b.data
    b.grad = -out.grad * a.data / b.data ** 2


class _LessonDivision(RefValue):
    """The lesson's a / b in two nodes (a * b**-1): a copy of the lesson."""

    def __truediv__(self, other):
        other = other if isinstance(other, RefValue) else _LessonDivision(other)
        return self * other ** -1


REFERENCE["02.value_truediv"] = _value_with_div(_div_right)


@pytest.mark.parametrize("wrong,case,word", [
    (_value_with_div(_div_right, forward=lambda a, b: a * b), "a / b with a = 3",
     "quotient"),
    (_value_with_div(_div_like_mul), "d(a/b)/da", "product"),
    (_value_with_div(_div_sign), "d(a/b)/db", "sign"),
    (_value_with_div(_div_no_square), "d(a/b)/db", "exponent"),
    (_value_with_div(_div_no_a), "d(a/b)/db", "power"),
    (_value_with_div(_div_no_chain), "chain rule", "out.grad"),
    (_value_with_div(_div_right, wrap=False), "works with a plain number",
     "plain number"),
    (_value_with_div(_div_right, attach=False), "the output's _backward is attached",
     "store"),
    (_value_with_div(_div_right, children=False), "a / b is one node", "children"),
    (_LessonDivision, "a / b is one node", "two-node"),
])
def test_value_truediv_mistakes(wrong, case, word):
    """Does each wrong __truediv__ fail its mistake's case, and no other one?"""
    _assert_blames("02.value_truediv", wrong, case, word)


def test_value_truediv_swapped_derivatives_are_blamed_on_both_inputs():
    """Do swapped local derivatives fail the two cases of the local derivatives (each
    naming the swap), and no other mistake case?"""
    result = run("02.value_truediv", _value_with_div(_div_swapped))
    assert _blamed(result) == {"d(a/b)/da = 1/b",
                               "d(a/b)/db = -a/b^2 (its sign and its square)"}
    assert all("swapped" in case_of(result, n).message for n in _blamed(result))


def test_value_truediv_assignment_is_blamed_on_accumulation_only():
    """Does `=` instead of `+=` fail the two accumulation cases, and no other one?"""
    result = run("02.value_truediv", _value_with_div(_div_assign))
    assert _blamed(result) == {
        "a node used twice: d(a/a)/da = 0 (gradients accumulate with +=)",
        "a gradient a node already holds is kept (+=, not =)"}
    assert all("+=" in case_of(result, n).hint for n in _blamed(result))


def test_value_truediv_copied_from_the_lesson_earns_little():
    """Does the lesson's two-node a * b**-1 fail the cases that call the node's own
    _backward (saying why) and keep at most a sixth of the point?"""
    result = run("02.value_truediv", _LessonDivision)
    case = case_of(result, "a / b with a = 3")
    assert not case.passed and "two nodes" in case.message
    assert result.score == pytest.approx(1 / 6, abs=1e-3)  # one core case of 3, halved


def test_value_truediv_without_return_says_so():
    """Is a __truediv__ that forgets `return out` told so (no AttributeError)?"""
    result = run("02.value_truediv", _value_with_div(_div_right, return_out=False))
    case = case_of(result, "a / b with a = 3")
    assert not case.passed and case.basic
    assert "returned None" in case.message and "__truediv__" in case.message
    assert result.score == 0


# ------------------------------------------------------------------- 02.value_softplus
def _stable_softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _value_with_softplus(rule, forward=_stable_softplus, keep_child=True,
                         return_out=True, attach=True):
    class V(RefValue):
        def softplus(self):
            s = forward(self.data)
            out = V(s, (self,) if keep_child else (), "softplus")

            def _backward():
                rule(self, out, s)

            if attach:
                out._backward = _backward
            return out if return_out else None

    return V


def _sp_right(a, out, s):
    a.grad += math.exp(a.data - s) * out.grad


def _sp_no_inner(a, out, s):
    a.grad += math.exp(-s) * out.grad  # 1 / (1 + e^a), written without overflow


def _sp_no_chain(a, out, s):
    a.grad += math.exp(a.data - s)


def _sp_assign(a, out, s):
    a.grad = math.exp(a.data - s) * out.grad


def _sp_naive_grad(a, out, s):
    a.grad += math.exp(a.data) / (1 + math.exp(a.data)) * out.grad


def _naive_softplus(x):
    return math.log(1 + math.exp(x))


REFERENCE["02.value_softplus"] = _value_with_softplus(_sp_right)


@pytest.mark.parametrize("wrong,case,word", [
    (_value_with_softplus(_sp_right, keep_child=False), "the output remembers",
     "only child"),
    (_value_with_softplus(_sp_right, attach=False),
     "the output's _backward is attached",
     "Store"),
    (_value_with_softplus(_sp_no_inner), "local derivative", "composition"),
    (_value_with_softplus(_sp_no_chain), "chain rule", "out.grad"),
    (_value_with_softplus(_sp_assign), "accumulates", "+="),
    (_value_with_softplus(_sp_right, forward=_naive_softplus), "stable", "overflows"),
    (_value_with_softplus(_sp_naive_grad), "stable", "local derivative"),
])
def test_value_softplus_mistakes(wrong, case, word):
    """Does each wrong softplus fail the case for its mistake, and no other mistake
    case?"""
    _assert_blames("02.value_softplus", wrong, case, word)


def test_value_softplus_wrong_forward_fails_the_core_cases():
    """Does a softplus whose forward returns its input score 0?"""
    identity = _value_with_softplus(_sp_right, forward=lambda x: x)
    result = run("02.value_softplus", identity)
    assert result.score == 0


def test_value_softplus_without_return_says_so():
    """Is a softplus that forgets `return out` told so where the cases backpropagate?"""
    result = run("02.value_softplus", _value_with_softplus(_sp_right, return_out=False))
    case = case_of(result, "local derivative")
    assert not case.passed and case.basic
    assert "returned None" in case.message and "softplus must end" in case.message


def test_value_softplus_naive_forward_keeps_core_credit():
    """Does log(1 + exp(a)), right for moderate a, keep its core credit (only the
    stability case fails)?"""
    result = run("02.value_softplus", _value_with_softplus(_sp_right,
                                                           forward=_naive_softplus))
    assert all(c.passed for c in result.cases if c.kind == "core")
    assert [c.name for c in result.cases if not c.passed] == [
        "stable: a = 1000 and a = -1000 give finite values and slopes"]


# --------------------------------------------------------------- 02.tanh_layer_backward
def _tanh_wrong(kind):
    """A tanh layer backward with one typical mistake."""
    def answer(dA, X, W, A):
        dZ = {"no_derivative": dA, "sigmoid": dA * A * (1 - A),
              "no_upstream": 1 - A ** 2}.get(kind, dA * (1 - A ** 2))
        dX = dZ @ W if kind == "no_transpose" else dZ @ W.T
        db = dZ.mean(axis=0) if kind == "db_mean" else dZ.sum(axis=0)
        return dX, X.T @ dZ, db
    return answer


@pytest.mark.parametrize("kind,case,word", [
    ("no_derivative", "the gradient goes through tanh", "derivative"),
    ("sigmoid", "tanh's derivative is 1 - A^2", "sigmoid"),
    ("no_upstream", "the local derivative is multiplied by dA", "upstream"),
    ("db_mean", "db sums over the batch", "every row"),
    ("no_transpose", "dX multiplies by W transposed", "transpose"),
])
def test_tanh_layer_backward_mistakes(kind, case, word):
    """Is each typical mistake of the tanh layer blamed by its own case only?"""
    _assert_blames("02.tanh_layer_backward", _tanh_wrong(kind), case, word)


def test_tanh_layer_backward_mistakes_earn_no_core_credit():
    """Does forgetting tanh's derivative fail every core case?"""
    result = run("02.tanh_layer_backward", _tanh_wrong("no_derivative"))
    assert all(not c.passed for c in result.cases if c.kind == "core")


def test_tanh_layer_backward_in_place_fails_the_property_case():
    """Does an answer that writes into dA fail "leaves its inputs unchanged"?"""
    def in_place(dA, X, W, A):
        dA *= 1 - A ** 2
        return dA @ W.T, X.T @ dA, dA.sum(axis=0)
    case = case_of(run("02.tanh_layer_backward", in_place), "leaves its inputs")
    assert not case.passed


# ------------------------------------------------------------ 02.smoothed_cross_entropy
def _smoothed_wrong(kind):
    """Label-smoothed cross-entropy with one typical mistake."""
    def answer(logits, y, alpha):
        B, C = logits.shape
        z = logits if kind == "unstable" else logits - logits.max(1, keepdims=True)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        onehot = np.eye(C)[y]
        if kind == "others_only":
            q = (1 - alpha) * onehot + alpha / (C - 1) * (1 - onehot)
        else:
            q = (1 - alpha) * onehot + alpha / C
        per_row = -(q * logp).sum(1)
        loss = per_row.sum() if kind == "sum" else per_row.mean()
        target = onehot if kind == "onehot_grad" else q
        d = np.exp(logp) - target
        return float(loss), d if kind == "no_batch" else d / B
    return answer


@pytest.mark.parametrize("kind,case,word", [
    ("others_only", "alpha is spread over all C classes", "true class"),
    ("onehot_grad", "dlogits uses the smoothed targets", "targets"),
    ("no_batch", "dlogits carries the 1/B", "divided by B"),
    ("sum", "the loss is the mean", "Average"),
    ("unstable", "stable for logits near 1000", "overflows"),
])
def test_smoothed_cross_entropy_mistakes(kind, case, word):
    """Is each typical mistake of label smoothing blamed by its own case only?"""
    _assert_blames("02.smoothed_cross_entropy", _smoothed_wrong(kind), case, word)


def test_plain_cross_entropy_earns_nothing():
    """Does the lesson's unsmoothed softmax_cross_entropy (alpha ignored) fail every
    core case (a copy of the lesson earns nothing)?"""
    result = run("02.smoothed_cross_entropy",
                 lambda logits, y, alpha: mlp_numpy.softmax_cross_entropy(logits, y))
    assert result.score == 0


# ----------------------------------------------------------------- 02.directional_check
@pytest.mark.parametrize("knobs,case,word", [
    (dict(one_sided=True), "a central difference", "both ways"),
    (dict(denom=1.0), "divides by the distance", "2 delta"),
    (dict(fixed=1e-6), "uses the step delta it is given", "argument delta"),
    (dict(normalise=True), "the directions are used as given", "rescaling"),
])
def test_directional_check_mistakes(knobs, case, word):
    """Is each typical mistake of the directional check blamed by its own case only?"""
    def answer(f, g, x, U, delta):
        return _directional(f, g, x, U, delta, **knobs)
    _assert_blames("02.directional_check", answer, case, word)


def test_directional_check_moving_x_in_place_fails_the_property_case():
    """Does stepping x in place (x += eps * u, never undone) fail the property case?"""
    def answer(f, g, x, U, delta):
        return _directional(f, g, x, U, delta, in_place=True)
    case = case_of(run("02.directional_check", answer), "one entry per direction")
    assert not case.passed


def test_directional_check_with_the_gradient_as_numeric_earns_nothing():
    """Does an answer that returns the analytic slopes twice score 0?"""
    def lazy(f, g, x, U, delta):
        a = np.array([np.sum(g * u) for u in U])
        return a, a
    assert run("02.directional_check", lazy).score == 0


# ---------------------------------------------------------------- 02.batchnorm_backward
@pytest.mark.parametrize("knobs,case,word", [
    (dict(constant_stats=True), "dX: the mean and the variance", "constants"),
    (dict(no_var=True), "dX: the path through the variance", "variance"),
    (dict(no_mean=True), "dX: the path through the mean", "mean"),
    (dict(unbiased=True), "training mode normalises with the biased", "B - 1"),
    (dict(dgamma_plain=True), "dgamma sums dY times x_hat", "x_hat"),
    (dict(dbeta_mean=True), "dbeta sums over the batch", "every row"),
])
def test_batchnorm_backward_mistakes(knobs, case, word):
    """Is each typical mistake of batch norm's backward blamed by its own case only?"""
    answer = lambda dY, X, g, eps: _batchnorm(dY, X, g, eps, **knobs)  # noqa: E731
    _assert_blames("02.batchnorm_backward", answer, case, word)


def test_batchnorm_with_constant_statistics_earns_nothing_for_dX():
    """Does treating the batch statistics as constants fail every core case?"""
    def answer(dY, X, g, eps):
        return _batchnorm(dY, X, g, eps, constant_stats=True)
    result = run("02.batchnorm_backward", answer)
    assert all(not c.passed for c in result.cases if c.kind == "core")


def test_batchnorm_unbiased_oracle_matches_the_closed_form():
    """Is the checker's (B - 1)-variance mistake the gradient the closed form gives?"""
    from course_utils.grading.checks.lesson02.batchnorm_backward import _inputs, _oracle
    dY, X, gamma, beta = _inputs(3, 5, 4)
    expected = _oracle(dY, X, gamma, beta, 1e-5, unbiased=True)[0]
    got = _batchnorm(dY, X, gamma, 1e-5, unbiased=True)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------ 02.train_mlp
def _train_step_wrong(params, X, y, lr, sign=1.0, rebind=False, skip_bias=False,
                      no_mask=False, return_after=False, update=True):
    """A training step with one knob per typical mistake."""
    p = {k: v for k, v in params.items()}
    A1 = np.tanh(X @ p["W1"] + p["b1"])
    logits = A1 @ p["W2"] + p["b2"]
    loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
    dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, p["W2"])
    dZ1 = dA1 if no_mask else dA1 * (1 - A1 ** 2)
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
    (dict(no_mask=True), "the gradient passes through tanh", "derivative"),
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
        A1 = np.tanh(X @ start["W1"] + start["b1"])
        logits = A1 @ start["W2"] + start["b2"]
        loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
        dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, start["W2"])
        _, dW1, db1 = mlp_numpy.linear_backward(dA1 * (1 - A1 ** 2), X, start["W1"])
        for name, grad in (("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)):
            params[name][...] = start[name] - lr * grad
        return loss

    result = run("02.train_mlp", stale)
    case = case_of(result, "100 steps fit")
    assert not case.passed and case.shows_hint and "previous call" in case.hint


def test_train_step_storing_new_arrays_in_the_dict_passes():
    """Does storing new arrays in the dict (params[name] = new array) pass?"""
    def store_new(params, X, y, lr):
        A1 = np.tanh(X @ params["W1"] + params["b1"])
        logits = A1 @ params["W2"] + params["b2"]
        loss, dlogits = mlp_numpy.softmax_cross_entropy(logits, y)
        dA1, dW2, db2 = mlp_numpy.linear_backward(dlogits, A1, params["W2"])
        _, dW1, db1 = mlp_numpy.linear_backward(dA1 * (1 - A1 ** 2), X, params["W1"])
        for name, grad in (("W1", dW1), ("b1", db1), ("W2", dW2), ("b2", db2)):
            params[name] = params[name] - lr * grad
        return loss

    assert run("02.train_mlp", store_new).passed


# --------------------------------------------------------------------- 02.train_moons
def _moons_with(**knobs):
    """A train_moons answer with the given knobs of ``_train_moons``."""
    return lambda params, X, y, lr, num_steps: _train_moons(params, X, y, lr, num_steps,
                                                            **knobs)


@pytest.mark.parametrize("knobs,case,word", [
    (dict(zero=False), "the gradients are zeroed", "clear"),
    (dict(mean=False), "the loss is the mean", "Average"),
    (dict(before=False), "returns the loss of each step before", "next step"),
    (dict(sign=-1.0), "one step lowers the loss", "against the gradient"),
    (dict(keep=False), "each step starts where the last one left off", "next forward"),
    (dict(write_back=False), "writes the trained values", "store"),
    (dict(engine=False), "uses the lesson's engine", "autograd.Value"),
])
def test_train_moons_mistakes(knobs, case, word):
    """Does each wrong training loop fail the case for its mistake, and no other's?"""
    _assert_blames("02.train_moons", _moons_with(**knobs), case, word)


def test_train_moons_with_torch_keeps_the_core_credit_halved():
    """Does a loop whose gradients come from torch, not the engine, get half the point
    (its numbers are right; the engine was the question)?"""
    result = run("02.train_moons", _moons_with(engine=False))
    assert result.score == pytest.approx(0.5)


def test_train_moons_that_keeps_growing_the_graph_still_passes():
    """Does a loop that stores updated parameters as new nodes (p - lr * p.grad, a
    graph that grows from step to step) still get every case right? It is slower, not
    wrong: the check's time limits leave room for it."""
    def growing(params, X, y, lr, num_steps):
        V = autograd.Value
        W1 = [[V(w) for w in row] for row in params["W1"]]
        b1 = [V(b) for b in params["b1"]]
        W2 = [V(w) for w in params["W2"][:, 0]]
        b2 = V(params["b2"][0])
        losses = []
        for _ in range(num_steps):
            total = V(0.0)
            for x, label in zip(X, y):
                h = [(W1[0][j] * x[0] + W1[1][j] * x[1] + b1[j]).tanh()
                     for j in range(len(b1))]
                s = sum((a * w for a, w in zip(h, W2)), b2)
                total = total + (s.exp() + 1.0).log() - label * s
            loss = total / len(X)
            nodes = [w for row in W1 for w in row] + b1 + W2 + [b2]
            autograd.zero_grad(nodes)
            loss.backward()
            W1 = [[w - lr * w.grad for w in row] for row in W1]  # new nodes, each step
            b1 = [b - lr * b.grad for b in b1]
            W2 = [w - lr * w.grad for w in W2]
            b2 = b2 - lr * b2.grad
            losses.append(loss.data)
        params["W1"][...] = [[w.data for w in row] for row in W1]
        params["b1"][...] = [b.data for b in b1]
        params["W2"][:, 0] = [w.data for w in W2]
        params["b2"][...] = b2.data
        return losses

    assert run("02.train_moons", growing).passed


def test_train_moons_oracle_is_the_logistic_loss_of_lesson_01():
    """Is the check's torch oracle lesson 01's logistic loss of the network's scores?"""
    from course_utils.grading.checks.lesson02.train_moons import _loss, _oracle, _setup
    from course_utils.lessons.optim import logistic_loss

    params, X, y = _setup(0, 10, 3)
    losses, _ = _oracle(params, X, y, 0.1, 1)
    hidden = np.tanh(X @ params["W1"] + params["b1"])  # (N, H)
    features = np.hstack([hidden, np.ones((len(X), 1))])  # (N, H + 1), the bias last
    w = np.append(params["W2"][:, 0], params["b2"])  # (H + 1,)
    assert losses[0] == pytest.approx(logistic_loss(w, features, y), rel=1e-12)
    assert losses[0] == pytest.approx(_loss(params, X, y), rel=1e-12)


def test_train_moons_data_are_two_moons():
    """Are the check's points two balanced, standardized half circles, labels 0/1?"""
    from course_utils.grading.checks.lesson02.train_moons import _two_moons

    X, y = _two_moons(20, 0)
    assert X.shape == (20, 2) and y.dtype == np.int64 and sorted(set(y)) == [0, 1]
    assert (y == 0).sum() == 10
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------- messages
_WRONG_ANSWERS = [
    ("02.value_truediv", _value_with_div(_div_sign)),
    ("02.value_truediv", _value_with_div(_div_right, children=False)),
    ("02.value_softplus", _value_with_softplus(_sp_no_inner)),
    ("02.tanh_layer_backward", _tanh_wrong("db_mean")),
    ("02.smoothed_cross_entropy", _smoothed_wrong("sum")),
    ("02.smoothed_cross_entropy", _smoothed_wrong("no_batch")),
    ("02.directional_check",
     lambda f, g, x, U, delta: _directional(f, g, x, U, delta, fixed=1e-5)),
    ("02.batchnorm_backward", lambda dY, X, g, eps: _batchnorm(dY, X, g, eps,
                                                               dbeta_mean=True)),
    ("02.train_mlp", _train_with(no_mask=True)),
    ("02.train_moons", _moons_with(mean=False)),
    ("02.train_moons", _moons_with(zero=False)),
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
    case = case_of(run("02.tanh_layer_backward", _tanh_wrong("db_mean")),
                   "db sums over the batch")
    assert "Called: tanh_layer_backward(" in case.message
    assert "db" in case.message
