"""Flue dust by HJ 75: minute means, valid hourly averages, O2 correction, early warning."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.core.reading import PollResult

MINUTE_NS = 60 * 10**9
HOUR_NS = 60 * MINUTE_NS
MAX_EMPTY_HOURS = 31 * 24  # a device silent longer than this starts a new series of hours
VALID_MINUTES_PER_HOUR = 45  # HJ 75: an hourly average needs at least 45 valid minutes
EARLY_MINUTES = 15  # the early warning follows a rolling 15-minute average ...
EARLY_MIN_VALID = 10  # ... of at least this many valid minutes
NORMAL_FLAG = "N"  # F stopped, M maintenance, C calibration, D fault: excluded
# What a closed hour's `details` hold: the mean of the valid minutes as measured ("raw") and of
# their O2 ("o2", when corrected), the reference O2, and how the other minutes of the hour went:
# "flag_<X>" minutes excluded by data flag X, "invalid" minutes with readings none of them usable,
# "missing" minutes without a reading.
DETAILS = ("raw", "o2", "o2_reference", "invalid", "missing")


def o2_corrected(concentration: float, o2_measured: float, o2_reference: float) -> float | None:
    """C_ref = C x (21 - O2_ref) / (21 - O2_measured); None when the measured O2 is not below 21 %."""
    if o2_measured >= 21:
        return None
    return concentration * (21 - o2_reference) / (21 - o2_measured)


class DustHourly:
    """One CEMS, one dust target: the hourly averages regulators judge, and an early warning.

    Results come in event order (the device's EventTimeGate); `ts` places each in its minute.
    A minute closes when a later minute begins or the watermark passes its end; an hour closes
    when the watermark passes its end, with however many valid minutes it had, none included.
    """

    projects = False  # no month-end projection (engine.Calculator)

    def __init__(
        self,
        device: str,
        target: Target,
        dust: str,
        o2: str | None = None,
        flag: str | None = None,
        o2_reference: float | None = None,
    ) -> None:
        self.device, self.target = device, target
        self.rule = target.id
        self.dust, self.o2, self.flag = dust, o2, flag
        self.o2_reference = o2_reference
        self.fields = frozenset(f for f in (dust, o2, flag) if f)
        self._minute: int | None = None  # start of the minute being averaged
        self._sum = 0.0
        self._count = 0
        self._raw = 0.0  # sums of the minute's valid readings as measured, and of their O2
        self._o2_sum = 0.0
        self._seen: Counter[str] = Counter()  # readings of the minute by flag ("" when unusable)
        self._hour: int | None = None  # start of the open hour
        self._hour_minutes: list[float] = []  # valid minute means of the open hour
        self._hour_raw: list[float] = []  # ... as measured
        self._hour_o2: list[float] = []  # ... their O2
        self._hour_other: Counter[str] = Counter()  # the hour's other minutes: flag_X, invalid
        self._recent: deque[tuple[int, float]] = deque()  # (minute start, mean) of valid minutes

    def _valid_value(
        self, values: Mapping[str, object], qualities: Mapping[str, str]
    ) -> tuple[float, float, float] | str:
        """(value as judged, as measured, measured O2) of a usable reading, else why not: the
        data flag that excludes it, or "" (no good value)."""
        if self.flag is not None and values.get(self.flag, NORMAL_FLAG) != NORMAL_FLAG:
            return f"flag_{values[self.flag]}"
        if qualities.get(self.dust) != "good" or values.get(self.dust) is None:
            return ""
        value = float(values[self.dust])  # type: ignore[arg-type]
        if self.o2_reference is None:
            return value, value, 0.0
        if self.o2 is None or qualities.get(self.o2) != "good":
            return ""
        o2 = float(values[self.o2])  # type: ignore[arg-type]
        corrected = o2_corrected(value, o2, self.o2_reference)
        return "" if corrected is None else (corrected, value, o2)

    def update(self, result: PollResult, ts: int | None = None) -> list[KpiValue]:
        """One result measured at `ts` (default: its readings' time): the minutes and hours it
        closes."""
        ts = result.event_ns if ts is None else ts
        minute = ts - ts % MINUTE_NS
        out = self.advance(minute)  # every window before this minute is over
        if self._minute is None:
            self._minute, self._sum, self._count = minute, 0.0, 0
            self._raw, self._o2_sum, self._seen = 0.0, 0.0, Counter()
        if self._hour is None:
            self._hour = minute - minute % HOUR_NS
        values = {r.field: r.value for r in result.readings}
        qualities = {r.field: r.quality for r in result.readings}
        usable = self._valid_value(values, qualities)
        if isinstance(usable, str):
            self._seen[usable] += 1
        else:
            value, raw, o2 = usable
            self._sum += value
            self._raw += raw
            self._o2_sum += o2
            self._count += 1
        return out

    def advance(self, watermark_ns: int) -> list[KpiValue]:
        """Close the minute and the hours that end at or before `watermark_ns`."""
        out: list[KpiValue] = []
        if self._minute is not None and self._minute + MINUTE_NS <= watermark_ns:
            out += self._close_minute(self._minute)
            self._minute = None
        while self._hour is not None and self._hour + HOUR_NS <= watermark_ns:
            out.append(self._close_hour())
            if watermark_ns - self._hour > MAX_EMPTY_HOURS * HOUR_NS:  # silent for weeks: skip ahead
                self._hour = None
        return out

    def _close_minute(self, minute: int) -> list[KpiValue]:
        if self._count == 0:  # no usable reading: excluded by its (most frequent) flag, or invalid
            if self._seen:
                why = self._seen.most_common(1)[0][0]
                self._hour_other[why or "invalid"] += 1
            return []
        mean = self._sum / self._count
        self._hour_minutes.append(mean)
        self._hour_raw.append(self._raw / self._count)
        self._hour_o2.append(self._o2_sum / self._count)
        # the open hour so far (for dashboards and the demo; never alerted on)
        so_far = sum(self._hour_minutes) / len(self._hour_minutes)
        hour = minute - minute % HOUR_NS
        out = [
            KpiValue(
                self.device,
                self.target.id,
                self.target.id,
                so_far,
                minute + MINUTE_NS,
                hour,
                "to-date",
                float(len(self._hour_minutes)),
            )
        ]
        self._recent.append((minute, mean))
        while self._recent and self._recent[0][0] <= minute - EARLY_MINUTES * MINUTE_NS:
            self._recent.popleft()
        if self.target.early_warning is None or len(self._recent) < EARLY_MIN_VALID:
            return out
        rolling = sum(m for _, m in self._recent) / len(self._recent)
        start = minute - (EARLY_MINUTES - 1) * MINUTE_NS
        return [
            *out,
            KpiValue(
                self.device,
                self.target.id,
                f"{self.target.id}:early",
                rolling,
                minute + MINUTE_NS,
                start,
                "early",
                float(len(self._recent)),
            ),
        ]

    def _close_hour(self) -> KpiValue:
        """The open hour as regulators judge it: valid with at least 45 valid minutes."""
        assert self._hour is not None
        minutes, other = self._hour_minutes, self._hour_other
        valid = len(minutes) >= VALID_MINUTES_PER_HOUR
        value = sum(minutes) / len(minutes) if valid else None
        details: list[tuple[str, float]] = []
        if minutes:
            details.append(("raw", sum(self._hour_raw) / len(minutes)))
            if self.o2_reference is not None:
                details += [("o2", sum(self._hour_o2) / len(minutes)), ("o2_reference", self.o2_reference)]
        details += sorted((key, float(n)) for key, n in other.items())
        details.append(("missing", float(60 - len(minutes) - other.total())))
        start, end = self._hour, self._hour + HOUR_NS
        self._hour, self._hour_minutes, self._hour_raw, self._hour_o2 = end, [], [], []
        self._hour_other = Counter()
        return KpiValue(
            self.device,
            self.target.id,
            self.target.id,
            value,
            end,
            start,
            "closed",
            float(len(minutes)),
            details=tuple(details),
        )

    def state(self) -> dict[str, Any]:
        """The open minute and hour, and the recent valid minutes (for a restart)."""
        return {
            "minute": self._minute,
            "sum": self._sum,
            "count": self._count,
            "hour": self._hour,
            "hour_minutes": self._hour_minutes,
            "recent": [list(entry) for entry in self._recent],
            "raw": self._raw,
            "o2_sum": self._o2_sum,
            "seen": dict(self._seen),
            "hour_raw": self._hour_raw,
            "hour_o2": self._hour_o2,
            "hour_other": dict(self._hour_other),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue the windows of `state`."""
        self._minute, self._sum, self._count = state["minute"], state["sum"], state["count"]
        self._hour, self._hour_minutes = state["hour"], list(state["hour_minutes"])
        self._recent = deque((int(m), float(v)) for m, v in state["recent"])
        # a checkpoint of a version without the details: measured values unknown, taken as judged
        self._raw, self._o2_sum = state.get("raw", self._sum), state.get("o2_sum", 0.0)
        self._seen = Counter(state.get("seen", {}))
        self._hour_raw = list(state.get("hour_raw", self._hour_minutes))
        self._hour_o2 = list(state.get("hour_o2", [0.0] * len(self._hour_minutes)))
        self._hour_other = Counter(state.get("hour_other", {}))
