"""plantwatch's embedded amqtt broker (MQTT 3.1.1 only) for tests: free port, its own loop thread."""

from __future__ import annotations

from pathlib import Path

from plantwatch.app.embedded_broker import EmbeddedBroker
from tests.modbus_bank import LoopThread
from tests.services.processes import free_port


class AmqttServer:
    """Same face as MosquittoServer (`port`, `url`, `certs`, `start`, `stop`), so MQTT helpers take
    either; no TLS, no users, and nothing kept across a restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.certs: dict[str, Path] = {}  # no TLS
        self._broker = EmbeddedBroker("127.0.0.1", self.port)
        self._loop: LoopThread | None = None

    @property
    def url(self) -> str:
        return self._broker.url

    def start(self, timeout: float = 15) -> None:
        """Returns once the listener is bound (amqtt's start awaits it)."""
        self._loop = LoopThread()
        self._loop.run(self._broker.__aenter__(), timeout)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.run(self._broker.__aexit__(None, None, None))
            self._loop.stop()
            self._loop = None
