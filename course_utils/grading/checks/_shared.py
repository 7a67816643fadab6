"""What the check modules of several lessons share: the "not judged yet" answer of a mistake
case whose simpler control input already fails, a quiet way to ask whether a check passes, a
basic failure, numbers for messages, comparisons with a lesson's tolerances, the parts of a
returned tuple, copies of the arguments, and seeded randomness that leaves the global RNG
alone."""
from __future__ import annotations

import numpy as np

from ..asserts import CheckFailure, _short, expect_close, to_numpy, tolerance_for

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


def comparisons(rtol: float, atol: float):
    """``(_matches, _plain_mismatch)`` with a lesson's default tolerances:

    - ``_matches(got, expected, rtol, atol)``: does ``got`` equal ``expected`` within its
      dtype's tolerance? (never raises)
    - ``_plain_mismatch(got, expected, what, rtol, atol)``: fail without the case's hint
      (``got`` is wrong, but not by the case's mistake); passes if ``got`` is right.
    """
    default_rtol, default_atol = rtol, atol

    def _matches(got, expected, rtol: float = default_rtol,
                 atol: float = default_atol) -> bool:
        try:
            expect_close(got, expected, rtol=rtol, atol=atol)
        except Exception:
            return False
        return True

    def _plain_mismatch(got, expected, what: str, rtol: float = default_rtol,
                        atol: float = default_atol) -> None:
        try:
            expect_close(got, expected, rtol=rtol, atol=atol, what=what)
        except CheckFailure as failure:
            raise CheckFailure(str(failure), basic=True, call=failure.call,
                               problem=failure.problem) from None

    return _matches, _plain_mismatch


def _same_values(got, expected, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Does ``got`` equal ``expected`` in shape and values (dtype-aware tolerances)? Unlike
    the ``_matches`` of ``comparisons``, it raises on an answer that is not an array of
    numbers (lessons 00 and 01 use it as their ``_matches``)."""
    g = to_numpy(got).astype(np.float64)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    rtol, atol = tolerance_for(got, rtol, atol, e)
    return g.shape == e.shape and bool(np.allclose(g, e, rtol=rtol, atol=atol))


def _parts(result, names: tuple[str, ...], fn_name: str) -> tuple:
    """``result`` as a tuple of ``len(names)`` values, or a basic failure saying why."""
    if result is None:
        raise _basic(f"{fn_name} returned None: did you forget to `return` "
                     f"({', '.join(names)})?", problem="none")
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise _basic(f"{fn_name} should return the tuple ({', '.join(names)}), but it "
                     f"returned {_short(result)}.", problem="type")
    return tuple(result)


def _copies(*args) -> list:
    """Fresh copies of the array and tensor arguments (and of lists and tuples of them), so
    that a change in place is the business of the property case that looks for it."""
    import torch

    def copy(a):
        if isinstance(a, np.ndarray):
            return a.copy()
        if isinstance(a, torch.Tensor):
            return a.detach().clone()
        if isinstance(a, list):
            return [copy(v) for v in a]
        if isinstance(a, tuple):
            return tuple(copy(v) for v in a)
        return a

    return [copy(a) for a in args]


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
