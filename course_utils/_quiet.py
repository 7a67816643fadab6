"""Silence known, harmless start-up messages of the libraries, and nothing else.

- TensorFlow 2.20's C++ core writes, at import, straight to the process's stderr (file
  descriptor 2, which Jupyter shows under the cell): "WARNING: All log messages before
  absl::InitializeLog() is called are written to STDERR" and "I0000 ... oneDNN custom
  operations are on ..." (twice), whatever ``TF_CPP_MIN_LOG_LEVEL`` says. The first
  ``import tensorflow`` (``import keras`` does it) runs with descriptor 2 captured; the
  captured lines are written back to ``sys.stderr`` without those, so any other message
  of the import still shows (:func:`captured_stderr`). TensorFlow Lite's converter and
  interpreter do the same ("fully_quantize: 0, ...", "INFO: Created TensorFlow Lite
  XNNPACK delegate for CPU."); ``quant_tools`` wraps them with :func:`captured_stderr`.
- torchao 0.18 tries to load its CUDA kernel libraries (``_C_cutlass_90a``,
  ``_C_mxfp8``) at import and logs "Failed to load ..." for each on a machine without
  CUDA, where they are not needed.
- torch's pytree logs that torchao's Enum constants are "now natively supported by
  torch.compile" (a deprecation note addressed to torchao's maintainers).

Each is a ``logging.Filter`` on the library's own logger, matching its exact message, so
every other warning of these libraries still shows.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile

# Lines written to descriptor 2 by native code at start-up, dropped by captured_stderr.
NATIVE_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^I\d{4} .*oneDNN custom operations are on"),
    re.compile(r"^fully_quantize: \d+, inference_type: \d+"),
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),
)


class _DropMatching(logging.Filter):
    def __init__(self, match):
        super().__init__()
        self.match = match

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not self.match(record.getMessage())
        except Exception:                      # a filter must never raise
            return True


def _cuda_kernel_library(message: str) -> bool:
    if not (message.startswith("Failed to load ") and ".so" in message):
        return False
    import torch                                # torchao imported it already
    return not torch.cuda.is_available()


def _enum_constant_note(message: str) -> bool:
    return "is an Enum subclass and is now natively supported by torch.compile" in message


# Python warnings addressed to a library's developers, not to its users: (message, category).
DEVELOPER_WARNINGS = (
    # torchao 0.18's Int8Tensor, at every torch.compile of a model holding it
    (r".*does not implement _stable_hash_for_caching", UserWarning),
    # a deprecated property of transformers models, read by introspection (the course never
    # reads it)
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
)


def install() -> None:
    """Add the filters and the quiet ``import tensorflow`` (idempotent)."""
    import warnings

    _install_tensorflow_hook()
    for message, category in DEVELOPER_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, match in [("torchao", _cuda_kernel_library),
                        ("torch.utils._pytree", _enum_constant_note)]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMatching) for f in logger.filters):
            logger.addFilter(_DropMatching(match))


def _is_native_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in NATIVE_NOISE)


@contextlib.contextmanager
def captured_stderr():
    """Capture what native code writes to file descriptor 2 inside the block; afterwards
    write it to ``sys.stderr`` without the lines of ``NATIVE_NOISE``.

    Python's own ``sys.stderr`` is untouched inside the block (in Jupyter it is not
    descriptor 2 at all), so warnings and tracebacks show as usual. Where descriptor 2
    cannot be duplicated (a closed or odd stderr), nothing is captured."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            text = buffer.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if line.strip() and not _is_native_noise(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` inside :func:`captured_stderr`.

    A spec lookup without an import (``importlib.util.find_spec("tensorflow")``, as
    transformers does to see whether TensorFlow is installed) leaves the finder in place;
    it removes itself when the module is really executed."""

    def __init__(self):
        self._looking = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self._looking:
            return None
        self._looking = True                        # the lookup below must skip us
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._looking = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, finder = spec.loader.exec_module, self

        def quietly(module):
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)        # once is enough
            with captured_stderr():
                exec_module(module)

        spec.loader.exec_module = quietly           # this spec's own loader instance
        return spec


def _install_tensorflow_hook() -> None:
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
