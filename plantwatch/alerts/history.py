"""Recent values of each (device, rule), for the chart in a mail: closed windows (taps, hours,
days) from the state file, so they survive a restart (written with each checkpoint, as the KPI
windows that closed them are); rolling, live and early-warning values sampled once a minute in
memory."""

from __future__ import annotations

from collections import deque

from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.alerts.state import HISTORY, StateStore
from plantwatch.core.charts import Point

SAMPLE_NS = 60 * 10**9  # one rolling value a minute
SAMPLES = 180  # three hours of them


class KpiHistory:
    """What the chart of a transition shows."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._samples: dict[tuple[str, str], deque[Point]] = {}
        self._closed: list[tuple[str, str, int, int, float | None]] = []  # not saved yet

    def record(self, kpi: KpiValue) -> None:
        """Keep `kpi` if it is a closed window, or the first rolling value of its minute."""
        if kpi.kind == "closed":
            self._closed.append((kpi.device, kpi.rule, kpi.start_ns, kpi.ts_ns, kpi.value))
            return
        if kpi.kind not in ("rolling", "live", "early", "projection"):
            return
        samples = self._samples.setdefault((kpi.device, kpi.rule), deque(maxlen=SAMPLES))
        if not samples or kpi.ts_ns - samples[-1].end_ns >= SAMPLE_NS:
            samples.append(Point(kpi.start_ns, kpi.ts_ns, kpi.value))

    def points(self, device: str, rule: str) -> tuple[Point, ...]:
        """The recent values of (device, rule), oldest first."""
        sampled = self._samples.get((device, rule))
        if sampled:
            return tuple(sampled)
        windows = {end: (start, end, value) for start, end, value in self.store.windows(device, rule)}
        windows |= {row[3]: row[2:] for row in self._closed if row[:2] == (device, rule)}
        return tuple(Point(*windows[end]) for end in sorted(windows)[-HISTORY:])

    def unsaved(self) -> list[tuple[str, str, int, int, float | None]]:
        """The closed windows recorded since the last call, for the checkpoint to save."""
        closed, self._closed = self._closed, []
        return closed

    def put_back(self, closed: list[tuple[str, str, int, int, float | None]]) -> None:
        """Closed windows a failed checkpoint could not save: the next one saves them."""
        self._closed[:0] = closed
