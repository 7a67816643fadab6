"""Tests of lesson 04's checks: the reference passes every case, answers written in
other styles pass, each typical mistake fails its own case (with its hint shown, and
without blaming other mistakes), library calls in "from scratch" questions score 0, and
answers that compute nothing score 0 (that no hint prints a solution line is tested for
every lesson in test_course_consistency.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.grading.checks.lesson04 import (
    NOT_JUDGED, CharLSTM, markov_text, nucleus, reference_clip_global_norm,
    reference_interpolated_bigram, reference_lstm_cell, reference_masked_perplexity,
    reference_rnn_last_step_bptt, reference_sample_top_p)
from course_utils.grading.checks.lesson04.interpolated_bigram import _setting
from course_utils.grading.checks.lesson04.rnn_last_step_bptt import (_inputs as
                                                                     bptt_inputs,
                                                                     mistaken_bptt)
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import FORBIDDEN, NOT_IMPLEMENTED
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


QIDS = ["04.masked_perplexity", "04.interpolated_bigram", "04.clip_global_norm",
        "04.sample_top_p", "04.lstm_forget_bias", "04.lstm_cell",
        "04.rnn_last_step_bptt", "04.lstm_tbptt_step"]


def test_every_question_has_three_core_cases_and_kinds():
    """Does lesson 04 have its 8 questions in order, each with 3 core cases?"""
    questions = questions_for_lesson("04")
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


# ---------------------------------------------------------------- 04.masked_perplexity
def perplexity(per_token=True, masked=True, divide_by="real", how="exp", stable=True,
               flat=True):
    """An answer to 04.masked_perplexity with one typical mistake switched on."""
    def masked_perplexity(logits, targets, mask):
        B, T, V = logits.shape
        if not flat:  # classes taken from dimension 1 (T)
            nll = F.cross_entropy(logits, targets, reduction="none")  # (B, V)
        elif stable:
            nll = -torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
        else:
            p = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
            nll = -torch.log(p.gather(-1, targets[..., None])[..., 0])  # (B, T)
        m = mask.float() if masked else torch.ones_like(mask, dtype=torch.float32)
        if per_token:
            mean = (nll * m).sum() / (m.sum() if divide_by == "real" else m.numel())
        else:
            mean = ((nll * m).sum(1) / m.sum(1)).mean()
        if how == "loss":
            return mean.item()
        if how == "base2":
            return (2 ** mean).item()
        if how == "tensor":
            return torch.exp(mean)
        if how == "mean of perplexities":
            return ((nll * m).sum(1) / m.sum(1)).exp().mean().item()
        return math.exp(mean.item())

    return masked_perplexity


def perplexity_ignore_index(logits, targets, mask):
    """Another correct style: F.cross_entropy's ignore_index on the padded targets."""
    V = logits.shape[-1]
    y = targets.masked_fill(~mask, -100)
    return math.exp(F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)).item())


def test_masked_perplexity_reference_and_other_styles_pass():
    """Do a log-softmax answer and an ignore_index answer pass every case?"""
    assert_all_pass(run("04.masked_perplexity", perplexity()))
    assert_all_pass(run("04.masked_perplexity", perplexity_ignore_index))


@pytest.mark.parametrize("wrong, case, word", [
    (perplexity(masked=False), "padding positions are left out", "padding included"),
    (perplexity(divide_by="all"), "divides by the number of real tokens", "B x T"),
    (perplexity(per_token=False), "every token weighs the same", "per-sequence mean"),
    (perplexity(how="mean of perplexities"), "every token weighs the same",
     "per-sequence perplexities"),
    (perplexity(flat=False), "the classes are the last dimension", "dimension 1"),
    (perplexity(how="loss"), "perplexity, not the loss", "not its exponential"),
    (perplexity(how="base2"), "perplexity, not the loss", "2 to the mean loss"),
    (perplexity(stable=False), "stable for logits of size 100", "overflow"),
    (perplexity(how="tensor"), "returns a Python float", ".item()"),
])
def test_masked_perplexity_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("04.masked_perplexity", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_masked_perplexity_mistakes_are_not_blamed_on_others():
    """Is a per-sequence mean not blamed on the padding or on B x T, and the missing
    mask not blamed on the per-sequence mean?"""
    result = run("04.masked_perplexity", perplexity(per_token=False))
    for innocent in ("padding positions are left out",
                     "divides by the number of real tokens"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("04.masked_perplexity", perplexity(masked=False)),
                      "every token weighs the same")


def test_masked_perplexity_oracle_is_exp_of_the_mean_nll():
    """Is the oracle exp of the mean negative log-probability of the real tokens,
    worked out by hand on a tiny input?"""
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])  # (1, 2, 2)
    targets = torch.tensor([[1, 0]])
    mask = torch.tensor([[True, False]])
    # P(target) = 3/4 on the one real position: perplexity 4/3
    assert reference_masked_perplexity(logits, targets, mask) == pytest.approx(4 / 3)


