"""The alert service's own health: written to InfluxDB every interval, logged when it changes."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections import Counter

from plantwatch.alerts.service import AlertService
from plantwatch.contract.influx import (
    ALERTS_HEALTH_MEASUREMENT,
    NOTIFICATIONS_MEASUREMENT,
    TAG_PLANT,
    TAG_WORKER,
    fields_line,
)

log = logging.getLogger(__name__)
_WAITING = re.compile(r" \(oldest waiting \d+ s\)")


class AlertsHealth:
    """Every `interval` seconds: one plantwatch_alerts point and one plantwatch_notifications point
    per notifier, stamped with the wall time of the report. The log line goes out when it differs
    from the last one (a steady state is not repeated every 10 s) and once more at the end."""

    def __init__(
        self,
        service: AlertService,
        interval: float = 10.0,
        *,
        restarts: Counter[str] | None = None,
        bus_skipped: Counter[str] | None = None,
        worker: str | None = None,  # a partitioned worker's name: a `worker` tag on its points
    ) -> None:
        self.service = service
        self.interval = interval
        self.restarts = restarts if restarts is not None else Counter()  # crashed tasks, by name
        self.bus_skipped = bus_skipped if bus_skipped is not None else Counter()  # poison, by topic
        self.host = socket.gethostname()
        self.worker_tag = {TAG_WORKER: worker} if worker else {}
        self._said = ""

    def report(self) -> str:
        """Write the health points (when the service writes to InfluxDB) and return the log line."""
        service = self.service
        now = service.clock()
        queues = service.store.notification_counts()
        firing = sum(1 for alert in service.alerts.values() if alert.state == "firing")
        late = sum(kpis.gate.late for kpis in service.engine.devices.values())
        pending = sum(q.pending for q in queues.values())
        dead = sum(q.dead for q in queues.values())
        fields: list[tuple[str, object]] = [
            ("firing", firing),
            ("transitions", len(service.transitions)),
            ("late_readings", late),
            ("silenced", service.silenced),
            ("notifications_pending", pending),
            ("notifications_dead", dead),
            ("bus_skipped", self.bus_skipped.total()),
            ("task_restarts", self.restarts.total()),
        ]
        lines = [
            fields_line(
                ALERTS_HEALTH_MEASUREMENT,
                {TAG_PLANT: service.plant_id, "host": self.host, **self.worker_tag},
                fields,
                now,
            )
        ]
        parts = []
        for notifier, queue in sorted(queues.items()):
            oldest = 0.0 if queue.oldest_pending_ns is None else max(0, now - queue.oldest_pending_ns) / 1e9
            counts: list[tuple[str, object]] = [
                ("pending", queue.pending),
                ("sent", queue.sent),
                ("dead", queue.dead),
                ("oldest_pending_s", round(oldest, 3)),
            ]
            tags = {TAG_PLANT: service.plant_id, "notifier": notifier, **self.worker_tag}
            lines.append(fields_line(NOTIFICATIONS_MEASUREMENT, tags, counts, now))
            part = f"{notifier} {queue.sent} sent, {queue.pending} pending, {queue.dead} dead"
            parts.append(part + (f" (oldest waiting {oldest:.0f} s)" if queue.pending else ""))
        if service.write_lines is not None:
            service.write_lines(lines)
        text = f"alerts health: {firing} firing, {len(service.transitions)} transition(s) this run"
        if parts:
            text += "; notifications: " + "; ".join(parts)
        if late:
            text += f"; late readings {late}"
        if self.bus_skipped:
            text += f"; unreadable bus messages {self.bus_skipped.total()}"
        if self.restarts:
            text += "; tasks restarted: " + ", ".join(f"{n} {c}x" for n, c in sorted(self.restarts.items()))
        return text

    def _say(self, text: str, always: bool = False) -> None:
        # "oldest waiting" changes every report while something waits: compare without it
        steady = _WAITING.sub("", text)
        if always or steady != self._said:
            log.info(text)
        self._said = steady

    async def run(self, stop: asyncio.Event) -> None:
        """Report every interval until stopped, and once more at the end."""
        while True:
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                self._say(self.report())
                continue
            self._say(self.report(), always=True)
            return
