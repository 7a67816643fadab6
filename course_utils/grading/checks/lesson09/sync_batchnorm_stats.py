"""Checks of 09.sync_batchnorm_stats: the statistics of a BatchNorm over the global
batch, combined from each worker's own (what SyncBatchNorm all-reduces), and the
running statistics after the step.

The oracle is PyTorch's BatchNorm on the concatenation of the workers' batches, in
float64: its batch mean and (biased) variance, and its running statistics after one
forward in train mode.
"""
from __future__ import annotations

import torch
from torch import nn

from ...asserts import CheckFailure, _short, call, expect_close
from ...registry import question
from ._common import _basic, generator

q = question("09.sync_batchnorm_stats", "BatchNorm's statistics over every worker",
             answers=["sync_batchnorm_stats"], timeout=5)

NAMES = ("mean", "var", "running_mean", "running_var")


def worker_batches(seed, sizes, channels, spread=2.0, image=None):
    """One float64 batch per worker, each with its own per-channel offset and scale
    (the shards are not alike), of shape (n, C) or (n, C, H, W)."""
    g = generator(seed)
    out = []
    for n in sizes:
        shift = spread * torch.randn(channels, generator=g, dtype=torch.float64)
        scale = 0.5 + torch.rand(channels, generator=g, dtype=torch.float64)
        shape = (n, channels) + (image or ())
        view = (1, channels) + (1,) * len(image or ())
        out.append(shift.view(view) + scale.view(view) * torch.randn(
            *shape, generator=g, dtype=torch.float64))
    return out


