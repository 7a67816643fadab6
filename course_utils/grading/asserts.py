"""Deep-learning-aware assertions shared by every lesson's checks.

Each raises ``CheckFailure`` with a message in the learner's terms: what was called, what came
back, what was expected. Works for Python numbers, NumPy arrays, torch tensors and TensorFlow
tensors alike.
"""
from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, Callable

import numpy as np


class CheckFailure(AssertionError):
    """A case failed; the message is shown to the learner as is.

    ``basic=True`` marks a failure more basic than the mistake the case looks for (None, a wrong
    type or shape, not a function): the case's hint is then not shown, and the same basic problem
    in several cases is shown once. ``call`` is the call whose result failed, when known.
    """

    def __init__(self, message: str = "", basic: bool = False, call: str | None = None,
                 problem: str = ""):
        super().__init__(message)
        self.basic = basic
        self.call = call
        self.problem = problem or (problem_of(message) if basic else "")


def problem_of(message: str) -> str:
    """The kind of a basic failure ("none", "shape", "type"), so that the same problem met in several
    cases, on different inputs, is shown once."""
    text = " ".join(line for line in message.splitlines() if not line.startswith("Called:"))
    if " is None" in text or "returned None" in text:
        return "none"
    if " has shape " in text or "should be one number, but it has shape" in text:
        return "shape"
    if " should be a" in text or " should hold numbers" in text:
        return "type"
    return "basic: " + text


def _basic(message: str) -> CheckFailure:
    return CheckFailure(message, basic=True)


# --------------------------------------------------------------------------- describing calls
def _short(value: Any, limit: int = 80) -> str:
    """One short line for a value in a message: arrays by shape, models and optimizers by name."""
    kind = _kind(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, type):
        return f"class {value.__name__}"
    described = _describe_object(value)
    if described:
        return described
    if kind in ("torch", "tf", "numpy"):
        arr = value
        shape = tuple(getattr(arr, "shape", ()))
        dtype = str(getattr(arr, "dtype", "")).replace("torch.", "")
        name = {"torch": "tensor", "tf": "tf.Tensor", "numpy": "array"}[kind]
        if int(np.prod(shape)) <= 6:
            body = np.array2string(_to_numpy(arr), precision=4, separator=", ").replace("\n", "")
            return f"{name}({body}, dtype={dtype})"
        return f"{name}(shape={shape}, dtype={dtype})"
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _describe_object(value) -> str:
    """A one-line description of a model, an optimizer or a function; "" for anything else."""
    mod = type(value).__module__
    if hasattr(value, "parameters") and hasattr(value, "modules") and mod.split(".")[0] != "keras":
        try:
            n = sum(p.numel() for p in value.parameters())
            return f"{type(value).__name__} model ({n:,} parameters)"
        except Exception:
            return f"{type(value).__name__} model"
    if hasattr(value, "param_groups") and hasattr(value, "step"):
        keys = ("lr", "momentum", "betas", "weight_decay")
        group = value.param_groups[0] if value.param_groups else {}
        shown = ", ".join(f"{k}={group[k]!r}" for k in keys if k in group and group[k] not in (0, None))
        return f"{type(value).__name__}({shown})"
    if mod.startswith(("keras", "tensorflow")) and hasattr(value, "count_params"):
        try:
            return f"Keras {type(value).__name__} ({value.count_params():,} parameters)"
        except Exception:
            return f"Keras {type(value).__name__}"
    if callable(value) and hasattr(value, "__name__") and not isinstance(value, type):
        return f"{value.__name__}"
    return ""


class _CallRecorder:
    """Keeps the calls a case made to learner code so failure messages can say what was called."""

    def __init__(self):
        self._stack: list[list[str]] = []
        self._returns: list[list[tuple[str, Any]]] = []
        self._forbid: list[tuple[str, ...]] = []

    @contextlib.contextmanager
    def recording(self, calls: list[str], forbid: tuple[str, ...] = (), returns: list | None = None):
        """Record into ``calls`` (texts) and ``returns`` ((text, value) pairs) while the block runs."""
        self._stack.append(calls)
        self._returns.append(returns if returns is not None else [])
        self._forbid.append(tuple(forbid))
        try:
            yield calls
        finally:
            self._stack.pop()
            self._returns.pop()
            self._forbid.pop()

    def add(self, text: str) -> None:
        if self._stack:
            self._stack[-1].append(text)

    def returned(self, text: str, value) -> None:
        if self._returns:
            self._returns[-1].append((text, value))

    def call_of(self, value) -> str | None:
        """The text of the latest call that returned exactly this object, if any."""
        if not self._returns or value is None:
            return None
        for text, got in reversed(self._returns[-1]):
            if got is value:
                return text
        return None

    @property
    def forbidden(self) -> tuple[str, ...]:
        return self._forbid[-1] if self._forbid else ()


