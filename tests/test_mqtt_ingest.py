"""MQTT devices end to end: Mosquitto, `plantwatch collect` and InfluxDB as separate processes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.mqtt_helpers import SUBSCRIBED, MqttTestClient, mqtt_plant
from tests.services.amqtt_broker import AmqttServer
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import log_count, start_plantwatch, stop, wait_for_log
from tests.waiting import wait_until

BASE_MS = 1_764_000_000_000
SENTINEL = 1000  # seq of a message sent last: once it is stored, everything before it has been
MQTT_3_1_1 = ", protocol_version: '3.1.1'"  # mqtt_plant(mqtt_extra=...)


def cems_message(seq: int, dust: object = 31.5) -> str:
    return json.dumps({"ts": BASE_MS + seq, "values": {"dust": dust}, "seq": seq, "flag": "N"})


def dust_points(server: InfluxDBServer, device: str) -> list[list[object]]:
    series = server.query(f"SELECT dust, seq, line FROM cems WHERE device = '{device}'", "plant")
    return series[0]["values"] if series else []


def wait_for_points(server: InfluxDBServer, device: str, count: int, timeout: float = 30) -> None:
    wait_until(lambda: len(dust_points(server, device)) >= count, timeout, f"{count} dust points of {device}")


def test_json_messages_reach_influxdb_and_the_readings_bus(
    broker: MosquittoServer, plant_influx: InfluxDBServer, tmp_path: Path
) -> None:
    config = mqtt_plant(tmp_path, broker.url, plant_influx.url)
    listener = MqttTestClient(broker, "bus-listener")
    listener.subscribe("plantwatch/v2/works/#")
    collect = start_plantwatch(
        "collect", "--config", str(config), "--health-interval", "1s", log=tmp_path / "c.log"
    )
    wait_for_log(tmp_path / "c.log", SUBSCRIBED)
    device = MqttTestClient(broker, "cems-logger")
    for seq in range(50):
        device.publish("plants/works/north/cems/stack-1/data", cems_message(seq))
    device.publish("plants/works/north/cems/stack-1/data", b"{not json")
    device.publish("plants/works/north/cems/stack-1/data", cems_message(99, dust="high"))
    device.publish("plants/works/north/cems/stack-1/data", b"x" * 300_000)
    device.publish(
        "plants/works/south/cems/stack-2/data", json.dumps({"values": {"dust": 1}})
    )  # no timestamp
    listener.wait_for_bus_results(51, "plantwatch/v2/works/stack-1", timeout=20)
    wait_until(lambda: log_count(tmp_path / "plantwatch-mqtt-rejects.jsonl", "\n") == 4, 20, "4 rejects")
    wait_for_points(plant_influx, "stack-1", 51)
    assert stop(collect) == 0
    device.close()
    listener.close()

    points = dust_points(plant_influx, "stack-1")
    assert len(points) == 51  # 50 whole messages, and the one whose dust was bad keeps seq and flag
    assert points[-1][1:3] == [None, 99]
    assert [p[0] for p in points[:2]] == [BASE_MS * 10**6, (BASE_MS + 1) * 10**6]  # the payload's own time
    assert {p[3] for p in points} == {"north"}  # the {line} topic level became a tag
    assert points[7][1:3] == [31.5, 7]

    quality = plant_influx.query("SELECT reason FROM plantwatch_quality WHERE device = 'stack-1'", "plant")
    assert quality[0]["values"][0][1] == "wrong type: dust: 'high' is not a float"

    samples = [
        json.loads(line) for line in (tmp_path / "plantwatch-mqtt-rejects.jsonl").read_text().splitlines()
    ]
    reasons = {(s["device"], s["reason"]) for s in samples}
    assert reasons == {
        ("stack-1", "bad json"),
        ("stack-1", "bad field"),
        ("stack-1", "too large"),
        ("stack-2", "bad timestamp"),
    }
    bad_json = next(s for s in samples if s["reason"] == "bad json")
    assert bad_json["payload"] == "{not json" and bad_json["topic"] == "plants/works/north/cems/stack-1/data"

    bus_messages = listener.bus_messages("plantwatch/v2/works/stack-1")
    assert len(bus_messages) == 51  # 50 good + the one with a bad field: every accepted message
    first = bus_messages[0]
    assert first["device"] == "stack-1" and first["plant"] == "works"
    assert first["fields"]["dust"] == {
        "value": 31.5,
        "quality": "good",
        "ts": BASE_MS * 10**6,
        "unit": "mg/m3",
        "role": "dust_concentration",
    }


def test_username_password_from_the_environment(tmp_path: Path, plant_influx: InfluxDBServer) -> None:
    broker = MosquittoServer(tmp_path / "mosquitto", users={"plantwatch": "s3cret-pw", "logger": "pw2"})
    broker.start()
    try:
        config = mqtt_plant(tmp_path, broker.url, plant_influx.url)
        config.write_text(
            config.read_text().replace(
                "client_id: pw-test",
                "client_id: pw-test, username_env: PW_MQTT_USER, password_env: PW_MQTT_PASSWORD",
            )
        )
        env = {"PW_MQTT_USER": "plantwatch", "PW_MQTT_PASSWORD": "s3cret-pw"}
        os.environ.update(env)
        try:
            collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c.log")
            wait_for_log(tmp_path / "c.log", SUBSCRIBED)
            device = MqttTestClient(broker, "cems-logger", user=("logger", "pw2"))
            for seq in range(5):
                device.publish("plants/works/north/cems/stack-1/data", cems_message(seq))
            wait_for_points(plant_influx, "stack-1", 5)
            assert stop(collect) == 0
            device.close()
            os.environ["PW_MQTT_PASSWORD"] = "wrong"
            bad = start_plantwatch("collect", "--config", str(config), log=tmp_path / "bad.log")
            wait_for_log(tmp_path / "bad.log", "refused the connection")
            assert stop(bad) == 0
        finally:
            for key in env:
                os.environ.pop(key, None)
        assert len(dust_points(plant_influx, "stack-1")) == 5
        log = (tmp_path / "bad.log").read_text()
        assert "s3cret" not in log and "wrong" not in (tmp_path / "c.log").read_text()
    finally:
        broker.stop()


def test_tls_with_the_fixtures_own_ca(tmp_path: Path, plant_influx: InfluxDBServer) -> None:
    broker = MosquittoServer(tmp_path / "mosquitto", tls=True)
    broker.start()
    try:
        config = mqtt_plant(tmp_path, broker.url, plant_influx.url)
        config.write_text(
            config.read_text().replace(
                "client_id: pw-test", f"client_id: pw-test, ca_file: {broker.certs['ca']}"
            )
        )
        collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c.log")
        wait_for_log(tmp_path / "c.log", SUBSCRIBED)
        device = MqttTestClient(broker, "cems-logger")
        for seq in range(5):
            device.publish("plants/works/north/cems/stack-1/data", cems_message(seq))
        wait_for_points(plant_influx, "stack-1", 5)
        assert stop(collect) == 0
        device.close()
        assert len(dust_points(plant_influx, "stack-1")) == 5
        assert "MQTT connected to 127.0.0.1" in (tmp_path / "c.log").read_text()
    finally:
        broker.stop()


@pytest.mark.slow
def test_broker_and_collector_restarts_lose_no_accepted_message(
    broker: MosquittoServer, plant_influx: InfluxDBServer, tmp_path: Path
) -> None:
    config = mqtt_plant(tmp_path, broker.url, plant_influx.url)
    topic = "plants/works/north/cems/stack-1/data"
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c1.log")
    wait_for_log(tmp_path / "c1.log", SUBSCRIBED)
    device = MqttTestClient(broker, "cems-logger")
    sent = 0

    def publish(count: int) -> None:
        nonlocal sent
        wait_until(device.client.is_connected, 30, "the device connected")
        for _ in range(count):
            device.publish(topic, cems_message(sent))  # returns once the broker acknowledged it
            sent += 1

    publish(200)  # all up
    assert stop(collect) == 0  # collector away: the broker queues for its persistent session
    publish(100)
    broker.stop()  # ... and the broker restarts with that queue on disk
    broker.start()
    publish(100)
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c2.log")

    def c2_connects() -> int:
        return (tmp_path / "c2.log").read_text().count("MQTT connected")

    wait_until(lambda: c2_connects() == 1, 30, "c2 connected")
    publish(100)
    broker.stop()  # the broker restarts under a running collector
    broker.start()
    publish(100)
    wait_until(lambda: c2_connects() == 2, 30, "c2 connected again")  # it reconnected by itself
    wait_for_log(tmp_path / "c2.log", SUBSCRIBED, count=2)
    os.kill(collect.pid, signal.SIGKILL)  # the collector dies mid-stream
    collect.wait(10)
    publish(100)
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c3.log")
    wait_until(
        lambda: len([p for p in dust_points(plant_influx, "stack-1") if p[1] is not None]) >= sent, timeout=60
    )
    assert stop(collect) == 0
    device.close()
    seqs = sorted(p[2] for p in dust_points(plant_influx, "stack-1") if p[1] is not None)
    assert seqs == list(range(sent))  # every message the broker accepted, none twice (same time, same point)
    assert sent == 700
    assert "resumed session" in (tmp_path / "c2.log").read_text()


def test_mqtt_3_1_1_on_the_embedded_amqtt_broker_reaches_influxdb_and_the_readings_bus(
    amqtt_broker: AmqttServer, plant_influx: InfluxDBServer, tmp_path: Path
) -> None:
    config = mqtt_plant(tmp_path, amqtt_broker.url, plant_influx.url, mqtt_extra=MQTT_3_1_1)
    listener = MqttTestClient(amqtt_broker, "bus-listener")
    listener.subscribe("plantwatch/v2/works/#")
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c.log")
    wait_for_log(tmp_path / "c.log", SUBSCRIBED)
    device = MqttTestClient(amqtt_broker, "cems-logger")
    for seq in range(30):
        device.publish("plants/works/north/cems/stack-1/data", cems_message(seq, dust=20.0 + seq))
    bus = listener.wait_for_bus_results(30, "plantwatch/v2/works/stack-1", timeout=20)
    wait_for_points(plant_influx, "stack-1", 30)
    assert stop(collect) == 0
    device.close()
    listener.close()

    points = dust_points(plant_influx, "stack-1")
    assert [(p[1], p[2]) for p in points] == [(20.0 + seq, seq) for seq in range(30)]
    bus_dust = [r["fields"]["dust"]["value"] for r in bus]
    assert bus_dust == [20.0 + seq for seq in range(30)]
    connected = f"MQTT connected to 127.0.0.1:{amqtt_broker.port} (MQTT 3.1.1, new session)"
    assert connected in (tmp_path / "c.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(("clean_start", "kept"), [(False, 40), (True, 20)])
def test_mqtt_3_1_1_session_keeps_what_arrives_while_the_collector_is_away_unless_clean(
    clean_start: bool, kept: int, broker: MosquittoServer, plant_influx: InfluxDBServer, tmp_path: Path
) -> None:
    """3.1.1 has no session expiry: `clean_start` becomes the CONNECT's clean-session flag."""
    extra = MQTT_3_1_1 + (", clean_start: true" if clean_start else "")
    config = mqtt_plant(tmp_path, broker.url, plant_influx.url, mqtt_extra=extra)
    topic = "plants/works/north/cems/stack-1/data"
    device = MqttTestClient(broker, "cems-logger")
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c1.log")
    wait_for_log(tmp_path / "c1.log", SUBSCRIBED)
    for seq in range(20):
        device.publish(topic, cems_message(seq))
    wait_for_points(plant_influx, "stack-1", 20)
    assert stop(collect) == 0
    for seq in range(20, 40):  # nobody subscribed: only a kept session queues these
        device.publish(topic, cems_message(seq))
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c2.log")
    wait_for_log(tmp_path / "c2.log", SUBSCRIBED)
    device.publish(topic, cems_message(SENTINEL))  # after the queued ones, if any were kept
    wait_until(
        lambda: [p[2] for p in dust_points(plant_influx, "stack-1")][-1:] == [SENTINEL], 20, "the sentinel"
    )
    assert stop(collect) == 0
    device.close()
    assert [p[2] for p in dust_points(plant_influx, "stack-1")] == [*range(kept), SENTINEL]
    session = "new session" if clean_start else "resumed session"
    assert f"(MQTT 3.1.1, {session})" in (tmp_path / "c2.log").read_text()


def test_an_mqtt_5_collector_on_a_3_1_1_only_broker_says_what_to_set(
    amqtt_broker: AmqttServer, plant_influx: InfluxDBServer, tmp_path: Path
) -> None:
    # protocol_version defaults to 5
    config = mqtt_plant(tmp_path, amqtt_broker.url, plant_influx.url, mqtt_extra=", connect_timeout: 1s")
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "c.log")
    wait_for_log(tmp_path / "c.log", "needs `mqtt.protocol_version: 3.1.1`", timeout=30)
    assert collect.poll() is None  # still running, still retrying
    assert stop(collect) == 0
    log = (tmp_path / "c.log").read_text()
    assert f"MQTT 127.0.0.1:{amqtt_broker.port} gave no answer to CONNECT" in log
    assert "MQTT connected" not in log
