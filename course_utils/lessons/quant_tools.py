"""Quantization with the maintained tools, measured: torchao, PT2E, Keras and LiteRT.

Taught in lesson 07 (``notebooks/07_quantization.ipynb``), after the lesson has written
the quantization arithmetic itself (``course_utils.lessons.quant``). This module is the
tool side: each function applies one maintained tool (torchao's ``quantize_``, the PT2E
static flow with ``X86InductorQuantizer``, Keras' ``model.quantize("int8")``, the
LiteRT converter) or measures one thing (latency, saved size), so that the lesson can
say, with numbers from the learner's own machine, when quantization pays and when not.

Notation (``book/notation.md``): ``B`` batch size, ``T`` tokens, ``C`` channels or the
model width, ``V`` vocabulary size, ``D`` embedding width. Token ids are ``(B, T)``, an
embedding table ``(V, D)``, images NCHW ``(B, C, H, W)`` in PyTorch and NHWC
``(B, H, W, C)`` in Keras/LiteRT.

What runs where (torch 2.13, torchao 0.18, keras 3.15, TF 2.21, ai-edge-litert 2.3):
every int8 path here runs on any x86 CPU, but its speed depends on the kernels behind
it and the instruction set (``cpu_features``). On an AVX2-only CPU (no AVX-512, VNNI
or AMX) lesson 07 measured: torchao's int8 x int8 product (``torch._int_mm``) some
20x slower than float32, eager or compiled; fbgemm (``torch.ao`` dynamic), oneDNN
(PT2E under Inductor) and LiteRT's XNNPACK have AVX2 int8 kernels and are faster than
float32 on large layers; bfloat16 is several times slower than float32 (no native
bf16). float8 needs a CUDA GPU of compute capability 8.9 or more (``gpu_quantize``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import statistics
import time
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .._quiet import captured_stderr

__all__ = [
    "import_torchao", "cpu_features", "latency", "compare_latency", "saved_size_bytes",
    "linear_weights_bytes", "compile_timed", "fixed_batch_outputs", "torchao_int8",
    "torchao_int8_embeddings",
    "Int8Embedding", "quantize_embeddings", "torch_ao_dynamic_int8", "Autocast",
    "PT2EModels", "pt2e_static_int8", "pt2e_dynamic_int8", "exported_size_bytes",
    "keras_int8", "keras_weights_bytes", "keras_saved_size_bytes", "litert_full_int8",
    "litert_runner", "run_litert", "GPU_SCHEMES", "gpu_quantize",
]


# ------------------------------------------------------------------------ machinery
class _DropLogNoise(logging.Filter):
    """A logging filter that drops records whose message contains one of ``parts``."""

    def __init__(self, *parts: str):
        super().__init__()
        self.parts = parts

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(part in record.getMessage() for part in self.parts)


def import_torchao():
    """Import torchao without the warnings its CUDA kernel libraries print on a CPU.

    A torchao wheel ships CUDA extensions (``_C_cutlass_90a.abi3.so`` for Hopper GPUs,
    ``_C_mxfp8...so``) linked against ``libtorch_cuda.so``, which a CPU build of PyTorch
    does not have; torchao tries each, logs "Failed to load ..." on its ``torchao``
    logger and carries on without them (nothing on the CPU needs them). torchao 0.18
    also registers Enums with pytree, which torch 2.13 logs as deprecated, at import
    and later. Filters on the two loggers drop exactly these messages, the first only
    on a CPU build of PyTorch (on a CUDA build a failed CUDA library is news).

    Returns:
        The ``torchao`` module.
    """
    filters = {"torch.utils._pytree": _DropLogNoise("is an Enum subclass and is now "
                                                    "natively supported")}
    if torch.version.cuda is None:                         # a CPU (or ROCm) build
        filters["torchao"] = _DropLogNoise("_C_cutlass_90a.abi3.so:", "_C_mxfp8.")
    for name, noise in filters.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLogNoise) for f in logger.filters):
            logger.addFilter(noise)
    import torchao

    return torchao


def cpu_features() -> dict:
    """The CPU's instruction sets that decide whether int8 and bf16 are fast here.

    Returns:
        ``{"capability": "AVX2" | "AVX512" | ..., "avx2", "avx512", "avx512_vnni",
        "avx512_bf16", "amx", "amx_fp16"}`` (booleans but the first), from PyTorch's
        own checks (``torch.backends.cpu.get_cpu_capability`` and ``torch.cpu``).
    """
    cpu = torch.cpu
    checks = {"avx2": "_is_avx2_supported", "avx512": "_is_avx512_supported",
              "avx512_vnni": "_is_vnni_supported",
              "avx512_bf16": "_is_avx512_bf16_supported",
              "amx": "_is_amx_tile_supported", "amx_fp16": "_is_amx_fp16_supported"}
    out = {"capability": torch.backends.cpu.get_cpu_capability()}
    for key, attr in checks.items():
        out[key] = bool(getattr(cpu, attr)()) if hasattr(cpu, attr) else False
    return out


def latency(fn, *args, warmup: int = 3, repeats: int = 10) -> dict:
    """Wall-clock time of ``fn(*args)``: median and interquartile range over repeats.

    Runs under ``torch.inference_mode`` (harmless for TensorFlow or LiteRT callables),
    ``warmup`` untimed calls first (a compiled model compiles in its first call: time
    that with ``compile_timed``), then ``repeats`` calls timed with
    ``time.perf_counter``.

    Args:
        fn: the callable to time.
        *args: its arguments.
        warmup: untimed calls before timing.
        repeats: timed calls (at least 1).
    Returns:
        ``{"median": s, "iqr": s, "q1": s, "q3": s, "min": s, "times": [s, ...]}`` in
        seconds. The minimum is the least disturbed by other programs; the median and
        the interquartile range (q3 - q1) say what a user sees and how much it varies.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn(*args)
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
    return _summary(times)


