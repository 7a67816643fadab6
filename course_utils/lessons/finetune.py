"""Transfer learning and fine-tuning: a pretrained sentence encoder on SST-2, 3 ways.

Taught in lesson 06 (``notebooks/06_fine_tuning.ipynb``), which writes the pooling, the
corpus embedding and the LoRA layer in the open first and then says they are this code;
the rest (freezing, injection, the training loop, drift, the Keras head) it uses and
explains. Every function names the lesson that teaches it.

Notation (``book/notation.md``): ``B`` batch size, ``T`` tokens per sentence (padded),
``C`` the encoder's width :math:`d_\\text{model}` (384 for all-MiniLM-L6-v2). Token ids
and attention masks are ``(B, T)``, token states ``(B, T, C)``, sentence embeddings
``(B, C)``, logits ``(B, num_classes)``. A LoRA adapter of a ``Linear(d_in, d_out)`` is
``W_A`` ``(r, d_in)`` and ``W_B`` ``(d_out, r)`` (peft's ``lora_A`` and ``lora_B``),
scaled by ``alpha / r`` (the notation page writes ``alpha_LoRA``: a plain alpha is a
label-smoothing strength).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..pretrained import mean_pool
from ..runtime import autocast, grad_scaler

__all__ = [
    "mean_pool", "cls_pool", "padded_mean_pool", "embed", "predict_logits",
    "LoRALinear", "inject_lora", "merge_lora", "unmerge_lora", "load_peft_lora",
    "freeze", "count_parameters", "trainable_state_bytes", "SentenceClassifier",
    "linear_warmup_decay", "length_grouped_batches", "FineTuneConfig",
    "FineTuneHistory", "train_classifier", "activation_bytes", "training_memory",
    "embedding_drift", "train_head", "keras_head", "copy_head_to_keras",
]


# ---------------------------------------------------------------------------- pooling
def cls_pool(last_hidden_state, attention_mask):
    """The first token's state, [CLS], as the sentence embedding: (B, T, C) -> (B, C)
    (lesson 06)."""
    return last_hidden_state[:, 0]


def padded_mean_pool(last_hidden_state, attention_mask):
    """The classic bug, shown in lesson 06: the mean over all T positions, padding
    included: (B, T, C) -> (B, C)."""
    return last_hidden_state.mean(dim=1)                    # (B, C)


def embed(encoder, tokenizer, texts, batch_size=128, max_length=128, pool=mean_pool,
          sort_by_length=True, device=None):
    """Sentence embeddings of texts, (N, C) float32 on the CPU, in the order given.

    pool maps (hidden (B, T, C), mask (B, T)) to (B, C); a dict of them gives a dict of
    embeddings from the same forward passes. Sorting by length makes each batch pad
    little (lesson 06).
    """
    device = device or next(encoder.parameters()).device
    pools = pool if isinstance(pool, dict) else {"": pool}
    order = np.argsort([len(t) for t in texts], kind="stable") if sort_by_length \
        else np.arange(len(texts))
    out = {name: torch.empty(len(texts), encoder.config.hidden_size) for name in pools}
    was_training = encoder.training
    encoder.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            with autocast(device):
                hidden = encoder(input_ids=batch["input_ids"],
                                 attention_mask=batch["attention_mask"]
                                 ).last_hidden_state          # (B, T, C)
            for name, fn in pools.items():
                out[name][idx] = fn(hidden.float(), batch["attention_mask"]).cpu()
    encoder.train(was_training)
    return out if isinstance(pool, dict) else out[""]


def predict_logits(model, tokenizer, texts, batch_size: int = 128,
                   max_length: int = 128, device=None) -> torch.Tensor:
    """Logits (N, num_classes) of a ``SentenceClassifier`` on texts, in the order given,
    in evaluation mode, from batches sorted by length (lesson 06)."""
    device = device or next(model.parameters()).device
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = None
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            with autocast(device):
                logits = model(batch["input_ids"], batch["attention_mask"]).float()
            if out is None:
                out = torch.empty(len(texts), logits.shape[1])
            out[idx] = logits.cpu()
    model.train(was_training)
    return out


# ------------------------------------------------------------------------------- LoRA
class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update (Hu et al. 2021).

    y = W x + b + (alpha / r) W_B W_A x, with W_A (r, d_in) and W_B (d_out, r) = 0 at
    the start, so the layer starts as the pretrained one (lesson 06).
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0,
                 dropout: float = 0.0):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)                          # W and b stay pretrained
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))   # W_A (r, d_in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))  # W_B (d_out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's, peft's
        self.dropout = nn.Dropout(dropout)
        self.merged = False                                   # W_B W_A added into W?

    def forward(self, x):
        """x (..., d_in) -> (..., d_out)."""
        y = self.base(x)                                      # W x + b
        if self.merged:
            return y                                          # W already holds it
        z = self.dropout(x) @ self.lora_A.T                   # (..., r)
        return y + self.scaling * (z @ self.lora_B.T)         # (..., d_out)

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


def _is_target(name: str, targets) -> bool:
    """peft's rule: a module name equal to a target or ending in '.' + target."""
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_lora(model: nn.Module, targets=("query", "value"), r: int = 8,
                alpha: float = 16.0, dropout: float = 0.0) -> list[str]:
    """Replace each nn.Linear whose name matches a target by a ``LoRALinear`` around it.

    Only the ``lora_A``/``lora_B`` of the new layers are trainable afterwards in them;
    call ``freeze(model)`` first to freeze everything else (lesson 06).

    Returns:
        The names of the adapted modules, in the model's order.
    Example:
        >>> freeze(encoder)  # doctest: +SKIP
        >>> names = inject_lora(encoder, ["query", "value"])  # doctest: +SKIP
    """
    names = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and _is_target(name, targets)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return names


