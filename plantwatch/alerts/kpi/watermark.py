"""One device's results put in event order, and its watermark: the event time before which every
window is final.

The watermark is the latest event time seen minus the device's allowed lateness. A result stamped
after the watermark waits (in a heap) until the watermark passes it, so calculators see results in
the order the device measured them, whatever order they arrived in. A result stamped before the
watermark came too late: its windows are already final, so it is counted, not used (InfluxDB
still stores it). A device that falls silent does not hold its windows open: once it has said
nothing for `silence_ns`, its watermark follows the wall clock from its last event time.
"""

from __future__ import annotations

import heapq
from typing import Any

from plantwatch.contract.bus import bus_payload, results_from_bus
from plantwatch.core.reading import PollResult


class EventTimeGate:
    """Event order and the watermark of one device."""

    def __init__(self, lateness_ns: int, silence_ns: int) -> None:
        self.lateness_ns = lateness_ns
        self.silence_ns = max(silence_ns, lateness_ns)
        self.watermark_ns: int | None = None  # windows ending at or before it are final
        self.max_event_ns: int | None = None  # the latest event time seen
        self.last_arrival_ns: int | None = None  # wall time of the latest result
        self.late = 0  # results that arrived after their windows were final
        self._pending: list[tuple[int, int, PollResult]] = []  # (event time, arrival order, result)
        self._order = 0

    def offer(self, result: PollResult, event_ns: int, now_ns: int) -> list[tuple[int, PollResult]] | None:
        """Take one result measured at `event_ns`: the results now final, oldest first; None when
        this one came too late to be used."""
        self.last_arrival_ns = now_ns
        if self.watermark_ns is not None and event_ns < self.watermark_ns:
            self.late += 1
            return None
        heapq.heappush(self._pending, (event_ns, self._order, result))
        self._order += 1
        self.max_event_ns = event_ns if self.max_event_ns is None else max(self.max_event_ns, event_ns)
        return self._advance_to(self.max_event_ns - self.lateness_ns)

    def tick(self, now_ns: int) -> list[tuple[int, PollResult]]:
        """A silent device's watermark follows the wall clock: the results that became final."""
        if self.last_arrival_ns is None or self.max_event_ns is None:
            return []
        silent = now_ns - self.last_arrival_ns
        if silent <= self.silence_ns:
            return []
        return self._advance_to(self.max_event_ns + silent - self.silence_ns) or []

    def _advance_to(self, watermark_ns: int) -> list[tuple[int, PollResult]]:
        if self.watermark_ns is not None and watermark_ns <= self.watermark_ns:
            return []
        self.watermark_ns = watermark_ns
        final = []
        while self._pending and self._pending[0][0] <= watermark_ns:
            event_ns, _, result = heapq.heappop(self._pending)
            final.append((event_ns, result))
        return final

    def state(self) -> dict[str, Any]:
        """What a restart needs: the watermark, the latest event time and the waiting results."""
        return {
            "watermark_ns": self.watermark_ns,
            "max_event_ns": self.max_event_ns,
            "late": self.late,
            "pending": [
                [ts, bus_payload("", result.device, [result]).decode()]
                for ts, _, result in sorted(self._pending)
            ],
        }

    def restore(self, state: dict[str, Any], now_ns: int) -> None:
        """Continue from `state`. The silence clock starts now: a backlog the broker kept for us
        while we were down is not late."""
        self.watermark_ns = state["watermark_ns"]
        self.max_event_ns = state["max_event_ns"]
        self.late = state.get("late", 0)
        self.last_arrival_ns = now_ns
        self._pending = []
        for ts, payload in state["pending"]:
            (result,) = results_from_bus(payload.encode())
            heapq.heappush(self._pending, (ts, self._order, result))
            self._order += 1
