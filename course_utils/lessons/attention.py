"""Self-attention and the Transformer: from scaled dot-product attention to a tiny GPT.

Taught in lesson 05 (``notebooks/05_self_attention.ipynb``), which writes each function
here in the open first and then says it is this code; its checks use these as
reference oracles.

Notation (``book/notation.md``): ``B`` batch size, ``T`` sequence length (positions),
``C`` the model width :math:`d_\\text{model}`, ``h`` heads, ``d_k = C / h`` the width
of one head's queries and keys, ``V`` vocabulary size. A batch of ids is ``(B, T)``,
activations ``(B, T, C)``, one head's queries, keys and values ``(B, h, T, d_k)``,
attention weights ``(B, h, T_q, T_k)``. Boolean masks follow
``F.scaled_dot_product_attention``: **True means "may attend"**
(``nn.MultiheadAttention`` uses the opposite convention for its boolean masks).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import autocast, grad_scaler
from .optim import cosine_warmup
from .rnn import LMHistory, Vocab, sample_next, stream_batches


# ------------------------------------------------------------- attention from scratch
def softmax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Numerically stable softmax along ``dim``: ``exp(s - max s) / sum(...)``.

    Subtracting the maximum changes nothing mathematically (it cancels between the
    numerator and the denominator) and keeps ``exp`` from overflowing; entries at
    ``-inf`` (masked) get weight exactly 0. A row that is entirely ``-inf`` has no
    weights to share and gives NaN, as ``torch.softmax`` does.
    """
    shifted = scores - scores.amax(dim=dim, keepdim=True)
    e = torch.exp(shifted)
    return e / e.sum(dim=dim, keepdim=True)


def scaled_dot_product_attention(q, k, v, mask=None, scale: float | None = None):
    """``softmax(q k^T / sqrt(d_k) + mask) v``, written out; also returns the weights.

    Args:
        q: queries (..., T_q, d_k); k: keys (..., T_k, d_k); v: values (..., T_k, d_v).
        mask: None; a boolean tensor broadcastable to (..., T_q, T_k), True where a
            query may attend to a key (``F.scaled_dot_product_attention``'s
            convention), set to ``-inf`` before the softmax where False; or a float
            tensor added to the scores.
        scale: the factor of the scores, by default ``1 / sqrt(d_k)``.
    Returns:
        ``(out, weights)``: (..., T_q, d_v) and (..., T_q, T_k), each row of ``weights``
        a probability distribution over the keys.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale             # (..., T_q, T_k)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = softmax(scores, dim=-1)                    # (..., T_q, T_k)
    return weights @ v, weights                          # (..., T_q, d_v)


def causal_mask(T_q: int, T_k: int | None = None, device=None) -> torch.Tensor:
    """Boolean (T_q, T_k), True where query i may see key j: ``j <= i + T_k - T_q``.

    The queries are the *last* ``T_q`` of ``T_k`` positions (bottom-right aligned),
    which is what a key-value cache needs: one new query sees every cached key. With
    ``T_q == T_k`` it is the lower triangle. (``F.scaled_dot_product_attention(...,
    is_causal=True)`` aligns the triangle top-left instead, which differs when
    ``T_q < T_k``.)
    """
    T_k = T_q if T_k is None else T_k
    ones = torch.ones(T_q, T_k, dtype=torch.bool, device=device)
    return ones.tril(diagonal=T_k - T_q)


def padding_mask(lengths, T: int, device=None) -> torch.Tensor:
    """Boolean (B, 1, 1, T), True at the first ``lengths[b]`` positions of sequence b.

    Broadcast against scores (B, h, T_q, T_k), it hides the padded *keys* of each
    sequence from every query; the outputs at padded query positions are computed but
    meaningless, and a loss must ignore them.
    """
    lengths = torch.as_tensor(lengths, device=device)
    keep = torch.arange(T, device=device)[None, :] < lengths[:, None]   # (B, T)
    return keep[:, None, None, :]


# ---------------------------------------------------------------- multi-head attention
def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, h, T, C / h): feature ``c`` goes to head ``c // d_k``."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)   # (B, h, T, d_k)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, T, d_k) -> (B, T, h d_k), the inverse of ``split_heads``."""
    B, h, T, d_k = x.shape
    return x.transpose(1, 2).reshape(B, T, h * d_k)             # (B, T, C)


