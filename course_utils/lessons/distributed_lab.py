"""The training script of lesson 09: ``torchrun`` starts one copy of it per worker.

    torchrun --standalone --nproc-per-node 2 distributed_lab.py --out DIR [options]

The lesson writes this file's source to a file and launches it
(``launch.run_torchrun``); the tests launch the same file. Each worker learns its rank
and the world size from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), joins the process group (gloo on CPUs; NCCL when there is
a GPU per worker) and runs the phases asked for (``--phases``, comma-separated):

=============  =========================================================================
collectives    broadcast, all_reduce, all_gather and reduce_scatter on small tensors
ring           ``ring_all_reduce`` against ``dist.all_reduce``, sizes P does not divide
timing         the time of both against the message size
ddp            DDP with DistributedSampler: lesson 03's LeNet-5 on MNIST, float64;
               the gradient buckets DDP all-reduces, seen through a communication hook
no_sync        gradient accumulation over micro-batches with ``DDP.no_sync``
fsdp           FSDP2 (``fully_shard``): each worker holds a shard of every parameter
speed          seconds per step of DDP on lesson 03's SmallCNN, float32, with and
               without its all-reduces
checkpoint     rank 0 saves, every rank loads; with ``--crash-at`` one rank fails once
               and ``torchrun --max-restarts`` restarts the workers from the checkpoint
=============  =========================================================================

Rank 0 writes DIR/results.json and the trained parameters as DIR/<phase>.pt.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from course_utils.data import image_dataset, load_mnist
from course_utils.lessons import cnn
from course_utils.lessons import distributed as D

PHASES = ("collectives", "ring", "timing", "ddp", "no_sync", "fsdp", "speed")


def log(message: str) -> None:
    """Print one line of this worker's log, prefixed with its rank."""
    # one write for the whole line, so that the workers' lines do not interleave
    sys.stdout.write(f"[rank {dist.get_rank()}] {message}\n")
    sys.stdout.flush()


def setup(timeout_s: float) -> torch.device:
    """Join the process group; returns this worker's device."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    nccl = torch.cuda.is_available() and torch.cuda.device_count() >= world  # 1 each
    device = torch.device("cuda", local_rank) if nccl else torch.device("cpu")
    if nccl:
        torch.cuda.set_device(device)
    # A timeout makes a collective that waits for a dead peer fail instead of hanging.
    dist.init_process_group("nccl" if nccl else "gloo",
                            timeout=timedelta(seconds=timeout_s))
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the device (CUDA runs asynchronously), then for every rank."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dist.barrier()


# ------------------------------------------------------------------------ collectives
def collectives(device) -> dict:
    """Each collective on a tiny tensor; every rank logs what it holds after it."""
    rank, P = dist.get_rank(), dist.get_world_size()
    x = torch.arange(2 * P, dtype=torch.float32, device=device) + 100 * rank  # (2P,)
    log(f"holds x = {x.tolist()}")
    b = x.clone()
    dist.broadcast(b, src=0)                  # everyone gets rank 0's tensor
    s = x.clone()
    dist.all_reduce(s)                        # everyone gets the sum (SUM is default)
    gathered = [torch.empty_like(x) for _ in range(P)]
    dist.all_gather(gathered, x)              # everyone gets every rank's tensor
    out = {"rank": rank, "x": x.tolist(), "broadcast": b.tolist(),
           "all_reduce": s.tolist(), "all_gather": [g.tolist() for g in gathered]}
    chunk = torch.empty(2, device=device)     # rank r gets chunk r of the sum
    try:
        dist.reduce_scatter(chunk, list(x.chunk(P)))
        out["reduce_scatter"], out["reduce_scatter_supported"] = chunk.tolist(), True
    except RuntimeError as err:               # older gloo builds: not implemented
        out["reduce_scatter_error"] = str(err).splitlines()[0][:200]
        out["reduce_scatter"] = s.chunk(P)[rank].tolist()     # the same, by all_reduce
        out["reduce_scatter_supported"] = False
    for name in ("broadcast", "all_reduce", "all_gather", "reduce_scatter"):
        log(f"after {name}: {out[name]}")
    every = [None] * P
    dist.all_gather_object(every, out)
    return {"backend": dist.get_backend(), "world_size": P, "ranks": every}


# ---------------------------------------------------------------------- ring all-reduce
def ring(device, sizes=(1, 3, 1000, 1001, 2 ** 16 + 1)) -> dict:
    """ring_all_reduce against dist.all_reduce on random float32 tensors."""
    rank, P = dist.get_rank(), dist.get_world_size()
    rows = []
    for n in sizes:
        g = torch.Generator().manual_seed(1000 * n + rank)    # different on each rank
        x = torch.randn(n, generator=g).to(device)
        ours, theirs = D.ring_all_reduce(x.clone()), x.clone()
        dist.all_reduce(theirs)
        diff = (ours - theirs).abs().max().item()
        rows.append({"numel": n, "equal": bool(torch.equal(ours, theirs)),
                     "max_abs_diff": diff})
        log(f"numel {n}: ring == all_reduce: {torch.equal(ours, theirs)} "
            f"(max difference {diff:.1e})")
    return {"world_size": P, "sizes": rows}


def timing(device, sizes, repeats: int) -> dict:
    """Seconds of ring_all_reduce and dist.all_reduce against the message size: the
    median over repeats of the slowest rank."""
    rows = []
    for n in sizes:
        x = torch.randn(n, device=device)                   # float32: 4 n bytes
        row = {"numel": n, "bytes": 4 * n}
        for name, op in (("ring", D.ring_all_reduce), ("all_reduce", dist.all_reduce)):
            times = []
            for i in range(repeats + 1):                    # the first is a warm-up
                y = x.clone()
                synchronize(device)
                start = time.perf_counter()
                op(y)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t = torch.tensor(time.perf_counter() - start, device=device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)    # the slowest rank's time
                times.append(t.item())
            row[name] = sorted(times[1:])[repeats // 2]
        rows.append(row)
        if dist.get_rank() == 0:
            log(f"{4 * n:>11,} bytes: ring {row['ring'] * 1e3:8.3f} ms, "
                f"all_reduce {row['all_reduce'] * 1e3:8.3f} ms")
    return {"world_size": dist.get_world_size(), "sizes": rows}


# ------------------------------------------------------------------- data parallelism
def mnist(num_images: int, dtype=torch.float64) -> TensorDataset:
    """The first ``num_images`` MNIST training images, (N, 1, 28, 28) in [0, 1]."""
    X, y = load_mnist("train")
    images, labels = image_dataset(X[:num_images], y[:num_images]).tensors
    return TensorDataset(images.to(dtype), labels)


def batches(dataset, batch_size: int, seed: int, start: int = 0):
    """This rank's batches, epoch after epoch, from step ``start`` on:
    DistributedSampler (shuffled with seed + epoch, padded) and a DataLoader that drops
    a last short batch, so that every rank takes as many steps."""
    sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)
    epoch, skip = divmod(start, len(loader))
    while True:
        sampler.set_epoch(epoch)             # a new permutation each epoch
        for i, batch in enumerate(loader):
            if i >= skip:
                yield batch
        epoch, skip = epoch + 1, 0


def lenet(seed: int, device) -> nn.Module:
    """Lesson 03's LeNet-5 in float64, the same initial weights on every rank."""
    torch.manual_seed(seed)
    return cnn.LeNet5().double().to(device)


