"""`plantwatch alerts`: the alert service fed by the readings bus over MQTT: one worker per plant (a
shared subscription on MQTT 5), or workers partitioned by device (`--worker I/N`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from plantwatch.alerts.health import AlertsHealth
from plantwatch.alerts.partition import Worker, worker_devices, worker_file, worker_plant
from plantwatch.alerts.setup import build_alert_service
from plantwatch.app.exit_codes import EXIT_INVALID, EXIT_OK
from plantwatch.app.lifecycle import influx_output, service_runtime, stop_on_signals
from plantwatch.app.reports import send_documents
from plantwatch.config.plant import MqttConfig, Plant, load_plant_config
from plantwatch.config.problems import ConfigError, Problem
from plantwatch.config.secrets import SecretError
from plantwatch.config.targets import resolve_targets
from plantwatch.contract.bus import BusMessageError, bus_subscription, bus_topic, results_from_bus
from plantwatch.core.outage_log import OutageLog
from plantwatch.core.tasks import supervised
from plantwatch.infra.mqtt import MqttConnection

log = logging.getLogger(__name__)
ALERTS_BUFFER = "plantwatch-alerts-buffer.sqlite"


async def run_alerts(plant: Plant, health_interval: float = 10.0, worker: Worker | None = None) -> None:
    """Consume `plantwatch/v2/<plant>/+` (a worker: its devices' topics) until SIGINT/SIGTERM; KPI
    and alert points go to InfluxDB through a durable buffer of their own when the plant has an
    `influx` section. The daily digest and monthly report come from the first worker only."""
    mqtt_config = plant.config.mqtt
    assert mqtt_config is not None
    base = plant.path.parent if plant.path else Path.cwd()
    whole_plant = plant
    plant_id = plant.config.plant.id
    client_id = f"{mqtt_config.client_id or f'plantwatch-{plant_id}'}-alerts"
    topics = [bus_subscription(plant_id)]
    if worker is not None:
        devices = worker_devices(plant, resolve_targets(plant.config.alerts, str(plant.path)), worker)
        plant = worker_plant(plant, devices, worker)
        client_id = f"{client_id}-{worker.name}"  # its own persistent session
        topics = [bus_topic(plant_id, device) for device in sorted(devices)]
        log.log(
            logging.INFO if devices else logging.WARNING,
            "alerts: %s watches %d of %d device(s)%s",
            worker.name,
            len(devices),
            len(whole_plant.config.devices),
            "" if devices else " (devices computed together stay together: docs/deployment.md)",
        )
    elif mqtt_config.protocol_version == "5":  # workers split the messages; 3.1.1 has no groups
        topics = [f"$share/{plant.config.alerts.share_group}/{topics[0]}"]
    with stop_on_signals(asyncio.Event()) as stop, service_runtime():
        async with AsyncExitStack() as stack:
            write_lines: Callable[[list[str]], object] | None = None
            if plant.config.influx is not None:
                # beside the collector's buffer (a writable folder), never the same file
                name = ALERTS_BUFFER if worker is None else worker_file(ALERTS_BUFFER, worker)
                own_buffer = str(Path(plant.config.buffer.path).with_name(name))
                output = await stack.enter_async_context(
                    influx_output(plant, plant.config.influx, own_buffer)
                )
                write_lines = output.buffer.append
            # silences live in the plant's state file (`plantwatch silence` writes them there)
            shared = base / whole_plant.config.alerts.state if worker is not None else None
            service = build_alert_service(plant, write_lines=write_lines, silences=shared)
            stack.callback(service.close)
            restarts: Counter[str] = Counter()
            skipped: Counter[str] = Counter()
            health = AlertsHealth(
                service,
                health_interval,
                restarts=restarts,
                bus_skipped=skipped,
                worker=worker.tag if worker else None,
            )
            running = [
                asyncio.create_task(supervised("alerts", lambda: service.run(stop), stop, restarts)),
                asyncio.create_task(supervised("health", lambda: health.run(stop), stop, restarts)),
            ]
            if worker is None or worker.index == 1:  # the whole plant's documents, once
                running.append(
                    asyncio.create_task(
                        supervised(
                            "documents", lambda: send_documents(whole_plant, service, stop), stop, restarts
                        )
                    )
                )
            connection: MqttConnection
            bad_messages = OutageLog(log)

            def on_message(message: mqtt.MQTTMessage) -> None:
                ack = partial(connection.ack, message.mid, message.qos)
                try:
                    results = results_from_bus(message.payload)
                except BusMessageError as exc:  # a poison message: skipped, acknowledged, counted
                    skipped[message.topic] += 1
                    bad_messages.failure(
                        "readings bus %s: %s (%d so far)", message.topic, exc, skipped.total()
                    )
                    ack()
                    return
                bad_messages.recovered("readings bus: good messages again")
                # acknowledged once the KPI windows its results moved are saved (the next
                # checkpoint after the last): a crash before then gets it again from the broker
                for index, result in enumerate(results, 1):
                    try:  # the ack is queued first: it goes with the next checkpoint even if this fails
                        service.handle(result, ack=ack if index == len(results) else None)
                    except Exception:  # one result's bug must not cost the others
                        log.exception(
                            "alerts: readings bus %s: a result broke the alert service", message.topic
                        )
                if not results:
                    ack()

            connection = MqttConnection(
                mqtt_config,
                client_id=client_id,
                base_dir=base,
                subscriptions=topics,
                on_message=on_message,
            )
            log.info(
                "alerts: %d rule(s) on %d device(s), reading %s",
                len(service.rules),
                len(service.engine.calculators),
                topics[0] if len(topics) == 1 else f"{len(topics)} device topics",
            )
            async with connection:
                await stop.wait()
            for task in running:
                await task


def command(args: argparse.Namespace) -> int:
    """The alert service alone, reading the readings bus over MQTT."""
    path = Path(args.config)
    worker = None
    if args.worker is not None:
        try:
            worker = Worker.parse(args.worker)
        except ValueError as exc:
            print(f"--worker: {exc}", file=sys.stderr)
            return EXIT_INVALID
    plant = load_plant_config(path)
    if plant.config.mqtt is None:
        raise ConfigError(
            [Problem(str(path), "mqtt", "required by `plantwatch alerts`: the broker of the readings bus")]
        )
    if args.mqtt_url is not None:
        try:
            mqtt_config = MqttConfig.model_validate({**plant.config.mqtt.model_dump(), "url": args.mqtt_url})
        except ValidationError as exc:
            why = exc.errors()[0]["msg"]
            print(
                f"--mqtt-url {args.mqtt_url!r}: {why} (mqtt://host:port or mqtts://host:port)",
                file=sys.stderr,
            )
            return EXIT_INVALID
        plant = replace(plant, config=plant.config.model_copy(update={"mqtt": mqtt_config}))
    try:
        asyncio.run(run_alerts(plant, args.health_interval, worker))
    except SecretError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK
