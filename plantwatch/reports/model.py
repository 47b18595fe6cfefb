"""What a report says, before it is written in any language or format: per device and target the
period's value, its windows over target, dust hours, data availability and a projection."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwatch.config.targets import HOLDS, Target
from plantwatch.reports.period import Period

# How a row's period value was obtained (docs/reports.md#values):
SUMMED = "sum"  # Σ energy ÷ Σ product over the closed windows (taps, shifts, days) in the period
MONTH_WINDOW = "month"  # the alert service's calendar-month window (rolling targets)
MEAN = "mean"  # the average of live or rolling values (no energy and product to sum)


@dataclass(frozen=True)
class DayValue:
    """One calendar day's value (None: no valid value that day)."""

    start_ns: int
    end_ns: int
    value: float | None


@dataclass
class TargetRow:
    """A per-tonne (or live) target on one device over the period."""

    device: str
    target: Target
    basis: str  # SUMMED, MONTH_WINDOW or MEAN
    value: float | None = None
    energy: float | None = None  # Σ numerator (kWh or kgce)
    product: float | None = None  # Σ denominator (t or kg)
    windows: int = 0  # closed windows with a valid value (taps, shifts, days; days for rolling)
    windows_over: int = 0
    worst: float | None = None  # the worst window value
    daily: list[DayValue] = field(default_factory=list)
    projection: float | None = None  # the period's value at the last 7 days' rate (open periods)

    @property
    def limit(self) -> float:
        assert self.target.value is not None
        return self.target.value

    def breaches(self, value: float | None) -> bool:
        """Whether `value` is on the wrong side of the target."""
        return value is not None and not HOLDS[self.target.comparator](value, self.limit)

    @property
    def days_over(self) -> int:
        return sum(self.breaches(d.value) for d in self.daily)

    @property
    def compliant(self) -> bool | None:
        """The period's verdict; None without a value."""
        return None if self.value is None else not self.breaches(self.value)


@dataclass
class DustRow:
    """A dust target (HJ 75 hourly averages) on one stack over the period."""

    device: str
    target: Target
    hours: int = 0  # hours closed in the period
    valid_hours: int = 0  # with ≥ 45 valid minutes
    breach_hours: int = 0
    highest: float | None = None  # the highest valid hourly average
    mean: float | None = None  # the mean of the valid hourly averages
    hourly: list[DayValue] = field(default_factory=list)  # each hour's average (start, end, value)

    @property
    def limit(self) -> float:
        assert self.target.value is not None
        return self.target.value


@dataclass(frozen=True)
class Fired:
    """Alerts that fired in the period on one device and rule (warnings and breaches alike)."""

    device: str
    rule: str
    severity: str
    count: int


@dataclass
class Report:
    """Everything the report or digest states; `generated_ns` is when it was read from InfluxDB
    (an open period is reported up to then)."""

    plant: str
    names: dict[str, str]  # lang -> the plant's name
    period: Period
    generated_ns: int
    targets: list[TargetRow] = field(default_factory=list)
    dust: list[DustRow] = field(default_factory=list)
    availability: dict[str, float | None] = field(default_factory=dict)  # device -> share of hours with data
    fired: list[Fired] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """Whether the period had not ended when the report was made."""
        return self.generated_ns < self.period.end_ns

    @property
    def covered_end_ns(self) -> int:
        """The end of what the report covers: the period's end, or now while it is open."""
        return min(self.generated_ns, self.period.end_ns)
