"""Quantization from the arithmetic up: affine quantization, calibration, integer matrix
products and quantization-aware training with fake quantization.

Taught in lesson 07 (``notebooks/07_quantization.ipynb``), which writes each function
here first in the open and then says it is this code. Conventions (as in PyTorch):

- an integer grid ``qmin..qmax`` (int8: -128..127, uint8: 0..255, int4: -8..7);
- ``q = clamp(round(x / s) + z, qmin, qmax)`` and ``x_hat = s (q - z)``, rounding half
  to even like ``torch.round``;
- symmetric quantization has ``z = 0`` and uses the restricted grid ``-qmax..qmax`` for
  weights, so that ``-x`` quantizes to ``-q``;
- per-channel scales live on axis 0 of a weight (output channels: ``(out, in)`` for a
  ``Linear``, ``(out, in, kH, kW)`` for a ``Conv2d``).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
import torch.nn.functional as F

EPS = torch.finfo(torch.float32).eps  # smallest scale, as PyTorch's observers use


# ------------------------------------------------------------------ the integer grid
def qrange(bits: int, signed: bool = True) -> tuple[int, int]:
    """(qmin, qmax) of a ``bits``-bit integer: signed -2^(b-1)..2^(b-1)-1, else 0..2^b-1."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def quantize(x, scale, zero_point, qmin: int, qmax: int, dtype=torch.int32):
    """q = clamp(round(x / s) + z, qmin, qmax), as integers of ``dtype``.

    ``scale`` and ``zero_point`` are numbers or tensors that broadcast against ``x``
    (per-channel: shape ``(C, 1, ...)``).
    """
    q = torch.round(x / scale) + zero_point
    return q.clamp(qmin, qmax).to(dtype)


def dequantize(q, scale, zero_point=0):
    """x_hat = s (q - z), float32."""
    return (q.float() - zero_point) * scale


def fake_quantize(x, scale, zero_point, qmin: int, qmax: int):
    """dequantize(quantize(x)): the float tensor that the integer grid can represent."""
    q = torch.round(x / scale) + zero_point
    return (q.clamp(qmin, qmax) - zero_point) * scale


