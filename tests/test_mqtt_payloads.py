"""MQTT payload decoding and routing without a broker, and a fuzz test of every payload format."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwatch.collector.mqtt.payloads import JsonDecoder, PayloadError, decode_value, parse_timestamp
from plantwatch.collector.mqtt.subscriber import (
    BAD_FIELD_TIMESTAMP,
    TOO_MANY_TAG_VALUES,
    MqttSubscriber,
    build_routes,
)
from plantwatch.config.mqtt_map import MqttDeviceMap, MqttTimestamp
from plantwatch.config.plant import Plant, parse_plant_config
from plantwatch.core.event_time import future_skew
from plantwatch.core.reading import PollResult
from tests.mqtt_helpers import CEMS_MAP, SPB_MAP

VALUE_MAP = """model: meter_values
description: one value per topic
sector: steel
protocol: mqtt
format: value
topic: plants/{plant}/meters/{device}/{field}
fields:
  - {name: power, path: p, unit: kW, role: power, scale: 1000}
  - {name: running, type: bool, role: running}
  - {name: flag, type: string}
"""


@pytest.fixture
def plant(tmp_path: Path) -> Plant:
    for name, text in (("cems_json", CEMS_MAP), ("furnace_spb", SPB_MAP), ("meter_values", VALUE_MAP)):
        (tmp_path / f"{name}.yaml").write_text(text)
    return parse_plant_config(
        {
            "plant": {"id": "works", "name": "Works"},
            "devices": [
                {"id": "stack-1", "map": "cems_json.yaml", "vars": {"line": "north"}},
                {"id": "stack-2", "map": "cems_json.yaml"},
                {"id": "meter-1", "map": "meter_values.yaml"},
                {
                    "id": "saf-9",
                    "map": "furnace_spb.yaml",
                    "vars": {"group": "works", "edge_node": "gw1", "device": "saf9"},
                },
            ],
        },
        str(tmp_path / "plant.yaml"),
        tmp_path,
    )


def cems(plant: Plant) -> MqttDeviceMap:
    device_map = plant.maps["stack-1"]
    assert isinstance(device_map, MqttDeviceMap)
    return device_map


def test_routes_fill_placeholders_and_leave_the_rest_as_wildcards(plant: Plant) -> None:
    routes = {r.device.id: r for r in build_routes(plant)}
    assert routes["stack-1"].subscription == "plants/works/north/cems/stack-1/data"
    assert routes["stack-2"].subscription == "plants/works/+/cems/stack-2/data"
    assert routes["meter-1"].subscription == "plants/works/meters/meter-1/+"
    assert routes["saf-9"].subscription == "spBv1.0/works/+/gw1/#"
    assert routes["stack-2"].match("plants/works/south/cems/stack-2/data") == {"line": "south"}
    assert routes["stack-2"].match("plants/works/south/cems/stack-1/data") is None


def test_json_paths_types_and_timestamps(plant: Plant) -> None:
    message = {"ts": 1_764_000_000_123, "values": {"dust": "31.5"}, "seq": 7, "flag": "M"}
    readings = JsonDecoder(cems(plant), "stack-1")(json.dumps(message).encode(), 1)
    assert [(r.field, r.value, r.quality, r.timestamp_ns) for r in readings] == [
        ("dust", 31.5, "good", 1_764_000_000_123_000_000),
        ("seq", 7, "good", 1_764_000_000_123_000_000),
        ("data_flag", "M", "good", 1_764_000_000_123_000_000),
    ]
    partial = JsonDecoder(cems(plant), "stack-1")(b'{"ts": 5, "values": {}, "seq": true, "flag": "N"}', 1)
    assert [(r.field, r.value, r.quality) for r in partial] == [
        ("dust", None, "missing from payload"),
        ("seq", None, "wrong type: seq: expected a number, got bool"),
        ("data_flag", "N", "good"),
    ]
    for bad, reason in (
        (b"[1, 2]", "not an object"),
        (b"\xff", "bad json"),
        (b'{"values": {}}', "bad timestamp"),
    ):
        with pytest.raises(PayloadError) as info:
            JsonDecoder(cems(plant), "stack-1")(bad, 1)
        assert info.value.reason == reason


def test_int_fields_never_truncate(plant: Plant) -> None:
    base = {"ts": 5, "values": {"dust": 1}, "flag": "N"}
    for seq, expected in (
        (7, (7, "good")),
        (7.0, (7, "good")),
        ("8", (8, "good")),
        (7.5, (None, "wrong type: seq: 7.5 is not an int")),
        ("8.5", (None, "wrong type: seq: '8.5' is not an int")),
    ):
        readings = JsonDecoder(cems(plant), "stack-1")(json.dumps(base | {"seq": seq}).encode(), 1)
        assert (readings[1].value, readings[1].quality) == expected, seq


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("epoch_s", 1_764_000_000, 1_764_000_000_000_000_000),
        ("epoch_s", 1_764_000_000.5, 1_764_000_000_500_000_000),
        ("epoch_ms", 1_764_000_000_123, 1_764_000_000_123_000_000),
        ("epoch_ns", 1_764_000_000_123_456_789, 1_764_000_000_123_456_789),
        ("iso8601", "2025-11-24T16:00:00.123456+08:00", 1_763_971_200_123_456_000),
        ("iso8601", "2025-11-24T08:00:00Z", 1_763_971_200_000_000_000),
    ],
)
def test_timestamp_formats(fmt: str, raw: object, expected: int) -> None:
    assert parse_timestamp(MqttTimestamp(path="t", format=fmt), {"t": raw}) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "raw", "message"),
    [
        ("iso8601", "2025-11-24T08:00:00", "has no timezone"),
        ("iso8601", 1764000000, "is not an ISO 8601 string"),
        ("epoch_ms", float("inf"), "is not finite"),
        ("epoch_ns", "1764000000", "is not a number"),
    ],
)
def test_bad_timestamps_are_rejected(fmt: str, raw: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_timestamp(MqttTimestamp(path="t", format=fmt), {"t": raw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "raw"), [("epoch_ms", 1e300), ("epoch_s", -5), ("iso8601", "9999-12-31T00:00:00Z")]
)
def test_a_time_outside_1970_to_2262_is_refused_per_field_not_by_influxdb(fmt: str, raw: object) -> None:
    """Parsed as it is, then refused where every reading's time is checked (the message is kept)."""
    ts = parse_timestamp(MqttTimestamp(path="t", format=fmt), {"t": raw})  # type: ignore[arg-type]
    reason = future_skew(ts, 1_764_000_000 * 10**9, 300 * 10**9)
    assert reason is not None and reason.startswith("bad timestamp: ")


