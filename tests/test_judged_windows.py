"""Aluminium's DC power judged over the calendar month and the calendar year (Beijing time), from the
DC energy and metal counters: Σ energy ÷ Σ metal of the readings stamped in each window, by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.alerts.kpi.engine import KpiEngine
from plantwatch.alerts.service import build_rules
from plantwatch.config.plant import load_plant_config
from plantwatch.config.targets import resolve_targets
from tests.alert_helpers import HOUR_NS, result
from tests.report_data import local_ns

YEAR, NEXT = local_ns(2026, 1, 1), local_ns(2027, 1, 1)


def test_dc_power_is_judged_over_the_month_and_the_year(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 青海铝厂}
devices:
  - {id: potline-1, map: aluminium_potline, url: "tcp://127.0.0.1:1"}
event_time: {max_skew: 3650d}
""",
        encoding="utf-8",
    )
    plant = load_plant_config(config)
    targets = resolve_targets(plant.config.alerts, "plant.yaml")
    engine = KpiEngine(plant, targets)
    stamps = list(range(YEAR - 12 * HOUR_NS, NEXT + 12 * HOUR_NS + 1, 12 * HOUR_NS))
    energy = metal = 0.0
    values = []
    for ts in stamps:
        rate = 13600.0 if local_ns(2026, 3, 1) <= ts < local_ns(2026, 4, 1) else 13100.0  # March is bad
        metal += 50.0
        energy += 50.0 * rate
        values += engine.update(result("potline-1", ts, dc_energy=energy, metal_produced=metal), ts)
    closed = {
        (v.rule, v.start_ns): v
        for v in values
        if v.device == "potline-1" and v.kind == "closed" and ":" in v.rule
    }
    year = closed[("aluminium-dc-power:year", YEAR)]
    in_2026 = [ts for ts in stamps if YEAR <= ts < NEXT]
    march = [ts for ts in in_2026 if local_ns(2026, 3, 1) <= ts < local_ns(2026, 4, 1)]
    expected = (len(march) * 13600.0 + (len(in_2026) - len(march)) * 13100.0) / len(in_2026)
    assert (year.start_ns, year.ts_ns) == (YEAR, NEXT)
    assert year.value == pytest.approx(expected)  # 13,142 kWh/t: the year holds
    assert closed[("aluminium-dc-power:month", local_ns(2026, 3, 1))].value == pytest.approx(13600.0)
    assert closed[("aluminium-dc-power-elimination:month", local_ns(2026, 3, 1))].value == pytest.approx(
        13600.0
    )
    assert ("aluminium-dc-power-elimination:year", YEAR) in closed
    rules = build_rules(plant, engine, targets)
    assert rules[("potline-1", "aluminium-dc-power:year")].audience == "regulator"
    assert rules[("potline-1", "aluminium-dc-power-elimination:month")].severity == "critical"


def test_saved_windows_follow_their_rule_when_the_catalogue_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "plant.yaml"
    base = """
plant: {id: works, name: 青海铝厂}
devices:
  - {id: potline-1, map: aluminium_potline, url: "tcp://127.0.0.1:1"}
event_time: {max_skew: 3650d}
"""
    config.write_text(
        base + "alerts: {targets: {aluminium-dc-power: {judged_over: month}}}\n", encoding="utf-8"
    )
    before = load_plant_config(config)
    old = KpiEngine(before, resolve_targets(before.config.alerts, "plant.yaml"))  # no year rule yet
    energy = metal = 0.0
    for ts in range(YEAR - 12 * HOUR_NS, local_ns(2026, 3, 15) + 1, 12 * HOUR_NS):
        metal += 50.0
        energy += 50.0 * 13100.0
        old.update(result("potline-1", ts, dc_energy=energy, metal_produced=metal), ts)
    saved = old.changed_state()
    config.write_text(base, encoding="utf-8")  # the catalogue's default: month and year
    after = load_plant_config(config)
    new = KpiEngine(after, resolve_targets(after.config.alerts, "plant.yaml"))
    new.restore(saved, local_ns(2026, 3, 15))  # the year rule has no saved window: it starts afresh
    values = []
    for ts in range(local_ns(2026, 3, 15, 12), local_ns(2026, 4, 1, 12) + 1, 12 * HOUR_NS):
        metal += 50.0
        energy += 50.0 * 13100.0
        values += new.update(result("potline-1", ts, dc_energy=energy, metal_produced=metal), ts)
    march = [v for v in values if v.rule == "aluminium-dc-power:month" and v.kind == "closed"]
    assert [v.start_ns for v in march] == [local_ns(2026, 3, 1)]  # March continued whole
    assert march[0].value == pytest.approx(13100.0)
    legacy = {"potline-1": {**saved["potline-1"], "calculators": [{}]}}  # as an older version saved
    KpiEngine(after, resolve_targets(after.config.alerts, "plant.yaml")).restore(legacy, YEAR)
    assert "windows saved by an older version are started afresh" in caplog.text
