"""Tests of lesson 09's checks: the reference passes every case, answers written in
other styles pass, each typical mistake fails its own case (with its hint shown, and
without blaming other mistakes), answers that compute nothing score 0, a crashing answer
is reported as a crash, and every case runs well within its time limit. The checks'
oracles are tested against PyTorch (DistributedSampler, LinearLR, BatchNorm, FSDP's
sharding of a flat parameter, DDP's own bucket assignment) and against the lesson's
library (``course_utils.lessons.distributed``). That no hint prints
a solution line is tested for every lesson in test_course_consistency.py."""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.fsdp._flat_param import FlatParamHandle
from torch.utils.data import DistributedSampler

from course_utils.authoring.transforms import read_notebook
from course_utils.grading.checks.lesson09 import NOT_JUDGED, AllReduce, buckets
from course_utils.grading.checks.lesson09 import (data_parallel_step as dps_checks,
                                                  ddp_step_time as time_checks,
                                                  epoch_indices as epoch_checks,
                                                  load_resharded as resharded,
                                                  min_workers as memory_checks,
                                                  scaled_lr as lr_checks,
                                                  sync_batchnorm_stats as bn_checks)
from course_utils.grading.registry import get_question, questions_for_lesson
from course_utils.grading.results import FAILED, NOT_IMPLEMENTED
from course_utils.lessons import distributed as dl

from check_support import (assert_all_pass, assert_not_blamed, assert_shows,
                           assert_trivial_scores_zero, case_of, run, stub)

ROOT = Path(__file__).resolve().parent.parent
QIDS = ["09.scaled_lr", "09.epoch_indices", "09.min_workers", "09.save_shards",
        "09.load_resharded", "09.sync_batchnorm_stats", "09.ddp_step_time",
        "09.data_parallel_step"]
CUDA = torch.cuda.is_available()


def test_every_question_has_core_cases_and_kinds():
    """Does lesson 09 have its 8 questions in order, each with at least 3 core cases,
    a property case and a mistake case, and the answer named like its id?"""
    questions = questions_for_lesson("09")
    assert [q.qid for q in questions] == QIDS
    for q in questions:
        assert len(q.core_cases) >= 3, q.qid
        assert {c.kind for c in q.cases} == {"core", "mistake", "property"}, q.qid
        assert q.answers == [q.qid.split(".", 1)[1]], q.qid


@pytest.mark.parametrize("qid", QIDS)
def test_stub_is_not_implemented(qid):
    """Does a stub that still raises NotImplementedError say "not implemented yet" and
    score 0?"""
    result = run(qid, stub)
    assert result.status == NOT_IMPLEMENTED
    assert result.score == 0


@pytest.mark.parametrize("qid", QIDS)
def test_a_crashing_answer_is_reported_as_its_crash(qid):
    """Does an answer that raises ZeroDivisionError score 0, every core case saying
    what it raised (not a crash of the checker)?"""
    def crash(*args, **kwargs):
        return 1 / 0

    result = run(qid, crash)
    assert result.score == 0
    for case in result.cases:
        if case.kind == "core":
            assert "It raised ZeroDivisionError" in case.message, (case.name,
                                                                    case.message)


def test_not_judged_is_shared():
    """Do lesson 09's checks use the course's one "not judged yet" message?"""
    from course_utils.grading.checks._shared import NOT_JUDGED as SHARED
    assert NOT_JUDGED == SHARED


# ------------------------------------------------------------------- 09.scaled_lr
def lr_answer(how=None):
    """An answer to 09.scaled_lr with one typical mistake switched on."""
    def scaled_lr(base_lr, base_batch, batch_per_worker, world_size,
                  accumulation_steps, step, warmup_steps):
        k = 1 if how == "no accumulation" else accumulation_steps
        P = 1 if how == "no world size" else world_size
        batch = batch_per_worker * P * k
        ratio = batch // base_batch if how == "integer division" else batch / base_batch
        if how == "scaled by P":
            ratio = world_size
        peak = base_lr * (math.sqrt(ratio) if how == "square root" else ratio)
        lr = peak
        if step < warmup_steps and how != "no warmup":
            start = 0.0 if how == "warmup from 0" else base_lr
            done = step + 1 if how == "warmup one step ahead" else step
            lr = start + (peak - start) * done / warmup_steps
        return (float(batch) if how == "float batch" else batch), float(lr)

    return scaled_lr


def lr_by_scheduler(base_lr, base_batch, batch_per_worker, world_size,
                    accumulation_steps, step, warmup_steps):
    """Another correct style: PyTorch's LinearLR from base_lr to the scaled rate."""
    batch = batch_per_worker * world_size * accumulation_steps
    peak = base_lr * batch / base_batch
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
    if warmup_steps:
        scheduler = torch.optim.lr_scheduler.LinearLR(
            optimizer, start_factor=base_lr / peak, total_iters=warmup_steps)
        for _ in range(min(step, warmup_steps)):
            optimizer.step()
            scheduler.step()
    return batch, float(optimizer.param_groups[0]["lr"])


def test_scaled_lr_reference_and_other_styles_pass():
    """Do a closed form and PyTorch's LinearLR warmup pass every case?"""
    assert_all_pass(run("09.scaled_lr", lr_answer()))
    assert_all_pass(run("09.scaled_lr", lr_by_scheduler))


@pytest.mark.parametrize("how, case, word", [
    ("no accumulation", "accumulated micro-batches count",
     "accumulation steps are left"),
    ("no world size", "every worker's batch counts", "workers are left out"),
    ("square root", "the rate grows in proportion", "square root"),
    ("warmup from 0", "the warmup starts at the base rate", "starts from 0"),
    ("warmup one step ahead", "the warmup reaches the scaled rate at step",
     "one step ahead"),
    ("no warmup", "the rate climbs during the warmup", "warmup is left out"),
    ("scaled by P", "8 workers of 64 examples, after the warmup",
     "multiplied by the number of workers"),
    ("integer division", "2 workers of 16 for a rate tuned", "integer division"),
    ("float batch", "returns an int and a Python float", "expected an int"),
])
def test_scaled_lr_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("09.scaled_lr", lr_answer(how))
    assert_shows(result, case, word)
    if how != "float batch":
        assert result.score < 1


