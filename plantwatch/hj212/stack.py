"""One stack's HJ 212 data from its readings, in event time: minute statistics by HJ 75 (samples
with data flag N and a good value; O2-corrected `Zs` values when the stack has a reference O2),
minute-data periods (1/5/10/15 min), hours (valid with >= 45 valid minutes) and days (valid
with >= 20 valid hours), each stamped with its start in the plant's zone (docs/hj212.md).

A window closes when a reading of a later minute arrives, or, for a stack gone silent, when the
wall clock has run `lateness` past the last reading; a reading older than the open minute is late:
counted and dropped (the records already sent stay as they were).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from plantwatch.contract.hj212 import CORRECTED_CODES, DATA_FLAGS, FAULT, FLOW_CODE, NO_DATA, NORMAL
from plantwatch.core.reading import GOOD, PollResult

MINUTE_NS, HOUR_NS = 60 * 10**9, 3600 * 10**9
VALID_MINUTES = 45  # HJ 75: an hour is valid with at least 45 valid minutes
VALID_HOURS = 20  # ... a day with at least 20 valid hours
Cp = list[list[tuple[str, str]]]


def fmt(value: float) -> str:
    """A value as HJ 212 carries it: up to 3 decimals, no trailing zeros."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def data_time(ts_ns: int, zone: ZoneInfo) -> str:
    """YYYYMMDDhhmmss in the plant's zone."""
    return datetime.fromtimestamp(ts_ns / 1e9, zone).strftime("%Y%m%d%H%M%S")


@dataclass
class Stat:
    """One pollutant over one period: the mean of its valid values (and min, max), the corrected
    mean, how many of its parts were valid, the flag, and the cumulative amount."""

    mean: float | None = None
    low: float | None = None
    high: float | None = None
    zs_mean: float | None = None
    zs_low: float | None = None
    zs_high: float | None = None
    valid: int = 0
    flag: str = NO_DATA
    cou: float | None = None  # m³ of flue gas, or kg of a pollutant


@dataclass
class Record:
    """A closed period ready for the store: CN, its length in seconds, its start, the CP groups."""

    device: str
    cn: str
    seconds: int
    start_ns: int
    cp: Cp


@dataclass
class _Minute:
    start: int
    values: dict[str, list[float]] = field(default_factory=dict)  # code -> valid values
    corrected: dict[str, list[float]] = field(default_factory=dict)
    flags: Counter[str] = field(default_factory=Counter)  # samples by data flag


