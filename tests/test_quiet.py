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


FAKE_TENSORFLOW = '''import os, sys
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
            b"written to STDERR\\n")
os.write(2, b"I0000 00:00:1796356344.205755   23649 port.cc:153] oneDNN custom "
            b"operations are on. You may see slightly different numerical results\\n")
os.write(2, b"E0000 a real native error\\n")
print("a Python warning", file=sys.stderr)
'''


def _run_with_fake_tensorflow(tmp_path, code: str):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)


def test_tensorflow_start_up_lines_go_and_other_native_lines_stay(tmp_path):
    """Does the first `import tensorflow` after course_utils drop the absl and oneDNN
    start-up lines written to file descriptor 2, and keep every other line, native or
    Python, in order?"""
    out = _run_with_fake_tensorflow(tmp_path, "import course_utils, tensorflow")
    assert out.returncode == 0, out.stderr
    assert "absl::InitializeLog" not in out.stderr
    assert "oneDNN custom operations" not in out.stderr
    assert "E0000 a real native error" in out.stderr
    assert "a Python warning" in out.stderr


def test_a_spec_lookup_before_the_import_does_not_undo_the_quiet_import(tmp_path):
    """transformers asks importlib.util.find_spec("tensorflow") long before a lesson imports
    it: is the later import still quiet?"""
    code = ("import importlib.util, course_utils\n"
            "assert importlib.util.find_spec('tensorflow') is not None\n"
            "import tensorflow\n")
    out = _run_with_fake_tensorflow(tmp_path, code)
    assert out.returncode == 0, out.stderr
    assert "absl::InitializeLog" not in out.stderr
    assert "E0000 a real native error" in out.stderr


def test_without_course_utils_the_lines_are_there(tmp_path):
    """The fake module really writes the lines (so the test above can fail)."""
    out = _run_with_fake_tensorflow(tmp_path, "import tensorflow")
    assert "absl::InitializeLog" in out.stderr and "oneDNN custom operations" in out.stderr


def test_captured_stderr_keeps_descriptor_2_working():
    """After the block, does descriptor 2 write where it did before, and is a line that
    is not known noise written back?"""
    code = ("import os, sys\nfrom course_utils import _quiet\n"
            "with _quiet.captured_stderr():\n"
            "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
            "    os.write(2, b'kept inside\\n')\n"
            "os.write(2, b'after the block\\n')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == ["kept inside", "after the block"], out.stderr
