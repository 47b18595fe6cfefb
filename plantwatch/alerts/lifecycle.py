"""Alert lifecycle per (device, rule): normal -> pending -> firing -> resolved, with hysteresis."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from plantwatch.alerts.kpi.value import ALERTED_KINDS, KpiValue
from plantwatch.config.targets import HOLDS, Target
from plantwatch.core.charts import Point

State = Literal["normal", "pending", "firing"]
Event = Literal["firing", "resolved", "repeat"]
STALE = "stale"  # the rule name of a device that stopped sending readings
Audience = Literal["regulator", "plant"]
REGULATOR: Audience = "regulator"  # breaches the plans judge: regulators and plant staff are told
PLANT: Audience = "plant"  # every other warning: plant staff only


@dataclass(frozen=True)
class Rule:
    """What one alert rule compares: a target's limit (or its early-warning share of it)."""

    id: str  # the target id, "<target id>:early", "<target id>:<judged window>", or "stale"
    target: Target | None  # None for the stale rule
    limit: float | None
    severity: str
    for_ns: int
    repeat_ns: int
    clear_margin: float
    audience: Audience = PLANT

    def holds(self, value: float, *, clearing: bool = False) -> bool:
        """Whether `value` meets the rule; when `clearing`, it must be inside by the margin."""
        assert self.target is not None and self.limit is not None
        limit = self.limit
        if clearing:
            lower_is_better = self.target.comparator in ("<=", "<")
            limit *= (1 - self.clear_margin) if lower_is_better else (1 + self.clear_margin)
        return HOLDS[self.target.comparator](value, limit)

    def worse(self, peak: float | None, value: float) -> float:
        """The worse of an episode's peak so far and a new value."""
        if peak is None:
            return value
        lower_is_better = self.target is None or self.target.comparator in ("<=", "<")
        return max(peak, value) if lower_is_better else min(peak, value)


@dataclass(frozen=True)
class Alert:
    """The persisted state of one (device, rule)."""

    device: str
    rule: str
    state: State = "normal"
    since_ns: int = 0  # first breaching value of the current episode
    fired_ns: int = 0
    value: float | None = None  # the latest value seen
    limit: float | None = None
    severity: str = "warning"
    window_start_ns: int = 0  # the window of the value that fired or resolved it
    window_end_ns: int = 0
    last_sent_ns: int = 0
    annotation_id: int | None = None
    episode_start_ns: int = 0  # start of the first breaching window of the current or last episode
    peak: float | None = None  # the episode's worst value (the highest, for a "<=" target)


@dataclass(frozen=True)
class Transition:
    """Something to tell people: an alert fired, resolved, or is still firing (a reminder)."""

    event: Event
    alert: Alert
    rule: Rule
    kpi: KpiValue | None
    detected_ns: int = 0  # wall time the service saw it
    late: bool = False  # judged long after its window ended: the data came late
    history: tuple[Point, ...] = ()  # the rule's recent values, for the chart in a mail


def _fire(alert: Alert, since_ns: int, window_start_ns: int, now_ns: int) -> Alert:
    """`alert` firing from now: a new episode, sent now, without an annotation yet."""
    return replace(
        alert,
        state="firing",
        since_ns=since_ns,
        fired_ns=now_ns,
        window_start_ns=window_start_ns,
        window_end_ns=now_ns,
        last_sent_ns=now_ns,
        annotation_id=None,
        episode_start_ns=window_start_ns,
        peak=None,
    )


def evaluate(alert: Alert, rule: Rule, kpi: KpiValue) -> tuple[Alert, Transition | None]:
    """The next state of `alert` after one KPI value, and the transition to announce, if any.

    A value of None (no valid value in the window) changes nothing: no data is not a recovery.
    """
    if kpi.kind not in ALERTED_KINDS or kpi.value is None:
        return alert, None
    value, ts = kpi.value, kpi.ts_ns
    seen = replace(alert, value=value, limit=rule.limit, severity=rule.severity)
    if alert.state == "firing":
        if rule.holds(value, clearing=True):
            resolved = replace(seen, state="normal", window_start_ns=kpi.start_ns, window_end_ns=ts)
            return resolved, Transition("resolved", resolved, rule, kpi)
        seen = replace(seen, peak=rule.worse(alert.peak, value))
        if ts - alert.last_sent_ns >= rule.repeat_ns:
            reminded = replace(seen, last_sent_ns=ts)
            return reminded, Transition("repeat", reminded, rule, kpi)
        return seen, None
    if rule.holds(value):
        return replace(seen, state="normal"), None
    since = alert.since_ns if alert.state == "pending" else ts
    if ts - since >= rule.for_ns:
        fired = replace(_fire(seen, since, kpi.start_ns, ts), peak=value)
        return fired, Transition("firing", fired, rule, kpi)
    return replace(seen, state="pending", since_ns=since), None


STALE_CLEAR = 2  # good results in a row that resolve a stale alert (one alone could be a fluke)


def evaluate_stale(
    alert: Alert,
    rule: Rule,
    last_good_ns: int,
    now_ns: int,
    stale_ns: int,
    good_results: int = STALE_CLEAR,
) -> tuple[Alert, Transition | None]:
    """The stale-meter rule: firing once no good data came for `stale_ns`; resolved only by good
    data, `STALE_CLEAR` results of it in a row (never by a timer or a restart)."""
    stale = now_ns - last_good_ns >= stale_ns
    if stale and alert.state != "firing":
        fired = _fire(replace(alert, severity=rule.severity), last_good_ns, last_good_ns, now_ns)
        return fired, Transition("firing", fired, rule, None)
    if not stale and alert.state == "firing" and good_results >= STALE_CLEAR:
        resolved = replace(alert, state="normal", window_end_ns=last_good_ns)
        return resolved, Transition("resolved", resolved, rule, None)
    return alert, None
