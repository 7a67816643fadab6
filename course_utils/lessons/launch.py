"""What lesson 09 teaches: launching ``torchrun`` here, leaving nothing behind.

``torchrun`` (the same program as ``python -m torch.distributed.run``) starts an agent
process; the agent runs a rendezvous store on a free port (``--standalone``), starts one
worker per ``--nproc-per-node``, each in a session of its own, watches them, and stops
them all when one fails. A notebook or a test that launches it must still be able to
stop everything when the agent itself hangs or is killed, since workers in their own
sessions outlive it. ``run_torchrun`` therefore

- marks every process of the launch with an environment variable (``LAUNCH_ENV``),
  which the agent passes on to its workers and they to their children;
- keeps gloo on the loopback interface (``GLOO_SOCKET_IFNAME``) and the threads per
  worker explicit (``OMP_NUM_THREADS``), and, when restarts are allowed, gives every
  attempt a rendezvous store of its own (``TORCH_DISABLE_SHARE_RDZV_TCP_STORE``);
- writes the output of the agent and of every worker to one log, and waits at most
  ``timeout`` seconds;
- then, whatever happened (success, failure, timeout, an interrupted cell), sends the
  agent SIGTERM (it stops its workers), SIGKILL after a grace period, and kills any
  process still carrying the launch's mark;
- raises ``TorchrunError``, with the failing rank's error and the end of the log, when
  the launch failed or timed out.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LAUNCH_ENV = "COURSE_LAUNCH_ID"   # the mark every process of one launch carries


@dataclass
class TorchrunResult:
    """What one launch did: its command, exit code, wall time and combined log."""

    command: list[str]
    returncode: int | None
    seconds: float
    log: str
    launch_id: str
    timed_out: bool = False
    timeout: float = field(default=0.0, repr=False)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def lines(self, prefix: str = "") -> list[str]:
        """The log's lines that start with ``prefix`` (e.g. ``"[rank 0]"``)."""
        return [line for line in self.log.splitlines() if line.startswith(prefix)]

    def tail(self, n: int = 20) -> str:
        return "\n".join(self.log.splitlines()[-n:])

    def __repr__(self) -> str:
        state = "timed out" if self.timed_out else f"exit code {self.returncode}"
        return (f"TorchrunResult({state}, {self.seconds:.1f} s, "
                f"{len(self.log.splitlines())} log lines)")


class TorchrunError(RuntimeError):
    """A launch that failed or ran out of time; ``.result`` holds its log."""

    def __init__(self, message: str, result: TorchrunResult):
        super().__init__(message)
        self.result = result


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the OS picks it; another program could take it
    before we do, so use it at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def loopback_interface() -> str | None:
    """The name of the loopback network interface: 'lo' on Linux, 'lo0' on macOS."""
    return {"linux": "lo", "darwin": "lo0"}.get(sys.platform)


def torchrun_command(script, args=(), nproc: int = 2, nnodes: int = 1,
                     rdzv_endpoint: str | None = None, rdzv_id: str = "lesson09",
                     max_restarts: int = 0, executable: str | None = None) -> list[str]:
    """The torchrun command line for ``script``.

    One machine (``rdzv_endpoint`` None): ``--standalone``, a rendezvous on a free port
    of this machine. Several: ``--nnodes`` machines meet at ``rdzv_endpoint``
    (host:port of one of them) through the c10d rendezvous, the same command on each.

    Args:
        executable: ``sys.executable`` runs ``python -m torch.distributed.run``,
            which is torchrun; None writes ``torchrun``.
    """
    launcher = ([executable, "-m", "torch.distributed.run"] if executable
                else ["torchrun"])
    if rdzv_endpoint is None:
        where = ["--standalone", f"--nnodes={nnodes}"]
    else:
        where = [f"--nnodes={nnodes}", "--rdzv-backend=c10d",
                 f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={rdzv_id}"]
    return (launcher + where + [f"--nproc-per-node={nproc}",
                                f"--max-restarts={max_restarts}", str(script)]
            + [str(a) for a in args])


def format_command(command: list[str]) -> str:
    """The command as a shell would read it."""
    return shlex.join(command)


def leftover_processes(launch_id: str) -> list[int]:
    """The live processes that carry the launch's mark (Linux: read from /proc; other
    systems: psutil if installed, else none can be found)."""
    mark = f"{LAUNCH_ENV}={launch_id}".encode()
    found = []
    if Path("/proc/self/environ").exists():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:              # gone meanwhile, or another user's
                continue
        return found
    try:
        import psutil
    except ImportError:
        return found
    for p in psutil.process_iter():
        try:
            if p.environ().get(LAUNCH_ENV) == launch_id:
                found.append(p.pid)
        except (psutil.Error, OSError):
            continue
    return found


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)              # the process and the children in its group
    except (ProcessLookupError, PermissionError):
        pass


