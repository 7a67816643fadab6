"""Tests of course_utils.lessons.distributed and of lesson 09's script: the memory of a
step against a real Adam step and the ZeRO paper's figures, shard indices against
DistributedSampler, the ring schedule simulated against a plain sum, the ring all-reduce
against dist.all_reduce under torchrun, and the script's DDP, no_sync, FSDP and
checkpoint phases against single-process training on the concatenated batches.

The torchrun tests (``slow``) run 2 to 4 gloo processes on the loopback interface;
``launch.run_torchrun`` stops every process it started, which tests/test_launch.py
checks."""
from __future__ import annotations

import itertools
import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from course_utils.lessons import cnn, launch
from course_utils.lessons import distributed as D
from course_utils.lessons import distributed_lab as lab


# ------------------------------------------------------------------- memory of a step
def test_step_memory_matches_a_real_adam_step():
    """Do the weights, gradients and Adam moments of a real float32 step take the bytes
    step_memory computes (16 per parameter)?"""
    model = nn.Sequential(nn.Linear(13, 7), nn.ReLU(), nn.Linear(7, 3))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 13)).square().mean().backward()
    optimizer.step()
    n = sum(p.numel() for p in model.parameters())
    states = sum(t.nbytes for s in optimizer.state.values() for k, t in s.items()
                 if k != "step")                      # the step counter is a scalar
    ours = D.step_memory(n)
    assert ours.weights == sum(p.nbytes for p in model.parameters())
    assert ours.gradients == sum(p.grad.nbytes for p in model.parameters())
    assert ours.optimizer == states
    assert ours.model_states == 16 * n


def test_step_memory_gives_the_zero_papers_figures():
    """Does it give Rajbhandari et al.'s Figure 1 (7.5 B parameters, mixed precision,
    64 workers): 120, 31.4, 16.6 and 1.88 GB per worker for stages 0 to 3, to the
    three digits it gives?"""
    got = [D.step_memory(7_500_000_000, zero_stage=s, world_size=64,
                         mixed_precision=True).model_states / 1e9 for s in range(4)]
    assert got == pytest.approx([120, 31.4, 16.6, 1.88], rel=5e-3)


def test_step_memory_shards_with_ceil_and_rejects_nonsense():
    """Does a shard hold ceil(N / P) parameters, are activations never sharded, and are
    a stage 4 and a world of 0 refused?"""
    m = D.step_memory(10, activation_bytes=100, zero_stage=3, world_size=3)
    assert (m.weights, m.gradients, m.optimizer, m.activations) == (16, 16, 32, 100)
    assert m.total == 164 and "GB" in repr(m)
    with pytest.raises(ValueError):
        D.step_memory(10, zero_stage=4)
    with pytest.raises(ValueError):
        D.step_memory(10, world_size=0)


def test_saved_tensor_bytes_counts_each_activation_once():
    """For Linear -> ReLU -> Linear -> square, is what autograd saves the input, the
    ReLU's output (saved by the ReLU and by the second Linear: once) and the output,
    without the weights?"""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    x = torch.randn(4, 5)
    loss, n = D.saved_tensor_bytes(lambda: model(x).square().sum(),
                                   exclude=model.parameters())
    assert n == 4 * 4 * (5 + 7 + 3)
    _, with_weights = D.saved_tensor_bytes(lambda: model(x).square().sum())
    assert with_weights == n + model[2].weight.nbytes     # the one weight it saves
    assert loss.item() == pytest.approx(model(x).square().sum().item())


# ------------------------------------------------------------------ data parallelism
@pytest.mark.parametrize("n,P", [(10, 3), (10, 4), (12, 4), (3, 5), (1, 2), (100, 7)])
@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (False, False),
                                               (True, True), (False, True)])
def test_shard_indices_are_distributed_samplers(n, P, shuffle, drop_last):
    """Does every rank get DistributedSampler's indices, in its order, padded or not,
    for several seeds and epochs?"""
    dataset = list(range(n))
    for seed, epoch, rank in itertools.product((0, 7), (0, 3), range(P)):
        sampler = DistributedSampler(dataset, num_replicas=P, rank=rank,
                                     shuffle=shuffle, seed=seed, drop_last=drop_last)
        sampler.set_epoch(epoch)
        ours = D.shard_indices(n, P, rank, shuffle, seed, epoch, drop_last)
        assert ours == list(sampler), (n, P, rank, seed, epoch)


def test_padding_repeats_and_drop_last_drops():
    """With 10 examples over 4 ranks, does padding give 2 examples twice and drop_last
    leave 2 out?"""
    padded = sum((D.shard_indices(10, 4, r, shuffle=False) for r in range(4)), [])
    dropped = sum((D.shard_indices(10, 4, r, shuffle=False, drop_last=True)
                   for r in range(4)), [])
    assert sorted(padded) == sorted(list(range(10)) + [0, 1])
    assert sorted(dropped) == list(range(8))
    with pytest.raises(ValueError):
        D.shard_indices(10, 4, 4)


