"""Per-tonne energy over a window: per tap/heat/batch, rolling, or calendar (shift, day, month)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from plantwatch.alerts.kpi.calendar import calendar_window
from plantwatch.alerts.kpi.counters import CounterTracker
from plantwatch.alerts.kpi.projection import MonthRate, projection_rule
from plantwatch.alerts.kpi.standard_coal import UnitError, in_kgce, in_tonnes, to_base
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.core.durations import parse_duration
from plantwatch.core.reading import PollResult

CALENDAR = ("shift", "day", "month", "year")
BUCKET_NS = 60 * 10**9  # rolling windows are kept in one-minute buckets


@dataclass(frozen=True)
class CounterField:
    """A counter field of the device's map: its name, unit, role and wrap (scaled), if known."""

    name: str
    unit: str | None
    role: str
    wrap: float | None
    carrier: str = "electricity"


class PerTonne:
    """One device, one per-tonne target: numerator counters over production in a window."""

    def __init__(
        self,
        device: str,
        target: Target,
        numerator: list[CounterField],
        production: CounterField | None,  # the production counter (None for per-tap targets)
        tap_counter: str | None = None,
        tap_weight: CounterField | None = None,
        timezone: str = "Asia/Shanghai",
        shift_hours: int = 8,
        window: str | None = None,
    ) -> None:
        self.device, self.target = device, target
        # the target's window, or the calendar window regulators judge it over (`judged_over`),
        # whose values feed the rule `<target id>:<window>`
        self.window = window or target.window
        self.rule = target.id if self.window == target.window else f"{target.id}:{self.window}"
        self.numerator = numerator
        self.production = production
        self.tap_counter, self.tap_weight = tap_counter, tap_weight
        self.in_kgce = target.unit.startswith("kgce")
        self.per_kg = target.unit.endswith("/kg")
        self.zone = ZoneInfo(timezone)
        self.shift_hours = shift_hours
        self.trackers = {
            f.name: CounterTracker(f.wrap) for f in [*numerator, *([production] if production else [])]
        }
        self.window_ns = (
            int(parse_duration(self.window) * 1e9) if self.window not in ("tap", *CALENDAR) else None
        )
        # per tap: energy since the last tap boundary (None until the first boundary is seen)
        self._last_tap: int | None = None
        self._tap_energy: float | None = None
        self._tap_start = 0
        # calendar: the open window [start, end) and its totals
        self._window: tuple[int, int] | None = None
        self._clean = False  # the window began while we were watching (else it is not closed)
        self._next_clean = False  # a window closed: the next one begins while we watch
        self._num = 0.0
        self._den = 0.0
        # rolling: minute buckets [start_ns, numerator, production]
        self._buckets: deque[list[float]] = deque()
        self.projects = self.window == "month"  # values of `<rule>:projection` too
        self._rate = MonthRate()  # the month's last days, for the projection
        self._first_ns: int | None = None
        names = [f.name for f in [*numerator, *(f for f in (production, tap_weight) if f)]]
        self.fields = frozenset([*names, *([tap_counter] if tap_counter else [])])
        # Units are checked once here, not on every reading: UnitError naming the field.
        checks = [(self._energy, f) for f in numerator]
        checks += [(self._product, f) for f in (production, tap_weight) if f is not None]
        for convert, field in checks:
            try:
                convert(0.0, field)
            except UnitError as exc:
                raise UnitError(f"{field.name}: {exc}") from exc

    def judged(self, window: str) -> PerTonne:
        """The same KPI over the calendar window regulators judge the target over."""
        return PerTonne(
            self.device,
            self.target,
            self.numerator,
            self.production,
            self.tap_counter,
            self.tap_weight,
            self.zone.key,
            self.shift_hours,
            window,
        )

    def _kpi(self, kind: str, start_ns: int, end_ns: int, numerator: float, production: float) -> KpiValue:
        """A value over a window: numerator / production, none without production (not infinity)."""
        value = numerator / production if production > 0 else None
        return KpiValue(
            self.device, self.target.id, self.rule, value, end_ns, start_ns, kind, numerator, production
        )

    def _energy(self, amount: float, field: CounterField) -> float:
        if self.in_kgce:
            return in_kgce(amount, field.unit, field.carrier)
        value, base = to_base(amount, field.unit)
        if base != "kWh":
            raise UnitError(f"{field.unit} is not an energy unit for {self.target.unit}")
        return value

    def _product(self, amount: float, field: CounterField) -> float:
        tonnes = in_tonnes(amount, field.unit)
        return tonnes * 1000 if self.per_kg else tonnes

    def update(self, result: PollResult, ts: int | None = None) -> list[KpiValue]:
        """Feed one poll or message, measured at `ts` (default: its readings' time), in event
        order; return the KPI values it completes or updates."""
        good = {r.field: r for r in result.readings if r.quality == "good"}
        values = {name: r.value for name, r in good.items() if r.value is not None}
        ts = result.event_ns if ts is None else ts
        energy = 0.0
        for field in self.numerator:
            if field.name in values:
                step = self.trackers[field.name].step(float(values[field.name]))
                if step is not None:
                    energy += self._energy(step, field)
        if self.window == "tap":  # a tap ends when its counter was read
            counter = good.get(self.tap_counter or "")
            return self._tap(values, counter.timestamp_ns if counter else ts, energy)
        produced = 0.0
        if self.tap_counter is not None:  # a calendar window of a tapped furnace: the taps' weights
            produced = self._tapped(values)
        elif self.production is not None and self.production.name in values:
            step = self.trackers[self.production.name].step(float(values[self.production.name]))
            if step is not None:
                produced = self._product(step, self.production)
        if self.window_ns is not None:
            return self._rolling(ts, energy, produced)
        return self._calendar(ts, energy, produced)

    def _tap(self, values: Mapping[str, object], ts: int, energy: float) -> list[KpiValue]:
        if self._tap_energy is not None:
            self._tap_energy += energy
        count = values.get(self.tap_counter or "")
        if count is None:
            return []
        count = int(count)  # type: ignore[call-overload]
        previous, self._last_tap = self._last_tap, count
        if previous is None or count == previous:
            return []
        out = []
        weight = values.get(self.tap_weight.name) if self.tap_weight else None
        if self._tap_energy is not None and weight is not None and self.tap_weight is not None:
            product = self._product(float(weight), self.tap_weight)  # type: ignore[arg-type]
            out.append(self._kpi("closed", self._tap_start, ts, self._tap_energy, product))
        self._tap_energy, self._tap_start = 0.0, ts  # a new tap starts accumulating
        return out

    def _tapped(self, values: Mapping[str, object]) -> float:
        """The weight of a tap that ended with this reading (its counter moved), else 0."""
        count = values.get(self.tap_counter or "")
        if count is None:
            return 0.0
        previous, self._last_tap = self._last_tap, int(count)  # type: ignore[call-overload]
        weight = values.get(self.tap_weight.name) if self.tap_weight else None
        if previous is None or previous == self._last_tap or weight is None or self.tap_weight is None:
            return 0.0
        return self._product(float(weight), self.tap_weight)  # type: ignore[arg-type]

    def _rolling(self, ts: int, energy: float, produced: float) -> list[KpiValue]:
        assert self.window_ns is not None
        if self._first_ns is None:
            self._first_ns = ts
        minute = ts - ts % BUCKET_NS
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += energy
            self._buckets[-1][2] += produced
        else:
            self._buckets.append([minute, energy, produced])
        while self._buckets and self._buckets[0][0] < ts - self.window_ns:
            self._buckets.popleft()
        if ts - self._first_ns < self.window_ns:
            return []  # the window is not covered yet: no value rather than a partial one
        num = sum(b[1] for b in self._buckets)
        den = sum(b[2] for b in self._buckets)
        # from the first minute bucket kept: what the sums cover (a little under the window),
        # not ts - window, which a mail would state as if it were covered
        return [self._kpi("rolling", int(self._buckets[0][0]), ts, num, den)]

    def _bounds(self, ts: int) -> tuple[int, int]:
        """The shift, day, month or year (in the plant's zone) that `ts` falls in, as [start, end)."""
        return calendar_window(ts, self.window, self.zone, self.shift_hours)

    def _calendar(self, ts: int, energy: float, produced: float) -> list[KpiValue]:
        out = [] if self._window is None or ts < self._window[1] else self._close_window()
        if self._window is None:
            self._window = self._bounds(ts)
            self._clean, self._next_clean = self._next_clean, False
            self._num, self._den = 0.0, 0.0
            self._rate.clear()
        self._num += energy
        self._den += produced
        if self._den > 0:
            out.append(self._kpi("to-date", self._window[0], ts, self._num, self._den))
        if self.projects:
            out += self._projection(ts, energy, produced)
        return out

    def _projection(self, ts: int, energy: float, produced: float) -> list[KpiValue]:
        """Where the month closes at its last days' rates (projection.py), for a month watched
        from its start."""
        assert self._window is not None
        start, end = self._window
        if not self._clean:
            return []
        self._rate.add(ts, energy, produced, start)
        totals = self._rate.project(ts, start, end, self._num, self._den)
        if totals is None:
            return []
        return [self._kpi("projection", start, ts, *totals)._replace(rule=projection_rule(self.rule))]

    def _close_window(self) -> list[KpiValue]:
        """The open calendar window is over: its value, when we watched it whole."""
        assert self._window is not None
        start, end = self._window
        out = [self._kpi("closed", start, end, self._num, self._den)] if self._clean else []
        if out and self.projects:  # the month is over: its projection is what it came to
            out.append(out[0]._replace(kind="projection", rule=projection_rule(self.rule)))
        self._window, self._next_clean = None, True
        return out

    def advance(self, watermark_ns: int) -> list[KpiValue]:
        """Close the calendar window once the watermark passes its end (taps and rolling windows
        close with the readings themselves)."""
        if self._window is not None and self._window[1] <= watermark_ns:
            return self._close_window()
        return []

    def state(self) -> dict[str, Any]:
        """Counters' last values, the open tap, window or rolling buckets (for a restart)."""
        return {
            "counters": {name: t.previous for name, t in self.trackers.items()},
            "last_tap": self._last_tap,
            "tap_energy": self._tap_energy,
            "tap_start": self._tap_start,
            "window": list(self._window) if self._window else None,
            "clean": self._clean,
            "next_clean": self._next_clean,
            "num": self._num,
            "den": self._den,
            "buckets": [list(b) for b in self._buckets],
            "recent": self._rate.state(),
            "first_ns": self._first_ns,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `state`: the first tap or window after a restart is whole."""
        for name, previous in state["counters"].items():
            if name in self.trackers:
                self.trackers[name].previous = previous
        self._last_tap, self._tap_energy, self._tap_start = (
            state["last_tap"],
            state["tap_energy"],
            state["tap_start"],
        )
        window = state["window"]
        self._window = (int(window[0]), int(window[1])) if window else None
        self._clean, self._next_clean = state["clean"], state["next_clean"]
        self._num, self._den = state["num"], state["den"]
        self._buckets = deque([float(x) for x in b] for b in state["buckets"])
        self._rate.restore(state.get("recent", []))
        self._first_ns = state["first_ns"]
