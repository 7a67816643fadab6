"""Plots more than one lesson draws: image grids, curves and confusion matrices."""
from __future__ import annotations

import numpy as np


def _as_images(images) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] in (1, 3):  # (N, C, H, W) -> (N, H, W, C)
        arr = arr.transpose(0, 2, 3, 1)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def show_images(images, labels=None, titles=None, ncols: int = 8, cmap: str = "gray", size: float = 1.4):
    """A grid of images (N, H, W), (N, H, W, C) or (N, C, H, W), numpy or torch; returns the figure.

    Args:
        labels: one label per image, shown as its title (or pass ``titles`` for free text).
    Example:
        >>> show_images(X_train[:16], y_train[:16])  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    arr = _as_images(images)
    n = len(arr)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if labels is not None or titles else 0)))
    axes = np.atleast_1d(axes).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(arr[i], cmap=cmap if arr[i].ndim == 2 else None)
        title = titles[i] if titles is not None else (labels[i] if labels is not None else None)
        if title is not None:
            ax.set_title(str(title.item() if hasattr(title, "item") else title), fontsize=9)
    fig.tight_layout()
    return fig


def plot_curves(curves: dict, xlabel: str = "epoch", ylabel: str = "loss", title: str | None = None,
                logy: bool = False, ax=None):
    """One line per named series, e.g. ``{"train": [...], "val": [...]}``; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        values = list(values)
        ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 30 else None, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of examples with true class ``i`` predicted as ``j``."""
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    k = num_classes or int(max(y_true.max(), y_pred.max())) + 1
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def plot_confusion_matrix(y_true, y_pred, class_names=None, normalize: bool = False, ax=None):
    """Draw the confusion matrix with counts (or row fractions) in each cell; returns the axes."""
    import matplotlib.pyplot as plt

    k = len(class_names) if class_names is not None else None
    cm = confusion_matrix(y_true, y_pred, k)
    shown = cm / cm.sum(axis=1, keepdims=True).clip(min=1) if normalize else cm
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * k + 2, 0.6 * k + 1.5))
    im = ax.imshow(shown, cmap="Blues")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    threshold = shown.max() / 2
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else str(cm[i, j])
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] > threshold else "black")
    plt.colorbar(im, ax=ax, fraction=0.046)
    return ax