def test_global_batches_are_the_union_of_the_ranks_loaders():
    """Is each global batch the union of what every rank's DataLoader (its
    DistributedSampler, drop_last) yields at that step, across an epoch boundary and
    with accumulation?"""
    n, P, B, k, steps = 50, 3, 4, 2, 5         # 4 batches per rank per epoch
    dataset = torch.arange(n)
    per_rank = []
    for rank in range(P):
        sampler = DistributedSampler(dataset, P, rank, shuffle=True, seed=3)
        loader = torch.utils.data.DataLoader(dataset, B, sampler=sampler,
                                             drop_last=True)
        got = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            got += [b.tolist() for b in loader]
        per_rank.append(got)
    ours = D.global_batches(n, P, B, steps, accumulation=k, seed=3)
    assert len(ours) == steps
    for s, batch in enumerate(ours):
        expected = [i for r in range(P) for j in range(s * k, (s + 1) * k)
                    for i in per_rank[r][j]]
        assert sorted(batch) == sorted(expected)
    with pytest.raises(ValueError):
        D.global_batches(5, 2, 4, 1)


def test_averaged_worker_gradients_are_the_big_batch_gradient():
    """In float64, is the mean of P workers' gradients (batch B each) the gradient of
    one worker on the P B examples, and is a BatchNorm network the exception?"""
    torch.manual_seed(0)
    X = torch.randn(12, 1, 28, 28, dtype=torch.float64)
    y = torch.randint(0, 10, (12,))
    shards = [slice(0, 4), slice(4, 8), slice(8, 12)]

    def loss_fn(model, idx):
        return nn.functional.cross_entropy(model(X[idx]), y[idx])

    for model, exact in ((cnn.LeNet5().double(), True),
                         (cnn.SmallCNN(dropout=0.0).double(), False)):
        workers = D.worker_gradients(model, loss_fn, shards)
        big = D.worker_gradients(model, loss_fn, [slice(0, 12)])[0]
        worst = max((sum(g[i] for g in workers) / 3 - big[i]).abs().max().item()
                    for i in range(len(big)))
        assert (worst < 1e-12) == exact, (type(model).__name__, worst)


def test_train_on_batches_is_plain_sgd_with_momentum():
    """Does train_on_batches take one SGD step with momentum per batch of the mean
    cross-entropy (checked against the update written out)?"""
    torch.manual_seed(1)
    model = nn.Linear(3, 4).double()
    X, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    D.train_on_batches(model, X, y, [[0, 1, 2], [3, 4, 5]], lr=0.1, momentum=0.5)
    uw = ub = None
    for idx in ([0, 1, 2], [3, 4, 5]):
        w_, b_ = w.clone().requires_grad_(), b.clone().requires_grad_()
        nn.functional.cross_entropy(X[idx] @ w_.T + b_, y[idx]).backward()
        uw = w_.grad if uw is None else 0.5 * uw + w_.grad
        ub = b_.grad if ub is None else 0.5 * ub + b_.grad
        w, b = w - 0.1 * uw, b - 0.1 * ub
    assert torch.allclose(model.weight, w, atol=1e-15)
    assert torch.allclose(model.bias, b, atol=1e-15)


# -------------------------------------------------------------------- ring all-reduce
@pytest.mark.parametrize("numel,P", [(10, 3), (9, 3), (2, 5), (0, 2), (1001, 4)])
def test_chunk_bounds_are_tensor_splits(numel, P):
    """Are the chunks those of torch.tensor_split: contiguous, covering, sizes within
    one of each other?"""
    bounds = D.chunk_bounds(numel, P)
    sizes = [len(c) for c in torch.tensor_split(torch.arange(numel), P)]
    assert [b - a for a, b in bounds] == sizes
    assert bounds[0][0] == 0 and bounds[-1][1] == numel
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(P - 1))


def simulate_ring(values: np.ndarray) -> np.ndarray:
    """Run ring_schedule on P ranks' rows of ``values`` (P, n) in memory: each step,
    every rank sends a copy of a chunk to its right neighbour at once."""
    P, n = values.shape
    state = values.astype(float).copy()
    bounds = D.chunk_bounds(n, P)
    for step in D.ring_schedule(P):
        sent = [state[r, slice(*bounds[step.send[r]])].copy() for r in range(P)]
        for r in range(P):
            incoming = sent[(r - 1) % P]
            mine = state[r, slice(*bounds[step.recv(r)])]
            if step.phase == "reduce-scatter":
                mine += incoming
            else:
                mine[:] = incoming
    return state


