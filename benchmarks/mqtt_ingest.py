"""MQTT ingest benchmark: messages/s into InfluxDB vs a bare paho subscriber, same stream, same run.

    python -m benchmarks.mqtt_ingest            # 3 rounds of 50,000 messages, about a minute
    python -m benchmarks.mqtt_ingest --messages 5000 --rounds 1

50,000 messages make a round last a few seconds: plantwatch's start and the last batch's trip
into InfluxDB (about 0.3 s together) and a noisy neighbour on a shared host then weigh less than
in a round of 20,000 (the default before 2026-12-04), which lasts about 1.5 s.

Each round starts a fresh Mosquitto and InfluxDB; medians over the rounds are reported. Three
persistent sessions subscribe, then go away; the same N JSON messages (QoS 1) are queued
by Mosquitto for each. The baseline is a bare paho-mqtt 2.x subscriber counting its queue;
a second measurement keeps plantwatch's ack rule (acknowledge after a 50 ms commit, paho
driven by an event loop) and does nothing else, the floor of a subscriber that loses nothing; plantwatch
is the real `collect` service (decode, durable buffer, acks after commit, forwarder, readings
bus) draining the third queue, timed until InfluxDB holds every point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.report import save
from plantwatch.app.collect import collect
from plantwatch.config.plant import load_plant_config
from tests.mqtt_helpers import mqtt_plant
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer

TOPIC = "plants/works/north/cems/stack-1/data"


def session_client(broker: MosquittoServer, client_id: str) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
    return client


def create_session(broker: MosquittoServer, client_id: str) -> None:
    """Connect once and subscribe, so the broker queues for this client while it is away."""
    client = session_client(broker, client_id)
    client.loop_start()
    client.subscribe(TOPIC, qos=1)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()


def publish(broker: MosquittoServer, count: int) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    infos = []
    for seq in range(count):
        body = {"ts": 1_764_000_000_000 + seq, "values": {"dust": 30 + seq % 10}, "seq": seq, "flag": "N"}
        infos.append(client.publish(TOPIC, json.dumps(body), qos=1))
    for info in infos:
        info.wait_for_publish(timeout=120)
    client.disconnect()
    client.loop_stop()


def bare_subscriber(broker: MosquittoServer, count: int) -> float:
    """Seconds for a plain paho subscriber to receive and acknowledge its queued `count`."""
    done = threading.Event()
    received = 0

    def on_message(_c: object, _u: object, _m: object) -> None:
        nonlocal received
        received += 1
        if received >= count:
            done.set()

    started = time.perf_counter()
    client = session_client(broker, "bench-bare")
    client.on_message = on_message
    client.loop_start()
    assert done.wait(300), f"bare subscriber got {received} of {count}"
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def manual_ack_floor(broker: MosquittoServer, count: int) -> float:
    """Seconds for paho with plantwatch's ack rule and nothing else: the socket driven by an
    event loop as in MqttConnection, each message acknowledged only after a 50 ms 'commit'.
    What any subscriber that acknowledges only what it has made durable starts from."""

    async def run() -> float:
        loop = asyncio.get_running_loop()
        pending: list[tuple[int, int]] = []
        done = asyncio.Event()
        received = 0

        def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
            nonlocal received
            pending.append((message.mid, message.qos))
            received += 1
            if received >= count:
                done.set()

        def read() -> None:
            for _ in range(64):
                client.loop_read()

        async def commit_and_ack() -> None:
            while True:
                await asyncio.sleep(0.05)
                batch, pending[:] = pending[:], []
                for mid, qos in batch:
                    client.ack(mid, qos)

        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="bench-manual",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.manual_ack_set(True)
        client.on_message = on_message
        client.on_socket_open = lambda _c, _u, sock: loop.add_reader(sock, read)
        client.on_socket_close = lambda _c, _u, sock: loop.remove_reader(sock)
        client.on_socket_register_write = lambda _c, _u, sock: loop.add_writer(sock, client.loop_write)
        client.on_socket_unregister_write = lambda _c, _u, sock: loop.remove_writer(sock)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        started = time.perf_counter()
        client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
        acker = asyncio.create_task(commit_and_ack())
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
        acker.cancel()
        client.disconnect()
        return elapsed

    return asyncio.run(run())


def plantwatch_collect(config: Path, influx: InfluxDBServer, count: int) -> float:
    """Seconds for `collect` to take its queued `count` messages into InfluxDB."""
    finished: list[float] = []

    def watch() -> None:
        while True:
            series = influx.query('SELECT count("dust") FROM cems', "plant")
            if series and series[0]["values"][0][1] >= count:
                finished.append(time.perf_counter())
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    plant = load_plant_config(config)
    assert plant.config.influx is not None
    threading.Thread(target=watch, daemon=True).start()
    started = time.perf_counter()
    asyncio.run(collect(plant, plant.config.influx, health_interval=3600))
    return finished[0] - started


def one_round(messages: int) -> tuple[float, float, float]:
    """Seconds taken by the bare subscriber, the ack-after-commit floor and plantwatch, on a
    fresh broker and InfluxDB."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker, influx = MosquittoServer(folder / "mosquitto"), InfluxDBServer(folder / "influxdb")
        broker.start()
        influx.start()
        influx.create_database("plant")
        try:
            config = mqtt_plant(folder, broker.url, influx.url)
            config.write_text(config.read_text().replace("client_id: pw-test", "client_id: bench-plantwatch"))
            for client_id in ("bench-bare", "bench-manual", "bench-plantwatch"):
                create_session(broker, client_id)
            publish(broker, messages)
            return (
                bare_subscriber(broker, messages),
                manual_ack_floor(broker, messages),
                plantwatch_collect(config, influx, messages),
            )
        finally:
            influx.stop()
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages", type=int, default=50_000, help="at most 100,000 (the test broker's queue)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="fresh broker and InfluxDB each; medians")
    args = parser.parse_args()
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds}: {args.messages} messages for each of 3 sessions", flush=True)
        bare, floor, ours = one_round(args.messages)
        rounds.append(
            {
                "bare_paho_messages_per_s": round(args.messages / bare),
                "paho_ack_after_commit_messages_per_s": round(args.messages / floor),
                "plantwatch_messages_per_s_into_influxdb": round(args.messages / ours),
                "ratio": round(bare / ours, 3),
            }
        )
        print(f"  {rounds[-1]}", flush=True)
    result: dict[str, object] = {
        "messages": args.messages,
        "rounds": rounds,
        **{key: statistics.median(r[key] for r in rounds) for key in rounds[0]},
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    save("mqtt_ingest", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
