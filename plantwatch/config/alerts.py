"""The `alerts` section of plant.yaml: target overrides, SMTP, recipients, Grafana, state paths."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from plantwatch.config.units import Duration, Strict
from plantwatch.core.durations import parse_duration

Severity = Literal["info", "warning", "critical"]
Comparator = Literal["<=", "<", ">=", ">"]
KpiKind = Literal["per_tonne", "potline_live", "dust_hourly", "capacity", "share", "coverage"]
NAMED_WINDOWS = ("tap", "live", "shift", "day", "month", "year")  # the rest are rolling durations
EMAIL = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"


class NumeratorTerm(Strict):
    """One counter that adds to a per-tonne numerator, in the units of its energy `carrier`; or,
    with `flow`, a stack's mass emission: the `role` concentration (mg/m³) times the `flow` role's
    flue gas flow, integrated over time (kg)."""

    role: str
    carrier: str = "electricity"
    flow: str | None = None


class LocalText(Strict):
    """Words in both languages mails are written in: a zh mail is entirely Chinese, an en mail
    entirely English."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class PlanFields(Strict):
    """A plan as a document: who issued it, when, and its title in both languages."""

    province: LocalText
    year: int = Field(ge=1949, le=2100)
    title: LocalText


Judged = Literal["shift", "day", "month", "year"]  # calendar windows a per-tonne target is judged over


class TargetFields(Strict):
    """A plan target as written in the catalogue or in `alerts.targets.<id>` (all optional here:
    an override names only what it changes; a new target must give the rest)."""

    sector: str | None = None
    product: str | None = None
    devices: list[str] | None = None  # only these devices (default: every device of sector/product)
    # `group`: computed over a group of devices the plant declares (plant.yaml `groups`), its
    # numerator and production read from whichever members have the roles
    scope: Literal["device", "group"] | None = None
    indicator: LocalText | str | None = None  # a plain string is used in both languages
    kpi: KpiKind | None = None
    numerator: list[NumeratorTerm] | None = None
    per: str | None = None  # "tap" or the role of a production counter
    window: str | None = None  # tap | live | <duration> rolling (at least 1m) | shift | day | month | year
    # the calendar window regulators judge a per-tonne target over (its own rule, `<id>:<window>`)
    judged_over: Judged | list[Judged] | None = None
    unit: str | None = None
    comparator: Comparator | None = None
    value: float | None = None
    severity: Severity | None = None
    early_warning: float | None = Field(default=None, gt=0, lt=1)
    for_: Duration | Literal[0] | None = Field(default=None, alias="for")
    repeat: Duration | None = None
    effective: date | None = None
    plan: str | None = None  # a plan id of the catalogue's `plans`, or a document's title
    clause: LocalText | str | None = None
    quote: LocalText | str | None = None

    @field_validator("window")
    @classmethod
    def _check_window(cls, window: str | None) -> str | None:
        if window is None or window in NAMED_WINDOWS:
            return window
        try:
            seconds = parse_duration(window)
        except ValueError as exc:
            raise ValueError(f"{window!r} is not tap, live, shift, day, month, year or a duration") from exc
        if seconds < 60:
            raise ValueError(
                f"a rolling window of {window} is too short: rolling windows are kept in one-minute"
                " buckets, so at least 1m"
            )
        return window


class SmtpConfig(Strict):
    """The mail server regulators' emails go through. Credentials come from the environment."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    from_: str = Field(alias="from", pattern=EMAIL)
    ca_file: str | None = None  # trust this CA (relative to plant.yaml) besides the system's
    timeout: Duration = 10.0


class Recipient(Strict):
    """Who gets which alerts, in which language. Empty filters mean everything.

    A `regulator` gets the breaches the plans judge, the daily digest and the monthly report;
    `plant` staff get every warning (docs/alerts.md#routing).
    """

    name: str
    email: str = Field(pattern=EMAIL)
    lang: Literal["zh", "en"] = "zh"
    role: Literal["regulator", "plant"] = "regulator"
    plants: list[str] = Field(default_factory=list)
    sectors: list[str] = Field(default_factory=list)
    severities: list[Severity] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_name(self) -> Recipient:
        if any(c in self.name for c in "\r\n\x00"):
            raise ValueError("name: line breaks are not allowed (they would forge mail headers)")
        return self


class GrafanaConfig(Strict):
    """Where breach annotations go: a service-account token, or a user's basic auth (both from the
    environment; basic auth when `username_env` is set, e.g. the admin of a local demo Grafana)."""

    url: str = Field(pattern=r"^https?://[^\s]+$")
    token_env: str | None = None  # default GRAFANA_TOKEN, unless basic auth is configured
    username_env: str | None = None
    password_env: str | None = None
    dashboard_uid: str | None = None
    timeout: Duration = 10.0

    @model_validator(mode="before")
    @classmethod
    def _default_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("username_env") and not data.get("token_env"):
            data = {**data, "token_env": "GRAFANA_TOKEN"}
        return data


class AlertsConfig(Strict):
    """The alert service's settings; every key has a default but `smtp` and `grafana` are optional."""

    targets: dict[str, TargetFields] = Field(default_factory=dict)
    o2_reference: dict[str, float] = Field(default_factory=dict)  # device id -> reference O2 %
    smtp: SmtpConfig | None = None
    recipients: list[Recipient] = Field(default_factory=list)
    grafana: GrafanaConfig | None = None
    dashboard_url: str | None = None  # link in emails, e.g. http://grafana:3000/d/plant-overview
    timezone: str = "Asia/Shanghai"  # IANA zone of shift, day and month windows and of mail times
    shift_hours: int = Field(default=8, ge=1, le=24)
    for_: Duration | Literal[0] = Field(default=0, alias="for")  # default pending time of a breach
    repeat: Duration = 4 * 3600.0  # a firing alert is sent again after this long
    clear_margin: float = Field(default=0.02, ge=0, lt=0.5)  # resolve only this share inside the target
    stale_after: int = Field(default=5, ge=2)  # a device with no reading for this many intervals is stale
    # the daily digest (yesterday) is mailed at this local time, the monthly report on the 1st at
    # the same time; null: neither (docs/reports.md). Both read InfluxDB: the plant needs `influx`.
    digest_at: str | None = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    monthly_report: bool = True
    state: str = "plantwatch-alerts.sqlite"
    outbox: str = "plantwatch-outbox"
    share_group: str = "plantwatch-alerts"  # MQTT 5 shared subscription group of `plantwatch alerts`

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{name!r} is not an IANA time zone such as Asia/Shanghai") from exc
        return name