def test_scaled_lr_mistakes_are_not_blamed_on_others():
    """Is a square-root rule not called a missing worker or accumulation, nor a warmup
    from 0, and the other way round?"""
    result = run("09.scaled_lr", lr_answer("square root"))
    for innocent in ("accumulated micro-batches", "every worker's batch",
                     "the warmup starts"):
        assert_not_blamed(result, innocent)
    result = run("09.scaled_lr", lr_answer("warmup from 0"))
    assert_not_blamed(result, "the rate grows in proportion")
    assert_not_blamed(result, "the warmup reaches the scaled rate at step")
    result = run("09.scaled_lr", lr_answer("warmup one step ahead"))
    for innocent in ("the warmup starts at the base rate",
                     "the rate climbs during the warmup"):
        assert_not_blamed(result, innocent)


def test_scaled_lr_oracle_is_linear_lr_and_the_librarys_global_batch():
    """Is the reference's warmup PyTorch's LinearLR (from base_lr to the scaled rate),
    and its effective batch the size of the lesson's global batch of one step?"""
    for args in lr_checks.CASES.values():
        assert lr_checks.reference(*args) == pytest.approx(lr_by_scheduler(*args),
                                                           rel=1e-12)
    for P, b, k in [(2, 8, 1), (4, 5, 3), (3, 4, 2)]:
        batch, _ = lr_checks.reference(0.1, 256, b, P, k, 0, 0)
        assert len(dl.global_batches(600, P, b, steps=1, accumulation=k)[0]) == batch


def test_scaled_lr_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.scaled_lr", lr_answer())


# --------------------------------------------------------------- 09.epoch_indices
def epochs_answer(how=None):
    """An answer to 09.epoch_indices with a DistributedSampler, one bug switched on."""
    def epoch_indices(n, world_size, rank, epochs, seed=0):
        if how in ("no padding", "blocks"):
            return epochs_by_hand(n, world_size, rank, epochs, seed, how)
        sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank,
                                     shuffle=True, drop_last=how == "drop_last",
                                     seed=seed + rank if how == "seed + rank" else seed)
        out = []
        for epoch in range(epochs):
            if how != "no set_epoch":
                sampler.set_epoch(epoch + 1 if how == "epoch from 1" else epoch)
            out.append(list(sampler))
        return out

    return epoch_indices


