"""Cumulative meters to increments: rollover at the register width, resets, and gaps."""

from __future__ import annotations

# A drop this close to a full wrap is a rollover; any other drop is a reset or replaced meter.
ROLLOVER_SHARE = 0.1


class CounterTracker:
    """Turns successive readings of one cumulative counter into increments.

    - rollover: the counter passed the top of its register (`wrap`, in scaled units) and
      restarted at zero; the increment is `value + wrap - previous`;
    - reset or meter replacement: any other drop; the new meter counted `value` since it
      started, so that is the increment (a negative step is never negative energy);
    - gaps: a missing reading is no data, not zero; the next good reading's increment covers
      the whole gap, which is what the meter measured.
    """

    def __init__(self, wrap: float | None = None) -> None:
        self.wrap = wrap
        self.previous: float | None = None
        self.resets = 0
        self.rollovers = 0

    def step(self, value: float) -> float | None:
        """The increment since the previous reading; None for the first reading."""
        previous, self.previous = self.previous, value
        if previous is None:
            return None
        if value >= previous:
            return value - previous
        if self.wrap is not None and value + self.wrap - previous <= self.wrap * ROLLOVER_SHARE:
            self.rollovers += 1
            return value + self.wrap - previous
        self.resets += 1
        return value


def member_counters(trackers: dict[tuple[str, str], CounterTracker]) -> dict[str, float | None]:
    """The last readings of counters kept per (device, field), as `device/field` -> value."""
    return {f"{device}/{name}": tracker.previous for (device, name), tracker in trackers.items()}


def restore_member_counters(
    trackers: dict[tuple[str, str], CounterTracker], saved: dict[str, float | None]
) -> None:
    """Continue counters from `member_counters()`; ones no longer tracked are ignored."""
    for key, previous in saved.items():
        device, _, name = key.partition("/")
        if (device, name) in trackers:
            trackers[(device, name)].previous = previous