@pytest.mark.parametrize("P", [2, 3, 4, 5, 8])
def test_ring_schedule_all_reduces(P):
    """Does following the schedule leave every rank with the sum of all ranks' values,
    in 2 (P - 1) steps, and does all-gather start from chunk (r + 1) % P, the one rank
    r completed in the reduce-scatter?"""
    rng = np.random.default_rng(P)
    values = rng.integers(-100, 100, size=(P, 3 * P + 1))
    assert np.array_equal(simulate_ring(values), np.tile(values.sum(0), (P, 1)))
    steps = D.ring_schedule(P)
    assert len(steps) == 2 * (P - 1)
    gather = [s for s in steps if s.phase == "all-gather"]
    assert gather[0].send == tuple((r + 1) % P for r in range(P))


def test_ring_schedule_sends_the_chunk_received_just_before():
    """Within a phase, does each rank forward the chunk it received at the step
    before (what makes it a pipeline around the ring)?"""
    P = 5
    steps = D.ring_schedule(P)
    for phase in ("reduce-scatter", "all-gather"):
        run = [s for s in steps if s.phase == phase]
        for before, now in zip(run, run[1:]):
            assert all(now.send[r] == before.recv(r) for r in range(P))


def test_ring_traffic_and_the_latency_bandwidth_fit():
    """Does each rank send 2 (P - 1) / P of the message, and does the fit recover the
    latency and bandwidth of times made from them?"""
    assert D.ring_all_reduce_bytes(1000, 2) == 1000
    assert D.ring_all_reduce_bytes(1000, 8) == pytest.approx(1750)
    m = np.array([1e3, 1e4, 1e5, 1e6, 1e7])
    t = 2 * 3 * 20e-6 + D.ring_all_reduce_bytes(m, 4) / 2e9
    latency, bandwidth = D.fit_latency_bandwidth(m, t, 4)
    assert latency == pytest.approx(20e-6, rel=1e-6)
    assert bandwidth == pytest.approx(2e9, rel=1e-6)


def test_pipeline_bubble():
    """Is GPipe's bubble (p - 1) / (m + p - 1): none for one stage, half for 4 stages
    and 3 micro-batches?"""
    assert D.pipeline_bubble(1, 8) == 0
    assert D.pipeline_bubble(4, 3) == pytest.approx(0.5)
    assert D.pipeline_bubble(8, 32) == pytest.approx(7 / 39)


# ---------------------------------------------------------------- under torchrun (slow)
RING_SCRIPT = '''
import json, sys
import torch, torch.distributed as dist
from course_utils.lessons import distributed as D
dist.init_process_group("gloo")
rank, P = dist.get_rank(), dist.get_world_size()
rows = []
for n in (0, 1, P - 1, P, 7 * P + 3, 1000):
    for kind in ("integers", "float64"):
        g = torch.Generator().manual_seed(10 * n + rank)
        x = torch.randint(-1000, 1000, (n,), generator=g).double()
        if kind == "float64":
            x = torch.randn(n, generator=g, dtype=torch.float64)
        ours, theirs = x.clone(), x.clone()
        D.ring_all_reduce(ours)
        dist.all_reduce(theirs)
        rows.append([n, kind, bool(torch.equal(ours, theirs)),
                     bool(torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12))])
m = torch.arange(12.0).view(3, 4).t() + rank             # not contiguous
D.ring_all_reduce(m)
rows.append(["transposed", "float32", bool(torch.equal(
    m, P * (torch.arange(12.0).view(3, 4).t()) + sum(range(P)))), True])
if rank == 0:
    open(sys.argv[1], "w").write(json.dumps(rows))
dist.destroy_process_group()
'''


@pytest.mark.slow
@pytest.mark.parametrize("P", [2, 3, 4])
def test_ring_all_reduce_is_all_reduce_under_torchrun(tmp_path, P):
    """With P gloo processes, does ring_all_reduce give dist.all_reduce's sum: exactly
    for integers (any order of summation is exact) and for 2 processes (a + b is b + a),
    to rounding otherwise (the ring adds in another order than gloo); also for sizes P
    does not divide, smaller than P, and a tensor that is not contiguous?"""
    script = tmp_path / "ring.py"
    script.write_text(RING_SCRIPT)
    launch.run_torchrun(script, [tmp_path / "rows.json"], nproc=P, timeout=240)
    rows = json.loads((tmp_path / "rows.json").read_text())
    for n, kind, equal, close in rows:
        assert close, (n, kind)
        if kind == "integers" or P == 2 or n == 0:
            assert equal, (n, kind)


