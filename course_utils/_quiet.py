"""Silence two known, harmless start-up messages of the libraries, and nothing else.

- torchao 0.18 tries to load its CUDA kernel libraries (``_C_cutlass_90a``,
  ``_C_mxfp8``) at import and logs "Failed to load ..." for each on a machine without
  CUDA, where they are not needed.
- torch's pytree logs that torchao's Enum constants are "now natively supported by
  torch.compile" (a deprecation note addressed to torchao's maintainers).

Each is a ``logging.Filter`` on the library's own logger, matching its exact message, so
every other warning of these libraries still shows.
"""
from __future__ import annotations

import logging


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


def install() -> None:
    """Add the filters (idempotent)."""
    for name, match in [("torchao", _cuda_kernel_library),
                        ("torch.utils._pytree", _enum_constant_note)]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMatching) for f in logger.filters):
            logger.addFilter(_DropMatching(match))
