"""The simulator's physics: deterministic, counters integrate rates, taps add weight, dust excursions."""

from __future__ import annotations

import pytest

from plantwatch.config.device_map import DeviceMap
from plantwatch.config.roles import CLOCK_ROLES
from plantwatch.simulator.device import SimulatedDevice, to_raw
from plantwatch.simulator.profiles import SHIPPED
from plantwatch.simulator.signals import Level


def test_every_shipped_map_has_a_profile_for_every_field(shipped_maps: dict[str, DeviceMap]) -> None:
    modbus = {model: m for model, m in shipped_maps.items() if m.protocol == "modbus"}
    assert set(SHIPPED) == set(modbus)  # the simulator serves Modbus maps
    for model, device_map in modbus.items():
        fields = {r.name for r in device_map.registers if r.role not in CLOCK_ROLES}  # from its clock
        assert fields <= set(SHIPPED[model]), model


def test_same_seed_same_values_other_seed_other_noise(shipped_maps: dict[str, DeviceMap]) -> None:
    saf = shipped_maps["saf_ferrosilicon"]
    a, b, c = (SimulatedDevice(saf, 1, seed=s) for s in (5, 5, 6))
    assert a.values(1234.0) == b.values(1234.0)
    assert a.values(1234.0)["active_power"] != c.values(1234.0)["active_power"]


def test_energy_counter_is_the_integral_of_power(shipped_maps: dict[str, DeviceMap]) -> None:
    sim = SimulatedDevice(shipped_maps["saf_ferrosilicon"], 1)
    power = sim.signals["active_power"]
    assert isinstance(power, Level)
    # Trapezoid sum of the noiseless power over one hour, in kWh.
    steps = 3600
    kwh = sum((power.smooth(t) + power.smooth(t + 1)) / 2 for t in range(steps)) / 3600
    delta = sim.values(3600.0)["active_energy"] - sim.values(0.0)["active_energy"]
    assert delta == pytest.approx(kwh, rel=1e-6)
    assert 29_000 < delta < 31_000


def test_taps_add_weight_every_period_and_sit_near_the_plan_target(
    shipped_maps: dict[str, DeviceMap],
) -> None:
    sim = SimulatedDevice(shipped_maps["saf_ferrosilicon"], 1, seed=3)
    before, after = sim.values(2 * 3600 - 1), sim.values(2 * 3600 + 1)
    assert (before["tap_counter"], after["tap_counter"]) == (0, 1)
    assert after["alloy_produced"] - before["alloy_produced"] == pytest.approx(after["tap_weight"])
    per_tonne = []
    for n in range(1, 49):
        start, end = sim.values(n * 7200 - 7200 + 1), sim.values(n * 7200 + 1)
        per_tonne.append((end["active_energy"] - start["active_energy"]) / end["tap_weight"])
    assert min(per_tonne) > 7_000 and max(per_tonne) < 8_600
    assert any(v > 7_800 for v in per_tonne) and any(v < 7_800 for v in per_tonne)  # some breach, most don't


def test_devices_of_one_model_with_different_seeds_keep_their_own_totals(
    shipped_maps: dict[str, DeviceMap],
) -> None:
    """The profile is shared by the model's devices; a total must follow its own seed's taps."""
    one, two = (SimulatedDevice(shipped_maps["saf_ferrosilicon"], 1, seed=s) for s in (11, 12))
    for sim in (one, two, one):  # interleaved, as a plant's poller reads them
        total, weights = sim.values(5 * 7200 + 1)["alloy_produced"], 0.0
        for n in range(1, 6):
            weights += sim.values(n * 7200 + 1)["tap_weight"]
        assert total - sim.values(1.0)["alloy_produced"] == pytest.approx(weights)


def test_dust_has_excursions_over_the_limit_and_a_maintenance_flag(
    shipped_maps: dict[str, DeviceMap],
) -> None:
    sim = SimulatedDevice(shipped_maps["dust_cems"], 1, epoch=1_764_000_000)  # 2025-11-24 16:00 UTC
    dust = [sim.values(float(t))["dust"] for t in range(0, 24 * 3600, 60)]
    assert min(dust) > 20 and max(dust) > 55
    hourly = [sum(dust[h * 60 : (h + 1) * 60]) / 60 for h in range(24)]
    # every 4 h an hour over the 50 mg/m³ limit, and the next one back under it
    assert [h for h, mean in enumerate(hourly) if mean > 50] == list(range(0, 24, 4))
    assert all(hourly[h + 1] < 45 for h in range(0, 24, 4))
    flags = [sim.values(float(t))["data_flag"] for t in range(0, 24 * 3600, 60)]
    assert flags.count("M") == 30 and set(flags) == {"N", "M"}


def test_aluminium_dc_energy_per_tonne_matches_the_voltage_formula(
    shipped_maps: dict[str, DeviceMap],
) -> None:
    sim = SimulatedDevice(shipped_maps["aluminium_potline"], 1)
    a, b = sim.values(0.0), sim.values(24 * 3600.0)
    measured = (b["dc_energy"] - a["dc_energy"]) / (b["metal_produced"] - a["metal_produced"])
    formula = 2980 * 3.95 / 0.93  # W = 2980 × V / CE, about 12 657 kWh/t
    assert measured == pytest.approx(formula, rel=0.01)


def test_to_raw_inverts_scaling_and_clamps_or_wraps(shipped_maps: dict[str, DeviceMap]) -> None:
    saf = shipped_maps["saf_ferrosilicon"]
    assert to_raw(saf.register("tap_weight"), 7.66) == 766
    assert to_raw(saf.register("tap_weight"), 1e9) == 65535  # clamped to uint16
    assert to_raw(saf.register("active_energy"), 2**32 + 5) == 5  # a counter wraps
    assert to_raw(saf.register("furnace_running"), True) is True