def bucket_recorder(model: nn.Module, calls: list):
    """A DDP communication hook that averages as DDP does, and appends to ``calls``
    the parameters in each bucket it is given."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    names = {p.data_ptr(): n for n, p in model.named_parameters()}

    def hook(process_group, bucket):
        calls.append([names.get(p.data_ptr(), "?") for p in bucket.parameters()])
        return default_hooks.allreduce_hook(process_group, bucket)

    return hook


def ddp(device, data, steps, batch_size, lr, seed, out: Path, bucket_cap_mb) -> dict:
    """DDP + DistributedSampler for ``steps`` SGD steps; saves the final parameters."""
    model = DDP(lenet(seed, device), bucket_cap_mb=bucket_cap_mb,
                device_ids=[device.index] if device.type == "cuda" else None)
    calls: list = []
    model.register_comm_hook(dist.group.WORLD, bucket_recorder(model.module, calls))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses, buckets = [], []
    for step, (X, y) in zip(range(steps), batches(data, batch_size, seed)):
        loss = F.cross_entropy(model(X.to(device)), y.to(device))   # this rank's mean
        optimizer.zero_grad()
        loss.backward()              # the hook all-reduces each bucket when it is ready
        optimizer.step()
        buckets.append(calls[:])
        calls.clear()
        global_loss = loss.detach().clone()
        dist.all_reduce(global_loss)                 # for the log only
        losses.append(global_loss.item() / dist.get_world_size())
    if dist.get_rank() == 0:
        torch.save(model.module.state_dict(), out / "ddp.pt")
        log(f"DDP: {steps} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}; buckets "
            f"at step 1: {len(buckets[0])}, from step 2: {len(buckets[-1])}")
    return {"losses": losses, "buckets_first_step": buckets[0],
            "buckets_later": buckets[-1], "bucket_cap_mb": bucket_cap_mb}


def no_sync(device, data, steps, batch_size, accumulation, lr, seed, out) -> dict:
    """Gradient accumulation: ``accumulation`` micro-batches per step, all-reducing on
    the last only (``no_sync`` on the others), against all-reducing on every one."""
    result = {"accumulation": accumulation}
    for name, skip in (("no_sync", True), ("every_micro_batch", False)):
        model = DDP(lenet(seed, device),
                    device_ids=[device.index] if device.type == "cuda" else None)
        calls: list = []
        model.register_comm_hook(dist.group.WORLD, bucket_recorder(model.module, calls))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        stream = batches(data, batch_size, seed)
        for _ in range(steps):
            for j in range(accumulation):
                X, y = next(stream)
                quiet = skip and j < accumulation - 1        # all but the last
                with model.no_sync() if quiet else contextlib.nullcontext():
                    # inside no_sync: no all-reduce, the gradients add up locally
                    loss = F.cross_entropy(model(X.to(device)), y.to(device))
                    (loss / accumulation).backward()    # the mean over micro-batches
            optimizer.step()
            optimizer.zero_grad()
        result[f"{name}_all_reduces"] = len(calls)
        if dist.get_rank() == 0:
            torch.save(model.module.state_dict(), out / f"{name}.pt")
            log(f"accumulation over {accumulation} micro-batches ({name}): "
                f"{len(calls)} bucket all-reduces in {steps} steps")
    return result


def fsdp(device, data, steps, batch_size, lr, seed, out) -> dict:
    """FSDP2: ``fully_shard`` each layer and the model, train as DDP did, gather the
    parameters. Reports what each rank holds."""
    try:
        from torch.distributed.device_mesh import init_device_mesh
        try:
            from torch.distributed.fsdp import fully_shard          # torch >= 2.6
        except ImportError:
            from torch.distributed._composable.fsdp import fully_shard
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
        model = lenet(seed, device)
        for layer in model.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                fully_shard(layer, mesh=mesh)   # one unit: gathered for its forward
        fully_shard(model, mesh=mesh)
    except (ImportError, RuntimeError, NotImplementedError, ValueError) as err:
        log(f"FSDP2 is not available here: {type(err).__name__}: {err}")
        return {"supported": False, "error": f"{type(err).__name__}: {err}"[:300]}
    local = {n: list(p.to_local().shape) for n, p in model.named_parameters()}
    held = sum(p.to_local().numel() for p in model.parameters())   # this rank's shard
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _, (X, y) in zip(range(steps), batches(data, batch_size, seed)):
        loss = F.cross_entropy(model(X.to(device)), y.to(device))
        optimizer.zero_grad()
        loss.backward()              # gradients reduce-scattered: each rank its shard
        optimizer.step()             # each rank updates its shard only
    full = {n: p.full_tensor().cpu() for n, p in model.named_parameters()}  # all-gather
    log(f"FSDP2: holds {held:,} of {sum(v.numel() for v in full.values()):,} "
        f"parameters; features.0.weight shard {local['features.0.weight']}")
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, {"local_shapes": local, "params_held": held})
    if dist.get_rank() == 0:
        torch.save(full, out / "fsdp.pt")
    return {"supported": True, "ranks": every,
            "num_params": sum(v.numel() for v in full.values())}


def speed(device, steps, global_batches, warmup, seed) -> dict:
    """Seconds per DDP step of lesson 03's SmallCNN (float32), each global batch split
    over the ranks; and the same steps inside no_sync, which all-reduces nothing."""
    P = dist.get_world_size()
    result = {"world_size": P, "steps": steps, "batches": []}
    for global_batch in global_batches:
        data = mnist(4 * global_batch, torch.float32)    # cycled: 4 steps an epoch
        row = {"global_batch": global_batch}
        for name in ("ddp", "compute_only"):
            torch.manual_seed(seed)
            model = DDP(cnn.SmallCNN().to(device),
                        device_ids=[device.index] if device.type == "cuda" else None)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            stream = batches(data, global_batch // P, seed)
            quiet = model.no_sync if name == "compute_only" else contextlib.nullcontext
            for i in range(warmup + steps):
                if i == warmup:
                    synchronize(device)
                    start = time.perf_counter()
                X, y = next(stream)
                with quiet():
                    loss = F.cross_entropy(model(X.to(device)), y.to(device))
                    optimizer.zero_grad()
                    loss.backward()
                optimizer.step()
            synchronize(device)
            row[f"{name}_seconds_per_step"] = (time.perf_counter() - start) / steps
        result["batches"].append(row)
        if dist.get_rank() == 0:
            log(f"SmallCNN, global batch {global_batch} over {P} ranks: "
                f"{row['ddp_seconds_per_step'] * 1e3:.0f} ms per step "
                f"({row['compute_only_seconds_per_step'] * 1e3:.0f} ms without "
                "all-reduce)")
    return result


def checkpoint(device, data, steps, batch_size, lr, seed, out, save_every,
               crash_at) -> dict:
    """Train with a checkpoint every ``save_every`` steps (rank 0 writes it, every rank
    reads it when it starts); the last rank fails at step ``crash_at`` on the first
    attempt, so that torchrun restarts every worker and they resume."""
    path = out / "checkpoint.pt"
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    model = lenet(seed, device)
    optimizer_state, start = None, 0
    if path.exists():                        # every rank reads the same file
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer_state, start = state["optimizer"], state["step"]
        log(f"attempt {attempt}: resumed from the checkpoint of step {start}")
    model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)   # the momentum buffers too
    stream = batches(data, batch_size, seed, start)
    for step in range(start, steps):
        X, y = next(stream)
        loss = F.cross_entropy(model(X.to(device)), y.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done = step + 1
        if done % save_every == 0 or done == steps:
            if dist.get_rank() == 0:         # one writer; write, then rename: atomic
                state = {"model": model.module.state_dict(),
                         "optimizer": optimizer.state_dict(), "step": done}
                torch.save(state, out / "checkpoint.tmp")
                os.replace(out / "checkpoint.tmp", path)
            dist.barrier()                   # nobody goes on before the file exists
        last_rank = dist.get_rank() == dist.get_world_size() - 1
        if done == crash_at and attempt == 0 and last_rank:
            raise RuntimeError(f"simulated failure of rank {dist.get_rank()} "
                               f"after step {done}")
    if dist.get_rank() == 0:
        torch.save(model.module.state_dict(), out / "checkpoint_final.pt")
    return {"attempt": attempt, "resumed_from_step": start, "steps": steps}


# ------------------------------------------------------------------------------ main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the results")
    p.add_argument("--phases", default=",".join(PHASES))
    p.add_argument("--num-images", type=int, default=1000, help="MNIST images (ddp)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32, help="per rank")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bucket-cap-mb", type=float, default=0.1)
    p.add_argument("--accumulation", type=int, default=4)
    p.add_argument("--timing-sizes", default="256,4096,65536,1048576",
                   help="float32 elements per message")
    p.add_argument("--timing-repeats", type=int, default=5)
    p.add_argument("--speed-steps", type=int, default=10)
    p.add_argument("--speed-batches", default="128", help="global batches: 128,1024")
    p.add_argument("--save-every", type=int, default=5)
    p.add_argument("--crash-at", type=int, default=0, help="0: no failure")
    p.add_argument("--timeout", type=float, default=120, help="seconds per collective")
    return p.parse_args(argv)


@record                  # torchrun's error summary then shows the failing traceback
def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 1)))
    device = setup(args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES) - {"checkpoint"}
    if unknown:
        raise SystemExit(f"unknown phases {sorted(unknown)}")
    rank0 = dist.get_rank() == 0
    if rank0:
        log(f"world size {dist.get_world_size()}, backend {dist.get_backend()}, "
            f"device {device}, MASTER_ADDR={os.environ.get('MASTER_ADDR')}, "
            f"MASTER_PORT={os.environ.get('MASTER_PORT')}")
    common = dict(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                  seed=args.seed, out=args.out)
    trains = {"ddp", "no_sync", "fsdp", "checkpoint"} & set(phases)
    data = mnist(args.num_images) if trains else None      # float64 MNIST
    results = {"world_size": dist.get_world_size(), "backend": dist.get_backend(),
               "device": str(device), "master_port": os.environ.get("MASTER_PORT"),
               "args": {k: str(v) for k, v in vars(args).items()}}
    for phase in phases:
        start = time.perf_counter()
        if phase == "collectives":
            results[phase] = collectives(device)
        elif phase == "ring":
            results[phase] = ring(device)
        elif phase == "timing":
            sizes = [int(s) for s in args.timing_sizes.split(",")]
            results[phase] = timing(device, sizes, args.timing_repeats)
        elif phase == "ddp":
            results[phase] = ddp(device, data, bucket_cap_mb=args.bucket_cap_mb,
                                 **common)
        elif phase == "no_sync":
            results[phase] = no_sync(device, data, accumulation=args.accumulation,
                                     **common)
        elif phase == "fsdp":
            results[phase] = fsdp(device, data, **common)
        elif phase == "speed":
            sizes = [int(b) for b in args.speed_batches.split(",")]
            results[phase] = speed(device, args.speed_steps, sizes, warmup=2,
                                   seed=args.seed)
        elif phase == "checkpoint":
            results[phase] = checkpoint(device, data, save_every=args.save_every,
                                        crash_at=args.crash_at, **common)
        results.setdefault("seconds", {})[phase] = time.perf_counter() - start
    if rank0:
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
