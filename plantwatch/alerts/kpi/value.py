"""What every KPI calculator produces: one value of one target's indicator for one device."""

from __future__ import annotations

from typing import NamedTuple


class KpiValue(NamedTuple):
    """A KPI value. `value` None means the window has no valid value (no production, too few
    valid minutes): no data, never zero. `kind` says what window it closes or follows:
    "closed" (a tap, an hour, a shift/day/month), "rolling", "live", "early" (the dust early
    warning), "to-date" (a calendar window so far: for dashboards, never alerted on), or
    "projection" (where an open month closes at its last 7 days' rate: a warning to plant staff).
    `rule` is the alert rule it feeds: the target id, or "<target id>:early"."""

    device: str
    target: str
    rule: str
    value: float | None
    ts_ns: int  # end of the window
    start_ns: int  # start of the window
    kind: str
    numerator: float | None = None  # energy (kWh or kgce), dust minutes for dust_hourly
    denominator: float | None = None  # production (t or kg)
    details: tuple[tuple[str, float], ...] = ()  # how it was computed, for mails (dust: see DETAILS)


ALERTED_KINDS = frozenset({"closed", "rolling", "live", "early", "projection"})
