"""Shared pieces of the alert tests: targets by id, results built from plain values, taps recomputed
from raw readings, numbers as the mail prints them."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage, Message
from itertools import pairwise

from plantwatch.config.alerts import AlertsConfig
from plantwatch.config.targets import Target, resolve_targets
from plantwatch.core.reading import PollResult, Reading

HOUR_NS = 3600 * 10**9
MINUTE_NS = 60 * 10**9
T0 = 1_764_000_000 * 10**9 - (1_764_000_000 * 10**9) % (24 * HOUR_NS) - 8 * HOUR_NS  # a Shanghai midnight


def target(target_id: str, **overrides: object) -> Target:
    """A catalogue target, optionally overridden as plant.yaml would."""
    alerts = AlertsConfig.model_validate({"targets": {target_id: overrides}} if overrides else {})
    return next(t for t in resolve_targets(alerts, "plant.yaml") if t.id == target_id)


def result(device: str, ts_ns: int, quality: dict[str, str] | None = None, **values: object) -> PollResult:
    """A committed result with these field values (all good unless `quality` says otherwise)."""
    quality = quality or {}
    readings = [
        Reading(device, name, None if name in quality else value, ts_ns, quality.get(name, "good"))
        for name, value in values.items()
    ]
    return PollResult(device, readings, started_ns=ts_ns, finished_ns=ts_ns)


def number(value: float, decimals: int) -> str:
    """As the mail prints it: thousands separators, the decimals of the unit (kWh/t 0, t 2)."""
    return f"{value:,.{decimals}f}"


def closed_taps(rows: Sequence[tuple[int, float, float, float]]) -> list[tuple[int, float, float]]:
    """From raw readings (time, energy counter, tap counter, tap weight) in time order: every tap
    closed after the first boundary seen, as (boundary time, energy since the previous boundary,
    weight). Recomputed independently of plantwatch's KPI code."""
    boundaries = [b for a, b in pairwise(rows) if b[2] != a[2]]
    return [(b[0], b[1] - a[1], b[3]) for a, b in pairwise(boundaries)]


def plain_text(mail: Message) -> str:
    """The plain-text part of a received mail (the part a regulator's client may show alone)."""
    assert isinstance(mail, EmailMessage)
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain part"
    text: str = part.get_content()  # type: ignore[attr-defined]
    return text
