"""Test helpers for MQTT: a publisher/subscriber that waits for acknowledgements, plant files."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.waiting import wait_until

SUBSCRIBED = "MQTT subscribed to"  # a plantwatch log line: the broker acknowledged its subscriptions


class Broker(Protocol):
    """What a test client needs of a broker (MosquittoServer, AmqttServer): its loopback port, and
    its CA when it speaks TLS."""

    @property
    def port(self) -> int: ...

    @property
    def certs(self) -> Mapping[str, Path]: ...


class MqttTestClient:
    """A paho client for tests: QoS 1 publishes that wait for PUBACK, and a message log."""

    def __init__(self, broker: Broker, client_id: str, *, user: tuple[str, str] | None = None) -> None:
        self.client_id = client_id
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
        if user:
            self.client.username_pw_set(*user)
        if broker.certs:
            self.client.tls_set(ca_certs=str(broker.certs["ca"]))
        self.received: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self._subscribed: set[int] = set()  # message ids of SUBSCRIBEs the broker acknowledged
        self.client.on_message = lambda _c, _u, m: self._store(m)
        self.client.on_subscribe = lambda _c, _u, mid, _r, _p: self._subscribed.add(mid)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _store(self, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(message)

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the broker's SUBACK: from then on, nothing on `topic` is missed."""
        wait_until(self.client.is_connected, 30, f"{self.client_id} connected")
        _, mid = self.client.subscribe(topic, qos=1)
        wait_until(lambda: mid in self._subscribed, 30, f"SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes | str, *, wait: bool = True) -> None:
        info = self.client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(timeout=30)

    def messages(self) -> list[mqtt.MQTTMessage]:
        """Every message received so far."""
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 30) -> list[mqtt.MQTTMessage]:
        """Until at least `count` messages arrived; all of them."""
        wait_until(lambda: len(self.messages()) >= count, timeout, f"{count} message(s) for {self.client_id}")
        return self.messages()

    def bus_messages(self, topic: str | None = None) -> list[dict[str, Any]]:
        """The readings-bus results received so far (of `topic` only, when given), in order, each
        with its message's `plant` and `device`: one bus message carries a commit's results."""
        found = []
        for message in self.messages():
            if topic is None or message.topic == topic:
                body = json.loads(message.payload)
                found += [{"plant": body["plant"], "device": body["device"], **r} for r in body["results"]]
        return found

    def wait_for_bus_results(self, count: int, topic: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Until at least `count` readings-bus results of `topic` arrived; all of them."""
        wait_until(
            lambda: len(self.bus_messages(topic)) >= count, timeout, f"{count} bus result(s) on {topic}"
        )
        return self.bus_messages(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


CEMS_MAP = """model: cems_json
description: CEMS data logger publishing JSON
sector: emissions
protocol: mqtt
measurement: cems
format: json
topic: plants/{plant}/{line}/cems/{device}/data
timestamp: {path: ts, format: epoch_ms}
fields:
  - {name: dust, path: values.dust, unit: mg/m3, role: dust_concentration}
  - {name: seq, type: int}
  - {name: data_flag, path: flag, type: string, role: data_flag}
"""

SPB_MAP = """model: furnace_spb
description: Furnace edge gateway publishing Sparkplug B
sector: ferroalloy
product: ferrosilicon
protocol: mqtt
measurement: saf
format: sparkplug_b
fields:
  - {name: active_power, path: Power/Active, unit: kW, role: power}
  - {name: active_energy, path: Energy/Active, type: int, unit: kWh, role: energy_counter}
"""


def mqtt_plant(
    folder: Path, broker_url: str, influx_url: str, *, mqtt_extra: str = "", sparkplug: bool = False
) -> Path:
    (folder / "cems_json.yaml").write_text(CEMS_MAP)
    (folder / "furnace_spb.yaml").write_text(SPB_MAP)
    devices = "  - {id: stack-1, map: cems_json.yaml}\n  - {id: stack-2, map: cems_json.yaml}\n"
    if sparkplug:
        devices += (
            "  - {id: saf-9, map: furnace_spb.yaml, vars: {group: works, edge_node: gw1, device: saf9}}\n"
        )
    config = folder / "plant.yaml"
    config.write_text(
        f"""plant: {{id: works, name: Works}}
devices:
{devices}influx: {{url: "{influx_url}", api: v1, database: plant, flush_interval: 200ms,
         shutdown_timeout: 20s}}
buffer: {{path: buffer.sqlite, dead_letter: dead.jsonl}}
mqtt: {{url: "{broker_url}", client_id: pw-test{mqtt_extra}}}
"""
    )
    return config
