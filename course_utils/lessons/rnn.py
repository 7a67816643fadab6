"""Recurrent networks: character language models from NumPy BPTT to cuDNN and Keras.

Taught in lesson 04 (``notebooks/04_recurrent_networks.ipynb``), which writes each
function here in the open first and then says it is this code; its checks use these as
reference oracles.

Notation (``book/notation.md``): ``B`` batch size, ``T`` window length (time steps),
``V`` vocabulary size, ``H`` hidden width, ``E`` embedding width. A window of ids is
``(B, T)``, the logits of a language model ``(B, T, V)``, a hidden state ``(B, H)``
(``(num_layers, B, H)`` in PyTorch's RNN modules). Gate order in the weights: PyTorch's
GRU ``r, z, n``, its LSTM ``i, f, g, o``; Keras's GRU ``z, r, h``.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .optim import cosine_warmup


# ------------------------------------------------------------------- text as numbers
@dataclass(frozen=True)
class Vocab:
    """The characters of a text, sorted; a character's id is its index.

    Example:
        >>> vocab = Vocab.from_text("hello")
        >>> vocab.encode("he").tolist(), vocab.decode([3, 2])
        ([1, 0], 'le')
    """

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        """The vocabulary of every distinct character of ``text``."""
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def stoi(self) -> dict[str, int]:
        """Character -> id."""
        return {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text``: int64 array (N,)."""
        stoi = self.stoi
        return np.fromiter((stoi[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        """The text of a sequence of ids (list, NumPy array or tensor)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return "".join(self.chars[i] for i in ids)

    def __repr__(self) -> str:
        shown = "".join(self.chars[:20]).replace("\n", "\\n")
        return f"Vocab({len(self)} chars: {shown!r}...)"


def split_train_val(ids, train_fraction: float = 0.9):
    """The first ``train_fraction`` of ``ids`` for training, the rest for validation.

    A split by position, not at random: neighbouring characters stay together, and the
    validation text is text the model never saw (nanoGPT's split of Tiny Shakespeare).
    """
    n = int(train_fraction * len(ids))
    return ids[:n], ids[n:]


# ------------------------------------------------------------------ n-gram baselines
def _ngram_index(ids, vocab_size: int, order: int) -> np.ndarray:
    """Flat index of each n-gram (ids[t-order+1], ..., ids[t]) in a (V,)*order table."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids) - order + 1
    index = np.zeros(n, dtype=np.int64)
    for k in range(order):  # the n-gram as one number in base V
        index = index * vocab_size + ids[k:k + n]
    return index


def ngram_counts(ids, vocab_size: int, order: int) -> np.ndarray:
    """How often each n-gram occurs: int64 array of shape ``(V,) * order``.

    ``counts[a, b]`` (order 2) is the number of times character ``b`` follows ``a``.
    """
    index = _ngram_index(ids, vocab_size, order)
    counts = np.bincount(index, minlength=vocab_size ** order)
    return counts.reshape((vocab_size,) * order)


def ngram_log_probs(counts: np.ndarray, pseudo_count: float = 0.1) -> np.ndarray:
    """log P(next | context) with additive smoothing: float64, the shape of ``counts``.

    ``P = (count + a) / (context total + a V)`` with ``a = pseudo_count``: a character
    never seen after a context keeps a small probability, so none costs infinity.
    """
    smoothed = counts.astype(np.float64) + pseudo_count
    return np.log(smoothed / smoothed.sum(axis=-1, keepdims=True))


def ngram_nll(log_probs: np.ndarray, ids) -> float:
    """Mean negative log-likelihood (nats/char) of ``ids`` under an n-gram table.

    Averaged over the positions ``order - 1, ..., N - 1``: the first ``order - 1``
    characters have no full context.
    """
    order, vocab_size = log_probs.ndim, log_probs.shape[0]
    return float(-log_probs.ravel()[_ngram_index(ids, vocab_size, order)].mean())


# ------------------------------------------------------------------- NumPy RNN, BPTT
def init_rnn_params(vocab_size: int, hidden_size: int, seed: int = 0,
                    scale: float | None = None) -> dict:
    """Parameters of a tanh RNN with a linear readout, float64, in PyTorch's shapes.

    ``W_xh (H, V)``, ``W_hh (H, H)``, ``b_h (H,)``, ``W_hy (V, H)``, ``b_y (V,)``;
    entries uniform in ``[-scale, scale]``, by default ``1 / sqrt(H)`` (``nn.RNN``'s).
    """
    rng = np.random.default_rng(seed)
    scale = 1 / math.sqrt(hidden_size) if scale is None else scale
    shapes = {"W_xh": (hidden_size, vocab_size), "W_hh": (hidden_size, hidden_size),
              "b_h": (hidden_size,), "W_hy": (vocab_size, hidden_size),
              "b_y": (vocab_size,)}
    return {name: rng.uniform(-scale, scale, shape) for name, shape in shapes.items()}


def rnn_forward(params: dict, inputs, targets, h0):
    """Forward of a tanh RNN over a window, with a cross-entropy loss at every step.

    ``a_t = W_xh x_t + W_hh h_{t-1} + b_h``, ``h_t = tanh(a_t)``,
    ``s_t = W_hy h_t + b_y``, ``p_t = softmax(s_t)``; ``x_t`` is the one-hot of
    ``inputs[:, t]``, so ``W_xh x_t`` is a column of ``W_xh``.

    Args:
        inputs, targets: int arrays (B, T); ``targets[:, t]`` is the character after
            ``inputs[:, t]``.
        h0: initial state (B, H).
    Returns:
        ``(loss, cache)``: the mean of ``-log p_t[y_t]`` over the ``B T`` positions, and
        what ``rnn_backward`` needs.
    """
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    B, T = inputs.shape
    hs = np.zeros((T + 1,) + h0.shape)                   # hs[t + 1] = h_t, hs[0] = h0
    hs[0] = h0
    probs = np.zeros((T, B, params["W_hy"].shape[0]))    # (T, B, V)
    loss = 0.0
    for t in range(T):
        a = (params["W_xh"][:, inputs[:, t]].T           # column x_t of W_xh: (B, H)
             + hs[t] @ params["W_hh"].T + params["b_h"])
        hs[t + 1] = np.tanh(a)
        s = hs[t + 1] @ params["W_hy"].T + params["b_y"]  # logits (B, V)
        p = np.exp(s - s.max(axis=1, keepdims=True))      # stable softmax
        probs[t] = p / p.sum(axis=1, keepdims=True)
        loss -= np.log(probs[t, np.arange(B), targets[:, t]]).sum()
    cache = {"inputs": inputs, "targets": targets, "hs": hs, "probs": probs}
    return loss / (B * T), cache


def rnn_backward(params: dict, cache: dict) -> dict:
    """Backpropagation through time for ``rnn_forward``: gradients of the mean loss.

    Walks the window backwards, carrying ``dh_next``, the gradient that reaches ``h_t``
    from step ``t + 1`` (through ``W_hh``):

        ``dL/ds_t = (p_t - onehot(y_t)) / (B T)``
        ``dL/dh_t = W_hy^T dL/ds_t + dh_next``
        ``dL/da_t = dL/dh_t * (1 - h_t^2)``,  ``dh_next = W_hh^T dL/da_t``

    Returns:
        A dict with the keys of ``params`` and ``"h0"`` (the gradient w.r.t. ``h0``).
    """
    inputs, targets = cache["inputs"], cache["targets"]
    hs, probs = cache["hs"], cache["probs"]
    B, T = inputs.shape
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dh_next = np.zeros_like(hs[0])                       # (B, H)
    for t in reversed(range(T)):
        ds = probs[t].copy()                             # (B, V)
        ds[np.arange(B), targets[:, t]] -= 1
        ds /= B * T
        grads["W_hy"] += ds.T @ hs[t + 1]
        grads["b_y"] += ds.sum(axis=0)
        dh = ds @ params["W_hy"] + dh_next               # (B, H)
        da = dh * (1 - hs[t + 1] ** 2)                   # tanh' = 1 - tanh^2
        np.add.at(grads["W_xh"].T, inputs[:, t], da)     # column x_t, once per example
        grads["W_hh"] += da.T @ hs[t]
        grads["b_h"] += da.sum(axis=0)
        dh_next = da @ params["W_hh"]
    grads["h0"] = dh_next
    return grads


# -------------------------------------------------------------------- windows, TBPTT
def stream_batches(ids, batch_size: int) -> torch.Tensor:
    """The text cut into ``B`` contiguous streams, one per row: LongTensor (B, N // B).

    Row ``b`` is the ``b``-th piece of the text; the last ``N mod B`` characters are
    dropped. Each row is its own continuous text, so a state carried from one window to
    the next is the state of that very text.
    """
    ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    length = len(ids) // batch_size
    return ids[:batch_size * length].view(batch_size, length)


def tbptt_windows(streams: torch.Tensor, seq_len: int, offset: int = 0):
    """Consecutive windows ``(x, y)`` of the streams, (B, T) each, ``y`` one step on.

    ``x = streams[:, i:i+T]`` and ``y = streams[:, i+1:i+T+1]`` for ``i = offset,
    offset + T, ...``: the target of every position is the next character (teacher
    forcing: the model reads the true text, never its own guesses). The last window may
    be shorter than ``T``.
    """
    length = streams.shape[1]
    for i in range(offset, length - 1, seq_len):
        T = min(seq_len, length - 1 - i)
        yield streams[:, i:i + T], streams[:, i + 1:i + 1 + T]


def training_windows(train_ids, batch_size: int, seq_len: int, seed: int = 0,
                     device="cpu"):
    """Endless training windows ``(x, y, restart)``: the text read again and again.

    A pass reads the ``tbptt_windows`` of ``batch_size`` streams, starting at a random
    offset in ``[0, seq_len)`` (from a generator seeded with ``seed``), so that the
    windows do not always cut the text at the same places. ``restart`` is True for the
    first window of a pass, where the state carried from the end of the text is reset.
    """
    streams = stream_batches(train_ids, batch_size).to(device)
    generator = torch.Generator().manual_seed(seed)
    while True:
        offset = int(torch.randint(seq_len, (1,), generator=generator))
        for i, (x, y) in enumerate(tbptt_windows(streams, seq_len, offset)):
            yield x, y, i == 0


def detach_state(state):
    """The state cut from the previous window's graph: None, a tensor or a tuple.

    Truncated BPTT: the values flow on to the next window, the gradient stops here.
    """
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


# ---------------------------------------------------------------------------- models
class CharLM(nn.Module):
    """A character language model: embedding -> recurrent layer(s) -> linear readout.

    Args:
        cell: ``"rnn"`` (tanh), ``"gru"``, ``"lstm"``, or a module called like
            ``nn.GRU(batch_first=True)`` (e.g. ``ScratchGRU``).
    Example:
        >>> model = CharLM(65, 128, cell="gru")
        >>> logits, state = model(torch.zeros(2, 10, dtype=torch.long))  # (2, 10, 65)
    """

    CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(self, vocab_size: int, hidden_size: int, cell="gru",
                 embed_dim: int = 64, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        if isinstance(cell, str):
            self.cell_type = cell
            self.rnn = self.CELLS[cell](embed_dim, hidden_size, num_layers=num_layers,
                                        batch_first=True, dropout=dropout)
        else:
            self.cell_type = type(cell).__name__
            self.rnn = cell
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):
        """Ids (B, T) and a state (or None) -> logits (B, T, V), the state after T."""
        out, state = self.rnn(self.embed(x), state)      # (B, T, H)
        return self.head(out), state

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return (f"CharLM({self.cell_type}, V={self.vocab_size}, H={self.hidden_size}, "
                f"{n:,} parameters)")


def gru_step(gi, h, weight_hh, bias_hh):
    """One GRU update from ``gi = x W_ih^T + b_ih`` (B, 3H) and the state h (B, H).

    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``,
    ``z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``:
    PyTorch's convention (``nn.GRU`` docs; Cho et al. 2014), the reset gate applied
    after the recurrent product, as cuDNN does. Rows of the weights: gates r, z, n.
    """
    gh = h @ weight_hh.T + bias_hh                       # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=1)                   # (B, H) each
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(i_r + h_r)                         # reset gate
    z = torch.sigmoid(i_z + h_z)                         # update gate
    n = torch.tanh(i_n + r * h_n)                        # candidate state
    return (1 - z) * n + z * h


def _gru_parameters(module, input_size: int, hidden_size: int, suffix: str = ""):
    """weight_ih, weight_hh, bias_ih, bias_hh (+ suffix), PyTorch's shapes and init."""
    shapes = {"weight_ih": (3 * hidden_size, input_size),
              "weight_hh": (3 * hidden_size, hidden_size),
              "bias_ih": (3 * hidden_size,), "bias_hh": (3 * hidden_size,)}
    bound = 1 / math.sqrt(hidden_size)  # PyTorch: U(-1/sqrt(H), 1/sqrt(H)) for all four
    for name, shape in shapes.items():
        weight = torch.empty(shape).uniform_(-bound, bound)
        setattr(module, name + suffix, nn.Parameter(weight))


class GRUCell(nn.Module):
    """One GRU step from scratch, in ``nn.GRUCell``'s convention and parameter layout.

    Parameters ``weight_ih`` (3H, E), ``weight_hh`` (3H, H), ``bias_ih`` and ``bias_hh``
    (3H,), gate rows r, z, n: ``cell.load_state_dict(nn.GRUCell(E, H).state_dict())``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        _gru_parameters(self, input_size, hidden_size)

    def forward(self, x, h):
        """x (B, E), h (B, H) -> h' (B, H)."""
        gi = x @ self.weight_ih.T + self.bias_ih         # (B, 3H)
        return gru_step(gi, h, self.weight_hh, self.bias_hh)


class ScratchGRU(nn.Module):
    """The GRU step looped over time, named and called like a one-layer ``nn.GRU``.

    ``batch_first=True``. Parameters ``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``: ``scratch.load_state_dict(gru.state_dict())`` copies
    an ``nn.GRU``.
    The input products of all time steps are one matrix product before the loop (they do
    not depend on the state); only the recurrent part runs step by step, in Python.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, 1
        _gru_parameters(self, input_size, hidden_size, suffix="_l0")

    def forward(self, x, h0=None):
        """x (B, T, E), h0 (1, B, H) or None -> (outputs (B, T, H), h_T (1, B, H))."""
        B, T, _ = x.shape
        h = x.new_zeros(B, self.hidden_size) if h0 is None else h0[0]  # (B, H)
        gi = x @ self.weight_ih_l0.T + self.bias_ih_l0                  # (B, T, 3H)
        outputs = []
        for t in range(T):
            h = gru_step(gi[:, t], h, self.weight_hh_l0, self.bias_hh_l0)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h.unsqueeze(0)


def set_gru_update_bias(gru: nn.GRU, value: float = 1.0) -> nn.GRU:
    """Make the update gate's total bias ``b_iz + b_hz`` equal ``value`` in every layer.

    PyTorch's GRU keeps two biases per gate, ``bias_ih`` and ``bias_hh``, rows
    ``[r, z, n]``: the update gate is the slice ``[H:2H]``. With ``value = 1``,
    ``z = sigmoid(1 + ...)`` starts near 0.73: each step keeps most of the previous
    state, and its gradient.
    """
    if not isinstance(gru, nn.GRU):
        raise TypeError("set_gru_update_bias expects an nn.GRU, "
                        f"got {type(gru).__name__}")
    H = gru.hidden_size
    with torch.no_grad():
        for layer in range(gru.num_layers):
            getattr(gru, f"bias_ih_l{layer}")[H:2 * H] = value
            getattr(gru, f"bias_hh_l{layer}")[H:2 * H] = 0.0
    return gru


# -------------------------------------------------------------------- gradient probe
def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def gradient_vs_distance(model: CharLM, x, y) -> np.ndarray:
    """How much the loss at the last step depends on the state at each earlier step.

    Runs a float64 copy of ``model`` one step at a time on ids ``x`` (B, T), takes the
    cross-entropy of the last step's prediction against ``y[:, -1]``, backpropagates.

    Returns:
        (T,) float64 array: entry ``t`` is the batch mean of ``||dL/d state_t||``, the
        state after reading ``x[:, t]`` (``h_t``, or ``(h_t, c_t)`` together for an
        LSTM), at distance ``T - 1 - t`` from the loss. float64, because a tanh RNN's
        gradient falls below float32's smallest number within a few hundred steps.
    """
    probe = copy.deepcopy(model).double().cpu().eval()
    x = torch.as_tensor(x).cpu()
    y = torch.as_tensor(y).cpu()
    emb = probe.embed(x)                                 # (B, T, E)
    state, states = None, []
    for t in range(x.shape[1]):
        _, state = probe.rnn(emb[:, t:t + 1], state)     # (layers, B, H) or (h, c)
        for s in _as_tuple(state):
            s.retain_grad()
        states.append(state)
    h_last = _as_tuple(state)[0][-1]                     # (B, H): h_T of the top layer
    loss = F.cross_entropy(probe.head(h_last), y[:, -1])
    loss.backward()
    norms = []
    for state in states:
        squares = sum(s.grad.pow(2).sum(dim=(0, 2)) for s in _as_tuple(state)
                      if s.grad is not None)             # (B,); c_T has no gradient
        norms.append(squares.sqrt().mean().item())
    return np.array(norms)


def decay_per_step(norms) -> float:
    """The factor by which the gradient norm shrinks per step of distance.

    exp of the slope of the least-squares line through ``log(norms)`` against the
    distance ``T - 1 - t``; entries that are 0 (underflow) are left out.
    """
    norms = np.asarray(norms, dtype=np.float64)
    distance = np.arange(len(norms))[::-1]
    keep = norms > 0
    slope = np.polyfit(distance[keep], np.log(norms[keep]), 1)[0]
    return float(np.exp(slope))


# -------------------------------------------------------------------------- training
def rnn_autocast(device, enabled: bool = True):
    """fp16 autocast on CUDA, a no-op elsewhere: mixed precision for recurrent models.

    Under autocast PyTorch runs cuDNN's RNN kernels in fp16 whatever dtype was asked for
    (its ``_cudnn_rnn`` wrapper casts the weights to half: AutocastRNN.cpp in ATen),
    so bf16 autocast would still give fp16 gradients, unscaled. We ask for fp16 and
    scale the loss (``rnn_grad_scaler``).
    """
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def rnn_grad_scaler(device, enabled: bool = True):
    """The loss scaler fp16 gradients need: enabled with ``rnn_autocast`` on CUDA."""
    on_cuda = torch.device(device).type == "cuda"
    return torch.amp.GradScaler("cuda", enabled=enabled and on_cuda)


@dataclass
class TrainConfig:
    """Every knob of ``train_lm``; budgets in steps (updates) make runs reproducible."""

    steps: int = 1000
    batch_size: int = 32       # B streams
    seq_len: int = 100         # T: characters per window (the BPTT truncation length)
    lr: float = 3e-3           # peak learning rate
    optimizer: str = "adamw"   # "adamw" or "sgd" (plain SGD shows exploding gradients)
    warmup_steps: int = 50
    min_lr: float = 1e-4       # end of the cosine decay
    max_norm: float | None = 1.0  # clipping by global norm; None: no clipping
    weight_decay: float = 0.0
    eval_every: int = 100      # validation loss every this many steps (and at the end)
    eval_chars: int | None = 30_000  # validation characters per evaluation; None: all
    eval_batch_size: int = 64  # streams the validation text is cut into
    seed: int = 0              # offsets of the passes over the text
    use_amp: bool = True       # fp16 autocast with loss scaling on CUDA (rnn_autocast)


@dataclass
class LMHistory:
    """What ``train_lm`` measured: per step and per evaluation."""

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)  # before clipping
    lr: list[float] = field(default_factory=list)
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0       # training time, evaluations excluded
    tokens_per_s: float = 0.0  # training characters per second

    def __repr__(self) -> str:
        if not self.step:
            return "LMHistory(no steps)"
        val = f", val_loss={self.val_loss[-1]:.4f}" if self.val_loss else ""
        return (f"LMHistory({self.step[-1] + 1} steps, "
                f"train_loss={self.train_loss[-1]:.4f}{val}, "
                f"{self.tokens_per_s:,.0f} chars/s)")


@torch.no_grad()
def evaluate_lm(model, ids, batch_size: int, seq_len: int, device,
                max_chars: int | None = None, use_amp: bool = True) -> float:
    """Mean loss (nats/char) of ``model`` on ``ids``, the state carried across windows.

    The text (its first ``max_chars`` characters if given) is cut into ``batch_size``
    streams and read window after window, as in training, so every prediction has seen
    all the text of its stream before it.
    """
    was_training = model.training
    model.eval()
    ids = ids[:max_chars] if max_chars else ids
    streams = stream_batches(ids, batch_size).to(device)
    total, count, state = 0.0, 0, None
    for x, y in tbptt_windows(streams, seq_len):
        with rnn_autocast(device, use_amp):
            logits, state = model(x, state)              # (B, T, V)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(),
                                 reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    return total / count


def train_lm(model, train_ids, val_ids, config: TrainConfig, device,
             on_eval=None) -> LMHistory:
    """Train a language model by truncated BPTT; returns its ``LMHistory``.

    Each step reads the next window of every stream (``training_windows``), starting
    from the state the previous window ended in, detached; at the start of a new pass
    over the text the state is reset. AdamW (or plain SGD) with lesson 01's warmup +
    cosine schedule; the global gradient norm (all parameters together) is clipped to
    ``config.max_norm`` by ``torch.nn.utils.clip_grad_norm_``, which returns the norm
    before clipping.

    Args:
        on_eval: called as ``on_eval(step, model)`` after each evaluation (to sample).
    """
    cfg = config
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = rnn_grad_scaler(device, cfg.use_amp)
    windows = training_windows(train_ids, cfg.batch_size, cfg.seq_len, cfg.seed, device)
    max_norm = cfg.max_norm if cfg.max_norm is not None else math.inf
    history = LMHistory()
    state, trained, chars = None, 0.0, 0
    for step in range(cfg.steps):
        start = time.perf_counter()
        x, y, restart = next(windows)                    # (B, T), (B, T)
        if restart:                                      # a new pass: a zero state
            state = None
        lr = cosine_warmup(step, cfg.lr, cfg.warmup_steps, cfg.steps, cfg.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        state = detach_state(state)                      # keep values, cut the graph
        with rnn_autocast(device, cfg.use_amp):
            logits, state = model(x, state)              # (B, T, V)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)                   # clip the true gradients
        else:
            loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(params, max_norm)
        if scaler.is_enabled():
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        history.step.append(step)
        history.train_loss.append(loss.item())
        history.grad_norm.append(float(grad_norm))
        history.lr.append(lr)
        trained += time.perf_counter() - start
        chars += y.numel()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            history.val_step.append(step + 1)
            history.val_loss.append(evaluate_lm(model, val_ids, cfg.eval_batch_size,
                                                cfg.seq_len, device, cfg.eval_chars,
                                                cfg.use_amp))
            if on_eval is not None:
                on_eval(step + 1, model)
    history.seconds = trained
    history.tokens_per_s = chars / max(trained, 1e-9)
    return history


# -------------------------------------------------------------------------- sampling
def sample_next(logits, temperature: float = 1.0, top_k: int | None = None,
                generator=None):
    """Draw the next id from logits (B, V): LongTensor (B,).

    The logits are divided by the temperature (below 1 sharpens the distribution, above
    1 flattens it), all but the ``top_k`` largest are set to -inf (ties with the k-th
    value are kept), and one id is drawn from the softmax with ``torch.multinomial``.
    ``temperature=0`` returns the argmax (greedy decoding).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = torch.softmax(logits, dim=-1)                        # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.no_grad()
def generate(model, vocab: Vocab, prompt: str, num_chars: int, temperature: float = 1.0,
             top_k: int | None = None, generator=None, device="cpu") -> str:
    """``prompt`` and ``num_chars`` characters sampled one at a time from ``model``.

    The prompt is read first (its final state is the model's memory of it); then each
    sampled character is fed back as the next input. Deterministic for a seeded
    ``generator`` (a CPU ``torch.Generator``; the draws happen on the CPU).
    """
    was_training = model.training
    model.eval()
    x = torch.as_tensor(vocab.encode(prompt), device=device).unsqueeze(0)  # (1, P)
    logits, state = model(x)
    out = []
    for _ in range(num_chars):
        next_id = sample_next(logits[:, -1].cpu(), temperature, top_k, generator)
        out.append(int(next_id))
        logits, state = model(next_id.view(1, 1).to(device), state)
    model.train(was_training)
    return prompt + vocab.decode(out)


# ----------------------------------------------------------------------------- Keras
def keras_gru_lm(vocab_size: int, hidden_size: int, embed_dim: int = 64):
    """The GRU ``CharLM`` in Keras 3: [ids (B, T), h0 (B, H)] -> [logits, h_T].

    ``GRU(reset_after=True)`` (Keras's default) applies the reset gate after the
    recurrent product, as PyTorch and cuDNN do; ``return_state=True`` returns the last
    state, which the next window starts from.
    """
    import keras
    from keras import layers

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    h0 = keras.Input(shape=(hidden_size,), name="h0")
    x = layers.Embedding(vocab_size, embed_dim, name="embed")(ids)   # (B, T, E)
    gru = layers.GRU(hidden_size, return_sequences=True, return_state=True,
                     reset_after=True, name="gru")
    out, h_last = gru(x, initial_state=h0)                  # (B, T, H), (B, H)
    logits = layers.Dense(vocab_size, name="head")(out)               # (B, T, V)
    return keras.Model([ids, h0], [logits, h_last], name="gru_lm")


def torch_gru_to_keras(gru: nn.GRU) -> list[np.ndarray]:
    """A one-layer ``nn.GRU``'s weights as Keras GRU weights [kernel, recurrent, bias].

    PyTorch stores ``weight_ih`` (3H, E) with gate rows r, z, n; Keras a ``kernel``
    (E, 3H) with gate columns z, r, h, a ``recurrent_kernel`` (H, 3H) and, with
    ``reset_after=True``, a ``bias`` (2, 3H) whose rows are the input and the recurrent
    bias. Both compute ``h' = z * h + (1 - z) * n``: the gates only need reordering and
    the matrices transposing.
    """
    def reorder(w):  # (3H, ...) with rows r, z, n -> rows z, r, n
        r, z, n = np.split(w.detach().cpu().numpy(), 3, axis=0)
        return np.concatenate([z, r, n], axis=0)

    kernel = reorder(gru.weight_ih_l0).T                                  # (E, 3H)
    recurrent_kernel = reorder(gru.weight_hh_l0).T                        # (H, 3H)
    bias = np.stack([reorder(gru.bias_ih_l0), reorder(gru.bias_hh_l0)])   # (2, 3H)
    return [kernel, recurrent_kernel, bias]


def copy_char_lm_to_keras(model: CharLM, keras_model) -> None:
    """Copy a one-layer GRU ``CharLM`` into ``keras_gru_lm``: embedding, GRU, head."""
    embedding = model.embed.weight.detach().cpu().numpy()                 # (V, E)
    keras_model.get_layer("embed").set_weights([embedding])
    keras_model.get_layer("gru").set_weights(torch_gru_to_keras(model.rnn))
    head = model.head
    keras_model.get_layer("head").set_weights([head.weight.detach().cpu().numpy().T,
                                               head.bias.detach().cpu().numpy()])
