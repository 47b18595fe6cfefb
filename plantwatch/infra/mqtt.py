"""One paho-mqtt 2.x connection run on the asyncio event loop: MQTT 5 (or 3.1.1), persistent session,
manual acks."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantwatch.config.plant import MqttConfig
from plantwatch.config.secrets import secret
from plantwatch.core.outage_log import OutageLog

log = logging.getLogger(__name__)

RECONNECT_DELAY = (1.0, 30.0)  # seconds: first retry, cap (doubling in between)
KEEPALIVE = 30  # seconds
READS_PER_WAKEUP = 64  # packets read per readable event before yielding to the loop
RECV_CHUNK = 65536  # bytes asked of the socket per system call
LINGER = 2.0  # seconds a closing connection waits for the broker to close after our DISCONNECT


class TopicCallbacks(MQTTMatcher):
    """paho's registry of per-topic callbacks, answering "none" without a walk while it is empty.

    paho looks every received message up in it, and `MQTTMatcher.iter_match` builds a recursive
    closure each time: a reference cycle only the cyclic garbage collector frees (six objects a
    message, 30,000 per gen-0 collection at 15,000 messages/s, 8 % of the time in
    benchmarks/mqtt_ingest.py). plantwatch registers no per-topic callbacks.
    """

    def iter_match(self, topic: str) -> Iterator[Any]:
        """What paho's matcher yields; nothing at once when nothing is registered."""
        if not self._root._children:
            return iter(())
        return super().iter_match(topic)


