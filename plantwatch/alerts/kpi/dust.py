"""Flue dust by HJ 75: minute means, valid hourly averages, O2 correction, early warning."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.core.reading import PollResult

MINUTE_NS = 60 * 10**9
VALID_MINUTES_PER_HOUR = 45  # HJ 75: an hourly average needs at least 45 valid minutes
EARLY_MINUTES = 15  # the early warning follows a rolling 15-minute average ...
EARLY_MIN_VALID = 10  # ... of at least this many valid minutes
NORMAL_FLAG = "N"  # F stopped, M maintenance, C calibration, D fault: excluded


def o2_corrected(concentration: float, o2_measured: float, o2_reference: float) -> float | None:
    """C_ref = C x (21 - O2_ref) / (21 - O2_measured); None when the measured O2 is not below 21 %."""
    if o2_measured >= 21:
        return None
    return concentration * (21 - o2_reference) / (21 - o2_measured)


class DustHourly:
    """One CEMS, one dust target: the hourly averages regulators judge, and an early warning."""

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
        self.dust, self.o2, self.flag = dust, o2, flag
        self.o2_reference = o2_reference
        self._minute: int | None = None  # start of the minute being averaged
        self._sum = 0.0
        self._count = 0
        self._hour: int | None = None
        self._hour_minutes: list[float] = []  # valid minute means of the current hour
        self._recent: deque[tuple[int, float]] = deque()  # (minute start, mean) of valid minutes

    def _valid_value(self, values: Mapping[str, object], qualities: Mapping[str, str]) -> float | None:
        if qualities.get(self.dust) != "good" or values.get(self.dust) is None:
            return None
        if self.flag is not None and values.get(self.flag, NORMAL_FLAG) != NORMAL_FLAG:
            return None
        value = float(values[self.dust])  # type: ignore[arg-type]
        if self.o2_reference is None:
            return value
        if self.o2 is None or qualities.get(self.o2) != "good":
            return None
        return o2_corrected(value, float(values[self.o2]), self.o2_reference)  # type: ignore[arg-type]

    def update(self, result: PollResult) -> list[KpiValue]:
        """Feed one reading set; KPI values come out as minutes and hours close."""
        values = {r.field: r.value for r in result.readings}
        qualities = {r.field: r.quality for r in result.readings}
        ts = result.event_ns
        out: list[KpiValue] = []
        minute = ts - ts % MINUTE_NS
        if self._minute is not None and minute > self._minute:
            out += self._close_minute(self._minute)
            out += self._close_hours_before(minute)
        if self._minute is None or minute > self._minute:
            self._minute, self._sum, self._count = minute, 0.0, 0
        if minute < self._minute:
            return out  # a late reading for a closed minute is not re-averaged
        value = self._valid_value(values, qualities)
        if value is not None:
            self._sum += value
            self._count += 1
        return out

    def _close_minute(self, minute: int) -> list[KpiValue]:
        hour = minute - minute % (60 * MINUTE_NS)
        if self._hour is None:
            self._hour = hour
        if self._count == 0:
            return []
        mean = self._sum / self._count
        self._hour_minutes.append(mean)
        self._recent.append((minute, mean))
        while self._recent and self._recent[0][0] <= minute - EARLY_MINUTES * MINUTE_NS:
            self._recent.popleft()
        if self.target.early_warning is None or len(self._recent) < EARLY_MIN_VALID:
            return []
        rolling = sum(m for _, m in self._recent) / len(self._recent)
        start = minute - (EARLY_MINUTES - 1) * MINUTE_NS
        return [
            KpiValue(
                self.device,
                self.target.id,
                f"{self.target.id}:early",
                rolling,
                minute + MINUTE_NS,
                start,
                "early",
                float(len(self._recent)),
            )
        ]

    def _close_hours_before(self, minute: int) -> list[KpiValue]:
        """Close the current hour when `minute` is in a later one."""
        if self._hour is None or minute < self._hour + 60 * MINUTE_NS:
            return []
        minutes = self._hour_minutes
        valid = len(minutes) >= VALID_MINUTES_PER_HOUR
        value = sum(minutes) / len(minutes) if valid else None
        end = self._hour + 60 * MINUTE_NS
        closed = KpiValue(
            self.device, self.target.id, self.target.id, value, end, self._hour, "closed", float(len(minutes))
        )
        self._hour, self._hour_minutes = minute - minute % (60 * MINUTE_NS), []
        return [closed]
