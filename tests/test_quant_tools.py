"""Tests of course_utils.lessons.quant_tools (lesson 07): the maintained quantizers.

Tiny models, no downloads. Each tool's output is compared with the float model's within
a stated tolerance, saved sizes are checked to shrink as int8 should (about 4x on the
weights), and the unsupported cases must fail with a clear message. The tests that
compile with Inductor are marked slow (seconds each, more with a cold cache).
"""
from __future__ import annotations

import copy
import logging
import os

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.lessons import quant_tools as qt

qt.import_torchao()


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 16)).eval()


def _rel_err(y, ref) -> float:
    """max |y - ref| / max |ref|: the tolerance scale used below."""
    return ((y.float() - ref).abs().max() / ref.abs().max()).item()


X = torch.randn(8, 64, generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------ machinery
def test_cpu_features_names_the_instruction_sets():
    """Does cpu_features report the capability string and the int8/bf16 flags?"""
    f = qt.cpu_features()
    assert isinstance(f["capability"], str)
    assert {"avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx"} <= set(f)
    assert all(isinstance(f[k], bool) for k in f if k != "capability")


def test_latency_gives_median_and_interquartile_range():
    """Does latency time each repeat and summarise them as median and IQR?"""
    calls = []
    r = qt.latency(lambda x: calls.append(x), 1, warmup=2, repeats=5)
    assert len(calls) == 7 and len(r["times"]) == 5
    assert r["q1"] <= r["median"] <= r["q3"] and r["iqr"] == pytest.approx(
        r["q3"] - r["q1"])
    with pytest.raises(ValueError, match="repeats"):
        qt.latency(lambda: None, repeats=0)


def test_compare_latency_interleaves_the_candidates():
    """Does compare_latency call the candidates in rounds, A B A B, and time each?"""
    calls = []
    r = qt.compare_latency({"a": lambda: calls.append("a"),
                            "b": lambda: calls.append("b")}, warmup=1, repeats=3)
    assert calls == ["a", "b"] * 4
    assert set(r) == {"a", "b"} and len(r["a"]["times"]) == 3


def test_latency_runs_under_inference_mode():
    """Is the timed function called under torch.inference_mode?"""
    seen = []
    qt.latency(lambda: seen.append(torch.is_inference_mode_enabled()), warmup=0,
               repeats=1)
    assert seen == [True]


def test_import_torchao_drops_only_the_known_noise(caplog):
    """Are the CUDA-library and pytree-Enum messages dropped, and others kept?"""
    if torch.version.cuda is not None:
        pytest.skip("the CUDA-library filter is only installed on a CPU build")
    qt.import_torchao()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("torchao").warning(
            "Failed to load /x/_C_cutlass_90a.abi3.so: Could not load this library")
        logging.getLogger("torch.utils._pytree").warning(
            "<enum 'E'> is an Enum subclass and is now natively supported by ...")
        logging.getLogger("torchao").warning("something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]


def test_saved_size_of_a_module_is_that_of_its_state_dict():
    """Does saved_size_bytes save a module's state dict, about 4 bytes a weight?"""
    m = nn.Linear(256, 256)
    assert qt.saved_size_bytes(m) == qt.saved_size_bytes(m.state_dict())
    assert 4 * 256 * 257 < qt.saved_size_bytes(m) < 4 * 256 * 257 + 4096
    assert 4 * 256 * 256 < qt.linear_weights_bytes(m) < 4 * 256 * 256 + 4096


# ------------------------------------------------------------------ torchao, eager
@pytest.mark.parametrize("mode, tol", [("dynamic", 0.03), ("weight_only", 0.01)])
def test_torchao_int8_is_close_to_float(mode, tol):
    """Is the torchao int8 model within tol (relative to max |y|) of the float one?"""
    m = _mlp()
    with torch.inference_mode():
        ref = m(X)
        q = qt.torchao_int8(copy.deepcopy(m), mode)
        assert _rel_err(q(X), ref) < tol
    assert type(q[0].weight).__name__ == "Int8Tensor"


def test_torchao_int8_shrinks_the_linear_weights_about_4x_and_reloads():
    """Are the int8 weights about a quarter of the float ones, saved and reloaded?"""
    m = _mlp()
    q = qt.torchao_int8(copy.deepcopy(m), "dynamic")
    ratio = qt.linear_weights_bytes(q) / qt.linear_weights_bytes(m)
    assert 0.2 < ratio < 0.45                       # int8 + scales + pickle overhead
    import io

    buffer = io.BytesIO()
    torch.save(q.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # torchao's subclasses are allowed
    fresh = qt.torchao_int8(_mlp(seed=5), "dynamic")
    fresh.load_state_dict(state, assign=True)
    with torch.inference_mode():
        assert torch.equal(fresh(X), q(X))


def test_torchao_int8_rejects_an_unknown_mode():
    """Does an unknown mode raise a ValueError that names the two modes?"""
    with pytest.raises(ValueError, match="'dynamic' or 'weight_only'"):
        qt.torchao_int8(_mlp(), "int4")


# ----------------------------------------------------------------------- embeddings
def _embedding(v: int = 1000, d: int = 64) -> nn.Embedding:
    torch.manual_seed(0)
    return nn.Embedding(v, d, padding_idx=0)


IDS = torch.randint(0, 1000, (4, 8), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("scale_dtype", [torch.float16, torch.float32])
def test_int8_embedding_is_within_half_a_step_of_each_row(scale_dtype):
    """Is every looked-up value within half a quantization step (scale / 2) of the
    float one, plus the rounding of a float16 scale?"""
    e = _embedding()
    q = qt.Int8Embedding.from_float(e, scale_dtype)
    with torch.inference_mode():
        err = (q(IDS) - e(IDS)).abs()                                # (B, T, D)
    step = q.scale[IDS].float()                                      # (B, T, 1)
    slack = 1e-3 if scale_dtype == torch.float16 else 1e-6
    assert (err <= step * (0.5 + slack)).all()
    assert q(IDS).dtype == torch.float32 and q(IDS).shape == (4, 8, 64)
    assert q.qweight.dtype == torch.int8 and q.qweight.abs().max() <= 127


def test_quantize_embeddings_swaps_every_embedding_and_shrinks_it():
    """Are all nn.Embedding modules replaced, the names returned, the size ~1/4?"""
    m = nn.ModuleDict({"words": _embedding(), "pos": nn.Embedding(16, 64)})
    before = qt.saved_size_bytes(m)
    names = qt.quantize_embeddings(m)
    assert sorted(names) == ["pos", "words"]
    assert all(isinstance(x, qt.Int8Embedding) for x in m.values())
    assert qt.saved_size_bytes(m) / before < 0.3       # int8 rows + float16 scales


def test_torchao_int8_embeddings_is_close_and_small():
    """Does torchao's IntxWeightOnlyConfig on nn.Embedding stay within half a step
    and shrink the table about 4x?"""
    e = _embedding()
    with torch.inference_mode():
        ref = e(IDS)
        q = qt.torchao_int8_embeddings(nn.Sequential(copy.deepcopy(e)))
        y = q(IDS)
    step = (e.weight.abs().amax(dim=1) / 127)[IDS].unsqueeze(-1)     # (B, T, 1)
    assert ((y - ref).abs() <= step * 0.5 + 1e-6).all()
    assert qt.saved_size_bytes(q) / qt.saved_size_bytes(e) < 0.3


# ------------------------------------------------------- torch.ao (deprecated), bf16
def test_torch_ao_dynamic_is_close_and_reports_its_deprecation():
    """Is torch.ao's quantize_dynamic close to float, and its warning returned?"""
    m = _mlp()
    q, messages = qt.torch_ao_dynamic_int8(m)
    with torch.inference_mode():
        assert _rel_err(q(X), m(X)) < 0.03
    assert type(m[0]) is nn.Linear                       # the float model untouched
    assert any("torch.ao.quantization is deprecated" in msg for msg in messages)
    assert qt.linear_weights_bytes(q) / qt.linear_weights_bytes(m) < 0.45


def test_autocast_bf16_is_close_and_returns_float32():
    """Is the bf16-autocast output float32 and within bf16's precision (~1%)?"""
    m = _mlp()
    with torch.inference_mode():
        y = qt.Autocast(m)(X)
        assert y.dtype == torch.float32 and _rel_err(y, m(X)) < 0.02


# --------------------------------------------------------------------------- PT2E
class _TinyCNN(nn.Module):
    """conv-BN-ReLU-pool twice, then a linear layer: (B, 1, 16, 16) -> (B, 10)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class _DataDependent(nn.Module):
    """A forward whose branch depends on the data: torch.export cannot capture it."""

    def forward(self, x):
        return x * 2 if x.sum() > 0 else x - 1


def test_pt2e_explains_a_model_export_cannot_capture():
    """Does pt2e_static_int8 raise a RuntimeError naming torch.export and a remedy?"""
    with pytest.raises(RuntimeError, match="torch.export could not capture"):
        qt.pt2e_static_int8(_DataDependent(), (torch.randn(2, 3),), [])


@pytest.mark.slow
@pytest.mark.parametrize("per_channel", [True, False])
def test_pt2e_static_int8_is_close_and_smaller(per_channel):
    """Are the compiled and uncompiled PT2E int8 models within 5% (relative) of the
    float CNN, the float weights dropped, and the exported weights about 1/4?"""
    torch.manual_seed(0)
    model = _TinyCNN().eval()
    x = torch.randn(8, 1, 16, 16)
    batches = [torch.randn(8, 1, 16, 16) for _ in range(4)] + [x]
    compiled, quantized, seconds = qt.pt2e_static_int8(model, (x,), batches,
                                                       per_channel=per_channel)
    with torch.inference_mode():
        ref = model(x)
        assert _rel_err(quantized(x), ref) < 0.05
        assert _rel_err(compiled(x), ref) < 0.05
    assert seconds > 0
    assert qt.saved_size_bytes(quantized) / qt.saved_size_bytes(model) < 0.4
    weights = qt.exported_size_bytes(quantized, (x,), weights_only=True)
    assert weights / qt.exported_size_bytes(model, (x,), weights_only=True) < 0.35
    assert weights < qt.exported_size_bytes(quantized, (x,))


@pytest.mark.slow
def test_pt2e_dynamic_int8_is_close():
    """Is the PT2E dynamic int8 MLP, compiled, within 5% (relative) of float?"""
    m = _mlp()
    compiled, quantized, _ = qt.pt2e_dynamic_int8(m, (X,))
    with torch.inference_mode():
        assert _rel_err(compiled(X), m(X)) < 0.05
        assert _rel_err(quantized(X), m(X)) < 0.05


@pytest.mark.slow
def test_pt2e_linear_weights_are_counted_about_a_quarter_of_float():
    """Does linear_weights_bytes find the int8 weights (with their scales) of a PT2E
    graph, which has no Linear modules: about 1/4 of the float32 weights?"""
    m = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 64)).eval()
    x = torch.randn(8, 256)
    _, quantized, _ = qt.pt2e_dynamic_int8(m, (x,))
    ratio = qt.linear_weights_bytes(quantized) / qt.linear_weights_bytes(m)
    assert 0.24 < ratio < 0.35, ratio


@pytest.mark.slow
def test_compile_timed_with_freezing_matches_eager():
    """Does a model compiled with Inductor's freezing compute the eager outputs, and
    recompile (frozen again) for a new batch size?"""
    m = _mlp()
    run, seconds = qt.compile_timed(m, X, freezing=True)
    assert seconds > 0
    with torch.inference_mode():
        torch.testing.assert_close(run(X), m(X), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(run(X[:3]), m(X[:3]), rtol=1e-4, atol=1e-5)


def test_fixed_batch_outputs_calls_with_full_batches_of_real_rows():
    """Does every call get exactly `batch` rows, the last chunk filled with copies of
    its own first row (never zeros), and do the outputs match one big call?"""
    seen = []

    def model(x, mask):
        seen.append((len(x), x.clone()))
        return x * mask

    x = torch.arange(1, 11, dtype=torch.float32).unsqueeze(1)          # (10, 1)
    mask = torch.full((10, 1), 2.0)
    y = qt.fixed_batch_outputs(model, x, mask, batch=4)
    torch.testing.assert_close(y, x * 2)
    assert [n for n, _ in seen] == [4, 4, 4]
    assert seen[-1][1].flatten().tolist() == [9.0, 10.0, 9.0, 9.0]


# ------------------------------------------------------------------ the GPU path
def test_gpu_quantize_explains_what_it_needs():
    """Does gpu_quantize reject an unknown scheme, and without CUDA name the need?"""
    with pytest.raises(ValueError, match="scheme must be one of"):
        qt.gpu_quantize(_mlp(), "int3")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    for scheme in qt.GPU_SCHEMES:
        with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
            qt.gpu_quantize(_mlp(), scheme)


# -------------------------------------------------------------- Keras and LiteRT
@pytest.fixture(scope="module")
def keras_models():
    """A tiny Keras MLP and CNN (built, random weights) and an input batch, NHWC."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(32, activation="relu"),
                            keras.layers.Dense(10)])
    cnn = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3),
                            keras.layers.ReLU(), keras.layers.Flatten(),
                            keras.layers.Dense(10)])
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype(np.float32)
    return mlp, cnn, x


