"""Tests of course_utils.runtime: seeding, device choice, smoke mode, autocast, describe_runtime."""
import random

import numpy as np
import pytest
import torch

from course_utils import runtime


def test_seed_everything_repeats_random_numpy_and_torch():
    """Does the same seed give the same numbers from random, NumPy and torch?"""
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    runtime.seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_smoke_mode_reads_course_smoke(monkeypatch, value, expected):
    """Does COURSE_SMOKE switch smoke mode on for the usual truthy spellings only?"""
    monkeypatch.setenv("COURSE_SMOKE", value)
    assert runtime.smoke_mode() is expected


def test_smoke_mode_off_when_unset(monkeypatch):
    """Is full mode the default?"""
    monkeypatch.delenv("COURSE_SMOKE", raising=False)
    assert runtime.smoke_mode() is False


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch, capsys):
    """Does get_device pick CUDA, else MPS, else CPU, and say why?"""
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.get_device().type == "cpu"
    assert "no CUDA or MPS" in capsys.readouterr().out
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.choose_device().name == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake GPU")
    choice = runtime.choose_device()
    assert choice.name == "cuda" and "Fake GPU" in choice.reason


def test_course_device_overrides(monkeypatch):
    """Can a learner force the CPU with COURSE_DEVICE?"""
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device(verbose=False).type == "cpu"


def test_autocast_is_a_noop_on_cpu():
    """Does autocast leave CPU float32 maths alone?"""
    with runtime.autocast(torch.device("cpu")):
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_only_when_asked_and_native(monkeypatch, native):
    """Is CPU autocast bf16 only when a lab asks for it and the CPU has bf16 units?"""
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert runtime.amp_dtype(cpu) is None  # never unasked: lessons 04-08 stay fp32
    assert runtime.amp_dtype(cpu, cpu_bf16=True) == (torch.bfloat16 if native else None)
    with runtime.autocast(cpu, cpu_bf16=True):
        out = torch.ones(4, 4) @ torch.ones(4, 4)
    assert out.dtype == (torch.bfloat16 if native else torch.float32)
    assert runtime.grad_scaler(cpu) is not None  # bf16 needs no loss scaling
    assert not runtime.grad_scaler(cpu).is_enabled()


def test_cpu_has_native_bf16_reads_the_cpu_flags(monkeypatch):
    """Does the bf16 probe follow torch.cpu's AMX and AVX-512 BF16 flags?"""
    for amx, avx in [(False, False), (True, False), (False, True)]:
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx: v)
        assert runtime.cpu_has_native_bf16() is (amx or avx)


def test_fit_trains_in_cpu_bf16_when_asked(monkeypatch):
    """Does fit(cpu_bf16=True) run the forward in bf16 on the CPU, fp32 without it?"""
    from course_utils.train import fit

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    seen = []

    class Probe(torch.nn.Linear):
        def forward(self, X):
            out = super().forward(X)
            if self.training:
                seen.append(out.dtype)
            return out

    X, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=8)
    for cpu_bf16, dtype in [(True, torch.bfloat16), (False, torch.float32)]:
        model = Probe(3, 2)
        seen.clear()
        fit(model, loader, torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.1),
            1, torch.device("cpu"), use_amp=True, cpu_bf16=cpu_bf16, show_progress=False,
            verbose=False)
        assert seen == [dtype, dtype]
        assert model.weight.dtype == torch.float32  # the master weights stay fp32


@pytest.mark.filterwarnings("ignore:CUDA is not available")
@pytest.mark.parametrize("capability, dtype", [((9, 0), torch.bfloat16), ((8, 0), torch.bfloat16),
                                                ((7, 5), torch.float16)])
def test_autocast_dtype_follows_the_gpu(monkeypatch, capability, dtype):
    """Is autocast bf16 on GPUs with native bf16 (Ampere+) and fp16 with a GradScaler on a T4 or V100?"""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cuda = torch.device("cuda")
    assert runtime.amp_dtype(cuda) == dtype
    ctx = runtime.autocast(cuda)
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == dtype
    asked = {}
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled: asked.setdefault("enabled", enabled))
    assert runtime.grad_scaler(cuda) is (dtype == torch.float16)  # loss scaling for fp16 only
    assert runtime.amp_dtype(torch.device("cpu")) is None


def test_describe_runtime_reports_versions_and_mode(monkeypatch, capsys):
    """Does describe_runtime print the versions, device and mode a lab should start with?"""
    monkeypatch.setenv("COURSE_SMOKE", "1")
    info = runtime.describe_runtime()
    out = capsys.readouterr().out
    assert info["torch"] == torch.__version__ and info["mode"].startswith("smoke")
    assert "torch" in out and "device" in out and "smoke" in out
