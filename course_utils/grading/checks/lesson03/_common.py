"""What the checks of lesson 03's questions share."""
from __future__ import annotations

import contextlib
import re

import torch
from torch import nn

from ...asserts import CheckFailure, _short, call, expect_close
from ...runner import clean_text, learner_line
from .._shared import NOT_JUDGED, _agrees, _not_judged  # noqa: F401 - used by the checks


@contextlib.contextmanager
def _crash_is_the_mistake(what: str):
    """In a mistake case whose control passed, a crash on the one input that differs
    (the call ``what``) is the case's mistake: a failure that shows the case's hint,
    not a basic one."""
    try:
        yield
    except CheckFailure:
        raise
    except Exception as exc:  # the learner's code raised on the feature input
        where = learner_line(exc)
        raise CheckFailure(f"It raised {type(exc).__name__}: "
                           f"{clean_text(str(exc), 400)}"
                           + (f"\nat {where}" if where else ""), call=what) from None


def _expect_tensor_like(got, expected, what: str, rtol: float, atol: float) -> None:
    """expect_close, a wrong shape reported as the case's own mistake (the control
    passed)."""
    if isinstance(got, torch.Tensor) and tuple(got.shape) != tuple(expected.shape):
        raise CheckFailure(f"{what} has shape {tuple(got.shape)}, expected "
                           f"{tuple(expected.shape)}.")
    expect_close(got, expected, rtol=rtol, atol=atol, what=what)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------ shared: torch models
_WEIGHTED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def _describe_layer(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        k = "x".join(str(v) for v in m.kernel_size)
        return f"Conv2d({m.in_channels}->{m.out_channels}, {k})"
    if isinstance(m, nn.BatchNorm2d):
        return f"BatchNorm2d({m.num_features})"
    return f"Linear({m.in_features}->{m.out_features})"


def _copy_weights(ref: nn.Module, model: nn.Module) -> None:
    """Give ``model`` the weights of ``ref``, layer by layer in order (Conv2d,
    BatchNorm2d, Linear).

    A conv bias that the spec does not have is set to 0 (a mistake case of its own
    reports it). A model whose layers with weights differ from the spec's cannot compute
    the same function: a basic failure that lists both.
    """
    ours = [m for m in ref.modules() if isinstance(m, _WEIGHTED)]
    theirs = [m for m in model.modules() if isinstance(m, _WEIGHTED)]
    fits = len(ours) == len(theirs) and all(
        type(a) is type(b) and a.weight.shape == b.weight.shape
        for a, b in zip(ours, theirs))
    if not fits:
        raise CheckFailure(
            "the spec's weights do not fit your model, so the check cannot compare "
            "what it computes.\nYour layers with weights: "
            f"{[_describe_layer(m) for m in theirs]}\nThe spec's: "
            f"{[_describe_layer(m) for m in ours]}", basic=True)
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.weight.copy_(a.weight)
            if b.bias is not None:
                b.bias.copy_(a.bias if a.bias is not None else torch.zeros_like(b.bias))
            if isinstance(a, nn.BatchNorm2d):
                b.running_mean.copy_(a.running_mean)
                b.running_var.copy_(a.running_var)


def _randomize_norms(model: nn.Module, seed: int) -> nn.Module:
    """BatchNorm scales, shifts and running statistics away from 1 and 0 (as after
    training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.5, 0.5),
                                  (m.running_mean, -0.5, 0.5),
                                  (m.running_var, 0.5, 2.0)):
                    t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g))
    return model


def _forward(model, X, what: str, train: bool = False, seed: int | None = None,
             learner: bool = True):
    """``model(X)`` without gradients, the classic shape errors told in learner terms.

    A forward pre-hook on every Linear layer records what reaches it, so that a flatten
    that took the batch dimension along (``x.flatten()``) or mixed it up
    (``view(-1, N)``) is told apart from a Linear layer sized for the wrong number of
    features.
    """
    B = X.shape[0]
    seen = []

    def record(m, args):
        seen.append((m, tuple(args[0].shape)))

    # nn.LazyLinear is an nn.Linear too
    hooks = [m.register_forward_pre_hook(record) for m in model.modules()
             if isinstance(m, nn.Linear)]
    model.train(train)
    try:
        if seed is not None:
            torch.manual_seed(seed)  # the same dropout mask as the reference's
        with torch.no_grad():
            if learner:
                out = call(model, X, check_mutation=False, name=what.split("(X")[0])
            else:
                out = model(X)
    except RuntimeError as exc:
        problem = _flatten_problem(seen, B) or _view_problem(str(exc), B)
        if problem:  # the same words for every batch size: shown once (basic)
            raised = f"{what}, which raised RuntimeError: {exc}"
            raise CheckFailure(problem, basic=True, call=raised) from None
        raise
    finally:
        for h in hooks:
            h.remove()
    problem = _flatten_problem(seen, B)
    rows_kept = isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == B
    if problem and not rows_kept:
        raise CheckFailure(problem, basic=True,
                           call=f"{what}, which returned {_short(out)}")
    return out


def _view_problem(error: str, B: int) -> str:
    """Why ``x.view(-1, N)`` failed: N is not the number of features of an image."""
    m = re.search(r"shape '\[-1, (\d+)\]' is invalid for input of size (\d+)", error)
    if not m:
        return ""
    n, size = int(m.group(1)), int(m.group(2))
    return (f"view(-1, {n:,}) expects {n:,} features per image, but each image has "
            f"{size // B:,}: size the flatten and the Linear layer for the real "
            "feature maps, and flatten from dimension 1.")


def _flatten_problem(seen, B: int) -> str:
    """What went wrong at the first Linear layer, from the shape of its input ("" if
    nothing did)."""
    if not seen:
        return ""
    m, shape = seen[0]
    if len(shape) == 1:
        return ("The first Linear layer received one long vector for the whole batch: "
                "the flatten flattened the batch dimension too (x.flatten() and "
                "torch.flatten(x) start at dimension 0). Flatten from dimension 1, so "
                f"that each image keeps its own row of {shape[0] // B:,} features.")
    if shape[0] != B:
        return (f"The first Linear layer received {shape[0]} rows for a batch of {B} "
                "images: the flatten mixed the batch up with the features (view(-1, "
                "N) with the wrong N). Flatten from dimension 1, so that each image "
                "keeps its own row.")
    in_features = getattr(m, "in_features", 0)
    if len(shape) == 2 and in_features and shape[1] != in_features:
        return (f"The first Linear layer expects in_features={in_features:,} but each "
                f"image has {shape[1]:,} features after the flatten: size it for the "
                "real feature maps.")
    return ""
