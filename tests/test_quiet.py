"""Tests of course_utils._quiet: the two known start-up messages go, nothing else."""
import logging
import subprocess
import sys

from course_utils import _quiet


def test_torchao_import_is_quiet_after_course_utils():
    """Does importing torchao after course_utils print neither known message?"""
    code = "import course_utils, torchao, torchao.quantization"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr
    assert "Failed to load" not in out.stderr
    assert "natively supported by torch.compile" not in out.stderr


def test_other_messages_still_show():
    """Does a different warning of the same loggers still get through?"""
    _quiet.install()
    _quiet.install()                                   # idempotent
    assert len([f for f in logging.getLogger("torchao").filters
                if isinstance(f, _quiet._DropMatching)]) == 1
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    for logger in loggers:                  # torch's loggers may not propagate
        logger.addHandler(handler)
    try:
        loggers[0].warning("Failed to quantize layer 3")
        loggers[0].warning("Failed to load /x/_C_cutlass_90a.so: no such file")
        loggers[1].warning("another note")
        loggers[1].warning("<enum 'K'> is an Enum subclass and is now natively "
                           "supported by torch.compile as an opaque value type.")
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    import torch
    kept = ["Failed to quantize layer 3"]
    if torch.cuda.is_available():           # with CUDA the kernel libraries matter
        kept.append("Failed to load /x/_C_cutlass_90a.so: no such file")
    assert seen == kept + ["another note"]
