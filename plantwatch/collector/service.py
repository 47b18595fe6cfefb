"""`plantwatch collect`: Modbus polls and MQTT messages into the durable buffer, forwarded to InfluxDB."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantwatch.collector.health import HealthReporter
from plantwatch.collector.influx.buffer import DurableBuffer
from plantwatch.collector.influx.forwarder import Forwarder, ForwarderStats
from plantwatch.collector.influx.writers import make_writer
from plantwatch.collector.mqtt.bus import ReadingsBus
from plantwatch.collector.mqtt.client import MqttConnection
from plantwatch.collector.mqtt.subscriber import MqttSubscriber
from plantwatch.collector.scheduler import Collector
from plantwatch.collector.sink import BufferSink
from plantwatch.config.plant import InfluxConfig, MqttConfig, Plant

if TYPE_CHECKING:
    from plantwatch.alerts.service import AlertService

log = logging.getLogger(__name__)

# The writers run HTTP on a worker thread. While the event loop is busy polling, that thread
# waits up to the interpreter's switch interval (5 ms) for the GIL at every step of a request
# (the convoy effect), and the forwarder falls behind. 0.5 ms cut the drain lag from 0.4 s to
# 0.1 s in benchmarks/influx_ingest.py (docs/performance.md).
SWITCH_INTERVAL = 0.0005


@contextmanager
def gil_switch_interval(seconds: float = SWITCH_INTERVAL) -> Iterator[None]:
    """Run with a shorter GIL switch interval, restoring the previous one afterwards."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@asynccontextmanager
async def mqtt_input(
    plant: Plant, config: MqttConfig, sink: BufferSink, base: Path, health: HealthReporter
) -> AsyncIterator[None]:
    """Subscribe to the plant's MQTT devices and, if configured, publish the readings bus."""
    subscriber = MqttSubscriber(
        plant, sink, max_payload=config.max_payload, samples_file=base / "plantwatch-mqtt-rejects.jsonl"
    )
    health.mqtt_rejects = subscriber.rejects.counts
    connection = MqttConnection(
        config,
        client_id=config.client_id or f"plantwatch-{plant.config.plant.id}",
        base_dir=base,
        subscriptions=subscriber.subscriptions,
        on_message=subscriber.handle,
    )
    subscriber.connection = connection
    if config.publish_readings:
        sink.listeners.append(ReadingsBus(connection, plant.config.plant.id))
    async with connection:
        yield
        sink.flush()  # acknowledge what was received before disconnecting


def open_buffer(plant: Plant, buffer_file: str) -> DurableBuffer:
    """The durable buffer at `buffer_file` (relative to the plant file), with the plant's settings."""
    base = plant.path.parent if plant.path else Path.cwd()
    cfg = plant.config.buffer
    return DurableBuffer(
        base / buffer_file, max_bytes=cfg.max_size, when_full=cfg.when_full, synchronous=cfg.synchronous
    )


def influx_output(plant: Plant, influx: InfluxConfig, buffer_file: str) -> tuple[DurableBuffer, Forwarder]:
    """A durable buffer (the plant's `buffer` settings, at `buffer_file`) and its forwarder to InfluxDB.

    The caller closes both: `forwarder.writer.close()` and `buffer.close()`.
    """
    base = plant.path.parent if plant.path else Path.cwd()
    buffer = open_buffer(plant, buffer_file)
    forwarder = Forwarder(
        buffer,
        make_writer(influx),
        batch_size=influx.batch_size,
        flush_interval=influx.flush_interval,
        dead_letter=base / plant.config.buffer.dead_letter,
    )
    return buffer, forwarder


async def collect(
    plant: Plant,
    influx: InfluxConfig | None,
    *,
    health_interval: float = 10.0,
    with_alerts: bool = False,
    stop: asyncio.Event | None = None,
    view: Callable[[AlertService | None, asyncio.Event], Coroutine[Any, Any, None]] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or `stop`); return the number of lines left in the buffer.

    `with_alerts` (`plantwatch run`) adds the alert service, fed in-process by every commit.
    Without `influx` (`plantwatch demo`), lines wait in the buffer for a later `collect`.
    `view`, when given, runs beside the service until it stops (the demo's live view).
    """
    base = plant.path.parent if plant.path else Path.cwd()
    if influx is not None:
        buffer, forwarder = influx_output(plant, influx, plant.config.buffer.path)
        wakeup, stats, target = forwarder.wakeup, forwarder.stats, forwarder.writer.target
    else:
        buffer = open_buffer(plant, plant.config.buffer.path)
        forwarder, wakeup, stats, target = None, asyncio.Event(), ForwarderStats(), "the buffer only"
    sink = BufferSink(plant, buffer, wakeup, influx.batch_size if influx else 5000)
    health = HealthReporter(
        plant.config.plant.id,
        [d.id for d in plant.config.devices],
        buffer,
        sink.stats,
        stats,
        interval=health_interval,
    )
    stop, forwarder_stop = stop or asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "collect: %d device(s) -> %s, buffer %s (%d line(s) waiting)",
        len(plant.config.devices),
        target,
        buffer.path,
        buffer.depth,
    )
    alerts = None
    if with_alerts:
        from plantwatch.alerts.service import AlertService

        alerts = AlertService(plant, write_lines=buffer.append)
    if alerts is not None:
        sink.listeners.append(alerts)
    try:
        with gil_switch_interval():
            tasks = [asyncio.create_task(health.run(stop))]
            forwarding = asyncio.create_task(forwarder.run(forwarder_stop)) if forwarder else None
            if alerts is not None:
                tasks.append(asyncio.create_task(alerts.run(stop)))
            if view is not None:
                tasks.append(asyncio.create_task(view(alerts, stop)))
            async with AsyncExitStack() as stack:
                if plant.config.mqtt is not None:
                    await stack.enter_async_context(mqtt_input(plant, plant.config.mqtt, sink, base, health))
                await stack.enter_async_context(Collector(plant, sink))
                await stop.wait()
            sink.flush()
            forwarder_stop.set()
            for task in tasks:
                await task
            if forwarder is not None and forwarding is not None and influx is not None:
                log.info(
                    "collect: stopping; polls drained, flushing for up to %.0fs", influx.shutdown_timeout
                )
                await forwarding
                await forwarder.flush(influx.shutdown_timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        left = buffer.depth
        if alerts is not None:
            alerts.close()
        if forwarder is not None:
            forwarder.writer.close()
        buffer.close()
    log.info("collect: stopped; %d line(s) left in the buffer for the next start", left)
    return left
