"""Loaders: verified files in, NumPy arrays and ready torch datasets/loaders out."""
from __future__ import annotations

import gzip
import struct

import numpy as np

from .fetch import DataError, fetch_file

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def read_idx(path) -> np.ndarray:
    """Decode a (gzip'd) IDX file: big-endian magic (0x0000 + type + ndim), dims, then raw data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:  # 0x08: unsigned byte, the only type MNIST uses
        raise DataError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4: 4 + 4 * ndim])
    body = np.frombuffer(bytearray(data), dtype=np.uint8, offset=4 + 4 * ndim)  # bytearray: writable
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


def _load_idx_pair(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in _IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    images_name, labels_name = _IDX_FILES[split]
    X = read_idx(fetch_file(dataset, images_name))  # (N, 28, 28) uint8
    y = read_idx(fetch_file(dataset, labels_name)).astype(np.int64)  # (N,)
    return X, y


def load_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits: ``X`` uint8 (N, 28, 28), ``y`` int64 (N,); N = 60,000 (train) or 10,000 (test).

    Example:
        >>> X_train, y_train = load_mnist("train")  # doctest: +SKIP
    """
    return _load_idx_pair("mnist", split)


def load_fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST: same shapes as MNIST; class names in ``FASHION_MNIST_CLASSES``."""
    return _load_idx_pair("fashion-mnist", split)


def load_tinyshakespeare() -> str:
    """The Tiny Shakespeare corpus as one string (1,115,394 characters)."""
    return fetch_file("tinyshakespeare", "input.txt").read_text(encoding="utf-8")


def load_sst2(split: str = "train") -> tuple[list[str], np.ndarray]:
    """GLUE SST-2: sentences and labels (1 positive, 0 negative); ``test`` has labels -1 (hidden)."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev' or 'test', not {split!r}")
    lines = fetch_file("sst2", f"{split}.tsv").read_text(encoding="utf-8").split("\n")[1:]
    texts, labels = [], []
    for line in lines:
        if not line:
            continue
        if split == "test":
            _, sentence = line.split("\t", 1)
            label = -1
        else:
            sentence, label = line.rsplit("\t", 1)
        texts.append(sentence.strip())
        labels.append(int(label))
    return texts, np.array(labels, dtype=np.int64)


def load_sentiment_sentences(source: str | None = None) -> tuple[list[str], np.ndarray]:
    """UCI Sentiment Labelled Sentences: ``source`` in amazon/imdb/yelp, or None for all 3,000.

    Read as raw lines split on the last tab: CSV quoting would lose rows.
    """
    sources = ("amazon_cells", "imdb", "yelp") if source is None else (
        "amazon_cells" if source == "amazon" else source,)
    texts, labels = [], []
    for name in sources:
        raw = fetch_file("sentiment-labelled-sentences", f"{name}_labelled.txt").read_text(encoding="utf-8")
        for line in raw.split("\n"):  # not splitlines(): it also splits on U+0085 inside sentences
            if not line.strip():
                continue
            sentence, label = line.rsplit("\t", 1)
            texts.append(sentence.strip())
            labels.append(int(label))
    return texts, np.array(labels, dtype=np.int64)


def subset(X, y, n: int, seed: int = 0):
    """A seeded random subset of ``n`` examples with every class kept in proportion (stratified)."""
    y = np.asarray(y)
    if n >= len(y):
        return X, y
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    per_class = np.maximum(1, np.round(counts / counts.sum() * n).astype(int))
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False)
                          for c, k in zip(classes, np.minimum(per_class, counts))])
    idx = np.sort(rng.permutation(idx)[:n])
    return X[idx], y[idx]


def image_dataset(X, y):
    """A ``TensorDataset`` of float32 images (N, 1, H, W) scaled to [0, 1] and int64 labels."""
    import torch

    images = torch.as_tensor(np.asarray(X), dtype=torch.float32).div_(255.0)
    if images.ndim == 3:
        images = images.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    return torch.utils.data.TensorDataset(images, torch.as_tensor(np.asarray(y), dtype=torch.int64))


def make_loader(dataset, batch_size: int, shuffle: bool = False, seed: int = 0, device=None, num_workers: int = 0):
    """A ``DataLoader`` with a seeded shuffle, and pinned memory when the target device is CUDA."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    pin = getattr(device, "type", str(device)) == "cuda"
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                                       pin_memory=pin, num_workers=num_workers)
