"""MQTT devices: route each message to its device, decode it, and hand it to the sink.

A message is acknowledged once its readings are committed to the durable buffer, so a message
the broker delivered is never lost: if plantwatch stops first, the broker delivers it again.
Messages that cannot be used (bad JSON, wrong types, truncated protobuf, too large, unknown
topic) are acknowledged, counted per device and reason, logged at most once a minute each,
and the first few samples kept in a JSON-lines file for the integrator.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, partial
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt

from plantwatch.collector.mqtt.payloads import JsonDecoder, PayloadError, convert, decode_value
from plantwatch.collector.mqtt.sparkplug import NAMESPACE, SparkplugTracker, Update, rebirth_request
from plantwatch.config.mqtt_map import PLACEHOLDER, MqttDeviceMap, MqttField
from plantwatch.config.plant import DeviceConfig, Plant
from plantwatch.core.event_time import BAD_TIMESTAMP, checked
from plantwatch.core.lru import BoundedCache
from plantwatch.core.reading import GOOD, PollResult, Reading

log = logging.getLogger(__name__)

SAMPLES_PER_REASON = 5
UNKNOWN = "?"  # device of a message that matched no configured device
OTHER = "_other"  # a topic-level tag value past `mqtt.max_tag_values`
# Counted like rejects, though the message itself is kept:
BAD_FIELD_TIMESTAMP = "bad field timestamp"  # fields stamped outside 1970-2262 or too far ahead
TOO_MANY_TAG_VALUES = "too many tag values"
TOPICS_REMEMBERED = 10_000  # topics whose device route is cached


@dataclass(frozen=True)
class Route:
    """How one configured device's messages are recognised."""

    device: DeviceConfig
    device_map: MqttDeviceMap
    subscription: str  # the topic filter subscribed to
    levels: tuple[str, ...]  # literal levels, or placeholders like {line}

    @cached_property
    def fields_by_source(self) -> dict[str, MqttField]:
        """The map's fields by where their value is found (the {field} level, for `value` maps)."""
        return {f.source: f for f in self.device_map.fields}

    @cached_property
    def decode_json(self) -> JsonDecoder:
        """The decoder of this device's JSON payloads."""
        return JsonDecoder(self.device_map, self.device.id)

    @cached_property
    def _pattern(self) -> tuple[tuple[int, str, bool], ...]:
        """Per level: its index, the placeholder name or literal text, and whether it is a placeholder."""
        pattern = []
        for index, level in enumerate(self.levels):
            placeholder = PLACEHOLDER.match(level)
            pattern.append((index, placeholder.group(1), True) if placeholder else (index, level, False))
        return tuple(pattern)

    def match(self, topic: str) -> dict[str, str] | None:
        """Values of the placeholder levels when `topic` is this device's, else None."""
        parts = topic.split("/")
        if len(parts) != len(self.levels):
            return None
        found = {}
        for index, text, is_placeholder in self._pattern:
            if is_placeholder:
                found[text] = parts[index]
            elif text != parts[index]:
                return None
        return found


@dataclass
class TopicRoute:
    """How messages on one topic are handled: the device's route, the topic's placeholder levels,
    and its tags once every value in them was accepted (they are then the same every time)."""

    route: Route | None  # None: the topic is no configured device's
    levels: dict[str, str]
    tags: dict[str, str] | None = None


NO_ROUTE = TopicRoute(None, {})


def build_routes(plant: Plant) -> list[Route]:
    """One route per MQTT device: placeholders filled from plant id, device id and `vars`.

    A placeholder left unfilled becomes a `+` in the subscription and a tag on the readings.
    """
    routes = []
    for device in plant.devices_of(MqttDeviceMap):
        device_map = plant.maps[device.id]
        assert isinstance(device_map, MqttDeviceMap)
        if device_map.format == "sparkplug_b":
            group, edge = device.vars["group"], device.vars["edge_node"]
            subscription = f"{NAMESPACE}/{group}/+/{edge}/#"
            routes.append(Route(device, device_map, subscription, ()))
            continue
        known = {"plant": plant.config.plant.id, "device": device.id, **device.vars}
        levels = []
        for level in (device_map.topic or "").split("/"):
            placeholder = PLACEHOLDER.match(level)
            name = placeholder.group(1) if placeholder else None
            levels.append(known[name] if name in known and name != "field" else level)
        subscription = "/".join("+" if PLACEHOLDER.match(level) else level for level in levels)
        routes.append(Route(device, device_map, subscription, tuple(levels)))
    return routes