class StackData:
    """Closed minute-data periods, hours and days of one stack (see the module's docstring)."""

    def __init__(
        self,
        device: str,
        codes: Mapping[str, str],  # field -> pollutant code
        *,
        zone: ZoneInfo,
        flag_field: str | None = None,
        o2_field: str | None = None,
        o2_reference: float | None = None,
        flow_per_hour: bool = True,  # the flow field is in m³/h (HJ 212 carries m³/s)
        minute_periods: frozenset[int] = frozenset({600}),
        hours: bool = True,
        days: bool = True,
    ) -> None:
        self.device, self.codes, self.zone = device, dict(codes), zone
        self.flag_field, self.o2_field, self.o2_reference = flag_field, o2_field, o2_reference
        self.flow_scale = 1 / 3600 if flow_per_hour else 1.0
        self.minute_periods, self.hours, self.days = minute_periods, hours, days
        self._minute: _Minute | None = None
        self._minutes: list[tuple[int, dict[str, Stat]]] = []  # closed minutes not yet in a day
        self._hours: list[tuple[int, dict[str, Stat]]] = []  # closed hours of the open day
        self._emitted: set[tuple[int, int]] = set()  # minute-data periods made: (seconds, start)
        self.closed_until = 0  # minutes before this are closed: a reading for one is late
        self.late = 0
        self.unknown_flags = 0  # samples whose CEMS flag is none of the standard's (sent as D)
        self.latest: tuple[int, dict[str, float], dict[str, float], str] | None = None  # for real time

    # --- readings in ---

    def update(self, result: PollResult, ts: int) -> list[Record]:
        """One result measured at `ts`: the periods it closes."""
        minute = ts - ts % MINUTE_NS
        if minute < self.closed_until or (self._minute is not None and minute < self._minute.start):
            self.late += 1
            return []
        out = self.advance(minute)
        if self._minute is None:
            self._minute = _Minute(minute)
        values = {r.field: r.value for r in result.readings if r.quality == GOOD and r.value is not None}
        flag = str(values.get(self.flag_field, NORMAL)).strip().upper() if self.flag_field else NORMAL
        if flag not in DATA_FLAGS:  # not one of the standard's flags: not a valid sample, and said so
            self.unknown_flags += 1
            flag = FAULT
        self._minute.flags[flag] += 1
        raw: dict[str, float] = {}
        corrected: dict[str, float] = {}
        o2 = values.get(self.o2_field) if self.o2_field else None
        for name, code in self.codes.items():
            value = values.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            number = float(value) * (self.flow_scale if code == FLOW_CODE else 1.0)
            raw[code] = number
            measured_o2 = float(o2) if isinstance(o2, int | float) else 21.0
            if code in CORRECTED_CODES and self.o2_reference is not None and measured_o2 < 21:
                corrected[code] = number * (21 - self.o2_reference) / (21 - measured_o2)
        self.latest = (ts, raw, corrected, flag)
        if flag != NORMAL:
            return out
        for code, number in raw.items():
            self._minute.values.setdefault(code, []).append(number)
        for code, number in corrected.items():
            self._minute.corrected.setdefault(code, []).append(number)
        return out

    def advance(self, watermark_ns: int) -> list[Record]:
        """Close the minute and the periods that end at or before `watermark_ns`."""
        out: list[Record] = []
        if self._minute is not None and self._minute.start + MINUTE_NS <= watermark_ns:
            self._minutes.append((self._minute.start, self._close_minute(self._minute)))
            self.closed_until = max(self.closed_until, self._minute.start + MINUTE_NS)
            self._minute = None
        out += self._close_periods(watermark_ns)
        return out

    # --- closing ---

    def _close_minute(self, minute: _Minute) -> dict[str, Stat]:
        flag = next((f for f, _ in minute.flags.most_common() if f != NORMAL), NO_DATA)
        stats: dict[str, Stat] = {}
        for code in sorted(set(self.codes.values())):
            values, corrected = minute.values.get(code, []), minute.corrected.get(code, [])
            stat = Stat(flag=NORMAL if values else flag)
            if values:
                stat.mean, stat.low, stat.high, stat.valid = (
                    sum(values) / len(values),
                    min(values),
                    max(values),
                    1,
                )
            if corrected:
                stat.zs_mean, stat.zs_low, stat.zs_high = (
                    sum(corrected) / len(corrected),
                    min(corrected),
                    max(corrected),
                )
            stats[code] = stat
        flow = stats.get(FLOW_CODE)
        if flow is not None and flow.mean is not None:
            flow.cou = flow.mean * 60
            for code, stat in stats.items():
                if code in CORRECTED_CODES and stat.mean is not None:  # measured, not corrected
                    stat.cou = stat.mean * flow.mean * 60 * 1e-6  # mg/m³ x m³ -> kg
        return stats

    def _close_periods(self, watermark_ns: int) -> list[Record]:
        out: list[Record] = []
        if not self._minutes:
            return out
        for seconds in sorted(self.minute_periods):
            span = seconds * 10**9
            first = self._minutes[0][0] - self._minutes[0][0] % span
            # the periods that have ended, each made once: when its last minute is the last closed
            for start in range(first, watermark_ns - span + 1, span):
                inside = [s for t, s in self._minutes if start <= t < start + span]
                if inside and (seconds, start) not in self._emitted:
                    self._emitted.add((seconds, start))
                    out.append(self._record("2051", seconds, start, self._combine(inside, 1, minute=True)))
        hour_starts = sorted({t - t % HOUR_NS for t, _ in self._minutes})
        for hour in hour_starts:
            if hour + HOUR_NS > watermark_ns:
                break
            inside = [s for t, s in self._minutes if hour <= t < hour + HOUR_NS]
            stats = self._combine(inside, VALID_MINUTES)
            self._hours.append((hour, stats))
            if self.hours:
                out.append(self._record("2061", 3600, hour, stats))
            self._minutes = [(t, s) for t, s in self._minutes if t >= hour + HOUR_NS]
        while self._hours:
            day = self._day_start(self._hours[0][0])
            following = self._day_start(day + 36 * HOUR_NS)
            if following > watermark_ns:
                break
            inside = [s for t, s in self._hours if day <= t < following]
            if self.days:
                out.append(self._record("2031", 86400, day, self._combine(inside, VALID_HOURS)))
            self._hours = [(t, s) for t, s in self._hours if t >= following]
        self._emitted = {key for key in self._emitted if key[1] >= watermark_ns - HOUR_NS}
        return out

    def _day_start(self, ts_ns: int) -> int:
        local = datetime.fromtimestamp(ts_ns / 1e9, self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp()) * 10**9

    @staticmethod
    def _combine(parts: list[dict[str, Stat]], needed: int, *, minute: bool = False) -> dict[str, Stat]:
        """Stats of a longer period from its parts: the mean of the valid parts' means; valid with
        at least `needed` valid parts (else the most frequent flag of the others)."""
        out: dict[str, Stat] = {}
        for code in sorted({c for p in parts for c in p}):
            stats = [p[code] for p in parts if code in p]
            valid = [s for s in stats if s.mean is not None and s.flag == NORMAL]
            flags = Counter(s.flag for s in stats if s.flag != NORMAL)
            enough = len(valid) >= needed
            stat = Stat(
                valid=len(valid),
                flag=NORMAL if enough else (flags.most_common(1)[0][0] if flags else NO_DATA),
            )
            if valid:
                means = [s.mean for s in valid if s.mean is not None]
                stat.mean = sum(means) / len(means)
                lows = [s.low for s in valid if s.low is not None] if minute else means
                highs = [s.high for s in valid if s.high is not None] if minute else means
                stat.low, stat.high = min(lows), max(highs)
                zs = [s.zs_mean for s in valid if s.zs_mean is not None]
                if zs:
                    stat.zs_mean = sum(zs) / len(zs)
                    zs_lows = [s.zs_low for s in valid if s.zs_low is not None] if minute else zs
                    zs_highs = [s.zs_high for s in valid if s.zs_high is not None] if minute else zs
                    stat.zs_low, stat.zs_high = min(zs_lows), max(zs_highs)
            cous = [s.cou for s in stats if s.cou is not None]
            stat.cou = sum(cous) if cous else None
            out[code] = stat
        return out

    def _record(self, cn: str, seconds: int, start: int, stats: dict[str, Stat]) -> Record:
        cp: Cp = [[("DataTime", data_time(start, self.zone))]]
        for code, stat in stats.items():
            group: list[tuple[str, str]] = []
            for suffix, value in (
                ("Avg", stat.mean), ("Min", stat.low), ("Max", stat.high),
                ("ZsAvg", stat.zs_mean), ("ZsMin", stat.zs_low), ("ZsMax", stat.zs_high),
            ):  # fmt: skip
                if value is not None:
                    group.append((f"{code}-{suffix}", fmt(value)))
            if stat.cou is not None:
                group.append((f"{code}-Cou", fmt(stat.cou)))
            group.append((f"{code}-Flag", stat.flag))
            cp.append(group)
        return Record(self.device, cn, seconds, start, cp)

    # --- across restarts ---

    def last_event_ns(self) -> int:
        """The newest event time the open windows hold (0 before any)."""
        if self._minute is not None:
            return self._minute.start
        return max([t for t, _ in self._minutes] + [self.closed_until - MINUTE_NS, 0])

    def state(self) -> dict[str, Any]:
        """The open windows, as JSON-ready data (saved by the uplink, restored at its start)."""
        minute = self._minute
        return {
            "minute": None
            if minute is None
            else [minute.start, minute.values, minute.corrected, dict(minute.flags)],
            "minutes": [[t, {c: asdict(s) for c, s in stats.items()}] for t, stats in self._minutes],
            "hours": [[t, {c: asdict(s) for c, s in stats.items()}] for t, stats in self._hours],
            "emitted": sorted(self._emitted),
            "closed_until": self.closed_until,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue the windows `state()` saved."""
        if state.get("minute"):
            start, values, corrected, flags = state["minute"]
            self._minute = _Minute(int(start), values, corrected, Counter(flags))
        self._minutes = [
            (int(t), {c: Stat(**s) for c, s in stats.items()}) for t, stats in state.get("minutes", [])
        ]
        self._hours = [
            (int(t), {c: Stat(**s) for c, s in stats.items()}) for t, stats in state.get("hours", [])
        ]
        self._emitted = {(int(a), int(b)) for a, b in state.get("emitted", [])}
        self.closed_until = int(state.get("closed_until", 0))

    # --- real time ---

    def realtime(self) -> Cp | None:
        """The latest sample as real-time data (CN 2011), or None before the first."""
        if self.latest is None:
            return None
        ts, raw, corrected, flag = self.latest
        cp: Cp = [[("DataTime", data_time(ts - ts % 10**9, self.zone))]]
        for code in sorted(raw):
            group = [(f"{code}-Rtd", fmt(raw[code]))]
            if code in corrected:
                group.append((f"{code}-ZsRtd", fmt(corrected[code])))
            group.append((f"{code}-Flag", flag))
            cp.append(group)
        return cp