def mha_param_count(d_model: int, bias: bool = True) -> int:
    """Parameters of multi-head self-attention: ``4 C^2 (+ 4 C)``, whatever ``h`` is."""
    return 4 * d_model * d_model + (4 * d_model if bias else 0)


class KVCache:
    """The keys and values of every layer for the positions read so far.

    Preallocated as ``(n_layer, B, h, max_len, d_k)`` for keys and for values;
    ``length`` positions are filled. Each layer's attention calls ``update`` with the
    keys and values of the new positions and gets back all of them; the model calls
    ``advance`` once all layers have read the new positions.
    """

    def __init__(self, n_layer: int, batch_size: int, n_head: int, max_len: int,
                 d_k: int, device=None, dtype=torch.float32):
        shape = (n_layer, batch_size, n_head, max_len, d_k)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len, self.length = max_len, 0

    def update(self, layer: int, k, v):
        """Store k, v (B, h, T_new, d_k) after the cached ones; return all of them."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KVCache holds {self.max_len} positions, asked for {end}")
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        """Count ``n`` more positions as cached (called once per forward pass)."""
        self.length += n

    def __repr__(self) -> str:
        n_layer, B, h, max_len, d_k = self.k.shape
        return (f"KVCache({self.length}/{max_len} positions, {n_layer} layers, B={B}, "
                f"h={h}, d_k={d_k})")


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention: project to q, k, v, split into heads, attend, merge.

    ``qkv`` is one ``Linear(C, 3C)`` whose output rows are [q; k; v] (the layout of
    ``nn.MultiheadAttention.in_proj_weight``), ``proj`` the output projection. With
    ``fast=True`` the attention itself is ``F.scaled_dot_product_attention`` (fused
    kernels); with ``fast=False`` it is ``scaled_dot_product_attention`` above, which
    also returns the weights.
    """

    def __init__(self, d_model: int, n_head: int, bias: bool = True,
                 dropout: float = 0.0, rope: bool = False, fast: bool = True):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model = {d_model} is not a multiple of "
                             f"n_head = {n_head}")
        self.d_model, self.n_head, self.d_k = d_model, n_head, d_model // n_head
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout, self.rope, self.fast = dropout, rope, fast

    def forward(self, x, mask=None, causal: bool = False, cache: KVCache | None = None,
                layer: int = 0, need_weights: bool = False):
        """x (B, T, C) -> (B, T, C), and the weights (B, h, T, T_k) if ``need_weights``.

        Args:
            mask: boolean, True = may attend, broadcastable to (B, h, T, T_k).
            causal: add the causal mask (bottom-right aligned when a cache holds
                earlier positions).
            cache: a ``KVCache`` holding the earlier positions; ``layer`` is this
                layer's index in it.
        """
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)            # (B, T, C) each
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, h, T, d_k)
        start = cache.length if cache is not None else 0
        if self.rope:                                    # rotate q and k by position
            positions = torch.arange(start, start + T, device=x.device)
            q, k = apply_rope(q, positions), apply_rope(k, positions)
        if cache is not None:
            k, v = cache.update(layer, k, v)             # (B, h, start + T, d_k)
        T_k = k.shape[2]
        fused = self.fast and not need_weights
        is_causal = causal and mask is None and T == T_k and fused  # the fused triangle
        if causal and not is_causal:
            tri = causal_mask(T, T_k, device=x.device)   # (T, T_k)
            mask = tri if mask is None else mask & tri
        dropout = self.dropout if self.training else 0.0
        if fused:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=dropout, is_causal=is_causal)
            weights = None
        else:
            y, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, T, d_k)
            if dropout:
                y = F.dropout(weights, dropout) @ v
        y = self.proj(merge_heads(y))                    # (B, T, C)
        return (y, weights) if need_weights else y


def copy_to_torch_mha(ours: MultiHeadAttention, mha: nn.MultiheadAttention) -> None:
    """Copy our weights into ``nn.MultiheadAttention`` (same layout: rows q, k, v)."""
    with torch.no_grad():
        mha.in_proj_weight.copy_(ours.qkv.weight)                # (3C, C)
        mha.in_proj_bias.copy_(ours.qkv.bias)                    # (3C,)
        mha.out_proj.weight.copy_(ours.proj.weight)              # (C, C)
        mha.out_proj.bias.copy_(ours.proj.bias)


