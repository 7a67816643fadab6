"""What the check modules of several lessons share: the "not judged yet" answer of a mistake
case whose simpler control input already fails, a quiet way to ask whether a check passes, a
basic failure, numbers for messages, and seeded randomness that leaves the global RNG alone."""
from __future__ import annotations

from ..asserts import CheckFailure

NOT_JUDGED = ("Not judged yet: this case checks one detail on top of a simpler input, "
              "and your answer is not right on that simpler input yet (the core cases "
              "show how). Fix that first.")


def _not_judged() -> CheckFailure:
    """The basic failure of a mistake case that cannot judge yet (its hint is not shown)."""
    return CheckFailure(NOT_JUDGED, basic=True)


def _agrees(check) -> bool:
    """Does ``check()`` pass? A basic failure (None, wrong type or shape) propagates."""
    try:
        check()
    except CheckFailure as failure:
        if failure.basic:
            raise
        return False
    return True


def _basic(message: str, problem: str = "") -> CheckFailure:
    """A basic failure (None, a wrong type): the case's own hint is not shown."""
    return CheckFailure(message, basic=True, problem=problem)


def _num(x: float) -> str:
    """A number for a message: short, and never a NumPy repr."""
    return f"{float(x):.6g}"


def generator(seed: int):
    """A seeded CPU ``torch.Generator``: the checks never touch the global RNG."""
    import torch

    return torch.Generator().manual_seed(seed)


def seeded(seed: int, build):
    """``build()`` under ``torch.manual_seed(seed)`` (modules draw their initial weights
    from the global RNG); the global RNG is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
