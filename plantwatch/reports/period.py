"""The calendar period a report covers: a month or a day in the plant's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from plantwatch.reports.errors import ReportError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class PeriodError(ReportError):
    """Not a month (YYYY-MM) or a day (YYYY-MM-DD)."""


@dataclass(frozen=True)
class Period:
    """[start, end) in `zone`; `label` is how it is named ("2026-11", "2026-12-03")."""

    kind: str  # "month" or "day"
    label: str
    start: datetime
    end: datetime

    @property
    def start_ns(self) -> int:
        return int(self.start.timestamp()) * 10**9

    @property
    def end_ns(self) -> int:
        return int(self.end.timestamp()) * 10**9

    def title(self, lang: str) -> str:
        """`2026年11月` / `November 2026`; `2026年12月3日` / `3 December 2026`."""
        start = self.start
        if self.kind == "month":
            return f"{start.year}年{start.month}月" if lang == "zh" else start.strftime("%B %Y")
        if lang == "zh":
            return f"{start.year}年{start.month}月{start.day}日"
        return f"{start.day} {start.strftime('%B %Y')}"


def month(label: str, zone: ZoneInfo) -> Period:
    """The month `YYYY-MM` in `zone`."""
    found = _MONTH.match(label)
    if not found or not 1 <= int(found[2]) <= 12:
        raise PeriodError(f"{label!r} is not a month such as 2026-11")
    year, number = int(found[1]), int(found[2])
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return Period("month", label, start, end)


def day(label: str, zone: ZoneInfo) -> Period:
    """The day `YYYY-MM-DD` in `zone`."""
    if not _DAY.match(label):
        raise PeriodError(f"{label!r} is not a day such as 2026-12-03")
    try:
        first = date.fromisoformat(label)
    except ValueError as exc:
        raise PeriodError(f"{label!r} is not a day such as 2026-12-03") from exc
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    following = first + timedelta(days=1)
    return Period("day", label, start, datetime(following.year, following.month, following.day, tzinfo=zone))


def previous_month(now: datetime) -> str:
    """The label of the month before `now`'s (in `now`'s zone)."""
    last = now.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def previous_day(now: datetime) -> str:
    """The label of the day before `now`'s (in `now`'s zone)."""
    return (now.date() - timedelta(days=1)).isoformat()
