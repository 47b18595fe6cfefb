"""The MQTT connection on the event loop against a real Mosquitto: bursts, acks, garbage cycles,
PUBLISH packets decoded as paho decodes them."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantwatch.config.plant import MqttConfig
from plantwatch.infra import mqtt as infra_mqtt
from plantwatch.infra.mqtt import READS_PER_WAKEUP, BufferedClient, MqttConnection, TopicCallbacks
from tests.mqtt_helpers import MqttTestClient
from tests.services.mosquitto import MosquittoServer
from tests.waiting import wait_until_async

MQTTv5 = MQTTProtocolVersion.MQTTv5
BURST = 40 * READS_PER_WAKEUP  # small messages: many wakeups' worth arrive in one read of the socket


def visit(
    broker: MosquittoServer,
    tmp_path: Path,
    client_id: str,
    topic: str,
    record: Callable[[mqtt.MQTTMessage], object],
    until: Callable[[], bool],
) -> None:
    """One visit of a persistent session: connect, hand each message to `record` and acknowledge
    it, leave once `until()` holds."""

    async def run() -> None:
        def on_message(message: mqtt.MQTTMessage) -> None:
            record(message)
            connection.ack(message.mid, message.qos)

        config = MqttConfig(url=broker.url, client_id=client_id)
        connection = MqttConnection(
            config, client_id=client_id, base_dir=tmp_path, subscriptions=[topic], on_message=on_message
        )
        async with connection:
            await wait_until_async(connection.connected.is_set, 10, "connected")
            await wait_until_async(until, 10, "the messages expected")

    asyncio.run(run())


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


def test_acks_sent_before_a_clean_close_reach_the_broker_while_it_still_sends(
    broker: MosquittoServer, tmp_path: Path
) -> None:
    """A session that stops in the middle of a backlog: the broker is still sending when we
    disconnect. Closing a socket with unread bytes in it makes the kernel reset the connection,
    and the broker then loses what it had not yet read of ours: the last acks, so committed
    messages came again. The connection drains its socket after the DISCONNECT instead."""
    received: list[int] = []

    def record(message: mqtt.MQTTMessage) -> None:
        received.append(int(message.payload))

    def leave_after(count: int) -> None:
        visit(broker, tmp_path, "stopper", "stop/t", record, lambda: len(received) >= count)

    leave_after(0)  # subscribes; the broker keeps the session while we are away
    publisher = MqttTestClient(broker, "stop-publisher")
    backlog = 20_000
    for seq in range(backlog - 1):
        publisher.publish("stop/t", str(seq), wait=False)
    publisher.publish("stop/t", str(backlog - 1))
    publisher.close()

    while len(received) < backlog // 2:  # sessions that each leave with much of it still coming
        leave_after(len(received) + 1000)
        again = next((n for i, n in enumerate(received) if n != i), None)  # each took up where the last left
        assert again is None, f"message {again} came again: its ack was lost in the close"


def test_a_broker_that_never_closes_after_our_disconnect_is_left_after_linger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drain after our DISCONNECT waits for the broker to close, but not for ever: a broker
    that accepts the connection and then ignores it is closed on after LINGER."""
    monkeypatch.setattr(infra_mqtt, "LINGER", 0.3)
    ended = asyncio.Event()

    async def ignoring_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)  # CONNECT
        writer.write(bytes([0x20, 0x03, 0x00, 0x00, 0x00]))  # CONNACK, MQTT 5, accepted
        while await reader.read(1024):  # DISCONNECT among it: ignored, the socket kept open
            pass
        ended.set()  # our side closed
        writer.close()

    async def run() -> float:
        server = await asyncio.start_server(ignoring_broker, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = MqttConfig(url=f"mqtt://127.0.0.1:{port}", client_id="leaver")
        connection = MqttConnection(
            config, client_id="leaver", base_dir=tmp_path, subscriptions=[], on_message=lambda _m: None
        )
        async with connection:
            await wait_until_async(connection.connected.is_set, 10, "connected")
            leaving = time.monotonic()
        took = time.monotonic() - leaving
        await wait_until_async(ended.is_set, 5, "the broker saw our side close")
        server.close()
        return took

    took = asyncio.run(run())
    assert 0.3 <= took < 3  # LINGER, and not the 5 s of a DISCONNECT that was never written


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


def publish_packet(topic: bytes, payload: bytes, *, qos: int, mid: int, properties: bytes | None) -> bytes:
    """A PUBLISH's variable header and payload (what paho keeps as the packet): the topic,
    the message id for QoS > 0, MQTT 5 properties when given, the payload."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    return body + (properties if properties is not None else b"") + payload


def delivered(client: mqtt.Client, handle: object, header: int, body: bytes) -> dict[str, object]:
    """What `handle` (a client's _handle_publish) hands to on_message for one packet."""
    got: list[mqtt.MQTTMessage] = []
    client.on_message = lambda _c, _u, message: got.append(message)
    client.manual_ack_set(True)  # acks go nowhere: there is no socket
    client._in_packet = {"command": header, "packet": bytearray(body)}  # type: ignore[attr-defined]
    assert handle() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS  # type: ignore[operator]
    [message] = got
    properties = message.properties.json() if message.properties is not None else {}
    fields = ("topic", "payload", "qos", "mid", "dup", "retain")
    return {**{name: getattr(message, name) for name in fields}, "properties": properties}


def user_properties() -> bytes:
    properties = Properties(PacketTypes.PUBLISH)
    properties.ContentType = "application/json"
    properties.UserProperty = ("site", "北区")
    properties.MessageExpiryInterval = 60
    return properties.pack()


PUBLISHES = [  # (header, topic, payload, qos, mid, MQTT 5 properties)
    (0x30, b"plants/a/cems/stack-1/data", b'{"dust": 31.2}', 0, 0, b"\x00"),
    (0x32, b"plants/a/cems/stack-1/data", b'{"dust": 31.2}', 1, 4242, b"\x00"),
    (0x3B, "plants/北区/t".encode(), b"", 1, 65535, b"\x00"),  # dup, retain, empty payload
    (0x32, b"t", b"x" * 300, 1, 7, user_properties()),  # properties: paho's own decoding
]  # QoS 2 (paho's own) answers with a PUBREC before delivering: the broker test has it


@pytest.mark.parametrize("protocol", [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311])
@pytest.mark.parametrize(("header", "topic", "payload", "qos", "mid", "properties"), PUBLISHES)
def test_a_publish_is_handed_on_as_paho_hands_it_on(
    protocol: MQTTProtocolVersion,
    header: int,
    topic: bytes,
    payload: bytes,
    qos: int,
    mid: int,
    properties: bytes,
) -> None:
    """BufferedClient decodes a QoS 0/1 PUBLISH without properties itself; the message it hands
    on is paho's, but for `properties`: None where paho gives an empty set."""
    packet = publish_packet(
        topic, payload, qos=qos, mid=mid, properties=properties if protocol == 5 else None
    )
    ours = BufferedClient(callback_api_version=CallbackAPIVersion.VERSION2, protocol=protocol)
    paho = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=protocol)
    expected = delivered(paho, paho._handle_publish, header, packet)  # type: ignore[attr-defined]
    ours_delivered = delivered(ours, ours._handle_publish, header, packet)
    assert ours_delivered == expected
    assert type(ours_delivered["payload"]) is type(expected["payload"]) is bytes
    assert expected["payload"] == payload and expected["mid"] == mid and expected["qos"] == qos


@pytest.mark.parametrize("protocol", [MQTTv5, MQTTProtocolVersion.MQTTv311])
def test_a_publish_paho_refuses_is_refused(protocol: MQTTProtocolVersion) -> None:
    """QoS 3 does not exist, and 3.1.1 forbids an empty topic: paho answers with a protocol
    error (the connection is dropped) and hands nothing on; so does BufferedClient."""
    cases = [(0x36, publish_packet(b"t", b"x", qos=1, mid=7, properties=b"\x00" if protocol == 5 else None))]
    if protocol != 5:
        cases.append((0x30, publish_packet(b"", b"x", qos=0, mid=0, properties=None)))
    for header, packet in cases:
        answers = []
        for client in (
            BufferedClient(callback_api_version=CallbackAPIVersion.VERSION2, protocol=protocol),
            mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=protocol),
        ):
            client.on_message = lambda *_: pytest.fail("a packet paho refuses was handed on")
            client._in_packet = {"command": header, "packet": bytearray(packet)}  # type: ignore[attr-defined]
            try:
                answers.append(client._handle_publish())  # type: ignore[attr-defined]
            except MalformedPacket:
                answers.append("malformed")
        assert answers[0] == answers[1] != mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS, (hex(header), answers)


