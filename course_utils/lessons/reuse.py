"""Models of earlier lessons for the lessons that build on them (07 quantization, 08
distillation): from the course cache when the earlier lesson saved one in the same mode,
otherwise trained here, briefly, with the earlier lesson's recipe, and said so.

- ``fashion_cnn``: lesson 03's SmallCNN on Fashion-MNIST (cache name
  ``03_fashion_smallcnn``);
- ``sst2_classifier``: lesson 06's fully fine-tuned MiniLM SST-2 classifier (cache name
  ``06_sst2_full_finetune``).

The earlier lessons save with ``save_fashion_cnn`` / ``save_sst2_classifier``, which
record the settings a later lesson checks (lesson 06 does; lesson 03 does not yet, so
``fashion_cnn`` trains its short version unless a model was saved by hand).
``train_cnn`` is lesson 03's recipe; lesson 08 trains its MNIST teacher with it (digits are
not mirrored: ``hflip=False``).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from .. import model_cache

FASHION_CNN = "03_fashion_smallcnn"
SST2_CLASSIFIER = "06_sst2_full_finetune"
FASHION_WIDTHS = (32, 64, 128)         # lesson 03's CPU widths


def _mode(smoke: bool) -> str:
    return "smoke" if smoke else "full"


# ------------------------------------------------------------------ lesson 03's CNN
def fashion_splits(num_val: int = 5000, num_train: int | None = None,
                   num_test: int | None = None, seed: int = 0):
    """Lesson 03's Fashion-MNIST splits: train, validation (held out of train), test,
    TensorDatasets of (N, 1, 28, 28) floats in [0, 1]."""
    from ..data import image_dataset, load_fashion_mnist, subset

    X, y = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    perm = np.random.default_rng(seed).permutation(len(y))
    val_idx, train_idx = perm[:num_val], perm[num_val:]
    if num_train is not None:
        train_idx = train_idx[:num_train]
    if num_test is not None:
        X_test, y_test = subset(X_test, y_test, num_test, seed=seed)
    return (image_dataset(X[train_idx], y[train_idx]), image_dataset(X[val_idx], y[val_idx]),
            image_dataset(np.array(X_test), np.array(y_test)))


def train_cnn(model, train_ds, num_epochs: int, device, seed: int = 0,
              batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 1e-2,
              warmup_fraction: float = 0.1, max_shift: int = 2, hflip: bool = True):
    """Lesson 03's recipe: AdamW, linear warmup then cosine decay, random shifts and
    (for clothes, not digits: ``hflip``) mirroring. Returns the seconds it took."""
    from ..data import make_loader
    from ..train import fit
    from .cnn import Augmented
    from .optim import cosine_warmup

    loader = make_loader(Augmented(train_ds, max_shift, hflip), batch_size, shuffle=True,
                         seed=seed, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    total = num_epochs * len(loader)
    warmup = max(1, int(warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: cosine_warmup(t, 1.0, warmup, total))
    start = time.perf_counter()
    fit(model, loader, nn.CrossEntropyLoss(), optimizer, num_epochs, device,
        scheduler=scheduler, show_progress=False)
    return time.perf_counter() - start


def save_fashion_cnn(model, smoke: bool, epochs: int, test_accuracy: float,
                     widths=FASHION_WIDTHS):
    """Lesson 03: put its Fashion-MNIST SmallCNN in the course cache."""
    settings = {"mode": _mode(smoke), "widths": list(widths), "epochs": epochs,
                "test_accuracy": round(float(test_accuracy), 4)}
    return model_cache.save_model(FASHION_CNN, model, settings)   # tensors go to the CPU


def fashion_cnn(train_ds, device, smoke: bool, epochs: int, seed: int = 0):
    """Lesson 03's SmallCNN (eval mode, on ``device``), and a sentence saying where it
    came from: the cache (trained by lesson 03 in the same mode) or ``epochs`` of
    training here."""
    from ..runtime import seed_everything
    from .cnn import SmallCNN

    found = model_cache.load_model(FASHION_CNN, SmallCNN(widths=FASHION_WIDTHS),
                                   {"mode": _mode(smoke),
                                    "widths": list(FASHION_WIDTHS)})
    if found:
        s = found.settings
        return found.model.to(device).eval(), (
            f"lesson 03's SmallCNN from the course cache ({s['epochs']} epochs, test "
            f"accuracy {s['test_accuracy']:.4f} there)")
    seed_everything(seed)
    model = SmallCNN(widths=FASHION_WIDTHS).to(device)
    seconds = train_cnn(model, train_ds, epochs, device, seed)
    return model.eval(), (f"lesson 03's SmallCNN trained here for {epochs} epoch(s) in "
                          f"{seconds:.0f} s, lesson 03 trains 10 ({found.message})")


# ------------------------------------------------------------------ lesson 06's model
def save_sst2_classifier(model, smoke: bool, steps: int, lr: float, max_length: int,
                         dev_accuracy: float):
    """Lesson 06: put its fully fine-tuned SST-2 classifier in the course cache."""
    settings = {"mode": _mode(smoke), "steps": steps, "lr": lr, "max_length": max_length,
                "dev_accuracy": round(float(dev_accuracy), 4)}
    return model_cache.save_model(SST2_CLASSIFIER, model, settings)


def sst2_classifier(encoder, tokenizer, texts, labels, device, smoke: bool, steps: int,
                    lr: float = 1e-4, batch_size: int = 32, max_length: int = 64,
                    seed: int = 0):
    """Lesson 06's SentenceClassifier (eval mode, on ``device``) and where it came
    from: the cache, or ``steps`` of full fine-tuning here with lesson 06's recipe
    (AdamW, warmup then linear decay, clipping, batches grouped by length).

    ``encoder`` is the pretrained MiniLM (its pooler removed); it is copied, not
    changed."""
    import copy

    from . import finetune as ft

    model = ft.SentenceClassifier(copy.deepcopy(encoder))
    found = model_cache.load_model(SST2_CLASSIFIER, model, {"mode": _mode(smoke)})
    if found:
        s = found.settings
        return found.model.to(device).eval(), (
            f"lesson 06's fine-tuned classifier from the course cache ({s['steps']} "
            f"steps, dev accuracy {s['dev_accuracy']:.4f} there)")
    torch.manual_seed(seed)
    model = ft.SentenceClassifier(copy.deepcopy(encoder)).to(device)
    config = ft.FineTuneConfig(steps=steps, batch_size=batch_size, lr=lr,
                               max_length=max_length, eval_every=steps, seed=seed)
    history = ft.train_classifier(model, tokenizer, texts, labels, config, device)
    return model.eval(), (f"lesson 06's classifier fine-tuned here for {steps} steps "
                          f"in {history.seconds:.0f} s, lesson 06 trains 500 "
                          f"({found.message})")
