"""Aluminium pot line DC energy per tonne, live: W = 2980 x V / CE kWh/t."""

from __future__ import annotations

from typing import Any

from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.config.targets import Target
from plantwatch.core.reading import PollResult

# Faraday: 1 t Al needs 2980 kAh at 100 % current efficiency; x volts gives kWh.
KAH_PER_TONNE = 2980.0


def dc_kwh_per_tonne(voltage: float, efficiency: float) -> float | None:
    """W = 2980 x V / CE, with CE as a fraction or a percentage; None when CE is not positive."""
    share = efficiency / 100 if efficiency > 1 else efficiency
    return KAH_PER_TONNE * voltage / share if share > 0 else None


class PotlineLive:
    """One pot line, one target: a value per reading that has both voltage and efficiency."""

    projects = False  # no month-end projection (engine.Calculator)

    def __init__(self, device: str, target: Target, voltage: str, efficiency: str) -> None:
        self.device, self.target = device, target
        self.rule = target.id
        self.voltage, self.efficiency = voltage, efficiency
        self.fields = frozenset({voltage, efficiency})

    def update(self, result: PollResult, ts: int | None = None) -> list[KpiValue]:
        """A value for every result with both a good voltage and a good efficiency."""
        values = {r.field: r.value for r in result.readings if r.quality == "good" and r.value is not None}
        if self.voltage not in values or self.efficiency not in values:
            return []
        voltage, efficiency = float(values[self.voltage]), float(values[self.efficiency])
        value = dc_kwh_per_tonne(voltage, efficiency)
        ts = result.event_ns if ts is None else ts
        percent = efficiency * 100 if efficiency <= 1 else efficiency
        details = (
            ("kah_per_tonne", KAH_PER_TONNE),
            ("pot_voltage", voltage),
            ("current_efficiency", percent),
        )
        return [KpiValue(self.device, self.target.id, self.target.id, value, ts, ts, "live", details=details)]

    def advance(self, watermark_ns: int) -> list[KpiValue]:
        """Nothing to close: every value is live."""
        return []

    def state(self) -> dict[str, Any]:
        """Nothing to keep across a restart."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Nothing to continue."""
