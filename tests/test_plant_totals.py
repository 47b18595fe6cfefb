"""Plant totals: one per-tonne target over every furnace it watches, Σ energy ÷ Σ product over the
calendar window it is judged over, from the devices' own windows (hand-computed here from the taps);
no total for a window a furnace did not watch whole; a restart between two furnaces' closes."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.alerts.kpi.engine import KpiEngine
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.alerts.service import build_rules
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.config.targets import resolve_targets
from tests.alert_helpers import HOUR_NS, result
from tests.report_data import local_ns

RULE = "ferroalloy-fesi-unit-power:day"
D = local_ns(2026, 11, 10)  # the day the totals are checked on (Beijing time)
DAY_NS = 24 * HOUR_NS


def plant(folder: Path) -> Plant:
    config = folder / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 西宁铁合金厂}
devices:
  - {id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}
  - {id: saf-2, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1", unit: 2}
event_time: {max_skew: 3650d}
alerts:
  targets:
    ferroalloy-fesi-unit-power: {judged_over: day}
""",
        encoding="utf-8",
    )
    return load_plant_config(config)


def taps(
    hours: tuple[int, ...], per_tonne: dict[int, float], weight: float, start: int, days: int
) -> list[tuple[int, float, float]]:
    """(time, energy of the tap ending then, its weight): taps at `hours` each day from `start`."""
    out = []
    for day in range(days):
        for hour in hours:
            ts = start + day * DAY_NS + hour * HOUR_NS
            out.append((ts, per_tonne.get(ts, 7700.0) * weight, weight))
    return out


def feed(
    engine: KpiEngine, device: str, rows: list[tuple[int, float, float]], first_count: int = 1
) -> list[KpiValue]:
    """The readings a tapped furnace gives at each tap boundary (energy counter, tap counter, weight)."""
    out, energy = [], 0.0
    for n, (ts, tap_energy, weight) in enumerate(rows):
        energy += tap_energy
        out += engine.update(
            result(device, ts, active_energy=energy, tap_counter=first_count + n, tap_weight=weight), ts
        )
    return out


def closed(values: list[KpiValue], device: str, start: int) -> KpiValue:
    [value] = [
        v
        for v in values
        if v.device == device and v.rule == RULE and v.kind == "closed" and v.start_ns == start
    ]
    return value


def in_day(rows: list[tuple[int, float, float]], start: int, skip_first: bool = False) -> tuple[float, float]:
    """Σ energy and Σ weight of the taps ending in the day (the first tap seen is never valued)."""
    valued = rows[1:] if skip_first else rows
    inside = [(e, w) for ts, e, w in valued if start <= ts < start + DAY_NS]
    return sum(e for e, _ in inside), sum(w for _, w in inside)


def test_a_day_total_is_the_sum_of_both_furnaces_energy_over_their_product(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    engine = KpiEngine(configured, resolve_targets(configured.config.alerts, "plant.yaml"))
    one = taps((2, 10, 18), {D + 10 * HOUR_NS: 8600.0}, 8.0, D - DAY_NS, 3)
    two = taps((4, 12, 20), {}, 10.0, D - DAY_NS, 3)
    values = feed(engine, "saf-1", one) + feed(engine, "saf-2", two)
    energy_1, weight_1 = in_day(one, D)
    energy_2, weight_2 = in_day(two, D)
    assert closed(values, "saf-1", D).value == pytest.approx(energy_1 / weight_1)  # each furnace's own
    total = closed(values, "total-ferrosilicon", D)
    assert (total.numerator, total.denominator) == pytest.approx((energy_1 + energy_2, weight_1 + weight_2))
    assert total.value == pytest.approx((3 * 8 * 7700 + 8 * 900 + 3 * 10 * 7700) / 54)  # 7,833 kWh/t
    assert total.ts_ns == D + DAY_NS and total.target == "ferroalloy-fesi-unit-power"
    to_date = [v for v in values if v.device == "total-ferrosilicon" and v.kind == "to-date"]
    assert to_date and all(v.value is not None for v in to_date)
    rules = build_rules(configured, engine, resolve_targets(configured.config.alerts, "plant.yaml"))
    assert (
        rules[("total-ferrosilicon", RULE)].limit == 7800
        and rules[("total-ferrosilicon", RULE)].audience == "plant"
    )


def test_no_total_for_a_day_one_furnace_did_not_watch_whole(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    engine = KpiEngine(configured, resolve_targets(configured.config.alerts, "plant.yaml"))
    one = taps((2, 10, 18), {}, 8.0, D - DAY_NS, 4)
    two = taps((4, 12, 20), {}, 10.0, D, 3)  # saf-2 starts on the day itself
    values = feed(engine, "saf-1", one) + feed(engine, "saf-2", two)
    totals = [v for v in values if v.device == "total-ferrosilicon" and v.kind == "closed"]
    assert [v.start_ns for v in totals] == [D + DAY_NS]  # not D: saf-2 saw only part of it
    energy_1, weight_1 = in_day(one, D + DAY_NS)
    energy_2, weight_2 = in_day(two, D + DAY_NS)
    assert totals[0].value == pytest.approx((energy_1 + energy_2) / (weight_1 + weight_2))


def test_a_restart_between_the_furnaces_closes_keeps_the_first(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    targets = resolve_targets(configured.config.alerts, "plant.yaml")
    before = KpiEngine(configured, targets)
    one = taps((2, 10, 18), {}, 8.0, D - DAY_NS, 3)
    two = taps((4, 12, 20), {}, 10.0, D - DAY_NS, 3)
    feed(before, "saf-1", one)  # saf-1 closes day D
    feed(before, "saf-2", two[:4])  # saf-2 is inside day D when the process stops
    saved = before.changed_state()
    after = KpiEngine(configured, targets)
    after.restore(saved, D + 2 * DAY_NS)
    values = feed(after, "saf-2", two[4:], first_count=5)
    energy_1, weight_1 = in_day(one, D)
    energy_2, weight_2 = in_day(two, D)
    total = closed(values, "total-ferrosilicon", D)
    assert total.value == pytest.approx((energy_1 + energy_2) / (weight_1 + weight_2))
