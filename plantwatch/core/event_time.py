"""Event time: when a device says it measured a value, checked against this machine's clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from plantwatch.core.reading import Reading

BAD_TIMESTAMP = "bad timestamp"
Marks = Literal["instant", "start", "end"]


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="seconds")


def future_skew(ts_ns: int, now_ns: int, max_skew_ns: int) -> str | None:
    """Why `ts_ns` cannot be when a value was measured: before 1970 or past what InfluxDB stores
    (2262), or more than `max_skew_ns` ahead of `now_ns` (a device clock that jumped forward).
    None when it is plausible."""
    if not 0 <= ts_ns < 2**63:
        return f"{BAD_TIMESTAMP}: {ts_ns} ns is outside 1970-2262"
    ahead = ts_ns - now_ns
    if ahead <= max_skew_ns:
        return None
    return f"{BAD_TIMESTAMP}: {_iso(ts_ns)} is {ahead / 1e9:,.0f} s ahead of this machine's clock"


def checked(readings: list[Reading], now_ns: int, max_skew_ns: int) -> tuple[list[Reading], int]:
    """The readings with every one stamped too far ahead turned `bad timestamp` (no value, stamped
    `now_ns`), and how many were. The list itself when all are plausible."""
    latest = min(now_ns + max_skew_ns, 2**63 - 1)  # what `future_skew` lets through, in one test
    for reading in readings:
        if not 0 <= reading.timestamp_ns <= latest:
            break
    else:
        return readings, 0
    out, bad = [], 0
    for reading in readings:
        reason = future_skew(reading.timestamp_ns, now_ns, max_skew_ns)
        if reason is None:
            out.append(reading)
        else:
            bad += 1
            out.append(reading._replace(value=None, timestamp_ns=now_ns, quality=reason))
    return out, bad


def window_time(ts_ns: int, marks: Marks) -> int:
    """The instant that places a value in minute, hour and calendar windows: a value stamped with
    the end of its period belongs to the period before that instant."""
    return ts_ns - 1 if marks == "end" else ts_ns
