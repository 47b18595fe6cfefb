"""The readings-bus publisher: a sink listener that republishes every committed result."""

from __future__ import annotations

from typing import Protocol

from plantwatch.contract.bus import bus_payloads, bus_topic
from plantwatch.core.reading import PollResult


class Publisher(Protocol):
    """What the publisher needs of an MQTT connection."""

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None: ...


class ReadingsBus:
    """A sink listener: publishes each commit's results, one message per device (more when they
    would pass the contract's MAX_MESSAGE_BYTES), in commit order within a device.

    One message per device rather than per result: a device sending hundreds of MQTT messages a
    second costs the bus a message per commit (50 ms), not one per message.
    """

    def __init__(self, connection: Publisher, plant: str) -> None:
        self.connection = connection
        self.plant = plant

    def __call__(self, results: list[PollResult]) -> None:
        """Publish committed results, grouped by device."""
        by_device: dict[str, list[PollResult]] = {}
        for result in results:
            by_device.setdefault(result.device, []).append(result)
        for device, mine in by_device.items():
            topic = bus_topic(self.plant, device)
            for payload in bus_payloads(self.plant, device, mine):
                self.connection.publish(topic, payload, qos=1)