def lab_script(tmp_path: Path) -> Path:
    """The lesson's script written to a file, as the notebook writes it."""
    script = tmp_path / "distributed_lab.py"
    shutil.copyfile(lab.__file__, script)
    return script


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def reference():
    """Single-process training on the concatenated batches: 20 steps of 2 x 16 images,
    and with 3 micro-batches accumulated per step."""
    def train(accumulation):
        X, y = lab.mnist(400).tensors
        model = lab.lenet(0, torch.device("cpu"))
        batches = D.global_batches(400, 2, 16, 20, accumulation, seed=0)
        D.train_on_batches(model, X, y, batches, lr=0.05)
        return model.state_dict()
    return train


@pytest.mark.slow
@pytest.mark.data
def test_the_lessons_script_gives_single_process_training(shared_data, tmp_path,
                                                          reference):
    """Launched by torchrun with 2 gloo processes, do DDP, DDP with no_sync and FSDP2
    reach the parameters of single-process training on the concatenated batches after
    20 steps (to 1e-6: float64 gives about 1e-16), does no_sync all-reduce once per step
    instead of once per micro-batch, are the ring and all_reduce equal, and is no
    process or port of the launch left?"""
    out = tmp_path / "out"
    args = ["--out", out, "--phases", "collectives,ring,ddp,no_sync,fsdp",
            "--num-images", 400, "--steps", 20, "--batch-size", 16,
            "--accumulation", 3, "--timeout", 60]
    result = launch.run_torchrun(lab_script(tmp_path), args, nproc=2, timeout=300)
    assert result.ok and result.lines("[rank 1]")
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["backend"] == "gloo"
    single = reference(1)
    assert max_difference(torch.load(out / "ddp.pt"), single) < 1e-6
    accumulated = reference(3)
    assert max_difference(torch.load(out / "no_sync.pt"), accumulated) < 1e-6
    assert max_difference(torch.load(out / "every_micro_batch.pt"), accumulated) < 1e-6
    # one bucket (DDP's default 25 MiB holds LeNet-5's 0.5 MB) per synchronised backward
    assert results["no_sync"]["no_sync_all_reduces"] == 20
    assert results["no_sync"]["every_micro_batch_all_reduces"] == 3 * 20
    assert len(results["ddp"]["buckets_first_step"]) == 1     # 0.1 MiB: rebuilt later
    assert len(results["ddp"]["buckets_later"]) >= 2
    if results["fsdp"]["supported"]:
        assert max_difference(torch.load(out / "fsdp.pt"), single) < 1e-6
        held = [r["params_held"] for r in results["fsdp"]["ranks"]]
        assert sum(held) == results["fsdp"]["num_params"] == 61_706
    assert all(row["equal"] for row in results["ring"]["sizes"])
    ranks = results["collectives"]["ranks"]
    assert ranks[1]["broadcast"] == ranks[0]["x"]
    assert ranks[0]["all_reduce"] == [a + b for a, b in zip(ranks[0]["x"],
                                                            ranks[1]["x"])]
    assert ranks[1]["reduce_scatter"] == ranks[0]["all_reduce"][2:]
    # no process of the launch is left, and its rendezvous port is free again
    assert launch.leftover_processes(result.launch_id) == []
    assert port_is_free(int(results["master_port"]))


@pytest.mark.slow
@pytest.mark.data
def test_a_crashed_worker_is_restarted_from_the_checkpoint(shared_data, tmp_path,
                                                           reference):
    """With --max-restarts 1, when the last rank fails after step 7, do the workers
    restart, resume from rank 0's checkpoint of step 5, and end where uninterrupted
    training ends?"""
    out = tmp_path / "out"
    args = ["--out", out, "--phases", "checkpoint", "--num-images", 400,
            "--steps", 20, "--batch-size", 16, "--save-every", 5, "--crash-at", 7,
            "--timeout", 60]
    result = launch.run_torchrun(lab_script(tmp_path), args, nproc=2, max_restarts=1,
                                 timeout=300)
    results = json.loads((out / "results.json").read_text())
    assert results["checkpoint"]["attempt"] == 1
    assert results["checkpoint"]["resumed_from_step"] == 5
    assert "simulated failure of rank 1 after step 7" in result.log
    assert launch.leftover_processes(result.launch_id) == []
    assert max_difference(torch.load(out / "checkpoint_final.pt"), reference(1)) < 1e-6


def port_is_free(port: int) -> bool:
    """Can we listen on the port (SO_REUSEADDR: connections in TIME_WAIT do not
    count, a listening socket does)?"""
    with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("::" if socket.has_ipv6 else "", port))
        except OSError:
            return False
    return True


def test_port_is_free_sees_a_listener():
    """Does port_is_free say no for a port someone listens on (so it can fail)?"""
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        assert not port_is_free(s.getsockname()[1])