def stop_launch(proc: subprocess.Popen, launch_id: str, grace: float = 10.0) -> None:
    """Stop the agent and every process of the launch, and wait until they are gone."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)   # the agent stops its workers first
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + grace
    while left := leftover_processes(launch_id):
        for pid in left:                 # workers sit in sessions of their own
            _signal_group(pid, signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {left} of launch {launch_id} survived "
                               "SIGKILL")
        time.sleep(0.1)


def explain(result: TorchrunResult) -> str:
    """A message for a failed launch: what happened, the failing rank's error, and the
    end of the log."""
    if result.timed_out:
        head = (f"torchrun ran longer than {result.timeout:g} s and was stopped, with "
                "all its workers")
    else:
        head = f"torchrun failed with exit code {result.returncode} after " \
               f"{result.seconds:.1f} s"
    # the workers' own error lines ("RuntimeError: ..."), then torchrun's root cause
    errors = [line.strip() for line in result.log.splitlines()
              if re.match(r"\s*(\[rank\d+\]:\s*)?[A-Za-z_.]*(Error|Exception): ", line)]
    cause = re.search(r"Root Cause.*?\n(.*?)\n=+", result.log, re.S)
    parts = [head]
    if errors:
        parts.append("first error: " + errors[0])
    if cause:
        parts.append("torchrun's summary:\n" + cause.group(1).rstrip())
    parts.append("last lines of the log:\n" + result.tail(15))
    return "\n".join(parts)


def launch_environment(launch_id: str, threads: int = 1, max_restarts: int = 0,
                       env: dict | None = None) -> dict:
    """The environment of torchrun's agent, which passes it on to the workers."""
    full = {**os.environ, **(env or {}), LAUNCH_ENV: launch_id,
            "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    if loopback_interface():
        full.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())
    if max_restarts > 0:
        # By default the workers share the agent's rendezvous store, which outlives an
        # attempt: restarted workers can read the previous attempt's addresses from it
        # and hang or fail to connect (pytorch/pytorch#135712; seen with PyTorch 2.13).
        # With this, every attempt gets a store, on a new port, of its own.
        full.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    return full


def run_torchrun(script, args=(), nproc: int = 2, timeout: float = 600,
                 max_restarts: int = 0, threads: int = 1, env: dict | None = None,
                 log_path=None, echo: bool = False, check: bool = True,
                 grace: float = 10.0) -> TorchrunResult:
    """Run ``script`` under torchrun with ``nproc`` workers on this machine.

    Args:
        script: the path of the Python file every worker runs; args: its arguments.
        timeout: seconds before everything is stopped.
        max_restarts: how many times torchrun restarts all the workers after a failure.
        threads: OMP_NUM_THREADS of each worker (torchrun's default is 1, with a
            warning); on a machine of c cores, nproc * threads <= c avoids contention.
        env: variables to add to the workers' environment.
        log_path: where to keep the combined log (default: a temporary file).
        echo: print the log while the launch runs (for a notebook).
        check: raise ``TorchrunError`` if the launch failed or timed out.
    Returns:
        A ``TorchrunResult``; no process of the launch is left when it returns.
    Raises:
        TorchrunError: with the failing rank's error, when ``check``.
    """
    launch_id = uuid.uuid4().hex
    command = torchrun_command(script, args, nproc, max_restarts=max_restarts,
                               executable=sys.executable)
    full_env = launch_environment(launch_id, threads, max_restarts, env)
    if log_path is None:
        fd, log_path = tempfile.mkstemp(prefix="torchrun-", suffix=".log")
        os.close(fd)
    log_path = Path(log_path)
    start, shown, timed_out = time.perf_counter(), 0, False
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=full_env,
                                start_new_session=os.name == "posix")
        try:
            while proc.poll() is None:
                if time.perf_counter() - start > timeout:
                    timed_out = True
                    break
                time.sleep(0.2)
                if echo:
                    shown = _echo(log_path, shown)
        finally:                         # also when the cell is interrupted
            stop_launch(proc, launch_id, grace)
    if echo:
        _echo(log_path, shown)
    result = TorchrunResult(command, proc.returncode, time.perf_counter() - start,
                            log_path.read_text(encoding="utf-8", errors="replace"),
                            launch_id, timed_out, timeout)
    if check and not result.ok:
        raise TorchrunError(explain(result), result)
    return result


def _echo(path: Path, shown: int) -> int:
    """Print the complete lines written after byte ``shown``; returns the new offset."""
    with open(path, "rb") as fh:
        fh.seek(shown)
        new = fh.read()
    new = new[:new.rfind(b"\n") + 1]          # whole lines only
    if new:
        print(new.decode("utf-8", errors="replace"), end="", flush=True)
    return shown + len(new)
