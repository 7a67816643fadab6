"""Tests of lesson 06's checks: the reference passes every case, answers written in
other styles pass, each typical mistake fails its own case (with its hint shown, and
without blaming other mistakes), and answers that compute nothing score 0. The checks'
oracles are tested against the libraries they stand for: sentence-transformers'
Pooling, scikit-learn's metrics, transformers' warmup schedule, and peft's LoRA (its
layer, its merge, its count of trainable parameters). That no hint prints a solution
line is tested for every lesson in test_course_consistency.py."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.grading.checks.lesson06 import (
    NOT_JUDGED, bert_config, bert_parameters, encoders, hugging_face_rates, inspect,
    lora_parameter_count, mistaken_layer_drift, reference_accuracy_f1, reference_count,
    reference_factor, reference_flags, reference_layer_drift, reference_lora_output,
    reference_lora_trainable_share, reference_mean_max_pool, reference_rates, settings,
    tiny_bert, tiny_classifier)
from course_utils.grading.checks.lesson06._common import token_batch
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import NOT_IMPLEMENTED
from course_utils.grading.trivial import trivial_variants

from check_support import case_of, run, stub


def _said(case) -> str:
    return (case.hint + " " + case.message).lower()


def assert_shows(result, case_name, word):
    """The case fails with its own diagnosis: its hint is shown, naming the mistake."""
    case = case_of(result, case_name)
    assert not case.passed and case.shows_hint, (case.name, case.message)
    assert word.lower() in _said(case), (case.hint, case.message)


def assert_not_blamed(result, case_name):
    """The case does not blame its mistake: it passes, or fails without its hint."""
    case = case_of(result, case_name)
    assert case.passed or not case.shows_hint, (case.name, case.message)


def assert_all_pass(result):
    failing = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failing, failing


def assert_trivial_scores_zero(qid, real):
    """Every trivial stand-in for ``real`` (None, pass, raise, the input, zeros...)
    earns nothing."""
    earned = {name: run(qid, variant).score
              for name, variant in trivial_variants(real).items()}
    assert earned and all(score == 0 for score in earned.values()), earned


QIDS = ["06.mean_max_pool", "06.accuracy_f1", "06.freeze_except",
        "06.warmup_linear_decay", "06.lora_merge", "06.layerwise_lr_optimizer",
        "06.layer_drift", "06.lora_trainable_share", "06.inject_lora"]


def test_every_question_has_three_core_cases_and_kinds():
    """Does lesson 06 have its 9 questions in order, each with 3 core cases?"""
    questions = questions_for_lesson("06")
    assert [q.qid for q in questions] == QIDS
    for q in questions:
        assert len(q.core_cases) == 3, q.qid
        assert all(c.kind in ("core", "mistake", "property") for c in q.cases)
        assert q.answers == [q.qid.split(".", 1)[1]], q.qid  # ids match the names


@pytest.mark.parametrize("qid", QIDS)
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError say "not implemented yet" and
    score 0?"""
    result = run(qid, stub)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


def test_not_judged_is_shared():
    """Do lesson 06's checks use the course's one "not judged yet" message?"""
    from course_utils.grading.checks._shared import NOT_JUDGED as SHARED
    assert NOT_JUDGED == SHARED


# ------------------------------------------------------------------ 06.mean_max_pool
def pool_answer(mean="masked", top="masked", order="mean first", in_place=False):
    """An answer to 06.mean_max_pool with one typical mistake switched on."""
    def mean_max_pool(hidden, attention_mask):
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        T = hidden.shape[1]
        if mean == "masked":
            avg = (hidden * m).sum(1) / m.sum(1)
        elif mean == "padding":
            avg = hidden.mean(1)
        else:  # divides by the padded length
            avg = (hidden * m).sum(1) / T
        if top == "masked":
            h = hidden
            if in_place:  # sentence-transformers' older trick, on the caller's tensor
                hidden[m.expand_as(hidden) == 0] = -1e9
            else:
                h = hidden.masked_fill(m == 0, float("-inf"))
            mx = h.max(1).values
        elif top == "zeros":
            mx = (hidden * m).max(1).values
        else:
            mx = hidden.max(1).values
        return torch.cat([avg, mx] if order == "mean first" else [mx, avg], dim=-1)

    return mean_max_pool


def pool_by_loop(hidden, attention_mask):
    """Another correct style: a loop over the sentences, slicing the real tokens."""
    rows = []
    for h, m in zip(hidden, attention_mask):
        real = h[m.bool()]  # (n, C)
        rows.append(torch.cat([real.mean(0), real.max(0).values]))
    return torch.stack(rows)


def test_mean_max_pool_reference_and_other_styles_pass():
    """Do the masked answer and a loop over the sentences pass every case?"""
    assert_all_pass(run("06.mean_max_pool", pool_answer()))
    assert_all_pass(run("06.mean_max_pool", pool_by_loop))


