"""What the checks of lesson 07's questions share: seeded inputs, the helpers that
compare an answer with a reference and with a typical mistake, and a watcher of the
integer arithmetic an answer runs (does a product overflow its dtype, does a float
tensor appear).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from ...asserts import _short
from .._shared import (NOT_JUDGED, _agrees, _basic,  # noqa: F401 - for the checks
                       _copies, _not_judged, _num, _parts, comparisons, generator,
                       seeded)

_matches, _plain_mismatch = comparisons(rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------ comparing answers
def _tensor(got, what: str, shape: tuple | None = None) -> torch.Tensor:
    """``got`` checked to be a torch tensor (of ``shape`` when given): a basic failure
    otherwise."""
    if got is None:
        raise _basic(f"{what} is None: did you forget to `return` it?", problem="none")
    if not isinstance(got, torch.Tensor):
        raise _basic(f"{what} should be a torch.Tensor, but it is a "
                     f"{type(got).__name__}: {_short(got)}", problem="type")
    if shape is not None and tuple(got.shape) != tuple(shape):
        raise _basic(f"{what} has shape {tuple(got.shape)}, expected {tuple(shape)}.",
                     problem="shape")
    return got


# ------------------------------------------------------------ watching the arithmetic
SMALL_INTS = (torch.int8, torch.uint8, torch.int16, torch.int32)
# The ATen ops whose integer result can wrap around: recomputed in int64 to see if it
# did.
_ARITHMETIC = frozenset({"add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "neg",
                         "mm", "bmm", "matmul", "addmm", "mv", "dot", "sum", "cumsum",
                         "einsum", "__lshift__", "bitwise_left_shift", "linear"})


MATMULS = frozenset({"mm", "matmul", "addmm", "linear", "bmm", "einsum", "dot", "mv"})


@dataclass
class Watched:
    """What a watched answer computed: the integer ops whose result wrapped around, and
    the ops that returned a floating-point tensor."""

    min_float: int
    overflows: list[str] = field(default_factory=list)  # "int16 mm", "int32 mul", ...
    float_ops: list[tuple[str, str, int]] = field(default_factory=list)  # (op, text, n)

    @property
    def floats(self) -> list[str]:
        """The float results of at least ``min_float`` entries, as "mul -> float32
        (4, 16)"."""
        return [text for _, text, n in self.float_ops if n >= self.min_float]

    @property
    def float_matmuls(self) -> list[str]:
        """The matrix products computed in floating point, whatever their size."""
        return [text for op, text, _ in self.float_ops if op in MATMULS]


def _wide(a):
    """An int64 copy of a small-integer tensor (a copy of any other tensor, so that an
    in-place op recomputed on it changes nothing of the answer's)."""
    if not isinstance(a, torch.Tensor):
        return a
    return a.to(torch.int64) if a.dtype in SMALL_INTS else a.clone()


@contextlib.contextmanager
def watching(min_float: int):
    """Run the block under a dispatch mode that records, in the yielded ``Watched``,
    every integer op whose result differs from the same op in int64 (it overflowed) and
    every op that returns a floating tensor (``floats``: those of ``min_float``
    entries or more)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = Watched(min_float)

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            op = func.overloadpacket.__name__
            exact = None
            if op in _ARITHMETIC and any(isinstance(a, torch.Tensor)
                                         and a.dtype in SMALL_INTS for a in args):
                try:
                    exact = func(*[_wide(a) for a in args], **kwargs)
                except Exception:  # an op without an int64 kernel: not judged
                    exact = None
            out = func(*args, **kwargs)
            if (isinstance(out, torch.Tensor) and isinstance(exact, torch.Tensor)
                    and out.dtype in SMALL_INTS and out.shape == exact.shape
                    and not torch.equal(out.to(torch.int64), exact.to(torch.int64))):
                seen.overflows.append(f"{str(out.dtype).replace('torch.', '')} {op}")
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                text = (f"{op} -> {str(out.dtype).replace('torch.', '')} "
                        f"{tuple(out.shape)}")
                seen.float_ops.append((op, text, out.numel()))
            return out

    with Watch():
        yield seen