class BufferedClient(mqtt.Client):
    """paho's client, fixed and tuned for a stream: its socket read a chunk at a time,
    `loop_read` bounded by its argument, runs of PUBACKs written at once, and no reference cycle
    per message (TopicCallbacks). Each override says why.

    paho reads each packet with three or more `recv` calls (its first byte, its length, its
    body), each a system call, and it gives no sign that the socket is empty: a reader asking for
    more packets than have come pays for a failed `recv` and an exception each time. This
    client serves paho's small reads from one `recv` of up to RECV_CHUNK bytes and sets
    `drained` when the socket had nothing more. Bytes it holds are invisible to the selector:
    `buffered` says when there are some.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message_filtered = TopicCallbacks()
        self._inbox = b""
        self._taken = 0  # bytes of _inbox already handed to paho
        self._inbox_socket: object = None  # the socket _inbox came from: a reconnect drops the rest
        self.drained = False
        self.on_linger: Callable[[socket.socket], None] | None = None  # see _sock_close

    @property
    def buffered(self) -> bool:
        """Whether bytes read from the current socket wait here for paho."""
        return self._taken < len(self._inbox) and self._inbox_socket is self._sock

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Read at most `max_packets` packets. paho's own ignores the argument and reads as many
        packets as it holds QoS > 0 messages (our publishes waiting for their PUBACKs, queued
        ones included), so behind a stream of incoming messages one call read dozens of packets
        and one wakeup thousands: the event loop's timers (commits, polls) waited for seconds."""
        for _ in range(max_packets):
            if self._sock is None:
                return mqtt.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTT_ERR_AGAIN:
                return mqtt.MQTT_ERR_SUCCESS
        return mqtt.MQTT_ERR_SUCCESS

    def _packet_write(self) -> mqtt.MQTTErrorCode:
        """paho's write of its queue, with each run of queued PUBACKs sent as one buffer (a
        commit acknowledges hundreds of messages at once; paho would make a system call for each)."""
        queue = self._out_packet
        if len(queue) > 1:
            packets = []
            while queue:  # popleft: the connect thread may append meanwhile
                packets.append(queue.popleft())
            merged: list[Any] = []  # paho's packet dicts, a run of PUBACKs as its first
            contents: list[list[bytes | bytearray]] = []
            for packet in packets:
                previous = merged[-1] if merged else None
                if (
                    previous is not None
                    and packet["command"] == previous["command"] == mqtt.PUBACK
                    and packet["pos"] == previous["pos"] == 0
                ):
                    contents[-1].append(packet["packet"])
                else:
                    merged.append(packet)
                    contents.append([packet["packet"]])
            for packet, parts in zip(merged, contents, strict=True):
                if len(parts) > 1:
                    packet["packet"] = b"".join(parts)
                    packet["to_process"] = len(packet["packet"])
            queue.extendleft(reversed(merged))
        return super()._packet_write()

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        """paho's, for the common PUBLISH: QoS 0 or 1 without MQTT 5 properties, unlogged.

        paho builds a `Properties` for every MQTT 5 PUBLISH, with or without properties: two
        dictionaries of some thirty entries each, then thirty `hasattr` checks to clear them.
        That was a fifth of the event loop's time in benchmarks/mqtt_ingest.py. Here such a
        message gets `properties=None`, as under 3.1.1 (plantwatch reads none). Anything else
        (properties, QoS 2, a malformed packet or QoS 3, paho's logging on) goes to paho's own.
        """
        header, body = self._in_packet["command"], self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if qos > 1 or self.on_log is not None or self._logger is not None or len(body) < 2:
            return super()._handle_publish()
        topic_end = 2 + int.from_bytes(body[:2], "big")
        mid_end = topic_end + 2 if qos else topic_end
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            if len(body) <= mid_end or body[mid_end] != 0:  # properties, or too short: paho's
                return super()._handle_publish()
            payload_start = mid_end + 1  # the properties' length, 0
        else:
            if len(body) < mid_end or topic_end == 2:  # 3.1.1 forbids an empty topic
                return super()._handle_publish()
            payload_start = mid_end
        message = mqtt.MQTTMessage(
            mid=int.from_bytes(body[topic_end:mid_end], "big"), topic=bytes(body[2:topic_end])
        )
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.payload = bytes(body[payload_start:])
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(message.mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_close(self) -> None:
        """paho's close; with `on_linger` set, the connection outlives it, handed over as a copy.

        A socket closed while bytes from the broker wait unread in it is reset by the kernel,
        not closed, and the broker then drops what it had not yet read from us: the PUBACKs
        just before our DISCONNECT, for messages we had committed, which it sends again. Whoever
        takes the copy reads the rest until the broker closes, then closes it (on the event loop's
        thread only; `MqttConnection` gives up after LINGER).
        """
        sock, linger = self._sock, self.on_linger
        if sock is None or linger is None:
            super()._sock_close()
            return
        try:
            spare = socket.socket(fileno=os.dup(sock.fileno()))  # a second descriptor of the same connection
        except OSError:  # out of descriptors: close as paho does
            super()._sock_close()
            return
        super()._sock_close()
        linger(spare)

    def close_socket(self) -> None:
        """Close the connection at once, if open (paho's own close)."""
        self._sock_close()

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self.buffered:
            try:
                self._inbox = super()._sock_recv(RECV_CHUNK)
            except BlockingIOError:
                self.drained = True
                raise
            self._inbox_socket, self._taken = self._sock, 0
        start = self._taken
        self._taken = start + bufsize
        return self._inbox[start : start + bufsize]


class MqttConnection:
    """`async with MqttConnection(...)`: connects, and keeps reconnecting with backoff.

    paho's socket is driven by the event loop (add_reader/add_writer, as aiomqtt does), not by
    paho's own thread: messages, acks and publishes then never cross threads, which doubled
    the rate a manually acknowledging subscriber keeps up with (docs/performance.md).
    Subscriptions are (re)made on every connect. With `clean_start: false` and a session expiry
    (MQTT 5), or `clean_session=False` (3.1.1), the broker keeps our subscriptions and queues
    QoS 1 messages while we are away; each message is acknowledged only by `ack()`.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str,
        base_dir: Path,
        subscriptions: list[str],
        on_message: Callable[[mqtt.MQTTMessage], None],
    ) -> None:
        self.config = config
        self.subscriptions = subscriptions
        self.on_message = on_message
        self.connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        parts = urlsplit(config.url)
        self.host, self.port = (
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if parts.scheme == "mqtts" else 1883),
        )
        self.mqtt5 = config.protocol_version == "5"
        if self.mqtt5:  # the session is chosen per connect (clean_start, expiry)
            self.client = BufferedClient(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
        else:  # 3.1.1: the session is chosen once, per client
            self.client = BufferedClient(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=config.clean_start,
            )
        self.client.manual_ack_set(True)
        user = secret(config.username_env)
        if user is not None:
            self.client.username_pw_set(user, secret(config.password_env))
        if parts.scheme == "mqtts":
            self.client.tls_set(
                ca_certs=str(base_dir / config.ca_file) if config.ca_file else None,
                certfile=str(base_dir / config.cert_file) if config.cert_file else None,
                keyfile=str(base_dir / config.key_file) if config.key_file else None,
            )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._receive
        self.client.on_subscribe = self._on_subscribe
        self.client.on_socket_open = self._on_socket_open
        self.client.on_socket_close = self._on_socket_close
        self.client.on_socket_register_write = self._on_register_write
        self.client.on_socket_unregister_write = self._on_unregister_write
        self._was_connected = False
        self._closing = False
        self._outage = OutageLog(log)
        self._answered = asyncio.Event()  # this attempt got a CONNACK, accepting or refusing
        self._tasks: list[asyncio.Task[None]] = []
        self._read_pending: asyncio.Handle | None = None  # a `_read` scheduled by `_read_soon`

    # --- socket plumbing: paho calls these from the loop, or from the connect worker thread ---

    def _in_loop(self, call: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            call(*args)
        else:
            self._loop.call_soon_threadsafe(call, *args)

    # File descriptors, not socket objects: paho closes the socket right after on_socket_close,
    # possibly before a call handed to the loop from the connect thread runs.

    def _on_socket_open(self, _client: mqtt.Client, _userdata: Any, sock: mqtt.SocketLike) -> None:
        self._in_loop(self._loop.add_reader, sock.fileno(), self._read)

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, sock: mqtt.SocketLike) -> None:
        fd = sock.fileno()
        self._in_loop(self._loop.remove_reader, fd)
        self._in_loop(self._loop.remove_writer, fd)
        self._in_loop(self._disconnected.set)

    def _on_register_write(self, _client: mqtt.Client, _userdata: Any, sock: mqtt.SocketLike) -> None:
        self._in_loop(self._loop.add_writer, sock.fileno(), self.client.loop_write)

    def _on_unregister_write(self, _client: mqtt.Client, _userdata: Any, sock: mqtt.SocketLike) -> None:
        self._in_loop(self._loop.remove_writer, sock.fileno())

    def _read(self) -> None:
        """Readable socket: take packets until it is drained, up to READS_PER_WAKEUP of them
        (`loop_read` reads one per call).

        Bytes the client holds, and with TLS bytes already decrypted inside the SSL object, are
        invisible to the selector; they are read on the next loop iteration instead of waiting
        for more traffic.
        """
        client = self.client
        client.drained = False
        for _ in range(READS_PER_WAKEUP):
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or client.drained:
                return
        sock = client.socket()
        if client.buffered or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            self._read_soon()

    def _linger(self, sock: socket.socket, done: asyncio.Event) -> None:
        """After our DISCONNECT: read and drop what the broker still sends (messages we never
        acknowledged: it sends them again next session) until it closes, so that our last acks
        are not lost to a reset (`BufferedClient._sock_close`). Closed after LINGER at the latest."""
        if threading.get_ident() != self._loop_thread:  # a close in the connect thread: nothing to save
            sock.close()
            self._in_loop(done.set)
            return
        sock.setblocking(False)
        fd = sock.fileno()

        def finish() -> None:
            if not done.is_set():
                self._loop.remove_reader(fd)
                timer.cancel()
                sock.close()
                done.set()

        def drain() -> None:
            try:
                for _ in range(READS_PER_WAKEUP):  # then the loop's turn: LINGER ends a flood too
                    if not sock.recv(RECV_CHUNK):
                        break  # the broker closed its side
                else:
                    return
            except BlockingIOError:
                return  # more to come
            except OSError:
                pass  # reset
            finish()

        timer = self._loop.call_later(LINGER, finish)
        self._loop.add_reader(fd, drain)

    def _read_soon(self) -> None:
        """`_read` on the next loop iteration, once however often asked: a read scheduled per
        readable event as well would pile up, and each iteration would read more and more."""
        if self._read_pending is None:
            self._read_pending = self._loop.call_soon(self._read_again)

    def _read_again(self) -> None:
        self._read_pending = None
        self._read()

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(1)
            if self.client.socket() is not None:
                self.client.loop_misc()

    async def _connect_forever(self) -> None:
        """Connect; after every disconnection reconnect, backing off from 1 s to 30 s."""
        session: dict[str, Any] = {}
        if self.mqtt5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = int(self.config.session_expiry)
            session = {"clean_start": self.config.clean_start, "properties": properties}
        delay = RECONNECT_DELAY[0]
        while not self._closing:
            self._disconnected.clear()
            self._answered.clear()
            try:
                await self._loop.run_in_executor(
                    None,
                    lambda: self.client.connect(self.host, self.port, keepalive=KEEPALIVE, **session),
                )
            except (OSError, ValueError) as exc:
                self._outage.failure("MQTT %s:%d not reachable (%s); retrying", self.host, self.port, exc)
            else:
                if not await self._answer_or_close():
                    self.client.disconnect()  # a silent broker: close the socket and try again
                await self._disconnected.wait()
                if self.connected.is_set():
                    delay = RECONNECT_DELAY[0]  # it was up: start the backoff again
                elif not self._answered.is_set() and not self._closing:
                    self._outage.failure(
                        "MQTT %s:%d gave no answer to CONNECT%s; retrying",
                        self.host,
                        self.port,
                        " (a broker that speaks only MQTT 3.1.1 needs `mqtt.protocol_version: 3.1.1`)"
                        if self.mqtt5
                        else "",
                    )
                self.connected.clear()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAY[1])

    async def _answer_or_close(self) -> bool:
        """Wait for the CONNACK or the socket's close; False if neither came within connect_timeout."""
        waits = [
            asyncio.ensure_future(self._answered.wait()),
            asyncio.ensure_future(self._disconnected.wait()),
        ]
        done, pending = await asyncio.wait(
            waits, timeout=self.config.connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for wait in pending:
            wait.cancel()
        return bool(done)

    # --- MQTT events, all on the event loop ---

    def _receive(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Hand one message on. A failure on it must not stop the rest of the stream; the failed
        message is not acknowledged, so the broker delivers it again on the next session. So is
        a QoS 1 message that arrives while closing: its ack would come after our DISCONNECT (a QoS
        0 one still goes on: it would not come again)."""
        if self._closing and message.qos:
            return
        try:
            self.on_message(message)
        except Exception:
            log.exception("MQTT: failed to handle a message on %s; it stays unacknowledged", message.topic)

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        self._answered.set()
        if reason.is_failure:
            self._outage.failure("MQTT %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        self._outage.recovered("MQTT %s:%d accepts the connection again", self.host, self.port)
        if self.subscriptions:
            client.subscribe([(topic, int(self.config.qos)) for topic in self.subscriptions])
        resumed = getattr(flags, "session_present", False)
        log.info(
            "MQTT connected to %s:%d (MQTT %s, %s session), %d subscription(s)",
            self.host,
            self.port,
            self.config.protocol_version,
            "resumed" if resumed else "new",
            len(self.subscriptions),
        )
        self._was_connected = True
        self.connected.set()

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[Any], _props: Any
    ) -> None:
        """The broker's answer to our SUBSCRIBE: from here on, messages for these topics reach us."""
        refused = [
            f"{topic} ({reason})"
            for topic, reason in zip(self.subscriptions, reasons, strict=False)
            if reason.is_failure
        ]
        if refused:
            log.error("MQTT %s:%d refused subscription(s): %s", self.host, self.port, ", ".join(refused))
        log.info(
            "MQTT subscribed to %d of %d topic(s) on %s:%d",
            len(reasons) - len(refused),
            len(self.subscriptions),
            self.host,
            self.port,
        )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._in_loop(self._disconnected.set)
        if self._was_connected and not self._closing and self.connected.is_set():
            log.warning("MQTT disconnected from %s:%d (%s); reconnecting", self.host, self.port, reason)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (queues its PUBACK)."""
        if qos > 0:
            self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        """Publish; QoS 1 messages queued while the connection is down go out on reconnect."""
        self.client.publish(topic, payload, qos=qos)

    async def __aenter__(self) -> MqttConnection:
        self._tasks = [
            asyncio.create_task(self._connect_forever()),
            asyncio.create_task(self._keepalive()),
        ]
        # No waiting for the broker here: polling starts at once and SIGTERM is honoured at once;
        # QoS 1 publishes wait in paho's queue, and a failed connect is logged by the outage log.
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        if self.client.socket() is not None:
            lingering = asyncio.Event()
            self.client.on_linger = lambda sock: self._linger(sock, lingering)
            self.client.disconnect()  # queued; the writer callback sends it and closes the socket
            try:
                await asyncio.wait_for(self._disconnected.wait(), 5)
                await asyncio.wait_for(lingering.wait(), LINGER + 1)  # its own timer ends it at LINGER
            except TimeoutError:
                log.warning("MQTT %s:%d: no clean disconnect within the time allowed", self.host, self.port)
            finally:
                self.client.on_linger = None
                self.client.close_socket()  # when the DISCONNECT could not be written
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