@pytest.mark.parametrize("wrong, case, word", [
    (pool_answer(mean="padding"), "the mean leaves the padding out",
     "padding included"),
    (pool_answer(mean="length"), "the mean divides by the number", "padded length T"),
    (pool_answer(top="zeros"), "the max never picks a padded", "zeros"),
    (pool_answer(top="padding"), "the max never picks a padded", "padding included"),
    (pool_answer(order="max first"), "the mean first, then the max", "swapped"),
    (pool_answer(in_place=True), "returns float32 (B, 2C)", "in place"),
])
def test_mean_max_pool_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.mean_max_pool", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_mean_max_pool_mistakes_are_not_blamed_on_others():
    """Is a mean over the padding not blamed on the max or the order, and swapped halves
    not blamed on the mean?"""
    result = run("06.mean_max_pool", pool_answer(mean="padding"))
    for innocent in ("the max never picks a padded", "the mean first, then the max",
                     "the mean divides by the number"):
        assert_not_blamed(result, innocent)
    result = run("06.mean_max_pool", pool_answer(order="max first"))
    for innocent in ("the mean leaves the padding out",
                     "the mean divides by the number"):
        assert_not_blamed(result, innocent)


def test_mean_max_pool_oracle_is_sentence_transformers_pooling():
    """Is the oracle what sentence-transformers' Pooling computes with the modes
    ("mean", "max"), on a padded batch?"""
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    hidden = torch.randn(3, 6, 5, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    pooling = Pooling(5, pooling_mode=("mean", "max"))
    out = pooling({"token_embeddings": hidden.clone(), "attention_mask": mask})
    assert torch.allclose(out["sentence_embedding"],
                          reference_mean_max_pool(hidden, mask), atol=1e-6)


def test_mean_max_pool_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("06.mean_max_pool", pool_answer())


# ------------------------------------------------------------------- 06.accuracy_f1
def metrics_answer(positive=1, macro=False, one_logit=False, percent=False,
                   by_precision=False, as_tensor=False):
    """An answer to 06.accuracy_f1 with one typical mistake switched on."""
    def accuracy_f1(logits, labels):
        pred = (logits[:, 1] > 0).long() if one_logit else logits.argmax(1)

        def f1(c):
            tp = int(((pred == c) & (labels == c)).sum())
            fp = int(((pred == c) & (labels != c)).sum())
            fn = int(((pred != c) & (labels == c)).sum())
            if by_precision:  # precision first: 0 / 0 when nothing is predicted c
                p = tp / (tp + fp) if tp + fp else math.nan
                r = tp / (tp + fn)
                return 2 * p * r / (p + r) if p + r else 0.0
            return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0

        acc = (pred == labels).double().mean()
        score = (f1(0) + f1(1)) / 2 if macro else f1(positive)
        if as_tensor:
            return acc, torch.tensor(score)
        acc = acc.item()
        return (100 * acc, score) if percent else (acc, score)

    return accuracy_f1


def metrics_with_sklearn(logits, labels):
    """Another correct style: scikit-learn on the argmax predictions."""
    from sklearn.metrics import accuracy_score, f1_score
    pred = logits.argmax(dim=1).numpy()
    y = labels.numpy()
    return float(accuracy_score(y, pred)), float(f1_score(y, pred, zero_division=0))


def test_accuracy_f1_reference_and_other_styles_pass():
    """Do an answer in counts and one with scikit-learn pass every case?"""
    assert_all_pass(run("06.accuracy_f1", metrics_answer()))
    assert_all_pass(run("06.accuracy_f1", metrics_with_sklearn))


@pytest.mark.parametrize("wrong, case, word", [
    (metrics_answer(positive=0), "the F1 of the positive class", "negative class"),
    (metrics_answer(macro=True), "the F1 of one class, not the mean", "macro"),
    (metrics_answer(one_logit=True), "predicts from BOTH logits",
     "positive logit alone"),
    (metrics_answer(percent=True), "accuracy is a fraction", "percent"),
    (metrics_answer(by_precision=True), "a model that predicts no positive", "nan"),
    (metrics_answer(as_tensor=True), "returns two Python floats", "python float"),
])
def test_accuracy_f1_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.accuracy_f1", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_accuracy_f1_mistakes_are_not_blamed_on_others():
    """Is the negative class's F1 not called macro F1 or a one-logit rule?"""
    result = run("06.accuracy_f1", metrics_answer(positive=0))
    for innocent in ("the F1 of one class, not the mean", "predicts from BOTH logits",
                     "accuracy is a fraction"):
        assert_not_blamed(result, innocent)


def test_accuracy_f1_oracle_is_scikit_learn():
    """Is the oracle scikit-learn's accuracy_score and f1_score (zero_division=0), also
    when nothing is predicted positive?"""
    from sklearn.metrics import accuracy_score, f1_score

    from course_utils.grading.checks.lesson06.accuracy_f1 import _inputs
    for args in [(0, 40, 0.5, 1.2), (1, 61, 0.25, 1.5), (7, 30, 0.4, 1.0, 8.0)]:
        logits, labels = _inputs(*args)
        pred = logits.argmax(1).numpy()
        acc, f1 = reference_accuracy_f1(logits, labels)
        assert acc == pytest.approx(accuracy_score(labels.numpy(), pred))
        assert f1 == pytest.approx(f1_score(labels.numpy(), pred, zero_division=0))
    logits, labels = _inputs(7, 30, 0.4, 1.0, 8.0)
    assert int(logits.argmax(1).sum()) == 0 and int(labels.sum()) > 0


def test_accuracy_f1_core_values_are_not_trivial():
    """Is no core case's accuracy or F1 one of the trivial constants 0, 0.5, 1, 2?"""
    from course_utils.grading.checks.lesson06.accuracy_f1 import _inputs
    for args in [(0, 40, 0.5, 1.2), (1, 61, 0.25, 1.5), (2, 300, 0.51, 2.0)]:
        for value in reference_accuracy_f1(*_inputs(*args)):
            assert value not in (0.0, 0.5, 1.0, 2.0)


def test_accuracy_f1_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("06.accuracy_f1", metrics_answer())


# ------------------------------------------------------------------ 06.freeze_except
def freeze_answer(how="requires_grad", count="entries", prefix="dot", unfreeze=True,
                  also_eval=False):
    """An answer to 06.freeze_except with one typical mistake switched on."""
    def freeze_except(model, trainable):
        if how == "eval":
            model.eval()
            return sum(p.numel() for p in model.parameters() if p.requires_grad)
        for name, p in model.named_parameters():
            inside = any(name.startswith(m + ("." if prefix == "dot" else ""))
                         for m in trainable)
            if inside and unfreeze:
                p.requires_grad_(True)
            elif not inside:
                p.requires_grad_(False)
        if also_eval:
            model.eval()
        params = [p for p in model.parameters() if p.requires_grad or count == "all"]
        return len(params) if count == "tensors" else sum(p.numel() for p in params)

    return freeze_except


def freeze_by_submodules(model, trainable):
    """Another correct style: get_submodule, then a count over named_parameters."""
    model.requires_grad_(False)
    for name in trainable:
        model.get_submodule(name).requires_grad_(True)
    return sum(p.numel() for _, p in model.named_parameters() if p.requires_grad)


def test_freeze_except_reference_and_other_styles_pass():
    """Do a name-prefix answer and a get_submodule answer pass every case?"""
    assert_all_pass(run("06.freeze_except", freeze_answer()))
    assert_all_pass(run("06.freeze_except", freeze_by_submodules))


@pytest.mark.parametrize("wrong, case, word", [
    (freeze_answer(how="eval"), "freezing is requires_grad, not model.eval()",
     "nothing is frozen"),
    (freeze_answer(also_eval=True), "the model stays in training mode", "dropout"),
    (freeze_answer(count="all"), "counts the parameters that train", "frozen ones"),
    (freeze_answer(count="tensors"), "counts the parameters that train", "TENSORS"),
    (freeze_answer(prefix="letters"), "a module's name ends at a dot", "layers 10, 11"),
])
def test_freeze_except_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.freeze_except", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_freeze_except_not_unfreezing_fails_one_core():
    """Does an answer that only freezes (never sets True) fail the core whose named
    modules were frozen before, and pass the others?"""
    result = run("06.freeze_except", freeze_answer(unfreeze=False))
    assert not case_of(result, "modules frozen before").passed
    assert case_of(result, "train the classifier only").passed
    assert result.score == pytest.approx(2 / 3, abs=1e-3)


def test_freeze_except_mistakes_are_not_blamed_on_others():
    """Is model.eval() alone not called a miscount, and a miscount not called eval()?"""
    result = run("06.freeze_except", freeze_answer(how="eval"))
    assert result.score == 0
    assert_not_blamed(result, "counts the parameters that train")
    result = run("06.freeze_except", freeze_answer(count="all"))
    for innocent in ("freezing is requires_grad", "the model stays in training mode",
                     "a module's name ends at a dot"):
        assert_not_blamed(result, innocent)


def test_freeze_except_oracle_counts_what_autograd_reaches():
    """After the reference freezing, do exactly the counted entries get a gradient?"""
    model = tiny_classifier(0, layers=3)
    trainable = ["bert.encoder.layer.2", "classifier"]
    for name, p in model.named_parameters():
        p.requires_grad_(reference_flags(model, trainable)[name])
    out = model(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    out.sum().backward()
    with_grad = sum(p.numel() for p in model.parameters() if p.grad is not None)
    assert with_grad == reference_count(model, trainable) > 0


def test_freeze_except_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("06.freeze_except", freeze_answer())


# ------------------------------------------------------------- 06.warmup_linear_decay
def schedule_answer(warmup="course", end="T", decay_over="after warmup",
                    one_rate=False):
    """An answer to 06.warmup_linear_decay with one typical mistake switched on."""
    def warmup_linear_decay(optimizer, warmup_steps, total_steps):
        Tw, T = warmup_steps, total_steps

        def factor(t):
            if t < Tw:
                return (t + 1) / Tw if warmup == "course" else t / Tw
            if decay_over == "whole run":
                return max(0.0, (T - t) / T)
            last = T if end == "T" else T - 1
            return max(0.0, (last - t) / (last - Tw))

        if one_rate:  # a hand-made scheduler that writes one rate into every group
            peak = optimizer.param_groups[0]["lr"]

            class OneRate:
                def __init__(self):
                    self.t = 0
                    self.optimizer = optimizer
                    self._set()

                def _set(self):
                    for g in optimizer.param_groups:
                        g["lr"] = peak * factor(self.t)

                def step(self):
                    self.t += 1
                    self._set()

            return OneRate()
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    return warmup_linear_decay


def schedule_by_sequential_lr(optimizer, warmup_steps, total_steps):
    """Another correct style: two LinearLR chained by SequentialLR (lesson 01's way)."""
    from torch.optim.lr_scheduler import LinearLR, SequentialLR
    warm = LinearLR(optimizer, start_factor=1 / warmup_steps, end_factor=1.0,
                    total_iters=max(warmup_steps - 1, 1))
    decay = LinearLR(optimizer, start_factor=1.0, end_factor=0.0,
                     total_iters=total_steps - warmup_steps)
    return SequentialLR(optimizer, [warm, decay], milestones=[warmup_steps])


def schedule_from_hugging_face(optimizer, warmup_steps, total_steps):
    """transformers' schedule as it is (rate 0 at update 0)."""
    from transformers import get_linear_schedule_with_warmup
    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def test_warmup_linear_decay_reference_and_other_styles_pass():
    """Do a LambdaLR answer and a SequentialLR of two LinearLR pass every case?"""
    assert_all_pass(run("06.warmup_linear_decay", schedule_answer()))
    assert_all_pass(run("06.warmup_linear_decay", schedule_by_sequential_lr))


@pytest.mark.parametrize("wrong, case, word", [
    (schedule_from_hugging_face, "update 0 already learns", "get_linear_schedule"),
    (schedule_answer(warmup="hf"), "update 0 already learns", "rate 0"),
    (schedule_answer(end="T-1"), "the last update, t = T - 1", "already 0"),
    (schedule_answer(decay_over="whole run"), "the decay starts from the peak",
     "(T - t) / T"),
    (schedule_answer(one_rate=True), "each parameter group keeps its own",
     "same rates"),
])
def test_warmup_linear_decay_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.warmup_linear_decay", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_warmup_linear_decay_mistakes_are_not_blamed_on_others():
    """Is Hugging Face's warmup not called an early end or a decay over the whole run,
    and an early end not called Hugging Face's warmup?"""
    result = run("06.warmup_linear_decay", schedule_from_hugging_face)
    for innocent in ("the last update, t = T - 1", "the decay starts from the peak",
                     "each parameter group keeps its own"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("06.warmup_linear_decay", schedule_answer(end="T-1")),
                      "update 0 already learns")


def test_warmup_linear_decay_oracle_is_hugging_face_one_update_earlier():
    """Is the course's schedule transformers.get_linear_schedule_with_warmup one update
    ahead during the warmup and equal to it after (and the notation page's warmup)?"""
    for lrs, Tw, T in [([1e-3], 3, 10), ([2e-5, 1e-3], 6, 40), ([0.1], 1, 5)]:
        hf = hugging_face_rates(lrs, Tw, T, T + 3)
        ours = reference_rates(lrs, Tw, T, T + 2)
        np.testing.assert_allclose(ours[:Tw], hf[1:Tw + 1], rtol=1e-12)
        np.testing.assert_allclose(ours[Tw:], hf[Tw:T + 2], rtol=1e-12, atol=1e-15)
    assert reference_factor(0, 4, 10) == 0.25 and reference_factor(3, 4, 10) == 1.0
    assert reference_factor(9, 4, 10) > 0 and reference_factor(10, 4, 10) == 0.0


def test_warmup_linear_decay_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("06.warmup_linear_decay", schedule_answer())


# ---------------------------------------------------------------------- 06.lora_merge
def merge_answer(scale="alpha/r", transposed=False, bias=True, in_place=False):
    """An answer to 06.lora_merge with one typical mistake switched on."""
    def lora_merge(base, A, B, alpha):
        r = A.shape[0]
        factor = {"alpha/r": alpha / r, "alpha": alpha, "none": 1.0}[scale]
        update = factor * (B @ A)
        if transposed:
            update = update.T
        merged = base if in_place else nn.Linear(base.in_features, base.out_features,
                                                 bias=bias and base.bias is not None)
        with torch.no_grad():
            merged.weight.copy_(base.weight + update)
            if merged.bias is not None and not in_place:
                merged.bias.copy_(base.bias)
        return merged

    return lora_merge


def merge_by_peft(base, A, B, alpha):
    """Another correct style: peft's own LoRA layer on a copy, merged and unloaded."""
    from peft import LoraConfig, get_peft_model
    holder = nn.Sequential()
    holder.add_module("layer", copy.deepcopy(base))
    r = A.shape[0]
    model = get_peft_model(holder, LoraConfig(r=r, lora_alpha=alpha,
                                              target_modules=["layer"]))
    layer = model.base_model.model.layer
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A)
        layer.lora_B["default"].weight.copy_(B)
    return model.merge_and_unload().layer


def test_lora_merge_reference_and_other_styles_pass():
    """Do a new Linear with the folded weight and peft's merge_and_unload pass?"""
    assert_all_pass(run("06.lora_merge", merge_answer()))
    assert_all_pass(run("06.lora_merge", merge_by_peft))


def unmerged_wrapper(base, A, B, alpha):
    """Right outputs, but a module that still runs the adapter (not merged)."""
    class Unmerged(nn.Module):
        def forward(self, x):
            return base(x) + alpha / A.shape[0] * (x @ A.T) @ B.T

    return Unmerged()


@pytest.mark.parametrize("wrong, case, word", [
    (merge_answer(scale="alpha"), "the update is scaled by alpha / r", "division by r"),
    (merge_answer(scale="none"), "the update is scaled at all", "without its factor"),
    (merge_answer(transposed=True), "the update has the weight's layout", "TRANSPOSE"),
    (merge_answer(bias=False), "the bias is kept", "without a bias"),
    (merge_answer(in_place=True), "a new layer; the base layer left", "base layer"),
])
def test_lora_merge_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.lora_merge", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_lora_merge_unmerged_module_scores_zero():
    """Is a module that still computes the adapter (not an nn.Linear) told so, 0?"""
    result = run("06.lora_merge", unmerged_wrapper)
    assert result.score == 0
    assert "expected an nn.Linear" in case_of(result, "a square layer").message


def test_lora_merge_mistakes_are_not_blamed_on_others():
    """Is the scale alpha not called a transposed update or a dropped bias?"""
    result = run("06.lora_merge", merge_answer(scale="alpha"))
    for innocent in ("the update has the weight's layout", "the bias is kept",
                     "the update is scaled at all"):
        assert_not_blamed(result, innocent)


def test_lora_merge_oracle_is_peft_unmerged():
    """Is the oracle the output of peft's LoRA layer (unmerged) on the same weights?"""
    from peft import LoraConfig, get_peft_model

    from course_utils.grading.checks.lesson06.lora_merge import _inputs
    base, A, B, x = _inputs(0, 12, 20, 2)
    holder = nn.Sequential()
    holder.add_module("layer", copy.deepcopy(base))
    model = get_peft_model(holder, LoraConfig(r=2, lora_alpha=16.0,
                                              target_modules=["layer"]))
    layer = model.base_model.model.layer
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A)
        layer.lora_B["default"].weight.copy_(B)
        y = layer(x)
    assert torch.allclose(y.double(), reference_lora_output(base, A, B, 16.0, x),
                          atol=1e-5)