def test_a_truncated_publish_is_malformed_as_paho_says() -> None:
    """A packet too short for its own topic length or message id is paho's to refuse."""
    client = BufferedClient(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTv5)
    client.on_message = lambda *_: pytest.fail("a malformed packet was handed on")
    for body in (b"\x00", b"\x00\x09plants", b"\x00\x01t\x00"):  # topic cut short; mid cut short
        client._in_packet = {"command": 0x32, "packet": bytearray(body)}  # type: ignore[attr-defined]
        with pytest.raises(MalformedPacket):
            client._handle_publish()  # type: ignore[attr-defined]


def test_messages_with_and_without_properties_arrive_from_the_broker(
    broker: MosquittoServer, tmp_path: Path
) -> None:
    """Through a real Mosquitto: plain messages (our decoding) and one with MQTT 5 properties
    (paho's), each whole and in order."""
    received: list[tuple[bytes, int, object]] = []

    def record(message: mqtt.MQTTMessage) -> None:
        properties = message.properties.json() if message.properties is not None else None
        received.append((message.payload, message.qos, properties))

    visit(broker, tmp_path, "mixed", "mixed/#", record, lambda: True)  # subscribes, and goes
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTv5)
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    tagged = Properties(PacketTypes.PUBLISH)
    tagged.UserProperty = ("site", "north")
    for payload, properties in ((b"plain", None), (b"tagged", tagged), (b"plain again", None)):
        publisher.publish("mixed/t", payload, qos=1, properties=properties).wait_for_publish(10)
    publisher.disconnect()
    publisher.loop_stop()

    visit(broker, tmp_path, "mixed", "mixed/#", record, lambda: len(received) >= 3)
    assert received == [
        (b"plain", 1, None),
        (b"tagged", 1, {"UserProperty": [("site", "north")]}),
        (b"plain again", 1, None),
    ]
