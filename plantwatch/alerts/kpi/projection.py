"""The month-end projection: where an open calendar month closes if the rates of its last 7 days
hold, for every month-long KPI (per tonne of one device or of a group, shares, waste-heat coverage).

Values of kind "projection" for the rule `<rule>:projection`, only for a month watched from its
start and once it has run 3 days (a month joined midway has no total to project from, and fewer
days say little); at the month's close, the projection is what the month came to.
"""

from __future__ import annotations

from collections import deque

HOUR_NS = 3600 * 10**9
RATE_NS = 7 * 24 * HOUR_NS  # the rate of the last 7 days is extended to the month's end
PROJECT_AFTER_NS = 3 * 24 * HOUR_NS  # ... once the month has run this long (earlier is noise)


def projection_rule(rule: str) -> str:
    """The rule a month's projections feed."""
    return f"{rule}:projection"


class MonthRate:
    """One month's numerator and denominator increments in hourly buckets over its last 7 days."""

    def __init__(self) -> None:
        self._recent: deque[list[float]] = deque()  # [hour start ns, numerator, denominator]

    def clear(self) -> None:
        """A new month: nothing seen yet."""
        self._recent.clear()

    def add(self, ts: int, numerator: float, denominator: float, start: int) -> None:
        """Increments measured at `ts` in the month that began at `start`."""
        hour = ts - ts % HOUR_NS
        if self._recent and self._recent[-1][0] == hour:
            self._recent[-1][1] += numerator
            self._recent[-1][2] += denominator
        else:
            self._recent.append([hour, numerator, denominator])
        while self._recent and self._recent[0][0] < max(start, ts - RATE_NS):
            self._recent.popleft()

    def project(
        self, ts: int, start: int, end: int, numerator: float, denominator: float
    ) -> tuple[float, float] | None:
        """The month's totals at its `end` if the last days' rates hold from `ts` (None: the month
        is too young or already over)."""
        span = min(RATE_NS, ts - start)
        if span < PROJECT_AFTER_NS or ts >= end:
            return None
        remaining = end - ts
        numerator_rate = sum(b[1] for b in self._recent) / span
        denominator_rate = sum(b[2] for b in self._recent) / span
        return numerator + numerator_rate * remaining, denominator + denominator_rate * remaining

    def state(self) -> list[list[float]]:
        """The buckets (for a restart)."""
        return [list(b) for b in self._recent]

    def restore(self, state: list[list[float]]) -> None:
        """Continue from `state()`."""
        self._recent = deque([float(x) for x in b] for b in state)
