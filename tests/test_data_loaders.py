"""Tests of course_utils.data.loaders on the real data (skipped when the machine has none)."""
import gzip
import struct

import numpy as np
import pytest
import torch

from course_utils import data
from course_utils.data import DataError


def test_read_idx_round_trip(tmp_path):
    """Does read_idx decode a hand-written IDX file, and reject a truncated one?"""
    body = np.arange(24, dtype=np.uint8)
    raw = struct.pack(">HBBIII", 0, 8, 3, 2, 3, 4) + body.tobytes()
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(data.read_idx(path), body.reshape(2, 3, 4))
    path.write_bytes(gzip.compress(raw[:-1]))
    with pytest.raises(DataError, match="header says"):
        data.read_idx(path)


@pytest.mark.data
def test_mnist_shapes_and_class_counts(shared_data):
    """Does load_mnist give 60k/10k uint8 28x28 images with the published class counts?"""
    X, y = data.load_mnist("train")
    assert X.shape == (60000, 28, 28) and X.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    X, y = data.load_mnist("test")
    assert X.shape == (10000, 28, 28)
    with pytest.raises(ValueError):
        data.load_mnist("validation")


@pytest.mark.data
def test_fashion_mnist_balanced(shared_data):
    """Does Fashion-MNIST have 1,000 test images per class and ten class names?"""
    X, y = data.load_fashion_mnist("test")
    assert X.shape == (10000, 28, 28) and np.bincount(y).tolist() == [1000] * 10
    assert len(data.FASHION_MNIST_CLASSES) == 10


@pytest.mark.data
def test_text_datasets(shared_data):
    """Do the text loaders give the documented sizes and label balance?"""
    text = data.load_tinyshakespeare()
    assert len(text) == 1115394 and len(set(text)) == 65 and text.startswith("First Citizen:")
    texts, labels = data.load_sst2("train")
    assert len(texts) == 67349 and labels.sum() == 37569
    texts, labels = data.load_sst2("dev")
    assert len(texts) == 872 and labels.sum() == 444
    texts, labels = data.load_sst2("test")
    assert len(texts) == 1821 and (labels == -1).all()
    texts, labels = data.load_sentiment_sentences()
    assert len(texts) == 3000 and labels.sum() == 1500  # CSV quoting would have lost imdb rows
    texts, labels = data.load_sentiment_sentences("imdb")
    assert len(texts) == 1000


def test_subset_is_seeded_and_stratified():
    """Does subset keep class proportions and give the same rows for the same seed?"""
    y = np.repeat(np.arange(10), 100)
    X = np.arange(1000)
    Xs, ys = data.subset(X, y, 200, seed=1)
    assert len(ys) == 200 and np.bincount(ys).tolist() == [20] * 10
    assert np.array_equal(data.subset(X, y, 200, seed=1)[0], Xs)
    assert not np.array_equal(data.subset(X, y, 200, seed=2)[0], Xs)


def test_image_dataset_and_loader():
    """Does image_dataset scale to [0, 1] with a channel axis, and make_loader shuffle reproducibly?"""
    X = np.full((10, 28, 28), 255, dtype=np.uint8)
    y = np.arange(10)
    ds = data.image_dataset(X, y)
    images, labels = ds[:]
    assert images.shape == (10, 1, 28, 28) and images.dtype == torch.float32 and images.max() == 1.0
    order = lambda: torch.cat([b[1] for b in data.make_loader(ds, 4, shuffle=True, seed=3)]).tolist()  # noqa: E731
    assert order() == order() and sorted(order()) == list(range(10))
