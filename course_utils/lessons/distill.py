"""What lesson 08 teaches: knowledge distillation (Hinton, Vinyals & Dean 2015).

- ``soft_targets``: a teacher's probabilities at temperature tau;
- ``distillation_loss``: gamma tau^2 KL(p_t || p_s) + (1 - gamma) CE(y, softmax(z_s));
- ``teacher_logits``: a teacher's logits for a whole tensor of inputs, computed once;
- ``MLP`` and ``train_student``: the student and its training loop on tensors held in
  memory (cached teacher logits, labels where there are any: -1 marks an unlabelled
  example of a transfer set);
- ``test_errors``, ``errors_per_class``: errors out of the test set, as the paper
  counts;
- ``paired_summary``: mean and standard error of per-seed paired differences.

Symbols as in the lesson (Hinton et al. write z, v, q, p, T and N for the first six):
z_s the student's logits, z_t the teacher's, p_s = softmax(z_s / tau) and
p_t = softmax(z_t / tau) their probabilities at temperature tau, n_c classes, N examples
in a batch, gamma (``alpha`` in code, as in most libraries) the weight of the soft term.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

UNLABELLED = -1                     # the label of a transfer-set image without a label


def soft_targets(logits, tau: float = 1.0):
    """softmax(logits / tau) along the last axis: (N, n_c) -> (N, n_c)."""
    if tau <= 0:
        raise ValueError(f"the temperature must be positive, got tau={tau}")
    return torch.softmax(logits / tau, dim=-1)


def distillation_loss(student_logits, teacher_logits, labels, tau: float = 4.0,
                      alpha: float = 0.9):
    """gamma tau^2 KL(p_t || p_s) + (1 - gamma) CE(y, softmax(z_s)), batch mean.

    Args:
        student_logits: z_s, (N, n_c); teacher_logits: z_t, (N, n_c), not
            differentiated;
        labels: (N,) int64 class ids, ``UNLABELLED`` (-1) where there is no label. The
            hard term sums over labelled rows and divides by N, so a batch of a transfer
            set weighs its few labels by their share.
        tau: temperature of both softmaxes in the soft term; the hard term uses 1.
        alpha: gamma, the weight of the soft term; 0 is training alone, 1 distils only.
    """
    log_ps = F.log_softmax(student_logits / tau, dim=-1)           # (N, n_c)
    log_pt = F.log_softmax(teacher_logits.detach() / tau, dim=-1)  # (N, n_c)
    # kl_div(input, target) = sum target (log target - input): the input is log p_s,
    # the target p_t (given as log p_t); "batchmean" divides the sum by N, as the math.
    soft = F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
    loss = alpha * tau ** 2 * soft
    if alpha < 1:
        hard = F.cross_entropy(student_logits, labels, ignore_index=UNLABELLED,
                               reduction="sum") / len(labels)
        loss = loss + (1 - alpha) * hard
    return loss


@torch.no_grad()
def teacher_logits(model, X, batch_size: int = 1024, device=None, pad_last=False):
    """The model's logits for every row of X, in order, in eval mode, float32 on the
    CPU.

    Computed once and reused for every student and seed: the teacher does not change.
    The model's train/eval mode is restored afterwards. ``pad_last`` pads the last
    batch to ``batch_size`` (with copies of its first row, dropped again) for models
    compiled for one input shape, such as lesson 07's PT2E int8 models."""
    params = list(model.parameters()) if isinstance(model, nn.Module) else []
    device = device or (params[0].device if params else torch.device("cpu"))
    was_training = getattr(model, "training", False)
    if params:
        model.eval()
    out = []
    for i in range(0, len(X), batch_size):
        xb = X[i:i + batch_size]
        n = len(xb)
        if pad_last and n < batch_size:
            xb = torch.cat([xb, xb[:1].expand(batch_size - n, *xb.shape[1:])])
        out.append(model(xb.to(device)).float().cpu()[:n])
    if params:
        model.train(was_training)
    return torch.cat(out)