def test_masked_perplexity_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("04.masked_perplexity", perplexity())


# -------------------------------------------------------------- 04.interpolated_bigram
def bigram_answer(on="val", swap=False, axis=1, pseudo=0.0, bits=False,
                  index=False):
    """An answer to 04.interpolated_bigram with one typical mistake switched on."""
    def interpolated_bigram(train_ids, val_ids, V, lambdas):
        unigram = np.bincount(train_ids, minlength=V) / len(train_ids)
        counts = np.zeros((V, V))
        np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
        counts += pseudo
        bigram = counts / counts.sum(axis=axis, keepdims=True)
        text = train_ids if on == "train" else val_ids
        losses = []
        for lam in lambdas:
            w = 1 - lam if swap else lam
            p = w * bigram[text[:-1], text[1:]] + (1 - w) * unigram[text[1:]]
            with np.errstate(divide="ignore"):
                losses.append(-np.log(p).mean() / (math.log(2) if bits else 1.0))
        best = int(np.argmin(losses))
        return (best if index else float(lambdas[best])), float(losses[best])

    return interpolated_bigram


def library_bigram(train_ids, val_ids, V, lambdas):
    """The lesson's smoothed tables (ngram_log_probs, pseudo_count 0.1) interpolated."""
    from course_utils.lessons.rnn import ngram_counts, ngram_log_probs
    unigram = np.exp(ngram_log_probs(ngram_counts(train_ids, V, 1)))
    bigram = np.exp(ngram_log_probs(ngram_counts(train_ids, V, 2)))
    losses = [-np.log(lam * bigram[val_ids[:-1], val_ids[1:]]
                      + (1 - lam) * unigram[val_ids[1:]]).mean() for lam in lambdas]
    best = int(np.argmin(losses))
    return float(lambdas[best]), float(losses[best])


def bigram_in_pure_python(train_ids, val_ids, V, lambdas):
    """Another correct style: dictionaries of counts and a min over the grid."""
    from collections import Counter
    pairs = Counter(zip(train_ids[:-1].tolist(), train_ids[1:].tolist()))
    singles = Counter(train_ids.tolist())
    context = Counter(train_ids[:-1].tolist())

    def loss(lam):
        total = 0.0
        for a, b in zip(val_ids[:-1].tolist(), val_ids[1:].tolist()):
            p = lam * pairs[a, b] / context[a] + (1 - lam) * singles[b] / len(train_ids)
            total += -math.log(p) if p > 0 else math.inf
        return total / (len(val_ids) - 1)

    scored = [(loss(lam), i) for i, lam in enumerate(lambdas)]
    best_loss, i = min(scored)
    return lambdas[i], best_loss


def test_interpolated_bigram_reference_and_other_styles_pass():
    """Do a NumPy answer and a pure-Python one (NumPy floats returned) pass?"""
    assert_all_pass(run("04.interpolated_bigram", bigram_answer()))
    assert_all_pass(run("04.interpolated_bigram", bigram_in_pure_python))


