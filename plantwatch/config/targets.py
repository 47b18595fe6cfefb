"""Load the plan-target catalogue, apply a plant's `alerts.targets`, and match targets to devices."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from plantwatch.config.alerts import AlertsConfig, Comparator, KpiKind, NumeratorTerm, Severity, TargetFields
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
class Target:
    """One plan target, complete. `value` is None only when the plan gives no number."""

    id: str
    sector: str
    product: str | None
    devices: tuple[str, ...] | None
    indicator: str
    kpi: KpiKind
    numerator: tuple[NumeratorTerm, ...]
    per: str | None
    window: str
    unit: str
    comparator: Comparator
    value: float | None
    severity: Severity
    early_warning: float | None
    for_: float | None
    repeat: float | None
    effective: str
    plan: str
    clause: str
    quote: str
    source: str  # "catalogue", "plant" (added) or "catalogue + plant" (overridden)

    def as_json(self) -> dict[str, object]:
        """The target under the keys a catalogue entry or `alerts.targets.<id>` uses (`for`, not `for_`)."""
        fields = {("for" if k == "for_" else k): v for k, v in dataclasses.asdict(self).items()}
        fields["devices"] = list(self.devices) if self.devices is not None else None
        fields["numerator"] = [term.model_dump() for term in self.numerator]
        return fields

    def holds(self, kpi_value: float, limit: float | None = None) -> bool:
        """True when `kpi_value` meets the target (or `limit` instead of the target's value)."""
        bound = self.value if limit is None else limit
        assert bound is not None
        return HOLDS[self.comparator](kpi_value, bound)

    def applies_to(self, device_id: str, device_map: AnyDeviceMap) -> bool:
        """Whether this target watches a device: same sector (and product, when the target has one)."""
        if self.devices is not None:
            return device_id in self.devices
        sector = getattr(device_map, "sector", None)
        product = getattr(device_map, "product", None)
        return sector == self.sector and (self.product is None or product == self.product)


def load_catalogue(path: Path = CATALOGUE) -> dict[str, TargetFields]:
    """The shipped targets by id (raises ConfigError naming the file and key on a bad entry)."""
    data = read_yaml(path)
    problems: list[Problem] = []
    entries: dict[str, TargetFields] = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(str(path), "", "the catalogue is a mapping of target id to target")])
    for target_id, entry in data.items():
        try:
            entries[str(target_id)] = TargetFields.model_validate(entry)
        except ValidationError as exc:
            problems += [
                Problem(str(path), f"{target_id}.{p.path}".rstrip("."), p.message)
                for p in problems_from_validation(str(path), exc)
            ]
    if problems:
        raise ConfigError(problems)
    return entries


def resolve_targets(
    alerts: AlertsConfig, file: str, catalogue: dict[str, TargetFields] | None = None
) -> list[Target]:
    """The catalogue with the plant's overrides and additions applied, as complete targets.

    Raises ConfigError naming `alerts.targets.<id>.<key>` in the plant file for an added target
    that misses a required key.
    """
    shipped = load_catalogue() if catalogue is None else catalogue
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
                indicator=merged["indicator"],
                kpi=merged["kpi"],
                numerator=tuple(NumeratorTerm.model_validate(t) for t in merged.get("numerator", [])),
                per=merged.get("per"),
                window=merged["window"],
                unit=merged["unit"],
                comparator=merged["comparator"],
                value=merged.get("value"),
                severity=merged["severity"],
                early_warning=merged.get("early_warning"),
                for_=merged.get("for_"),
                repeat=merged.get("repeat"),
                effective=str(merged.get("effective", "")),
                plan=merged["plan"],
                clause=merged["clause"],
                quote=merged.get("quote", ""),
                source=source,
            )
        )
    if problems:
        raise ConfigError(problems)
    return targets
