"""Production against the permitted capacity: both ferrosilicon furnaces' production counters
together, this month's rate times a year (hand-computed), warned from the month's third day; no
capacity KPI without the plant's number."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.alerts.service import AlertService
from plantwatch.alerts.setup import build_alert_service
from plantwatch.config.plant import load_plant_config
from tests.alert_helpers import HOUR_NS, result
from tests.report_data import local_ns

NOV, DEC = local_ns(2026, 11, 1), local_ns(2026, 12, 1)
YEAR_NS = 365 * 24 * HOUR_NS


def write(folder: Path, capacity: str) -> Path:
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁铁合金厂}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}}
  - {{id: saf-2, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1", unit: 2}}
event_time: {{max_skew: 3650d}}
alerts:
  digest_at: null
  targets: {{{capacity}}}
""",
        encoding="utf-8",
    )
    return config


def run_november(config: Path, until: int) -> AlertService:
    now = [NOV]
    service = build_alert_service(load_plant_config(config), clock=lambda: now[0])
    made = {"saf-1": 0.0, "saf-2": 0.0}
    for ts in range(NOV - 6 * HOUR_NS, until + 1, 6 * HOUR_NS):  # every 6 h from 31 October 18:00
        now[0] = ts
        for device, per_hour in (("saf-1", 12.0), ("saf-2", 8.0)):
            made[device] += per_hour * 6
            service.handle(result(device, ts, alloy_produced=made[device]))
    return service


def test_annualised_production_warns_above_the_permitted_capacity(tmp_path: Path) -> None:
    service = run_november(write(tmp_path, "ferroalloy-capacity: {value: 150000}"), DEC + 6 * HOUR_NS)
    key = ("capacity-ferroalloy", "ferroalloy-capacity")
    # by hand: 20 t an hour together; November's readings (00:00 on the 1st to 18:00 on the 30th)
    # add 120 t each: 120 readings, 14,400 t in 30 days: 175,200 t a year, over 150,000
    fired = [t for t in service.transitions if t.alert.device == key[0]]
    assert fired and fired[0].event == "firing" and fired[0].rule.audience == "plant"
    first = fired[0].kpi
    assert first is not None and first.kind == "live"
    assert first.ts_ns - first.start_ns >= 3 * 24 * HOUR_NS  # not before the month's third day
    assert first.value == pytest.approx(first.numerator * YEAR_NS / (first.ts_ns - first.start_ns))
    service.checkpoint()  # the closed month reaches the state file with the checkpoint
    month = service.history.store.windows(*key)
    assert month[-1][2] == pytest.approx(14400 * YEAR_NS / (DEC - NOV))  # 175,200 t/a
    service.close()


def test_no_capacity_kpi_without_the_plants_number(tmp_path: Path) -> None:
    service = run_november(write(tmp_path, ""), NOV + 5 * 24 * HOUR_NS)
    assert not [k for k in service.latest if k[0].startswith("capacity-")]
    service.close()


def test_a_lagging_furnace_never_inflates_the_live_rate(tmp_path: Path) -> None:
    service = build_alert_service(load_plant_config(write(tmp_path, "ferroalloy-capacity: {value: 150000}")))
    stamps = range(NOV - 6 * HOUR_NS, NOV + 10 * 24 * HOUR_NS + 1, 6 * HOUR_NS)
    for device, per_hour in (("saf-1", 12.0), ("saf-2", 8.0)):  # saf-2's data come in after saf-1's
        made = 0.0
        for ts in stamps:
            made += per_hour * 6
            service.handle(result(device, ts, alloy_produced=made))
    live = [
        t.kpi for t in service.transitions if t.alert.device == "capacity-ferroalloy" and t.kpi is not None
    ]
    assert live and live[0].value == pytest.approx(20 * 24 * 365)  # 175,200 t/a, both furnaces' whole days
    service.close()