def merge_lora(model: nn.Module) -> nn.Module:
    """W <- W + (alpha / r) W_B W_A in every unmerged ``LoRALinear`` of model: the same
    function, with no extra matrix products at inference (lesson 06)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear) and not m.merged:
                m.base.weight += m.scaling * (m.lora_B @ m.lora_A)  # (d_out, d_in)
                m.merged = True
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo ``merge_lora``: W <- W - (alpha / r) W_B W_A, up to rounding (lesson 06)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear) and m.merged:
                m.base.weight -= m.scaling * (m.lora_B @ m.lora_A)
                m.merged = False
    return model


def load_peft_lora(model: nn.Module, peft_model, adapter: str = "default") -> int:
    """Copy peft's ``lora_A``/``lora_B`` weights into the ``LoRALinear`` layers of model
    with the same names (model adapted by ``inject_lora`` from the same base); returns
    the number of layers copied (lesson 06)."""
    ours = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    copied = 0
    for name, m in peft_model.named_modules():
        if not (hasattr(m, "lora_A") and adapter in getattr(m, "lora_A", {})):
            continue
        key = name.removeprefix("base_model.model.")
        if key not in ours:
            continue
        with torch.no_grad():
            ours[key].lora_A.copy_(m.lora_A[adapter].weight)
            ours[key].lora_B.copy_(m.lora_B[adapter].weight)
        ours[key].scaling = m.scaling[adapter]
        copied += 1
    return copied


# ------------------------------------------------------------ freezing and counting
def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on every parameter of module (lesson 06)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) numbers of parameters, each shared tensor counted once
    (lesson 06)."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def trainable_state_bytes(model: nn.Module) -> int:
    """Bytes of the trainable parameters: what must be saved next to the public
    pretrained checkpoint to rebuild the tuned model (lesson 06)."""
    return sum(p.numel() * p.element_size() for p in model.parameters()
               if p.requires_grad)


# ------------------------------------------------------------------- the classifier
class SentenceClassifier(nn.Module):
    """An encoder, masked mean pooling and a linear head: ids (B, T) -> logits (B, K)
    (lesson 06)."""

    def __init__(self, encoder: nn.Module, num_classes: int = 2, dropout: float = 0.0):
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask
                              ).last_hidden_state                    # (B, T, C)
        return self.head(self.dropout(mean_pool(hidden, attention_mask)))  # (B, K)


# ------------------------------------------------------------------ training loop
def linear_warmup_decay(t: int, lr_max: float, warmup_steps: int,
                        total_steps: int) -> float:
    """Learning rate at update t: the course's warmup lr_max (t + 1) / T_w for t < T_w,
    then a straight line from lr_max at t = T_w to 0 at t = T (lesson 06; BERT's
    schedule, book/notation.md's warmup convention)."""
    if t < warmup_steps:
        return lr_max * (t + 1) / warmup_steps
    return lr_max * max(0.0, (total_steps - t) / max(total_steps - warmup_steps, 1))


def length_grouped_batches(lengths, batch_size: int, seed: int = 0):
    """Endless batches of indices whose examples have nearly the same length.

    Each pass sorts the examples by length (ties broken at random), cuts the order into
    batches and shuffles the batches: padding, and so compute, falls several-fold for
    sentences of very different lengths (lesson 06). The last incomplete batch of a pass
    is dropped.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    rng = np.random.default_rng(seed)
    while True:
        order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
        chunks = [order[i:i + batch_size]
                  for i in range(0, len(order) - batch_size + 1, batch_size)]
        for j in rng.permutation(len(chunks)):
            yield chunks[j]


@dataclass
class FineTuneConfig:
    """Every knob of ``train_classifier`` (lesson 06); budgets in steps (updates)."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 1e-4            # peak learning rate of AdamW
    warmup_fraction: float = 0.1  # T_w = warmup_fraction * steps (at least 1)
    weight_decay: float = 0.01  # on matrices only, not on biases and LayerNorm gains
    max_norm: float = 1.0       # clipping by global norm (lesson 04)
    max_length: int = 64        # tokens per sentence, [CLS] and [SEP] included
    eval_every: int = 200       # validation accuracy every this many steps and last
    seed: int = 0               # batch order


@dataclass
class FineTuneHistory:
    """What ``train_classifier`` measured (lesson 06)."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)  # before clipping
    tokens: list[int] = field(default_factory=list)       # B * T of each batch, padded
    val_step: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0        # training time, evaluations excluded
    peak_memory_bytes: int | None = None  # torch.cuda.max_memory_allocated on CUDA

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(len(self.step), 1)

    def __repr__(self) -> str:
        if not self.step:
            return "FineTuneHistory(no steps)"
        val = f", val_accuracy={self.val_accuracy[-1]:.4f}" if self.val_accuracy else ""
        return (f"FineTuneHistory({len(self.step)} steps, loss={self.loss[-1]:.4f}"
                f"{val}, {self.seconds_per_step:.3f} s/step)")


def _adamw(model: nn.Module, cfg: FineTuneConfig) -> torch.optim.AdamW:
    """AdamW on the trainable parameters, weight decay on matrices (ndim >= 2) only."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2],
               "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)


def train_classifier(model, tokenizer, texts, labels, config: FineTuneConfig, device,
                     val_texts=None, val_labels=None) -> FineTuneHistory:
    """Fine-tune a ``SentenceClassifier`` (its trainable parameters) on texts, labels.

    Batches of similar length (``length_grouped_batches``), cross-entropy, AdamW with
    weight decay on matrices, linear warmup then linear decay to 0
    (``linear_warmup_decay``), gradients clipped to a global norm of ``max_norm``;
    mixed precision on CUDA (``course_utils.runtime.autocast``: bf16 where supported).
    Validation accuracy every ``eval_every`` steps when val_texts are given (lesson 06).
    """
    cfg = config
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _adamw(model, cfg)
    scaler = grad_scaler(device)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                             max_length=cfg.max_length)["input_ids"]]
    batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed)
    warmup_steps = max(1, round(cfg.warmup_fraction * cfg.steps))
    on_cuda = torch.device(device).type == "cuda"
    if on_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    history = FineTuneHistory()
    for step in range(cfg.steps):
        if on_cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        idx = next(batches)
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                          max_length=cfg.max_length, return_tensors="pt").to(device)
        lr = linear_warmup_decay(step, cfg.lr, warmup_steps, cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(device):
            logits = model(batch["input_ids"], batch["attention_mask"])  # (B, K)
        loss = F.cross_entropy(logits.float(), labels[idx].to(device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)                       # clip the true gradients
        grad_norm = nn.utils.clip_grad_norm_(params, cfg.max_norm)
        scaler.step(optimizer)
        scaler.update()
        history.step.append(step)
        history.loss.append(loss.item())
        history.lr.append(lr)
        history.grad_norm.append(float(grad_norm))
        history.tokens.append(batch["input_ids"].numel())
        if on_cuda:
            torch.cuda.synchronize(device)
        history.seconds += time.perf_counter() - start
        if val_texts is not None and ((step + 1) % cfg.eval_every == 0
                                      or step + 1 == cfg.steps):
            logits = predict_logits(model, tokenizer, val_texts, device=device)
            history.val_step.append(step + 1)
            history.val_accuracy.append(
                float((logits.argmax(1).numpy() == np.asarray(val_labels)).mean()))
    if on_cuda:
        history.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device))
    model.eval()
    return history