def test_an_infinite_timestamp_from_json_is_a_counted_reject(plant: Plant, tmp_path: Path) -> None:
    subscriber = MqttSubscriber(plant, lambda r, a: None, max_payload=1000, samples_file=tmp_path / "r.jsonl")
    subscriber.handle(message("plants/works/north/cems/stack-1/data", b'{"ts": Infinity, "values": {}}'))
    assert subscriber.outcomes == {"rejected": 1}
    assert subscriber.rejects.counts == {("stack-1", "bad timestamp"): 1}


def test_plain_values(plant: Plant) -> None:
    device_map = plant.maps["meter-1"]
    assert isinstance(device_map, MqttDeviceMap)
    power, running, flag = device_map.fields
    assert decode_value(power, "meter-1", b" 31.5\n", 7).value == 31500.0
    assert decode_value(running, "meter-1", b"true", 7).value is True
    assert decode_value(flag, "meter-1", "正常".encode(), 7).value == "正常"
    with pytest.raises(PayloadError, match="empty payload"):
        decode_value(power, "meter-1", b"", 7)
    with pytest.raises(PayloadError, match="is not a float"):
        decode_value(power, "meter-1", b"NaN-ish", 7)


def message(topic: str, payload: bytes, mid: int = 1) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    msg.payload = payload
    msg.qos = 1
    return msg


TOPICS = [
    "plants/works/north/cems/stack-1/data",
    "plants/works/east/cems/stack-2/data",
    "plants/works/meters/meter-1/p",
    "plants/works/meters/meter-1/running",
    "plants/works/meters/meter-1/nonsense",
    "spBv1.0/works/DDATA/gw1/saf9",
    "spBv1.0/works/NBIRTH/gw1",
    "spBv1.0/works/DBIRTH/gw1/saf9",
    "spBv1.0/works/DDEATH/gw1/saf9",
    "spBv1.0/works/DDATA/gw1/elsewhere",
    "spBv1.0/works/BOGUS/gw1/saf9",
]
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["ts", "values", "dust", "seq", "flag"]), inner, max_size=5)
        ),
        max_leaves=12,
    ).map(lambda doc: json.dumps(doc).encode()),
)


KEPT_ANYWAY = (BAD_FIELD_TIMESTAMP, TOO_MANY_TAG_VALUES)  # counted, the message kept


@given(messages=st.lists(st.tuples(st.sampled_from(TOPICS), PAYLOADS), min_size=1, max_size=30))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_every_message_is_accepted_or_counted(
    plant: Plant, tmp_path: Path, messages: list[tuple[str, bytes]]
) -> None:
    accepted: list[PollResult] = []
    acks: list[int] = []

    def sink(result: PollResult, on_accepted: object) -> None:
        accepted.append(result)
        if on_accepted is not None:
            on_accepted()  # type: ignore[operator]

    subscriber = MqttSubscriber(plant, sink, max_payload=200, samples_file=tmp_path / "rejects.jsonl")

    class Connection:
        def ack(self, mid: int, qos: int) -> None:
            acks.append(mid)

        def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
            pass

    subscriber.connection = Connection()
    for mid, (topic, payload) in enumerate(messages, start=1):
        subscriber.handle(message(topic, payload, mid))
    assert subscriber.messages == len(messages)
    assert sum(subscriber.outcomes.values()) == len(messages)  # each message: accepted, rejected or ignored
    assert sorted(acks) == list(range(1, len(messages) + 1))  # and acknowledged exactly once
    assert subscriber.outcomes["rejected"] == sum(
        n
        for (_, reason), n in subscriber.rejects.counts.items()
        if reason
        not in ("bad field", "sparkplug rebirth requested", BAD_FIELD_TIMESTAMP, TOO_MANY_TAG_VALUES)
    )
    assert len({id(r) for r in accepted}) >= subscriber.outcomes["accepted"]
    for result in accepted:
        for reading in result.readings:
            assert (reading.value is None) != (reading.quality == "good")


def test_a_failing_handler_never_strands_the_messages_behind_it(tmp_path: Path) -> None:
    import asyncio

    from plantwatch.config.plant import MqttConfig
    from plantwatch.infra.mqtt import MqttConnection

    handled: list[str] = []

    def on_message(msg: mqtt.MQTTMessage) -> None:
        if msg.topic == "bad":
            raise RuntimeError("a bug")
        handled.append(msg.topic)

    async def run() -> None:
        connection = MqttConnection(
            MqttConfig(url="mqtt://127.0.0.1:1"),
            client_id="t",
            base_dir=tmp_path,
            subscriptions=[],
            on_message=on_message,
        )
        for topic in ("a", "bad", "b", "c"):  # as paho's loop_read delivers them
            connection._receive(connection.client, None, message(topic, b"1"))

    asyncio.run(run())
    assert handled == ["a", "b", "c"]
