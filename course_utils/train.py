"""A plain training loop, shared by the labs after lesson 01 (which writes it inline first).

``fit`` is the loop of lesson 01 with a progress bar, mixed precision on CUDA and a history that
plots itself; nothing hidden: forward, loss, ``zero_grad``, backward, step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .runtime import autocast, grad_scaler


@dataclass
class History:
    """Per-epoch figures of a ``fit`` run; ``plot()`` draws the loss and accuracy curves."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(no epochs)"
        last = f"train_loss={self.train_loss[-1]:.4f}"
        if self.val_accuracy:
            last += f", val_loss={self.val_loss[-1]:.4f}, val_accuracy={self.val_accuracy[-1]:.4f}"
        return f"History({len(self.epochs)} epochs, last: {last})"

    def plot(self, title: str | None = None):
        """Loss (left) and accuracy (right) per epoch; returns the matplotlib figure."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.5))
        ax_loss.plot(self.epochs, self.train_loss, "o-", label="train")
        if self.val_loss:
            ax_loss.plot(self.epochs, self.val_loss, "o-", label="validation")
        ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
        ax_loss.legend()
        ax_acc.plot(self.epochs, self.train_accuracy, "o-", label="train")
        if self.val_accuracy:
            ax_acc.plot(self.epochs, self.val_accuracy, "o-", label="validation")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
        ax_acc.legend()
        for ax in (ax_loss, ax_acc):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
            ax.grid(alpha=0.3)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig


def _batches(loader, device, desc: str, show: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return loader
    return tqdm(loader, desc=desc, leave=False, disable=not show)


def train_one_epoch(model, train_loader, loss_fn, optimizer, device, scheduler=None, use_amp: bool = True,
                    desc: str = "train", show_progress: bool = True,
                    cpu_bf16: bool = False) -> tuple[float, float]:
    """One pass over ``train_loader``; returns (mean loss, accuracy). ``scheduler`` steps per batch.
    ``cpu_bf16``: with ``use_amp``, bf16 autocast on a CPU with bf16 units (runtime.amp_dtype)."""
    import torch

    model.train()
    scaler = grad_scaler(device) if use_amp else None  # enabled only for fp16 autocast (older GPUs)
    total_loss, correct, seen = 0.0, 0, 0
    for X, y in _batches(train_loader, device, desc, show_progress):
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, cpu_bf16) if use_amp else torch.autocast("cpu", enabled=False):
            logits = model(X)  # (B, num_classes)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()  # fp16: scale the loss so small gradients do not flush to 0
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(dim=1) == y).sum().item()
        seen += len(y)
    return total_loss / seen, correct / seen


def predict(model, loader, device, use_amp: bool = True):
    """Logits for every example of ``loader`` and the true labels, both on the CPU."""
    import torch

    model.eval()
    all_logits, all_y = [], []
    with torch.no_grad():
        for X, y in loader:
            X = X.to(device, non_blocking=True)
            with autocast(device) if use_amp else torch.autocast("cpu", enabled=False):
                logits = model(X)
            all_logits.append(logits.float().cpu())
            all_y.append(y.cpu())
    return torch.cat(all_logits), torch.cat(all_y)


def evaluate(model, loader, loss_fn, device, use_amp: bool = True) -> dict:
    """Mean loss and accuracy of ``model`` on ``loader`` (eval mode, no gradients)."""
    logits, y = predict(model, loader, device, use_amp)
    return {"loss": float(loss_fn(logits, y).item()), "accuracy": float((logits.argmax(1) == y).float().mean())}


def fit(model, train_loader, loss_fn, optimizer, num_epochs: int, device, val_loader=None, scheduler=None,
        use_amp: bool = True, show_progress: bool = True, verbose: bool = True,
        cpu_bf16: bool = False) -> History:
    """Train ``model`` for ``num_epochs``; returns a ``History`` (``history.plot()`` draws it).

    Args:
        scheduler: a learning-rate scheduler stepped once per batch (e.g. ``OneCycleLR``), or None.
        use_amp: mixed precision on CUDA (bf16, or fp16 with loss scaling on older GPUs).
        cpu_bf16: with ``use_amp``, also train in bf16 autocast on a CPU that has bf16 units
            (AMX or AVX-512 BF16; ignored on other CPUs). Validation stays in fp32.
    Example:
        >>> history = fit(model, train_loader, nn.CrossEntropyLoss(), optimizer, 5, device, val_loader)  # doctest: +SKIP
    """
    history = History()
    model.to(device)
    for epoch in range(1, num_epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        loss, acc = train_one_epoch(model, train_loader, loss_fn, optimizer, device, scheduler, use_amp,
                                    desc=f"epoch {epoch}/{num_epochs}", show_progress=show_progress,
                                    cpu_bf16=cpu_bf16)
        history.epochs.append(epoch)
        history.train_loss.append(loss)
        history.train_accuracy.append(acc)
        history.lr.append(lr)
        line = f"epoch {epoch:>2}/{num_epochs}  train loss {loss:.4f}  acc {acc:.4f}"
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device, use_amp)
            history.val_loss.append(val["loss"])
            history.val_accuracy.append(val["accuracy"])
            line += f"  |  val loss {val['loss']:.4f}  acc {val['accuracy']:.4f}"
        if verbose:
            print(line)
    return history
