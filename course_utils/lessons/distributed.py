"""What lesson 09 teaches: training on many devices, from a step's memory to a ring.

- ``StepMemory`` and ``step_memory``: the bytes of one training step on one worker
  (weights, gradients, Adam's moments, activations) for ZeRO stages 0-3
  (Rajbhandari et al. 2020); ``saved_tensor_bytes`` measures the activations;
- ``shard_indices``: the examples ``DistributedSampler`` gives a rank, with and without
  padding; ``global_batches`` and ``train_on_batches``: the single-process training on
  the concatenated batches that data parallelism must reproduce;
- ``chunk_bounds``, ``ring_schedule`` and ``ring_all_reduce``: the ring all-reduce
  (reduce-scatter, then all-gather) with point-to-point ``send``/``recv`` (Patarasuk &
  Yuan 2009); ``ring_all_reduce_bytes`` its traffic, ``fit_latency_bandwidth`` the
  latency and bandwidth of measured times;
- ``pipeline_bubble``: the idle fraction of a GPipe pipeline (Huang et al. 2019).

Symbols as in the lesson: P the world size (processes), r a rank, B the batch of one
worker, N_params the parameters, m the bytes of the message (tensor) reduced.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

GB = 1e9                  # as the ZeRO paper counts (GPU makers too)


# ------------------------------------------------------------ memory of a training step
@dataclass(frozen=True)
class StepMemory:
    """Bytes one worker holds during a training step, by what they are."""

    weights: int
    gradients: int
    optimizer: int          # Adam's two moments (and fp32 master weights, if any)
    activations: int        # what autograd keeps for the backward pass

    @property
    def model_states(self) -> int:
        """Weights, gradients and optimizer states: what ZeRO shards."""
        return self.weights + self.gradients + self.optimizer

    @property
    def total(self) -> int:
        return self.model_states + self.activations

    def as_dict(self) -> dict:
        return {"weights": self.weights, "gradients": self.gradients,
                "optimizer": self.optimizer, "activations": self.activations,
                "total": self.total}

    def __repr__(self) -> str:
        parts = ", ".join(f"{k} {v / GB:.3g}" for k, v in self.as_dict().items())
        return f"StepMemory(GB: {parts})"


def step_memory(num_params: int, activation_bytes: int = 0, zero_stage: int = 0,
                world_size: int = 1, mixed_precision: bool = False) -> StepMemory:
    """The memory of one training step with Adam on one of ``world_size`` workers.

    Bytes per parameter: float32 training keeps weights (4), gradients (4) and Adam's
    two moments (4 + 4); mixed precision keeps 16-bit weights (2) and gradients (2), and
    float32 master weights and moments (4 + 4 + 4): 16 bytes per parameter either way,
    as in Rajbhandari et al. (2020, section 3.1, K = 12). ZeRO stage 1 shards the
    optimizer states over the workers, stage 2 the gradients too, stage 3 the weights
    too; a shard holds ceil(N_params / P) parameters. Buffers, fragmentation, the
    temporarily gathered parameters of stage 3, and DDP's gradient buckets (a second
    copy of the gradients unless ``gradient_as_bucket_view=True``) are left out.

    Args:
        num_params: N_params, the model's parameters.
        activation_bytes: the activations of this worker's batch (not sharded by ZeRO).
        zero_stage: 0 (plain data parallelism, DDP) to 3 (FSDP's full sharding).
        world_size: P, the data-parallel workers.
        mixed_precision: 16-bit weights and gradients with float32 master weights.
    Returns:
        A ``StepMemory`` in bytes.
    Example:
        >>> step_memory(7_500_000_000, mixed_precision=True).model_states / 1e9
        120.0
    """
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage}")
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    weight, grad, states = (2, 2, 12) if mixed_precision else (4, 4, 8)
    shard = math.ceil(num_params / world_size)     # parameters per worker when sharded
    return StepMemory(
        weights=weight * (shard if zero_stage >= 3 else num_params),
        gradients=grad * (shard if zero_stage >= 2 else num_params),
        optimizer=states * (shard if zero_stage >= 1 else num_params),
        activations=int(activation_bytes))


def saved_tensor_bytes(fn, exclude=()) -> tuple[object, int]:
    """Run ``fn()`` and measure what autograd saves for the backward pass.

    Counts each storage once (a tensor saved by two operations, or a view, is one
    allocation), and leaves out the storages of ``exclude`` (the parameters: a weight
    saved for the backward pass is not an activation).

    Returns:
        (what fn returned, bytes of the saved storages).
    Example:
        >>> model = torch.nn.Linear(5, 3)
        >>> _, n = saved_tensor_bytes(lambda: model(torch.randn(4, 5)).sum(),
        ...                           exclude=model.parameters())
        >>> n          # the (4, 5) input in float32
        80
    """
    skip = {p.untyped_storage().data_ptr() for p in exclude}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


# ------------------------------------------------------------------ data parallelism
def shard_indices(num_samples: int, world_size: int, rank: int, shuffle: bool = True,
                  seed: int = 0, epoch: int = 0, drop_last: bool = False) -> list[int]:
    """The example indices ``DistributedSampler`` gives ``rank``, in its order.

    Every rank draws the same permutation (``torch.randperm`` seeded with seed + epoch),
    makes its length a multiple of P, by repeating its first indices (padding) or, with
    ``drop_last``, dropping its tail, and takes every P-th index from position ``rank``.
    Padding gives a few examples twice per epoch; dropping loses up to P - 1.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size - 1}], got {rank}")
    if drop_last and num_samples % world_size:
        per_rank = math.ceil((num_samples - world_size) / world_size)
    else:
        per_rank = math.ceil(num_samples / world_size)
    total = per_rank * world_size
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        indices = torch.randperm(num_samples, generator=g).tolist()
    else:
        indices = list(range(num_samples))
    if total > len(indices):                    # pad: repeat from the start
        indices = (indices * math.ceil(total / len(indices)))[:total]
    return indices[:total][rank:total:world_size]