def local_stats(xs):
    """(counts, means (P, C), biased variances (P, C)) of each worker's batch."""
    dims = [d for d in range(xs[0].ndim) if d != 1]
    counts = [int(x.numel() // x.shape[1]) for x in xs]
    means = torch.stack([x.mean(dim=dims) for x in xs])
    variances = torch.stack([x.var(dim=dims, unbiased=False) for x in xs])
    return counts, means, variances


def reference(xs, running_mean, running_var, momentum):
    """BatchNorm on the concatenated batch: (mean, var, new running mean, var)."""
    x = torch.cat(xs)
    C = x.shape[1]
    bn = (nn.BatchNorm1d if x.ndim == 2 else nn.BatchNorm2d)(
        C, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        bn.running_mean.copy_(running_mean)
        bn.running_var.copy_(running_var)
        bn.train()(x)
    dims = [d for d in range(x.ndim) if d != 1]
    return (x.mean(dim=dims), x.var(dim=dims, unbiased=False),
            bn.running_mean.clone(), bn.running_var.clone())


def mistaken(counts, means, variances, running_mean, running_var, momentum, how):
    """What a typical mistake returns."""
    w = torch.tensor(counts, dtype=torch.float64)[:, None]
    n = w.sum()
    if how == "mean of means":
        mean = means.mean(0)
        var = (w * (variances + (means - mean) ** 2)).sum(0) / n
    else:
        mean = (w * means).sum(0) / n
        var = (w * (variances + (means - mean) ** 2)).sum(0) / n
    if how == "mean of variances":
        var = (w * variances).sum(0) / n
    unbiased = var * n / (n - 1)
    if how == "unbiased per worker":  # each worker's variance corrected by n_r - 1
        inside = variances * w / (w - 1).clamp(min=1)
        unbiased = (w * (inside + (means - mean) ** 2)).sum(0) / n
    if how == "n - P":
        unbiased = var * n / (n - len(counts))
    if how == "unbiased to normalise":
        var = unbiased
    run_var = var if how == "biased running var" else unbiased
    keep = momentum if how == "momentum reversed" else 1 - momentum
    if how == "no running update":
        return mean, var, running_mean.clone(), running_var.clone()
    return (mean, var, keep * running_mean + (1 - keep) * mean,
            keep * running_var + (1 - keep) * run_var)


def inputs(name):
    seed, sizes, channels, momentum, image = CASES[name]
    xs = worker_batches(seed, sizes, channels, image=image)
    g = generator(seed + 50)
    running_mean = torch.randn(channels, generator=g, dtype=torch.float64)
    running_var = 0.5 + torch.rand(channels, generator=g, dtype=torch.float64)
    return xs, running_mean, running_var, momentum


CASES = {  # name: (seed, rows per worker, channels, momentum, (H, W) or None)
    "2 workers of 16 rows, 4 channels": (0, [16, 16], 4, 0.1, None),
    "3 workers of 5, 12 and 2 rows, shards far apart": (1, [5, 12, 2], 6, 0.1, None),
    "4 workers, one of a single row, momentum 0.3": (2, [8, 1, 3, 10], 3, 0.3, None),
    "2 workers of images (4 and 2, 5 channels, 3 x 3)": (3, [4, 2], 5, 0.1, (3, 3)),
}


def _what(counts, C, momentum) -> str:
    return (f"sync_batchnorm_stats(counts={counts}, means ({len(counts)}, {C}), "
            f"variances ({len(counts)}, {C}), running_mean ({C},), running_var ({C},), "
            f"momentum={momentum:g})")


def _answer(fn, name):
    xs, running_mean, running_var, momentum = inputs(name)
    counts, means, variances = local_stats(xs)
    what = _what(counts, means.shape[1], momentum)
    got = call(fn, list(counts), means.clone(), variances.clone(), running_mean.clone(),
               running_var.clone(), momentum, name="sync_batchnorm_stats")
    if got is None:
        raise _basic(f"{what} returned None: return (mean, var, running_mean, "
                     "running_var).", problem="none")
    if not isinstance(got, (tuple, list)) or len(got) != 4:
        raise _basic(f"{what} returned {_short(got)}; expected 4 tensors (mean, var, "
                     "running_mean, running_var).", problem="type")
    ref = reference(xs, running_mean, running_var, momentum)
    args = (counts, means, variances, running_mean, running_var, momentum)
    return what, got, ref, args


def _matches(got, ref) -> bool:
    try:
        expect_close(got, ref, rtol=1e-9, atol=1e-12)
    except Exception:
        return False
    return True


MESSAGES = {
    "mean of means": "the mean is the plain average of the workers' means; a worker "
                     "with more values weighs more in the mean of the global batch.",
    "mean of variances": "the variance is the average of the workers' variances, "
                         "which misses how far the workers' means are from each other "
                         "(and from the global mean).",
    "unbiased to normalise": "the variance returned divides by n - 1; BatchNorm "
                             "normalises with the biased variance (dividing by n).",
    "biased running var": "the running variance is updated with the biased variance; "
                          "BatchNorm's running variance uses the unbiased one (n - 1).",
    "momentum reversed": "the momentum weighs the old running statistics, not the new "
                         "batch: in PyTorch, running = (1 - momentum) running + "
                         "momentum batch.",
    "unbiased per worker": "the running variance corrects each worker's variance by its "
                           "own count (n_r - 1); BatchNorm on the global batch corrects "
                           "the global variance once, by the global count (n - 1).",
    "n - P": "the running variance divides by n - P; the global batch is one sample of "
             "n values, whose unbiased variance divides by n - 1.",
    "no running update": "the running statistics come back unchanged; a BatchNorm in "
                         "train mode updates them with the global batch's statistics.",
}


def _judge(fn, name, hows=None) -> None:
    what, got, ref, args = _answer(fn, name)
    wrong_parts = [i for i in range(4) if not _matches(got[i], ref[i])]
    if not wrong_parts:
        return
    for how in hows or MESSAGES:
        mistake = mistaken(*args, how)
        if all(_matches(got[i], mistake[i]) for i in range(4)):
            raise CheckFailure(f"{what}: {MESSAGES[how]}")
    i = wrong_parts[0]
    try:
        expect_close(got[i], ref[i], rtol=1e-9, atol=1e-12, what=f"{NAMES[i]} ({what})")
    except CheckFailure as failure:
        raise CheckFailure(str(failure), basic=hows is not None) from None


_HINT = ("The global batch's mean weighs each worker's mean by its number of values. "
         "Its variance is the mean of the squared distances to the global mean, and "
         "each worker's values are spread around its own mean, which is itself away "
         "from the global one. The running statistics update as BatchNorm's do.")

for _name in CASES:
    def _core(name):
        @q.case(name, kind="core", hint=_HINT)
        def _(sync_batchnorm_stats):
            _judge(sync_batchnorm_stats, name)

    _core(_name)


def _mistake_case(name, how, hint, case):
    @q.case(name, hint=hint)
    def _(sync_batchnorm_stats):
        _judge(sync_batchnorm_stats, case, hows=[how])


_mistake_case("each worker's mean weighs by its number of values", "mean of means",
              "With shards of unequal sizes, the average of the workers' means is not "
              "the mean of all their values together: weigh each by its count.",
              "3 workers of 5, 12 and 2 rows, shards far apart")
_mistake_case("the variance counts the spread between the workers' means",
              "mean of variances",
              "The variance of the union is the average within each worker plus the "
              "spread of the workers' means around the global mean (each weighed by "
              "its count): when the shards differ, the second part is large.",
              "3 workers of 5, 12 and 2 rows, shards far apart")
_mistake_case("BatchNorm normalises with the biased variance",
              "unbiased to normalise",
              "In train mode, BatchNorm divides by the standard deviation of the batch "
              "computed with 1/n; only its running variance uses 1/(n - 1).",
              "4 workers, one of a single row, momentum 0.3")
_mistake_case("the running variance is updated with the unbiased variance",
              "biased running var",
              "BatchNorm's running variance estimates the variance of the population: "
              "it is updated with the batch's unbiased variance, n / (n - 1) times the "
              "biased one.", "4 workers, one of a single row, momentum 0.3")
_mistake_case("PyTorch's momentum weighs the new batch", "momentum reversed",
              "In PyTorch a BatchNorm's momentum (0.1 by default) is the weight of the "
              "new batch's statistics in the running ones; in Keras it is the other "
              "way round (0.99).", "4 workers, one of a single row, momentum 0.3")


_mistake_case("the running variance's correction uses the global batch's count",
              "unbiased per worker",
              "The running variance is updated with the unbiased variance of the "
              "global batch, as one BatchNorm that saw all its values computes it: "
              "the correction counts the values of every worker together.",
              "4 workers, one of a single row, momentum 0.3")


@q.case("float64 tensors of shape (C,); the inputs unchanged", kind="property",
        hint="Return four float64 tensors, one value per channel; compute on copies "
             "of the inputs.")
def _(sync_batchnorm_stats):
    what, got, _, _ = _answer(sync_batchnorm_stats,
                              "2 workers of 16 rows, 4 channels")
    for name, g in zip(NAMES, got):
        if not isinstance(g, torch.Tensor) or g.dtype != torch.float64 or \
                tuple(g.shape) != (4,):
            raise CheckFailure(f"{what}: {name} is {_short(g)}; expected a float64 "
                               "tensor of shape (4,).")