def test_keras_int8_quantizes_dense_layers_and_stays_close(keras_models):
    """Are the Dense layers quantized (Conv2D left float), the float model untouched,
    and the outputs within 3% (relative) of float?"""
    mlp, cnn, x = keras_models
    q, done, skipped = qt.keras_int8(mlp)
    assert len(done) == 2 and skipped == []
    ref = np.asarray(mlp(x))
    assert np.abs(np.asarray(q(x)) - ref).max() / np.abs(ref).max() < 0.03
    assert all(layer.quantization_mode is None for layer in mlp.layers)
    qc, done_c, skipped_c = qt.keras_int8(cnn)
    assert len(done_c) == 1 and len(skipped_c) == 1 and "conv" in skipped_c[0]


@pytest.mark.parametrize("int8_io", [False, True])
def test_litert_full_int8_round_trip_agrees_with_keras(keras_models, int8_io):
    """Does the int8 LiteRT model, run through run_litert, give the Keras model's
    class for nearly every input and logits within 10% (relative)?"""
    _, cnn, x = keras_models
    model_bytes, _ = qt.litert_full_int8(cnn, [x[:8], x[8:]], int8_io=int8_io)
    y = qt.run_litert(model_bytes, x)
    ref = np.asarray(cnn(x))
    assert y.shape == ref.shape and y.dtype == np.float32
    assert np.abs(y - ref).max() / np.abs(ref).max() < 0.1
    assert (y.argmax(1) == ref.argmax(1)).mean() >= 0.8
    assert len(model_bytes) < qt.keras_weights_bytes(cnn)
