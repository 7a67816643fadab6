"""Tests of the course command: the thin CLI over the library."""
import subprocess
import sys

from course_utils.cli import main


def test_python_dash_m_and_help():
    """Does `python -m course_utils --help` list the command groups?"""
    out = subprocess.run([sys.executable, "-m", "course_utils", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("data", "bench"):
        assert command in out.stdout


def test_unknown_arguments_exit_2(capsys):
    """Do unusable arguments give exit status 2 and a usage message?"""
    assert main(["data", "verify", "no-such-dataset"]) == 2
    assert "unknown dataset" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2


def test_data_verify_reports_ok(shared_data, capsys):
    """Does `course data verify mnist` verify the shared files and exit 0?"""
    assert main(["data", "verify", "mnist"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == 4 and "all files verified" in out


def test_data_verify_missing_exits_1(tmp_path, monkeypatch, capsys):
    """With an empty data folder, does verify say what is missing and exit 1 (without downloading)?"""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert main(["data", "verify", "tinyshakespeare"]) == 1
    assert "missing" in capsys.readouterr().out
