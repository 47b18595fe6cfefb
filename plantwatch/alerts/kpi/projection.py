"""The month-end projection: where an open calendar month closes if the rates of its last 7 days
hold, for every month-long KPI (per tonne of one device or of a group, shares, waste-heat coverage).

Values of kind "projection" for the rule `<rule>:projection`, only for a month watched from its
start and once it has run 3 days (a month joined midway has no total to project from, and fewer
days say little); at the month's close, the projection is what the month came to.
"""

from __future__ import annotations

HOUR_NS = 3600 * 10**9
RATE_NS = 7 * 24 * HOUR_NS  # the rate of the last 7 days is extended to the month's end
PROJECT_AFTER_NS = 3 * 24 * HOUR_NS  # ... once the month has run this long (earlier is noise)


def projection_rule(rule: str) -> str:
    """The rule a month's projections feed."""
    return f"{rule}:projection"


class MonthRate:
    """One month's numerator and denominator increments in hourly buckets over its last 7 days."""

    def __init__(self) -> None:
        # hour start ns -> [numerator, denominator]: by key, as increments of several devices
        # (a group's members) come in turns and need not be in time order
        self._recent: dict[int, list[float]] = {}

    def clear(self) -> None:
        """A new month: nothing seen yet."""
        self._recent.clear()

    def add(self, ts: int, numerator: float, denominator: float, start: int) -> None:
        """Increments measured at `ts` in the month that began at `start`."""
        bucket = self._recent.setdefault(ts - ts % HOUR_NS, [0.0, 0.0])
        bucket[0] += numerator
        bucket[1] += denominator
        oldest = max(start, ts - RATE_NS)
        if min(self._recent) < oldest:
            self._recent = {hour: sums for hour, sums in self._recent.items() if hour >= oldest}

    def project(
        self, ts: int, start: int, end: int, numerator: float, denominator: float
    ) -> tuple[float, float] | None:
        """The month's totals at its `end` if the last days' rates hold from `ts` (None: the month
        is too young or already over)."""
        span = min(RATE_NS, ts - start)
        if span < PROJECT_AFTER_NS or ts >= end:
            return None
        remaining = end - ts
        numerator_rate = sum(b[0] for b in self._recent.values()) / span
        denominator_rate = sum(b[1] for b in self._recent.values()) / span
        return numerator + numerator_rate * remaining, denominator + denominator_rate * remaining

    def state(self) -> list[list[float]]:
        """The buckets as [hour, numerator, denominator], oldest first (for a restart)."""
        return [[hour, *sums] for hour, sums in sorted(self._recent.items())]

    def restore(self, state: list[list[float]]) -> None:
        """Continue from `state()`."""
        self._recent = {int(b[0]): [float(b[1]), float(b[2])] for b in state}
