"""Tests of lesson 08's checks: the reference passes every case, answers written in
other styles pass, each typical mistake fails its own case (with its hint shown, and
without blaming other mistakes), answers that compute nothing score 0, and every case
runs well within its time limit. The checks' oracles are tested against the lesson's
library (``course_utils.lessons.distill``) and against autograd: the softmax at a
temperature, the loss, its gradient and its high-temperature limit, the teacher's
logits, the training steps, the class bias and the number of seeds. That no hint
prints a solution line is tested for every lesson in test_course_consistency.py."""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.grading.checks.lesson08 import (
    NOT_JUDGED, OPTIMIZERS, PILOTS, autograd_grad, batches, bias_inputs, cnn_teacher,
    errors, exact_gradient, labels, logits, mistaken_biases, mistaken_grad,
    mistaken_limit, mistaken_loss, mistaken_seeds, mlp_teacher, reference_bias,
    reference_limit, reference_logits, reference_loss, reference_run, reference_seeds,
    softmax, torch_loss)
from course_utils.grading.registry import get_question, questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED
from course_utils.lessons import distill as kd

from check_support import (assert_all_pass, assert_not_blamed, assert_shows,
                           assert_trivial_scores_zero, case_of, run, stub)

# The mistake of 08.distill_step that averages F.kl_div over every entry warns.
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")


QIDS = ["08.softmax_temperature", "08.distillation_loss", "08.distillation_grad",
        "08.logit_matching_limit", "08.teacher_logits", "08.distill_step",
        "08.class_bias", "08.seeds_needed"]


def test_every_question_has_core_cases_and_kinds():
    """Does lesson 08 have its 8 questions in order, each with at least 3 core cases,
    a property case and a mistake case, and the answer named like its id?"""
    questions = questions_for_lesson("08")
    assert [q.qid for q in questions] == QIDS
    for q in questions:
        assert len(q.core_cases) >= 3, q.qid
        kinds = {c.kind for c in q.cases}
        assert kinds == {"core", "mistake", "property"}, q.qid
        assert q.answers == [q.qid.split(".", 1)[1]], q.qid


