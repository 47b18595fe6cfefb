"""The MQTT connection on the event loop against a real Mosquitto: bursts, acks, garbage cycles."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import paho.mqtt.client as mqtt

from plantwatch.config.plant import MqttConfig
from plantwatch.infra.mqtt import READS_PER_WAKEUP, MqttConnection, TopicCallbacks
from tests.mqtt_helpers import MqttTestClient
from tests.services.mosquitto import MosquittoServer
from tests.waiting import wait_until_async

BURST = 40 * READS_PER_WAKEUP  # small messages: many wakeups' worth arrive in one read of the socket


def test_a_queued_burst_arrives_whole_and_every_ack_reaches_the_broker(
    broker: MosquittoServer, tmp_path: Path
) -> None:
    """The connection reads the socket in chunks and hands paho READS_PER_WAKEUP packets per
    wakeup: packets already read but not yet handed over must not wait for the next traffic
    (here there is none: the burst is all the broker sends). A wakeup never takes more than
    READS_PER_WAKEUP messages, even while our own QoS 1 publishes wait for their PUBACKs behind
    the burst (paho's loop_read then reads one packet per publish in flight): the event loop's
    timers keep running."""
    config = MqttConfig(url=broker.url, client_id="burst")
    received: list[int] = []
    per_wakeup: list[int] = []
    connection: MqttConnection

    def on_message(message: mqtt.MQTTMessage) -> None:
        if not received:  # publishes in flight while the burst comes in, as the readings bus's
            for _ in range(200):
                connection.publish("burst/echo", b"x")
        received.append(int(message.payload))
        connection.ack(message.mid, message.qos)

    async def session(until: int) -> None:
        nonlocal connection
        connection = MqttConnection(
            config, client_id="burst", base_dir=tmp_path, subscriptions=["burst/t"], on_message=on_message
        )
        read = connection._read

        def counted_read() -> None:
            before = len(received)
            read()
            per_wakeup.append(len(received) - before)

        connection._read = counted_read  # type: ignore[method-assign]
        async with connection:
            await wait_until_async(connection.connected.is_set, 10, "connected")
            await wait_until_async(lambda: len(received) >= until, 10, f"{until} messages")

    asyncio.run(session(0))  # subscribes; the broker keeps the session while we are away
    publisher = MqttTestClient(broker, "burst-publisher")
    for seq in range(BURST):
        publisher.publish("burst/t", str(seq), wait=False)
    publisher.publish("burst/t", str(BURST))  # waits for its PUBACK: the broker holds them all
    publisher.close()

    asyncio.run(session(BURST + 1))
    assert received == list(range(BURST + 1))  # all of them, in order, none twice
    assert max(per_wakeup) <= READS_PER_WAKEUP

    # every acknowledgement reached the broker (runs of PUBACKs go out as one write): a new
    # message is the first and only one the session gets, nothing is delivered again
    received.clear()
    publisher = MqttTestClient(broker, "burst-publisher")
    publisher.publish("burst/t", "-1")
    publisher.close()
    asyncio.run(session(1))
    assert received == [-1]


def test_looking_up_topic_callbacks_leaves_no_garbage_cycles() -> None:
    """paho looks every message up among per-topic callbacks; its matcher leaves a reference
    cycle per lookup, which only the cyclic garbage collector frees. Ours leaves none while
    nothing is registered, and still matches like paho's once something is."""
    callbacks = TopicCallbacks()
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            assert list(callbacks.iter_match("plants/works/line-1")) == []
        assert gc.collect() < 100  # paho's matcher leaves 6 per lookup; stray garbage elsewhere is allowed
    finally:
        gc.enable()
    callbacks["plants/+/line-1"] = "registered"
    assert list(callbacks.iter_match("plants/works/line-1")) == ["registered"]
    assert list(callbacks.iter_match("plants/works/line-2")) == []
