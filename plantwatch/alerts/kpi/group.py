"""Per-tonne targets over a group of devices (plant.yaml `groups`): the numerator counters of some
members over the production counters of others (a steel works' water meter over its furnaces'
steel), in calendar windows of the plant's zone, with the same counter rules as one device.

Each member feeds its results through its own event-time gate (`MemberFeed`, one per member in
the engine); a window closes when every member's watermark has passed its end. A window is whole
only when every member had already been heard before it began, and has a value only when every
member gave something usable in it (a dead water meter, or a stack flagged all month, is no data,
never 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from plantwatch.alerts.kpi.calendar import calendar_window
from plantwatch.alerts.kpi.counters import CounterTracker, member_counters, restore_member_counters
from plantwatch.alerts.kpi.per_tonne import CounterField
from plantwatch.alerts.kpi.projection import MonthRate, projection_rule
from plantwatch.alerts.kpi.standard_coal import UnitError, in_kgce, in_tonnes, to_base
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.core.reading import PollResult


@dataclass(frozen=True)
class Emission:
    """A stack's mass emission as a numerator: concentration (mg/m³) x flue gas flow over time."""

    concentration: str  # field names
    flow: str
    flow_per_second: bool  # the flow is in m³/s (else m³/h)
    flag: str | None  # the CEMS data flag field: only N samples count
    max_gap_ns: int  # a sample this long after the previous valid one starts afresh (a gap)