@pytest.mark.parametrize("qid", QIDS)
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError say "not implemented yet" and
    score 0?"""
    result = run(qid, stub)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


def test_not_judged_is_shared():
    """Do lesson 08's checks use the course's one "not judged yet" message?"""
    from course_utils.grading.checks._shared import NOT_JUDGED as SHARED
    assert NOT_JUDGED == SHARED


def _log_softmax(a):
    a = a - a.max(axis=-1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=-1, keepdims=True))


# ----------------------------------------------------------- 08.softmax_temperature
def softmax_answer(use_tau=True, axis=-1, shift=True, check_tau=True):
    """An answer to 08.softmax_temperature with one typical mistake switched on."""
    def softmax_temperature(logits, tau):
        if check_tau and tau <= 0:
            raise ValueError("tau must be positive")
        s = logits / tau if use_tau else logits
        if shift:
            s = s - s.max(axis=axis, keepdims=True)
        e = np.exp(s)
        return e / e.sum(axis=axis, keepdims=True)

    return softmax_temperature


def softmax_by_torch(logits, tau):
    """Another correct style: torch.softmax on a tensor, back to NumPy."""
    if not tau > 0:
        raise ValueError(f"tau={tau}")
    return torch.softmax(torch.from_numpy(np.asarray(logits)) / tau, dim=-1).numpy()


def test_softmax_temperature_reference_and_other_styles_pass():
    """Do a NumPy softmax shifted by the maximum and torch.softmax pass every case?"""
    assert_all_pass(run("08.softmax_temperature", softmax_answer()))
    assert_all_pass(run("08.softmax_temperature", softmax_by_torch))


@pytest.mark.parametrize("wrong, case, word", [
    (softmax_answer(use_tau=False), "the temperature divides the logits",
     "no effect"),
    (softmax_answer(axis=0), "each row is normalised on its own", "axis 0"),
    (softmax_answer(shift=False), "no overflow for large logits", "overflowed"),
    (softmax_answer(check_tau=False), "a temperature of 0 or below", "ValueError"),
])
def test_softmax_temperature_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    with np.errstate(all="ignore"):
        result = run("08.softmax_temperature", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_softmax_temperature_mistakes_are_not_blamed_on_others():
    """Is an ignored temperature not called a wrong axis, and the wrong axis not an
    ignored temperature?"""
    result = run("08.softmax_temperature", softmax_answer(use_tau=False))
    assert_not_blamed(result, "each row is normalised on its own")
    result = run("08.softmax_temperature", softmax_answer(axis=0))
    assert_not_blamed(result, "the temperature divides the logits")


def test_softmax_oracle_is_the_librarys_soft_targets():
    """Is the checks' softmax kd.soft_targets (and torch.softmax) at every temperature,
    finite for logits near 1000, and does kd.soft_targets reject tau <= 0 too?"""
    for seed, tau in [(0, 0.5), (1, 1.0), (2, 4.0), (3, 20.0)]:
        a = logits(seed, 5, 10)
        lib = kd.soft_targets(torch.from_numpy(a), tau).numpy()
        assert np.allclose(softmax(a, tau), lib, rtol=1e-12, atol=1e-15)
    big = logits(2, 3, 6, scale=400.0, offset=900.0)
    assert np.isfinite(softmax(big, 0.1)).all()
    assert np.allclose(softmax(big, 0.1),
                       torch.softmax(torch.from_numpy(big) / 0.1, -1).numpy())
    with pytest.raises(ValueError):
        kd.soft_targets(torch.zeros(2, 3), 0.0)


def test_softmax_temperature_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.softmax_temperature", softmax_answer())


# ------------------------------------------------------------ 08.distillation_loss
def loss_answer(how=None):
    """An answer to 08.distillation_loss in PyTorch, with one typical mistake."""
    def distillation_loss(z, v, y, tau, alpha):
        z, v, y = torch.from_numpy(z), torch.from_numpy(v), torch.from_numpy(y)
        log_ps = F.log_softmax(z / (1.0 if how == "student at tau = 1" else tau), -1)
        log_pt = F.log_softmax(v / tau, -1)
        if how == "KL swapped":
            soft = F.kl_div(log_pt, log_ps, reduction="batchmean", log_target=True)
        elif how == "cross-entropy":
            soft = -(log_pt.exp() * log_ps).sum(-1).mean()
        else:
            soft = F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
        if how == "hard over labelled rows":
            hard = (F.cross_entropy(z, y, ignore_index=-1) if (y != -1).any()
                    else torch.tensor(0.0))
        else:
            hard = F.cross_entropy(z / (tau if how == "hard at tau" else 1.0), y,
                                   ignore_index=-1, reduction="sum") / len(y)
        scale = 1.0 if how == "no tau^2" else tau ** 2
        loss = alpha * scale * soft + (1 - alpha) * hard
        return float(loss * len(y) if how == "sum" else loss)

    return distillation_loss


def loss_by_numpy(z, v, y, tau, alpha):
    """Another correct style: NumPy, the hard term with np.where over all rows."""
    log_ps, log_pt = _log_softmax(z / tau), _log_softmax(v / tau)
    kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(1)
    picked = np.take_along_axis(_log_softmax(z), np.maximum(y, 0)[:, None], 1)[:, 0]
    ce = np.where(y >= 0, -picked, 0.0)
    return float((alpha * tau * tau * kl + (1 - alpha) * ce).sum() / len(y))


def test_distillation_loss_reference_and_other_styles_pass():
    """Do the library's loss, a PyTorch answer and a NumPy one pass every case?"""
    assert_all_pass(run("08.distillation_loss", loss_answer()))
    assert_all_pass(run("08.distillation_loss", loss_by_numpy))
    assert_all_pass(run("08.distillation_loss", lambda z, v, y, tau, alpha: float(
        kd.distillation_loss(torch.from_numpy(z), torch.from_numpy(v),
                             torch.from_numpy(y), tau, alpha))))


