"""The collector's sink: each poll result becomes line protocol and is appended to the durable buffer."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from plantwatch.collector.influx.buffer import DurableBuffer
from plantwatch.collector.influx.line_protocol import DeviceSeries, device_tags, poll_lines
from plantwatch.collector.reading import GOOD, PollResult
from plantwatch.config.plant import Plant

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """What the sink has seen, for the health report."""

    readings: int = 0  # good values accepted into the buffer
    polls: int = 0
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
    """Accepts poll results into the durable buffer with group commits.

    Polls are gathered for up to `commit_interval` seconds (or `commit_lines` lines) and
    committed in one transaction: a poll counts as accepted once that commit returns, so a
    crash can only lose polls that were never accepted. Call `flush()` before closing.
    """

    def __init__(
        self,
        plant: Plant,
        buffer: DurableBuffer,
        wakeup: asyncio.Event,
        batch_size: int,
        *,
        commit_interval: float = 0.05,
        commit_lines: int = 5000,
    ) -> None:
        self.series = plant_series(plant)
        self.buffer = buffer
        self.wakeup = wakeup
        self.batch_size = batch_size
        self.commit_interval = commit_interval
        self.commit_lines = commit_lines
        self.stats = IngestStats()
        self._lines: list[str] = []
        self._results: list[PollResult] = []
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, result: PollResult) -> None:
        """Queue one poll's lines; they are committed within `commit_interval`."""
        self._lines.extend(poll_lines(self.series[result.device], result))
        self._results.append(result)
        if len(self._lines) >= self.commit_lines:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.commit_interval, self.flush)

    def flush(self) -> None:
        """Commit everything queued; wake the forwarder once a full batch is waiting."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, results = self._lines, self._results
        self._lines, self._results = [], []
        if self.buffer.append(lines) == 0:
            return  # refused: the buffer is full and counts it in `refused`
        now = time.time_ns()
        for result in results:
            good = sum(1 for r in result.readings if r.quality == GOOD)
            self.stats.polls += 1
            self.stats.readings += good
            if good == len(result.readings):
                self.stats.last_good_ns[result.device] = now
        if self.buffer.depth >= self.batch_size:
            self.wakeup.set()