# --------------------------------------------------------------------------- memory
def activation_bytes(model, *inputs) -> int:
    """Bytes of the tensors autograd saves for the backward pass of model(*inputs): the
    activations, each storage counted once, parameters excluded (lesson 06)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*inputs)
    return sum(storages.values())


def training_memory(model, *inputs) -> dict[str, int]:
    """Memory of one training step of model on inputs, in bytes, by part: the weights,
    the gradients and AdamW's two moments of the trainable parameters, and the saved
    activations; with their ``total`` (lesson 06). An estimate from sizes: allocator
    overhead and temporary buffers are not counted."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = trainable_state_bytes(model)
    parts = {"weights": weights, "gradients": trainable, "adamw_moments": 2 * trainable,
             "activations": activation_bytes(model, *inputs)}
    parts["total"] = sum(parts.values())
    return parts


# ------------------------------------------------------------------------ forgetting
def embedding_drift(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Cosine of each sentence's old and new embedding: (N, C), (N, C) -> (N,); 1 means
    that its direction did not move (lesson 06)."""
    return F.cosine_similarity(old.double(), new.double(), dim=1)


# ------------------------------------------------------------- heads on features
def train_head(head: nn.Module, X, y, epochs: int, batch_size: int, lr: float,
               seed: int = 0, weight_decay: float = 0.0) -> list[float]:
    """Adam on a head over fixed features X (N, C), labels y (N,): one seeded
    permutation per epoch, ``epochs`` passes; returns the loss of every step. Its Keras
    twin (same permutations, same Adam) is in lesson 06."""
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    losses = []
    head.train()
    for _ in range(epochs):
        order = torch.as_tensor(rng.permutation(len(y)))
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(head(X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    head.eval()
    return losses


def keras_head(input_dim: int, num_classes: int = 2, hidden: int | None = None):
    """A Keras 3 classifier head on sentence embeddings: logits out, no softmax; one
    hidden ReLU layer when ``hidden`` is given (lesson 06)."""
    import keras

    layers = [keras.Input(shape=(input_dim,))]
    if hidden:
        layers.append(keras.layers.Dense(hidden, activation="relu", name="hidden"))
    layers.append(keras.layers.Dense(num_classes, name="logits"))
    return keras.Sequential(layers)


def copy_head_to_keras(head: nn.Module, keras_model) -> None:
    """Copy the nn.Linear layers of a torch head, in order, into the Dense layers of a
    ``keras_head`` (Keras stores each kernel transposed: (in, out)) (lesson 06)."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    dense = [layer for layer in keras_model.layers if layer.weights]
    if len(linears) != len(dense):
        raise ValueError(f"{len(linears)} Linear layers but {len(dense)} Dense layers")
    for lin, layer in zip(linears, dense):
        layer.set_weights([lin.weight.detach().cpu().numpy().T,
                           lin.bias.detach().cpu().numpy()])
