"""Checks of 03.maxpool_forward: Max pooling from scratch."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...asserts import call, expect_close
from ...registry import question
from ._common import (_agrees, _crash_is_the_mistake, _expect_tensor_like, _not_judged,
                      _randn)


# F.max_pool2d and nn.MaxPool2d reach aten.max_pool2d_with_indices (aten.max_pool2d on
# some builds); the 1-d and 3-d poolings would do the same work.
POOL_OPS = ("max_pool2d", "max_pool2d_with_indices", "max_pool1d",
            "max_pool1d_with_indices", "max_pool3d", "max_pool3d_with_indices")
q = question("03.maxpool_forward", "Max pooling from scratch", answers=["maxpool2d"],
             timeout=10, forbid=POOL_OPS)


def _pool_what(X, kernel_size, stride=None) -> str:
    shown = [f"X {tuple(X.shape)}", str(kernel_size)]
    shown += [str(stride)] * (stride is not None)
    return f"maxpool2d({', '.join(shown)})"


def _pool_expect(maxpool2d, X, kernel_size, stride=None, own_shape=False):
    args = (X, kernel_size) if stride is None else (X, kernel_size, stride)
    what = _pool_what(X, kernel_size, stride)
    got = call(maxpool2d, *args)
    expected = F.max_pool2d(X, kernel_size, stride)
    if own_shape:
        _expect_tensor_like(got, expected, what, rtol=0, atol=0)
    else:
        expect_close(got, expected, rtol=0, atol=0, what=what)


def _pool_detail(maxpool2d, control, feature) -> None:
    """A mistake case: right on ``control`` = (X, k[, s]) (else not judged), then on
    ``feature``."""
    if not _agrees(lambda: _pool_expect(maxpool2d, *control)):
        raise _not_judged()
    with _crash_is_the_mistake(_pool_what(*feature)):
        _pool_expect(maxpool2d, *feature, own_shape=True)


@q.case("2x2 windows of a 4x4 image", kind="core",
        hint="Take the maximum of each 2x2 window.")
def _(maxpool2d):
    _pool_expect(maxpool2d, torch.arange(16.0).view(1, 1, 4, 4).flip(-1), 2, 2)


@q.case("a batch of several channels", kind="core",
        hint="Pool every (example, channel) map on its own: the maximum over each "
             "window of height and width.")
def _(maxpool2d):
    _pool_expect(maxpool2d, _randn(2, 3, 6, 8, seed=10), 2, 2)


@q.case("kernel 3, stride 3", kind="core",
        hint="Window (i, j) starts at row i * stride and column j * stride, and spans "
             "the kernel's size in each direction.")
def _(maxpool2d):
    _pool_expect(maxpool2d, _randn(2, 2, 9, 6, seed=11), 3, 3)


@q.case("stride defaults to the kernel size",
        hint="When stride is None, the windows step by the kernel size, as in "
             "F.max_pool2d; a default stride of 1 gives overlapping windows.")
def _(maxpool2d):
    X = _randn(2, 3, 6, 6, seed=1)
    _pool_detail(maxpool2d, (X, 2, 2), (X, 2))


@q.case("works on negative values",
        hint="Start the running maximum at -infinity (or take the max of the window), "
             "not at 0: all-negative windows have a negative maximum.")
def _(maxpool2d):
    X = torch.rand(1, 2, 4, 4, generator=torch.Generator().manual_seed(2)) + 0.5
    _pool_detail(maxpool2d, (X, 2, 2), (-X, 2, 2))


@q.case("pools each channel separately",
        hint="Pool over height and width only; keep the batch and channel dimensions "
             "(do not take the max across channels).")
def _(maxpool2d):
    X = _randn(3, 4, 4, 4, seed=3)
    X[:, 0] += 10  # channel 0 dominates: a max across channels would copy it everywhere
    _pool_detail(maxpool2d, (X[:, :1].clone(), 2, 2), (X, 2, 2))


@q.case("odd sizes are floored",
        hint="A window that would hang over the edge is dropped (the size is floored): "
             "5x5 pooled by 2 is 2x2, as in Question 1's formula, with no padding.")
def _(maxpool2d):
    X = _randn(2, 2, 5, 7, seed=4)
    _pool_detail(maxpool2d, (X[:, :, :4, :6].clone(), 2, 2), (X, 2, 2))


@q.case("overlapping windows (kernel 3, stride 2)",
        hint="Window i starts at row i * stride and spans as many rows as the kernel; "
             "with kernel 3 and stride 2 neighbouring windows share a row.")
def _(maxpool2d):
    X = _randn(2, 3, 9, 9, seed=5)
    _pool_detail(maxpool2d, (X, 3, 3), (X, 3, 2))