def test_lora_merge_trivial_answers_score_zero():
    """Do None, pass, raise and the first input (the base layer, unmerged) score 0?"""
    assert_trivial_scores_zero("06.lora_merge", merge_answer())


# ---------------------------------------------------------- 06.layerwise_lr_optimizer
def llrd_answer(shift=0, embeddings_as_layer0=False, flat=False, decay_vectors=False,
                adam=False):
    """An answer to 06.layerwise_lr_optimizer with one typical mistake switched on."""
    def layerwise_lr_optimizer(model, lr, decay, weight_decay):
        L = model.config.num_hidden_layers
        groups = []
        for name, p in model.named_parameters():
            if name.startswith("bert.embeddings."):
                power = 1 if flat else L - shift + (0 if embeddings_as_layer0 else 1)
            elif name.startswith("bert.encoder.layer."):
                power = 1 if flat else L - int(name.split(".")[3]) - shift
            else:
                power = 0
            wd = weight_decay if (p.ndim >= 2 or decay_vectors) else 0.0
            groups.append({"params": [p], "lr": lr * decay ** power,
                           "weight_decay": wd})
        return (torch.optim.Adam if adam else torch.optim.AdamW)(groups)

    return layerwise_lr_optimizer


def llrd_by_hugging_face_names(model, lr, decay, weight_decay):
    """Another correct style: the no_decay list of Hugging Face's examples, grouped."""
    no_decay = ("bias", "LayerNorm.weight")
    L = model.config.num_hidden_layers
    layers = [model.bert.embeddings] + list(model.bert.encoder.layer)
    groups = []
    for depth, module in enumerate(layers):  # the embeddings at depth 0
        rate = lr * decay ** (L + 1 - depth)
        named = list(module.named_parameters())
        groups += [{"params": [p for n, p in named if not n.endswith(no_decay)],
                    "lr": rate, "weight_decay": weight_decay},
                   {"params": [p for n, p in named if n.endswith(no_decay)],
                    "lr": rate, "weight_decay": 0.0}]
    head = list(model.bert.pooler.named_parameters()) + list(
        model.classifier.named_parameters())
    groups += [{"params": [p for n, p in head if not n.endswith(no_decay)], "lr": lr,
                "weight_decay": weight_decay},
               {"params": [p for n, p in head if n.endswith(no_decay)], "lr": lr,
                "weight_decay": 0.0}]
    return torch.optim.AdamW(groups)


