"""Library operations a "from scratch" question asks the learner to write themselves.

While learner code runs under ``forbidding(ops)``, a PyTorch dispatch mode watches every ATen
operator; calling a forbidden one (``F.conv2d``, ``nn.Conv2d``, ``torch.conv2d`` all reach
``aten.convolution``) raises ``ForbiddenCall``, which the runner turns into "not answered from
scratch". The course's one policy: a question whose prompt says "from scratch" declares what it
forbids (``question(..., forbid=[...])``), and the check enforces it, so the prompt never states
a rule that the check does not keep.
"""
from __future__ import annotations

import contextlib
import sys


class ForbiddenCall(BaseException):
    """Raised inside learner code that called a library op its question forbids (BaseException, so a
    learner's ``except Exception`` does not hide it)."""

    def __init__(self, op: str, label: str):
        super().__init__(op)
        self.op = op
        self.label = label


# How each forbidden ATen op is named to the learner.
OP_NAMES = {
    "convolution": "a library convolution (F.conv2d, nn.Conv2d or torch.conv2d)",
    "_convolution": "a library convolution (F.conv2d, nn.Conv2d or torch.conv2d)",
    "conv2d": "a library convolution (F.conv2d, nn.Conv2d or torch.conv2d)",
    "max_pool2d": "a library max pooling (F.max_pool2d or nn.MaxPool2d)",
    "max_pool2d_with_indices": "a library max pooling (F.max_pool2d or nn.MaxPool2d)",
    "avg_pool2d": "a library average pooling (F.avg_pool2d or nn.AvgPool2d)",
}


def describe(op: str) -> str:
    return OP_NAMES.get(op, f"torch's {op}")


_WARM = []


def warm_up() -> None:
    """Enter a dispatch mode once, outside any time limit: the first use imports a good part of
    torch (seconds on a busy machine), which must not count against a learner's case."""
    if _WARM:
        return
    _WARM.append(True)
    try:
        import torch

        with forbidding((), "warm-up"):
            torch.zeros(1) + 1
    except Exception:  # pragma: no cover - never let the warm-up fail a check
        pass


_OPTIMIZERS_WARM: list[bool] = []


def warm_up_optimizers() -> None:
    """Step one torch optimizer once, outside any time limit, when torch is loaded.

    The first optimizer of a process imports ``torch._dynamo`` and ``sympy`` (half a second
    normally, a minute on a busy machine). A case's time limit that interrupts that import
    leaves them half-imported, and every later case of the session would then fail with an
    AttributeError that has nothing to do with the learner's answer.
    """
    if _OPTIMIZERS_WARM or "torch" not in sys.modules:
        return
    _OPTIMIZERS_WARM.append(True)
    try:
        import torch

        p = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([p], lr=0.1)
        p.sum().backward()
        optimizer.step()
    except Exception:  # pragma: no cover - never let the warm-up fail a check
        pass


@contextlib.contextmanager
def forbidding(ops, label: str):
    """Run the block with the ATen ops named in ``ops`` forbidden (a no-op without torch)."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:  # pragma: no cover - torch is a dependency of the course
        yield
        return
    names = frozenset(ops)

    class Forbid(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            op = func.overloadpacket.__name__
            if op in names:
                raise ForbiddenCall(op, label)
            return func(*args, **(kwargs or {}))

    with Forbid():
        yield