describe_call = _CallRecorder()


def call(fn: Callable, *args, check_mutation: bool = True, name: str | None = None, **kwargs):
    """Call learner code, recording the call for messages and failing if it changed its inputs in place.

    Args:
        fn: the learner's function (or class, or bound method).
        check_mutation: compare array/tensor/list inputs before and after the call.
        name: how to name ``fn`` in messages (default: its ``__name__``).
    Returns:
        Whatever ``fn`` returned.
    Raises:
        CheckFailure: when ``fn`` is not callable or modified an input in place.
    """
    label = name or getattr(fn, "__name__", type(fn).__name__)
    shown = ", ".join([_short(a, 40) for a in args] + [f"{k}={_short(v, 40)}" for k, v in kwargs.items()])
    text = f"{label}({shown})"
    describe_call.add(text)
    if fn is None:
        raise CheckFailure(f"{name or 'The answer'} is None, not a function: define it with `def` (or "
                           "`class`) and run its cell.", basic=True, problem="none")
    if not callable(fn):
        raise _basic(f"{label} should be a function, but it is {type(fn).__name__}: {_short(fn)}")
    before = [_snapshot(a) for a in args] if check_mutation else None
    forbidden = describe_call.forbidden
    if forbidden:
        from .forbid import forbidding

        with forbidding(forbidden, label):
            out = fn(*args, **kwargs)
    else:
        out = fn(*args, **kwargs)
    describe_call.returned(text, out)
    if check_mutation:
        for i, (arg, snap) in enumerate(zip(args, before)):
            if snap is not None and not _same(snap, _snapshot(arg)):
                raise CheckFailure(
                    f"Called: {text}\nYour function changed its argument #{i + 1} in place. "
                    "Work on a copy (or build a new array/tensor) instead of modifying the input."
                )
    return out


def _snapshot(value):
    kind = _kind(value)
    if kind in ("torch", "numpy", "tf"):
        return _to_numpy(value).copy()
    if isinstance(value, (list, dict)):
        try:
            return copy.deepcopy(value)
        except Exception:
            return None
    return None


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    try:
        return bool(a == b)
    except Exception:
        return True


# --------------------------------------------------------------------------- array helpers
def _kind(value) -> str:
    mod = type(value).__module__
    if mod.startswith("torch"):
        return "torch" if hasattr(value, "detach") else "other"
    if mod.startswith("tensorflow") or mod.startswith("keras"):
        return "tf" if hasattr(value, "numpy") and hasattr(value, "shape") else "other"
    if isinstance(value, np.ndarray):
        return "numpy"
    if isinstance(value, (np.generic, int, float, bool)):
        return "scalar"
    return "other"


def _to_numpy(value) -> np.ndarray:
    kind = _kind(value)
    if kind == "torch":
        t = value.detach()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.cpu().numpy()
    if kind == "tf":
        return np.asarray(value.numpy())
    return np.asarray(value)


def to_numpy(value) -> np.ndarray:
    """NumPy view of a number, list, array, torch tensor or TensorFlow tensor."""
    return _to_numpy(value)


def _fail(message: str, got=None, basic: bool = False) -> CheckFailure:
    """A CheckFailure that knows which recorded call returned ``got`` (for the "Called:" line)."""
    return CheckFailure(message, basic=basic, call=describe_call.call_of(got))


def expect_type(value, types, what: str = "your answer") -> None:
    """Fail unless ``value`` is an instance of ``types`` (a type or tuple of types)."""
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        if value is None:
            raise _fail(f"{what} is None: did you forget to `return` it?", value, basic=True)
        raise _fail(f"{what} should be a {names}, but it is a {type(value).__name__}: {_short(value)}",
                    value, basic=True)


def fmt_pair(got: float, expected: float) -> tuple[str, str]:
    """Two numbers printed with as many digits as it takes to tell them apart (at most 17)."""
    for digits in range(6, 18):
        a, b = f"{got:.{digits}g}", f"{expected:.{digits}g}"
        if a != b:
            return a, b
    return repr(float(got)), repr(float(expected))


# Tolerances an answer computed in a lower precision is held to (at least), by its dtype.
_DTYPE_RTOL = {"float16": 2e-3, "bfloat16": 2e-2, "float32": 2e-5}