def copy_from_torch_mha(mha: nn.MultiheadAttention, ours: MultiHeadAttention) -> None:
    """Copy ``nn.MultiheadAttention``'s weights into ours."""
    with torch.no_grad():
        ours.qkv.weight.copy_(mha.in_proj_weight)
        ours.qkv.bias.copy_(mha.in_proj_bias)
        ours.proj.weight.copy_(mha.out_proj.weight)
        ours.proj.bias.copy_(mha.out_proj.bias)


# ------------------------------------------------------------- positional information
def sinusoidal_encoding(T: int, d_model: int, base: float = 10000.0,
                        dtype=torch.float32) -> torch.Tensor:
    """Vaswani et al.'s positional encodings, (T, d_model).

    ``PE[p, 2i] = sin(p w_i)``, ``PE[p, 2i + 1] = cos(p w_i)``, ``w_i = base^(-2i/d)``:
    each pair of columns is a point turning on a circle at its own frequency, so
    ``PE[p + k]`` is ``PE[p]`` rotated by the angles ``k w_i``, whatever ``p`` is.
    """
    if d_model % 2:
        raise ValueError(f"d_model must be even, got {d_model}")
    position = torch.arange(T, dtype=torch.float64)[:, None]            # (T, 1)
    omega = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = position * omega                                           # (T, d/2)
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)   # (T, d)
    return pe.to(dtype)


def rope_frequencies(d_k: int, base: float = 10000.0, dtype=torch.float64):
    """RoPE's angle per position of each feature pair, ``omega_i = base^(-2i/d_k)``."""
    if d_k % 2:
        raise ValueError(f"d_k must be even, got {d_k}")
    return base ** (-torch.arange(0, d_k, 2, dtype=dtype) / d_k)         # (d_k/2,)


def apply_rope(x: torch.Tensor, positions, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021): pair i turned by ``t omega_i``.

    Args:
        x: (..., T, d_k), queries or keys; pairs are features (2i, 2i + 1), the
            paper's layout (GPT-NeoX and Hugging Face pair feature i with i + d_k/2).
        positions: (T,) integer positions of the T rows.
    Returns:
        A tensor like ``x``. ``<rope(q, m), rope(k, n)>`` depends on ``n - m`` only.
    """
    omega = rope_frequencies(x.shape[-1], base).to(x.device)
    positions = torch.as_tensor(positions, device=x.device).to(torch.float64)
    angles = positions[:, None] * omega[None, :]                        # (T, d_k/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]                      # (..., T, d_k/2) each
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.flatten(-2)                                          # (..., T, d_k)


# ---------------------------------------------------------------------- the tiny GPT
@dataclass
class GPTConfig:
    """The shape of a GPT; nanoGPT's Shakespeare model is
    ``GPTConfig(65, 256, 6, 6, 384, dropout=0.2, bias=False)``."""

    vocab_size: int = 65
    block_size: int = 128       # T_max: the longest context the model reads
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.0
    bias: bool = True           # biases in the Linear layers and LayerNorms
    pos_encoding: str = "learned"  # "learned" (GPT-2), "sinusoidal" or "rope"
    tie_weights: bool = True    # the output layer reuses the token embedding (GPT-2)


class MLP(nn.Module):
    """The position-wise feed-forward network: Linear(C, 4C), GELU, Linear(4C, C)."""

    def __init__(self, d_model: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model, bias=bias)
        self.proj = nn.Linear(4 * d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        """(B, T, C) -> (B, T, C); exact GELU (erf), PyTorch's default."""
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LN Transformer block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.d_model
        self.ln_1 = nn.LayerNorm(C, bias=config.bias)
        self.attn = MultiHeadAttention(C, config.n_head, config.bias, config.dropout,
                                       rope=config.pos_encoding == "rope")
        self.ln_2 = nn.LayerNorm(C, bias=config.bias)
        self.mlp = MLP(C, config.bias, config.dropout)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None, layer: int = 0, need_weights: bool = False):
        """x (B, T, C) -> (B, T, C), and the attention weights if ``need_weights``."""
        out = self.attn(self.ln_1(x), causal=True, cache=cache, layer=layer,
                        need_weights=need_weights)
        a, weights = out if need_weights else (out, None)
        x = x + self.dropout(a)                          # residual: the identity path
        x = x + self.mlp(self.ln_2(x))
        return x, weights