class MLP(nn.Sequential):
    """784 -> hidden -> ... -> 10 with ReLU (and dropout if asked): the students.

    Takes images (N, 1, 28, 28) or rows (N, 784). The weights start Glorot-uniform
    with zero biases, as Keras's ``Dense`` does: PyTorch's default for ``Linear``
    (uniform with bound 1/sqrt(fan_in)) gave these students about 48 more test errors
    out of 10,000 over 3 seeds (784-50-50-10, 10 epochs, all labels)."""

    def __init__(self, hidden=(100, 100), in_features: int = 784, num_classes: int = 10,
                 dropout: float = 0.0):
        layers, width = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
        self.hidden = tuple(hidden)
        for layer in self:
            if isinstance(layer, nn.Linear):  # Keras's Dense default, not PyTorch's
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)


@dataclass
class StudentRun:
    """What ``train_student`` returns: the trained model, its loss per epoch and the
    seconds it took."""
    model: nn.Module
    losses: list
    seconds: float


def train_student(model, X, labels, teacher=None, tau: float = 4.0, alpha: float = 0.9,
                  epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
                  weight_decay: float = 0.0, seed: int = 0, device=None, loss_fn=None,
                  max_shift: int = 0):
    """Train ``model`` on tensors held in memory with Adam and a cosine learning rate.

    Args:
        X: (N, ...) inputs; labels: (N,) class ids, -1 where unlabelled.
        teacher: (N, n_c) cached teacher logits for X, or None to train alone on the
            labels (cross-entropy; rows labelled -1 are then dropped).
        loss_fn: a replacement for ``distillation_loss`` with its signature (the lesson
            passes its buggy versions).
        max_shift: jitter each batch by up to this many pixels (the teacher's logits are
            then those of the unshifted image; the lesson's transfer sets jitter
            before the teacher sees them instead).
    Returns a ``StudentRun``; the model is left in eval mode.
    """
    from .cnn import random_shift

    device = device or torch.device("cpu")
    if teacher is None:
        keep = labels != UNLABELLED
        X, labels = X[keep], labels[keep]
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(X) / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                           epochs * steps_per_epoch)
    loss_fn = loss_fn or distillation_loss
    losses, start = [], time.perf_counter()
    for _ in range(epochs):
        order, total = torch.randperm(len(X), generator=generator), 0.0
        for i in range(0, len(X), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = X[idx].to(device), labels[idx].to(device)
            if max_shift:
                xb = random_shift(xb, max_shift, generator=None)
            zb = model(xb)
            if teacher is None:
                loss = F.cross_entropy(zb, yb)
            else:
                loss = loss_fn(zb, teacher[idx].to(device), yb, tau, alpha)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
        losses.append(total / len(X))
    return StudentRun(model.eval(), losses, time.perf_counter() - start)


@torch.no_grad()
def predict_classes(model, X, batch_size: int = 2048, bias=None):
    """Arg-max class of every row (eval mode); ``bias`` (n_c,) is added to the
    logits."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(X), batch_size):
        logits = model(X[i:i + batch_size].to(device)).float().cpu()
        out.append((logits + bias if bias is not None else logits).argmax(1))
    return torch.cat(out)


def test_errors(model, X, y, bias=None) -> int:
    """Misclassified examples, counted as Hinton et al. count them (out of 10,000)."""
    return int((predict_classes(model, X, bias=bias) != y).sum())


def errors_per_class(predicted, y, num_classes: int = 10) -> np.ndarray:
    """(n_c,) misclassified examples of each true class."""
    wrong = (predicted != y).numpy()
    return np.bincount(y.numpy()[wrong], minlength=num_classes)


@dataclass
class Paired:
    """Seeds compared in pairs: mean of (a - b), its standard error, t, n."""
    mean: float
    se: float
    t: float
    n: int

    def __str__(self) -> str:
        return (f"{self.mean:+.1f} +- {self.se:.1f} (standard error over {self.n} "
                f"seeds, t = {self.t:.1f})")


def paired_summary(a, b) -> Paired:
    """Mean and standard error of a_i - b_i, the differences of runs with the same
    seed: se = std(d, ddof=1) / sqrt(n). Pairing removes what the seed does to both."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    if n < 2:
        raise ValueError("a standard error needs at least 2 seeds")
    se = d.std(ddof=1) / math.sqrt(n)
    if se > 0:
        t = d.mean() / se
    else:                       # every difference equal: infinitely sure, or no gain
        t = math.copysign(math.inf, d.mean()) if d.mean() else 0.0
    return Paired(float(d.mean()), float(se), float(t), n)


def mean_sd(values) -> str:
    """'mean +- sd' of per-seed figures, sd with n - 1."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.1f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.1f}"


def parameter_count(model) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
