"""`plantwatch collect`: poll devices into the durable buffer and forward it to InfluxDB until signalled."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from plantwatch.collector.health import HealthReporter
from plantwatch.collector.influx.buffer import DurableBuffer
from plantwatch.collector.influx.forwarder import Forwarder
from plantwatch.collector.influx.writers import make_writer
from plantwatch.collector.scheduler import Collector
from plantwatch.collector.sink import BufferSink
from plantwatch.config.plant import InfluxConfig, Plant

log = logging.getLogger(__name__)


async def collect(plant: Plant, influx: InfluxConfig, *, health_interval: float = 10.0) -> int:
    """Run until SIGINT/SIGTERM; return the number of lines left in the buffer for the next start."""
    base = plant.path.parent if plant.path else Path.cwd()
    cfg = plant.config.buffer
    buffer = DurableBuffer(
        base / cfg.path, max_bytes=cfg.max_size, when_full=cfg.when_full, synchronous=cfg.synchronous
    )
    writer = make_writer(influx)
    forwarder = Forwarder(
        buffer, writer, batch_size=influx.batch_size, flush_interval=influx.flush_interval,
        dead_letter=base / cfg.dead_letter,
    )  # fmt: skip
    sink = BufferSink(plant, buffer, forwarder.wakeup, influx.batch_size)
    health = HealthReporter(
        plant.config.plant.id, [d.id for d in plant.config.devices], buffer, sink.stats, forwarder.stats,
        interval=health_interval,
    )  # fmt: skip
    stop, forwarder_stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "collect: %d device(s) -> %s, buffer %s (%d line(s) waiting)",
        len(plant.config.devices), writer.target, buffer.path, buffer.depth,
    )  # fmt: skip
    forwarding = asyncio.create_task(forwarder.run(forwarder_stop))
    reporting = asyncio.create_task(health.run(stop))
    try:
        async with Collector(plant, sink):
            await stop.wait()
        log.info("collect: stopping; polls drained, flushing for up to %.0fs", influx.shutdown_timeout)
        forwarder_stop.set()
        await forwarding
        await reporting
        await forwarder.flush(influx.shutdown_timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        left = buffer.depth
        writer.close()
        buffer.close()
    log.info("collect: stopped; %d line(s) left in the buffer for the next start", left)
    return left