def test_layerwise_lr_optimizer_reference_and_other_styles_pass():
    """Do one group per parameter and Hugging Face's no_decay grouping both pass?"""
    assert_all_pass(run("06.layerwise_lr_optimizer", llrd_answer()))
    assert_all_pass(run("06.layerwise_lr_optimizer", llrd_by_hugging_face_names))


@pytest.mark.parametrize("wrong, case, word", [
    (llrd_answer(shift=1), "the top layer is one step below", "too close"),
    (llrd_answer(embeddings_as_layer0=True), "the embeddings sit one step below",
     "layer 0"),
    (llrd_answer(flat=True), "the rate decays layer by layer", "share the rate"),
    (llrd_answer(decay_vectors=True), "no weight decay on biases", "decayed too"),
    (llrd_answer(adam=True), "AdamW's decoupled weight decay", "L2"),
])
def test_layerwise_lr_optimizer_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.layerwise_lr_optimizer", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_layerwise_lr_optimizer_mistakes_are_not_blamed_on_others():
    """Is an off-by-one depth not called a flat encoder rate or decayed vectors?"""
    result = run("06.layerwise_lr_optimizer", llrd_answer(shift=1))
    for innocent in ("the embeddings sit one step below",
                     "the rate decays layer by layer", "no weight decay on biases",
                     "AdamW's decoupled weight decay"):
        assert_not_blamed(result, innocent)


