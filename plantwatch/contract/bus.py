"""The readings bus: every committed reading republished to `plantwatch/v1/<plant>/<device>` (QoS 1);
its topic, encoder and decoder.

One message per device per commit of the collector's buffer, holding that device's results in
commit order (docs/data-model.md), as compact JSON:
{"plant": "works", "device": "saf-1", "results": [{"ts": 1764120000000000000,
 "fields": {"active_power": {"value": 29903.4, "unit": "kW", "role": "power", "quality": "good",
 "ts": 1764120000000000000}, ...}}, ...]}
Unit and role are left out when the map has none; `value` is null when quality is not good.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from plantwatch.core.errors import PlantwatchError
from plantwatch.core.reading import PollResult, Reading

TOPIC_PREFIX = "plantwatch/v1"
MAX_RESULTS = 500  # results in one message at most; a busier device's commit takes several
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def bus_topic(plant: str, device: str) -> str:
    """Topic of a device's readings on the bus."""
    return f"{TOPIC_PREFIX}/{plant}/{device}"


def _fields(result: PollResult) -> dict[str, dict[str, object]]:
    fields = {}
    for r in result.readings:
        entry: dict[str, object] = {"value": r.value, "quality": r.quality, "ts": r.timestamp_ns}
        if r.unit:
            entry["unit"] = r.unit
        if r.role:
            entry["role"] = r.role
        fields[r.field] = entry
    return fields


def bus_payload(plant: str, device: str, results: Sequence[PollResult]) -> bytes:
    """The bus message for one device's results (polls or MQTT messages), in commit order."""
    message = {
        "plant": plant,
        "device": device,
        "results": [{"ts": result.started_ns, "fields": _fields(result)} for result in results],
    }
    return _encode(message).encode("utf-8")


def bus_subscription(plant: str) -> str:
    """The topic filter of every device of a plant on the bus."""
    return f"{TOPIC_PREFIX}/{plant}/+"


class BusMessageError(PlantwatchError):
    """A bus message that does not follow the contract in docs/data-model.md."""


def _result(device: str, entry: dict[str, Any]) -> PollResult:
    readings = [
        Reading(device, name, f["value"], int(f["ts"]), f["quality"], f.get("unit"), f.get("role"))
        for name, f in entry["fields"].items()
    ]
    ts = int(entry["ts"])
    if not all(0 <= stamp < 2**63 for stamp in (ts, *(r.timestamp_ns for r in readings))):
        raise ValueError("a timestamp outside 1970-2262 (the collector never publishes one)")
    return PollResult(device, readings, started_ns=ts, finished_ns=ts)


def results_from_bus(payload: bytes | bytearray) -> list[PollResult]:
    """A readings-bus message back into the results the collector committed, in order.

    Also reads the one-result form of releases before 2026-12 (`ts` and `fields` at the top, no
    `results`): what an older collector publishes, and what older alert state files hold.
    """
    try:
        message = json.loads(payload)
        device = message["device"]
        if "results" not in message:
            return [_result(device, message)]
        if not isinstance(message["results"], list):
            raise TypeError("`results` is not a list")
        return [_result(device, entry) for entry in message["results"]]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        raise BusMessageError(f"not a readings-bus message: {exc!r}"[:200]) from exc
