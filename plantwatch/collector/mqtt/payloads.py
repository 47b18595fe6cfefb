"""Decode JSON and plain-value payloads into readings, with a clear reason for everything rejected."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from plantwatch.collector.errors import CollectorError
from plantwatch.config.mqtt_map import MqttDeviceMap, MqttField, MqttTimestamp
from plantwatch.core.reading import GOOD, Reading, reading_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what an InfluxDB integer field holds
FLOAT_MAX = 10**308  # ints below this become floats; from about 1.8e308 `float()` overflows
EPOCH_FACTORS = {"epoch_s": 10**9, "epoch_ms": 10**6, "epoch_ns": 1}  # to nanoseconds


class PayloadError(CollectorError):
    """A message that cannot be used. `reason` is a short category, counted per device."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


_SCALARS = (int, float, str)  # a tuple: `int | float | str` would build a union on every call


def convert(field: MqttField, raw: Any) -> Any:
    """The field's value from a JSON scalar (numbers may come as numeric strings), scaled."""
    if field.type == "string":
        if isinstance(raw, dict | list) or raw is None:
            raise PayloadError("wrong type", f"{field.name}: expected a scalar, got {type(raw).__name__}")
        return str(raw)
    if field.type == "bool":
        if isinstance(raw, bool):
            return raw
        if raw in (0, 1, "0", "1", "true", "false"):
            return raw in (1, "1", "true")
        raise PayloadError("wrong type", f"{field.name}: expected a boolean, got {raw!r}"[:200])
    if isinstance(raw, bool) or not isinstance(raw, _SCALARS):
        raise PayloadError("wrong type", f"{field.name}: expected a number, got {type(raw).__name__}")
    if field.type == "int" and isinstance(raw, float):
        if not raw.is_integer():  # never truncate 31.7 to 31
            raise PayloadError("wrong type", f"{field.name}: {raw!r} is not an int")
        raw = int(raw)
    try:
        number = float(raw) if field.type == "float" else int(raw)
    except (ValueError, OverflowError) as exc:  # "abc"; a 400-digit integer as a float
        article = "an" if field.type == "int" else "a"
        raise PayloadError(
            "wrong type", f"{field.name}: {raw!r} is not {article} {field.type}"[:200]
        ) from exc
    if isinstance(number, float) and not math.isfinite(number):
        raise PayloadError("wrong type", f"{field.name}: {raw!r} is not finite"[:200])
    if isinstance(number, int) and not INT64_MIN <= number <= INT64_MAX:
        raise PayloadError("wrong type", f"{field.name}: {raw!r} is beyond a 64-bit integer"[:200])
    if field.scale == 1 and field.offset == 0:
        return number
    scaled = number * field.scale + field.offset
    if not math.isfinite(scaled):
        raise PayloadError("wrong type", f"{field.name}: {raw!r} scaled is not finite"[:200])
    return scaled


@lru_cache(maxsize=1024)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def lookup(document: Any, path: str) -> Any:
    """Follow a dotted path (`values.dust`, `channels.0.value`) through objects and lists."""
    return _follow(document, _parts(path), path)


def _follow(document: Any, parts: tuple[str, ...], path: str) -> Any:
    node = document
    for part in parts:
        if type(node) is dict:
            node = node.get(part, _MISSING)
            if node is _MISSING:
                raise KeyError(path)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


_MISSING = object()


def parse_timestamp(spec: MqttTimestamp, document: Any) -> int:
    """Nanoseconds since the epoch from the payload, per the map's `timestamp`."""
    try:
        raw = lookup(document, spec.path)
    except KeyError as exc:
        raise PayloadError("bad timestamp", f"no {spec.path!r} in payload") from exc
    if spec.format == "iso8601":
        if not isinstance(raw, str):
            raise PayloadError("bad timestamp", f"{raw!r} is not an ISO 8601 string"[:200])
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise PayloadError("bad timestamp", f"{raw!r} is not ISO 8601"[:200]) from exc
        if moment.tzinfo is None:
            raise PayloadError("bad timestamp", f"{raw!r} has no timezone")
        delta = moment - EPOCH  # exact: no float rounding of nanoseconds
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError("bad timestamp", f"{raw!r} is not a number"[:200])
    factor = EPOCH_FACTORS[spec.format]
    if isinstance(raw, float) and not math.isfinite(raw):
        raise PayloadError("bad timestamp", f"{raw!r} is not finite")
    # A time outside 1970-2262 (what InfluxDB stores) is refused per field, with the other
    # implausible ones, by core.event_time.checked: the message itself is kept.
    return int(raw * factor) if isinstance(raw, float) else raw * factor


class JsonDecoder:
    """Decodes one device's JSON payloads into readings; each field's path, name, unit, role and
    type is looked up once, when the collector starts.

    A field missing or of the wrong type gets a bad quality (the rest of the message is kept); a
    payload that is not a JSON object is rejected whole.
    """

    def __init__(self, device_map: MqttDeviceMap, device: str) -> None:
        self.device = device
        self.timestamp = device_map.timestamp
        self.fields = [
            (
                field,
                _parts(field.source),
                field.source,
                field.type if field.scale == 1 and field.offset == 0 else "scaled",
                field.role.value if field.role else None,
            )
            for field in device_map.fields
        ]

    def __call__(self, payload: bytes, arrival_ns: int) -> list[Reading]:
        """The readings of one message; PayloadError when it cannot be used at all."""
        try:
            document = json.loads(payload)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: [[[[...
            raise PayloadError("bad json", f"{type(exc).__name__}: {exc}"[:200]) from exc
        if not isinstance(document, dict):
            raise PayloadError("not an object", f"payload is a JSON {type(document).__name__}")
        timestamp = parse_timestamp(self.timestamp, document) if self.timestamp else arrival_ns
        device = self.device
        readings = []
        for field, parts, path, kind, role in self.fields:
            try:
                raw = _follow(document, parts, path)
                # the common cases without `convert`'s checks: a finite number for a float field, an
                # int in range for an int field, a string for a string field, none of them scaled
                kind_of_raw = type(raw)
                if kind == "float" and kind_of_raw is int and -FLOAT_MAX < raw < FLOAT_MAX:
                    value = float(raw)
                elif (
                    (kind == "float" and kind_of_raw is float and raw - raw == 0.0)
                    or (kind == "int" and kind_of_raw is int and INT64_MIN <= raw <= INT64_MAX)
                    or (kind == "string" and kind_of_raw is str)
                ):
                    value = raw
                else:
                    value = convert(field, raw)
            except KeyError:
                readings.append(
                    Reading(device, field.name, None, timestamp, "missing from payload", field.unit, role)
                )
                continue
            except PayloadError as exc:
                readings.append(Reading(device, field.name, None, timestamp, str(exc), field.unit, role))
                continue
            readings.append(reading_of((device, field.name, value, timestamp, GOOD, field.unit, role)))
        return readings


def decode_value(field: MqttField, device: str, payload: bytes, arrival_ns: int) -> Reading:
    """One reading from a payload that is just the value (`31.5`, `true`, `N`)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise PayloadError("not text", str(exc)[:200]) from exc
    raw: Any = text
    if not text and field.type != "string":
        raise PayloadError("empty payload")
    role = field.role.value if field.role else None
    return Reading(device, field.name, convert(field, raw), arrival_ns, "good", field.unit, role)