def test_layerwise_lr_optimizer_oracle_rates():
    """Are the oracle's rates lr at the head, lr decay at the top layer and lr decay^4
    at the embeddings of a 3-layer model, and weight decay 0 on every vector?"""
    model = tiny_classifier(0, layers=3)
    table = settings(model, 1.0, 0.5, 0.1)
    assert table["classifier.weight"] == (1.0, 0.1)
    assert table["bert.pooler.dense.bias"] == (1.0, 0.0)
    assert table["bert.encoder.layer.2.output.dense.weight"] == (0.5, 0.1)
    assert table["bert.encoder.layer.0.attention.output.LayerNorm.weight"] == (0.125,
                                                                               0.0)
    assert table["bert.embeddings.word_embeddings.weight"] == (0.0625, 0.1)


def test_layerwise_lr_optimizer_trivial_answers_score_zero():
    """Do None, pass, raise and the first input score 0?"""
    assert_trivial_scores_zero("06.layerwise_lr_optimizer", llrd_answer())


# --------------------------------------------------------------------- 06.layer_drift
def drift_answer(eval_mode=True, pooling="mean", dim=-1, centroid=False,
                 distance=False, skip_embeddings=False):
    """An answer to 06.layer_drift with one typical mistake switched on."""
    def layer_drift(before, after, input_ids, attention_mask):
        if eval_mode:
            before.eval()
            after.eval()
        with torch.no_grad():
            a = before(input_ids=input_ids, attention_mask=attention_mask,
                       output_hidden_states=True).hidden_states
            b = after(input_ids=input_ids, attention_mask=attention_mask,
                      output_hidden_states=True).hidden_states
        m = attention_mask.unsqueeze(-1).float()
        out = []
        for x, y in list(zip(a, b))[1 if skip_embeddings else 0:]:
            if pooling == "mean":
                u, v = (x * m).sum(1) / m.sum(1), (y * m).sum(1) / m.sum(1)
            elif pooling == "all":
                u, v = x.mean(1), y.mean(1)
            else:
                u, v = x[:, 0], y[:, 0]
            if centroid:
                cos = F.cosine_similarity(u.mean(0), v.mean(0), dim=0)
            else:
                cos = F.cosine_similarity(u, v, dim=dim).mean()
            out.append(1 - cos.item() if distance else cos.item())
        return np.array(out)

    return layer_drift


