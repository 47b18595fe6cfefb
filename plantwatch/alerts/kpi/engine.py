"""The KPI engine: builds each device's calculators from its map roles and the targets that watch it."""

from __future__ import annotations

import logging
from typing import Protocol

from plantwatch.alerts.kpi.dust import DustHourly
from plantwatch.alerts.kpi.per_tonne import CounterField, PerTonne
from plantwatch.alerts.kpi.potline import PotlineLive
from plantwatch.alerts.kpi.standard_coal import UnitError
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.device_map import DeviceMap, map_values
from plantwatch.config.plant import Plant
from plantwatch.config.targets import Target
from plantwatch.core.reading import PollResult

log = logging.getLogger(__name__)


class Calculator(Protocol):
    def update(self, result: PollResult) -> list[KpiValue]: ...


def field_roles(plant: Plant, device_id: str) -> dict[str, list[CounterField]]:
    """Role -> the device's fields with that role (name, unit, and the wrap of integer registers)."""
    device_map = plant.maps[device_id]
    roles: dict[str, list[CounterField]] = {}
    for f in map_values(device_map):
        if f.role is None:
            continue
        wrap = None
        if isinstance(device_map, DeviceMap) and f.type.startswith("uint"):
            wrap = float(2 ** int(f.type[4:])) * f.scale
        roles.setdefault(f.role.value, []).append(CounterField(f.name, f.unit, f.role.value, wrap))
    return roles


class KpiEngine:
    """Feed it every committed result; it returns the KPI values they complete or update."""

    def __init__(self, plant: Plant, targets: list[Target]) -> None:
        self.calculators: dict[str, list[Calculator]] = {}
        alerts = plant.config.alerts
        for device_id, watched in plant.targets_by_device(targets).items():
            roles = field_roles(plant, device_id)
            for target in watched:
                if target.value is None:
                    continue  # validate reports it; nothing to compare against
                try:
                    calculator, why = self._build(
                        device_id,
                        target,
                        roles,
                        alerts.o2_reference.get(device_id),
                        alerts.timezone,
                        alerts.shift_hours,
                    )
                except UnitError as exc:  # a map unit the KPI cannot convert: say so once, here
                    calculator, why = None, str(exc)
                if calculator is None:
                    log.warning("KPI %s for %s not computed: %s", target.id, device_id, why)
                else:
                    self.calculators.setdefault(device_id, []).append(calculator)

    @staticmethod
    def _build(
        device: str,
        target: Target,
        roles: dict[str, list[CounterField]],
        o2_reference: float | None,
        timezone: str,
        shift_hours: int,
    ) -> tuple[Calculator | None, str]:
        def one(role: str) -> CounterField | None:
            fields = roles.get(role)
            return fields[0] if fields else None

        if target.kpi == "dust_hourly":
            dust = one("dust_concentration")
            if dust is None:
                return None, "no dust_concentration field"
            o2, flag = one("o2"), one("data_flag")
            if o2_reference is not None and o2 is None:
                return None, "o2_reference is set but the map has no o2 field"
            o2_name, flag_name = (o2.name if o2 else None), (flag.name if flag else None)
            return DustHourly(device, target, dust.name, o2_name, flag_name, o2_reference), ""
        if target.kpi == "potline_live":
            voltage, efficiency = one("pot_voltage"), one("current_efficiency")
            if voltage is None or efficiency is None:
                return None, "needs pot_voltage and current_efficiency fields"
            return PotlineLive(device, target, voltage.name, efficiency.name), ""
        numerator = []
        for term in target.numerator:
            for f in roles.get(term.role, []):
                numerator.append(CounterField(f.name, f.unit, f.role, f.wrap, term.carrier))
        if not numerator:
            return None, f"no field with role {' or '.join(t.role for t in target.numerator)}"
        if target.per == "tap":
            counter, weight = one("tap_counter"), one("tap_weight")
            if counter is None or weight is None:
                return None, "per-tap needs tap_counter and tap_weight fields"
            return PerTonne(device, target, numerator, None, counter.name, weight, timezone, shift_hours), ""
        production = one(target.per or "production_counter")
        if production is None:
            return None, f"no {target.per} field"
        return PerTonne(device, target, numerator, production, timezone=timezone, shift_hours=shift_hours), ""

    def update(self, result: PollResult) -> list[KpiValue]:
        """KPI values from one result; a calculator that fails is logged and the rest go on."""
        out: list[KpiValue] = []
        for calculator in self.calculators.get(result.device, ()):
            try:
                out += calculator.update(result)
            except (ValueError, TypeError) as exc:
                log.error("KPI for %s: %s", result.device, exc)
        return out