@pytest.mark.parametrize("wrong, case, word", [
    (bigram_answer(on="train"), "lambda is chosen on the validation text", "TRAINING"),
    (bigram_answer(swap=True), "lambda weighs the bigram", "1 - lambda"),
    (bigram_answer(axis=0), "the bigram is P(next | previous)", "P(previous | next)"),
    (bigram_answer(pseudo=1.0), "counted estimates, no pseudo-counts", "add-a"),
    (bigram_answer(pseudo=0.1), "counted estimates, no pseudo-counts", "add-a"),
    (library_bigram, "counted estimates, no pseudo-counts", "pseudo_count"),
    (bigram_answer(bits=True), "the loss is in nats", "bits"),
    (bigram_answer(index=True), "returns lambda itself", "position"),
])
def test_interpolated_bigram_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("04.interpolated_bigram", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_interpolated_bigram_mistakes_are_not_blamed_on_others():
    """Is a choice on the training text not called a swapped lambda, add-one smoothing
    or bits, and a loss in bits not called a choice on the training text?"""
    result = run("04.interpolated_bigram", bigram_answer(on="train"))
    for innocent in ("lambda weighs the bigram", "counted estimates, no pseudo-counts",
                     "the loss is in nats"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("04.interpolated_bigram", bigram_answer(bits=True)),
                      "lambda is chosen on the validation text")


def test_interpolated_bigram_cases_choose_inside_the_grid():
    """Does every case's best lambda lie strictly inside its grid and differ from the
    training-text choice, and does every symbol occur as a context in training?"""
    for args in [(0, 8, 800, 1000), (3, 10, 1000, 1000), (4, 10, 1000, 1000)]:
        train, val, V, lambdas = _setting(*args)
        lam, loss = reference_interpolated_bigram(train, val, V, lambdas)
        assert lambdas[0] < lam < lambdas[-1] and math.isfinite(loss)
        assert reference_interpolated_bigram(train, val, V, lambdas, on="train")[0] == 1
        assert len(np.unique(train[:-1])) == V
    train, val = markov_text(0, 8, 800, 1000, noise=0.3)
    assert (train.dtype, len(train), len(val)) == (np.int64, 800, 1000)


def test_interpolated_bigram_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("04.interpolated_bigram", bigram_answer())


# ----------------------------------------------------------------- 04.clip_global_norm
def clip_answer(per_tensor=False, summed=False, always=False, after=False,
                none_ok=True, in_place=False):
    """An answer to 04.clip_global_norm with one typical mistake switched on."""
    def clip_global_norm(grads, max_norm):
        present = [g for g in grads if g is not None] if none_ok else grads
        norms = [g.norm() for g in present]
        if per_tensor:
            return [g * min(1.0, max_norm / (float(n) + 1e-6))
                    for g, n in zip(grads, norms)], float(torch.stack(norms).norm())
        total = float(sum(norms)) if summed else float(torch.stack(norms).norm())
        scale = max_norm / (total + 1e-6)
        scale = scale if always else min(1.0, scale)
        if in_place:
            for g in present:
                g.mul_(scale)
            out = grads
        else:
            out = [None if g is None else g * scale for g in grads]
        return out, (min(total, max_norm) if after else total)

    return clip_global_norm


def clip_with_the_library(grads, max_norm):
    """The lesson's clip_grad_norm_, on parameters that hold the gradients."""
    params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], float(total)


def test_clip_global_norm_reference_passes():
    """Does a from-scratch answer (without PyTorch's 1e-6 too) pass every case?"""
    assert_all_pass(run("04.clip_global_norm", clip_answer()))

    def without_eps(grads, max_norm):
        total = math.sqrt(sum(float((g ** 2).sum()) for g in grads if g is not None))
        scale = min(1.0, max_norm / total)
        return [None if g is None else g * scale for g in grads], total

    assert_all_pass(run("04.clip_global_norm", without_eps))


def test_clip_global_norm_library_call_scores_zero():
    """Does clip_grad_norm_ itself (the lesson's call) score 0 as a library call?"""
    result = run("04.clip_global_norm", clip_with_the_library)
    assert result.status == FORBIDDEN and result.score == 0
    assert "clip_grad_norm_" in result.cases[0].message