def compare_latency(candidates: dict, *args, warmup: int = 3,
                    repeats: int = 10) -> dict:
    """``latency`` of several callables on the same arguments, interleaved in rounds.

    Each round calls every candidate once, so that another program that slows the
    machine for a while slows all of them alike and the ratios stay fair (a laptop
    with a browser open, a shared server).

    Args:
        candidates: ``{name: fn}``; each is called as ``fn(*args)``.
        *args: the arguments.
        warmup: untimed rounds first.
        repeats: timed rounds (at least 1).
    Returns:
        ``{name: latency dict}`` with the keys of ``latency``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    times = {name: [] for name in candidates}
    with torch.inference_mode():
        for round_ in range(warmup + repeats):
            for name, fn in candidates.items():
                start = time.perf_counter()
                fn(*args)
                if round_ >= warmup:
                    times[name].append(time.perf_counter() - start)
    return {name: _summary(t) for name, t in times.items()}


def _summary(times: list) -> dict:
    """Median, quartiles, IQR and minimum of a list of durations (seconds)."""
    q1, q3 = np.percentile(times, [25, 75])
    return {"median": statistics.median(times), "iqr": float(q3 - q1),
            "q1": float(q1), "q3": float(q3), "min": min(times), "times": times}


def saved_size_bytes(obj) -> int:
    """Bytes ``torch.save`` writes for a module's state dict (or any object).

    torchao's quantized weights are tensor subclasses (``Int8Tensor``,
    ``IntxUnpackedToInt8Tensor``) that pickle as their int8 data plus scales, so their
    saved size is the quantized size; ``torch.load(..., weights_only=True)`` reads them
    back once torchao is imported.

    Args:
        obj: an ``nn.Module`` (its ``state_dict()`` is saved) or anything torch.save
            takes.
    Returns:
        The size in bytes of the in-memory file.
    """
    with torch.inference_mode(False):      # torchao's subclasses cannot detach in it
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        buffer = io.BytesIO()
        torch.save(obj, buffer)
    return buffer.getbuffer().nbytes


def linear_weights_bytes(model: nn.Module) -> int:
    """Saved size of the weights of the model's linear layers alone (no biases).

    Counts ``nn.Linear`` (float or with a torchao quantized weight), ``torch.ao``'s
    dynamically quantized ``Linear`` (whose ``weight()`` is a method) and, in a
    converted PT2E graph, the int8 weights read by its ``dequantize_per_channel``
    nodes with their scales and zero points (the graph has no Linear modules).

    Args:
        model: the model.
    Returns:
        Bytes ``torch.save`` writes for ``{name: weight}`` of those layers.
    """
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    weights = {}
    for name, module in model.named_modules():
        if isinstance(module, DynamicLinear):
            weights[name] = module.weight()                  # qint8 (out, in)
        elif isinstance(module, nn.Linear):
            weights[name] = module.weight                    # (out, in)
    if isinstance(model, torch.fx.GraphModule):
        for node in model.graph.nodes:
            if node.op == "call_function" and "dequantize_per_channel" in str(
                    node.target):
                for arg in node.args[:3]:                    # int8 weight, scale, zp
                    if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
                        tensor = model
                        for part in arg.target.split("."):
                            tensor = getattr(tensor, part)
                        weights[arg.target] = tensor
    return saved_size_bytes(weights)


def compile_timed(model, *example_args, freezing: bool = False, **compile_kwargs):
    """``torch.compile`` a model and time its first call, where compilation happens.

    Args:
        model: the module (or function) to compile.
        *example_args: arguments of the first call (shapes of later calls should match,
            or torch.compile compiles again).
        freezing: Inductor's freezing: the weights become constants, which lets it
            prepack them for oneDNN's int8 and bfloat16 kernels (AMX, VNNI) and fold
            torchao's weight conversions. ``torch.compile(..., options={"freezing":
            True})`` is not enough on torch 2.13 for every model (PT2E's prepack ops
            stay in the graph), so ``torch._inductor.config.freezing`` is patched
            around every call, a recompilation for a new shape included.
        **compile_kwargs: passed to ``torch.compile`` (``mode``, ``options``, ...).
    Returns:
        ``(compiled, seconds)``: the compiled callable and the wall time of its first
        call under ``torch.inference_mode``.
    """
    compiled = torch.compile(model, **compile_kwargs)
    run = compiled
    if freezing:
        def run(*args, **kwargs):
            with torch._inductor.config.patch(freezing=True):
                return compiled(*args, **kwargs)

    start = time.perf_counter()
    with torch.inference_mode():
        run(*example_args)
    return run, time.perf_counter() - start


def fixed_batch_outputs(model, *tensors, batch: int) -> torch.Tensor:
    """The model's outputs on N examples, computed in batches of exactly ``batch``.

    A compiled model is specialised to one input shape, and a timed configuration
    should be the one evaluated; so every call gets ``batch`` rows. The last chunk is
    filled up with copies of its own first row (not zeros: a dynamic quantizer's range
    of the batch then sees only real data), and their outputs are dropped.

    Args:
        model: called as ``model(*chunks)``, one chunk of each tensor.
        *tensors: tensors of N rows each (images; or token ids and attention mask).
        batch: the rows of every call.
    Returns:
        (N, ...) float32 outputs, in the order of the rows.
    """
    n = len(tensors[0])
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch):
            chunks = [t[start:start + batch] for t in tensors]
            k = len(chunks[0])
            chunks = [torch.cat([c, c[:1].expand(batch - k, *c.shape[1:])])
                      for c in chunks]
            out.append(model(*chunks)[:k].float())
    return torch.cat(out)


# ------------------------------------------------------------------ torchao, eager
def torchao_int8(model: nn.Module, mode: str = "dynamic",
                 reduce_range: bool = False) -> nn.Module:
    """Quantize the model's ``nn.Linear`` weights to int8 per output row, in place.

    ``mode="dynamic"``: ``Int8DynamicActivationInt8WeightConfig``, whose linear layers
    quantize each input row (token) to int8 at run time and multiply int8 by int8
    (``torch._int_mm``) into int32. ``mode="weight_only"``: ``Int8WeightOnlyConfig``,
    whose layers convert the int8 weight back to the input's float type and multiply
    in float: smaller, not faster by itself. On the CPU, ``torch._int_mm`` is fast
    only with AMX or AVX-512 VNNI; with AVX2 alone it is about 20x slower than a
    float32 product, and ``torch.compile`` calls the same kernel.

    Args:
        model: the model, modified in place (``copy.deepcopy`` it first to keep it).
        mode: "dynamic" or "weight_only".
        reduce_range: dynamic only: 7-bit ranges, which torchao recommends on CPUs
            without VNNI (``torchao.utils.should_reduce_range``) against int16
            overflow in their int8 kernels.
    Returns:
        The same model.
    """
    import_torchao()
    from torchao.quantization import (Int8DynamicActivationInt8WeightConfig,
                                      Int8WeightOnlyConfig, quantize_)

    if mode == "dynamic":
        config = Int8DynamicActivationInt8WeightConfig(reduce_range=reduce_range)
    elif mode == "weight_only":
        config = Int8WeightOnlyConfig()
    else:
        raise ValueError(f"mode must be 'dynamic' or 'weight_only', not {mode!r}")
    quantize_(model, config)                          # filter: every nn.Linear
    return model


def torchao_int8_embeddings(model: nn.Module) -> nn.Module:
    """Quantize the weights of the model's ``nn.Embedding`` layers to int8 per row.

    torchao's ``IntxWeightOnlyConfig(torch.int8, PerAxis(0))`` with a filter on
    ``nn.Embedding``: int8 rows, one float32 scale and one int8 zero point per row.
    Its embedding dequantizes the whole (V, D) table at every call in eager mode, then
    gathers; under ``torch.compile`` Inductor fuses the two and dequantizes only the
    rows gathered. ``Int8Embedding`` gathers first in eager mode too.

    Args:
        model: the model, modified in place.
    Returns:
        The same model.
    """
    import_torchao()
    from torchao.quantization import IntxWeightOnlyConfig, PerAxis, quantize_

    config = IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0))
    quantize_(model, config, filter_fn=lambda module, fqn: isinstance(module,
                                                                     nn.Embedding))
    return model


# ------------------------------------------------------- embeddings, our own module
class Int8Embedding(nn.Module):
    """An embedding table stored as int8 rows with one scale per row.

    Symmetric per-row quantization: row v is ``scale[v] * q[v]`` with ``q[v]`` in
    [-127, 127]. The forward gathers the int8 rows and their scales for the ids, then
    dequantizes only those: ids (B, T) -> (B, T, D) in ``out_dtype``.
    """

    def __init__(self, qweight: torch.Tensor, scale: torch.Tensor,
                 padding_idx: int | None = None, out_dtype=torch.float32):
        super().__init__()
        self.register_buffer("qweight", qweight)     # (V, D) int8
        self.register_buffer("scale", scale)         # (V, 1) float16 or float32
        self.padding_idx, self.out_dtype = padding_idx, out_dtype

    @classmethod
    def from_float(cls, embedding: nn.Embedding, scale_dtype=torch.float16):
        """Quantize an ``nn.Embedding``: scale = max|row| / 127, q = round(row / scale).

        Args:
            embedding: the float embedding.
            scale_dtype: dtype the scales are stored in (float16 halves their bytes).
        Returns:
            An ``Int8Embedding`` with the same rows up to half a step each.
        """
        w = embedding.weight.detach().float()                          # (V, D)
        scale = (w.abs().amax(dim=1, keepdim=True) / 127).clamp(min=1e-8)  # (V, 1)
        scale = scale.to(scale_dtype)                  # quantize with the stored scale
        q = torch.round(w / scale.float()).clamp(-127, 127).to(torch.int8)  # (V, D)
        return cls(q, scale, embedding.padding_idx, embedding.weight.dtype)

    def forward(self, ids):
        """ids (B, T) -> rows (B, T, D): gather int8 rows and scales, dequantize."""
        q = self.qweight[ids]                                          # (B, T, D)
        return q.to(self.out_dtype) * self.scale[ids].to(self.out_dtype)  # (B, T, 1)

    def extra_repr(self) -> str:
        v, d = self.qweight.shape
        return f"{v}, {d}, int8 rows, {self.scale.dtype} scales"


def quantize_embeddings(model: nn.Module, scale_dtype=torch.float16) -> list[str]:
    """Replace every ``nn.Embedding`` of the model by an ``Int8Embedding``, in place.

    Args:
        model: the model, modified in place.
        scale_dtype: dtype of the per-row scales.
    Returns:
        The names of the replaced modules.
    """
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Embedding)]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Embedding.from_float(module, scale_dtype))
    return [name for name, _ in targets]


# ------------------------------------------------------- torch.ao (deprecated) and bf16
def torch_ao_dynamic_int8(model: nn.Module):
    """The deprecated eager API: ``torch.ao.quantization.quantize_dynamic`` on Linear.

    Replaces each ``nn.Linear`` by ``torch.ao.nn.quantized.dynamic.Linear`` (int8
    weights per tensor, activations quantized per batch at run time, fbgemm/x86
    kernels, which have AVX2 int8 code: on an AVX2-only CPU the fastest int8 path
    of this module). torch 2.13 warns "torch.ao.quantization is deprecated and will
    be removed in 2.10" (sic: still there in 2.13), pointing to torchao's
    ``quantize_``, plus a warning that quantized tensor dtypes (``torch.qint8``, ...)
    are deprecated; this returns the warnings instead of printing them.

    Args:
        model: the float model (not modified: quantize_dynamic copies it).
    Returns:
        ``(quantized_model, warnings)``, the warnings as their message strings.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear}, dtype=torch.qint8)
    messages = list(dict.fromkeys(str(w.message) for w in caught))  # unique, in order
    return quantized, messages


