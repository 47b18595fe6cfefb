"""One paho-mqtt 2.x connection: MQTT 5, persistent session, manual acks, TLS and auth from config."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantwatch.config.plant import MqttConfig
from plantwatch.config.secrets import secret

log = logging.getLogger(__name__)


class MqttConnection:
    """`async with MqttConnection(...)`: connects (and keeps reconnecting) in paho's own thread.

    Messages arrive on the event loop through `on_message`; subscriptions are (re)made on every
    connect. With `clean_start: false` and a session expiry the broker keeps our subscriptions
    and queues QoS 1 messages while we are away; each message is acknowledged only by `ack()`.
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
        self._loop = asyncio.get_running_loop()
        parts = urlsplit(config.url)
        self.host, self.port = (
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if parts.scheme == "mqtts" else 1883),
        )
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.manual_ack_set(True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
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
        self._inbox: deque[mqtt.MQTTMessage] = deque()
        self._was_connected = False
        self._closing = False

    def _receive(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        """In paho's thread: queue the message; wake the event loop once per batch, not per message."""
        wake = not self._inbox
        self._inbox.append(message)
        if wake:
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        """On the event loop: handle every queued message, in arrival order.

        A failure on one message must not stop the rest: `_receive` only wakes the loop when
        the inbox was empty, so an exception here would leave the others stranded. The failed
        message is not acknowledged, so the broker delivers it again on the next session.
        """
        while self._inbox:
            message = self._inbox.popleft()
            try:
                self.on_message(message)
            except Exception:
                log.exception(
                    "MQTT: failed to handle a message on %s; it stays unacknowledged", message.topic
                )

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        if self.subscriptions:
            client.subscribe([(topic, self.config.qos) for topic in self.subscriptions])
        resumed = getattr(flags, "session_present", False)
        log.info(
            "MQTT connected to %s:%d (%s session), %d subscription(s)",
            self.host,
            self.port,
            "resumed" if resumed else "new",
            len(self.subscriptions),
        )
        self._was_connected = True
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._loop.call_soon_threadsafe(self.connected.clear)
        if self._was_connected and not self._closing:
            log.warning("MQTT disconnected from %s:%d (%s); reconnecting", self.host, self.port, reason)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (sends its PUBACK)."""
        if qos > 0:
            self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        """Publish; paho queues it while the connection is down."""
        self.client.publish(topic, payload, qos=qos)

    async def __aenter__(self) -> MqttConnection:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = int(self.config.session_expiry)
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=self.config.clean_start, properties=properties
        )
        self.client.loop_start()
        try:
            await asyncio.wait_for(self.connected.wait(), 10)
        except TimeoutError:
            log.error("MQTT %s:%d not reachable yet; retrying in the background", self.host, self.port)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
