"""Checks of 04.clip_global_norm: Clip gradients by their global norm."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...asserts import CheckFailure, _short, as_number, expect_close
from ...registry import question
from ._common import (_agrees, _basic, _copies, _crash_is_the_mistake, _matches,
                      _not_judged, _plain_mismatch, call_from_scratch)


q = question("04.clip_global_norm", "Clip gradients by their global norm",
             answers=["clip_global_norm"], timeout=5)

# The library's clipping (clip_grad_norm_, get_total_norm, clip_grads_with_norm_) works
# through these multi-tensor kernels; the question asks for the computation itself.
LIBRARY = {name: "nn.utils.clip_grad_norm_ (or get_total_norm)"
           for name in ("_foreach_norm", "_foreach_mul_", "_foreach_mul")}


def _grads(seed: int, shapes, scale: float = 1.0, none_at=()):
    """Seeded float32 gradients of the given shapes (None at the positions
    ``none_at``: parameters that received no gradient)."""
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(*shape, generator=g) * scale for shape in shapes]
    return [None if i in none_at else t for i, t in enumerate(out)]


def reference_clip_global_norm(grads, max_norm):
    """(clipped copies, total norm before clipping), by torch.nn.utils.clip_grad_norm_
    on parameters that hold copies of the gradients (a None gradient is skipped)."""
    params = []
    for grad in grads:
        p = nn.Parameter(torch.zeros(grad.shape if grad is not None else (1,)))
        p.grad = None if grad is None else grad.detach().clone()
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], float(total)


def _what(grads, max_norm) -> str:
    shapes = ", ".join("None" if g is None else str(tuple(g.shape)) for g in grads)
    return f"clip_global_norm([{shapes}], max_norm={max_norm:g})"


def _answer(fn, grads, max_norm, mutation=False):
    """The answer on copies of the gradients (on the gradients themselves when
    ``mutation``)."""
    args = (grads, max_norm) if mutation else tuple(_copies(grads, max_norm))
    got = call_from_scratch(fn, *args, forbid=LIBRARY, name="clip_global_norm")
    if got is None:
        raise _basic("clip_global_norm returned None: did you forget to `return` "
                     "(clipped, total_norm)?", problem="none")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise _basic("clip_global_norm should return the tuple (clipped, total_norm), "
                     f"but it returned {_short(got)}.", problem="type")
    clipped, total = got
    what = _what(grads, max_norm)
    if not isinstance(clipped, (list, tuple)) or len(clipped) != len(grads):
        raise _basic(f"the clipped gradients of {what} are {_short(clipped)}; expected "
                     f"a list of {len(grads)} tensors, one per gradient.",
                     problem="type")
    return list(clipped), as_number(total, f"the total norm of {what}")


def _expect(fn, grads, max_norm) -> None:
    what = _what(grads, max_norm)
    clipped, total = _answer(fn, grads, max_norm)
    ref_clipped, ref_total = reference_clip_global_norm(grads, max_norm)
    expect_close(total, ref_total, rtol=1e-5, what=f"the total norm of {what}")
    for i, (got, expected) in enumerate(zip(clipped, ref_clipped)):
        if expected is None:
            if got is not None:
                raise CheckFailure(f"gradient {i} of {what} is None (a parameter "
                                   f"without a gradient), but it came back as "
                                   f"{_short(got)}; keep it None.")
            continue
        expect_close(got, expected, rtol=1e-5, atol=1e-7,
                     what=f"clipped gradient {i} of {what}")


_HINT = ("Clip as one vector: the norm is taken over ALL the gradients together, and "
         "when it exceeds max_norm every gradient is scaled by the same factor, as "
         "clip_grad_norm_ does; the total norm returned is the one before clipping.")


@q.case("three gradients, total norm about 6, max_norm 1", kind="core", hint=_HINT)
def _(clip_global_norm):
    _expect(clip_global_norm, _grads(0, [(4, 3), (3,), (2, 2, 2)], scale=1.2), 1.0)


@q.case("an LSTM's four parameters, max_norm 0.5", kind="core", hint=_HINT)
def _(clip_global_norm):
    _expect(clip_global_norm, _grads(1, [(16, 3), (16, 4), (16,), (16,)], scale=3.0),
            0.5)


@q.case("a total norm below max_norm: nothing changes", kind="core", hint=_HINT)
def _(clip_global_norm):
    _expect(clip_global_norm, _grads(2, [(5, 2), (7,)], scale=0.4), 5.0)


def _same(clipped, total, expected_clipped, expected_total) -> bool:
    return (expected_total is None or math.isclose(total, expected_total, rel_tol=1e-5)
            ) and all((a is None and b is None) or (b is not None and _matches(a, b))
                      for a, b in zip(clipped, expected_clipped))


def _variant(fn, grads, max_norm, wrong, message) -> None:
    """Right (else a plain mismatch, no hint), or ``wrong(grads, max_norm)`` = the
    mistake's (clipped, total), named by ``message``."""
    what = _what(grads, max_norm)
    clipped, total = _answer(fn, grads, max_norm)
    ref_clipped, ref_total = reference_clip_global_norm(grads, max_norm)
    if _same(clipped, total, ref_clipped, ref_total):
        return
    if _same(clipped, total, *wrong(grads, max_norm)):
        raise CheckFailure(f"{what}: {message}")
    _plain_mismatch(total, ref_total, f"the total norm of {what}", rtol=1e-5)
    for i, (got, expected) in enumerate(zip(clipped, ref_clipped)):
        _plain_mismatch(got, expected, f"clipped gradient {i} of {what}", rtol=1e-5)
    raise _basic(f"{what} is not what clip_grad_norm_ computes.")


