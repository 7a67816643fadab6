"""Tests of course_utils.lessons.distill (lesson 08): the distillation loss against a
direct computation from its definition, its gradient against the derived formula and
autograd, and the training and counting helpers."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.lessons import distill as kd


def _logits(n=6, k=10, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64) * scale


def _direct(z, v, y, T, alpha):
    """The loss from its definition, example by example, in plain Python floats."""
    total = 0.0
    for zi, vi, yi in zip(z.tolist(), v.tolist(), y.tolist()):
        p = np.exp(np.array(vi) / T); p /= p.sum()
        q = np.exp(np.array(zi) / T); q /= q.sum()
        kl = float((p * (np.log(p) - np.log(q))).sum())
        hard = 0.0
        if yi != kd.UNLABELLED:
            s = np.exp(np.array(zi)); s /= s.sum()
            hard = -math.log(s[yi])
        total += alpha * T ** 2 * kl + (1 - alpha) * hard
    return total / len(z)


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (20.0, 0.3), (2.5, 1.0),
                                     (3.0, 0.0)])
def test_loss_matches_definition(T, alpha):
    """Is the loss alpha T^2 KL(p || q) + (1 - alpha) CE, averaged over the batch?"""
    z, v = _logits(seed=1), _logits(seed=2)
    y = torch.tensor([0, 3, 9, 1, 1, 7])
    ours = kd.distillation_loss(z, v, y, T, alpha).item()
    assert ours == pytest.approx(_direct(z, v, y, T, alpha), rel=1e-10)


def test_unlabelled_rows_have_only_the_soft_term():
    """A transfer-set row (label -1) adds its soft term only; N stays the batch size."""
    z, v = _logits(seed=3), _logits(seed=4)
    y = torch.tensor([0, -1, 9, -1, -1, 7])
    ours = kd.distillation_loss(z, v, y, 4.0, 0.7).item()
    assert ours == pytest.approx(_direct(z, v, y, 4.0, 0.7), rel=1e-10)


def test_gradient_is_the_derived_one():
    """dL/dz = [alpha T (q - p) + (1 - alpha)(softmax(z) - onehot(y))] / N, checked
    with autograd."""
    T, alpha = 5.0, 0.8
    z = _logits(seed=5).requires_grad_()
    v = _logits(seed=6)
    y = torch.tensor([2, 2, 0, 5, 8, 1])
    kd.distillation_loss(z, v, y, T, alpha).backward()
    q, p = torch.softmax(z.detach() / T, 1), torch.softmax(v / T, 1)
    onehot = torch.nn.functional.one_hot(y, 10).double()
    derived = (alpha * T * (q - p)
               + (1 - alpha) * (torch.softmax(z.detach(), 1) - onehot)) / len(z)
    torch.testing.assert_close(z.grad, derived)
    assert torch.autograd.gradcheck(
        lambda s: kd.distillation_loss(s, v, y, T, alpha), (z.detach().clone()
                                                            .requires_grad_(),))


def test_high_temperature_limit_is_logit_matching():
    """For large T, T^2 dKL/dz_i -> ((z_i - mean z) - (v_i - mean v)) / K per example."""
    z, v = _logits(1, seed=7), _logits(1, seed=8)
    y = torch.tensor([kd.UNLABELLED])
    for T, tol in [(10.0, 0.2), (100.0, 0.02), (1000.0, 0.002)]:
        s = z.clone().requires_grad_()
        kd.distillation_loss(s, v, y, T, alpha=1.0).backward()
        limit = ((z - z.mean()) - (v - v.mean())) / 10
        assert (s.grad - limit).abs().max() / limit.abs().max() < tol


def test_kl_and_cross_entropy_differ_by_the_teachers_entropy():
    """CE(p, q) = KL(p || q) + H(p): same gradient in z, a constant apart."""
    z, v = _logits(seed=9), _logits(seed=10)
    p = kd.soft_targets(v, 3.0)
    log_q = torch.log_softmax(z / 3.0, 1)
    ce = -(p * log_q).sum(1).mean()
    kl = kd.distillation_loss(z, v, torch.full((6,), -1), 3.0, 1.0) / 9.0
    entropy = -(p * p.log()).sum(1).mean()
    assert ce.item() == pytest.approx((kl + entropy).item(), rel=1e-10)


def test_soft_targets_reject_a_bad_temperature():
    with pytest.raises(ValueError, match="positive"):
        kd.soft_targets(_logits(), 0.0)


def test_teacher_logits_in_order_eval_mode_and_mode_restored():
    """Batched logits equal one forward of the whole set in eval mode (dropout off),
    in order, with no gradient, and the model's mode is given back."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    X = torch.randn(37, 5)
    out = kd.teacher_logits(model, X, batch_size=10)
    assert model.training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(out, model(X))
    assert not out.requires_grad and out.dtype == torch.float32


def test_train_student_learns_and_is_deterministic():
    """A student distilled from a fixed linear teacher fits it; same seed, same model."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(512, 20, generator=g)
    W = torch.randn(20, 4, generator=g)
    v = X @ W * 3
    y = v.argmax(1)

    def run(seed):
        torch.manual_seed(seed)
        return kd.train_student(kd.MLP((16,), in_features=20, num_classes=4), X, y, v,
                                tau=2.0, alpha=0.5, epochs=30, batch_size=64, lr=1e-2,
                                seed=seed)

    a, b = run(1), run(1)
    assert a.losses[-1] < 0.5 * a.losses[0]
    assert kd.test_errors(a.model, X, y) < 40
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_train_alone_drops_unlabelled_rows():
    X = torch.randn(64, 3)
    y = torch.full((64,), kd.UNLABELLED)
    y[:8] = torch.tensor([0, 1] * 4)
    run = kd.train_student(kd.MLP((4,), in_features=3, num_classes=2), X, y, epochs=2,
                           batch_size=4)
    assert len(run.losses) == 2 and all(math.isfinite(z) for z in run.losses)


def test_errors_per_class_and_bias():
    y = torch.tensor([0, 1, 2, 2, 3])
    predicted = torch.tensor([0, 2, 2, 1, 1])
    assert kd.errors_per_class(predicted, y, 4).tolist() == [0, 1, 1, 1]
    model = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    X = torch.zeros(4, 2)
    labels = torch.tensor([2, 2, 2, 0])
    assert kd.test_errors(model, X, labels) == 3              # all predicted 0
    assert kd.test_errors(model, X, labels, bias=torch.tensor([0., 0., 1.])) == 1


def test_paired_summary_against_scipy():
    """Mean, standard error and t of paired differences, as scipy's paired t-test."""
    stats = pytest.importorskip("scipy.stats")
    a = [243, 250, 239, 247, 241]
    b = [221, 229, 224, 230, 219]
    s = kd.paired_summary(a, b)
    ref = stats.ttest_rel(a, b)
    assert s.t == pytest.approx(ref.statistic)
    assert s.mean == pytest.approx(np.mean(np.subtract(a, b)))
    assert s.se == pytest.approx(np.std(np.subtract(a, b), ddof=1) / math.sqrt(5))
    with pytest.raises(ValueError):
        kd.paired_summary([1], [2])


def test_teacher_logits_pads_the_last_batch_for_fixed_shape_models():
    """A model that accepts one batch size only still gets every row, in order."""
    weight = torch.randn(5, 3)

    def fixed(x):                       # a stand-in for a model compiled for batch 8
        assert x.shape[0] == 8
        return x @ weight

    X = torch.randn(21, 5)
    torch.testing.assert_close(kd.teacher_logits(fixed, X, 8, pad_last=True), X @ weight)
