"""Ports of the test services: free, and where no outgoing connection can take them before the bind."""

from __future__ import annotations

import socket

import pytest

from tests.services import processes
from tests.services.processes import FIRST_SERVICE_PORT, ephemeral_range, free_port


def test_ports_are_free_and_below_the_ephemeral_range() -> None:
    low, high = ephemeral_range()
    assert low < high
    ports = {free_port() for _ in range(50)}
    if low > FIRST_SERVICE_PORT + 1000:  # Linux's default range, 32768-60999
        assert all(FIRST_SERVICE_PORT <= port < low for port in ports)
    assert len(ports) > 40  # spread, so parallel test workers seldom meet
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    spare = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        picks = iter([busy, busy, spare])
        monkeypatch.setattr(processes.random, "randrange", lambda *_: next(picks))
        assert free_port() == spare