def tolerance_for(got, rtol: float, atol: float, expected=None) -> tuple[float, float]:
    """``rtol, atol`` loosened to what ``got``'s floating dtype can represent (float64 keeps them).

    A float32 answer is held to rtol >= 2e-5 and atol >= 2e-6 x the largest expected magnitude
    (rounding of a sum of many float32 terms), float16 and bfloat16 to about 10 ulps.
    """
    dtype = str(getattr(got, "dtype", "")).replace("torch.", "").replace("<dtype: '", "").rstrip("'>")
    floor = _DTYPE_RTOL.get(dtype)
    if floor is None:
        return rtol, atol
    scale = 1.0
    if expected is not None:
        e = np.abs(np.asarray(_to_numpy(expected), dtype=np.float64))
        finite = e[np.isfinite(e)]
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
    return max(rtol, floor), max(atol, floor * 0.1 * scale)


def expect_close(got, expected, rtol: float = 1e-5, atol: float = 1e-8, what: str = "the result",
                 check_dtype: bool = False, device: str | None = None) -> None:
    """Fail unless ``got`` matches ``expected`` in kind, shape, (dtype, device) and values.

    Tolerances follow ``got``'s dtype (``tolerance_for``): a float32 answer is not failed for
    float32 rounding. The message names the first mismatch: type, shape, dtype, device, NaN/inf,
    or the first differing index with the max absolute and relative error. A None, a wrong type
    or a wrong shape is a basic failure (see ``CheckFailure``).
    """
    exp_kind, got_kind = _kind(expected), _kind(got)
    if got is None:
        raise _fail(f"{what} is None: did you forget to `return` it?", got, basic=True)
    if exp_kind in ("torch", "numpy", "tf") and got_kind not in ("torch", "numpy", "tf", "scalar"):
        raise _fail(f"{what} should be an array/tensor, but it is a {type(got).__name__}: {_short(got)}",
                    got, basic=True)
    if exp_kind == "torch" and got_kind != "torch":
        raise _fail(f"{what} should be a torch.Tensor, but it is a {type(got).__name__}.", got, basic=True)
    if exp_kind == "scalar" and got_kind not in ("scalar", "torch", "numpy", "tf"):
        raise _fail(f"{what} should be a number, but it is a {type(got).__name__}: {_short(got)}",
                    got, basic=True)
    if device is not None and got_kind == "torch" and got.device.type != device:
        raise _fail(f"{what} is on device '{got.device}', expected '{device}'.", got)
    g, e = _to_numpy(got), _to_numpy(expected)
    if exp_kind == "scalar" and g.size == 1:
        g = g.reshape(())
    if g.shape != e.shape:
        raise _fail(f"{what} has shape {tuple(g.shape)}, expected {tuple(e.shape)}.", got, basic=True)
    if check_dtype and g.dtype != e.dtype:
        raise _fail(f"{what} has dtype {g.dtype}, expected {e.dtype}.", got)
    if not np.issubdtype(g.dtype, np.number) and g.dtype != bool:
        raise _fail(f"{what} should hold numbers, but its dtype is {g.dtype}.", got, basic=True)
    rtol, atol = tolerance_for(got, rtol, atol, e)
    g64, e64 = g.astype(np.float64), e.astype(np.float64)
    bad_g, bad_e = ~np.isfinite(g64), ~np.isfinite(e64)
    if (bad_g & ~bad_e).any():
        idx = tuple(int(i) for i in np.argwhere(bad_g & ~bad_e)[0])
        value = g64[idx] if g64.ndim else g64
        raise _fail(f"{what} contains {value} at index {idx if idx else '()'} where a finite number "
                    f"was expected: look for a division by zero, log(0) or an overflowing exp.", got)
    ok = np.isclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        idx = tuple(int(i) for i in np.argwhere(~ok)[0])
        diff = np.abs(g64 - e64)
        finite = np.isfinite(diff)
        max_abs = float(diff[finite].max()) if finite.any() else math.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = diff / np.abs(e64)
        rel = rel[np.isfinite(rel)]
        max_rel = float(rel.max()) if rel.size else math.inf
        n_bad = int((~ok).sum())
        tol = f"tolerance rtol={rtol:g}, atol={atol:g}"
        if g64.ndim == 0:
            a, b = fmt_pair(g64.item(), e64.item())
            raise _fail(f"{what} is {a}, expected {b} (off by {max_abs:.3g}; {tol}).", got)
        a, b = fmt_pair(g64[idx], e64[idx])
        raise _fail(
            f"{what} differs from the expected values at {n_bad} of {ok.size} positions.\n"
            f"First mismatch at index {idx}: got {a}, expected {b}.\n"
            f"Max absolute error {max_abs:.3g}, max relative error {max_rel:.3g} ({tol}).", got
        )


def expect_equal(got, expected, what: str = "the result") -> None:
    """Fail unless ``got == expected`` (for plain Python values: ints, strings, tuples)."""
    if got is None and expected is not None:
        raise _fail(f"{what} is None: did you forget to `return` it?", got, basic=True)
    if got != expected:
        raise _fail(f"{what} is {_short(got)}, expected {_short(expected)}.", got)


