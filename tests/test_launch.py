"""Tests of course_utils.lessons.launch (lesson 09): the torchrun command lines against
torchrun's own parser, and launches that succeed, fail, hang or ignore SIGTERM, after
each of which no process of the launch is alive and no port it listened on is still
open (read from /proc on Linux)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_utils.lessons import launch

LINUX = Path("/proc/net/tcp").exists()
needs_proc = pytest.mark.skipif(not LINUX, reason="reads /proc (Linux)")


def test_the_commands_are_what_torchrun_parses():
    """Does torchrun's own parser read the one-machine and the multi-machine commands
    as meant (standalone, nodes, workers, rendezvous, restarts, script and its args)?"""
    from torch.distributed.run import parse_args

    one = launch.torchrun_command("train.py", ["--out", "x"], nproc=2)
    assert one[0] == "torchrun"
    args = parse_args(one[1:])
    assert args.standalone and args.nnodes == "1" and args.nproc_per_node == "2"
    assert args.max_restarts == 0
    assert args.training_script == "train.py" and args.training_script_args == [
        "--out", "x"]
    many = launch.torchrun_command("train.py", nproc=8, nnodes=4,
                                   rdzv_endpoint="node0.example.org:29400",
                                   rdzv_id="job7", max_restarts=3)
    args = parse_args(many[1:])
    assert not args.standalone and args.nnodes == "4" and args.nproc_per_node == "8"
    assert (args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id) == (
        "c10d", "node0.example.org:29400", "job7")
    assert args.max_restarts == 3
    runnable = launch.torchrun_command("t.py", executable=sys.executable)
    assert runnable[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert launch.format_command(["torchrun", "a b.py"]) == "torchrun 'a b.py'"


def test_the_environment_marks_the_launch_and_isolates_restarts(monkeypatch):
    """Does the agent's environment carry the launch's mark, the threads, the loopback
    interface for gloo, and, only when restarts are allowed, a rendezvous store per
    attempt; and does a caller's own choice win?"""
    monkeypatch.delenv("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", raising=False)
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    env = launch.launch_environment("abc", threads=3, env={"EXTRA": "1"})
    assert env[launch.LAUNCH_ENV] == "abc" and env["OMP_NUM_THREADS"] == "3"
    assert env["EXTRA"] == "1" and "TORCH_DISABLE_SHARE_RDZV_TCP_STORE" not in env
    if launch.loopback_interface():
        assert env["GLOO_SOCKET_IFNAME"] == launch.loopback_interface()
    again = launch.launch_environment("abc", max_restarts=2)
    assert again["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "1"
    mine = launch.launch_environment("abc", max_restarts=2, env={
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "0", "GLOO_SOCKET_IFNAME": "eth9"})
    assert mine["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "0"
    assert mine["GLOO_SOCKET_IFNAME"] == "eth9"


def test_free_port_can_be_listened_on():
    """Is the port free_port returns one we can listen on at once?"""
    import socket

    port = launch.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()


# ------------------------------------------------------------------ /proc inspection
def listening_sockets() -> dict[int, set[int]]:
    """{port: socket inodes} of every TCP socket in the LISTEN state (IPv4 and v6)."""
    out: dict[int, set[int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":                                  # TCP_LISTEN
                port = int(fields[1].rsplit(":", 1)[1], 16)
                out.setdefault(port, set()).add(int(fields[9]))
    return out


def socket_owners() -> dict[int, int]:
    """{socket inode: pid} of every process we can read."""
    owners = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[int(target[8:-1])] = int(entry.name)
        except OSError:
            continue
    return owners


def assert_nothing_left(launch_id: str, before: dict[int, set[int]], ports=()) -> None:
    """No process carries the launch's mark; every socket listening now that did not
    before belongs to a live process outside the launch; ``ports`` are closed."""
    assert launch.leftover_processes(launch_id) == []
    now, owners = listening_sockets(), socket_owners()
    for port, inodes in now.items():
        for inode in inodes - before.get(port, set()):
            pid = owners.get(inode)
            assert pid is not None, f"port {port} listens with no owner"
            assert pid not in launch.leftover_processes(launch_id), port
    for port in ports:
        assert port not in now, f"port {port} of the launch still listens"


@needs_proc
def test_the_port_check_sees_a_listener_and_its_owner():
    """Does listening_sockets see a socket we listen on, and socket_owners name us?"""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        inodes = listening_sockets()[port]
        assert {socket_owners()[i] for i in inodes} == {os.getpid()}
    assert port not in listening_sockets()


@needs_proc
def test_leftover_processes_finds_and_stop_launch_kills_marked_processes():
    """Is a process carrying the mark, in a session of its own and ignoring SIGTERM,
    found and killed by stop_launch, and an unmarked one left alone?"""
    marked_env = {**os.environ, launch.LAUNCH_ENV: "test-mark"}
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
           "time.sleep(60)"
    marked = subprocess.Popen([sys.executable, "-c", code], env=marked_env,
                              start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    agent = subprocess.Popen([sys.executable, "-c", "pass"], env=marked_env)
    agent.wait()
    try:
        deadline = time.monotonic() + 30
        while marked.pid not in launch.leftover_processes("test-mark"):
            assert time.monotonic() < deadline, "the marked process was not found"
            time.sleep(0.1)
        assert other.pid not in launch.leftover_processes("test-mark")
        launch.stop_launch(agent, "test-mark", grace=5)
        assert marked.wait(10) == -signal.SIGKILL
        assert launch.leftover_processes("test-mark") == []
        assert other.poll() is None
    finally:
        for p in (marked, other):
            p.kill()
            p.wait()


# ----------------------------------------------------------------- real launches (slow)
INIT = '''
import os, signal, sys, time
import torch, torch.distributed as dist
dist.init_process_group("gloo")
rank = dist.get_rank()


def say(line):
    """One write per line: the workers share the log, and PYTHONUNBUFFERED makes
    print() write the text and its newline separately, which can interleave."""
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()


say(f"[rank {rank}] port {os.environ['MASTER_PORT']}")
'''


def write(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "script.py"
    script.write_text(INIT + body)
    return script


def master_port(log: str) -> int:
    return int(next(line for line in log.splitlines()
                    if line.startswith("[rank 0] port")).split()[-1])


@pytest.mark.slow
@needs_proc
def test_a_launch_that_succeeds_leaves_nothing(tmp_path):
    """Does a 2-process launch run, and leave no process and no listening port?"""
    before = listening_sockets()
    body = 'x = torch.ones(1) * (rank + 1)\ndist.all_reduce(x)\n' \
           'say(f"[rank {rank}] sum {x.item():g}")\n' \
           'dist.destroy_process_group()\n'
    result = launch.run_torchrun(write(tmp_path, body), nproc=2, timeout=180)
    assert result.ok and repr(result).startswith("TorchrunResult(exit code 0")
    assert {"[rank 0] sum 3", "[rank 1] sum 3"} <= set(result.lines("[rank "))
    assert_nothing_left(result.launch_id, before, [master_port(result.log)])


@pytest.mark.slow
@needs_proc
def test_a_failing_script_is_explained_and_leaves_nothing(tmp_path):
    """When rank 1 raises while rank 0 waits for it in a collective, does the launch
    raise TorchrunError naming the error, and leave no process and no port?"""
    before = listening_sockets()
    body = 'if rank == 1:\n    raise ValueError("rank 1 gives up")\ndist.barrier()\n'
    with pytest.raises(launch.TorchrunError) as caught:
        launch.run_torchrun(write(tmp_path, body), nproc=2, timeout=180)
    message, result = str(caught.value), caught.value.result
    assert "exit code" in message and "ValueError: rank 1 gives up" in message
    assert not result.ok and not result.timed_out
    assert_nothing_left(result.launch_id, before, [master_port(result.log)])


@pytest.mark.slow
@needs_proc
def test_a_hanging_launch_is_stopped_at_its_timeout(tmp_path):
    """When the workers never finish, and ignore SIGTERM, is everything killed soon
    after the timeout, with an error that says so, leaving no process and no port?"""
    before = listening_sockets()
    body = 'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n' \
           'say(f"[rank {rank}] waiting")\ntime.sleep(600)\n'
    script = write(tmp_path, body)
    start = time.perf_counter()
    with pytest.raises(launch.TorchrunError) as caught:
        launch.run_torchrun(script, nproc=2, timeout=45, grace=3)
    result = caught.value.result
    assert result.timed_out and "ran longer than 45 s" in str(caught.value)
    assert time.perf_counter() - start < 45 + 3 + 20
    assert result.lines("[rank 1] waiting"), "the workers had started"
    assert_nothing_left(result.launch_id, before, [master_port(result.log)])
