"""Waste-heat coverage of a kiln line: of the hours the kiln runs, the share during which its
waste-heat generator produces, per calendar month (the cement plan: waste-heat power on 100 % of
clinker lines). Time between two readings is counted by the later reading's state (as the stack
mass of a group is); a gap longer than 5 intervals and 2 minutes counts nothing (engine.GAP_FLOOR_S).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from plantwatch.alerts.kpi.calendar import calendar_window
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.core.reading import PollResult


class WasteHeatCoverage:
    """One kiln line (one device with `running` and `waste_heat_power`), one month at a time."""

    def __init__(
        self, device: str, target: Target, running: str, power: str, max_gap_ns: int, timezone: str
    ) -> None:
        self.device, self.target, self.rule = device, target, target.id
        self.running, self.power, self.max_gap_ns = running, power, max_gap_ns
        self.fields = frozenset({running, power})
        self.zone = ZoneInfo(timezone)
        self._last: int | None = None  # the previous reading's time
        self._window: tuple[int, int] | None = None
        self._clean = False  # the window began while we were watching (else it is partial)
        self._next_clean = False
        self._running_ns = 0
        self._covered_ns = 0

    def update(self, result: PollResult, ts: int | None = None) -> list[KpiValue]:
        """One reading: the time since the previous one, by this reading's state."""
        ts = result.event_ns if ts is None else ts
        values = {r.field: r.value for r in result.readings if r.quality == "good" and r.value is not None}
        out = self.advance(ts)
        if self._window is None:
            self._window = calendar_window(ts, "month", self.zone)
            self._clean, self._next_clean = self._next_clean, False
            self._running_ns = self._covered_ns = 0
        previous, self._last = self._last, ts
        if previous is None or not 0 < ts - previous <= self.max_gap_ns or self.running not in values:
            return out
        if values[self.running]:
            self._running_ns += ts - previous
            power = values.get(self.power)
            if isinstance(power, int | float) and not isinstance(power, bool) and power > 0:
                self._covered_ns += ts - previous
        if self._running_ns > 0:
            out.append(self._kpi("to-date", self._window[0], ts))
        return out

    def advance(self, watermark_ns: int) -> list[KpiValue]:
        """Close the month once the watermark passes its end (watched whole: with a value)."""
        if self._window is None or self._window[1] > watermark_ns:
            return []
        start, end = self._window
        out = [self._kpi("closed", start, end)] if self._clean else []
        self._window, self._next_clean = None, True
        return out

    def _kpi(self, kind: str, start: int, end: int) -> KpiValue:
        value = self._covered_ns / self._running_ns * 100 if self._running_ns else None
        hours = 3600e9
        return KpiValue(
            self.device, self.target.id, self.rule, value, end, start, kind,
            self._covered_ns / hours, self._running_ns / hours,
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        return {
            "last": self._last,
            "window": list(self._window) if self._window else None,
            "clean": self._clean,
            "next_clean": self._next_clean,
            "running_ns": self._running_ns,
            "covered_ns": self._covered_ns,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._last = state["last"]
        window = state["window"]
        self._window = (int(window[0]), int(window[1])) if window else None
        self._clean, self._next_clean = bool(state["clean"]), bool(state["next_clean"])
        self._running_ns, self._covered_ns = int(state["running_ns"]), int(state["covered_ns"])
