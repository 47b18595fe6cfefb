"""Sparkplug B: births, alias-only data, seq gaps and rebirth, deaths; unit level and end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plantwatch.collector.mqtt.payloads import PayloadError
from plantwatch.collector.mqtt.sparkplug import REBIRTH_METRIC, Payload, SparkplugTracker, parse
from tests.mqtt_helpers import SUBSCRIBED, MqttTestClient, mqtt_plant
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import start_plantwatch, stop, wait_for_log
from tests.waiting import wait_until

DOUBLE, INT64, UINT64, INT8 = 10, 4, 8, 1


def payload(seq: int, metrics: list[dict[str, object]], timestamp: int | None = None) -> bytes:
    message = Payload()
    message.seq = seq
    if timestamp is not None:
        message.timestamp = timestamp
    for spec in metrics:
        metric = message.metrics.add()
        for key, value in spec.items():
            setattr(metric, key, value)
    return message.SerializeToString()


BIRTH = [
    {"name": "Power/Active", "alias": 1, "datatype": DOUBLE, "double_value": 30000.5},
    {"name": "Energy/Active", "alias": 2, "datatype": UINT64, "long_value": 12_345_678},
    {"name": "Temp", "alias": 3, "datatype": INT8, "int_value": 2**32 - 3},
]


def test_tracker_resolves_aliases_detects_gaps_and_deaths() -> None:
    tracker = SparkplugTracker()
    node = tracker.handle(
        "NBIRTH",
        "gw1",
        None,
        payload(0, [{"name": "Node/Uptime", "alias": 9, "datatype": INT64, "long_value": 5}]),
    )
    assert node.values == {"Node/Uptime": (5, None)} and node.rebirth is None
    birth = tracker.handle("DBIRTH", "gw1", "saf9", payload(1, BIRTH, timestamp=1000))
    assert birth.device == "saf9" and birth.values["Temp"] == (-3, None)
    data = tracker.handle(
        "DDATA",
        "gw1",
        "saf9",
        payload(2, [{"alias": 1, "datatype": DOUBLE, "double_value": 31000.0, "timestamp": 2000}]),
    )
    assert data.values == {"Power/Active": (31000.0, 2000)} and data.rebirth is None
    gap = tracker.handle(
        "DDATA", "gw1", "saf9", payload(9, [{"alias": 2, "datatype": UINT64, "long_value": 12_345_700}])
    )
    assert gap.values == {"Energy/Active": (12_345_700, None)}
    assert gap.rebirth == "seq gap: expected 3, got 9"
    wrap = tracker.handle("DDATA", "gw1", "saf9", payload(10, []))
    assert wrap.rebirth is None
    unknown = tracker.handle(
        "DDATA", "gw1", "other", payload(11, [{"alias": 1, "datatype": DOUBLE, "double_value": 1.0}])
    )
    assert unknown.values == {} and unknown.rebirth == "alias 1 without a birth"
    death = tracker.handle("DDEATH", "gw1", "saf9", b"")
    assert death.death and death.device == "saf9"
    with pytest.raises(PayloadError) as info:
        parse(payload(12, BIRTH)[:-3])
    assert info.value.reason == "bad protobuf"


def test_seq_wraps_from_255_to_0() -> None:
    tracker = SparkplugTracker()
    tracker.handle("NBIRTH", "gw", None, payload(254, []))
    assert tracker.handle("NDATA", "gw", None, payload(255, [])).rebirth is None
    assert tracker.handle("NDATA", "gw", None, payload(0, [])).rebirth is None


def test_sparkplug_end_to_end(broker: MosquittoServer, plant_influx: InfluxDBServer, tmp_path: Path) -> None:
    influxdb = plant_influx
    config = mqtt_plant(tmp_path, broker.url, influxdb.url, sparkplug=True)
    edge = MqttTestClient(broker, "edge-gw1")
    edge.subscribe("spBv1.0/works/NCMD/gw1")
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c.log")
    wait_for_log(tmp_path / "c.log", SUBSCRIBED)
    base = "spBv1.0/works/{}/gw1"
    edge.publish(base.format("NBIRTH"), payload(0, []))
    edge.publish(base.format("DBIRTH") + "/saf9", payload(1, BIRTH, timestamp=1_764_000_000_000))
    for seq in range(2, 12):
        metrics = [
            {
                "alias": 1,
                "datatype": DOUBLE,
                "double_value": 30000.0 + seq,
                "timestamp": 1_764_000_000_000 + seq,
            },
            {
                "alias": 2,
                "datatype": UINT64,
                "long_value": 12_345_678 + seq,
                "timestamp": 1_764_000_000_000 + seq,
            },
        ]
        edge.publish(base.format("DDATA") + "/saf9", payload(seq, metrics))
    edge.publish(base.format("DDATA") + "/saf9", payload(20, []))  # seq gap: 12 was lost
    edge.publish(
        base.format("DDATA") + "/other", payload(21, [{"name": "X", "datatype": DOUBLE, "double_value": 1.0}])
    )
    edge.publish(base.format("DDATA") + "/saf9", b"\x08\x96")  # truncated protobuf
    edge.publish(base.format("DDEATH") + "/saf9", payload(22, []))
    commands = edge.wait_for(1, timeout=10)
    wait_until(  # the DDEATH, sent last, is stored: so is everything before it
        lambda: influxdb.query("SELECT reason FROM plantwatch_quality WHERE device = 'saf-9'", "plant"),
        20,
        "the DDEATH's stale points",
    )
    assert stop(collect) == 0
    edge.close()

    assert commands, "no rebirth request was published"
    request = Payload()
    request.ParseFromString(commands[0].payload)
    assert commands[0].topic == "spBv1.0/works/NCMD/gw1"
    assert [(m.name, m.boolean_value) for m in request.metrics] == [(REBIRTH_METRIC, True)]

    (power,) = influxdb.query("SELECT active_power, active_energy FROM saf WHERE device = 'saf-9'", "plant")
    values = power["values"]
    assert len(values) == 11  # the birth and ten alias-only DDATA
    assert values[0][1:] == [30000.5, 12_345_678] and values[0][0] == 1_764_000_000_000 * 10**6
    assert values[-1][1:] == [30011.0, 12_345_689] and values[-1][0] == (1_764_000_000_000 + 11) * 10**6
    (stale,) = influxdb.query(
        "SELECT reason, \"field\" FROM plantwatch_quality WHERE device = 'saf-9'", "plant"
    )
    assert {row[1] for row in stale["values"]} == {"stale: DDEATH"}
    assert {row[2] for row in stale["values"]} == {"active_power", "active_energy"}
    samples = [
        json.loads(line) for line in (tmp_path / "plantwatch-mqtt-rejects.jsonl").read_text().splitlines()
    ]
    assert {(s["device"], s["reason"]) for s in samples} == {
        ("saf-9", "sparkplug rebirth requested"),
        ("?", "unknown topic"),
        ("saf-9", "bad protobuf"),
    }