class GPT(nn.Module):
    """A decoder-only Transformer language model (GPT-2's layout, nanoGPT's code shape).

    ids (B, T) -> token embedding (+ position) -> ``n_layer`` blocks -> LayerNorm ->
    logits (B, T, V). Initialization as GPT-2: weights N(0, 0.02), biases 0, and the
    projections that write into the residual stream N(0, 0.02 / sqrt(2 n_layer)), so
    that the sum of 2 n_layer residual branches starts with the variance of one.

    Example:
        >>> model = GPT(GPTConfig(vocab_size=65, block_size=32, n_layer=2, d_model=64))
        >>> logits = model(torch.zeros(3, 10, dtype=torch.long))   # (3, 10, 65)
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.pos_encoding not in ("learned", "sinusoidal", "rope"):
            raise ValueError(f"unknown pos_encoding {config.pos_encoding!r}")
        self.config = config
        C = config.d_model
        self.wte = nn.Embedding(config.vocab_size, C)
        if config.pos_encoding == "learned":
            self.wpe = nn.Embedding(config.block_size, C)
        elif config.pos_encoding == "sinusoidal":
            self.register_buffer("pe", sinusoidal_encoding(config.block_size, C),
                                 persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.head = nn.Linear(C, config.vocab_size, bias=False)
        if config.tie_weights:
            self.head.weight = self.wte.weight           # one (V, C) matrix, two uses
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx, cache: KVCache | None = None, need_weights: bool = False):
        """ids (B, T) -> logits (B, T, V); with ``need_weights``, also each layer's
        attention weights, a list of (B, h, T, T_k). With a ``cache``, ``idx`` holds the
        positions after the cached ones."""
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"{start + T} positions, more than block_size = "
                             f"{self.config.block_size}")
        x = self.wte(idx)                                # (B, T, C)
        if self.config.pos_encoding == "learned":
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device))
        elif self.config.pos_encoding == "sinusoidal":
            x = x + self.pe[start:start + T]
        x = self.drop(x)
        maps = []
        for layer, block in enumerate(self.blocks):
            x, weights = block(x, cache, layer, need_weights)
            maps.append(weights)
        if cache is not None:
            cache.advance(T)
        logits = self.head(self.ln_f(x))                 # (B, T, V)
        return (logits, maps) if need_weights else logits

    def new_cache(self, batch_size: int = 1) -> KVCache:
        """An empty ``KVCache`` for this model, on its device and in its dtype."""
        c, p = self.config, self.wte.weight
        return KVCache(c.n_layer, batch_size, c.n_head, c.block_size,
                       c.d_model // c.n_head, p.device, p.dtype)

    def num_parameters(self) -> int:
        """Parameters, a tied matrix counted once (``parameters()`` yields it once)."""
        return sum(p.numel() for p in self.parameters())

    def __repr__(self) -> str:
        c = self.config
        return (f"GPT({c.n_layer} layers, {c.n_head} heads, d_model={c.d_model}, "
                f"block_size={c.block_size}, {c.pos_encoding} positions, "
                f"{self.num_parameters():,} parameters)")


def block_param_count(d_model: int, bias: bool = True) -> int:
    """Parameters of one block: ``12 C^2 + 13 C`` with biases, ``12 C^2 + 2 C`` without.

    Attention ``4 C^2 (+ 4C)``, MLP ``8 C^2 (+ 4C + C)``, two LayerNorms
    ``2 C (+ 2 C)``.
    """
    C = d_model
    return 12 * C * C + (13 * C if bias else 2 * C)


def gpt_param_count(config: GPTConfig) -> int:
    """Parameters of ``GPT(config)`` from its sizes (the formula the lesson derives)."""
    c = config
    n = c.vocab_size * c.d_model                         # token embedding
    n += c.block_size * c.d_model if c.pos_encoding == "learned" else 0
    n += c.n_layer * block_param_count(c.d_model, c.bias)
    n += 2 * c.d_model if c.bias else c.d_model          # final LayerNorm
    n += 0 if c.tie_weights else c.vocab_size * c.d_model
    return n


def gpt_train_flops_per_token(config: GPTConfig) -> float:
    """Training FLOPs per token: ``6 N + 12 n_layer T C`` (backward = 2 forwards).

    ``N`` counts every weight a token is multiplied by (the blocks and the output layer;
    embeddings are lookups). The attention scores ``q k^T`` and the product with ``v``
    cost ``2 T C`` each per token in the forward pass, for all ``T`` keys as dense
    kernels compute them; Kaplan et al. (2020) count ``6 N + 6 n_layer T C``, the causal
    half.
    """
    c = config
    matmul_params = c.n_layer * 12 * c.d_model * c.d_model + c.vocab_size * c.d_model
    return 6.0 * matmul_params + 12.0 * c.n_layer * c.block_size * c.d_model


def gru_train_flops_per_char(vocab_size: int, hidden_size: int, embed_dim: int,
                             num_layers: int = 1) -> float:
    """Training FLOPs per character of lesson 04's GRU ``CharLM``: ``6 N``.

    ``N = 3 H E + 3 H H + V H`` for one layer: the input and recurrent products of the
    three gates and the readout, each multiply-add 2 FLOPs forward and 4 backward; each
    further layer reads H features, ``+ 6 H H``.
    """
    H, E, V = hidden_size, embed_dim, vocab_size
    return 6.0 * (3 * H * E + 3 * H * H + 6 * H * H * (num_layers - 1) + V * H)


# -------------------------------------------------------------------------- training
@dataclass
class GPTTrainConfig:
    """Every knob of ``train_gpt`` (nanoGPT's recipe); budgets in steps."""

    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3            # peak learning rate
    min_lr: float = 2e-4        # end of the cosine decay
    warmup_steps: int = 100
    weight_decay: float = 0.1   # on matrices only (not biases, LayerNorms)
    betas: tuple[float, float] = (0.9, 0.99)  # beta2 0.99: few tokens/step (nanoGPT)
    max_norm: float | None = 1.0
    eval_every: int = 250       # validation loss every this many steps (and at the end)
    eval_chars: int | None = 30_000  # validation characters per evaluation; None: all
    eval_batch_size: int = 64   # streams the validation text is cut into (evaluate_lm)
    seed: int = 0               # the random windows
    use_amp: bool = True        # bf16 (or fp16 + loss scaling) autocast on CUDA
    compile: bool = False       # torch.compile the training forward pass


def random_windows(ids, batch_size: int, block_size: int, generator, device="cpu"):
    """A batch of windows at random places (nanoGPT's ``get_batch``): x, y (B, T) each.

    ``y`` is ``x`` shifted by one: the target of every position is the next character.
    """
    ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    start = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = ids[start[:, None] + offsets]                    # (B, T)
    y = ids[start[:, None] + offsets + 1]
    return x.to(device), y.to(device)


@torch.no_grad()
def evaluate_gpt(model: GPT, ids, batch_size: int = 64, device="cpu",
                 max_chars: int | None = None, stride: int | None = None,
                 use_amp: bool = True) -> float:
    """Mean loss (nats/char) on ``ids``, on the characters ``rnn.evaluate_lm`` scores.

    The text (its first ``max_chars`` characters) is cut into the same ``batch_size``
    streams (``rnn.stream_batches``), and every character of a stream but the first is
    predicted once, from the ``block_size`` characters before it at most: windows of
    ``block_size`` slide by ``stride`` (default ``block_size // 2``) and each scores
    only its characters not scored yet, so each prediction has at least
    ``block_size - stride`` characters of context (fewer only at a stream's start).
    """
    was_training = model.training
    model.eval()
    T = model.config.block_size
    stride = stride or T // 2
    ids = ids[:max_chars] if max_chars else ids
    streams = stream_batches(ids, batch_size).to(device)        # (S, L)
    L = streams.shape[1]
    total, count, done, end = 0.0, 0, 0, min(T, L - 1)
    while True:
        begin = max(0, end - T)
        x, y = streams[:, begin:end], streams[:, begin + 1:end + 1]   # (S, <= T)
        with autocast(torch.device(device)) if use_amp else contextlib.nullcontext():
            logits = model(x)                                    # (S, T, V)
        new = done - begin                                       # skip scored targets
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # not bf16
        total += F.cross_entropy(logits[:, new:].flatten(0, 1),
                                 y[:, new:].flatten(), reduction="sum").item()
        count += y[:, new:].numel()
        done = end
        if end == L - 1:
            break
        end = min(end + stride, L - 1)
    model.train(was_training)
    return total / count


def _adamw(model: nn.Module, cfg: GPTTrainConfig, device):
    """AdamW with weight decay on the matrices only (nanoGPT's parameter groups)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = torch.device(device).type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused)


def train_gpt(model: GPT, train_ids, val_ids, config: GPTTrainConfig, device,
              on_eval=None) -> LMHistory:
    """Train a GPT on random windows of ``block_size`` characters; an ``LMHistory``.

    AdamW (decay on matrices), lesson 01's warmup + cosine schedule, the global
    gradient norm clipped to ``max_norm``; on CUDA, autocast to bf16 (fp16 with loss
    scaling on GPUs without bf16) and optionally ``torch.compile``. Every
    ``eval_every`` steps, ``evaluate_gpt`` on the first ``eval_chars`` validation
    characters, then ``on_eval(step, model)``. ``history.seconds`` is training time
    only (evaluations excluded).
    """
    cfg = config
    device = torch.device(device)
    model.to(device).train()
    forward = torch.compile(model) if cfg.compile else model  # shares the parameters
    optimizer = _adamw(model, cfg, device)
    amp = cfg.use_amp and device.type == "cuda"
    scaler = grad_scaler(device) if amp else torch.amp.GradScaler("cuda", enabled=False)
    generator = torch.Generator().manual_seed(cfg.seed)
    max_norm = cfg.max_norm if cfg.max_norm is not None else math.inf
    T = model.config.block_size
    history = LMHistory()
    trained, chars = 0.0, 0
    for step in range(cfg.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        x, y = random_windows(train_ids, cfg.batch_size, T, generator, device)
        lr = cosine_warmup(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(device) if amp else contextlib.nullcontext():
            logits = forward(x)                                  # (B, T, V)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)                               # clip true gradients
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.step(optimizer)
        scaler.update()
        history.step.append(step)
        history.train_loss.append(loss.item())                   # syncs with the GPU
        history.grad_norm.append(float(grad_norm))
        history.lr.append(lr)
        trained += time.perf_counter() - start
        chars += y.numel()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            history.val_step.append(step + 1)
            history.val_loss.append(evaluate_gpt(model, val_ids, cfg.eval_batch_size,
                                                 device, cfg.eval_chars,
                                                 use_amp=cfg.use_amp))
            if on_eval is not None:
                on_eval(step + 1, model)
            model.train()
    history.seconds = trained
    history.tokens_per_s = chars / max(trained, 1e-9)
    return history


# ------------------------------------------------------------------------ generation
@torch.no_grad()
def generate_ids(model: GPT, idx, num_new: int, temperature: float = 1.0,
                 top_k: int | None = None, generator=None, use_cache: bool = True):
    """Append ``num_new`` sampled ids to ``idx`` (B, P): LongTensor (B, P + num_new).

    Without a cache (nanoGPT's ``generate``), every step runs the model on the last
    ``block_size`` ids and keeps the last position's logits: the keys and values of all
    earlier positions are computed again at every step. With ``use_cache``, the prompt
    is read once (the "prefill") and each step runs the model on the one new id, its
    keys and values appended to a ``KVCache``. The two give the same logits while the
    text fits in ``block_size``; beyond it, learned absolute positions cannot slide, so
    the cached version starts again from the last ``block_size // 2`` ids (one prefill
    per ``block_size // 2`` new ids), where the uncached one re-reads the last
    ``block_size`` at every step. Draws happen on the CPU with ``rnn.sample_next``.
    """
    was_training = model.training
    model.eval()
    T_max = model.config.block_size
    idx = torch.as_tensor(idx)
    device = model.wte.weight.device
    out = idx.to(device)
    if use_cache:
        cache = model.new_cache(out.shape[0])
        logits = model(out[:, -T_max:], cache)[:, -1]           # prefill: (B, V)
    for _ in range(num_new):
        if not use_cache:
            logits = model(out[:, -T_max:])[:, -1]             # recompute: (B, V)
        next_id = sample_next(logits.float().cpu(), temperature, top_k, generator)
        out = torch.cat([out, next_id.to(device)[:, None]], dim=1)
        if use_cache:
            if cache.length == T_max:                          # full: start again
                cache = model.new_cache(out.shape[0])
                logits = model(out[:, -(T_max // 2):], cache)[:, -1]
            else:
                logits = model(out[:, -1:], cache)[:, -1]      # one new position
    model.train(was_training)
    return out


def generate(model: GPT, vocab: Vocab, prompt: str, num_chars: int,
             temperature: float = 1.0, top_k: int | None = None, generator=None,
             use_cache: bool = True) -> str:
    """``prompt`` and ``num_chars`` characters sampled from ``model`` (see
    ``generate_ids``); deterministic for a seeded CPU ``generator``."""
    idx = torch.as_tensor(vocab.encode(prompt))[None]           # (1, P)
    out = generate_ids(model, idx, num_chars, temperature, top_k, generator, use_cache)
    return vocab.decode(out[0].cpu())


# ----------------------------------------------------------------------------- Keras
def torch_mha_to_keras(ours: MultiHeadAttention) -> list[np.ndarray]:
    """Our attention's weights as ``keras.layers.MultiHeadAttention`` weights.

    Keras keeps one kernel per projection with the heads as an axis: query, key and
    value kernels (C, h, d_k) and biases (h, d_k), the output kernel (h, d_k, C) and
    bias (C,), in that order. Ours are ``Linear`` weights (out, in): transpose, then
    split the output features into heads exactly as ``split_heads`` does.
    """
    C, h, d_k = ours.d_model, ours.n_head, ours.d_k
    W = ours.qkv.weight.detach().cpu().numpy()                  # (3C, C): rows q, k, v
    b = _bias(ours.qkv)                                         # (3C,)
    weights = []
    for i in range(3):                                          # q, k, v
        weights.append(W[i * C:(i + 1) * C].T.reshape(C, h, d_k))   # (C, h, d_k)
        weights.append(b[i * C:(i + 1) * C].reshape(h, d_k))        # (h, d_k)
    W_o = ours.proj.weight.detach().cpu().numpy()               # (C, C) = (out, h d_k)
    weights.append(W_o.T.reshape(h, d_k, C))                    # (h, d_k, C)
    weights.append(_bias(ours.proj))                            # (C,)
    return weights


def _bias(layer) -> np.ndarray:
    """A Linear's or LayerNorm's bias as NumPy, zeros where it has none (bias=False)."""
    if layer.bias is None:
        return np.zeros(layer.weight.shape[0], dtype=np.float32)
    return layer.bias.detach().cpu().numpy()


def keras_block(d_model: int, n_head: int, eps: float = 1e-5):
    """One pre-LN Transformer block in Keras 3 (causal): (B, T, C) -> (B, T, C).

    ``LayerNormalization(epsilon=1e-5)`` (Keras's default 1e-3 is not PyTorch's 1e-5)
    and the exact, erf-based GELU (``approximate=False``), as ``nn.GELU()`` computes.
    """
    import keras
    from keras import layers

    x = keras.Input(shape=(None, d_model), name="x")
    h = layers.LayerNormalization(epsilon=eps, name="ln_1")(x)
    a = layers.MultiHeadAttention(n_head, d_model // n_head, name="attn")(
        h, h, use_causal_mask=True)                                  # (B, T, C)
    y = layers.Add()([x, a])
    h = layers.LayerNormalization(epsilon=eps, name="ln_2")(y)
    h = layers.Dense(4 * d_model, name="fc")(h)                       # (B, T, 4C)
    h = layers.Activation(lambda t: keras.activations.gelu(t, approximate=False),
                          name="gelu")(h)
    h = layers.Dense(d_model, name="proj")(h)                         # (B, T, C)
    return keras.Model(x, layers.Add()([y, h]), name="block")


def copy_block_to_keras(block: Block, keras_model) -> None:
    """Copy a PyTorch ``Block`` into ``keras_block``'s layers (missing biases as 0)."""
    for name in ("ln_1", "ln_2"):
        ln = getattr(block, name)
        gamma = ln.weight.detach().cpu().numpy()
        keras_model.get_layer(name).set_weights([gamma, _bias(ln)])
    keras_model.get_layer("attn").set_weights(torch_mha_to_keras(block.attn))
    for name in ("fc", "proj"):
        linear = getattr(block.mlp, name)
        kernel = linear.weight.detach().cpu().numpy().T            # (in, out)
        keras_model.get_layer(name).set_weights([kernel, _bias(linear)])
