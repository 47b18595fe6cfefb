"""Production against the permitted capacity: every device of a product together (their
production counters), annualised from the calendar month so far (tonnes a year at this month's
rate), against the capacity the plant declares (`alerts.targets.<id>.value`, t/a).

A live value (kind "live") after the month's first three days, so the warning comes while the
month can still be steered: the whole days every device has passed, so a device whose data lag
never inflates the rate; the closed month's rate (kind "closed") when every device has passed its
end.
Counters follow the same rules as any per-tonne KPI (rollover, reset, gaps).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from plantwatch.alerts.kpi.calendar import calendar_window
from plantwatch.alerts.kpi.counters import CounterTracker, member_counters, restore_member_counters
from plantwatch.alerts.kpi.group import MemberFeed
from plantwatch.alerts.kpi.per_tonne import CounterField
from plantwatch.alerts.kpi.standard_coal import to_base
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.core.reading import PollResult

DAY_NS = 86400 * 10**9
YEAR_NS = 365 * DAY_NS
ANNUALISE_AFTER_NS = 3 * DAY_NS  # a rate over fewer days says little about a year


class CapacityWatch:
    """One product's production, annualised over its month (see the module's docstring)."""

    projects = False  # no month-end projection (engine.Calculator)

    def __init__(
        self, device: str, target: Target, production: dict[str, list[CounterField]], zone: str
    ) -> None:
        self.device, self.target, self.rule = device, target, target.id
        self.production = production
        self.members = frozenset(production)
        self.zone = ZoneInfo(zone)
        self.trackers = {(m, f.name): CounterTracker(f.wrap) for m, fs in production.items() for f in fs}
        self._windows: dict[int, list[float]] = {}  # start -> [end, tonnes]
        self._days: dict[int, float] = {}  # local day start -> tonnes (for the live rate)
        self._live_until = 0  # the end of the days the last live value covered
        self._marks: dict[str, int] = {}
        self._first: dict[str, int] = {}

    def feed(self, member: str) -> MemberFeed:
        return MemberFeed(self, member)

    def member_fields(self, member: str) -> frozenset[str]:
        return frozenset(f.name for f in self.production.get(member, []))

    def update(self, member: str, result: PollResult, ts: int) -> list[KpiValue]:
        """A member's production since its last reading, into its month: the annualised rate."""
        self._first.setdefault(member, ts)
        values = {r.field: r.value for r in result.readings if r.quality == "good" and r.value is not None}
        made = 0.0
        for f in self.production.get(member, []):
            if f.name in values:
                step = self.trackers[(member, f.name)].step(float(values[f.name]))
                if step is not None:
                    made += to_base(step, f.unit)[0]
        start, end = self._month(ts)
        window = self._windows.setdefault(start, [float(end), 0.0])
        window[1] += made
        day = self._day(ts)
        self._days[day] = self._days.get(day, 0.0) + made
        return []

    def advance(self, member: str, watermark_ns: int) -> list[KpiValue]:
        """The months every member has passed, closed (watched whole: with a value)."""
        self._marks[member] = watermark_ns
        if self._marks.keys() != self.members:
            return []
        passed = min(self._marks.values())
        out = []
        for start in sorted(self._windows):
            end, tonnes = self._windows[start]
            if end > passed:
                break
            del self._windows[start]
            self._days = {d: t for d, t in self._days.items() if d >= end}
            if self._whole(start):
                out.append(self._kpi("closed", start, int(end), tonnes))
        start, _ = self._month(passed)
        days = [d for d in self._days if start <= d and self._day(d + 36 * 3600 * 10**9) <= passed]
        if days and self._whole(start):
            until = self._day(max(days) + 36 * 3600 * 10**9)  # the end of the last whole day
            if until - start >= ANNUALISE_AFTER_NS and until > self._live_until:
                self._live_until = until
                out.append(self._kpi("live", start, until, sum(self._days[d] for d in days)))
        return out

    def _whole(self, start: int) -> bool:
        """Every device was heard before the month began (else it is partial)."""
        return len(self._first) == len(self.members) and max(self._first.values()) < start

    def _day(self, ts: int) -> int:
        return calendar_window(ts, "day", self.zone)[0]

    def _month(self, ts: int) -> tuple[int, int]:
        return calendar_window(ts, "month", self.zone)

    def _kpi(self, kind: str, start: int, ts: int, tonnes: float) -> KpiValue:
        annual = tonnes * YEAR_NS / (ts - start)
        return KpiValue(
            self.device, self.target.id, self.rule, annual, ts, start, kind, tonnes, (ts - start) / YEAR_NS
        )

    def state(self) -> dict[str, Any]:
        return {
            "counters": member_counters(self.trackers),
            "windows": {str(s): w for s, w in self._windows.items()},
            "days": {str(d): t for d, t in self._days.items()},
            "first": self._first,
        }

    def restore(self, state: dict[str, Any]) -> None:
        restore_member_counters(self.trackers, state.get("counters", {}))
        self._windows = {int(s): [float(x) for x in w] for s, w in state.get("windows", {}).items()}
        self._days = {int(d): float(t) for d, t in state.get("days", {}).items()}
        self._first = {m: int(t) for m, t in state.get("first", {}).items()}