def epochs_by_hand(n, world_size, rank, epochs, seed=0, how=None):
    """Another correct style: the permutation, the padding and the stride by hand
    (or, with ``how``, without the padding, or in contiguous blocks)."""
    out = []
    for epoch in range(epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        order = order.tolist()
        size = math.ceil(n / world_size)
        total = size * world_size
        if how != "no padding":
            order = (order * math.ceil(total / n))[:total]
        if how == "blocks":
            out.append(order[rank * size:(rank + 1) * size])
        else:
            out.append(order[rank::world_size])
    return out


def shipped_epoch_indices():
    """The answer the exercise ships for Question 2 (its two bugs), read from the
    generated exercise notebook."""
    exercise = ROOT / "exercises" / "09_distributed_training.ipynb"
    for cell in read_notebook(exercise).cells:
        if cell.cell_type == "code" and cell.source.startswith("def epoch_indices("):
            namespace = {"DistributedSampler": DistributedSampler}
            exec(cell.source, namespace)
            return namespace["epoch_indices"]
    raise AssertionError("no epoch_indices cell in the exercise")


def test_epoch_indices_reference_and_other_styles_pass():
    """Do the fixed sampler and a hand-written shard pass every case?"""
    assert_all_pass(run("09.epoch_indices", epochs_answer()))
    assert_all_pass(run("09.epoch_indices", epochs_by_hand))


@pytest.mark.parametrize("how, case, word", [
    ("no set_epoch", "a new order every epoch", "same order"),
    ("seed + rank", "the ranks share one shuffled order", "read by no rank"),
    ("epoch from 1", "the first epoch is epoch 0", "counted from 1"),
    ("drop_last", "every rank reads ceil(n / P) indices", "drop_last=True"),
    ("no padding", "every rank reads ceil(n / P) indices", "not padded"),
    ("blocks", "a rank reads every P-th index", "contiguous block"),
])
def test_epoch_indices_mistakes(how, case, word):
    """Does each bug fail the case that names it, hint shown, and lose points?"""
    result = run("09.epoch_indices", epochs_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_epoch_indices_the_shipped_answer_fails_with_both_bugs_named():
    """Does the exercise's pre-filled answer score 0 as failed (not "not implemented"),
    with its missing set_epoch and its per-rank seed both named?"""
    result = run("09.epoch_indices", shipped_epoch_indices())
    assert result.status == FAILED and result.score == 0
    assert_shows(result, "a new order every epoch", "same order")
    assert_shows(result, "the ranks share one shuffled order", "read by no rank")


def test_epoch_indices_mistakes_are_not_blamed_on_others():
    """Is a per-rank seed alone not called a missing set_epoch, and the other way?"""
    result = run("09.epoch_indices", epochs_answer("seed + rank"))
    assert_not_blamed(result, "a new order every epoch")
    result = run("09.epoch_indices", epochs_answer("no set_epoch"))
    assert_not_blamed(result, "the ranks share one shuffled order")
    assert_not_blamed(result, "the first epoch is epoch 0")
    result = run("09.epoch_indices", epochs_answer("drop_last"))
    assert_not_blamed(result, "the ranks share one shuffled order")
    assert "by several" not in case_of(result, "23 examples, 3 ranks").message


def test_epoch_indices_empty_epochs_and_tensors_are_named():
    """Is an epoch of no index told as such (not as a shuffle that never changes), and
    a list of tensors told what it holds?"""
    result = run("09.epoch_indices", lambda n, P, r, epochs, seed=0: [[]] * epochs)
    message = case_of(result, "10 examples, 2 ranks").message
    assert "reads no index" in message and "never changes" not in message

    def tensors(n, world_size, rank, epochs, seed=0):
        return [torch.tensor(e) for e in epochs_answer()(n, world_size, rank, epochs,
                                                         seed)]

    result = run("09.epoch_indices", tensors)
    case = case_of(result, "a list of lists of Python ints")
    assert not case.passed and "a list of Tensor" in case.message


def test_epoch_indices_oracle_is_the_librarys_shard_indices():
    """Is the reference (DistributedSampler with set_epoch) the lesson's shard_indices
    epoch by epoch, and do its ranks cover every example each epoch?"""
    for n, P, r, epochs, seed in list(epoch_checks.CASES.values()) + [(60, 7, 5, 3, 9)]:
        ref = epoch_checks.reference(n, P, r, epochs, seed)
        for epoch in range(epochs):
            assert ref[epoch] == dl.shard_indices(n, P, r, shuffle=True, seed=seed,
                                                  epoch=epoch)
        union = set()
        for rank in range(P):
            union.update(epoch_checks.reference(n, P, rank, epochs, seed)[-1])
        assert union == set(range(n))
        assert ref[0] != ref[1]


def test_epoch_indices_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.epoch_indices", epochs_answer())


# ----------------------------------------------------------------- 09.min_workers
def memory_answer(how=None):
    """An answer to 09.min_workers that searches P, with one typical mistake."""
    def min_workers(n_params, memory_bytes, stage, mixed_precision=False,
                    activation_bytes=0):
        w, g, o = (2, 2, 8 if how == "no master weights" else 12) if mixed_precision \
            and how != "float32 bytes" else (4, 4, 8)
        s = stage + 1 if how == "stage off by one" else stage

        def need(P):
            shard = n_params / P if how == "no ceil" else math.ceil(n_params / P)
            act = activation_bytes / P if how == "activations sharded" \
                else activation_bytes
            return (w * (shard if s >= 3 else n_params) + g * (shard if s >= 2 else
                    n_params) + o * (shard if s >= 1 else n_params) + act)

        top = 10 * n_params
        if need(top) > memory_bytes:
            if how == "no ValueError":
                return top
            if how == "None":
                return None
            raise ValueError("does not fit")
        lo, hi = 1, top
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if need(mid) <= memory_bytes else (mid + 1, hi)
        return float(lo) if how == "float" else lo

    return min_workers


def memory_by_library(n_params, memory_bytes, stage, mixed_precision=False,
                      activation_bytes=0):
    """Another correct style: the lesson's dl.step_memory, P doubled then bisected."""
    def need(P):
        return dl.step_memory(n_params, activation_bytes, stage, P,
                              mixed_precision).total

    if need(n_params) > memory_bytes:
        raise ValueError("no number of workers is enough")
    hi = 1
    while need(hi) > memory_bytes:
        hi *= 2
    lo = hi // 2 + 1 if hi > 1 else 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if need(mid) <= memory_bytes else (mid + 1, hi)
    return lo


def test_min_workers_reference_and_other_styles_pass():
    """Do a search over P and one built on the lesson's step_memory pass every case?"""
    assert_all_pass(run("09.min_workers", memory_answer()))
    assert_all_pass(run("09.min_workers", memory_by_library))


@pytest.mark.parametrize("how, case, word", [
    ("activations sharded", "each worker keeps the activations", "activations are "
                                                                 "divided"),
    ("no ceil", "a shard holds a whole number", "rounded up"),
    ("no master weights", "mixed precision keeps float32 master", "master weights"),
    ("stage off by one", "stage 2 shards the optimizer states", "one kind of state"),
    ("float32 bytes", "mixed precision: 2 + 2 bytes", "counted as float32 training"),
    ("no ValueError", "7 billion in float32 at stage 0", "expected a ValueError"),
    ("None", "7 billion in float32 at stage 0", "raise ValueError"),
    ("float", "returns a Python int", "python int"),
])
def test_min_workers_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("09.min_workers", memory_answer(how))
    assert_shows(result, case, word)
    if how != "float":
        assert result.score < 1 or how in ("no ValueError", "None")


def test_min_workers_mistakes_are_not_blamed_on_others():
    """Are sharded activations not called a missing ceiling or master weights?"""
    result = run("09.min_workers", memory_answer("activations sharded"))
    for innocent in ("a shard holds a whole number", "mixed precision keeps",
                     "stage 2 shards the optimizer"):
        assert_not_blamed(result, innocent)
    result = run("09.min_workers", memory_answer("no ceil"))
    assert_not_blamed(result, "each worker keeps the activations")


def test_min_workers_a_valueerror_is_named_only_when_the_mistake_is_confirmed():
    """Is a ValueError where a mistake finds no number named after the mistake only
    when the answer computes what that mistake does where it finds one (and an answer
    that always raises not called that mistake)?"""
    case = "7 billion, mixed precision, stage 2, 40 GB, 20 GB of activations"
    result = run("09.min_workers", memory_answer("float32 bytes"))
    assert "counted as float32 training" in case_of(result, case).message

    def always(*args, **kwargs):
        raise ValueError("never fits")

    result = run("09.min_workers", always)
    message = case_of(result, case).message
    assert "raised ValueError, but 17 worker(s) suffice" in message
    assert "float32 training" not in message


def test_min_workers_oracle_is_the_librarys_step_memory():
    """Is the checks' worker memory the lesson's dl.step_memory, and the reference the
    smallest P that fits (P - 1 does not), or None exactly when P = n_params does
    not fit?"""
    for n in (1000, 1_300_000_007, 70_000_000_000):
        for stage in range(4):
            for mixed in (False, True):
                for P in (1, 3, 8, 64):
                    assert memory_checks.worker_bytes(n, P, stage, mixed, 12345) == \
                        dl.step_memory(n, 12345, stage, P, mixed).total
    every = list(memory_checks.CASES.values()) + list(memory_checks.NO_FIT.values())
    for args in every:
        n, memory, stage, mixed, act = args
        P = memory_checks.reference(*args)
        if P is None:
            assert dl.step_memory(n, act, stage, n, mixed).total > memory
            continue
        assert dl.step_memory(n, act, stage, P, mixed).total <= memory
        assert P == 1 or dl.step_memory(n, act, stage, P - 1, mixed).total > memory


def test_min_workers_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.min_workers", memory_answer())


# ------------------------------------------------------------------ 09.save_shards
def save_answer(how=None):
    """An answer to 09.save_shards with one typical mistake switched on."""
    def save_shards(folder, values, numel, rank, world_size, barrier):
        if how == "barrier first":
            barrier()
        shard = values if how == "a view" else values.clone()
        if how == "numpy":
            shard = shard.numpy()
        data = max(0, min(len(values), numel - rank * len(values)))
        if how == "float64":
            shard = shard.double()
        if how == "padding trimmed":
            shard = shard[:data]
        if how == "padding zeroed":  # on the copy: the padding may hold anything
            shard[data:] = 0
        if rank == 0 or how != "rank 0 only":
            torch.save({"rank": rank, "values": shard},
                       os.path.join(folder, f"shard-{rank}.pt"))
        if rank == 0 or how == "meta on every rank":
            torch.save({"numel": numel, "world_size": world_size},
                       os.path.join(folder, "meta.pt"))
        if how == "leftover":
            torch.save(shard, os.path.join(folder, f"backup-{rank}.pt"))
        if how not in ("barrier first", "rank 0 barrier only") or (
                how == "rank 0 barrier only" and rank == 0):
            barrier()

    return save_shards


def save_atomically(folder, values, numel, rank, world_size, barrier):
    """Another correct style: temporary files renamed into place, meta.pt first."""
    def write(obj, name):
        tmp = os.path.join(folder, name + ".tmp")
        torch.save(obj, tmp)
        os.replace(tmp, os.path.join(folder, name))

    if rank == 0:
        write({"numel": numel, "world_size": world_size}, "meta.pt")
    write({"rank": rank, "values": values.detach().contiguous().clone()},
          f"shard-{rank}.pt")
    barrier()


def test_save_shards_reference_and_other_styles_pass():
    """Do a plain torch.save of a copy, atomic renames and a copy whose padding is
    zeroed (padding may hold anything) pass every case?"""
    assert_all_pass(run("09.save_shards", save_answer()))
    assert_all_pass(run("09.save_shards", save_atomically))
    assert_all_pass(run("09.save_shards", save_answer("padding zeroed")))


@pytest.mark.parametrize("how, case, word", [
    ("rank 0 only", "every rank writes its own shard", "wrote nothing"),
    ("meta on every rank", "rank 0 alone writes the metadata", "a race"),
    ("rank 0 barrier only", "every rank reaches the barrier", "wait there forever"),
    ("barrier first", "a rank reaches the barrier after writing", "before its files"),
    ("a view", "a shard's file holds that shard only", "whole storage"),
    ("leftover", "the folder holds the checkpoint's files only", "backup-"),
    ("float64", "2 ranks, 1,001 values", "torch.float64"),
    ("padding trimmed", "2 ranks, 1,001 values", "its padding included"),
])
def test_save_shards_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("09.save_shards", save_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_save_shards_a_file_torch_load_refuses_is_named():
    """Is a shard saved as a NumPy array (which weights_only refuses) named, and does it
    earn nothing?"""
    result = run("09.save_shards", save_answer("numpy"))
    assert result.score == 0
    assert "weights_only=True" in case_of(result, "2 ranks, 1,001 values").message


def test_save_shards_mistakes_are_not_blamed_on_others():
    """Is rank 0 writing alone not called a metadata race or a barrier problem, and a
    view not called anything but a view?"""
    result = run("09.save_shards", save_answer("rank 0 only"))
    for innocent in ("rank 0 alone writes the metadata", "every rank reaches the",
                     "a rank reaches the barrier after"):
        assert_not_blamed(result, innocent)
    result = run("09.save_shards", save_answer("a view"))
    assert all(c.passed for c in result.cases if c.kind == "core")
    assert result.score == 0.5


def test_save_shards_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.save_shards", save_answer())


# --------------------------------------------------------------- 09.load_resharded
def load_answer(how=None):
    """An answer to 09.load_resharded that joins the old shards it needs, with one
    typical mistake switched on."""
    def load_resharded(folder, rank, world_size, device):
        meta = torch.load(os.path.join(folder, "meta.pt"))
        numel, old = meta["numel"], meta["world_size"]
        old_size, size = math.ceil(numel / old), math.ceil(numel / world_size)
        if how == "old shards misplaced":  # each old shard taken as numel // old long
            flat = torch.cat([torch.load(os.path.join(folder, f"shard-{r}.pt"),
                                         map_location=device)["values"][:numel // old]
                              for r in range(old)])
            flat = torch.cat([flat, torch.full((numel,), float("nan"))])[:numel]
            out = torch.zeros(size)
            piece = flat[rank * size:(rank + 1) * size]
            out[:len(piece)] = piece
            return out
        start = rank * size
        first = min(start // old_size, old - 1)
        last = min(old - 1, (min(numel, start + size) - 1) // old_size)
        wanted = range(old) if how == "reads all" else range(first, last + 1)
        kwargs = {} if how == "no map_location" else {"map_location": device}
        pieces = {r: torch.load(os.path.join(folder, f"shard-{r}.pt"), **kwargs)
                  ["values"] for r in wanted}
        joined = torch.cat([pieces[r] for r in sorted(pieces)])
        offset = min(pieces) * old_size
        if how != "old padding kept":
            joined = joined[:numel - offset]
        out = joined[start - offset:start - offset + size]
        if how != "no new padding":
            out = torch.cat([out, torch.zeros(size - len(out))])
        return out.double() if how == "float64" else out

    return load_resharded


def load_by_the_reference(folder, rank, world_size, device):
    """Another style: the flat vector of every old shard, then FSDP's own shard."""
    meta = torch.load(os.path.join(folder, "meta.pt"))
    parts = [torch.load(os.path.join(folder, f"shard-{r}.pt"), map_location=device)
             ["values"] for r in range(meta["world_size"])]
    flat = torch.cat(parts)[:meta["numel"]]
    return FlatParamHandle._get_shard(flat, rank, world_size)[0]


def test_load_resharded_reference_and_other_styles_pass():
    """Does joining the overlapping old shards pass every case, and FSDP's own
    _get_shard of the whole vector every case but the one about reading fewer files?"""
    assert_all_pass(run("09.load_resharded", load_answer()))
    result = run("09.load_resharded", load_by_the_reference)
    assert [c.name for c in result.cases if not c.passed] == [
        "a rank reads only the old shards it needs"]


@pytest.mark.parametrize("how, case, word", [
    pytest.param("no map_location", "the shards are loaded onto this rank's device",
                 "map_location", marks=pytest.mark.skipif(
                     CUDA, reason="a GPU loads some cuda:r shards without it")),
    ("old padding kept", "the old padding is not data", "nan"),
    ("no new padding", "every new shard has ceil", "every new shard has 5"),
    ("reads all", "a rank reads only the old shards it needs", "overlaps only"),
    ("float64", "a float32 tensor on the device given", "float64"),
    ("old shards misplaced", "10 values, 4 ranks -> 3, rank 1", "wrong places"),
])
def test_load_resharded_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("09.load_resharded", load_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_load_resharded_mistakes_are_not_blamed_on_others():
    """Is the old padding kept not called a missing new padding or extra reads, and a
    missing new padding not called the old padding?"""
    result = run("09.load_resharded", load_answer("old padding kept"))
    for innocent in ("every new shard has ceil", "a rank reads only"):
        assert_not_blamed(result, innocent)
    result = run("09.load_resharded", load_answer("no new padding"))
    assert_not_blamed(result, "the old padding is not data")


def test_load_resharded_shards_are_fsdps_and_the_files_are_tagged_for_the_gpu():
    """Are the checks' shards FSDP's (FlatParamHandle._get_shard) for every rank of
    several sizes, the old ranks a new rank reads exactly those holding its values, and
    (on a CPU machine) the old files unreadable without map_location, the tag undone
    afterwards?"""
    for numel in (1, 2, 9, 10, 23, 1000):
        flat = torch.arange(float(numel))
        for P in (1, 2, 3, 4, 5):
            for r in range(P):
                assert torch.equal(resharded.shard(flat, r, P),
                                   FlatParamHandle._get_shard(flat, r, P)[0])
            for new in (1, 2, 3, 5):
                for r in range(new):
                    size = math.ceil(numel / new)
                    mine = set(range(r * size, min(numel, (r + 1) * size)))
                    old_size = math.ceil(numel / P)
                    holders = sorted({i // old_size for i in mine})
                    assert resharded._overlapping(numel, P, new, r) == holders
    if CUDA:
        return
    with tempfile.TemporaryDirectory() as folder:
        resharded.write_old_checkpoint(folder, torch.arange(5.0), 2)
        with pytest.raises(RuntimeError, match="deserialize object on a CUDA device"):
            torch.load(os.path.join(folder, "shard-1.pt"))
        path = os.path.join(folder, "plain.pt")
        torch.save(torch.ones(2), path)
        assert torch.equal(torch.load(path), torch.ones(2))


def test_load_resharded_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.load_resharded", load_answer())


# -------------------------------------------------------- 09.sync_batchnorm_stats
def bn_answer(how=None):
    """An answer to 09.sync_batchnorm_stats with one typical mistake switched on."""
    def sync_batchnorm_stats(counts, means, variances, running_mean, running_var,
                             momentum):
        n = torch.tensor(counts, dtype=torch.float64)[:, None]
        total = n.sum()
        mean = means.mean(0) if how == "mean of means" else (n * means).sum(0) / total
        spread = 0.0 if how == "mean of variances" else (means - mean) ** 2
        var = (n * (variances + spread)).sum(0) / total
        unbiased = var * total / (total - 1)
        if how == "unbiased per worker":
            inside = variances * n / (n - 1).clamp(min=1)
            unbiased = (n * (inside + (means - mean) ** 2)).sum(0) / total
        if how == "n - P":
            unbiased = var * total / (total - len(counts))
        if how == "unbiased to normalise":
            var = unbiased
        run_var = var if how == "biased running var" else unbiased
        keep = momentum if how == "momentum reversed" else 1 - momentum
        out = (mean, var, keep * running_mean + (1 - keep) * mean,
               keep * running_var + (1 - keep) * run_var)
        if how == "no running update":
            out = (mean, var, running_mean.clone(), running_var.clone())
        return tuple(t.float() for t in out) if how == "float32" else out

    return sync_batchnorm_stats


def bn_by_sums(counts, means, variances, running_mean, running_var, momentum):
    """Another correct style: what an all-reduce would carry, sums and sums of
    squares."""
    n = torch.tensor(counts, dtype=torch.float64)
    sums = (n[:, None] * means).sum(0)
    squares = (n[:, None] * (variances + means ** 2)).sum(0)
    total = n.sum()
    mean = sums / total
    var = squares / total - mean ** 2
    return (mean, var, running_mean + momentum * (mean - running_mean),
            running_var + momentum * (var * total / (total - 1) - running_var))


def test_sync_batchnorm_stats_reference_and_other_styles_pass():
    """Do weighted means with the spread of the means, and sums of squares, pass?"""
    assert_all_pass(run("09.sync_batchnorm_stats", bn_answer()))
    assert_all_pass(run("09.sync_batchnorm_stats", bn_by_sums))


@pytest.mark.parametrize("how, case, word", [
    ("mean of means", "each worker's mean weighs", "plain average"),
    ("mean of variances", "the variance counts the spread", "average of the workers'"),
    ("unbiased to normalise", "BatchNorm normalises with the biased", "n - 1"),
    ("biased running var", "the running variance is updated with the unbiased",
     "biased variance"),
    ("momentum reversed", "PyTorch's momentum weighs the new batch", "old running"),
    ("unbiased per worker", "the running variance's correction uses the global",
     "its own count"),
    ("n - P", "3 workers of 5, 12 and 2 rows", "divides by n - p"),
    ("no running update", "2 workers of 16 rows, 4 channels", "come back unchanged"),
    ("float32", "float64 tensors of shape", "float64"),
])
def test_sync_batchnorm_stats_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("09.sync_batchnorm_stats", bn_answer(how))
    assert_shows(result, case, word)
    if how != "float32":
        assert result.score < 1


def test_sync_batchnorm_stats_mistakes_are_not_blamed_on_others():
    """Is a plain mean of means not called a missing spread, a wrong variance or a
    reversed momentum?"""
    result = run("09.sync_batchnorm_stats", bn_answer("mean of means"))
    for innocent in ("the variance counts the spread", "BatchNorm normalises with",
                     "the running variance is updated", "PyTorch's momentum"):
        assert_not_blamed(result, innocent)


def test_sync_batchnorm_stats_oracle_is_batchnorm_on_the_whole_batch():
    """Does the reference normalise as F.batch_norm does on the concatenated batch
    (1d and 2d), and does each mistake differ from it on its case?"""
    for name in bn_checks.CASES:
        xs, rm, rv, momentum = bn_checks.inputs(name)
        mean, var, _, _ = bn_checks.reference(xs, rm, rv, momentum)
        x = torch.cat(xs)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        ours = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + 1e-5)
        theirs = F.batch_norm(x, None, None, training=True, eps=1e-5)
        assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    apart = "3 workers of 5, 12 and 2 rows, shards far apart"
    single = "4 workers, one of a single row, momentum 0.3"
    for how, case in [("mean of means", apart), ("mean of variances", apart),
                      ("unbiased to normalise", single), ("momentum reversed", single),
                      ("biased running var", single)]:
        xs, rm, rv, momentum = bn_checks.inputs(case)
        counts, means, variances = bn_checks.local_stats(xs)
        wrong = bn_checks.mistaken(counts, means, variances, rm, rv, momentum, how)
        ref = bn_checks.reference(xs, rm, rv, momentum)
        assert not all(torch.allclose(a, b) for a, b in zip(wrong, ref)), how


def test_sync_batchnorm_stats_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.sync_batchnorm_stats", bn_answer())


# ----------------------------------------------------------------- 09.ddp_step_time
def time_answer(how=None):
    """An answer to 09.ddp_step_time with one typical mistake switched on."""
    def ddp_step_time(grad_bytes, backward_times, bucket_bytes, world_size, latency,
                      bandwidth):
        P = world_size
        if how == "reversed":
            grad_bytes, backward_times = grad_bytes[::-1], backward_times[::-1]
        if how == "one bucket":
            bucket_bytes = sum(grad_bytes)
        if how == "bucket per layer":
            bucket_bytes = 0

        def ring(m):
            if P == 1:
                return 0.0
            if how == "no ring factor":
                return 2 * (P - 1) * latency + m / bandwidth
            if how == "whole message per step":
                return 2 * (P - 1) * (latency + m / bandwidth)
            if how == "one latency":
                return latency + 2 * (P - 1) / P * m / bandwidth
            if how == "reduce-scatter only":
                return (P - 1) * latency + (P - 1) / P * m / bandwidth
            return 2 * (P - 1) * latency + 2 * (P - 1) / P * m / bandwidth

        ready, sizes, size, clock, first = [], [], 0, 0.0, None
        for b, t in zip(grad_bytes, backward_times):
            if how == "at most the cap" and size and size + b > bucket_bytes:
                ready.append(clock)
                sizes.append(size)
                size = 0
            clock += t
            size += b
            first = clock if first is None else first
            full = size > bucket_bytes if how == "more than the cap" else \
                size >= bucket_bytes
            if how != "at most the cap" and full:
                ready.append(first if how == "first gradient" else clock)
                sizes.append(size)
                size, first = 0, None
        if size:
            ready.append(first if how == "first gradient" else clock)
            sizes.append(size)
        if how == "no overlap":
            return clock + sum(ring(m) for m in sizes)
        if how == "in parallel":
            return max([clock] + [r + ring(m) for r, m in zip(ready, sizes)])
        end = 0.0
        for r, m in zip(ready, sizes):
            end = max(end, r) + ring(m)
        return max(clock, end)

    return ddp_step_time


def time_by_events(grad_bytes, backward_times, bucket_bytes, world_size, latency,
                   bandwidth):
    """Another correct style: the lesson's traffic per rank, with numpy's cumsum."""
    ready = np.cumsum(backward_times)
    end, size, P = 0.0, 0, world_size
    for i, b in enumerate(grad_bytes):
        size += b
        if size >= bucket_bytes or i == len(grad_bytes) - 1:
            if P > 1:
                end = max(end, ready[i]) + 2 * (P - 1) * latency + \
                    dl.ring_all_reduce_bytes(size, P) / bandwidth
            size = 0
    return float(max(ready[-1], end))


def test_ddp_step_time_reference_and_other_styles_pass():
    """Do a loop over the layers and one built on the lesson's traffic pass?"""
    assert_all_pass(run("09.ddp_step_time", time_answer()))
    assert_all_pass(run("09.ddp_step_time", time_by_events))


@pytest.mark.parametrize("how, case, word", [
    ("no overlap", "a bucket's all-reduce overlaps", "only after the whole backward"),
    ("at most the cap", "a bucket closes once it reaches the cap", "never exceed"),
    ("in parallel", "the all-reduces run one after the other", "same time"),
    ("whole message per step", "each step of the ring sends a P-th", "whole bucket"),
    ("one latency", "each of the ring's steps pays the latency", "latency once"),
    ("reduce-scatter only", "an all-reduce is a reduce-scatter and an all-gather",
     "reduce-scatter alone"),
    ("reversed", "the gradients come in the order of the lists", "in reverse"),
    ("first gradient", "a bucket's all-reduce waits for its last gradient",
     "first gradient is ready"),
    ("more than the cap", "4 layers, 2 buckets, 4 workers", "more than the cap"),
    ("no ring factor", "a GPT-like model in 25 MiB buckets", "2 (p - 1) / p times"),
    ("one bucket", "a GPT-like model in 25 MiB buckets", "all-reduced at once"),
    ("bucket per layer", "a GPT-like model in 25 MiB buckets", "on its own"),
])
def test_ddp_step_time_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("09.ddp_step_time", time_answer(how))
    assert_shows(result, case, word)
    assert result.score < 1


def test_ddp_step_time_mistakes_are_not_blamed_on_others():
    """Is a missing overlap not called a wrong cap or a wrong ring cost?"""
    result = run("09.ddp_step_time", time_answer("no overlap"))
    for innocent in ("a bucket closes once", "each step of the ring sends",
                     "each of the ring's steps pays", "an all-reduce is a"):
        assert_not_blamed(result, innocent)


def test_ddp_step_time_two_mistakes_giving_one_time_are_both_named():
    """Where a single latency and an all-reduce started at the bucket's first gradient
    give the same time, are both named in the core case, and is neither blamed by the
    other's mistake case?"""
    result = run("09.ddp_step_time", time_answer("one latency"))
    message = case_of(result, "4 layers, 2 buckets, 4 workers").message
    assert "each of these mistakes" in message and "first gradient" in message
    assert_not_blamed(result, "a bucket's all-reduce waits for its last gradient")
    result = run("09.ddp_step_time", time_answer("first gradient"))
    assert_not_blamed(result, "each of the ring's steps pays the latency")


def test_ddp_step_time_buckets_are_ddps_and_the_cost_is_the_lessons():
    """Are the checks' buckets DDP's own (_compute_bucket_assignment_by_size, one cap),
    and the all-reduce time the lesson's model (its traffic, and the latency and
    bandwidth its fit recovers)?"""
    rng = np.random.default_rng(0)
    for _ in range(20):
        layers = int(rng.integers(1, 15))
        sizes = [int(4 * rng.integers(1, 2000)) for _ in range(layers)]
        cap = int(4 * rng.integers(100, 4000))
        tensors = [torch.empty(b // 4) for b in sizes]
        theirs, _ = dist._compute_bucket_assignment_by_size(tensors, [cap])
        assert buckets(sizes, cap) == [list(b) for b in theirs]
    for P in (2, 4, 8):
        assert time_checks.allreduce_time(1e6, P, 0.0, 1.0) == pytest.approx(
            dl.ring_all_reduce_bytes(1e6, P))
        m = np.array([1e3, 1e5, 1e6, 1e7])
        t = [time_checks.allreduce_time(x, P, 3e-5, 2e9) for x in m]
        latency, bandwidth = dl.fit_latency_bandwidth(m, t, P)
        assert latency == pytest.approx(3e-5) and bandwidth == pytest.approx(2e9)


def test_ddp_step_time_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.ddp_step_time", time_answer())


# ------------------------------------------------------------ 09.data_parallel_step
def dp_answer(how=None):
    """An answer to 09.data_parallel_step with one typical mistake switched on."""
    def data_parallel_step(models, optimizers, shards, loss_fn, all_reduce):
        P, k = len(models), len(shards[0])
        rows = [sum(len(yb) for _, yb in shard) for shard in shards]
        n = all_reduce([torch.tensor(float(r), dtype=torch.float64) for r in rows])[0]
        sums = []
        for model, optimizer, shard in zip(models, optimizers, shards):
            if how != "no zero_grad":
                optimizer.zero_grad()
            total = torch.zeros((), dtype=torch.float64)
            for xb, yb in shard:
                mean = loss_fn(model(xb), yb)
                weight = {"ddp average": 1 / (P * k), "sum": 1.0}.get(how, len(yb))
                if how == "divided by P too":
                    weight = len(yb) / P
                (weight * mean).backward()
                rows = 1 if how == "mean of means" else len(yb)
                total = total + mean.detach() * rows
            sums.append(total)
        params = [list(m.parameters()) for m in models]
        divide = n if how not in ("ddp average", "sum", "sum over rows") else 1.0
        for j in range(len(params[0])):
            summed = all_reduce([p[j].grad for p in params])
            for r, p in enumerate(params):
                if r == 0 or how != "only worker 0":
                    p[j].grad = summed[r] / divide
        for r, optimizer in enumerate(optimizers):
            if r == 0 or how != "only worker 0":
                optimizer.step()
        loss = all_reduce(sums)[0]
        if how == "tensor":
            return loss / n
        return float(loss / (P * k) if how == "mean of means" else loss / n)

    return data_parallel_step


def dp_per_micro_batch(models, optimizers, shards, loss_fn, all_reduce):
    """Right values, but an all-reduce of the gradients after every micro-batch."""
    rows = [sum(len(yb) for _, yb in shard) for shard in shards]
    n = sum(rows)
    params = [list(m.parameters()) for m in models]
    kept = [torch.zeros_like(p) for p in params[0]]
    total = 0.0
    for j in range(len(shards[0])):
        for model, shard in zip(models, shards):
            model.zero_grad()
            xb, yb = shard[j]
            loss = loss_fn(model(xb), yb) * len(yb)
            loss.backward()
            total += loss.item()
        for i in range(len(kept)):
            kept[i] += all_reduce([p[i].grad for p in params])[0]
    for p in params:
        for i, q in enumerate(p):
            q.grad = kept[i] / n
    for optimizer in optimizers:
        optimizer.step()
    return total / n


def dp_on_one_big_batch(models, optimizers, shards, loss_fn, all_reduce):
    """Right values, but worker 0 runs the whole global batch and sends its gradient."""
    x = torch.cat([xb for shard in shards for xb, _ in shard])
    y = torch.cat([yb for shard in shards for _, yb in shard])
    for model in models:
        model.zero_grad()
    loss = loss_fn(models[0](x), y)
    loss.backward()
    for model in models[1:]:
        for p, q in zip(model.parameters(), models[0].parameters()):
            p.grad = q.grad.clone()
    for optimizer in optimizers:
        optimizer.step()
    return loss.item()


def test_data_parallel_step_reference_passes():
    """Does a step that weighs each worker by its rows and all-reduces once pass?"""
    assert_all_pass(run("09.data_parallel_step", dp_answer()))


@pytest.mark.parametrize("how, case, word", [
    ("ddp average", "workers with more rows weigh more", "equal weights"),
    ("sum", "the gradient is a mean over the global batch", "summed"),
    ("no zero_grad", "old gradients are cleared", "not zeroed"),
    ("only worker 0", "every replica takes the same step", "differ from worker 0"),
    ("tensor", "returns the loss as a Python float", "python float"),
    ("divided by P too", "the gradient is divided once", "p times too small"),
    ("sum over rows", "the gradient is a mean over the global batch", "has rows"),
])
def test_data_parallel_step_mistakes(how, case, word):
    """Does each typical mistake fail the case that names it, hint shown?"""
    result = run("09.data_parallel_step", dp_answer(how))
    assert_shows(result, case, word)
    if how != "tensor":
        assert result.score < 1


def test_data_parallel_step_says_what_it_called_in_one_line():
    """Does the "Called:" line show the replicas, optimizers and shards by what they
    are, not by the repr of every model?"""
    result = run("09.data_parallel_step", dp_answer("only worker 0"))
    called = [line for c in result.cases for line in c.message.splitlines()
              if line.startswith("Called:")]
    assert called and all("Linear(" not in line and "Parameter Group" not in line
                          for line in called), called
    assert "[2 replicas], [2 SGD(lr=0.1)], [shards of 6 / 6 rows], cross_entropy, " \
           "all_reduce)" in called[0]


def test_data_parallel_step_a_float32_loss_is_told_apart():
    """Is the right step with a float32 tensor for its loss told that it rounds the
    loss, with digits that tell the two numbers apart?"""
    def float32_loss(*args):
        return torch.tensor(dp_answer()(*args), dtype=torch.float32)

    result = run("09.data_parallel_step", float32_loss)
    message = case_of(result, "3 workers of 7, 3 and 5 rows").message
    assert "float32 tensor, which rounds the loss" in message
    got, expected = message.split("the loss ")[1].split(" ")[0], \
        message.split("expected ")[1].split(",")[0]
    assert got != expected


def test_data_parallel_step_a_mean_of_the_workers_losses_is_named():
    """Is the right step with the plain mean of the micro-batches' losses returned
    told that the loss is the global batch's mean?"""
    result = run("09.data_parallel_step", dp_answer("mean of means"))
    assert result.score < 1
    case = case_of(result, "3 workers of 7, 3 and 5 rows")
    assert not case.passed and "mean loss over every row" in case.message


@pytest.mark.parametrize("answer, case, word", [
    (dp_per_micro_batch, "the gradients cross the network once", "sent 3 times"),
    (dp_on_one_big_batch, "each worker computes on its own", "worker 0's model"),
])
def test_data_parallel_step_communication_mistakes(answer, case, word):
    """Are an all-reduce per micro-batch and a forward of the whole batch on worker 0,
    whose values are right, named and halved?"""
    result = run("09.data_parallel_step", answer)
    assert_shows(result, case, word)
    assert result.score == 0.5
    assert all(c.passed for c in result.cases if c.kind == "core")


def dp_without_all_reduce(models, optimizers, shards, loss_fn, all_reduce):
    """Right values, but the replicas' gradients summed directly, not all-reduced."""
    n = sum(len(yb) for shard in shards for _, yb in shard)
    total = 0.0
    for model, shard in zip(models, shards):
        model.zero_grad()
        for xb, yb in shard:
            loss = loss_fn(model(xb), yb) * len(yb)
            loss.backward()
            total += loss.item()
    params = [list(m.parameters()) for m in models]
    for k in range(len(params[0])):
        summed = sum(p[k].grad for p in params) / n
        for p in params:
            p[k].grad = summed.clone()
    for optimizer in optimizers:
        optimizer.step()
    return total / n


def test_data_parallel_step_gradients_that_skip_all_reduce_are_named():
    """Are gradients summed across the replicas directly (not through all_reduce),
    whose values are right, named and halved?"""
    result = run("09.data_parallel_step", dp_without_all_reduce)
    assert_shows(result, "the gradients cross the network once", "did not go through")
    assert result.score == 0.5


def test_data_parallel_step_mistakes_are_not_blamed_on_others():
    """Is DDP's equal average not called a sum, stale gradients or drifting replicas?"""
    result = run("09.data_parallel_step", dp_answer("ddp average"))
    for innocent in ("the gradient is a mean over", "old gradients are cleared",
                     "every replica takes the same step", "the gradients cross"):
        assert_not_blamed(result, innocent)


def test_data_parallel_step_oracle_equals_ddps_average_only_for_equal_shards():
    """Is DDP's equal-weight average (the checks' "ddp average") the single process's
    step when every worker has as many rows, as the lesson showed, and not on the
    unequal cases; and does the checks' all_reduce sum as dist.all_reduce does?"""
    equal = "2 workers, one micro-batch of 6 rows each, SGD, one step"
    ref = dps_checks.reference_run(equal)[1]
    ddp = dps_checks.reference_run(equal, "ddp average")[1]
    assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(ref[-1], ddp[-1]))
    for case in ("3 workers of 7, 3 and 5 rows, Adam, two steps",
                 "4 workers, 3 micro-batches each of unequal sizes, momentum, "
                 "regression"):
        ref = dps_checks.reference_run(case)[1]
        ddp = dps_checks.reference_run(case, "ddp average")[1]
        assert not all(torch.allclose(a, b) for a, b in zip(ref[-1], ddp[-1]))
    reduce = AllReduce(3)
    parts = [torch.arange(4.0) * (r + 1) for r in range(3)]
    out = reduce(parts)
    assert all(torch.equal(o, torch.stack(parts).sum(0)) for o in out)
    assert reduce.calls == 1 and reduce.elements == 4
    with pytest.raises(ValueError, match="list of 3 tensors"):
        reduce(parts[:2])


def test_data_parallel_step_trivial_answers_score_zero():
    """Do None, pass, raise, the first input and constants score 0?"""
    assert_trivial_scores_zero("09.data_parallel_step", dp_answer())


# ---------------------------------------------------------------------- time limits
REFERENCES = {
    "09.scaled_lr": lr_answer(),
    "09.epoch_indices": epochs_answer(),
    "09.min_workers": memory_answer(),
    "09.save_shards": save_answer(),
    "09.load_resharded": load_answer(),
    "09.sync_batchnorm_stats": bn_answer(),
    "09.ddp_step_time": time_answer(),
    "09.data_parallel_step": dp_answer(),
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
