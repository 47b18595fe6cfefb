"""Load the plan-target catalogue, apply a plant's `alerts.targets`, and match targets to devices."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plantwatch.config.alerts import (
    AlertsConfig,
    Comparator,
    KpiKind,
    LocalText,
    NumeratorTerm,
    PlanFields,
    Severity,
    TargetFields,
)
from plantwatch.config.device_map import AnyDeviceMap
from plantwatch.config.problems import ConfigError, Problem, problems_from_validation, read_yaml

CATALOGUE = Path(__file__).with_name("catalogue.yaml")
REQUIRED = ("sector", "indicator", "kpi", "window", "unit", "comparator", "severity", "plan", "clause")

# The breach test for each comparator: the target holds while `value <op> limit` is true.
HOLDS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Text:
    """Words in Chinese and English; `text(lang)` picks one."""

    zh: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    @classmethod
    def of(cls, value: LocalText | dict[str, str] | str | None) -> Text:
        """From a catalogue or plant.yaml value: {zh, en}, or one string for both languages."""
        if value is None:
            return cls("", "")
        if isinstance(value, str):
            return cls(value, value)
        if isinstance(value, LocalText):
            return cls(value.zh, value.en)
        return cls(value["zh"], value["en"])


@dataclass(frozen=True)
class Plan:
    """A plan cited as a document: the province that issued it, the year, the title."""

    id: str  # the catalogue's plan id; "" for a title a plant wrote itself
    title: Text
    province: Text | None = None
    year: int | None = None

    def cite(self, lang: str) -> str:
        """How a mail or report names it: zh `青海省《关于…实施方案》（2013年）`; en the translated
        title with the province, the year and the Chinese original beside it."""
        if self.province is None or self.year is None:
            return f"《{self.title.zh}》" if lang == "zh" else self.title.en
        if lang == "zh":
            return f"{self.province.zh}《{self.title.zh}》（{self.year}年）"
        return f"{self.province.en} ({self.year}), {self.title.en} (《{self.title.zh}》)"


@dataclass(frozen=True)
class Target:
    """One plan target, complete. `value` is None only when the plan gives no number."""

    id: str
    sector: str
    product: str | None
    devices: tuple[str, ...] | None
    indicator: Text
    kpi: KpiKind
    numerator: tuple[NumeratorTerm, ...]
    per: str | None
    window: str
    judged_over: tuple[str, ...]  # the calendar windows regulators judge it over (per-tonne targets)
    unit: str
    comparator: Comparator
    value: float | None
    severity: Severity
    early_warning: float | None
    for_: float | None
    repeat: float | None
    effective: str
    plan: Plan
    clause: Text
    quote: Text
    source: str  # "catalogue", "plant" (added) or "catalogue + plant" (overridden)
    scope: str = "device"  # "group": over the devices of a plant's group together

    def as_json(self) -> dict[str, object]:
        """The target under the keys a catalogue entry or `alerts.targets.<id>` uses (`for`, not `for_`)."""
        fields = {("for" if k == "for_" else k): v for k, v in dataclasses.asdict(self).items()}
        fields["devices"] = list(self.devices) if self.devices is not None else None
        fields["numerator"] = [term.model_dump(exclude_none=True) for term in self.numerator]
        fields["plan"] = {
            "id": self.plan.id,
            "title": dataclasses.asdict(self.plan.title),
            "province": dataclasses.asdict(self.plan.province) if self.plan.province else None,
            "year": self.plan.year,
        }
        return fields

    def holds(self, kpi_value: float, limit: float | None = None) -> bool:
        """True when `kpi_value` meets the target (or `limit` instead of the target's value)."""
        bound = self.value if limit is None else limit
        assert bound is not None
        return HOLDS[self.comparator](kpi_value, bound)

    def applies_to(self, device_id: str, device_map: AnyDeviceMap) -> bool:
        """Whether this target watches a device: same sector (and product, when the target has one).
        A group target watches groups, never one device alone."""
        if self.scope == "group":
            return False
        if self.devices is not None:
            return device_id in self.devices
        sector = getattr(device_map, "sector", None)
        product = getattr(device_map, "product", None)
        return sector == self.sector and (self.product is None or product == self.product)


def _sections(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    data = read_yaml(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("plans", "targets")):
        raise ConfigError([Problem(str(path), "", "the catalogue has `plans` and `targets`, each a mapping")])
    return data["plans"], data["targets"]


def load_catalogue(path: Path = CATALOGUE) -> dict[str, TargetFields]:
    """The shipped targets by id (raises ConfigError naming the file and key on a bad entry)."""
    plans, targets = _sections(path)
    problems: list[Problem] = []
    entries: dict[str, TargetFields] = {}
    for target_id, entry in targets.items():
        try:
            entries[str(target_id)] = TargetFields.model_validate(entry)
        except ValidationError as exc:
            problems += [
                Problem(str(path), f"targets.{target_id}.{p.path}".rstrip("."), p.message)
                for p in problems_from_validation(str(path), exc)
            ]
            continue
        if entries[str(target_id)].plan not in plans:
            problems.append(Problem(str(path), f"targets.{target_id}.plan", "not a plan id of `plans`"))
    if problems:
        raise ConfigError(problems)
    return entries


def load_plans(path: Path = CATALOGUE) -> dict[str, Plan]:
    """The plans the catalogue's targets cite, by id."""
    plans, _ = _sections(path)
    out: dict[str, Plan] = {}
    problems: list[Problem] = []
    for plan_id, entry in plans.items():
        try:
            fields = PlanFields.model_validate(entry)
        except ValidationError as exc:
            problems += [
                Problem(str(path), f"plans.{plan_id}.{p.path}".rstrip("."), p.message)
                for p in problems_from_validation(str(path), exc)
            ]
            continue
        out[str(plan_id)] = Plan(str(plan_id), Text.of(fields.title), Text.of(fields.province), fields.year)
    if problems:
        raise ConfigError(problems)
    return out


def resolve_targets(
    alerts: AlertsConfig, file: str, catalogue: dict[str, TargetFields] | None = None
) -> list[Target]:
    """The catalogue with the plant's overrides and additions applied, as complete targets.

    Raises ConfigError naming `alerts.targets.<id>.<key>` in the plant file for an added target
    that misses a required key.
    """
    shipped = load_catalogue() if catalogue is None else catalogue
    plans = load_plans()
    problems: list[Problem] = []
    targets = []
    for target_id in [*shipped, *(t for t in alerts.targets if t not in shipped)]:
        base = shipped.get(target_id)
        override = alerts.targets.get(target_id)
        merged = {
            **(base.model_dump(exclude_none=True) if base else {}),
            **(override.model_dump(exclude_none=True) if override else {}),
        }
        missing = [key for key in REQUIRED if key not in merged]
        if missing:
            problems += [
                Problem(
                    file, f"alerts.targets.{target_id}.{key}", "required for a target not in the catalogue"
                )
                for key in missing
            ]
            continue
        source = "catalogue" if override is None else ("plant" if base is None else "catalogue + plant")
        targets.append(
            Target(
                id=target_id,
                sector=merged["sector"],
                product=merged.get("product"),
                devices=tuple(merged["devices"]) if "devices" in merged else None,
                indicator=Text.of(merged["indicator"]),
                kpi=merged["kpi"],
                numerator=tuple(NumeratorTerm.model_validate(t) for t in merged.get("numerator", [])),
                per=merged.get("per"),
                window=merged["window"],
                judged_over=_windows(merged.get("judged_over")),
                unit=merged["unit"],
                comparator=merged["comparator"],
                value=merged.get("value"),
                severity=merged["severity"],
                early_warning=merged.get("early_warning"),
                for_=merged.get("for_"),
                repeat=merged.get("repeat"),
                effective=str(merged.get("effective", "")),
                plan=plans.get(merged["plan"]) or Plan("", Text.of(merged["plan"])),
                clause=Text.of(merged["clause"]),
                quote=Text.of(merged.get("quote")),
                source=source,
                scope=merged.get("scope") or "device",
            )
        )
    if problems:
        raise ConfigError(problems)
    return targets


def _windows(judged: str | list[str] | None) -> tuple[str, ...]:
    """`judged_over` as written (one window or a list) as a tuple."""
    if judged is None:
        return ()
    return (judged,) if isinstance(judged, str) else tuple(judged)
