"""The readings bus: every committed reading republished to `plantwatch/v1/<plant>/<device>` (QoS 1).

The payload (docs/data-model.md) is compact JSON:
{"plant": "works", "device": "saf-1", "ts": 1764120000000000000,
 "fields": {"active_power": {"value": 29903.4, "unit": "kW", "role": "power", "quality": "good",
 "ts": 1764120000000000000}, ...}}
Unit and role are left out when the map has none; `value` is null when quality is not good.
"""

from __future__ import annotations

import json
from typing import Protocol

from plantwatch.collector.reading import PollResult

TOPIC_PREFIX = "plantwatch/v1"
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def bus_topic(plant: str, device: str) -> str:
    """Topic of a device's readings on the bus."""
    return f"{TOPIC_PREFIX}/{plant}/{device}"


def bus_payload(plant: str, result: PollResult) -> bytes:
    """The bus message for one poll or MQTT message."""
    fields = {}
    for r in result.readings:
        entry: dict[str, object] = {"value": r.value, "quality": r.quality, "ts": r.timestamp_ns}
        if r.unit:
            entry["unit"] = r.unit
        if r.role:
            entry["role"] = r.role
        fields[r.field] = entry
    message = {"plant": plant, "device": result.device, "ts": result.started_ns, "fields": fields}
    return _encode(message).encode("utf-8")


class Publisher(Protocol):
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
