"""The collector's own health: logged and written to InfluxDB (through the buffer) every interval."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter

from plantwatch.collector.sink import IngestStats
from plantwatch.contract.influx import (
    COLLECTOR_MEASUREMENT,
    DEVICE_HEALTH_MEASUREMENT,
    MQTT_REJECTS_MEASUREMENT,
    TAG_DEVICE,
    TAG_PLANT,
    fields_line,
)
from plantwatch.core.failpoints import failpoint
from plantwatch.infra.influx.buffer import DurableBuffer
from plantwatch.infra.influx.forwarder import ForwarderStats

log = logging.getLogger(__name__)


class HealthReporter:
    """Every `interval` seconds: one log line, one plantwatch_collector point, one point per device,
    and one plantwatch_mqtt_rejects point per (device, reason) of unusable MQTT messages."""

    def __init__(
        self,
        plant_id: str,
        device_ids: list[str],
        buffer: DurableBuffer,
        ingest: IngestStats,
        forwarder: ForwarderStats,
        interval: float = 10.0,
        mqtt_rejects: Counter[tuple[str, str]] | None = None,
        restarts: Counter[str] | None = None,
        skipped: Counter[str] | None = None,
    ) -> None:
        self.plant_id = plant_id
        self.device_ids = device_ids
        self.buffer = buffer
        self.ingest = ingest
        self.forwarder = forwarder
        self.interval = interval
        self.mqtt_rejects = mqtt_rejects
        self.restarts = restarts if restarts is not None else Counter()  # crashed tasks, by name
        self.skipped = skipped if skipped is not None else Counter()  # polls skipped, by device
        self.host = socket.gethostname()
        self._last = (time.monotonic(), 0)

    def report(self) -> str:
        """Write the health points into the buffer and return the log line."""
        failpoint("health.report")
        now_mono, now_ns = time.monotonic(), time.time_ns()
        then, readings_then = self._last
        rate = (self.ingest.readings - readings_then) / max(now_mono - then, 1e-9)
        self._last = (now_mono, self.ingest.readings)
        fields: list[tuple[str, object]] = [
            ("readings_per_s", round(rate, 3)),
            ("polls", self.ingest.polls),
            ("buffer_depth", self.buffer.depth),
            ("buffer_bytes", self.buffer.size),
            ("oldest_unsent_s", round(self.buffer.oldest_age(), 3)),
            ("written", self.forwarder.written),
            ("write_errors", self.forwarder.write_errors),
            ("dead_letters", self.forwarder.dead_letters),
            ("refused", self.buffer.refused),
            ("dropped", self.buffer.dropped),
            ("disk_refused", self.buffer.disk_refused),
            ("buffer_recreated", self.buffer.recreated),
            ("polls_skipped", self.skipped.total()),
            ("task_restarts", self.restarts.total()),
        ]
        lines = [
            fields_line(COLLECTOR_MEASUREMENT, {TAG_PLANT: self.plant_id, "host": self.host}, fields, now_ns)
        ]
        stale = []
        for device in self.device_ids:
            last = self.ingest.last_good_ns.get(device)
            if last is None:
                stale.append(f"{device} (never good)")
                continue
            age = (now_ns - last) / 1e9
            if age > 3 * self.interval:
                stale.append(f"{device} (last good {age:.0f}s ago)")
            tags = {TAG_PLANT: self.plant_id, TAG_DEVICE: device}
            lines.append(
                fields_line(DEVICE_HEALTH_MEASUREMENT, tags, [("last_success_age_s", round(age, 3))], now_ns)
            )
        for (device, reason), count in sorted((self.mqtt_rejects or {}).items()):
            tags = {TAG_PLANT: self.plant_id, TAG_DEVICE: device, "reason": reason}
            lines.append(fields_line(MQTT_REJECTS_MEASUREMENT, tags, [("count", count)], now_ns))
        self.buffer.append(lines)  # refused when the disk is full: the log line below still goes out
        text = (
            f"health: {rate:.1f} readings/s, buffer {self.buffer.depth} lines "
            f"(oldest {self.buffer.oldest_age():.1f}s), written {self.forwarder.written}, "
            f"write errors {self.forwarder.write_errors}, dead letters {self.forwarder.dead_letters}, "
            f"refused {self.buffer.refused + self.buffer.disk_refused}"
        )
        if self.skipped:
            text += f", polls skipped {self.skipped.total()}"
        if self.restarts:
            text += "; tasks restarted: " + ", ".join(f"{n} {c}x" for n, c in sorted(self.restarts.items()))
        if stale:
            text += "; not polling cleanly: " + ", ".join(stale)
        if self.mqtt_rejects:
            text += f"; MQTT messages rejected: {sum(self.mqtt_rejects.values())}"
        return text

    async def run(self, stop: asyncio.Event) -> None:
        """Report every interval until stopped, and once more at the end."""
        while True:
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                log.info(self.report())
                continue
            log.info(self.report())
            return