class Autocast(nn.Module):
    """Run a model under ``torch.autocast`` and return float32 outputs.

    Autocast computes matrix products in ``dtype`` (bfloat16 on the CPU) and keeps
    the weights in float32: faster where the CPU multiplies bfloat16 natively
    (AVX-512 BF16, AMX), slower where it must convert (AVX2).
    """

    def __init__(self, model: nn.Module, dtype=torch.bfloat16):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, *args, **kwargs):
        device = next(self.model.parameters()).device.type
        with torch.autocast(device, dtype=self.dtype):
            return self.model(*args, **kwargs).float()


# ------------------------------------------------------------- PT2E static int8 (x86)
class PT2EModels(NamedTuple):
    """What the ``pt2e_*`` functions return: ``compiled, quantized, seconds``."""

    compiled: object           # torch.compile'd (Inductor int8 kernels), already run
    quantized: nn.Module       # the converted graph: q/dq ops around float ops
    compile_seconds: float     # wall time of the compiled model's first call


def _x86_config(per_channel: bool, reduce_range: bool):
    """X86InductorQuantizer's default static config; per-tensor weights if asked."""
    from torchao.quantization.pt2e import MinMaxObserver
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        get_default_x86_inductor_quantization_config)

    config = get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    if per_channel:
        return config                  # weights int8 per output channel, symmetric
    weight = dataclasses.replace(
        config.weight, qscheme=torch.per_tensor_symmetric, ch_axis=None,
        observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
    return dataclasses.replace(config, weight=weight)


def _export_for_pt2e(model: nn.Module, example_inputs):
    """``torch.export`` the model for PT2E, dead code removed, or a clear RuntimeError.

    Dead code matters: an unused output (BERT's pooler when only the token states are
    used) leaves a Linear -> Tanh whose result nothing reads, and torchao 0.18's
    X86InductorQuantizer fails on it with a bare IndexError.
    """
    try:
        exported = torch.export.export(model.eval(), tuple(example_inputs)).module()
    except Exception as exc:
        raise RuntimeError(
            f"torch.export could not capture {type(model).__name__} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). PT2E needs a "
            "graph without data-dependent Python control flow; rewrite it with "
            "torch.cond or quantize eagerly with torchao_int8.") from exc
    exported.graph.eliminate_dead_code()
    exported.recompile()
    return exported


def _drop_unused_tensors(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Delete the parameters and buffers the graph no longer reads, in place.

    ``convert_pt2e`` adds the int8 weights as new buffers (``_frozen_param0``, ...)
    and leaves the float weights they replace attached, unused: saved as is, the
    "quantized" model would be larger than the float one.
    """
    used = {node.target for node in graph_module.graph.nodes if node.op == "get_attr"}
    names = [name for name, _ in graph_module.named_parameters()]
    names += [name for name, _ in graph_module.named_buffers()]
    for name in names:
        if name not in used:
            owner_name, _, attr = name.rpartition(".")
            owner = graph_module.get_submodule(owner_name) if owner_name \
                else graph_module
            delattr(owner, attr)
    return graph_module


def _pt2e_compile(quantized, example_inputs):
    """``torch.compile`` a converted PT2E model with Inductor's freezing; run it once.

    Freezing turns the weights into constants, so that Inductor's int8 patterns can
    prepack them for oneDNN. On torch 2.13 with torchao 0.18,
    ``torch.compile(..., options={"freezing": True})`` is not enough: the prepack ops
    stay in the graph and compiling fails with ``UnsupportedOperatorException:
    onednn.qconv_prepack.default``. Setting ``torch._inductor.config.freezing`` works;
    it is patched around every call, so that a recompilation (a new input shape)
    freezes too, and restored after.

    Returns:
        ``(run, seconds)``: the compiled callable and the time of its first call.
    Raises:
        RuntimeError: Inductor could not compile, with what to do.
    """
    try:
        return compile_timed(quantized, *example_inputs, freezing=True)
    except Exception as exc:
        raise RuntimeError(
            "torch.compile (Inductor, freezing) could not compile the PT2E int8 model "
            f"on this machine ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Inductor's CPU backend needs a C++ "
            "compiler (g++ or clang); install one, or run the uncompiled `quantized` "
            "model (correct, but at float speed).") from exc


def pt2e_static_int8(model: nn.Module, example_inputs, calibration_batches,
                     per_channel: bool = True,
                     reduce_range: bool | None = None) -> PT2EModels:
    """Static post-training int8 quantization with PT2E and ``X86InductorQuantizer``.

    The flow: ``torch.export.export(model, example_inputs).module()`` captures the
    graph; ``prepare_pt2e`` folds BatchNorm into the convolutions and inserts
    observers (histograms for activations, min/max for weights); the calibration
    batches run through it; ``convert_pt2e`` replaces the observers by
    quantize/dequantize pairs with the scales observed (uint8 activations per tensor,
    int8 weights); ``torch.compile`` with Inductor's freezing pass then fuses each
    dequantize -> conv/linear -> quantize into one oneDNN int8 kernel (see
    ``_pt2e_compile`` for why the freezing config is patched, not passed).

    Args:
        model: a float model in eval mode (BatchNorm in eval mode is folded).
        example_inputs: a tuple of inputs for export and the first compiled call;
            both models are specialised to their shapes (another batch size fails a
            guard: quantize once per shape).
        calibration_batches: an iterable of input tensors (or tuples of them).
        per_channel: int8 weights per output channel (the default) or one scale per
            tensor. Inductor's int8 patterns match per-channel weights only: a
            per-tensor model stays in float with q/dq around it.
        reduce_range: 7-bit activations (uint8 0..127), X86InductorQuantizer's
            advice for CPUs without VNNI: their u8 x s8 kernels add pairs of products
            in int16, which saturates. None (the default) decides with
            ``torchao.utils.should_reduce_range``: True exactly when the CPU has no
            VNNI.
    Returns:
        ``PT2EModels(compiled, quantized, compile_seconds)``.
    Raises:
        RuntimeError: export failed (the model has Python control flow that depends
            on data) or Inductor could not compile (no C++ compiler, or an op it does
            not support), with what to do.
    """
    import_torchao()
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer)  # importing it registers Inductor's int8 x86 patterns

    from torchao.utils import should_reduce_range

    if reduce_range is None:
        reduce_range = should_reduce_range(torch.device("cpu"))
    example_inputs = tuple(example_inputs)
    exported = _export_for_pt2e(model, example_inputs)
    quantizer = X86InductorQuantizer().set_global(_x86_config(per_channel,
                                                              reduce_range))
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for batch in calibration_batches:                  # observers record ranges
            prepared(*(batch if isinstance(batch, (tuple, list)) else (batch,)))
    quantized = _drop_unused_tensors(convert_pt2e(prepared))
    compiled, seconds = _pt2e_compile(quantized, example_inputs)
    return PT2EModels(compiled, quantized, seconds)


def pt2e_dynamic_int8(model: nn.Module, example_inputs,
                      reduce_range: bool | None = None) -> PT2EModels:
    """Dynamic int8 quantization of the linear layers with PT2E, compiled by Inductor.

    Like ``pt2e_static_int8`` but with ``is_dynamic=True``: no calibration (one run
    of the example inputs lets the weight observers see the weights), each
    linear layer's input is quantized to uint8 (one scale per tensor) at run time
    from its own min and max; weights int8 per output channel. Inductor turns
    each into oneDNN's int8 linear (``onednn.qlinear_pointwise``), which has AVX2
    kernels as well as VNNI/AMX ones. The exported graph is specialised to the
    example shapes: quantize once per input shape.

    Args:
        model: a float model in eval mode.
        example_inputs: a tuple of inputs for export and the first compiled call.
        reduce_range: 7-bit activations; None: True on CPUs without VNNI (see
            ``pt2e_static_int8``).
    Returns:
        ``PT2EModels(compiled, quantized, compile_seconds)``.
    Raises:
        RuntimeError: as ``pt2e_static_int8``.
    """
    import_torchao()
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config)

    from torchao.utils import should_reduce_range

    if reduce_range is None:
        reduce_range = should_reduce_range(torch.device("cpu"))
    example_inputs = tuple(example_inputs)
    exported = _export_for_pt2e(model, example_inputs)
    config = get_default_x86_inductor_quantization_config(
        is_dynamic=True, reduce_range=reduce_range)
    prepared = prepare_pt2e(exported, X86InductorQuantizer().set_global(config))
    with torch.no_grad():
        prepared(*example_inputs)            # the weight observers see the weights
    quantized = _drop_unused_tensors(convert_pt2e(prepared))
    compiled, seconds = _pt2e_compile(quantized, example_inputs)
    return PT2EModels(compiled, quantized, seconds)


def exported_size_bytes(model: nn.Module, example_inputs,
                        weights_only: bool = False) -> int:
    """Bytes of ``torch.export.save`` of the exported model: the way to ship a PT2E one.

    A converted PT2E model is a GraphModule whose folded int8 weights are buffers
    read by the graph; exporting it again and saving the ExportedProgram writes the
    graph, those weights and a copy of the example inputs (a .pt2 zip archive). The
    inputs are cloned first, so that a slice of a big tensor does not save all of it.

    Args:
        model: a module (a converted PT2E model, or a float one to compare).
        example_inputs: a tuple of inputs for export.
        weights_only: count only the archive's weights and constants (no graph, no
            sample inputs).
    Returns:
        The size in bytes of the in-memory .pt2 file (or of its weights).
    """
    import zipfile

    example_inputs = tuple(x.clone() if torch.is_tensor(x) else x
                           for x in example_inputs)
    program = torch.export.export(model, example_inputs)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    if not weights_only:
        return buffer.getbuffer().nbytes
    with zipfile.ZipFile(buffer) as archive:
        return sum(i.file_size for i in archive.infolist()
                   if any(f"/data/{kind}/" in i.filename
                          for kind in ("weights", "constants")))


# ------------------------------------------------------------------- Keras and LiteRT
def _quiet_tensorflow():
    """Import TensorFlow without its C++ start-up log, as the course does elsewhere."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    return tf


def keras_int8(model):
    """A copy of a built Keras 3 model whose quantizable layers hold int8 weights.

    ``model.quantize("int8")`` quantizes ``Dense``, ``EinsumDense`` and ``Embedding``
    layers (keras 3.15): int8 kernels per output unit with float scales, inputs
    quantized per row at run time (abs-max), int8 x int8 matmul. Other layers,
    ``Conv2D`` included, stay float; Keras warns once per such layer ("does not have
    a `quantize` method implemented"), which this collects.

    Args:
        model: a built Keras model (not modified).
    Returns:
        ``(quantized_copy, quantized_layer_names, skipped_layer_names)``.
    """
    _quiet_tensorflow()
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        clone.quantize("int8")
    layers = [layer for layer in clone._flatten_layers(include_self=False)
              if not list(layer._flatten_layers(include_self=False))]   # leaves
    done = [layer.name for layer in layers if layer.quantization_mode == "int8"]
    skipped = [layer.name for layer in layers if layer.weights and
               layer.quantization_mode != "int8"]
    return clone, done, skipped


def keras_weights_bytes(model) -> int:
    """Bytes of a Keras model's weights (``model.weights``: int8 kernels, scales, ...).

    Counted from the variables, not from a saved file: Keras 3 writes the
    optimizer's state into ``.keras`` and ``.weights.h5`` files too (Adam: two more
    copies of the weights), which says nothing about the model.
    """
    return int(sum(np.asarray(v).nbytes for v in model.weights))


def keras_saved_size_bytes(model) -> int:
    """Bytes of the model saved as a ``.keras`` archive (architecture and weights; a
    compiled, trained model's archive holds its optimizer state too: see
    ``keras_weights_bytes``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        return os.path.getsize(path)


def litert_full_int8(keras_model, representative_batches, int8_io: bool = False):
    """Convert a Keras model to a fully int8 LiteRT (TFLite) flatbuffer.

    ``tf.lite.TFLiteConverter.from_keras_model`` with ``Optimize.DEFAULT``, a
    representative dataset (the calibration batches: activation ranges are measured
    on them) and ``TFLITE_BUILTINS_INT8`` only, so conversion fails rather than
    leaving an op in float. Weights int8 per output channel, activations int8 per
    tensor.

    Args:
        keras_model: a built Keras model.
        representative_batches: an iterable of float input batches, NHWC for images.
        int8_io: False keeps float input and output (the model quantizes its input
            and dequantizes its output itself); True makes them int8, as
            microcontrollers want (``run_litert`` converts either way).
    Returns:
        ``(model_bytes, converter_messages)``: the flatbuffer and the Python warnings
        the converter raised (TF 2.21: "Statistics for quantized inputs were
        expected, but not specified; continuing anyway.", harmless: the input
        range comes from the representative dataset). Keras' export prints
        ("Saved artifact at ...") are swallowed, and so is the converter's C++ line
        "fully_quantize: 0, inference_type: 6, ..." (``_quiet.captured_stderr``).
    """
    tf = _quiet_tensorflow()

    def representative_dataset():
        for batch in representative_batches:
            yield [np.asarray(batch, dtype=np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(io.StringIO()), \
            captured_stderr():                               # Keras' "Saved artifact at"
        warnings.simplefilter("always")
        model_bytes = converter.convert()
    return model_bytes, list(dict.fromkeys(str(w.message) for w in caught))


def litert_runner(model_bytes, num_threads: int | None = None):
    """A callable running a LiteRT model with ``ai_edge_litert``'s Interpreter.

    Args:
        model_bytes: the flatbuffer (``litert_full_int8``).
        num_threads: interpreter threads (None: LiteRT's default).
    Returns:
        ``run(x) -> np.ndarray``: x float (B, ...) is quantized if the model's input is
        int8 (``q = round(x / scale) + zero_point``), the output dequantized if int8
        (``(q - zero_point) * scale``); the batch size may change between calls.
        LiteRT's note "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." is
        dropped (``_quiet.captured_stderr``).
    """
    from ai_edge_litert.interpreter import Interpreter

    with captured_stderr():
        interpreter = Interpreter(model_content=model_bytes, num_threads=num_threads)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    shape = [None]

    def run(x):
        x = np.asarray(x, dtype=np.float32)
        if shape[0] != x.shape:                        # resize once per batch shape
            with captured_stderr():                    # the delegate is applied here
                interpreter.resize_tensor_input(inp["index"], x.shape)
                interpreter.allocate_tensors()
            shape[0] = x.shape
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y

    return run


def run_litert(model_bytes, x) -> np.ndarray:
    """Run a LiteRT model once on the float batch x (``litert_runner``'s run)."""
    return litert_runner(model_bytes)(x)


# ---------------------------------------------------------------------- the GPU path
GPU_SCHEMES = ("int8_weight_only", "int8_dynamic", "float8_weight_only",
               "float8_dynamic")


def gpu_quantize(model: nn.Module, scheme: str = "int8_weight_only") -> nn.Module:
    """Move the model to the GPU and quantize its linear layers with torchao, in place.

    ``int8_weight_only`` (``Int8WeightOnlyConfig``) and ``int8_dynamic``
    (``Int8DynamicActivationInt8WeightConfig``) run on any CUDA GPU; fast under
    ``torch.compile``. ``float8_weight_only`` (``Float8WeightOnlyConfig``) and
    ``float8_dynamic`` (``Float8DynamicActivationFloat8WeightConfig`` with per-row
    scales) need float8 tensor cores: compute capability 8.9 or more (Ada, Hopper,
    Blackwell) or AMD MI300; the float8 schemes first cast the model to bfloat16
    (torchao's per-row float8 needs bfloat16 weights). torchao leaves a linear layer
    whose sizes are not multiples of 16 in high precision, silently.

    Args:
        model: the float model, modified in place.
        scheme: one of ``GPU_SCHEMES``.
    Returns:
        The same model, on ``cuda``.
    Raises:
        ValueError: unknown scheme.
        RuntimeError: no CUDA GPU, or float8 on a GPU older than compute
            capability 8.9.
    """
    if scheme not in GPU_SCHEMES:
        raise ValueError(f"scheme must be one of {GPU_SCHEMES}, not {scheme!r}")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"gpu_quantize({scheme!r}) needs a CUDA GPU and torch.cuda.is_available() "
            f"is False (torch {torch.__version__}). On the CPU use torchao_int8 "
            "(int8) or pt2e_static_int8; float8 has no CPU kernels.")
    if scheme.startswith("float8") and torch.cuda.get_device_capability() < (8, 9):
        major, minor = torch.cuda.get_device_capability()
        raise RuntimeError(
            f"{scheme} needs compute capability 8.9 or more (float8 tensor cores: "
            f"Ada, Hopper, Blackwell); {torch.cuda.get_device_name()} has "
            f"{major}.{minor}. Use 'int8_weight_only' or 'int8_dynamic'.")
    import_torchao()
    from torchao.quantization import (Float8DynamicActivationFloat8WeightConfig,
                                      Float8WeightOnlyConfig,
                                      Int8DynamicActivationInt8WeightConfig,
                                      Int8WeightOnlyConfig, PerRow, quantize_)

    model = model.to("cuda")
    if scheme.startswith("float8"):
        model = model.to(torch.bfloat16)
    config = {"int8_weight_only": Int8WeightOnlyConfig,
              "int8_dynamic": Int8DynamicActivationInt8WeightConfig,
              "float8_weight_only": Float8WeightOnlyConfig,
              "float8_dynamic": lambda: Float8DynamicActivationFloat8WeightConfig(
                  granularity=PerRow())}[scheme]()
    quantize_(model, config)
    return model