# ------------------------------------------------------------------ scales
def _channel_view(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-channel vector (C,) shaped (C, 1, ..., 1) to broadcast over a weight."""
    return v.reshape(-1, *([1] * (ndim - 1)))


def symmetric_scale(x, bits: int = 8, per_channel: bool = False):
    """Scale of symmetric quantization on the grid -qmax..qmax: s = max|x| / qmax.

    Per tensor: a 0-d tensor. Per channel (axis 0): a tensor (C, 1, ..., 1) that
    broadcasts over ``x``.
    """
    qmax = 2 ** (bits - 1) - 1
    if per_channel:
        amax = x.detach().abs().flatten(1).amax(dim=1)            # (C,)
        return _channel_view((amax / qmax).clamp_min(EPS), x.ndim)
    return (x.detach().abs().max() / qmax).clamp_min(EPS)


def affine_qparams(x_min, x_max, bits: int = 8, signed: bool = False):
    """(scale, zero_point) mapping [x_min, x_max] onto the whole grid, with the range
    first widened to contain 0 so that 0 is represented exactly (zero padding, ReLU)."""
    qmin, qmax = qrange(bits, signed)
    x_min = torch.as_tensor(x_min, dtype=torch.float32).clamp(max=0.0)
    x_max = torch.as_tensor(x_max, dtype=torch.float32).clamp(min=0.0)
    scale = ((x_max - x_min) / (qmax - qmin)).clamp_min(EPS)
    zero_point = (qmin - torch.round(x_min / scale)).clamp(qmin, qmax).to(torch.int64)
    return scale, zero_point


def quantize_symmetric(w, bits: int = 8, per_channel: bool = True):
    """Symmetric quantization of a weight: (q int8, scale) with x_hat = scale * q."""
    qmax = 2 ** (bits - 1) - 1
    scale = symmetric_scale(w, bits, per_channel)
    return quantize(w, scale, 0, -qmax, qmax, torch.int8), scale


def quantize_groups(w, bits: int = 4, group_size: int = 32):
    """Symmetric per-group quantization of a matrix (out, in): one scale per
    ``group_size`` consecutive inputs of each row (``in`` divisible by ``group_size``).

    Returns q int8 (out, in) and scales (out, in / group_size, 1).
    """
    out_features, in_features = w.shape
    if in_features % group_size:
        raise ValueError(f"in_features {in_features} is not a multiple of the group "
                         f"size {group_size}")
    groups = w.reshape(out_features, in_features // group_size, group_size)  # (O, G, g)
    qmax = 2 ** (bits - 1) - 1
    scale = (groups.abs().amax(dim=-1, keepdim=True) / qmax).clamp_min(EPS)  # (O, G, 1)
    q = quantize(groups, scale, 0, -qmax, qmax, torch.int8)
    return q.reshape(out_features, in_features), scale


def dequantize_groups(q, scale):
    """The float matrix (out, in) of ``quantize_groups``' output."""
    out_features, in_features = q.shape
    groups = q.reshape(out_features, scale.shape[1], -1).float() * scale
    return groups.reshape(out_features, in_features)


# ------------------------------------------------------------------ calibration
def minmax_range(x):
    """Calibration by the observed extremes: (min, max)."""
    return x.min().item(), x.max().item()


def percentile_range(x, percentile: float = 99.99):
    """Calibration that clips the most extreme values: the (100 - p)-th and p-th
    percentiles of x."""
    flat = x.detach().flatten().float()
    if flat.numel() > 4_000_000:                 # torch.quantile's limit is 16M; subsample
        idx = torch.linspace(0, flat.numel() - 1, 4_000_000).long()
        flat = flat.sort().values[idx]
    lo = torch.quantile(flat, 1 - percentile / 100).item()
    hi = torch.quantile(flat, percentile / 100).item()
    return lo, hi


def quantization_mse(x, x_min: float, x_max: float, bits: int = 8,
                     signed: bool = False) -> float:
    """Mean squared error of fake-quantizing x with the range [x_min, x_max]."""
    scale, zero_point = affine_qparams(x_min, x_max, bits, signed)
    qmin, qmax = qrange(bits, signed)
    return (fake_quantize(x, scale, zero_point, qmin, qmax) - x).pow(2).mean().item()


def mse_range(x, bits: int = 8, signed: bool = False, num_candidates: int = 100):
    """Calibration by search: the range with the smallest quantization MSE on x.

    The top is searched first, ``theta * max`` for ``num_candidates`` values of theta in
    (0, 1] with the bottom at ``min``; then the bottom, ``theta * min``, with that top
    (one pass of coordinate descent: one-sided data such as GELU outputs needs its own
    bottom). Returns ((min, max), fractions, errors), the last two of the top's search.
    """
    lo, hi = minmax_range(x)
    fractions = torch.linspace(1.0 / num_candidates, 1.0, num_candidates)
    errors = torch.tensor([quantization_mse(x, lo, a * hi, bits, signed)
                           for a in fractions.tolist()])
    best_hi = fractions[errors.argmin()].item() * hi
    low_errors = torch.tensor([quantization_mse(x, a * lo, best_hi, bits, signed)
                               for a in fractions.tolist()])
    best_lo = fractions[low_errors.argmin()].item() * lo
    return (best_lo, best_hi), fractions, errors


# ------------------------------------------------------------------ integer matmul
def int8_matmul(qa, qb, accumulator=torch.int32):
    """Integer product of int8 matrices (M, K) @ (K, N), accumulated in ``accumulator``.

    The readable path: widen to the accumulator type, multiply, add. ``torch._int_mm``
    is the fast kernel of the same computation (int8 in, int32 out).
    """
    return qa.to(accumulator) @ qb.to(accumulator)


def requantize(acc, scale_in, scale_out, zero_point_out: int = 0, bits: int = 8,
               signed: bool = True, dtype=torch.int8):
    """int32 accumulators (scale ``scale_in`` = s_a s_b) onto an output grid:
    clamp(round(acc * s_in / s_out) + z_out)."""
    qmin, qmax = qrange(bits, signed)
    return quantize(acc.double() * scale_in, scale_out, zero_point_out, qmin, qmax, dtype)


def matmul_error_bound(a, b, scale_a: float, scale_b: float) -> torch.Tensor:
    """Worst case of |a b - a_hat b_hat| for values rounded to the nearest grid point
    (no clipping): each |a - a_hat| <= s_a / 2 and |b - b_hat| <= s_b / 2, so entry
    (i, j) is off by at most sum_k (s_a/2 |b_kj| + s_b/2 |a_ik| + s_a s_b / 4)."""
    K = a.shape[-1]
    return (scale_a / 2 * b.abs().sum(0, keepdim=True)             # (1, N)
            + scale_b / 2 * a.abs().sum(-1, keepdim=True)          # (M, 1)
            + K * scale_a * scale_b / 4)


# ------------------------------------------------------------------ sizes
def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of a dense tensor's elements."""
    return t.numel() * t.element_size()


def state_dict_bytes(state_dict) -> int:
    """Bytes of the plain tensors of a state dict (what torch.save writes, less headers)."""
    return sum(tensor_bytes(t) for t in state_dict.values() if isinstance(t, torch.Tensor))


# ------------------------------------------------------------------ fake quantization
def round_ste(x):
    """round(x) forward, identity backward: the straight-through estimator (Bengio et
    al. 2013). ``x + (round(x) - x).detach()`` has value round(x) and gradient 1."""
    return x + (torch.round(x) - x).detach()


def fake_quantize_ste(x, scale, zero_point, qmin: int, qmax: int):
    """Fake quantization with the straight-through estimator: forward as
    ``fake_quantize``; backward 1 where x lies inside the grid's range and 0 where it
    was clipped (``torch.fake_quantize_per_tensor_affine``'s gradient)."""
    q = torch.clamp(round_ste(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


class ActivationQuantizer(nn.Module):
    """Fake-quantizes activations per tensor on an asymmetric grid whose range is
    observed on the batches seen: their extremes (``momentum=None``, PyTorch's
    MinMaxObserver, for calibration) or an exponential moving average of each batch's
    min and max (PyTorch's MovingAverageMinMaxObserver, for training). ``bits=None``
    turns it off."""

    def __init__(self, bits: int | None = 8, momentum: float | None = None):
        super().__init__()
        self.bits, self.momentum = bits, momentum
        self.observing = True                  # update the range from the batches seen
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def observe(self, x) -> None:
        lo, hi = x.detach().min(), x.detach().max()
        if torch.isinf(self.min_val):          # the first batch sets the range
            self.min_val.copy_(lo)
            self.max_val.copy_(hi)
        elif self.momentum is None:            # the extremes of all batches
            self.min_val.copy_(torch.minimum(self.min_val, lo))
            self.max_val.copy_(torch.maximum(self.max_val, hi))
        else:
            self.min_val.lerp_(lo, self.momentum)
            self.max_val.lerp_(hi, self.momentum)

    def forward(self, x):
        if self.bits is None:
            return x
        if self.observing:
            self.observe(x)
        scale, zero_point = affine_qparams(self.min_val, self.max_val, self.bits)
        qmin, qmax = qrange(self.bits, signed=False)
        return fake_quantize_ste(x, scale, zero_point, qmin, qmax)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, range=({self.min_val:.3g}, {self.max_val:.3g})"


class QuantWrapper(nn.Module):
    """A Conv2d or Linear whose input is fake-quantized per tensor and whose weight is
    fake-quantized per output channel, symmetric, both with the straight-through
    estimator; the bias stays in float (an int32 of scale s_x s_w in a real kernel)."""

    def __init__(self, layer: nn.Module, weight_bits: int | None = 8,
                 activation_bits: int | None = 8):
        super().__init__()
        self.layer, self.weight_bits = layer, weight_bits
        self.input_quantizer = ActivationQuantizer(activation_bits)

    def quantized_weight(self):
        w = self.layer.weight
        if self.weight_bits is None:
            return w
        qmax = 2 ** (self.weight_bits - 1) - 1
        scale = symmetric_scale(w, self.weight_bits, per_channel=True)  # (C, 1, ...)
        return fake_quantize_ste(w, scale, 0, -qmax, qmax)

    def forward(self, x):
        x = self.input_quantizer(x)
        w = self.quantized_weight()
        if isinstance(self.layer, nn.Conv2d):
            return self.layer._conv_forward(x, w, self.layer.bias)
        return F.linear(x, w, self.layer.bias)


def fold_batchnorms(model: nn.Sequential | nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with each Conv2d -> BatchNorm2d pair of an
    nn.Sequential folded into one Conv2d (torch.nn.utils.fusion.fuse_conv_bn_eval) and
    the BatchNorm replaced by an identity, as a quantized deployment does."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
                for p in fused.parameters():      # trainable, for quantization-aware
                    p.requires_grad_(True)        # training after the fold
                module[i] = fused
                module[i + 1] = nn.Identity()
    return model


def prepare_fake_quant(model: nn.Module, weight_bits: int | None = 8,
                       activation_bits: int | None = 8) -> nn.Module:
    """A copy of ``model`` with every Conv2d and Linear wrapped in a ``QuantWrapper``."""
    model = copy.deepcopy(model)

    def wrap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                setattr(parent, name, QuantWrapper(child, weight_bits, activation_bits))
            else:
                wrap(child)

    wrap(model)
    return model


def set_observing(model: nn.Module, observing: bool, momentum="keep") -> nn.Module:
    """Switch the range observation of every ActivationQuantizer on (calibrating,
    training) or off (frozen ranges, as at inference); optionally set its momentum
    (None: extremes; a number: moving average)."""
    for module in model.modules():
        if isinstance(module, ActivationQuantizer):
            module.observing = observing
            if momentum != "keep":
                module.momentum = momentum
    return model


# ------------------------------------------------------------------ outliers
class InputScale(nn.Module):
    """Multiplies its input, feature by feature, by a fixed vector (SmoothQuant's 1/λ)."""

    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x):                       # (..., d_in) * (d_in,)
        return x * self.scale


def input_absmax(model: nn.Module, names, run) -> dict[str, torch.Tensor]:
    """max |x_c| of the input of each named layer over what ``run()`` feeds the model,
    feature by feature: {name: (d_in,)}."""
    found: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, inputs, output):
            amax = inputs[0].detach().abs().flatten(0, -2).amax(dim=0)     # (d_in,)
            found[name] = amax if name not in found else torch.maximum(found[name], amax)
        return record

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in names]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return found


def smoothing_factors(absmax: torch.Tensor, weight: torch.Tensor,
                      alpha: float = 0.5) -> torch.Tensor:
    """SmoothQuant's λ_c = max|x_c|^α / max_j |w_jc|^(1-α), feature by feature.

    ``absmax`` (d_in,) is the input's max |x_c| (``input_absmax``), ``weight``
    (d_out, d_in) the Linear's weight, or several stacked along d_out when one input
    feeds several layers (q, k, v). Every factor is at least 1e-5 (a feature that is
    always 0 keeps a finite scale)."""
    w_max = weight.detach().abs().amax(dim=0).clamp_min(1e-5)              # (d_in,)
    return (absmax.clamp_min(1e-5) ** alpha / w_max ** (1 - alpha)).clamp_min(1e-5)


def smooth_quant(model: nn.Module, absmax: dict, alpha: float = 0.5) -> nn.Module:
    """A copy of ``model`` in which each named Linear's input feature c is divided by
    λ_c = max|x_c|^α / max_j |w_jc|^(1-α) and the weight's column c multiplied by it
    (SmoothQuant, Xiao et al. 2023): the product is unchanged, the activation's
    outlier features shrink and the weights absorb them. ``absmax`` comes from
    ``input_absmax``; the division runs as an ``InputScale`` before the layer."""
    model = copy.deepcopy(model)
    for name, amax in absmax.items():
        linear = model.get_submodule(name)
        lam = smoothing_factors(amax, linear.weight, alpha)                 # (d_in,)
        with torch.no_grad():
            linear.weight.mul_(lam)                                         # W diag(λ)
        parent, _, child = name.rpartition(".")
        holder = model.get_submodule(parent) if parent else model
        setattr(holder, child, nn.Sequential(InputScale(1 / lam), linear))
    return model
