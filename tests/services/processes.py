"""Helpers to run plantwatch commands as separate processes and wait for their sockets."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from pathlib import Path

from tests.waiting import wait_until

FIRST_SERVICE_PORT = 10_000  # below: the well-known ports and the busiest registered ones


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's ephemeral range.

    A port inside that range can be taken by any outgoing connection between this pick and the
    service's bind; a benchmark making 150,000 connections saw influxd fail with "address already
    in use". Outgoing connections never take a port below the range.
    """
    low = ephemeral_range()[0]
    for _ in range(200):
        port = random.randrange(FIRST_SERVICE_PORT, low) if low > FIRST_SERVICE_PORT + 1000 else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: try another
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free TCP port between {FIRST_SERVICE_PORT} and {low} on 127.0.0.1")


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux's default when it cannot be read)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float = 15) -> None:
    """Until something listens on `port` (a server we started is ready)."""
    wait_until(lambda: listening(port), timeout, f"something listening on port {port}")


STARTED: list[subprocess.Popen[bytes]] = []  # every process start_plantwatch made (see conftest)


def start_plantwatch(*args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`python -m plantwatch ARGS` in its own process, output to `log` (or discarded)."""
    out = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "plantwatch", *args], stdout=out, stderr=out)
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM and wait for a clean exit; return the exit code."""
    proc.terminate()
    return proc.wait(timeout)


def log_count(path: Path, text: str) -> int:
    """How often `text` appears in the log file `path` so far."""
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def wait_for_log(path: Path, text: str, timeout: float = 30, count: int = 1) -> None:
    """Until `text` appears `count` times in the log file `path` (a process announcing an event)."""
    wait_until(lambda: log_count(path, text) >= count, timeout, f"{text!r} {count}x in {path.name}")