class GroupPerTonne:
    """One group target over its members (see the module's docstring).

    A mass-emission numerator (`Emission`) integrates each valid sample's concentration x flow over
    the time since the member's previous valid sample: kg = mg/m³ x m³/h x h x 10⁻⁶. A flagged or
    bad sample counts nothing and the next valid one starts afresh, as does one after a gap.
    """

    def __init__(
        self,
        group: str,
        target: Target,
        numerator: dict[str, list[CounterField]],  # member -> its numerator counters
        production: dict[str, list[CounterField]],  # member -> its production counters
        timezone: str = "Asia/Shanghai",
        emissions: dict[str, Emission] | None = None,  # member -> its stack's mass emission
    ) -> None:
        self.device, self.target, self.rule = group, target, target.id
        self.numerator, self.production = numerator, production
        self.emissions = emissions or {}
        self._valid_at: dict[str, int] = {}  # member -> its last valid emission sample
        self.members = frozenset([*numerator, *production, *self.emissions])
        self.zone = ZoneInfo(timezone)
        self.trackers = {
            (m, f.name): CounterTracker(f.wrap)
            for side in (numerator, production)
            for m, fs in side.items()
            for f in fs
        }
        self._windows: dict[int, list[float]] = {}  # start -> [end, numerator, production]
        self._seen: dict[int, set[str]] = {}  # start -> members that gave a usable value in it
        self._first: dict[str, int] = {}  # member -> when it was first heard
        self._marks: dict[str, int] = {}  # member -> its watermark
        self.share = target.kpi == "share"  # tonnes over tonnes, in %
        self.projects = target.window == "month"  # values of `<rule>:projection` too
        self._rates: dict[int, MonthRate] = {}  # start -> the last days of a month watched whole
        self.numerator_base = "t" if self.share else target.unit.split("/")[0].replace("³", "3")
        for fields, convert in ((numerator, self._numerator), (production, self._product)):
            for member_fields in fields.values():
                for f in member_fields:
                    try:  # UnitError now, naming the field and its unit, rather than on every reading
                        convert(0.0, f)
                    except UnitError as exc:
                        raise UnitError(f"{f.name}: {exc}") from exc

    def feed(self, member: str) -> MemberFeed:
        """The calculator a member's gate feeds."""
        return MemberFeed(self, member)

    def member_fields(self, member: str) -> frozenset[str]:
        """The fields of `member` this target reads."""
        fields = [f.name for f in [*self.numerator.get(member, []), *self.production.get(member, [])]]
        emission = self.emissions.get(member)
        if emission is not None:
            fields += [emission.concentration, emission.flow, *([emission.flag] if emission.flag else [])]
        return frozenset(fields)

    def update(self, member: str, result: PollResult, ts: int) -> list[KpiValue]:
        """A member's result measured at `ts`: its counters' increments into ts's window."""
        self._first.setdefault(member, ts)
        values = {r.field: r.value for r in result.readings if r.quality == "good" and r.value is not None}
        amount = [0.0, 0.0]
        usable = False
        for side, fields in ((0, self.numerator.get(member, [])), (1, self.production.get(member, []))):
            for f in fields:
                if f.name in values:
                    step = self.trackers[(member, f.name)].step(float(values[f.name]))
                    if step is not None:
                        usable = True
                        amount[side] += self._numerator(step, f) if side == 0 else self._product(step, f)
        emission = self.emissions.get(member)
        if emission is not None:
            amount[0] += self._emitted(member, emission, values, ts)
            usable = usable or member in self._valid_at  # a valid sample
        start, end = self._bounds(ts)
        if usable:
            self._seen.setdefault(start, set()).add(member)
        window = self._windows.setdefault(start, [float(end), 0.0, 0.0])
        window[1] += amount[0]
        window[2] += amount[1]
        out = self._projection(start, end, ts, amount, window) if self._whole(start) else []
        if window[2] <= 0:
            return out
        return [self._kpi("to-date", start, ts, window[1], window[2]), *out]

    def _whole(self, start: int) -> bool:
        """Every member was heard before the window began (else it gets no value)."""
        return len(self._first) == len(self.members) and max(self._first.values()) < start

    def _projection(
        self, start: int, end: int, ts: int, amount: list[float], window: list[float]
    ) -> list[KpiValue]:
        """Where a month watched whole closes at its last days' rates (projection.py)."""
        if not self.projects:
            return []
        rate = self._rates.setdefault(start, MonthRate())
        rate.add(ts, amount[0], amount[1], start)
        totals = rate.project(ts, start, end, window[1], window[2])
        if totals is None or totals[1] <= 0:
            return []
        return [self._kpi("projection", start, ts, *totals)._replace(rule=projection_rule(self.rule))]

    def advance(self, member: str, watermark_ns: int) -> list[KpiValue]:
        """A member's watermark: the windows every member has passed, closed."""
        self._marks[member] = watermark_ns
        if self._marks.keys() != self.members:  # a member not heard yet may still bring its data
            return []  # (a replay, a backlog); one never heard is `stale` and holds the windows open
        passed = min(self._marks.values())
        out = []
        for start in sorted(self._windows):
            end, numerator, product = self._windows[start]
            if end > passed:
                break
            del self._windows[start]
            self._rates.pop(start, None)
            seen = self._seen.pop(start, set())
            if not self._whole(start):
                continue  # joined midway: no value, as for one device
            if seen != self.members:  # a member gave nothing usable all window: no data, never 0
                out.append(self._kpi("closed", start, int(end), numerator, product)._replace(value=None))
                continue
            closed = self._kpi("closed", start, int(end), numerator, product)
            out.append(closed)
            if self.projects:  # the month is over: its projection is what it came to
                out.append(closed._replace(kind="projection", rule=projection_rule(self.rule)))
        return out

    def _emitted(self, member: str, emission: Emission, values: Mapping[str, object], ts: int) -> float:
        concentration, flow = values.get(emission.concentration), values.get(emission.flow)
        flag = str(values.get(emission.flag, "N")) if emission.flag else "N"
        if not isinstance(concentration, int | float) or not isinstance(flow, int | float) or flag != "N":
            self._valid_at.pop(member, None)  # not a valid sample: the next one starts afresh
            return 0.0
        previous, self._valid_at[member] = self._valid_at.get(member), ts
        if previous is None or not 0 < ts - previous <= emission.max_gap_ns:
            return 0.0
        per_hour = float(flow) * (3600 if emission.flow_per_second else 1)
        return float(concentration) * per_hour * (ts - previous) / 3600e9 * 1e-6

    def _numerator(self, amount: float, field: CounterField) -> float:
        if self.numerator_base == "kgce":
            return in_kgce(amount, field.unit, field.carrier)
        value, base = to_base(amount, field.unit)
        if base != self.numerator_base:
            raise UnitError(f"{field.unit} is not in {self.numerator_base}")
        return value

    def _product(self, amount: float, field: CounterField) -> float:
        return in_tonnes(amount, field.unit)

    def _bounds(self, ts: int) -> tuple[int, int]:
        return calendar_window(ts, self.target.window, self.zone)

    def _kpi(self, kind: str, start: int, end: int, numerator: float, product: float) -> KpiValue:
        value = numerator / product * (100 if self.share else 1) if product > 0 else None
        return KpiValue(self.device, self.target.id, self.rule, value, end, start, kind, numerator, product)

    def state(self) -> dict[str, Any]:
        """Counters, open windows and who was heard when (for a restart)."""
        return {
            "counters": member_counters(self.trackers),
            "windows": {str(s): w for s, w in self._windows.items()},
            "seen": {str(s): sorted(m) for s, m in self._seen.items()},
            "first": self._first,
            "valid_at": self._valid_at,
            "rates": {str(start): rate.state() for start, rate in self._rates.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `state()`."""
        restore_member_counters(self.trackers, state.get("counters", {}))
        self._windows = {int(s): [float(x) for x in w] for s, w in state.get("windows", {}).items()}
        self._seen = {int(s): set(m) for s, m in state.get("seen", {}).items()}
        self._first = {m: int(t) for m, t in state.get("first", {}).items()}
        self._valid_at = {m: int(t) for m, t in state.get("valid_at", {}).items()}
        self._rates = {}
        for start, buckets in state.get("rates", {}).items():
            self._rates[int(start)] = rate = MonthRate()
            rate.restore(buckets)


class GroupCalculator(Protocol):
    """What a member's feed needs of a calculator over several devices."""

    device: str
    target: Target
    rule: str
    projects: bool

    def member_fields(self, member: str) -> frozenset[str]: ...
    def update(self, member: str, result: PollResult, ts: int) -> list[KpiValue]: ...
    def advance(self, member: str, watermark_ns: int) -> list[KpiValue]: ...
    def state(self) -> dict[str, Any]: ...
    def restore(self, state: dict[str, Any]) -> None: ...


class MemberFeed:
    """A calculator over several devices as one member's calculator: that member's results go to
    it, its watermark too."""

    def __init__(self, group: GroupCalculator, member: str) -> None:
        self.group, self.member = group, member
        self.device, self.target, self.rule = group.device, group.target, group.rule
        self.projects = group.projects
        self.fields = group.member_fields(member)

    def update(self, result: PollResult, ts: int | None = None) -> list[KpiValue]:
        return self.group.update(self.member, result, result.event_ns if ts is None else ts)

    def advance(self, watermark_ns: int) -> list[KpiValue]:
        return self.group.advance(self.member, watermark_ns)

    def state(self) -> dict[str, Any]:
        """Nothing: the engine saves the calculator itself, once, under its own key."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Nothing (see `state`)."""
