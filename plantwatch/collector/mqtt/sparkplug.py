"""Sparkplug B: the payload schema, and the per-edge-node state that turns messages into readings.

The schema is the subset of the Sparkplug B payload we read (scalar metrics), declared here
with the field numbers of the Sparkplug specification; protobuf skips the fields it does not
declare (datasets, templates, properties), so full payloads parse. No generated code.

State follows the specification: NBIRTH resets an edge node and names its metrics (aliases),
DBIRTH names a device's; DATA may carry only aliases; `seq` counts 0..255 per edge node across
its messages, so a gap means a message was lost and a rebirth is requested; NDEATH/DDEATH mark
values stale until the next birth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from plantwatch.collector.mqtt.payloads import PayloadError

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
BOOLEAN, STRING, TEXT, DATETIME = 11, 12, 14, 13
SIGNED_BITS = {1: 8, 2: 16, 3: 32, 4: 64}  # Int8..Int64, stored two's complement in uint fields


def _schema() -> type:
    fdp = descriptor_pb2.FileDescriptorProto(name="plantwatch_sparkplug_b.proto", package="plantwatch.spb")
    fdp.syntax = "proto2"
    f = descriptor_pb2.FieldDescriptorProto
    payload = fdp.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind, oneof in [
        ("name", 1, f.TYPE_STRING, False), ("alias", 2, f.TYPE_UINT64, False),
        ("timestamp", 3, f.TYPE_UINT64, False), ("datatype", 4, f.TYPE_UINT32, False),
        ("is_historical", 5, f.TYPE_BOOL, False), ("is_transient", 6, f.TYPE_BOOL, False),
        ("is_null", 7, f.TYPE_BOOL, False),
        ("int_value", 10, f.TYPE_UINT32, True), ("long_value", 11, f.TYPE_UINT64, True),
        ("float_value", 12, f.TYPE_FLOAT, True), ("double_value", 13, f.TYPE_DOUBLE, True),
        ("boolean_value", 14, f.TYPE_BOOL, True), ("string_value", 15, f.TYPE_STRING, True),
        ("bytes_value", 16, f.TYPE_BYTES, True),
    ]:  # fmt: skip
        entry = metric.field.add(name=name, number=number, type=kind, label=f.LABEL_OPTIONAL)
        if oneof:
            entry.oneof_index = 0
    for name, number, kind, label, type_name in [
        ("timestamp", 1, f.TYPE_UINT64, f.LABEL_OPTIONAL, None),
        ("metrics", 2, f.TYPE_MESSAGE, f.LABEL_REPEATED, ".plantwatch.spb.Payload.Metric"),
        ("seq", 3, f.TYPE_UINT64, f.LABEL_OPTIONAL, None),
        ("uuid", 4, f.TYPE_STRING, f.LABEL_OPTIONAL, None),
        ("body", 5, f.TYPE_BYTES, f.LABEL_OPTIONAL, None),
    ]:
        entry = payload.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            entry.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("plantwatch.spb.Payload"))


Payload = _schema()


def metric_value(metric: Any) -> Any:
    """The Python value of a metric per its datatype (None when `is_null` or no value)."""
    if metric.is_null:
        return None
    kind = metric.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(metric, kind)
    bits = SIGNED_BITS.get(metric.datatype)
    if bits and isinstance(value, int):
        width = 64 if kind == "long_value" else 32
        if value >= 1 << (width - 1):  # two's complement in the field's width, as Tahu writes it
            value -= 1 << width
        elif bits < width and value >= 1 << (bits - 1):  # or in the type's own width
            value -= 1 << bits
    return value


def parse(payload: bytes) -> Any:
    """A Sparkplug B payload, or PayloadError('truncated protobuf')."""
    message = Payload()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise PayloadError("bad protobuf", str(exc)[:200]) from exc
    return message


def rebirth_request() -> bytes:
    """NCMD payload asking an edge node to publish its births again."""
    message = Payload()
    metric = message.metrics.add(name=REBIRTH_METRIC, datatype=BOOLEAN)
    metric.boolean_value = True
    return message.SerializeToString()


@dataclass
class EdgeNode:
    """What we know of one edge node: its last seq and the names behind each alias."""

    seq: int | None = None
    aliases: dict[str | None, dict[int, str]] = field(default_factory=dict)  # device (None: node)
    dead: set[str | None] = field(default_factory=set)


@dataclass(frozen=True)
class Update:
    """What one message means: metric values of a device, a death, or a need for rebirth."""

    device: str | None  # the Sparkplug device id, None for the edge node itself
    values: dict[str, tuple[Any, int | None]]  # metric name -> (value, timestamp ms)
    timestamp_ms: int | None
    death: bool = False
    rebirth: str | None = None  # why a rebirth should be requested


class SparkplugTracker:
    """Turns the messages of one group into Updates, keeping births and seq per edge node.

    It remembers only what the plant uses: aliases of the metrics named in `wanted_metrics`, of
    the devices (per edge node) in `wanted_devices`. A birth of 20,000 metrics, or of devices
    nobody configured, costs no memory.
    """

    def __init__(
        self,
        wanted_metrics: frozenset[str] | None = None,
        wanted_devices: dict[str, set[str | None]] | None = None,
    ) -> None:
        self.nodes: dict[str, EdgeNode] = {}
        self.wanted_metrics = wanted_metrics
        self.wanted_devices = wanted_devices

    def handle(self, message_type: str, edge_node: str, device: str | None, payload: bytes) -> Update:
        """Process one message; raises PayloadError for what cannot be used."""
        node = self.nodes.setdefault(edge_node, EdgeNode())
        if message_type in ("NDEATH", "DDEATH"):
            target = None if message_type == "NDEATH" else device
            if message_type == "NDEATH":
                node.dead.update(node.aliases)
                node.seq = None
            node.dead.add(target)
            return Update(target, {}, None, death=True)
        message = parse(payload)
        seq = message.seq if message.HasField("seq") else None
        rebirth = None
        if message_type == "NBIRTH":
            self.nodes[edge_node] = node = EdgeNode(seq=seq)
        elif seq is not None:
            expected = None if node.seq is None else (node.seq + 1) % 256
            if expected is not None and seq != expected:
                rebirth = f"seq gap: expected {expected}, got {seq}"
            node.seq = seq
        target = None if message_type.startswith("N") else device
        wanted = self.wanted_devices is None or target in self.wanted_devices.get(edge_node, {None})
        if message_type in ("NBIRTH", "DBIRTH"):
            if wanted:
                node.aliases[target] = {
                    m.alias: m.name
                    for m in message.metrics
                    if m.HasField("alias")
                    and m.name
                    and (self.wanted_metrics is None or m.name in self.wanted_metrics)
                }
            node.dead.discard(target)
        elif message_type not in ("NDATA", "DDATA"):
            raise PayloadError("unhandled message type", message_type)
        names = node.aliases.get(target)
        values: dict[str, tuple[Any, int | None]] = {}
        for metric in message.metrics:
            name = metric.name
            if not name and metric.HasField("alias"):
                if names is None or metric.alias not in names:
                    if wanted and names is None:  # aliases of unwanted metrics are not kept
                        rebirth = rebirth or f"alias {metric.alias} without a birth"
                    continue
                name = names[metric.alias]
            if name:
                values[name] = (
                    metric_value(metric),
                    metric.timestamp if metric.HasField("timestamp") else None,
                )
        timestamp = message.timestamp if message.HasField("timestamp") else None
        return Update(target, values, timestamp, rebirth=rebirth)