@dataclass
class Rejects:
    """Counts of unusable messages per (device, reason), with rate-limited logs and samples."""

    samples_file: Path
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _last_log: dict[tuple[str, str], float] = field(default_factory=dict)

    def record(self, device: str, topic: str, reason: str, detail: str, payload: bytes) -> None:
        key = (device, reason)
        self.counts[key] += 1
        count = self.counts[key]
        now = time.monotonic()
        if now - self._last_log.get(key, -1e9) >= 60:
            self._last_log[key] = now
            log.warning("MQTT %s on %s: %s (%s; %d so far)", device, topic, reason, detail, count)
        if count <= SAMPLES_PER_REASON:
            sample = {
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "device": device,
                "topic": topic,
                "reason": reason,
                "detail": detail,
                "payload": payload[:512].decode("utf-8", "backslashreplace"),
                "size": len(payload),
            }
            with self.samples_file.open("a", encoding="utf-8") as out:
                out.write(json.dumps(sample, ensure_ascii=False) + "\n")


Sink = Callable[[PollResult, Callable[[], None] | None], None]


class Link(Protocol):
    """What the subscriber needs of the connection: acknowledge, and publish rebirth requests."""

    def ack(self, mid: int, qos: int) -> None: ...

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None: ...


class MqttSubscriber:
    """Turns MQTT messages of configured devices into poll results for the sink."""

    def __init__(self, plant: Plant, sink: Sink, *, max_payload: int, samples_file: Path) -> None:
        self.plant = plant
        self.sink = sink
        self.max_payload = max_payload
        self.routes = build_routes(plant)
        self.rejects = Rejects(samples_file)
        self.max_skew_ns = int(plant.config.event_time.max_skew * 1e9)
        mqtt_config = plant.config.mqtt
        self.max_tag_values = mqtt_config.max_tag_values if mqtt_config else 1000
        self._tag_values: dict[tuple[str, str], set[str]] = {}
        self.messages = 0
        self.outcomes: Counter[str] = Counter()  # one per message: accepted, rejected or ignored
        self.connection: Link | None = None  # the MqttConnection, set by the service
        self._trackers: dict[str, SparkplugTracker] = {}
        self._routes_by_topic: BoundedCache[str, TopicRoute] = BoundedCache(TOPICS_REMEMBERED)

    @property
    def subscriptions(self) -> list[str]:
        """Topic filters to subscribe to (one per device, Sparkplug nodes once)."""
        return sorted({route.subscription for route in self.routes})

    def handle(self, message: mqtt.MQTTMessage) -> None:
        """Process one message (on the event loop); ack it when accepted or rejected. Whatever a
        message does to the decoders, it is rejected alone: a poison message is acknowledged,
        counted and sampled, never left to block the broker's in-flight window."""
        self.messages += 1
        arrival = time.time_ns()
        ack = partial(self._ack, message.mid, message.qos)
        topic, payload = message.topic, bytes(message.payload)
        try:
            self._handle(topic, payload, arrival, ack)
        except Exception as exc:
            log.debug("MQTT message on %s broke its decoder", topic, exc_info=True)
            self._reject(
                self._device_of(topic),
                topic,
                "decode error",
                f"{type(exc).__name__}: {exc}"[:200],
                payload,
                ack,
            )

    def _handle(self, topic: str, payload: bytes, arrival: int, ack: Callable[[], None]) -> None:
        if len(payload) > self.max_payload:
            self._reject(self._device_of(topic), topic, "too large", f"{len(payload)} bytes", payload, ack)
            return
        if topic.startswith(NAMESPACE + "/"):
            self._handle_sparkplug(topic, payload, arrival, ack)
            return
        routed = self._route(topic)
        route, found = routed.route, routed.levels
        if route is None:
            self._reject(UNKNOWN, topic, "unknown topic", "no configured device", payload, ack)
            return
        device = route.device.id
        try:
            if route.device_map.format == "json":
                readings = route.decode_json(payload, arrival)
            else:
                field_def = route.fields_by_source.get(found.get("field", ""))
                if field_def is None:
                    raise PayloadError("unknown field", f"topic level {found.get('field')!r}")
                readings = [decode_value(field_def, device, payload, arrival)]
        except PayloadError as exc:
            self._reject(device, topic, exc.reason, str(exc), payload, ack)
            return
        readings = self._checked(readings, arrival, device, topic, payload)
        bad = [r for r in readings if r.quality != GOOD and not r.quality.startswith(BAD_TIMESTAMP)]
        if bad:
            self.rejects.record(
                device, topic, "bad field", "; ".join(f"{r.field}: {r.quality}" for r in bad), payload
            )
        tags = routed.tags
        if tags is None:
            tags, accepted = self._bounded(
                {k: v for k, v in found.items() if k != "field"}, device, topic, payload
            )
            if accepted:  # a value once accepted stays accepted
                routed.tags = tags
        result = PollResult(
            device, readings, started_ns=arrival, finished_ns=arrival, tags=tags, polled=False
        )
        self.outcomes["accepted"] += 1
        self.sink(result, ack)

    def _route(self, topic: str) -> TopicRoute:
        """How a topic is handled (NO_ROUTE: it is no device's). Remembered for the
        TOPICS_REMEMBERED most recent topics."""
        routed = self._routes_by_topic.get(topic)
        if routed is None:
            routed = next(
                (TopicRoute(r, found) for r in self.routes if (found := r.match(topic)) is not None),
                NO_ROUTE,
            )
            self._routes_by_topic.put(topic, routed)
        return routed

    def _handle_sparkplug(self, topic: str, payload: bytes, arrival: int, ack: Callable[[], None]) -> None:
        parts = topic.split("/")
        if len(parts) not in (4, 5):
            self._reject(
                UNKNOWN, topic, "unknown topic", "not spBv1.0/group/type/edge[/device]", payload, ack
            )
            return
        group, message_type, edge = parts[1], parts[2], parts[3]
        spb_device = parts[4] if len(parts) == 5 else None
        if message_type in ("NCMD", "DCMD", "STATE"):
            self.outcomes["ignored"] += 1
            ack()
            return
        tracker = self._trackers.get(group)
        if tracker is None:
            tracker = self._trackers[group] = self._sparkplug_tracker(group)
        try:
            update = tracker.handle(message_type, edge, spb_device, payload)
        except PayloadError as exc:
            self._reject(self._device_of(topic), topic, exc.reason, str(exc), payload, ack)
            return
        if update.rebirth:
            self._request_rebirth(group, edge, update.rebirth, topic, payload)
        routes = [
            r
            for r in self.routes
            if r.device_map.format == "sparkplug_b"
            and r.device.vars["group"] == group
            and r.device.vars["edge_node"] == edge
            and r.device.vars.get("device") == update.device
        ]
        if update.death and update.device is None:  # NDEATH: every device of the node is stale
            routes = [
                r
                for r in self.routes
                if r.device_map.format == "sparkplug_b"
                and r.device.vars["group"] == group
                and r.device.vars["edge_node"] == edge
            ]
        if not routes:
            if update.values or update.death:
                self._reject(UNKNOWN, topic, "unknown topic", "no configured Sparkplug device", payload, ack)
            else:
                self.outcomes["ignored"] += 1
                ack()
            return
        results = []
        for route in routes:
            readings = self._spb_readings(route, update, arrival, message_type)
            readings = self._checked(readings, arrival, route.device.id, topic, payload)
            if readings:
                results.append(
                    PollResult(
                        route.device.id, readings, started_ns=arrival, finished_ns=arrival, polled=False
                    )
                )
        if not results:
            self.outcomes["ignored"] += 1  # e.g. a birth naming none of the configured fields
            ack()
            return
        self.outcomes["accepted"] += 1
        for result in results:
            self.sink(result, ack if result is results[-1] else None)

    def _sparkplug_tracker(self, group: str) -> SparkplugTracker:
        """A tracker keeping the births of this group's configured devices and fields only."""
        routes = [
            r for r in self.routes if r.device_map.format == "sparkplug_b" and r.device.vars["group"] == group
        ]
        devices: dict[str, set[str | None]] = {}
        for route in routes:
            devices.setdefault(route.device.vars["edge_node"], {None}).add(route.device.vars.get("device"))
        metrics = frozenset(f.source for route in routes for f in route.device_map.fields)
        return SparkplugTracker(metrics, devices)

    def _spb_readings(self, route: Route, update: Update, arrival: int, message_type: str) -> list[Reading]:
        readings = []
        for f in route.device_map.fields:
            role = f.role.value if f.role else None
            if update.death:
                readings.append(
                    Reading(route.device.id, f.name, None, arrival, f"stale: {message_type}", f.unit, role)
                )
                continue
            if f.source not in update.values:
                continue
            raw, metric_ms = update.values[f.source]
            ms = metric_ms or update.timestamp_ms
            ts = ms * 1_000_000 if ms else arrival
            if raw is None:
                readings.append(
                    Reading(route.device.id, f.name, None, ts, "null in Sparkplug metric", f.unit, role)
                )
                continue
            try:
                value = convert(f, raw)
            except PayloadError as exc:
                readings.append(Reading(route.device.id, f.name, None, ts, str(exc), f.unit, role))
                continue
            readings.append(Reading(route.device.id, f.name, value, ts, "good", f.unit, role))
        return readings

    def _bounded(
        self, tags: dict[str, str], device: str, topic: str, payload: bytes
    ) -> tuple[dict[str, str], bool]:
        """Topic-level tags, each level holding at most `mqtt.max_tag_values` distinct values per
        device (each is an InfluxDB series); past that a new value is stored as OTHER, counted.
        Also whether every value was accepted as it came."""
        accepted = True
        for level, value in tags.items():
            seen = self._tag_values.get((device, level))
            if seen is None:
                seen = self._tag_values[(device, level)] = set()
            if value in seen:
                continue
            if len(seen) < self.max_tag_values:
                seen.add(value)
                continue
            tags[level] = OTHER
            accepted = False
            self.rejects.record(
                device, topic, TOO_MANY_TAG_VALUES, f"{level}: {self.max_tag_values} already", payload
            )
        return tags, accepted

    def _checked(
        self, readings: list[Reading], arrival: int, device: str, topic: str, payload: bytes
    ) -> list[Reading]:
        """Readings stamped outside 1970-2262 or beyond `event_time.max_skew` ahead become
        `bad timestamp` (the message is kept), counted."""
        readings, bad = checked(readings, arrival, self.max_skew_ns)
        if bad:
            detail = next(r.quality for r in readings if r.quality.startswith(BAD_TIMESTAMP))
            self.rejects.record(device, topic, BAD_FIELD_TIMESTAMP, f"{bad} field(s): {detail}", payload)
        return readings

    def _request_rebirth(self, group: str, edge: str, why: str, topic: str, payload: bytes) -> None:
        device = self._device_of(topic)
        self.rejects.record(device, topic, "sparkplug rebirth requested", why, payload)
        if self.connection is not None:
            self.connection.publish(f"{NAMESPACE}/{group}/NCMD/{edge}", rebirth_request(), qos=0)

    def _device_of(self, topic: str) -> str:
        for route in self.routes:
            if route.levels and route.match(topic) is not None:
                return route.device.id
            if not route.levels and mqtt.topic_matches_sub(route.subscription, topic):
                return route.device.id
        return UNKNOWN

    def _reject(
        self, device: str, topic: str, reason: str, detail: str, payload: bytes, ack: Callable[[], None]
    ) -> None:
        self.outcomes["rejected"] += 1
        self.rejects.record(device, topic, reason, detail, payload)
        ack()

    def _ack(self, mid: int, qos: int) -> None:
        if self.connection is not None:
            self.connection.ack(mid, qos)
