"""Energy carriers in standard coal (kgce), GB/T 2589-2020 reference coefficients."""

from __future__ import annotations

# kgce per unit of the carrier. Electricity is the equivalent (calorific) value the design
# brief prescribes; fuels are the standard's reference values (mid-range where it gives one).
KGCE_PER_UNIT: dict[str, tuple[float, str]] = {
    "electricity": (0.1229, "kWh"),
    "raw_coal": (714.3, "t"),
    "coke": (971.4, "t"),
    "natural_gas": (1.2143, "m3"),
    "coke_oven_gas": (0.5929, "m3"),
    "blast_furnace_gas": (0.1286, "m3"),
    "heavy_oil": (1428.6, "t"),
    "diesel": (1457.1, "t"),
}

# Unit spellings a map may use, to the carrier's base unit.
TO_BASE: dict[str, tuple[str, float]] = {
    "kWh": ("kWh", 1.0),
    "MWh": ("kWh", 1000.0),
    "GWh": ("kWh", 1_000_000.0),
    "t": ("t", 1.0),
    "kg": ("t", 0.001),
    "m3": ("m3", 1.0),
    "Nm3": ("m3", 1.0),
    "km3": ("m3", 1000.0),
}


class UnitError(ValueError):
    """A counter's unit cannot be converted to what the KPI needs."""


def to_base(amount: float, unit: str | None) -> tuple[float, str]:
    """`amount` in its base unit (kWh, t or m3)."""
    if unit not in TO_BASE:
        raise UnitError(f"unit {unit!r} is not one of {', '.join(TO_BASE)}")
    base, factor = TO_BASE[unit]
    return amount * factor, base


def in_tonnes(amount: float, unit: str | None) -> float:
    """`amount` of a mass unit (t, kg), in tonnes; UnitError for any other unit."""
    tonnes, base = to_base(amount, unit)
    if base != "t":
        raise UnitError(f"{unit} is not a mass unit")
    return tonnes


def in_kgce(amount: float, unit: str | None, carrier: str) -> float:
    """`amount` of `carrier` measured in `unit`, as kgce."""
    if carrier not in KGCE_PER_UNIT:
        raise UnitError(f"carrier {carrier!r} is not one of {', '.join(KGCE_PER_UNIT)}")
    coefficient, carrier_unit = KGCE_PER_UNIT[carrier]
    value, base = to_base(amount, unit)
    if base != carrier_unit:
        raise UnitError(f"{carrier} is counted in {carrier_unit}, the meter says {unit}")
    return value * coefficient
