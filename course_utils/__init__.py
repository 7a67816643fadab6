"""course_utils: the library of the open deep-learning course.

Everything a lab needs is importable from here::

    from course_utils import check, describe_runtime, get_device, seed_everything, smoke_mode

Imports are lazy, so ``import course_utils`` stays fast and pulls in torch only when needed.
"""
from __future__ import annotations

import importlib

from . import _quiet

__version__ = "0.1.0"
_quiet.install()  # known start-up messages of TensorFlow, torchao and torch (see _quiet)

_EXPORTS = {
    # runtime
    "seed_everything": "runtime",
    "get_device": "runtime",
    "smoke_mode": "runtime",
    "autocast": "runtime",
    "amp_dtype": "runtime",
    "describe_runtime": "runtime",
    # grading
    "check": "grading.check",
    "progress": "grading.progress",
    # results of a lab
    "record": "results",
    # data, training and plots
    "load_mnist": "data",
    "load_fashion_mnist": "data",
    "fit": "train",
    "evaluate": "train",
    "show_images": "plotting",
    "load_minilm": "pretrained",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