def _per_tensor(grads, max_norm):
    out = []
    for g in grads:
        n = float(g.norm())
        out.append(g * min(1.0, max_norm / (n + 1e-6)))
    return out, None


@q.case("one norm over all the gradients, not one per tensor",
        hint="Per-tensor clipping changes the direction of the update: the global "
             "norm is the square root of the sum of the squares of EVERY entry of "
             "every gradient, and one common factor scales them all.")
def _(clip_global_norm):
    grads = _grads(3, [(6, 4), (4,), (3, 3)], scale=1.5)
    _variant(clip_global_norm, grads, 1.0, _per_tensor,
             "each gradient was clipped to max_norm on its own (its own norm, its own "
             "factor); the global norm clips them together.")


@q.case("the norm is the square root of the sum of squares",
        hint="The global norm is the Euclidean norm of all the gradients laid end to "
             "end: not the sum of the tensors' norms, not a mean of squares.")
def _(clip_global_norm):
    grads = _grads(4, [(5, 5), (5,), (2, 3)], scale=1.0)

    def summed_norms(grads, max_norm):
        total = sum(float(g.norm()) for g in grads)
        coef = min(1.0, max_norm / (total + 1e-6))
        return [g * coef for g in grads], total

    _variant(clip_global_norm, grads, 1.0, summed_norms,
             "the total norm is the sum of the tensors' norms.")


@q.case("below max_norm the gradients are left as they are",
        hint="Clipping only ever shrinks: the factor is capped at 1, so a step whose "
             "gradients are already short is not lengthened to max_norm.")
def _(clip_global_norm):
    grads = _grads(5, [(4, 4), (4,)], scale=0.3)

    def normalised(grads, max_norm):
        total = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
        return [g * (max_norm / (total + 1e-6)) for g in grads], total

    _variant(clip_global_norm, grads, 10.0, normalised,
             "the gradients were scaled UP to norm max_norm although their norm was "
             "already below it.")


@q.case("returns the total norm from before the clipping",
        hint="Return the norm the gradients had before clipping (as clip_grad_norm_ "
             "does): it is what you log to see an explosion coming.")
def _(clip_global_norm):
    grads = _grads(6, [(3, 8), (8,)], scale=2.0)

    def after(grads, max_norm):
        clipped, total = reference_clip_global_norm(grads, max_norm)
        return clipped, min(total, max_norm)

    _variant(clip_global_norm, grads, 1.0, after,
             "the total norm returned is the norm AFTER clipping (max_norm).")


@q.case("a None gradient is skipped and stays None",
        hint="A parameter that took no part in the loss has grad None: leave it out "
             "of the norm and return None in its place.")
def _(clip_global_norm):
    control = _grads(7, [(4, 3), (3,)], scale=2.0)
    if not _agrees(lambda: _expect(clip_global_norm, control, 1.0)):
        raise _not_judged()
    grads = _grads(7, [(4, 3), (2, 2), (3,)], scale=2.0, none_at=(1,))
    with _crash_is_the_mistake(_what(grads, 1.0)):
        _expect(clip_global_norm, grads, 1.0)


@q.case("new tensors of the gradients' shapes and dtype; inputs left unchanged",
        kind="property",
        hint="Return new tensors (g * factor), one per gradient, each of its shape and "
             "dtype; never scale the given tensors in place.")
def _(clip_global_norm):
    grads = _grads(8, [(3, 2), (2,)], scale=3.0)
    before = [g.clone() for g in grads]
    clipped, _ = _answer(clip_global_norm, grads, 1.0, mutation=True)
    if not all(torch.equal(a, b) for a, b in zip(before, grads)):
        raise CheckFailure("clip_global_norm changed the gradients it was given in "
                           "place; return new tensors instead.")
    for i, (got, g) in enumerate(zip(clipped, grads)):
        if not isinstance(got, torch.Tensor):
            raise CheckFailure(f"clipped gradient {i} is {_short(got)}; expected a "
                               "tensor.", basic=True)
        if tuple(got.shape) != tuple(g.shape) or got.dtype != g.dtype:
            raise CheckFailure(f"clipped gradient {i} has shape {tuple(got.shape)} "
                               f"and dtype {got.dtype}; the gradient has "
                               f"{tuple(g.shape)} and {g.dtype}.")