def test_layer_drift_reference_passes():
    """Does the reference answer pass every case, also returning a list of floats?"""
    assert_all_pass(run("06.layer_drift", drift_answer()))

    def as_list(before, after, input_ids, attention_mask):
        return list(drift_answer()(before, after, input_ids, attention_mask))

    assert_all_pass(run("06.layer_drift", as_list))


@pytest.mark.parametrize("wrong, case, word", [
    (drift_answer(eval_mode=False), "both encoders in eval mode", "dropout is on"),
    (drift_answer(pooling="all"), "the padding is left out", "padding included"),
    (drift_answer(pooling="cls"), "the sentence embedding is the masked mean", "[CLS]"),
    (drift_answer(dim=0), "one cosine per sentence", "batch dimension"),
    (drift_answer(centroid=True), "the mean of the cosines", "mean embeddings"),
    (drift_answer(distance=True), "a similarity (1: no drift)", "distance"),
    (drift_answer(skip_embeddings=True), "one value per hidden state",
     "embeddings' output is missing"),
])
def test_layer_drift_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.layer_drift", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_layer_drift_mistakes_are_not_blamed_on_others():
    """Is a mean over the padding not called [CLS] pooling, a batch cosine, a centroid
    or a distance?"""
    result = run("06.layer_drift", drift_answer(pooling="all"))
    for innocent in ("both encoders in eval mode", "the sentence embedding is the",
                     "one cosine per sentence", "the mean of the cosines",
                     "a similarity (1: no drift)"):
        assert_not_blamed(result, innocent)


