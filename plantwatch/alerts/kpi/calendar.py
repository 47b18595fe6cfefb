"""The calendar windows KPIs are judged over: the shift, day, month or year a moment falls in, in
the plant's zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def calendar_window(ts: int, window: str, zone: ZoneInfo, shift_hours: int = 8) -> tuple[int, int]:
    """The `window` ("shift", "day", "month" or "year") that `ts` falls in, as [start, end) ns."""
    local = datetime.fromtimestamp(ts / 1e9, zone)
    day = local.date()
    if window == "year":
        start = datetime.combine(day.replace(month=1, day=1), time(), zone)
        end = datetime.combine(day.replace(year=day.year + 1, month=1, day=1), time(), zone)
    elif window == "month":
        first = day.replace(day=1)
        start = datetime.combine(first, time(), zone)
        end = datetime.combine((first + timedelta(days=32)).replace(day=1), time(), zone)
    elif window == "day":
        start = datetime.combine(day, time(), zone)
        end = datetime.combine(day + timedelta(days=1), time(), zone)
    else:
        hour = local.hour // shift_hours * shift_hours
        start = datetime.combine(day, time(hour), zone)
        end = start + timedelta(hours=shift_hours)
    return int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9
