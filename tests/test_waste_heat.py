"""Waste-heat coverage of a cement kiln line (the plan: waste-heat power on 100 % of lines): of the
hours the kiln ran in November, the share with its generator producing, by hand; stops of the
kiln and a gap in the data count nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.alerts.kpi.engine import KpiEngine
from plantwatch.config.plant import load_plant_config
from plantwatch.config.targets import resolve_targets
from tests.alert_helpers import HOUR_NS, result
from tests.report_data import local_ns

NOV, DEC = local_ns(2026, 11, 1), local_ns(2026, 12, 1)


def kiln_engine(folder: Path) -> KpiEngine:
    """The KPI engine of a works with one kiln line read every hour."""
    config = folder / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 青海水泥厂}
devices:
  - {id: kiln-1, map: cement_kiln_line, url: "tcp://127.0.0.1:1", interval: 1h}
event_time: {max_skew: 3650d}
""",
        encoding="utf-8",
    )
    plant = load_plant_config(config)
    return KpiEngine(plant, resolve_targets(plant.config.alerts, "plant.yaml"))


def test_coverage_is_generating_hours_over_running_hours(tmp_path: Path) -> None:
    engine = kiln_engine(tmp_path)
    stopped = range(local_ns(2026, 11, 5), local_ns(2026, 11, 6), HOUR_NS)  # the kiln stops 24 h
    no_power = range(local_ns(2026, 11, 10), local_ns(2026, 11, 12), HOUR_NS)  # generator down 48 h
    gap = range(local_ns(2026, 11, 20, 1), local_ns(2026, 11, 20, 10), HOUR_NS)  # no data 9 h
    values = []
    for ts in range(NOV - 24 * HOUR_NS, DEC + 2 * HOUR_NS, HOUR_NS):
        if ts in gap:
            continue
        running = ts not in stopped
        power = 0.0 if ts in no_power or not running else 6500.0
        values += engine.update(result("kiln-1", ts, kiln_running=running, waste_heat_power=power), ts)
    [closed] = [v for v in values if v.rule == "cement-waste-heat-coverage" and v.kind == "closed"]
    # by hand, the hours ending at November's readings: 720 - 9 missing = 711 readings; the one after
    # the gap counts nothing (10 h > 5 intervals); 24 stopped; so 711 - 1 - 24 = 686 running hours,
    # of which 48 without power: 638 covered
    assert (closed.numerator, closed.denominator) == pytest.approx((638.0, 686.0))
    assert closed.value == pytest.approx(638 / 686 * 100)  # 93.0 %: short of 100 %
    assert (closed.start_ns, closed.ts_ns) == (NOV, DEC)


def test_only_a_kiln_line_without_its_generator_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "kiln_no_whr.yaml").write_text(
        "model: kiln_no_whr\ndescription: a kiln without a waste-heat meter\nsector: cement\n"
        "product: clinker\nprotocol: modbus\nsource: test map\nregisters:\n"
        "  - {name: kiln_running, address: 0, type: bool, table: coil, role: running}\n",
        encoding="utf-8",
    )
    config = tmp_path / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 青海水泥厂}
devices:
  - {id: kiln-1, map: kiln_no_whr.yaml, url: "tcp://127.0.0.1:1"}
  - {id: feeders-1, map: cement_feeders, url: "tcp://127.0.0.1:1", unit: 2}
""",
        encoding="utf-8",
    )
    plant = load_plant_config(config)
    with caplog.at_level("WARNING"):
        KpiEngine(plant, resolve_targets(plant.config.alerts, "plant.yaml"))
    coverage = [r.getMessage() for r in caplog.records if "cement-waste-heat-coverage" in r.getMessage()]
    # the feeders are no kiln line: not a word about them
    why = "needs a waste_heat_power field beside running"
    assert coverage == [f"KPI cement-waste-heat-coverage for kiln-1 not computed: {why}"]
