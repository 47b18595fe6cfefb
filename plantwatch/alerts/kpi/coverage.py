"""Waste-heat coverage of a kiln line: of the hours the kiln runs, the share during which its
waste-heat generator produces, per calendar month (the cement plan: waste-heat power on 100 % of
clinker lines). Time between two readings is counted by the later reading's state (as the stack
mass of a group is); a gap longer than 5 intervals and 2 minutes counts nothing (engine.GAP_FLOOR_S).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from plantwatch.alerts.kpi.calendar import calendar_window
from plantwatch.alerts.kpi.projection import MonthRate, projection_rule
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
        self.projects = True  # values of `<rule>:projection` too
        self._rate = MonthRate()

    def update(self, result: PollResult, ts: int | None = None) -> list[KpiValue]:
        """One reading: the time since the previous one, by this reading's state."""
        ts = result.event_ns if ts is None else ts
        values = {r.field: r.value for r in result.readings if r.quality == "good" and r.value is not None}
        out = self.advance(ts)
        if self._window is None:
            self._window = calendar_window(ts, "month", self.zone)
            self._clean, self._next_clean = self._next_clean, False
            self._running_ns = self._covered_ns = 0
            self._rate.clear()
        previous, self._last = self._last, ts
        if previous is None or not 0 < ts - previous <= self.max_gap_ns or self.running not in values:
            return out
        running = covered = 0
        if values[self.running]:
            running = ts - previous
            power = values.get(self.power)
            if isinstance(power, int | float) and not isinstance(power, bool) and power > 0:
                covered = running
        self._running_ns += running
        self._covered_ns += covered
        if self._running_ns > 0:
            out.append(self._kpi("to-date", self._window[0], ts))
        return out + self._projection(ts, covered, running)

    def _projection(self, ts: int, covered: int, running: int) -> list[KpiValue]:
        """Where a month watched whole closes at its last days' rates (projection.py)."""
        assert self._window is not None
        start, end = self._window
        if not self._clean:
            return []
        self._rate.add(ts, covered, running, start)
        totals = self._rate.project(ts, start, end, self._covered_ns, self._running_ns)
        if totals is None or totals[1] <= 0:
            return []
        return [self._kpi("projection", start, ts, *totals)._replace(rule=projection_rule(self.rule))]

    def advance(self, watermark_ns: int) -> list[KpiValue]:
        """Close the month once the watermark passes its end (watched whole: with a value)."""
        if self._window is None or self._window[1] > watermark_ns:
            return []
        start, end = self._window
        out = [self._kpi("closed", start, end)] if self._clean else []
        if out:  # the month is over: its projection is what it came to
            out.append(out[0]._replace(kind="projection", rule=projection_rule(self.rule)))
        self._window, self._next_clean = None, True
        return out

    def _kpi(
        self, kind: str, start: int, end: int, covered: float | None = None, running: float | None = None
    ) -> KpiValue:
        """A value over `covered` of `running` ns (default: the month's so far), in hours."""
        covered = self._covered_ns if covered is None else covered
        running = self._running_ns if running is None else running
        value = covered / running * 100 if running else None
        hours = 3600e9
        return KpiValue(
            self.device, self.target.id, self.rule, value, end, start, kind, covered / hours, running / hours
        )

    def state(self) -> dict[str, Any]:
        return {
            "last": self._last,
            "window": list(self._window) if self._window else None,
            "clean": self._clean,
            "next_clean": self._next_clean,
            "running_ns": self._running_ns,
            "covered_ns": self._covered_ns,
            "recent": self._rate.state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._last = state["last"]
        window = state["window"]
        self._window = (int(window[0]), int(window[1])) if window else None
        self._clean, self._next_clean = bool(state["clean"]), bool(state["next_clean"])
        self._running_ns, self._covered_ns = int(state["running_ns"]), int(state["covered_ns"])
        self._rate.restore(state.get("recent", []))
