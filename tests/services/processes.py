"""Helpers to run plantwatch commands as separate processes and wait for their sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, deadline: float = 15) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def start_plantwatch(*args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`python -m plantwatch ARGS` in its own process, output to `log` (or discarded)."""
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "plantwatch", *args], stdout=out, stderr=out)


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM and wait for a clean exit; return the exit code."""
    proc.terminate()
    return proc.wait(timeout)


def wait_for_log(path: Path, text: str, timeout: float = 30) -> None:
    """Until `text` appears in the log file `path` (a process announcing it is ready)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{text!r} not in {path} after {timeout}s")
