"""The readings bus: every committed reading republished to `plantwatch/v1/<plant>/<device>` (QoS 1);
its topic, encoder and decoder.

The payload (docs/data-model.md) is compact JSON:
{"plant": "works", "device": "saf-1", "ts": 1764120000000000000,
 "fields": {"active_power": {"value": 29903.4, "unit": "kW", "role": "power", "quality": "good",
 "ts": 1764120000000000000}, ...}}
Unit and role are left out when the map has none; `value` is null when quality is not good.
"""

from __future__ import annotations

import json

from plantwatch.core.errors import PlantwatchError
from plantwatch.core.reading import PollResult, Reading

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


def bus_subscription(plant: str) -> str:
    """The topic filter of every device of a plant on the bus."""
    return f"{TOPIC_PREFIX}/{plant}/+"


class BusMessageError(PlantwatchError):
    """A bus message that does not follow the contract in docs/data-model.md."""


def result_from_bus(payload: bytes | bytearray) -> PollResult:
    """A readings-bus message back into the result the collector committed."""
    try:
        message = json.loads(payload)
        device = message["device"]
        readings = [
            Reading(device, name, f["value"], int(f["ts"]), f["quality"], f.get("unit"), f.get("role"))
            for name, f in message["fields"].items()
        ]
        ts = int(message["ts"])
        if not all(0 <= stamp < 2**63 for stamp in (ts, *(r.timestamp_ns for r in readings))):
            raise ValueError("a timestamp outside 1970-2262 (the collector never publishes one)")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        raise BusMessageError(f"not a readings-bus message: {exc!r}"[:200]) from exc
    return PollResult(device, readings, started_ns=ts, finished_ns=ts)