def expect_shape(got, shape: tuple, what: str = "the result") -> None:
    """Fail unless ``got`` is an array/tensor of ``shape`` (a basic failure otherwise)."""
    if got is None:
        raise _fail(f"{what} is None: did you forget to `return` it?", got, basic=True)
    if _kind(got) not in ("torch", "numpy", "tf"):
        raise _fail(f"{what} should be an array/tensor, but it is a {type(got).__name__}: {_short(got)}",
                    got, basic=True)
    if tuple(got.shape) != tuple(shape):
        raise _fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(shape)}.", got, basic=True)


def expect_finite(got, what: str = "the result") -> None:
    """Fail if ``got`` holds NaN or infinity."""
    arr = _to_numpy(got).astype(np.float64)
    if not np.isfinite(arr).all():
        raise _fail(f"{what} contains NaN or infinity: look for a division by zero, log(0), "
                    "or a learning rate so large the values blow up.", got)


def as_number(value, what: str = "your answer") -> float:
    """``value`` as a float, or a basic failure that says what it is (never a crash of the checker).

    Accepts Python and NumPy numbers and one-element arrays/tensors; rejects None, bool, strings.
    """
    if value is None:
        raise _fail(f"{what} is None: did you forget to `return` it?", value, basic=True)
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise _fail(f"{what} should be a number, but it is a {type(value).__name__}: {_short(value)}",
                    value, basic=True)
    if _kind(value) in ("torch", "numpy", "tf"):
        arr = _to_numpy(value)
        if arr.size != 1:
            raise _fail(f"{what} should be one number, but it has shape {tuple(arr.shape)}.", value,
                        basic=True)
        return float(arr.reshape(()))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    raise _fail(f"{what} should be a number, but it is a {type(value).__name__}: {_short(value)}",
                value, basic=True)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences (f(x+eps) - f(x-eps)) / 2eps on a float64 copy of ``x``.

    The code lesson 02 teaches (``course_utils.numerics.numerical_gradient``), run on a copy so a
    check never changes the array it was given.
    """
    from ..numerics import numerical_gradient as central_differences

    return central_differences(f, np.array(x, dtype=np.float64), eps)


def expect_gradient(f: Callable[[np.ndarray], float], grad, x: np.ndarray, eps: float = 1e-6,
                    rtol: float = 1e-4, atol: float = 1e-6, what: str = "your gradient") -> None:
    """Fail unless ``grad`` matches the central finite-difference gradient of ``f`` at ``x``."""
    expected = numerical_gradient(f, x, eps)
    expect_close(grad, expected, rtol=rtol, atol=atol, what=f"{what} (compared with finite differences)")


def count_parameters(model) -> int:
    """Trainable parameters of a torch ``nn.Module`` or a Keras model."""
    if hasattr(model, "parameters"):
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    if hasattr(model, "trainable_weights"):
        return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    raise _basic(f"expected a model (torch nn.Module or Keras Model), got a {type(model).__name__}.")


def expect_parameter_count(model, expected: int, what: str = "your model") -> None:
    """Fail unless ``model`` has exactly ``expected`` trainable parameters."""
    got = count_parameters(model)
    if got != expected:
        raise CheckFailure(f"{what} has {got:,} trainable parameters, expected {expected:,}.")


def layer_types(model) -> list[str]:
    """The class names of a model's leaf layers, in order (torch or Keras)."""
    if hasattr(model, "modules"):
        return [type(m).__name__ for m in model.modules() if not list(m.children())]
    if hasattr(model, "layers"):
        return [type(layer).__name__ for layer in model.layers]
    raise _basic(f"expected a model, got a {type(model).__name__}.")


def expect_layers(model, expected: list[str], what: str = "your model") -> None:
    """Fail unless the model's leaf layers have these class names in this order."""
    got = layer_types(model)
    if got != list(expected):
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        raise CheckFailure(
            f"{what} has layers {got},\nexpected {list(expected)}.\n"
            f"First difference at position {first}."
        )


def expect_loss_decreases(step: Callable[[], float], loss_before: Callable[[], float], steps: int = 1,
                          what: str = "your training step") -> None:
    """Fail unless calling ``step`` ``steps`` times lowers ``loss_before()`` (a seeded batch)."""
    before = float(loss_before())
    for _ in range(steps):
        step()
    after = float(loss_before())
    if not math.isfinite(after):
        raise CheckFailure(f"after {what}, the loss is {after}: the update blew up (learning rate, sign?).")
    if not after < before:
        raise CheckFailure(
            f"after {steps} call(s) of {what} the loss went from {before:.6g} to {after:.6g}; it should go down.\n"
            "Check the sign of the update (subtract the gradient), that gradients are zeroed each step, "
            "and that the optimizer steps."
        )
