"""The readings bus: every committed reading republished to `plantwatch/v2/<plant>/<device>` (QoS 1);
its topic, encoder and decoder.

One message per device per commit of the collector's buffer (more when they would pass
MAX_MESSAGE_BYTES), holding that device's results in commit order (docs/data-model.md), as
compact JSON:
{"plant": "works", "device": "saf-1", "results": [{"ts": 1764120000000000000,
 "fields": {"active_power": {"value": 29903.4, "unit": "kW", "role": "power", "quality": "good",
 "ts": 1764120000000000000}, ...}}, ...]}
Unit and role are left out when the map has none; `value` is null when quality is not good.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from plantwatch.core.errors import PlantwatchError
from plantwatch.core.reading import GOOD, PollResult, Reading

TOPIC_PREFIX = "plantwatch/v2"
# A message holds results up to this size (a single larger result goes alone): under the limits
# of the brokers we know (AWS IoT 128 KB, Azure 256 KB, plantwatch's own mqtt.max_payload 256 KB).
MAX_MESSAGE_BYTES = 64 * 1024
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def bus_topic(plant: str, device: str) -> str:
    """Topic of a device's readings on the bus."""
    return f"{TOPIC_PREFIX}/{plant}/{device}"


@lru_cache(maxsize=4096)
def _field_head(name: str) -> str:
    return f'{_encode(name)}:{{"value":'


@lru_cache(maxsize=1024)
def _field_tail(unit: str | None, role: str | None) -> str:
    return (f',"unit":{_encode(unit)}' if unit else "") + (f',"role":{_encode(role)}' if role else "") + "}"


_GOOD = f',"quality":{_encode(GOOD)},"ts":'


def _value(value: object) -> str:
    """A value's JSON literal, as `json` writes it: finite floats by their repr."""
    kind = type(value)
    if kind is float and value - value == 0.0:  # type: ignore[operator]
        return repr(value)
    if kind is int:
        return repr(value)
    return _encode(value)


def _quality(quality: str) -> str:
    return _GOOD if quality == GOOD else f',"quality":{_encode(quality)},"ts":'


def _result_json(result: PollResult) -> str:
    fields = ",".join(
        f"{_field_head(r.field)}{_value(r.value)}{_quality(r.quality)}{r.timestamp_ns}"
        f"{_field_tail(r.unit, r.role)}"
        for r in result.readings
    )
    return f'{{"ts":{result.started_ns},"fields":{{{fields}}}}}'


def _head(plant: str, device: str) -> bytes:
    return f'{{"plant":{_encode(plant)},"device":{_encode(device)},"results":['.encode()


def _message(head: bytes, parts: list[bytes]) -> bytes:
    return head + b",".join(parts) + b"]}"


def bus_payload(plant: str, device: str, results: Sequence[PollResult]) -> bytes:
    """One bus message holding one device's results (polls or MQTT messages), in commit order.

    Written piece by piece (the field names, units and roles encoded once) rather than through
    dicts and the JSON encoder; the text is what `json` would write (tested).
    """
    return _message(_head(plant, device), [_result_json(result).encode() for result in results])


def bus_payloads(plant: str, device: str, results: Sequence[PollResult]) -> Iterator[bytes]:
    """The bus messages for one device's results, in commit order: each holds as many as fit in
    MAX_MESSAGE_BYTES, and at least one."""
    head = _head(plant, device)
    parts: list[bytes] = []
    size = len(head) + 2
    for result in results:
        part = _result_json(result).encode()
        if parts and size + len(part) + 1 > MAX_MESSAGE_BYTES:
            yield _message(head, parts)
            parts, size = [], len(head) + 2
        parts.append(part)
        size += len(part) + 1
    if parts:
        yield _message(head, parts)


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

    Also reads the one-result form of `plantwatch/v1` (`ts` and `fields` at the top, no
    `results`): what the pending results in alert state files of earlier releases hold.
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
