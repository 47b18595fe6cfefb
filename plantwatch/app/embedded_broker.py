"""An in-process MQTT 3.1.1 broker (amqtt) on loopback, for `plantwatch demo` when no broker is given."""

from __future__ import annotations

import logging
from types import TracebackType

from amqtt.broker import Broker

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "3.1.1"  # the only one amqtt 0.12 accepts


class EmbeddedBroker:
    """`async with EmbeddedBroker(host, port):` serves `mqtt://host:port` until the block ends.

    Anonymous clients only, on 127.0.0.1. amqtt keeps no queued messages for an anonymous
    client that is away, so this is a broker for a demo, not for a plant: production points
    `mqtt.url` at Mosquitto or EMQX (docs/configuration.md).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        """Where clients connect: `mqtt://host:port`."""
        return f"mqtt://{self.host}:{self.port}"

    async def __aenter__(self) -> EmbeddedBroker:
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
        )
        await self._broker.start()
        log.info("embedded MQTT %s broker on %s", PROTOCOL_VERSION, self.url)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
