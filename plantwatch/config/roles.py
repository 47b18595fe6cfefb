"""The closed vocabularies of maps: register roles (what the alert service uses each value for)
and sectors."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Sector = Literal["ferroalloy", "cement", "aluminium", "steel", "polysilicon", "emissions"]


class Role(StrEnum):
    """What a value means to the alert service; documented in docs/device-maps.md."""

    ENERGY_COUNTER = "energy_counter"
    DC_ENERGY_COUNTER = "dc_energy_counter"
    POWER = "power"
    PRODUCTION_COUNTER = "production_counter"
    TAP_WEIGHT = "tap_weight"
    TAP_COUNTER = "tap_counter"
    POT_VOLTAGE = "pot_voltage"
    LINE_CURRENT = "line_current"
    CURRENT_EFFICIENCY = "current_efficiency"
    DUST_CONCENTRATION = "dust_concentration"
    SO2_CONCENTRATION = "so2_concentration"
    NOX_CONCENTRATION = "nox_concentration"
    O2 = "o2"
    FLUE_FLOW = "flue_flow"
    FLUE_TEMPERATURE = "flue_temperature"
    DATA_FLAG = "data_flag"
    COAL_FEED = "coal_feed"
    COAL_COUNTER = "coal_counter"
    COKE_COUNTER = "coke_counter"
    GAS_COUNTER = "gas_counter"
    WATER_COUNTER = "water_counter"
    CLINKER_COUNTER = "clinker_counter"
    SLAG_PRODUCED_COUNTER = "slag_produced_counter"
    SLAG_USED_COUNTER = "slag_used_counter"
    SOLID_WASTE_COUNTER = "solid_waste_counter"
    RAW_MATERIAL_COUNTER = "raw_material_counter"
    WASTE_HEAT_POWER = "waste_heat_power"
    TEMPERATURE = "temperature"
    RUNNING = "running"
    INFO = "info"
    # The device's own clock (CEMS data loggers): readings carry its time instead of the poll's.
    CLOCK_EPOCH = "clock_epoch"
    CLOCK_YEAR = "clock_year"
    CLOCK_MONTH = "clock_month"
    CLOCK_DAY = "clock_day"
    CLOCK_HOUR = "clock_hour"
    CLOCK_MINUTE = "clock_minute"
    CLOCK_SECOND = "clock_second"


# A device clock is either one epoch register or these (seconds optional, 0 when absent).
CLOCK_PARTS = (
    Role.CLOCK_YEAR,
    Role.CLOCK_MONTH,
    Role.CLOCK_DAY,
    Role.CLOCK_HOUR,
    Role.CLOCK_MINUTE,
    Role.CLOCK_SECOND,
)
CLOCK_ROLES = frozenset({Role.CLOCK_EPOCH, *CLOCK_PARTS})


ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.ENERGY_COUNTER: "cumulative active energy (kWh, MWh); a counter",
    Role.DC_ENERGY_COUNTER: "cumulative DC energy of an aluminium pot line (kWh); a counter",
    Role.POWER: "instantaneous active power (kW, MW)",
    Role.PRODUCTION_COUNTER: "cumulative product made: alloy, steel, silicon, metal (t, kg)",
    Role.TAP_WEIGHT: "weight of the last tap or heat (t)",
    Role.TAP_COUNTER: "sequence number of the last tap or heat; a step marks a new one",
    Role.POT_VOLTAGE: "average pot voltage of an aluminium line (V)",
    Role.LINE_CURRENT: "pot line or electrode current (kA)",
    Role.CURRENT_EFFICIENCY: "aluminium current efficiency (%)",
    Role.DUST_CONCENTRATION: "flue dust concentration as measured (mg/m3)",
    Role.SO2_CONCENTRATION: "SO2 concentration (mg/m3)",
    Role.NOX_CONCENTRATION: "NOx concentration (mg/m3)",
    Role.O2: "flue gas oxygen, for reference-O2 correction (%)",
    Role.FLUE_FLOW: "flue gas flow (m3/h)",
    Role.FLUE_TEMPERATURE: "flue gas temperature (degC)",
    Role.DATA_FLAG: "CEMS data flag: N normal, F stopped, M maintenance, C calibration, D fault",
    Role.COAL_FEED: "coal feed rate (t/h)",
    Role.COAL_COUNTER: "cumulative coal burnt (t); a counter",
    Role.COKE_COUNTER: "cumulative coke used (t); a counter",
    Role.GAS_COUNTER: "cumulative fuel gas used (m3); a counter",
    Role.WATER_COUNTER: "cumulative fresh water used (m3); a counter",
    Role.CLINKER_COUNTER: "cumulative clinker produced (t); a counter",
    Role.SLAG_PRODUCED_COUNTER: "cumulative smelting slag produced (t); a counter",
    Role.SLAG_USED_COUNTER: "cumulative smelting slag put to use (t); a counter",
    Role.SOLID_WASTE_COUNTER: "cumulative industrial solid waste fed to a kiln line (t); a counter",
    Role.RAW_MATERIAL_COUNTER: "cumulative raw material fed to a kiln line, waste included (t); a counter",
    Role.WASTE_HEAT_POWER: "power of a kiln line's waste-heat generator (kW)",
    Role.TEMPERATURE: "a process temperature (degC)",
    Role.RUNNING: "whether the unit is running (bool)",
    Role.INFO: "descriptive value with no alert meaning (status text, firmware)",
    Role.CLOCK_EPOCH: "the device's clock: seconds since 1970-01-01 UTC",
    Role.CLOCK_YEAR: "the device's clock: year (with month, day, hour, minute, second in its zone)",
    Role.CLOCK_MONTH: "the device's clock: month 1-12",
    Role.CLOCK_DAY: "the device's clock: day of the month",
    Role.CLOCK_HOUR: "the device's clock: hour 0-23",
    Role.CLOCK_MINUTE: "the device's clock: minute 0-59",
    Role.CLOCK_SECOND: "the device's clock: second 0-59 (optional)",
}
