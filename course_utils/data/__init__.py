"""Data: a registry of files with SHA-256 hashes, verified download, and loaders.

Example:
    >>> from course_utils.data import load_mnist
    >>> X_train, y_train = load_mnist("train")  # doctest: +SKIP
"""
from .fetch import DataError, data_root, fetch, fetch_file, sha256_file, verify
from .loaders import (FASHION_MNIST_CLASSES, image_dataset, load_fashion_mnist, load_mnist,
                      load_sentiment_sentences, load_sst2, load_tinyshakespeare, make_loader, read_idx, subset)
from .registry import DATASETS, DataFile, Dataset, get_dataset

__all__ = [
    "DATASETS", "DataError", "DataFile", "Dataset", "FASHION_MNIST_CLASSES", "data_root", "fetch", "fetch_file",
    "get_dataset", "image_dataset", "load_fashion_mnist", "load_mnist", "load_sentiment_sentences", "load_sst2",
    "load_tinyshakespeare", "make_loader", "read_idx", "sha256_file", "subset", "verify",
]