def test_layer_drift_oracle_sees_where_the_model_moved():
    """Is the oracle's drift exactly 1 for the states below the moved layers, below 1
    above them, and the mistaken padding drift different from it?"""
    before, after = encoders(0, from_layer=2, scale=0.3)
    ids, mask = token_batch(0, [7, 4, 5, 2])
    drift = reference_layer_drift(before, after, ids, mask)
    assert drift.shape == (4,) and np.allclose(drift[:2], 1.0, atol=1e-12)
    assert (drift[2:] < 0.999).all() and (drift > 0).all()
    assert not np.allclose(mistaken_layer_drift(before, after, ids, mask, "padding"),
                           drift)
    assert before.training and after.training  # the oracle changed no mode


def test_layer_drift_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("06.layer_drift", drift_answer())


# ------------------------------------------------------------ 06.lora_trainable_share
def share_answer(rule="both", per_layer=True, percent=False, base_only=False,
                 forget=""):
    """An answer to 06.lora_trainable_share with one typical mistake switched on."""
    def lora_trainable_share(config, r, target_modules):
        d, f, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
        sides = {"query": (d, d), "key": (d, d), "value": (d, d),
                 "intermediate.dense": (d, f)}
        each = {"both": lambda k, o: r * (k + o), "in": lambda k, o: r * k,
                "bias": lambda k, o: r * (k + o) + o}[rule]
        lora = sum(each(*sides[t]) for t in target_modules) * (L if per_layer else 1)
        V, P, S = (config.vocab_size, config.max_position_embeddings,
                   config.type_vocab_size)
        norm = 0 if forget == "layernorm" else 2 * d
        embeddings = (V + (0 if forget == "positions" else P) + S) * d + norm
        layer = 4 * (d * d + d) + norm + 2 * d * f + f + d + norm
        total = embeddings + L * layer + (0 if forget == "pooler" else d * d + d)
        share = lora / (total if base_only else total + lora)
        return lora, 100 * share if percent else share

    return lora_trainable_share


def test_lora_trainable_share_reference_passes():
    """Does the formula answer pass every case?"""
    assert_all_pass(run("06.lora_trainable_share", share_answer()))


@pytest.mark.parametrize("wrong, case, word", [
    (share_answer(rule="in"), "A and B both count", "only A"),
    (share_answer(rule="bias"), "A and B both count", "a bias"),
    (share_answer(per_layer=False), "every layer has its own", "one layer only"),
    (share_answer(percent=True), "a share, not a percent", "percent"),
    (share_answer(base_only=True), "the share of ALL the parameters", "base model"),
    (share_answer(forget="pooler"), "BertModel's count", "pooler"),
    (share_answer(forget="positions"), "BertModel's count", "position embeddings"),
    (share_answer(forget="layernorm"), "BertModel's count", "LayerNorms"),
])
def test_lora_trainable_share_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.lora_trainable_share", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_lora_trainable_share_mistakes_are_not_blamed_on_others():
    """Is a count of A only not blamed on the share, and a percent not on the count?"""
    result = run("06.lora_trainable_share", share_answer(rule="in"))
    for innocent in ("a share, not a percent", "the share of ALL the parameters",
                     "BertModel's count"):
        assert_not_blamed(result, innocent)
    result = run("06.lora_trainable_share", share_answer(percent=True))
    for innocent in ("A and B both count", "every layer has its own",
                     "BertModel's count"):
        assert_not_blamed(result, innocent)


@pytest.mark.parametrize("sizes, r, targets", [
    (dict(hidden=16, layers=2, heads=2, ffn=64, vocab=100, positions=32), 2,
     ["query", "key", "value", "intermediate.dense"]),
    (dict(hidden=32, layers=3, heads=4, ffn=40, vocab=1000, positions=64,
          type_vocab=3), 4, ["value", "intermediate.dense"]),
    (dict(hidden=24, layers=1, heads=2, ffn=24, vocab=50, positions=8), 3, ["query"]),
])
def test_lora_trainable_share_oracle_is_peft_on_a_real_bert(sizes, r, targets):
    """Are the oracle's counts what peft reports for a real BertModel with LoRA on
    these targets (and what BertModel itself holds)?"""
    from peft import LoraConfig, get_peft_model
    from transformers import BertModel

    config = bert_config(**sizes)
    torch.manual_seed(0)
    model = BertModel(config)
    assert sum(p.numel() for p in model.parameters()) == bert_parameters(config)
    assert lora_parameter_count(model, targets, r) == reference_lora_trainable_share(
        config, r, targets)[0]
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r,
                                                  target_modules=targets))
    trainable, total = peft_model.get_nb_trainable_parameters()
    lora, share = reference_lora_trainable_share(config, r, targets)
    assert (trainable, trainable / total) == (lora, pytest.approx(share, rel=1e-12))