def global_batches(num_samples: int, world_size: int, batch_size: int, steps: int,
                   accumulation: int = 1, seed: int = 0) -> list[list[int]]:
    """The examples of each optimizer step of data-parallel training, all ranks
    together.

    Rank r reads its shard (``shard_indices``, shuffled, padded) in batches of
    ``batch_size``, a ``DataLoader`` with ``drop_last=True``, and a new epoch (a new
    permutation) starts when its shard runs out. One step takes ``accumulation``
    batches on every rank; the global batch of the step is their union, of
    P * accumulation * batch_size examples: what a single process must train on to
    reproduce the step.
    """
    per_epoch = len(shard_indices(num_samples, world_size, 0, seed=seed)) // batch_size
    if per_epoch == 0:
        raise ValueError(f"a shard of {num_samples} examples over {world_size} ranks "
                         f"holds no batch of {batch_size}")
    needed = steps * accumulation
    batches: list[list[int]] = [[] for _ in range(needed)]
    for epoch in range(math.ceil(needed / per_epoch)):
        for rank in range(world_size):
            shard = shard_indices(num_samples, world_size, rank, seed=seed, epoch=epoch)
            for i in range(per_epoch):
                k = epoch * per_epoch + i
                if k < needed:
                    batches[k] += shard[i * batch_size:(i + 1) * batch_size]
    return [sum(batches[s * accumulation:(s + 1) * accumulation], [])
            for s in range(steps)]


