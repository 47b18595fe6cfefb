"""The collector's sink: each poll result becomes line protocol and is appended to the durable buffer."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from plantwatch.collector.influx.buffer import DurableBuffer
from plantwatch.collector.influx.line_protocol import DeviceSeries, device_tags, poll_lines
from plantwatch.collector.reading import PollResult
from plantwatch.config.plant import Plant

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """What the sink has seen, for the health report."""

    readings: int = 0  # good values accepted into the buffer
    polls: int = 0
    refused_polls: int = 0
    last_good_ns: dict[str, int] = field(default_factory=dict)  # device id -> last fully good poll


def plant_series(plant: Plant) -> dict[str, DeviceSeries]:
    """Each device's series prefixes, from the data contract."""
    series = {}
    for device in plant.config.devices:
        device_map = plant.maps[device.id]
        tags = device_tags(
            plant.config.plant.id,
            device.id,
            device_map.sector,
            device_map.model,
            device_map.product,
            device.tags,
        )
        series[device.id] = DeviceSeries.build(device_map.measurement or device_map.sector, tags)
    return series


class BufferSink:
    """Accepts poll results: a result counts as accepted once its lines are committed to disk."""

    def __init__(self, plant: Plant, buffer: DurableBuffer, wakeup: asyncio.Event, batch_size: int) -> None:
        self.series = plant_series(plant)
        self.buffer = buffer
        self.wakeup = wakeup
        self.batch_size = batch_size
        self.stats = IngestStats()

    def __call__(self, result: PollResult) -> None:
        """Append one poll's lines; wake the forwarder once a full batch is waiting."""
        lines = poll_lines(self.series[result.device], result)
        if self.buffer.append(lines) == 0:
            self.stats.refused_polls += 1
            return
        self.stats.polls += 1
        self.stats.readings += sum(r.good for r in result.readings)
        if result.ok:
            self.stats.last_good_ns[result.device] = time.time_ns()
        if self.buffer.depth >= self.batch_size:
            self.wakeup.set()
