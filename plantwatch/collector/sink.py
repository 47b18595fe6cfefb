"""The collector's sink: each poll result becomes line protocol and is appended to the durable buffer."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from plantwatch.config.plant import DeviceConfig, Plant
from plantwatch.contract.influx import DeviceSeries, append_poll_lines, device_tags
from plantwatch.core.lru import BoundedCache
from plantwatch.core.reading import PollResult
from plantwatch.infra.influx.buffer import DurableBuffer

log = logging.getLogger(__name__)

TAGGED_SERIES = 10_000  # cached series prefixes of topic-level tag combinations


@dataclass
class IngestStats:
    """What the sink has seen, for the health report."""

    readings: int = 0  # good values accepted into the buffer
    polls: int = 0
    last_good_ns: dict[str, int] = field(default_factory=dict)  # device id -> last fully good poll


def plant_series(plant: Plant) -> dict[str, DeviceSeries]:
    """Each device's series prefixes, from the data contract."""
    return {device.id: device_series(plant, device, {}) for device in plant.config.devices}


def device_series(plant: Plant, device: DeviceConfig, extra: dict[str, str]) -> DeviceSeries:
    """Series prefixes of a device, with `extra` tags (from topic levels) beside its own."""
    device_map = plant.maps[device.id]
    tags = device_tags(
        plant.config.plant.id, device.id, device_map.sector, device_map.model, device_map.product,
        {**device.tags, **extra},
    )  # fmt: skip
    return DeviceSeries.build(device_map.measurement or device_map.sector, tags)


Listener = Callable[[list[PollResult]], None]


class BufferSink:
    """Accepts poll results into the durable buffer with group commits.

    Polls are gathered for up to `commit_interval` seconds (or `commit_lines` lines) and
    committed in one transaction: a poll counts as accepted once that commit returns, so a
    crash can only lose polls that were never accepted. Then each result's `on_accepted`
    callback runs (an MQTT message is acknowledged there) and every listener gets the committed
    results (the readings bus, later the alert service). Call `flush()` before closing.
    """

    def __init__(
        self,
        plant: Plant,
        buffer: DurableBuffer,
        wakeup: asyncio.Event,
        batch_size: int,
        *,
        commit_interval: float = 0.05,
        commit_lines: int | None = None,  # default: a fifth of a batch, so batches fill with commits
    ) -> None:
        self.plant = plant
        self.series = plant_series(plant)
        self._devices = {device.id: device for device in plant.config.devices}
        self.buffer = buffer
        self.wakeup = wakeup
        self.batch_size = batch_size
        self.commit_interval = commit_interval
        self.commit_lines = commit_lines or max(1, batch_size // 5)
        self.stats = IngestStats()
        self.listeners: list[Listener] = []
        self._lines: list[str] = []
        self._results: list[tuple[PollResult, int, Callable[[], None] | None]] = []  # with good values
        self._timer: asyncio.TimerHandle | None = None
        # series of topic-level tag combinations: bounded, whatever the topics bring
        self._tagged: BoundedCache[tuple[str, tuple[tuple[str, str], ...]], DeviceSeries] = BoundedCache(
            TAGGED_SERIES
        )

    def _series(self, result: PollResult) -> DeviceSeries:
        if not result.tags:
            return self.series[result.device]
        key = (result.device, tuple(result.tags.items()))  # in topic-level order: one per device
        series = self._tagged.get(key)
        if series is None:
            series = device_series(self.plant, self._devices[result.device], result.tags)
            self._tagged.put(key, series)
        return series

    def __call__(self, result: PollResult, on_accepted: Callable[[], None] | None = None) -> None:
        """Queue one poll's lines; they are committed within `commit_interval`."""
        good = append_poll_lines(self._series(result), result, self._lines)
        self._results.append((result, good, on_accepted))
        if len(self._lines) >= self.commit_lines:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.commit_interval, self.flush)

    def flush(self) -> None:
        """Commit everything queued; then acknowledge, notify listeners, wake the forwarder."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, results = self._lines, self._results
        self._lines, self._results = [], []
        try:
            accepted = self.buffer.append(lines)
        except sqlite3.Error as exc:  # disk full or failing: keep running, count, acknowledge nothing
            self.buffer.refused += len(lines)
            log.error("buffer %s: cannot store %d line(s): %s", self.buffer.path, len(lines), exc)
            return
        if accepted == 0:
            return  # refused: the buffer is full and counts it in `refused`; nothing is acknowledged
        now = time.time_ns()
        stats = self.stats
        stats.polls += len(results)
        for result, good, on_accepted in results:
            stats.readings += good
            if good == result.size:
                stats.last_good_ns[result.device] = now
            if on_accepted is not None:
                on_accepted()
        committed = [result for result, _, _ in results]
        for listener in self.listeners:
            try:
                listener(committed)
            except Exception:  # the data is safe on disk; one consumer failing must not stop the rest
                log.exception("readings listener %r failed", listener)
        if self.buffer.depth >= self.batch_size:
            self.wakeup.set()
