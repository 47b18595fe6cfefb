"""`plantwatch alerts`: the alert service fed by the readings bus over MQTT (shared subscription on v5)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import paho.mqtt.client as mqtt

from plantwatch.alerts.service import AlertService
from plantwatch.collector.mqtt.bus import TOPIC_PREFIX
from plantwatch.collector.mqtt.client import MqttConnection
from plantwatch.collector.reading import PollResult, Reading
from plantwatch.collector.service import influx_output
from plantwatch.config.plant import Plant

log = logging.getLogger(__name__)
ALERTS_BUFFER = "plantwatch-alerts-buffer.sqlite"


class BusMessageError(ValueError):
    """A bus message that does not follow the contract in docs/data-model.md."""


def result_from_bus(payload: bytes | bytearray) -> PollResult:
    """A readings-bus message back into the result the collector committed."""
    try:
        message = json.loads(payload)
        device = message["device"]
        readings = [
            Reading(device, name, f["value"], int(f["ts"]), f["quality"], f.get("unit"), f.get("role"))
            for name, f in message["fields"].items()
        ]
        ts = int(message["ts"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BusMessageError(f"not a readings-bus message: {exc!r}"[:200]) from exc
    return PollResult(device, readings, started_ns=ts, finished_ns=ts)


async def run_alerts(plant: Plant) -> None:
    """Consume `plantwatch/v1/<plant>/+` until SIGINT/SIGTERM; KPI and alert points go to InfluxDB
    through a durable buffer of their own when the plant has an `influx` section."""
    mqtt_config = plant.config.mqtt
    assert mqtt_config is not None
    base = plant.path.parent if plant.path else Path.cwd()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    buffer = forwarder = None
    tasks = []
    if plant.config.influx is not None:
        # beside the collector's buffer (a writable folder), never the same file
        own_buffer = str(Path(plant.config.buffer.path).with_name(ALERTS_BUFFER))
        buffer, forwarder = influx_output(plant, plant.config.influx, own_buffer)
        tasks.append(asyncio.create_task(forwarder.run(stop)))
    service = AlertService(plant, write_lines=buffer.append if buffer else None)
    tasks.append(asyncio.create_task(service.run(stop)))
    plant_id = plant.config.plant.id
    topic = f"{TOPIC_PREFIX}/{plant_id}/+"
    if mqtt_config.protocol_version == "5":  # workers split the messages; 3.1.1 has no shared groups
        topic = f"$share/{plant.config.alerts.share_group}/{topic}"
    connection: MqttConnection

    def on_message(message: mqtt.MQTTMessage) -> None:
        try:
            service.handle(result_from_bus(message.payload))
        except BusMessageError as exc:
            log.error("readings bus %s: %s", message.topic, exc)
        connection.ack(message.mid, message.qos)  # state is on disk: safe to acknowledge

    connection = MqttConnection(
        mqtt_config,
        client_id=f"{mqtt_config.client_id or f'plantwatch-{plant_id}'}-alerts",
        base_dir=base,
        subscriptions=[topic],
        on_message=on_message,
    )
    log.info(
        "alerts: %d rule(s) on %d device(s), reading %s",
        len(service.rules),
        len(service.engine.calculators),
        topic,
    )
    try:
        async with connection:
            await stop.wait()
        await asyncio.gather(*tasks)
        if forwarder is not None and plant.config.influx is not None:
            await forwarder.flush(plant.config.influx.shutdown_timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        service.close()
        if forwarder is not None:
            forwarder.writer.close()
        if buffer is not None:
            buffer.close()
