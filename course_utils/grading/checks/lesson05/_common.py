"""What the checks of lesson 05's questions share.

The comparisons with the oracle and with a typical mistake come from ``checks/_shared``
with this lesson's tolerances; the rest ("from scratch" enforced by a torch function
mode) is this lesson's own, so that the checks of one lesson never import another
lesson's package.
"""
from __future__ import annotations

import torch

from ...asserts import CheckFailure, _short, call
from ...forbid import ForbiddenCall
from .._shared import (NOT_JUDGED, _agrees, _basic, _copies,  # noqa: F401 - for the checks
                       _not_judged, _parts, comparisons)

_matches, _plain_mismatch = comparisons(rtol=1e-5, atol=1e-6)

# The library attention that "from scratch" questions forbid:
# F.scaled_dot_product_attention and nn.MultiheadAttention (which reaches
# F.multi_head_attention_forward).
LIBRARY_ATTENTION = {
    "scaled_dot_product_attention": "F.scaled_dot_product_attention",
    "multi_head_attention_forward": "nn.MultiheadAttention",
}


def _gen(seed: int) -> torch.Generator:
    """A torch.Generator seeded with ``seed``."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _randn(seed: int, *shape, scale: float = 1.0) -> torch.Tensor:
    """A seeded float32 tensor of standard normal entries times ``scale``."""
    return torch.randn(*shape, generator=_gen(seed)) * scale


# ------------------------------------------------------------ comparing answers
def _verdict(got, expected, mistaken, message: str, what: str, rtol: float = 1e-5,
             atol: float = 1e-6) -> None:
    """Pass on ``expected``; fail with ``message`` (the case's hint shown) on one of
    ``mistaken`` (a value, or a dict {message: value}); fail plainly otherwise."""
    if _matches(got, expected, rtol, atol):
        return
    told = mistaken if isinstance(mistaken, dict) else {message: mistaken}
    for text, wrong in told.items():
        if wrong is not None and _matches(got, wrong, rtol, atol):
            raise CheckFailure(f"{what}: {text}" if isinstance(mistaken, dict)
                               else f"{what}: {message}")
    _plain_mismatch(got, expected, what, rtol, atol)


def _tensor(got, what: str, shape: tuple) -> torch.Tensor:
    """``got`` when a tensor of ``shape``, else a basic failure that says what it is."""
    if got is None:
        raise _basic(f"{what} is None: did you forget to `return` it?", problem="none")
    if not isinstance(got, torch.Tensor):
        raise _basic(f"{what} should be a torch.Tensor of shape {shape}, but it is "
                     f"{_short(got)}.", problem="type")
    if tuple(got.shape) != tuple(shape):
        raise _basic(f"{what} has shape {tuple(got.shape)}, expected {tuple(shape)}.",
                     problem="shape")
    return got


# ------------------------------------------------------------ "from scratch"
class _ForbidFunctions(torch.overrides.TorchFunctionMode):
    """Raise ForbiddenCall when learner code calls one of the torch functions named in
    ``names`` (a function mode sees F.scaled_dot_product_attention before it reaches
    a fused kernel that a dispatch mode would see under another name)."""

    def __init__(self, names: dict[str, str], label: str):
        super().__init__()
        self.names, self.label = names, label

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.names:
            raise ForbiddenCall(self.names[name], self.label)
        return func(*args, **(kwargs or {}))


def call_from_scratch(fn, *args, forbid: dict[str, str], name: str,
                      check_mutation: bool = False):
    """``call(fn, *args)`` with the torch functions in ``forbid`` counting as not
    answered (``forbid``: function name -> how the message names the library call)."""
    with _ForbidFunctions(forbid, name):
        return call(fn, *args, check_mutation=check_mutation, name=name)
