"""What the check modules of several lessons share: the "not judged yet" answer of a mistake
case whose simpler control input already fails, and a quiet way to ask whether a check passes."""
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
