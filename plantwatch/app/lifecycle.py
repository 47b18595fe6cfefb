"""What every long-running service shares: stop on SIGINT/SIGTERM, the interpreter tuned for a
stream of small objects (GIL switch interval, garbage collector), and the InfluxDB output
(durable buffer + forwarder) opened, run, flushed and closed in one place."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from plantwatch.config.plant import InfluxConfig, Plant
from plantwatch.core.tasks import supervised
from plantwatch.infra.influx.buffer import DurableBuffer
from plantwatch.infra.influx.forwarder import Forwarder, ForwarderStats
from plantwatch.infra.influx.writers import make_writer

log = logging.getLogger(__name__)

# The writers run HTTP on a worker thread. While the event loop is busy polling, that thread
# waits up to the interpreter's switch interval (5 ms) for the GIL at every step of a request
# (the convoy effect), and the forwarder falls behind. 0.5 ms cut the drain lag from 0.4 s to
# 0.1 s in benchmarks/influx_ingest.py (docs/performance.md).
SWITCH_INTERVAL = 0.0005
# A service makes and drops tens of thousands of small objects a second (readings, lines, MQTT
# messages) and holds each for up to a commit interval. With CPython's default thresholds
# (700, 10, 10) the cyclic collector runs hundreds of times a second, promotes those objects to
# older generations, and walks them again there; a collection every 50,000 allocations finds
# them gone (freed by reference counting, which the collector does not replace). What was built
# at startup (modules, config, maps) is frozen: never walked again. In benchmarks/influx_ingest.py
# 20,000 polls went from 0.83 s to 0.6 s (docs/performance.md); cyclic garbage waits longer.
GC_THRESHOLDS = (50_000, 20, 10)


@contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[asyncio.Event]:
    """SIGINT and SIGTERM set `stop` while inside; the default handlers come back afterwards."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@contextmanager
def service_runtime(
    switch_interval: float = SWITCH_INTERVAL, gc_thresholds: tuple[int, int, int] = GC_THRESHOLDS
) -> Iterator[None]:
    """Run with a short GIL switch interval and a collector tuned for a stream of short-lived
    objects, with what exists so far frozen; the previous settings come back afterwards."""
    previous_interval, previous_thresholds = sys.getswitchinterval(), gc.get_threshold()
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(switch_interval)
    gc.set_threshold(*gc_thresholds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous_interval)
        gc.set_threshold(*previous_thresholds)
        gc.unfreeze()


def open_buffer(plant: Plant, buffer_file: str) -> DurableBuffer:
    """The durable buffer at `buffer_file` (relative to the plant file), with the plant's settings."""
    base = plant.path.parent if plant.path else Path.cwd()
    cfg = plant.config.buffer
    return DurableBuffer(
        base / buffer_file, max_bytes=cfg.max_size, when_full=cfg.when_full, synchronous=cfg.synchronous
    )


@dataclass
class InfluxOutput:
    """A durable buffer and, when the plant has an `influx` section, the forwarder draining it."""

    buffer: DurableBuffer
    forwarder: Forwarder | None
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)  # set when a batch is worth sending
    stats: ForwarderStats = field(default_factory=ForwarderStats)
    left: int = 0  # lines still in the buffer when it was closed (sent at the next start)

    @property
    def target(self) -> str:
        """Where the lines go, for the log."""
        return self.forwarder.writer.target if self.forwarder else "the buffer only"


@asynccontextmanager
async def influx_output(
    plant: Plant,
    influx: InfluxConfig | None,
    buffer_file: str,
    *,
    drain: asyncio.Event | None = None,
    restarts: Counter[str] | None = None,
) -> AsyncIterator[InfluxOutput]:
    """Open the buffer at `buffer_file` and forward it to `influx` (none: lines wait in the buffer).

    The forwarder runs until `drain` is set (default: until the block ends); then what is left is
    flushed for up to `influx.shutdown_timeout`, and the writer and buffer are closed. What could
    not be sent stays in the buffer for the next start.
    """
    buffer = open_buffer(plant, buffer_file)
    if influx is None:
        output = InfluxOutput(buffer, None)
    else:
        base = plant.path.parent if plant.path else Path.cwd()
        forwarder = Forwarder(
            buffer,
            make_writer(influx),
            batch_size=influx.batch_size,
            flush_interval=influx.flush_interval,
            dead_letter=base / plant.config.buffer.dead_letter,
        )
        output = InfluxOutput(buffer, forwarder, forwarder.wakeup, forwarder.stats)
    drain = drain or asyncio.Event()
    forwarding = None
    if output.forwarder is not None:
        forwarder = output.forwarder
        forwarding = asyncio.create_task(
            supervised("forwarder", lambda: forwarder.run(drain), drain, restarts or Counter())
        )
    try:
        yield output
        drain.set()
        if forwarding is not None and output.forwarder is not None and influx is not None:
            log.info("stopping; flushing to InfluxDB for up to %.0fs", influx.shutdown_timeout)
            await forwarding
            await output.forwarder.flush(influx.shutdown_timeout)
    finally:
        drain.set()
        if forwarding is not None and not forwarding.done():
            forwarding.cancel()
        if output.forwarder is not None:
            output.forwarder.close()
        output.left = buffer.depth
        buffer.close()