def test_lora_trainable_share_minilm_is_about_a_third_of_a_percent():
    """Is all-MiniLM-L6-v2's count 22,713,216 (the lesson's model) and its share with
    r = 8 on query and value about 0.32 % (the issue's "about 0.3%")?"""
    config = bert_config(hidden=384, layers=6, heads=12, ffn=1536, vocab=30522,
                         positions=512)
    assert bert_parameters(config) == 22_713_216
    lora, share = reference_lora_trainable_share(config, 8, ["query", "value"])
    assert lora == 73_728 and share == pytest.approx(0.003236, abs=1e-6)


def test_lora_trainable_share_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("06.lora_trainable_share", share_answer())


# --------------------------------------------------------------------- 06.inject_lora
def lora_answer(A_init="random", B_init="zeros", scale="alpha/r", freeze_base=True,
                freeze_rest=True, as_linears=False):
    """An answer to 06.inject_lora with one typical mistake switched on."""
    def inject_lora(model, target_modules, r, alpha):
        factor = alpha / r if scale == "alpha/r" else alpha

        class LoRA(nn.Module):
            def __init__(self, base):
                super().__init__()
                self.base = base
                k, d = base.in_features, base.out_features
                if as_linears:  # peft's layout: two Linears without bias
                    self.lora_A = nn.Linear(k, r, bias=False)
                    self.lora_B = nn.Linear(r, d, bias=False)
                    nn.init.zeros_(self.lora_B.weight)
                else:
                    self.A = nn.Parameter(torch.randn(r, k) / k ** 0.5
                                          if A_init == "random" else torch.zeros(r, k))
                    self.B = nn.Parameter(torch.zeros(d, r) if B_init == "zeros"
                                          else torch.randn(d, r))

            def forward(self, x):
                if as_linears:
                    return self.base(x) + factor * self.lora_B(self.lora_A(x))
                return self.base(x) + factor * (x @ self.A.T) @ self.B.T

        if freeze_rest:
            for p in model.parameters():
                p.requires_grad_(False)
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)
                 and any(n.endswith("." + t) or n == t for t in target_modules)]
        for n in names:
            parent, _, child = n.rpartition(".")
            holder = model.get_submodule(parent)
            base = getattr(holder, child)
            if freeze_base:
                base.requires_grad_(False)
            setattr(holder, child, LoRA(base))
        return model

    return inject_lora


def lora_by_peft(model, target_modules, r, alpha):
    """Another correct style: peft itself (a new wrapper model, A at kaiming, B 0)."""
    from peft import LoraConfig, get_peft_model
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha,
                                            target_modules=list(target_modules)))


def test_inject_lora_reference_and_other_styles_pass():
    """Do a wrapper with A and B parameters, one with peft's two Linears, and peft
    itself pass every case?"""
    assert_all_pass(run("06.inject_lora", lora_answer()))
    assert_all_pass(run("06.inject_lora", lora_answer(as_linears=True)))
    assert_all_pass(run("06.inject_lora", lora_by_peft))


@pytest.mark.parametrize("wrong, case, word", [
    (lora_answer(B_init="random"), "B starts at zero", "before any training"),
    (lora_answer(A_init="zeros"), "A starts at random", "no gradient"),
    (lora_answer(scale="alpha"), "the update is scaled by alpha / r", "division by r"),
    (lora_answer(freeze_base=False, freeze_rest=False),
     "every other parameter of the model is frozen", "outside the adapters"),
])
def test_inject_lora_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("06.inject_lora", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_inject_lora_unfrozen_base_is_named():
    """Is a base Linear left trainable (the rest frozen) told as such?"""
    def base_trains(model, target_modules, r, alpha):
        model = lora_answer()(model, target_modules, r, alpha)
        for n, m in model.named_modules():
            if n.endswith(".base"):
                m.requires_grad_(True)
        return model

    result = run("06.inject_lora", base_trains)
    assert_shows(result, "the base Linear is frozen", "still train")
    assert result.score == 0


def test_inject_lora_mistakes_are_not_blamed_on_others():
    """Is a random B not called a zero A or a wrong scale, and a wrong scale not called
    a random B?"""
    result = run("06.inject_lora", lora_answer(B_init="random"))
    for innocent in ("A starts at random", "the update is scaled by alpha / r",
                     "the base Linear is frozen"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("06.inject_lora", lora_answer(scale="alpha")),
                      "B starts at zero")


def test_inject_lora_inspection_agrees_with_peft():
    """On peft's own LoRA, does the inspection find every pair, nothing else trainable,
    the pretrained output at initialisation and alpha / r in the forward pass?"""
    model = tiny_bert(0, layers=2)
    seen = inspect(lora_by_peft, model, ["query", "value"], 2, 4.0, 0)
    assert seen.problems() == []
    assert len(seen.pairs) == 4 and seen.B_zero and not seen.A_zero
    assert sum(p.numel() for p in seen.model.parameters() if p.requires_grad) == \
        lora_parameter_count(tiny_bert(0, layers=2), ["query", "value"], 2)


def test_inject_lora_trivial_answers_score_zero():
    """Do None, pass, raise and the first input (the model unchanged) score 0?"""
    assert_trivial_scores_zero("06.inject_lora", lora_answer())
