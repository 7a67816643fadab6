"""Runtime: seeding, device choice, smoke mode and mixed precision, shared by every lab.

Taught in lesson 01 (seeding, smoke mode) and lesson 03 (devices, autocast).
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
from dataclasses import dataclass

_TRUE = {"1", "true", "yes", "on"}


def smoke_mode() -> bool:
    """Return True when ``COURSE_SMOKE`` asks for the tiny CI-sized run.

    Smoke mode shrinks data and epochs (in each notebook's Settings cell only) so every notebook
    finishes in seconds; full mode (the default) is what learners run.
    """
    return os.environ.get("COURSE_SMOKE", "").strip().lower() in _TRUE


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy, PyTorch (CPU and CUDA) and TensorFlow when imported.

    Returns nothing, so that a notebook cell ending with it shows no stray ``0``.

    Args:
        seed: the seed; the same seed gives the same numbers on the same machine.
    Example:
        >>> seed_everything(42)
    """
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    try:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
    except ImportError:  # pragma: no cover
        pass
    # Only seed TensorFlow if a notebook already imported it: importing it costs seconds.
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        if hasattr(keras, "utils") and hasattr(keras.utils, "set_random_seed"):
            keras.utils.set_random_seed(seed)


@dataclass(frozen=True)
class DeviceChoice:
    """The device a lab runs on and the reason it was picked."""

    name: str  # "cuda", "mps" or "cpu"
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def choose_device(prefer: str | None = None) -> DeviceChoice:
    """Pick CUDA, then Apple MPS, then CPU; ``prefer`` or ``COURSE_DEVICE`` overrides."""
    import torch

    prefer = prefer or os.environ.get("COURSE_DEVICE") or None
    if prefer:
        return DeviceChoice(prefer, "asked for by COURSE_DEVICE/prefer")
    if torch.cuda.is_available():
        return DeviceChoice("cuda", f"CUDA GPU found: {torch.cuda.get_device_name(0)}")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return DeviceChoice("mps", "Apple GPU found (Metal Performance Shaders)")
    return DeviceChoice("cpu", "no CUDA or MPS GPU found")


def get_device(prefer: str | None = None, verbose: bool = True):
    """Return the ``torch.device`` a lab should use: CUDA, else MPS, else CPU.

    Args:
        prefer: force a device name ("cpu", "cuda", "mps"); ``COURSE_DEVICE`` does the same.
        verbose: print what was picked and why.
    Returns:
        A ``torch.device``.
    Example:
        >>> device = get_device(verbose=False)
    """
    import torch

    choice = choose_device(prefer)
    if verbose:
        print(f"Using device: {choice}")
    return torch.device(choice.name)


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware: Intel AMX tiles
    (Sapphire Rapids and newer Xeons) or AVX-512 BF16 (Cooper Lake, Zen 4). There, oneDNN
    runs bf16 convolutions and matmuls 1.5-3x faster than fp32; elsewhere bf16 on the CPU
    is emulated and slower, so the course keeps fp32."""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def amp_dtype(device, cpu_bf16: bool = False):
    """The autocast dtype for ``device``: bf16 on CUDA GPUs that compute it natively (compute
    capability 8.0 and newer: A100, H100, RTX 30xx/40xx), fp16 on older CUDA GPUs (T4, V100, which
    only emulate bf16, slowly), None (no mixed precision) on MPS and on the CPU, unless
    ``cpu_bf16`` asks for bf16 on a CPU that computes it natively (``cpu_has_native_bf16``)."""
    import torch

    kind = getattr(device, "type", str(device))
    if kind == "cpu":
        return torch.bfloat16 if cpu_bf16 and cpu_has_native_bf16() else None
    if kind != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast(device, cpu_bf16: bool = False):
    """Mixed precision where it pays: autocast to ``amp_dtype(device, cpu_bf16)``, a no-op where
    that is None (MPS, and the CPU unless ``cpu_bf16`` and the CPU has bf16 units).

    bf16 keeps fp32's exponent range, so it needs no loss scaling; fp16 (older GPUs) does: pair it
    with ``grad_scaler(device)``, as ``course_utils.train.fit`` does.
    Example:
        >>> with autocast(device):
        ...     logits = model(X)
    """
    import torch

    dtype = amp_dtype(device, cpu_bf16)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=getattr(device, "type", str(device)), dtype=dtype)


def grad_scaler(device):
    """A ``GradScaler`` that is enabled only for fp16 autocast (it guards fp16 gradients from underflow)."""
    import torch

    return torch.amp.GradScaler("cuda", enabled=amp_dtype(device) == torch.float16)


def describe_runtime(print_it: bool = True) -> dict:
    """Versions, device, threads and mode: the first thing every lab prints.

    Returns:
        A dict of what was printed (for tests and the benchmark record).
    """
    import numpy as np
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "device": str(choose_device()),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "mode": "smoke (COURSE_SMOKE=1)" if smoke_mode() else "full",
        "in_colab": in_colab(),
    }
    if "tensorflow" in sys.modules:
        info["tensorflow"] = sys.modules["tensorflow"].__version__
    if "keras" in sys.modules:
        info["keras"] = getattr(sys.modules["keras"], "__version__", "?")
    if print_it:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}} : {value}")
    return info


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