@pytest.mark.parametrize("how, case, word", [
    ("no tau^2", "the soft term is multiplied by tau^2", "tau^2 factor"),
    ("KL swapped", "the KL divergence goes from the teacher", "swapped"),
    ("student at tau = 1", "the student's softmax in the soft term",
     "temperature 1"),
    ("cross-entropy", "the soft term is a KL divergence", "entropy"),
    ("hard at tau", "the hard term is at temperature 1", "softmax at tau"),
    ("hard over labelled rows", "the hard term is divided by N",
     "number of labelled rows"),
    ("sum", "the loss is a mean over the batch", "summed"),
])
def test_distillation_loss_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("08.distillation_loss", loss_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_distillation_loss_mistakes_are_not_blamed_on_others():
    """Is a missing tau^2 not called a swapped KL or a sum, and a swapped KL not a
    missing tau^2?"""
    result = run("08.distillation_loss", loss_answer("no tau^2"))
    for innocent in ("the KL divergence goes from the teacher", "the loss is a mean",
                     "the hard term is divided by N", "the hard term is at"):
        assert_not_blamed(result, innocent)
    result = run("08.distillation_loss", loss_answer("KL swapped"))
    assert_not_blamed(result, "the soft term is multiplied by tau^2")


def test_distillation_loss_oracle_is_the_librarys_loss():
    """Are reference_loss and torch_loss kd.distillation_loss, with and without
    unlabelled rows, at alpha = 1 (no hard term) and with every row unlabelled?"""
    for seed, n, k, un, tau, alpha in [
            (0, 8, 10, 3, 4.0, 0.9), (1, 6, 5, 0, 2.5, 0.5), (2, 12, 10, 6, 10.0, 0.3),
            (3, 5, 4, 5, 3.0, 0.6), (4, 7, 3, 2, 1.5, 1.0)]:
        z, v = logits(seed, n, k), logits(seed + 50, n, k)
        y = labels(seed + 100, n, k, min(un, n - 1))
        if un == n:
            y[:] = -1  # no row labelled: no hard term
        zt, vt, yt = torch.from_numpy(z), torch.from_numpy(v), torch.from_numpy(y)
        lib = float(kd.distillation_loss(zt, vt, yt, tau, alpha))
        assert math.isclose(reference_loss(z, v, y, tau, alpha), lib, rel_tol=1e-12)
        assert math.isclose(float(torch_loss(zt, vt, yt, tau, alpha)), lib,
                            rel_tol=1e-12)


def test_distillation_loss_mistakes_differ_from_the_reference():
    """Does each mistake's loss differ from the reference on its case's inputs?"""
    from course_utils.grading.checks.lesson08.distillation_loss import batch
    for how, inputs, tau, alpha in [
            ("no tau^2", batch(3), 4.0, 0.9), ("KL swapped", batch(4), 3.0, 0.8),
            ("student at tau = 1", batch(5), 4.0, 0.7),
            ("cross-entropy to soft targets", batch(6), 4.0, 0.9),
            ("hard at tau", batch(7), 4.0, 0.5),
            ("hard over labelled rows", batch(8, 10, 10, 7), 2.0, 0.5),
            ("sum", batch(9), 4.0, 0.9)]:
        ref = reference_loss(*inputs, tau, alpha)
        assert abs(mistaken_loss(*inputs, tau, alpha, how) - ref) > 1e-3 * ref, how


def test_distillation_loss_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.distillation_loss", loss_answer())


# ------------------------------------------------------------ 08.distillation_grad
def grad_answer(how=None):
    """An answer to 08.distillation_grad, derived by hand, with one typical mistake."""
    def distillation_grad(z, v, y, tau, alpha):
        n, k = z.shape
        p_s, p_t = softmax(z, tau), softmax(v, tau)
        soft = tau * (p_s - p_t)
        if how == "tau^2":
            soft = tau * soft
        elif how == "p - q":
            soft = -soft
        q = softmax(z, tau if how == "hard at tau" else 1.0)
        onehot = np.zeros((n, k))
        rows = np.arange(n) if how == "index -1" else np.flatnonzero(y != -1)
        onehot[rows, y[rows]] = 1.0
        mask = (y != -1)[:, None] if how not in ("no mask", "index -1") else 1.0
        grad = alpha * soft + (1 - alpha) * (q - onehot) * mask
        return grad if how == "no 1/N" else grad / n

    return distillation_grad


def grad_by_autograd(z, v, y, tau, alpha):
    """Another correct style: autograd of the library's loss."""
    zt = torch.tensor(z, requires_grad=True)
    kd.distillation_loss(zt, torch.from_numpy(v), torch.from_numpy(y), tau,
                         alpha).backward()
    return zt.grad.numpy()


def test_distillation_grad_reference_and_other_styles_pass():
    """Do the derived gradient and autograd of the library's loss pass every case?"""
    assert_all_pass(run("08.distillation_grad", grad_answer()))
    assert_all_pass(run("08.distillation_grad", grad_by_autograd))


@pytest.mark.parametrize("how, case, word", [
    ("no 1/N", "the batch mean divides the gradient by N", "1/N"),
    ("tau^2", "tau^2 times the KL's gradient", "chain rule"),
    ("p - q", "the soft gradient pushes the student", "wrong sign"),
    ("hard at tau", "the hard gradient is at temperature 1", "softmax at tau"),
    ("no mask", "unlabelled rows have no hard gradient", "unlabelled rows have"),
    ("index -1", "unlabelled rows have no hard gradient", "last class"),
])
def test_distillation_grad_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("08.distillation_grad", grad_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_distillation_grad_mistakes_are_not_blamed_on_others():
    """Is a missing 1/N not called a wrong power of tau or a sign, and the other way
    round?"""
    result = run("08.distillation_grad", grad_answer("no 1/N"))
    for innocent in ("tau^2 times the KL's gradient", "the soft gradient pushes",
                     "the hard gradient is at", "unlabelled rows have no hard"):
        assert_not_blamed(result, innocent)
    result = run("08.distillation_grad", grad_answer("tau^2"))
    assert_not_blamed(result, "the batch mean divides the gradient by N")


def test_distillation_grad_oracle_is_autograd_of_the_librarys_loss():
    """Is autograd_grad autograd of kd.distillation_loss, and the derived gradient (the
    checks' mistaken_grad with no mistake) the same?"""
    from course_utils.grading.checks.lesson08.distillation_grad import batch
    for inputs, tau, alpha in [(batch(0), 4.0, 0.9), (batch(1, 8, 5, 3), 2.0, 0.5),
                               (batch(2, 4, 10, 1, scale=8.0), 8.0, 0.3),
                               (batch(3, 5, 4, 0), 3.0, 1.0)]:
        ref = grad_by_autograd(*inputs, tau, alpha)
        assert np.allclose(autograd_grad(*inputs, tau, alpha), ref, rtol=1e-12,
                           atol=1e-15)
        assert np.allclose(mistaken_grad(*inputs, tau, alpha, "none"), ref,
                           rtol=1e-10, atol=1e-14)


def test_distillation_grad_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.distillation_grad", grad_answer())


# --------------------------------------------------------- 08.logit_matching_limit
def limit_answer(how=None):
    """An answer to 08.logit_matching_limit with one typical mistake switched on."""
    def logit_matching_limit(z, v):
        n, k = z.shape
        if how == "exact at a large tau":
            tau = 1e4
            return tau * (softmax(z, tau) - softmax(v, tau)) / n
        if how != "not centred":
            z = z - z.mean(1, keepdims=True)
            v = v - v.mean(1, keepdims=True)
        d = v - z if how == "v - z" else z - v
        return d / ({"no 1/n_c": 1, "no 1/N": k}.get(how, k) *
                    {"no 1/N": 1}.get(how, n))

    return logit_matching_limit


def test_logit_matching_limit_reference_passes():
    """Does the centred difference over n_c N pass every case?"""
    assert_all_pass(run("08.logit_matching_limit", limit_answer()))


@pytest.mark.parametrize("how, case, word", [
    ("not centred", "the limit holds for logits that are not zero-mean",
     "not centred"),
    ("v - z", "the gradient pulls the student's logits", "sign is reversed"),
    ("no 1/n_c", "the limit carries a 1/n_c", "n_c times too large"),
    ("no 1/N", "the batch mean divides by N", "N times too large"),
])
def test_logit_matching_limit_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("08.logit_matching_limit", limit_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_logit_matching_limit_exact_gradient_is_named_and_earns_partly():
    """Is the exact gradient at tau = 10^4 (not the limit) told so, and does it pass the
    core case that compares with that gradient only?"""
    result = run("08.logit_matching_limit", limit_answer("exact at a large tau"))
    first = case_of(result, "4 rows of 10 logits")
    assert not first.passed and "exact gradient" in first.message
    assert case_of(result, "6 rows of 3 logits").passed
    assert 0 < result.score < 1


def test_logit_matching_limit_mistakes_are_not_blamed_on_others():
    """Is a missing centring not called a missing 1/n_c or 1/N, or a reversed sign?"""
    result = run("08.logit_matching_limit", limit_answer("not centred"))
    for innocent in ("the gradient pulls", "the limit carries a 1/n_c",
                     "the batch mean divides by N"):
        assert_not_blamed(result, innocent)


def test_logit_matching_limit_oracle_is_the_limit_of_the_librarys_gradient():
    """Is exact_gradient autograd of kd.distillation_loss at alpha = 1 (tau^2 times the
    KL's gradient), and does it tend to reference_limit like 1/tau?"""
    z, v = logits(0, 4, 10, offset=5.0), logits(1, 4, 10)
    y = np.full(4, -1)
    for tau in (1.0, 4.0, 30.0):
        assert np.allclose(exact_gradient(z, v, tau),
                           grad_by_autograd(z, v, y, tau, 1.0), rtol=1e-10, atol=1e-15)
    ref = reference_limit(z, v)
    gaps = [np.abs(exact_gradient(z, v, tau) - ref).max() for tau in (1e2, 1e3, 1e4)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3 * np.abs(ref).max()
    assert 5 < gaps[0] / gaps[1] < 20 and 5 < gaps[1] / gaps[2] < 20  # like 1/tau
    shifted = reference_limit(z + 3.0, v - 7.0)  # a row's mean does not matter
    assert np.allclose(shifted, ref)
    assert not np.allclose(mistaken_limit(z, v, "not centred"), ref)


def test_logit_matching_limit_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.logit_matching_limit", limit_answer())


# --------------------------------------------------------------- 08.teacher_logits
def teacher_answer(eval_mode=True, restore=True, last=True, batched=True,
                   shuffle=False, no_grad=True):
    """An answer to 08.teacher_logits with one typical mistake switched on."""
    def teacher_logits(model, X, batch_size):
        was = model.training
        if eval_mode:
            model.eval()
        size = batch_size if batched else len(X)
        stop = len(X) if last else len(X) - len(X) % size
        order = torch.randperm(len(X)) if shuffle else torch.arange(len(X))
        with torch.set_grad_enabled(not no_grad):
            out = torch.cat([model(X[order[i:i + size]])
                             for i in range(0, stop, size)])
        if restore:
            model.train(was)
        return out

    return teacher_logits


def test_teacher_logits_reference_and_library_pass():
    """Do a batched eval-mode answer and the library's kd.teacher_logits pass?"""
    assert_all_pass(run("08.teacher_logits", teacher_answer()))
    assert_all_pass(run("08.teacher_logits", lambda model, X, batch_size:
                        kd.teacher_logits(model, X, batch_size)))


@pytest.mark.parametrize("wrong, case, word", [
    (teacher_answer(eval_mode=False), "eval mode: BatchNorm's running statistics",
     "train mode"),
    (teacher_answer(restore=False), "the model's train/eval mode is restored",
     "left in eval mode"),
    (teacher_answer(last=False), "the batches are at most batch_size rows",
     "partial batch is missing"),
    (teacher_answer(batched=False), "the batches are at most batch_size rows",
     "batches of [23] rows"),
    (teacher_answer(shuffle=True), "the rows keep the order of X", "another order"),
    (teacher_answer(no_grad=False), "a float32 CPU tensor", "requires a gradient"),
])
def test_teacher_logits_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("08.teacher_logits", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_teacher_logits_train_mode_fails_the_cores_and_is_told_why():
    """Does a forward in train mode earn nothing, its message asking about dropout and
    BatchNorm?"""
    result = run("08.teacher_logits", teacher_answer(eval_mode=False))
    assert result.score == 0
    assert "dropout" in case_of(result, "an MLP with BatchNorm").message


def test_teacher_logits_mistakes_are_not_blamed_on_others():
    """Is a model left in eval mode not called a train-mode forward, a missing batch
    or a shuffle?"""
    result = run("08.teacher_logits", teacher_answer(restore=False))
    for innocent in ("eval mode: BatchNorm's", "the batches are at most",
                     "the rows keep the order", "a float32 CPU tensor"):
        assert_not_blamed(result, innocent)


def test_teacher_logits_oracle_is_the_librarys_teacher_logits():
    """Is reference_logits kd.teacher_logits (in batches, any batch size), for the MLP
    and the CNN teachers, and does neither change the model?"""
    for build, shape in [(mlp_teacher, (53, 5)), (cnn_teacher, (30, 1, 8, 8))]:
        X = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        model = build()
        state = copy.deepcopy(model.state_dict())
        ref = reference_logits(model, X)
        for batch_size in (7, 16, 64):
            lib = kd.teacher_logits(model, X, batch_size)
            assert torch.allclose(lib, ref, rtol=1e-5, atol=1e-6)
        assert model.training
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        with torch.no_grad():
            train_mode = build()(X)
        assert not torch.allclose(train_mode, ref, atol=1e-3)  # the cases can tell


def test_teacher_logits_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.teacher_logits", teacher_answer())


# ------------------------------------------------------------------ 08.distill_step
def step_answer(how=None):
    """An answer to 08.distill_step with one typical mistake switched on."""
    def distill_step(model, optimizer, x, v, y, tau, alpha):
        z = model(x)
        t = v if how == "no detach" else v.detach()
        p_t = F.softmax(t / tau, dim=1)
        inputs = (F.softmax(z / tau, dim=1) if how == "probabilities"
                  else F.log_softmax(z / tau, dim=1))
        soft = F.kl_div(inputs, p_t, reduction="mean" if how == "mean" else
                        "batchmean")
        scale = 1.0 if how == "no tau^2" else tau * tau
        hard = F.nll_loss(F.log_softmax(z, 1), y, ignore_index=-1,
                          reduction="sum") / len(y)
        if how == "hard over labelled":
            hard = F.cross_entropy(z, y, ignore_index=-1)
        loss = alpha * scale * soft + (1 - alpha) * hard
        if how != "no zero_grad":
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss if how == "tensor" else loss.item()

    return distill_step


def step_by_library(model, optimizer, x, v, y, tau, alpha):
    """Another correct style: the library's loss, gradients set to None."""
    loss = kd.distillation_loss(model(x), v, y, tau, alpha)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_distill_step_reference_and_other_styles_pass():
    """Do an F.kl_div answer and one with the library's loss pass every case?"""
    assert_all_pass(run("08.distill_step", step_answer()))
    assert_all_pass(run("08.distill_step", step_by_library))


@pytest.mark.parametrize("how, case, word", [
    ("no zero_grad", "the gradients are zeroed before backward", "not zeroed"),
    ("probabilities", "F.kl_div takes the student's log-probabilities",
     "log-probabilities"),
    ("mean", "the KL divergence is averaged over the batch", "batchmean"),
    ("no tau^2", "the soft term is multiplied by tau^2", "not multiplied by tau^2"),
    ("hard over labelled", "the hard term is divided by N", "labelled rows only"),
    ("no detach", "the teacher learns nothing", "backpropagated into the teacher"),
    ("tensor", "returns the loss as a Python float", "python float"),
])
def test_distill_step_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("08.distill_step", step_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_distill_step_mistakes_are_not_blamed_on_others():
    """Is a missing zero_grad not called a wrong loss, and a wrong loss not a missing
    zero_grad?"""
    result = run("08.distill_step", step_answer("no zero_grad"))
    for innocent in ("F.kl_div takes", "the KL divergence is averaged",
                     "the soft term is multiplied"):
        assert_not_blamed(result, innocent)
    result = run("08.distill_step", step_answer("no tau^2"))
    for innocent in ("the gradients are zeroed", "F.kl_div takes",
                     "the KL divergence is averaged"):
        assert_not_blamed(result, innocent)


def test_distill_step_oracle_is_the_librarys_loss_and_steps():
    """Are reference_run's losses kd.distillation_loss on the student before each step,
    its steps those of the library's loss with each optimizer, and does each mistake
    move the parameters elsewhere?"""
    from course_utils.grading.checks.lesson08.distill_step import student
    data = batches(0, 3)
    for opt_name in OPTIMIZERS:
        losses, params = reference_run(opt_name, data, 3.0, 0.7)
        model = student()
        optimizer = OPTIMIZERS[opt_name](model.parameters())
        lib_losses = [step_by_library(model, optimizer, x, v, y, 3.0, 0.7)
                      for x, v, y in data]
        assert np.allclose(losses, lib_losses, rtol=1e-6)
        for p, r in zip(model.parameters(), params):
            assert torch.allclose(p, r, rtol=1e-5, atol=1e-7)
    _, ref = reference_run("SGD(lr=0.1)", data, 4.0, 0.9)
    for how in ("no zero_grad", "probabilities", "mean", "no tau^2"):
        _, params = reference_run("SGD(lr=0.1)", data, 4.0, 0.9, how)
        assert max((p - r).abs().max().item() for p, r in zip(params, ref)) > 1e-4


def test_distill_step_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.distill_step", step_answer())


# -------------------------------------------------------------------- 08.class_bias
def bias_answer(how=None):
    """An answer to 08.class_bias with one typical mistake switched on."""
    def class_bias(logits, y, c, offsets):
        scores = []
        for offset in offsets:
            shifted = logits.copy()
            if how == "every class":
                shifted += offset
            else:
                shifted[:, c] += offset
            predicted = shifted.argmax(1)
            scores.append(-(predicted == c).sum() if how == "most c"
                          else (predicted != y).sum())
        best = min(scores)
        tied = [float(o) for o, s in zip(offsets, scores) if s == best]
        return {"largest": max(tied), "first": tied[0]}.get(how, min(tied))

    return class_bias


def bias_by_numpy(logits, y, c, offsets):
    """Another correct style: every offset at once, np.lexsort for the tie rule."""
    offsets = np.asarray(offsets, dtype=float)
    shifted = np.repeat(logits[None], len(offsets), 0)  # (n_offsets, n, n_c)
    shifted[:, :, c] += offsets[:, None]
    wrong = (shifted.argmax(-1) != y).sum(1)  # (n_offsets,)
    return float(offsets[np.lexsort((offsets, wrong))[0]])


def test_class_bias_reference_and_other_styles_pass():
    """Do a loop over sorted candidates and a vectorised answer pass every case?"""
    assert_all_pass(run("08.class_bias", bias_answer()))
    assert_all_pass(run("08.class_bias", bias_by_numpy))


@pytest.mark.parametrize("how, case, word", [
    ("every class", "the offset is added to the logit of class c only",
     "every class"),
    ("most c", "the criterion is the number of validation errors",
     "predicted most often"),
    ("largest", "of several offsets with the fewest errors", "the largest"),
    ("first", "of several offsets with the fewest errors", "first of them"),
])
def test_class_bias_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("08.class_bias", bias_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_class_bias_an_offset_not_in_the_list_fails_the_property():
    """Is an index returned in place of the offset told it is not a candidate?"""
    def index(logits, y, c, offsets):
        return float(np.argmin([errors(logits, y, c, o) for o in offsets]) + 0.1)

    result = run("08.class_bias", index)
    assert "not one of the candidate offsets" in case_of(
        result, "returns a number").message


def test_class_bias_mistakes_are_not_blamed_on_others():
    """Is the largest of tied offsets not called the wrong criterion or every class?"""
    result = run("08.class_bias", bias_answer("largest"))
    for innocent in ("the offset is added to the logit", "the criterion is"):
        assert_not_blamed(result, innocent)


def test_class_bias_oracle_counts_the_librarys_test_errors():
    """Is errors() kd.test_errors with a bias on class c (the logits through an identity
    layer), do the tie cases tie, and does every mistake differ from the reference
    on its case?"""
    for name in ("one best offset", "a tie", "a tie, offsets shuffled",
                 "a tie, offsets in decreasing order"):
        z, y, c, offsets = bias_inputs(name)
        layer = nn.Linear(z.shape[1], z.shape[1])
        with torch.no_grad():
            layer.weight.copy_(torch.eye(z.shape[1]))
            layer.bias.zero_()
        X, Y = torch.from_numpy(z).float(), torch.from_numpy(y)
        for offset in offsets[::4]:
            bias = torch.zeros(z.shape[1])
            bias[c] = float(offset)
            assert errors(z, y, c, offset) == kd.test_errors(layer, X, Y, bias=bias)
        counts = [errors(z, y, c, o) for o in offsets]
        ref = reference_bias(z, y, c, offsets)
        assert errors(z, y, c, ref) == min(counts)
        ties = sum(n == min(counts) for n in counts)
        assert (ties == 1) == (name == "one best offset"), name
    z, y, c, offsets = bias_inputs("a tie, offsets shuffled")
    wrong = mistaken_biases(z, y, c, offsets)
    ref = reference_bias(z, y, c, offsets)
    assert ref not in wrong["ties: the largest"] | wrong["ties: the first in the list"]


def test_class_bias_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.class_bias", bias_answer())


# ------------------------------------------------------------------ 08.seeds_needed
def seeds_answer(how=None):
    """An answer to 08.seeds_needed with one typical mistake switched on."""
    def seeds_needed(errors_a, errors_b, k=2.0):
        a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
        d = a - b
        if how != "no ValueError" and d.mean() == 0:
            raise ValueError("no difference")
        sd = (np.sqrt(a.var(ddof=1) + b.var(ddof=1)) if how == "unpaired"
              else d.std(ddof=0 if how == "ddof=0" else 1))
        x = (k * sd / d.mean()) ** 2
        if how == "no ceil":
            return float(x)
        if how == "float":
            return float(max(2, math.ceil(x)))
        n = math.ceil(x)
        return n if how == "below 2" else max(2, n)

    return seeds_needed


def seeds_by_search(errors_a, errors_b, k=2.0):
    """Another correct style: try n = 2, 3, ... until the mean is k standard errors."""
    d = np.subtract(errors_a, errors_b).astype(float)
    if not d.mean():
        raise ValueError("the pilot shows no difference")
    n = 2
    while abs(d.mean()) < k * d.std(ddof=1) / math.sqrt(n):
        n += 1
    return n


def test_seeds_needed_reference_and_other_styles_pass():
    """Do the closed form and a search over n pass every case?"""
    assert_all_pass(run("08.seeds_needed", seeds_answer()))
    assert_all_pass(run("08.seeds_needed", seeds_by_search))


@pytest.mark.parametrize("how, case, word", [
    ("unpaired", "the spread is that of the paired differences", "independent arms"),
    ("ddof=0", "the pilot's standard deviation divides by n - 1", "divides by n"),
    ("no ceil", "a number of seeds is a whole number", "not rounded up"),
    ("below 2", "at least 2 seeds", "below 2"),
    ("no ValueError", "no difference in the pilot raises ValueError", "ValueError"),
    ("float", "returns a Python int", "python int"),
])
def test_seeds_needed_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    with np.errstate(all="ignore"):
        result = run("08.seeds_needed", seeds_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_seeds_needed_mistakes_are_not_blamed_on_others():
    """Is an unpaired spread not called ddof=0 or a missing ceiling?"""
    result = run("08.seeds_needed", seeds_answer("unpaired"))
    for innocent in ("the pilot's standard deviation", "a number of seeds is",
                     "at least 2 seeds"):
        assert_not_blamed(result, innocent)


def test_seeds_needed_oracle_is_the_librarys_paired_summary():
    """With the pilot's mean and spread (kd.paired_summary's se times sqrt(n)), does
    reference_seeds give t >= k at its number of seeds and t < k at one fewer?"""
    pilots = list(PILOTS.values()) + [([91, 97, 88, 94], [90, 96, 88, 90], 2.0)]
    for a, b, k in pilots:
        s = kd.paired_summary(a, b)
        sd = s.se * math.sqrt(s.n)
        n = reference_seeds(a, b, k)
        assert abs(s.mean) / (sd / math.sqrt(n)) >= k - 1e-12
        if n > 2:
            assert abs(s.mean) / (sd / math.sqrt(n - 1)) < k
        assert n == seeds_by_search(a, b, k)
    a, b = [91, 97, 88, 94], [90, 96, 88, 90]  # the ddof case: 6 seeds, 4 with ddof=0
    assert mistaken_seeds(a, b, 2.0, "ddof=0") == {4.0}
    assert reference_seeds(a, b) == 6


def test_seeds_needed_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("08.seeds_needed", seeds_answer())


# ---------------------------------------------------------------------- time limits
REFERENCES = {
    "08.softmax_temperature": softmax_answer(),
    "08.distillation_loss": loss_answer(),
    "08.distillation_grad": grad_answer(),
    "08.logit_matching_limit": limit_answer(),
    "08.teacher_logits": teacher_answer(),
    "08.distill_step": step_answer(),
    "08.class_bias": bias_answer(),
    "08.seeds_needed": seeds_answer(),
}


@pytest.mark.parametrize("qid", QIDS)
def test_checks_run_well_within_their_time_limits(qid):
    """Does the whole question, for the reference, take under a quarter of one case's
    time limit in CPU time (a loaded 2-core machine must not time a right answer out;
    CPU time, so that other jobs on the machine do not count)?"""
    run(qid, REFERENCES[qid])  # warm: imports, first dispatch modes
    start = time.process_time()
    result = run(qid, REFERENCES[qid])
    elapsed = time.process_time() - start
    assert result.score == 1
    assert elapsed < get_question(qid).timeout / 4, elapsed


# ------------------------------------------------------------ found by a learner trial
def _first_core(result):
    return next(c for c in result.cases if c.kind == "core")


def test_distillation_loss_names_hard_terms_on_unlabelled_rows():
    """Is a hard term taken on every row (y = -1 indexing the last class) named?"""
    def hard_everywhere(z, v, y, tau, alpha):
        log_ps, log_pt = _log_softmax(z / tau), _log_softmax(v / tau)
        kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(1)
        ce = -_log_softmax(z)[np.arange(len(y)), y]
        return float((alpha * tau * tau * kl + (1 - alpha) * ce).mean())

    result = run("08.distillation_loss", hard_everywhere)
    assert "labelled -1 have a hard term" in _first_core(result).message
    assert result.score < 1


def test_distillation_loss_names_a_kl_averaged_over_the_classes():
    """Is a soft term divided by N n_c (F.kl_div's reduction="mean") named?"""
    def kl_mean(z, v, y, tau, alpha):
        log_ps, log_pt = _log_softmax(z / tau), _log_softmax(v / tau)
        kl = (np.exp(log_pt) * (log_pt - log_ps)).mean(1)
        picked = np.take_along_axis(_log_softmax(z), np.maximum(y, 0)[:, None], 1)
        ce = np.where(y >= 0, -picked[:, 0], 0.0)
        return float((alpha * tau * tau * kl + (1 - alpha) * ce).mean())

    result = run("08.distillation_loss", kl_mean)
    assert "number of classes" in _first_core(result).message
    assert result.score < 1


@pytest.mark.parametrize("power, word", [(1, "leaves a factor tau"),
                                         (2, "tau^2 factor is missing")])
def test_distillation_grad_names_a_missing_power_of_tau(power, word):
    """Is a soft gradient tau or tau^2 times too small named?"""
    def answer(z, v, y, tau, alpha):
        good = grad_by_autograd(z, v, y, tau, alpha)
        soft = grad_by_autograd(z, v, y, tau, 1.0) * alpha
        return good - soft + soft / tau ** power

    result = run("08.distillation_grad", answer)
    assert word in _first_core(result).message
    assert result.score < 1


def test_seeds_needed_does_not_blame_ddof_for_a_floor():
    """When rounding down and ddof=0 give the same whole number, are both named, so
    that a learner who rounded down is not told to fix the standard deviation?"""
    def floor(errors_a, errors_b, k=2.0):
        d = np.subtract(errors_a, errors_b).astype(float)
        return max(2, int((k * d.std(ddof=1) / d.mean()) ** 2))

    with np.errstate(all="ignore"):
        result = run("08.seeds_needed", floor)
    message = _first_core(result).message
    assert "not rounded up" in message and "divides by n" in message
    assert result.score < 1