def train_on_batches(model, X, y, batches, lr: float, momentum: float = 0.9):
    """Single-process SGD with momentum, one step per batch of indices; mean
    cross-entropy. Returns the losses. The oracle of data-parallel training."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    losses = []
    for idx in batches:
        idx = torch.as_tensor(idx)
        loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def worker_gradients(model, loss_fn, shards) -> list[list[torch.Tensor]]:
    """Each simulated worker's gradient: ``loss_fn(model, shard).backward()`` per shard,
    with the same weights; a list (one per shard) of gradients (one per parameter)."""
    grads = []
    for shard in shards:
        model.zero_grad()
        loss_fn(model, shard).backward()
        grads.append([p.grad.detach().clone() for p in model.parameters()])
    model.zero_grad()
    return grads


# -------------------------------------------------------------------- ring all-reduce
def chunk_bounds(numel: int, world_size: int) -> list[tuple[int, int]]:
    """(start, stop) of the P chunks a flat tensor of ``numel`` is cut into.

    As ``torch.tensor_split``: the first numel % P chunks hold one element more, so a
    size that P does not divide is fine (a chunk may be empty when numel < P).
    """
    base, extra = divmod(numel, world_size)
    bounds, start = [], 0
    for c in range(world_size):
        stop = start + base + (c < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


@dataclass(frozen=True)
class RingStep:
    """One step of the ring: every rank r sends chunk ``send[r]`` to rank r + 1."""

    phase: str               # "reduce-scatter" or "all-gather"
    step: int                # 0 .. P - 2 within the phase
    send: tuple[int, ...]    # send[r]: the chunk rank r sends to (r + 1) % P

    def recv(self, rank: int) -> int:
        """The chunk ``rank`` receives, from rank - 1: the one that rank sends."""
        return self.send[(rank - 1) % len(self.send)]


def ring_schedule(world_size: int) -> list[RingStep]:
    """The 2 (P - 1) steps of a ring all-reduce over P ranks.

    Reduce-scatter, step s: rank r sends chunk (r - s) mod P, and adds the chunk it
    receives to its own; after P - 1 steps rank r holds chunk (r + 1) mod P summed over
    all ranks. All-gather, step s: rank r sends chunk (r + 1 - s) mod P, the complete
    chunk it holds or last received, and the receiver keeps it.
    """
    P = world_size
    steps = [RingStep("reduce-scatter", s, tuple((r - s) % P for r in range(P)))
             for s in range(P - 1)]
    steps += [RingStep("all-gather", s, tuple((r + 1 - s) % P for r in range(P)))
              for s in range(P - 1)]
    return steps


def _exchange(out, into, right: int, left: int, rank: int) -> None:
    # Blocking send and recv around a ring deadlock if every rank sends first and a send
    # waits for its receiver; even ranks send first and odd ranks receive first, so the
    # first odd rank unblocks the chain (for any P >= 2, odd or even).
    if out.numel() == 0 and into.numel() == 0:
        return
    if rank % 2 == 0:
        if out.numel():
            dist.send(out, right)
        if into.numel():
            dist.recv(into, left)
    else:
        if into.numel():
            dist.recv(into, left)
        if out.numel():
            dist.send(out, right)


def ring_all_reduce(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place, like ``dist.all_reduce`` (SUM).

    The flat tensor is cut into P chunks (``chunk_bounds``); ``ring_schedule`` says
    which chunk each rank sends to its right neighbour at each of the 2 (P - 1) steps.
    Each rank sends 2 (P - 1) chunks of about m / P bytes: 2 (P - 1) / P times the
    message, whatever P (Patarasuk & Yuan 2009).

    Args:
        tensor: the same shape and dtype on every rank.
        group: a process group (default: the whole world).
    Returns:
        ``tensor``, now holding the sum.
    """
    P, rank = dist.get_world_size(group), dist.get_rank(group)
    if P == 1:
        return tensor
    # a flat view of the tensor's memory, or a flat copy if it is not contiguous
    work = tensor.detach().view(-1) if tensor.is_contiguous() else tensor.flatten()
    chunks = [work[a:b] for a, b in chunk_bounds(work.numel(), P)]
    right, left = (rank + 1) % P, (rank - 1) % P
    if group is not None:                                  # send/recv take global ranks
        right, left = (dist.get_global_rank(group, r) for r in (right, left))
    buffer = torch.empty_like(chunks[0])                    # the largest chunk
    for step in ring_schedule(P):
        mine, theirs = chunks[step.send[rank]], chunks[step.recv(rank)]
        incoming = buffer[:theirs.numel()]
        _exchange(mine, incoming, right, left, rank)
        if step.phase == "reduce-scatter":
            theirs.add_(incoming)
        else:
            theirs.copy_(incoming)
    if not tensor.is_contiguous():
        tensor.copy_(work.view(tensor.shape))
    return tensor


def ring_all_reduce_bytes(message_bytes: float, world_size: int) -> float:
    """Bytes each rank sends (and receives) in a ring all-reduce: 2 (P - 1) / P * m."""
    return 2 * (world_size - 1) / world_size * message_bytes


def fit_latency_bandwidth(message_bytes, seconds,
                          world_size: int) -> tuple[float, float]:
    """Fit t_ring(m) = 2 (P - 1) t_lat + 2 (P - 1) / P * m / BW to measured times, by
    least squares on the relative errors (small and large messages count alike); returns
    (t_lat in seconds per step, BW in bytes per second)."""
    m = np.asarray(message_bytes, dtype=float)
    t = np.asarray(seconds, dtype=float)
    A = np.stack([np.full_like(m, 2 * (world_size - 1)),
                  ring_all_reduce_bytes(m, world_size)], axis=1)     # (n, 2)
    (latency, inverse_bandwidth), *_ = np.linalg.lstsq(A / t[:, None], np.ones_like(t),
                                                      rcond=None)
    return float(latency), float(1 / inverse_bandwidth)


# ------------------------------------------------------------------ model parallelism
def pipeline_bubble(stages: int, micro_batches: int) -> float:
    """The fraction of a GPipe step that each stage idles, for P_pp stages and n_mb
    micro-batches: (P_pp - 1) / (n_mb + P_pp - 1) (Huang et al. 2019)."""
    return (stages - 1) / (micro_batches + stages - 1)