@pytest.mark.parametrize("wrong, case, word", [
    (clip_answer(per_tensor=True), "one norm over all the gradients", "on its own"),
    (clip_answer(summed=True), "the norm is the square root", "sum of the tensors'"),
    (clip_answer(always=True), "below max_norm the gradients", "scaled UP"),
    (clip_answer(after=True), "returns the total norm from before", "AFTER"),
    (clip_answer(none_ok=False), "a None gradient is skipped", "NoneType"),
    (clip_answer(in_place=True), "new tensors of the gradients' shapes", "in place"),
])
def test_clip_global_norm_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("04.clip_global_norm", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_clip_global_norm_per_tensor_fails_the_cores_and_blames_nothing_else():
    """Does per-tensor clipping fail the core cases that clip, and is it not called a
    sum of norms or an upscaling?"""
    result = run("04.clip_global_norm", clip_answer(per_tensor=True))
    assert result.score < 0.5
    for innocent in ("the norm is the square root", "below max_norm the gradients"):
        assert_not_blamed(result, innocent)


def test_clip_global_norm_oracle_scales_to_max_norm():
    """Does the oracle leave a total norm of max_norm (1e-6 aside) and return the norm
    before clipping?"""
    grads = [torch.full((2, 2), 3.0), torch.full((1,), 4.0)]  # norm sqrt(36 + 16)
    clipped, total = reference_clip_global_norm(grads, 1.0)
    assert total == pytest.approx(math.sqrt(52.0))
    assert torch.cat([g.flatten() for g in clipped]).norm().item() == pytest.approx(1.0)


def test_clip_global_norm_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("04.clip_global_norm", clip_answer())


# --------------------------------------------------------------------- 04.sample_top_p
def top_p_answer(cut_before=False, multiply=False, nucleus_first=False,
                 sorted_only=False, sorted_mapped=False, no_nucleus=False,
                 keep_dim=False, as_float=False):
    """An answer to 04.sample_top_p with one typical mistake switched on."""
    def sample_top_p(logits, temperature, top_p, generator):
        z = logits * temperature if multiply else logits / temperature
        probs = torch.softmax(z, dim=-1)
        cut_from = torch.softmax(logits, dim=-1) if nucleus_first else probs
        sorted_p, order = torch.sort(cut_from, dim=-1, descending=True)
        cumulative = torch.cumsum(sorted_p, dim=-1)
        if cut_before:
            keep_sorted = cumulative <= top_p
            keep_sorted[:, 0] = True
        else:
            keep_sorted = cumulative - sorted_p < top_p
        if no_nucleus:
            keep_sorted = torch.ones_like(keep_sorted)
        if sorted_only or sorted_mapped:
            p = torch.gather(probs, -1, order) * keep_sorted
            pos = torch.multinomial(p, 1, generator=generator)
            out = torch.gather(order, -1, pos) if sorted_mapped else pos
            return out.squeeze(-1)
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        ids = torch.multinomial(probs * keep, 1, generator=generator)
        ids = ids if keep_dim else ids.squeeze(-1)
        return ids.float() if as_float else ids

    return sample_top_p


def top_p_by_minus_infinity(logits, temperature, top_p, generator):
    """Another correct style (as in Hugging Face's TopPLogitsWarper): sort the logits
    ascending, drop the tokens whose cumulative probability stays within 1 - top_p,
    fill them with -inf, softmax, draw."""
    z = logits / temperature
    sorted_z, order = torch.sort(z, dim=-1)  # ascending
    cumulative = torch.softmax(sorted_z, dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= 1 - top_p
    drop_sorted[:, -1] = False
    drop = drop_sorted.scatter(1, order, drop_sorted)
    probs = torch.softmax(z.masked_fill(drop, float("-inf")), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def test_sample_top_p_reference_and_other_styles_pass():
    """Do the reference procedure and the -inf style pass every case?"""
    assert_all_pass(run("04.sample_top_p", top_p_answer()))
    assert_all_pass(run("04.sample_top_p", top_p_by_minus_infinity))


@pytest.mark.parametrize("wrong, case, word", [
    (top_p_answer(cut_before=True), "the token that crosses top_p is kept",
     "one token short"),
    (top_p_answer(multiply=True), "the logits are divided by the temperature",
     "MULTIPLIED"),
    (top_p_answer(nucleus_first=True), "the nucleus is taken at the temperature",
     "temperature 1"),
    (top_p_answer(sorted_only=True), "returns token ids, not positions",
     "sorted order"),
    (top_p_answer(sorted_mapped=True), "draws from the probabilities in vocabulary",
     "mapped back"),
    (top_p_answer(no_nucleus=True), "never draws outside the nucleus", "outside"),
    (top_p_answer(as_float=True), "returns a (B,) int64 tensor", "int64"),
])
def test_sample_top_p_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("04.sample_top_p", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_sample_top_p_keeping_the_sample_dimension_is_a_shape_problem():
    """Is multinomial's (B, 1) returned as it is told as a shape problem, once, 0?"""
    result = run("04.sample_top_p", top_p_answer(keep_dim=True))
    assert result.score == 0
    assert "squeeze" in case_of(result, "B = 4, V = 10").message


def test_sample_top_p_mistakes_are_not_blamed_on_others():
    """Is a nucleus one token short not blamed on the temperature or the order?"""
    result = run("04.sample_top_p", top_p_answer(cut_before=True))
    for innocent in ("the logits are divided by the temperature",
                     "returns token ids, not positions",
                     "draws from the probabilities in vocabulary order"):
        assert_not_blamed(result, innocent)


@pytest.mark.parametrize("seed, B, V, temperature, top_p, scale", [
    (0, 4, 10, 1.0, 0.9, 2.0), (1, 3, 65, 0.7, 0.8, 2.0), (2, 5, 30, 1.5, 0.5, 2.0),
    (3, 4, 12, 1.0, 0.7, 2.0), (4, 4, 12, 0.5, 0.9, 2.0), (5, 4, 12, 2.0, 0.6, 2.0),
    (6, 4, 12, 1.0, 0.8, 2.0), (7, 4, 12, 1.0, 0.8, 2.0), (8, 6, 20, 1.0, 0.3, 0.8),
])
def test_sample_top_p_cases_are_far_from_the_threshold(seed, B, V, temperature, top_p,
                                                       scale):
    """Does no cumulative probability of a case's logits lie within 1e-4 of top_p (so
    float32 and float64 cut the same nucleus), at the temperature and at 1?"""
    logits = torch.randn(B, V, generator=torch.Generator().manual_seed(seed)) * scale
    for z in (logits / temperature, logits, logits * temperature):
        p = torch.softmax(z.double(), -1).sort(-1, descending=True).values
        assert (p.cumsum(-1) - top_p).abs().min() > 1e-4


def test_sample_top_p_oracle_draws_only_the_nucleus_at_its_frequencies():
    """Do the oracle's draws stay in the nucleus, with frequencies close to the
    renormalised nucleus probabilities?"""
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]])
    kept = nucleus(logits, 1.0, 0.8)[0]  # float64 (V,)
    assert kept[3] == 0 and kept[4] == 0 and kept.sum().item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    draws = torch.cat([reference_sample_top_p(logits, 1.0, 0.8, g)
                       for _ in range(4000)])
    freq = torch.bincount(draws, minlength=5).double() / 4000
    assert torch.allclose(freq, kept, atol=0.03)


def test_sample_top_p_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("04.sample_top_p", top_p_answer())


# ------------------------------------------------------------------ 04.lstm_forget_bias
def forget_answer(ih=1.0, hh=0.0, keep_hh=False, block=1, first_layer_only=False,
                  whole=False, new_parameters=False, split=False):
    """An answer to 04.lstm_forget_bias with one typical mistake switched on."""
    def lstm_forget_bias(lstm, value=1.0):
        H = lstm.hidden_size
        rows = slice(block * H, (block + 1) * H)
        with torch.no_grad():
            for name, p in list(lstm.named_parameters()):
                if first_layer_only and not name.endswith("_l0"):
                    continue
                if name.startswith("bias_ih"):
                    target = p if not whole else p[:]
                    if whole:
                        target.fill_(value * ih)
                    else:
                        p[rows] = value / 2 if split else value * ih
                elif name.startswith("bias_hh") and not keep_hh:
                    p[rows] = value / 2 if split else value * hh
                if new_parameters and name.startswith("bias"):
                    setattr(lstm, name, nn.Parameter(p.detach().clone()))

    return lstm_forget_bias


def forget_keeping_b_hh(lstm, value=1.0):
    """Another correct style: b_ih's forget rows set to value - b_hh's, b_hh kept."""
    H = lstm.hidden_size
    params = dict(lstm.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            if name.startswith("bias_ih"):
                p[H:2 * H] = value - params[name.replace("ih", "hh")][H:2 * H]
    return lstm


def test_lstm_forget_bias_reference_and_other_styles_pass():
    """Do value on b_ih and 0 on b_hh, value/2 on each, and value - b_hh all pass?"""
    assert_all_pass(run("04.lstm_forget_bias", forget_answer()))
    assert_all_pass(run("04.lstm_forget_bias", forget_answer(split=True)))
    assert_all_pass(run("04.lstm_forget_bias", forget_keeping_b_hh))


@pytest.mark.parametrize("wrong, case, word", [
    (forget_answer(hh=1.0), "the total of the two biases", "both biases"),
    (forget_answer(keep_hh=True), "the total of the two biases", "b_hh's still"),
    (forget_answer(block=0), "the forget gate is the second block", "input gate"),
    (forget_answer(block=2), "the forget gate is the second block", "cell gate"),
    (forget_answer(first_layer_only=True), "every layer and direction", "layer 1"),
    (forget_answer(whole=True), "changes only the forget gate's biases", "changed"),
    (forget_answer(new_parameters=True), "keeps the same Parameter objects",
     "new Parameter"),
])
def test_lstm_forget_bias_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("04.lstm_forget_bias", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def forget_like_the_gru_helper(lstm, value=1.0):
    """The lesson's set_gru_update_bias adapted: every layer, no reverse direction."""
    H = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            getattr(lstm, f"bias_ih_l{layer}")[H:2 * H] = value
            getattr(lstm, f"bias_hh_l{layer}")[H:2 * H] = 0.0
    return lstm


def test_lstm_forget_bias_forgotten_reverse_direction_is_named():
    """Does the GRU helper's loop over layers alone fail the bidirectional core and
    name the reverse direction?"""
    result = run("04.lstm_forget_bias", forget_like_the_gru_helper)
    assert not case_of(result, "two layers, bidirectional").passed
    assert_shows(result, "every layer and direction", "reverse direction")


def test_lstm_forget_bias_first_layer_only_earns_a_third_at_most():
    """Does an answer that sets layer 0 only fail the stacked core cases?"""
    result = run("04.lstm_forget_bias", forget_answer(first_layer_only=True))
    assert result.score <= 0.17  # 1/3 of the cores, halved (rounded to 4 digits)
    assert_not_blamed(result, "the forget gate is the second block")


def test_lstm_forget_bias_opens_the_gate():
    """After the reference, does a zero input give a forget gate of sigmoid(1)?"""
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    forget_answer()(lstm)
    x = torch.zeros(1, 1, 3)
    z = lstm.bias_ih_l0 + lstm.bias_hh_l0  # the pre-activations at x = 0, h = 0
    assert torch.allclose(torch.sigmoid(z[4:8]), torch.sigmoid(torch.tensor(1.0)))
    lstm(x)  # still runs


def test_lstm_forget_bias_trivial_answers_score_zero():
    """Do None, pass, raise and the first input score 0?"""
    assert_trivial_scores_zero("04.lstm_forget_bias", forget_answer())


# ------------------------------------------------------------------------ 04.lstm_cell
def cell_answer(order="ifgo", g_act="tanh", old_c=False, no_tanh=False, no_b_hh=False,
                swap=False, numpy=False):
    """An answer to 04.lstm_cell with one typical mistake switched on."""
    def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh):
        if numpy:
            x, h, c, W_ih, W_hh, b_ih, b_hh = (t.detach().numpy() for t in
                                               (x, h, c, W_ih, W_hh, b_ih, b_hh))
            z = torch.tensor(x @ W_ih.T + h @ W_hh.T + b_ih + b_hh)
            c = torch.tensor(c)
        else:
            z = x @ W_ih.T + h @ W_hh.T + b_ih + (0 if no_b_hh else b_hh)
        gates = dict(zip(order, z.chunk(4, dim=1)))
        i, f, o = (torch.sigmoid(gates[k]) for k in "ifo")
        g = torch.tanh(gates["g"]) if g_act == "tanh" else torch.sigmoid(gates["g"])
        c_new = f * c + i * g
        h_new = o * (c_new if no_tanh else torch.tanh(c if old_c else c_new))
        return (c_new, h_new) if swap else (h_new, c_new)

    return lstm_cell


def cell_by_slices(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """Another correct style: each gate from its own slice of the weights."""
    H = h.shape[1]

    def gate(k):
        rows = slice(k * H, (k + 1) * H)
        return x @ W_ih[rows].T + b_ih[rows] + h @ W_hh[rows].T + b_hh[rows]

    i, f, g, o = torch.sigmoid(gate(0)), torch.sigmoid(gate(1)), torch.tanh(gate(2)), \
        torch.sigmoid(gate(3))
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


def cell_with_the_library(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return torch.lstm_cell(x, (h, c), W_ih, W_hh, b_ih, b_hh)


def cell_with_a_module(x, h, c, W_ih, W_hh, b_ih, b_hh):
    cell = nn.LSTMCell(x.shape[1], h.shape[1])
    with torch.no_grad():
        cell.weight_ih.copy_(W_ih)
        cell.weight_hh.copy_(W_hh)
        cell.bias_ih.copy_(b_ih)
        cell.bias_hh.copy_(b_hh)
    return cell(x, (h, c))


def test_lstm_cell_reference_and_other_styles_pass():
    """Do the one-product answer and the per-gate-slices answer pass every case?"""
    assert_all_pass(run("04.lstm_cell", cell_answer()))
    assert_all_pass(run("04.lstm_cell", cell_by_slices))


@pytest.mark.parametrize("library", [cell_with_the_library, cell_with_a_module])
def test_lstm_cell_library_scores_zero(library):
    """Do torch.lstm_cell and nn.LSTMCell score 0 as library calls?"""
    result = run("04.lstm_cell", library)
    assert result.status == FORBIDDEN and result.score == 0
    assert "LSTMCell" in result.cases[0].message


@pytest.mark.parametrize("wrong, case, word", [
    (cell_answer(order="ifog"), "the gates in PyTorch's order", "i, f, o, g"),
    (cell_answer(order="igfo"), "the gates in PyTorch's order", "i, g, f, o"),
    (cell_answer(g_act="sigmoid"), "the cell candidate g goes through tanh",
     "sigmoid"),
    (cell_answer(old_c=True), "h reads the NEW cell state", "OLD cell state"),
    (cell_answer(no_tanh=True), "h reads the NEW cell state", "without its tanh"),
    (cell_answer(no_b_hh=True), "both biases are added", "b_hh"),
    (cell_answer(swap=True), "returns (h_new, c_new) in that order", "swapped"),
    (cell_answer(numpy=True), "float32 tensors of shape (B, H)", "left autograd"),
])
def test_lstm_cell_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("04.lstm_cell", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_lstm_cell_mistakes_are_not_blamed_on_others():
    """Is a wrong gate order not called a sigmoid candidate or a missing bias?"""
    result = run("04.lstm_cell", cell_answer(order="ifog"))
    for innocent in ("the cell candidate g goes through tanh", "both biases are added",
                     "h reads the NEW cell state"):
        assert_not_blamed(result, innocent)


def test_lstm_cell_oracle_is_the_lstm_equations():
    """Is the oracle (nn.LSTMCell) the gate equations in PyTorch's order, float64?"""
    torch.manual_seed(0)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    W_ih, W_hh, b_ih, b_hh = torch.randn(16, 3), torch.randn(16, 4), torch.randn(16), \
        torch.randn(16)
    ref_h, ref_c = reference_lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    own_h, own_c = cell_answer()(*(t.double() for t in (x, h, c, W_ih, W_hh, b_ih,
                                                          b_hh)))
    assert torch.allclose(ref_h.double(), own_h, atol=1e-6)
    assert torch.allclose(ref_c.double(), own_c, atol=1e-6)


def test_lstm_cell_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("04.lstm_cell", cell_answer())


# --------------------------------------------------------------- 04.rnn_last_step_bptt
def bptt_answer(**mistake):
    """An answer to 04.rnn_last_step_bptt: the check's NumPy BPTT with one typical
    mistake switched on."""
    def rnn_last_step_bptt(X, y, h0, params):
        return mistaken_bptt(X, y, h0, params, **mistake)

    return rnn_last_step_bptt


def bptt_in_place(X, y, h0, params):
    """Right values, but it normalises the caller's W_hh in place first (and back)."""
    params["W_hh"] *= 2.0
    params["W_hh"] /= 2.0
    params["W_hh"] += 1e-3  # a change the caller did not ask for
    out = mistaken_bptt(X, y, h0, {**params, "W_hh": params["W_hh"] - 1e-3})
    return out


def test_rnn_last_step_bptt_numpy_reference_is_autograd():
    """Does the check's NumPy BPTT without a mistake equal autograd in float64?"""
    for seed, shape in [(0, (3, 5, 4, 6, 3)), (1, (2, 1, 3, 4, 2)),
                        (2, (4, 12, 5, 5, 4))]:
        X, y, h0, params = bptt_inputs(seed, *shape)
        loss, grads = mistaken_bptt(X, y, h0, params)
        ref_loss, ref = reference_rnn_last_step_bptt(X, y, h0, params)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for k, v in ref.items():
            np.testing.assert_allclose(grads[k], v, rtol=1e-9, atol=1e-12)


def test_rnn_last_step_bptt_reference_passes():
    """Does the NumPy BPTT pass every case, also with NumPy floats and lists back?"""
    assert_all_pass(run("04.rnn_last_step_bptt", bptt_answer()))

    def as_list(X, y, h0, params):
        loss, grads = mistaken_bptt(X, y, h0, params)
        return [np.float64(loss), grads]

    assert_all_pass(run("04.rnn_last_step_bptt", as_list))


@pytest.mark.parametrize("mistake, case, word", [
    (dict(no_recurrence=True), "the gradient flows back through W_hh", "dL/dh_T"),
    (dict(deriv_prev=True), "tanh's derivative at step t uses h_t", "off by one"),
    (dict(first_step_only=True), "the shared weights add up", "one step's"),
    (dict(transposed_hh=True), "W_hh's gradient pairs dz_t", "transposed"),
    (dict(pairs_h_t=True), "W_hh's gradient pairs dz_t", "instead of h_{t-1}"),
    (dict(batch_sum=True), "the loss and the gradients are means", "1/B"),
])
def test_rnn_last_step_bptt_mistakes(mistake, case, word):
    """Does each typical BPTT mistake fail the case that names it, hint shown?"""
    result = run("04.rnn_last_step_bptt", bptt_answer(**mistake))
    assert_shows(result, case, word)
    assert result.score < 1


def test_rnn_last_step_bptt_mistakes_are_not_blamed_on_others():
    """Is a missing recurrence not called an off-by-one derivative, a transposed W_hh
    or a batch sum, and a batch sum not called a missing recurrence?"""
    result = run("04.rnn_last_step_bptt", bptt_answer(no_recurrence=True))
    for innocent in ("tanh's derivative at step t uses h_t", "W_hh's gradient pairs",
                     "the loss and the gradients are means"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("04.rnn_last_step_bptt", bptt_answer(batch_sum=True)),
                      "the gradient flows back through W_hh")


def test_rnn_last_step_bptt_no_recurrence_still_passes_one_step():
    """Is the one-step core case right for an answer without recurrence (nothing to go
    back through), while the longer ones fail?"""
    result = run("04.rnn_last_step_bptt", bptt_answer(no_recurrence=True))
    assert case_of(result, "one step").passed
    assert not case_of(result, "B=3, T=5").passed


def test_rnn_last_step_bptt_in_place_change_is_a_property_failure():
    """Does writing into the caller's parameters fail the property case only?"""
    result = run("04.rnn_last_step_bptt", bptt_in_place)
    assert_shows(result, "leaves its inputs unchanged", "in place")


def test_rnn_last_step_bptt_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("04.rnn_last_step_bptt", bptt_answer())


# ------------------------------------------------------------------ 04.lstm_tbptt_step
def tbptt_answer(detach="both", reset=False, clip="between", zero_grad=True,
                 reduction="mean", item=True, retain=False, own_optimizer=False):
    """An answer to 04.lstm_tbptt_step with one typical mistake switched on."""
    def lstm_tbptt_step(model, x, y, state, optimizer, max_norm):
        model.train()
        if reset:
            state = None
        if state is not None and detach == "both":
            state = tuple(s.detach() for s in state)
        elif state is not None and detach == "h":
            state = (state[0].detach(), state[1])
        elif state is not None and detach == "tuple":
            state = state.detach()
        opt = optimizer
        if own_optimizer:
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
        if zero_grad:
            opt.zero_grad()
        if clip == "before":
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               reduction=reduction)
        loss.backward(retain_graph=retain)
        if clip == "between":
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
        return (loss.item() if item else loss), state

    return lstm_tbptt_step


def tbptt_detach_on_return(model, x, y, state, optimizer, max_norm):
    """Another correct style: the state is detached when it is returned, and the loss
    computed with the classes moved to dimension 1."""
    optimizer.zero_grad()
    logits, state = model(x, state)  # (B, T, V)
    loss = F.cross_entropy(logits.transpose(1, 2), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    h, c = state
    return loss.item(), (h.detach(), c.detach())


def test_lstm_tbptt_step_both_places_to_detach_pass():
    """Do detaching at the start and detaching on return both pass every case?"""
    assert_all_pass(run("04.lstm_tbptt_step", tbptt_answer()))
    assert_all_pass(run("04.lstm_tbptt_step", tbptt_detach_on_return))


@pytest.mark.parametrize("wrong, case, word", [
    (tbptt_answer(detach="none"), "detaches (h, c) between windows", "detach both"),
    (tbptt_answer(detach="h"), "detaches (h, c) between windows", "detach both"),
    (tbptt_answer(detach="none", retain=True), "detaches (h, c) between windows",
     "still attached"),
    (tbptt_answer(reset=True), "carries the state", "thrown away"),
    (tbptt_answer(clip="none"), "clips the global gradient norm", "UNCLIPPED"),
    (tbptt_answer(clip="before"), "clips the global gradient norm", "UNCLIPPED"),
    (tbptt_answer(zero_grad=False), "clears the gradients every window", "piled up"),
    (tbptt_answer(reduction="sum"), "the loss is the mean over the B x T", "SUM"),
    (tbptt_answer(item=False), "returns the loss as a Python float", "loss.item()"),
])
def test_lstm_tbptt_step_mistakes(wrong, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("04.lstm_tbptt_step", wrong)
    assert_shows(result, case, word)
    assert result.score < 1


def test_lstm_tbptt_step_no_detach_is_one_problem_scoring_zero():
    """Is the missing detach (backward through a freed graph) told once, as a basic
    problem of the cores, with the words of truncated BPTT, and scored 0?"""
    result = run("04.lstm_tbptt_step", tbptt_answer(detach="none"))
    assert result.score == 0
    cores = [c for c in result.cases if c.kind == "core"]
    assert all(c.basic and not c.passed for c in cores)
    assert "detach both h and c" in cores[0].message


def test_lstm_tbptt_step_tuple_detach_is_explained():
    """Is state.detach() on the tuple explained as the tuple (h, c)?"""
    result = run("04.lstm_tbptt_step", tbptt_answer(detach="tuple"))
    assert result.score == 0
    assert "TUPLE (h, c)" in case_of(result, "3 windows, SGD(lr=0.5)").message


def test_lstm_tbptt_step_own_optimizer_fails_the_cores():
    """Does a step that makes its own SGD(lr=0.1) fail every core case?"""
    result = run("04.lstm_tbptt_step", tbptt_answer(own_optimizer=True))
    assert result.score == 0


def test_lstm_tbptt_step_mistakes_are_not_blamed_on_others():
    """Is a reset state not blamed on clipping or zero_grad, and no clipping not blamed
    on the state?"""
    result = run("04.lstm_tbptt_step", tbptt_answer(reset=True))
    for innocent in ("clips the global gradient norm", "clears the gradients every"):
        assert_not_blamed(result, innocent)
    assert_not_blamed(run("04.lstm_tbptt_step", tbptt_answer(clip="none")),
                      "carries the state")


def test_lstm_tbptt_step_cases_clip():
    """Is the gradient norm above max_norm in the core cases' first window, so that an
    answer without clipping cannot pass them?"""
    from course_utils.grading.checks.lesson04.lstm_tbptt_step import _setup
    for seed, max_norm, sizes in [(0, 0.1, {}), (1, 0.15, dict(B=2, T=5, K=4)),
                                  (2, 0.08, dict(V=7, E=4, H=10, B=4, T=4))]:
        model, windows = _setup(seed, **sizes)
        x, y = windows[0]
        logits, _ = model(x)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        assert norm > max_norm, (seed, float(norm))
    assert isinstance(CharLSTM(5, 3, 4)(torch.zeros(2, 3, dtype=torch.long))[1], tuple)


def test_lstm_tbptt_step_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("04.lstm_tbptt_step", tbptt_answer())


def test_not_judged_message_is_the_lessons_words():
    """Is the "not judged yet" text the one the other lessons use?"""
    assert NOT_JUDGED.startswith("Not judged yet")
