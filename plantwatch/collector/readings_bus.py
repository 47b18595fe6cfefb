"""The readings-bus publisher: a sink listener that republishes every committed result."""

from __future__ import annotations

from typing import Protocol

from plantwatch.contract.bus import bus_payload, bus_topic
from plantwatch.core.reading import PollResult


class Publisher(Protocol):
    """What the publisher needs of an MQTT connection."""

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None: ...


class ReadingsBus:
    """A sink listener: publishes each committed result."""

    def __init__(self, connection: Publisher, plant: str) -> None:
        self.connection = connection
        self.plant = plant
        self.published = 0

    def __call__(self, results: list[PollResult]) -> None:
        """Publish committed results, in commit order."""
        for result in results:
            self.connection.publish(
                bus_topic(self.plant, result.device), bus_payload(self.plant, result), qos=1
            )
            self.published += 1
