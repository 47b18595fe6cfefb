"""Group targets: a per-tonne KPI whose numerator and production come from different devices of a
group the plant declares (a steel works' water meter over its furnaces' steel, not its sinter),
hand-computed here; closed when every member has passed the month, whole only when every member
was heard before it began; and the group section's validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.alerts.kpi.engine import KpiEngine
from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.alerts.service import build_rules
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.config.problems import ConfigError
from plantwatch.config.targets import resolve_targets
from tests.alert_helpers import HOUR_NS, result
from tests.report_data import local_ns

NOV, DEC = local_ns(2026, 11, 1), local_ns(2026, 12, 1)
START, END = NOV - 24 * HOUR_NS, DEC + 6 * HOUR_NS  # the readings run from 31 October to 1 December
WATER_MAP = """model: water_meter
description: Works fresh-water meter
sector: steel
protocol: modbus
source: test map
registers:
  - {name: water_used, address: 0, type: uint32, unit: m3, role: water_counter, counter: {bits: 32}}
"""


def plant(folder: Path, groups: str = "works: {devices: [eaf-1, water-1, sinter-1]}") -> Plant:
    (folder / "water_meter.yaml").write_text(WATER_MAP, encoding="utf-8")
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁特钢}}
devices:
  - {{id: eaf-1, map: steel_eaf, url: "tcp://127.0.0.1:1"}}
  - {{id: water-1, map: water_meter.yaml, url: "tcp://127.0.0.1:1", unit: 2}}
  - {{id: sinter-1, map: sinter_machine, url: "tcp://127.0.0.1:1", unit: 3}}
event_time: {{max_skew: 3650d}}
groups: {{{groups}}}
""",
        encoding="utf-8",
    )
    return load_plant_config(config)


def readings(start: int, end: int, every: int = 6 * HOUR_NS) -> list[int]:
    return list(range(start, end + 1, every))


def feed(engine: KpiEngine, end: int, *, water_from: int = 0, resume_at: int = 0) -> list[KpiValue]:
    """Every 6 h from 31 October: steel +100 t (+140 t on 15 November), water +350 m³, sinter +500
    t; the water meter only from `water_from`; only readings from `resume_at` are fed (a restart:
    the counters run on meanwhile)."""
    out: list[KpiValue] = []
    steel = water = sinter = 0.0
    for ts in readings(START, end):
        steel += 140.0 if local_ns(2026, 11, 15) <= ts < local_ns(2026, 11, 16) else 100.0
        water += 350.0
        sinter += 500.0
        if ts < resume_at:
            continue
        out += engine.update(result("eaf-1", ts, steel_produced=steel, active_energy=ts / 1e12), ts)
        if ts >= water_from:
            out += engine.update(result("water-1", ts, water_used=water), ts)
        out += engine.update(result("sinter-1", ts, sinter_produced=sinter), ts)
    return out


def november(values: list[KpiValue]) -> list[KpiValue]:
    return [v for v in values if v.device == "works" and v.rule == "steel-fresh-water" and v.kind == "closed"]


def test_water_per_tonne_of_steel_over_the_group(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    targets = resolve_targets(configured.config.alerts, "plant.yaml")
    engine = KpiEngine(configured, targets)
    values = feed(engine, END)
    [closed] = november(values)
    # by hand: the increments of readings stamped in November (00:00 on the 1st to 18:00 on the 30th)
    stamps = [ts for ts in readings(START, END) if NOV <= ts < DEC]
    steel = sum(140.0 if local_ns(2026, 11, 15) <= ts < local_ns(2026, 11, 16) else 100.0 for ts in stamps)
    water = 350.0 * len(stamps)
    assert (closed.numerator, closed.denominator) == pytest.approx((water, steel))  # not the sinter
    assert closed.value == pytest.approx(water / steel)  # 3.47 m³/t: within 4
    assert (closed.start_ns, closed.ts_ns) == (NOV, DEC)
    rules = build_rules(configured, engine, targets)
    assert rules[("works", "steel-fresh-water")].audience == "regulator"
    assert ("eaf-1", "steel-fresh-water") not in rules  # a group target never watches one device


def test_no_month_value_when_a_member_joined_midway(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    engine = KpiEngine(configured, resolve_targets(configured.config.alerts, "plant.yaml"))
    values = feed(engine, END, water_from=local_ns(2026, 11, 3))
    assert november(values) == []
    assert any(v.device == "works" and v.kind == "to-date" for v in values)


def test_a_restart_keeps_the_groups_month(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    targets = resolve_targets(configured.config.alerts, "plant.yaml")
    restart = local_ns(2026, 11, 10)
    first = KpiEngine(configured, targets)
    feed(first, restart)
    second = KpiEngine(configured, targets)
    second.restore(first.changed_state(), restart)
    [closed] = november(feed(second, END, resume_at=restart + 6 * HOUR_NS))
    [whole] = november(feed(KpiEngine(configured, targets), END))  # the same month without a restart
    assert (closed.numerator, closed.denominator) == pytest.approx((whole.numerator, whole.denominator))


def test_groups_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        plant(tmp_path, groups="eaf-1: {devices: [eaf-1, water-9]}")
    said = "\n".join(str(p) for p in caught.value.problems)
    assert "groups.eaf-1: a group id must differ from every device id" in said
    assert "groups.eaf-1.devices: no device 'water-9'" in said


def test_dust_per_tonne_of_steel_integrates_the_stacks_mass_over_valid_samples(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 西宁特钢}
devices:
  - {id: eaf-1, map: steel_eaf, url: "tcp://127.0.0.1:1"}
  - {id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:1", unit: 4, interval: 1h}
event_time: {max_skew: 3650d}
groups: {works: {devices: [eaf-1, stack-1]}}
""",
        encoding="utf-8",
    )
    configured = load_plant_config(config)
    engine = KpiEngine(configured, resolve_targets(configured.config.alerts, "plant.yaml"))
    values = feed_steel_only(engine)
    gap = range(local_ns(2026, 11, 20, 1), local_ns(2026, 11, 20, 9), HOUR_NS)  # 8 hours without data
    maintenance = range(local_ns(2026, 11, 10), local_ns(2026, 11, 10, 6), HOUR_NS)  # flag M, 6 hours
    for ts in range(START, END + 1, HOUR_NS):
        if ts in gap:
            continue
        flag = "M" if ts in maintenance else "N"
        values += engine.update(
            result("stack-1", ts, dust=20.0, so2=50.0, flue_flow=360000.0, data_flag=flag), ts
        )
    [dust] = [
        v for v in values if v.device == "works" and v.rule == "steel-dust-per-tonne" and v.kind == "closed"
    ]
    # by hand: 712 November samples, of which 6 flagged, the first after them and the first after the
    # gap credit nothing; the other 704 credit an hour each: 20 mg/m³ x 360,000 m³/h x 1 h = 7.2 kg
    assert dust.numerator == pytest.approx(704 * 7.2)
    steel = sum(
        140.0 if local_ns(2026, 11, 15) <= ts < local_ns(2026, 11, 16) else 100.0
        for ts in readings(START, END)
        if NOV <= ts < DEC
    )
    assert dust.denominator == pytest.approx(steel)
    assert dust.value == pytest.approx(704 * 7.2 / steel)  # 0.42 kg/t: within 1.19
    [so2] = [
        v for v in values if v.device == "works" and v.rule == "steel-so2-per-tonne" and v.kind == "closed"
    ]
    assert so2.numerator == pytest.approx(704 * 18.0)  # 50 mg/m³: 18 kg an hour


def feed_steel_only(engine: KpiEngine) -> list[KpiValue]:
    out: list[KpiValue] = []
    steel = 0.0
    for ts in readings(START, END):
        steel += 140.0 if local_ns(2026, 11, 15) <= ts < local_ns(2026, 11, 16) else 100.0
        out += engine.update(result("eaf-1", ts, steel_produced=steel, active_energy=ts / 1e12), ts)
    return out


def test_a_restart_after_only_one_member_changed_keeps_the_newest_group_state(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    targets = resolve_targets(configured.config.alerts, "plant.yaml")
    first = KpiEngine(configured, targets)
    feed(first, local_ns(2026, 11, 10))
    saved = first.changed_state()  # every member and the group
    steel = 100.0 * len(readings(START, local_ns(2026, 11, 10)))
    ts = local_ns(2026, 11, 10, 6)
    first.update(result("eaf-1", ts, steel_produced=steel + 100.0, active_energy=ts / 1e12), ts)
    saved |= first.changed_state()  # only eaf-1 changed: the store keeps the others' older rows
    second = KpiEngine(configured, targets)
    second.restore(saved, ts)
    [closed] = november(feed(second, END, resume_at=local_ns(2026, 11, 10, 6) + 1, water_from=0))
    [whole] = november(feed(KpiEngine(configured, targets), END))
    assert closed.denominator == pytest.approx(whole.denominator)  # eaf-1's 10 Nov 06:00 tonnes kept


def test_a_member_dead_all_month_gives_no_data_not_zero(tmp_path: Path) -> None:
    configured = plant(tmp_path)
    engine = KpiEngine(configured, resolve_targets(configured.config.alerts, "plant.yaml"))
    values = feed(engine, END, water_from=END + 1)  # the water meter is read only ...
    values += engine.update(result("water-1", START, water_used=1.0), START)  # ... but once, on 31 Oct
    values += engine.tick(DEC + 30 * 24 * HOUR_NS)  # silent since: its watermark follows the clock
    [closed] = november(values)
    assert closed.value is None and closed.numerator == 0.0  # no data: regulators never see 0 m³/t


def test_slag_utilisation_is_the_share_of_slag_put_to_use(tmp_path: Path) -> None:
    for model, field, role in (
        ("slag_yard", "slag_made", "slag_produced_counter"),
        ("slag_plant", "slag_used", "slag_used_counter"),
    ):
        (tmp_path / f"{model}.yaml").write_text(
            f"model: {model}\ndescription: test\nsector: steel\nprotocol: modbus\nsource: test map\n"
            f"registers:\n  - {{name: {field}, address: 0, type: uint32, unit: t, role: {role},"
            " counter: {bits: 32}}\n",
            encoding="utf-8",
        )
    config = tmp_path / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 西宁特钢}
devices:
  - {id: yard-1, map: slag_yard.yaml, url: "tcp://127.0.0.1:1"}
  - {id: mill-1, map: slag_plant.yaml, url: "tcp://127.0.0.1:1", unit: 2}
event_time: {max_skew: 3650d}
groups: {works: {devices: [yard-1, mill-1]}}
""",
        encoding="utf-8",
    )
    configured = load_plant_config(config)
    targets = resolve_targets(configured.config.alerts, "plant.yaml")
    engine = KpiEngine(configured, targets)
    made = used = 0.0
    values: list[KpiValue] = []
    for ts in readings(START, END):
        made += 10.0
        used += 9.5  # 95 %: below 97
        values += engine.update(result("yard-1", ts, slag_made=made), ts)
        values += engine.update(result("mill-1", ts, slag_used=used), ts)
    [closed] = [v for v in values if v.rule == "steel-slag-utilisation" and v.kind == "closed"]
    assert closed.value == pytest.approx(95.0) and closed.start_ns == NOV
    assert closed.denominator == pytest.approx(
        10.0 * len([t for t in readings(START, END) if NOV <= t < DEC])
    )
    assert build_rules(configured, engine, targets)[("works", "steel-slag-utilisation")].limit == 97


def test_a_cems_logger_with_minute_means_polled_every_second_integrates_each_minute(
    tmp_path: Path,
) -> None:
    """A logger whose registers hold minute means stamped by its own clock: read every second, its
    readings repeat a stamp for a minute, then step 60 s. Each step is a minute of mass, not a gap
    (the gap rule is 5 intervals, here 5 s, but never less than GAP_FLOOR_S)."""
    config = tmp_path / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 西宁特钢}
devices:
  - {id: eaf-1, map: steel_eaf, url: "tcp://127.0.0.1:1"}
  - {id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:1", unit: 4, interval: 1s}
event_time: {max_skew: 3650d}
groups: {works: {devices: [eaf-1, stack-1]}}
""",
        encoding="utf-8",
    )
    configured = load_plant_config(config)
    engine = KpiEngine(configured, resolve_targets(configured.config.alerts, "plant.yaml"))
    for ts, steel in ((START, 0.0), (NOV + HOUR_NS, 100.0)):
        engine.update(result("eaf-1", ts, steel_produced=steel, active_energy=ts / 1e12), ts)
    values: list[KpiValue] = []
    minute = 60 * 10**9
    for second in range(10 * 60):  # ten minutes read every second: ten stamps, 60 readings each
        ts = NOV + 2 * HOUR_NS + second // 60 * minute
        values += engine.update(
            result("stack-1", ts, dust=20.0, so2=50.0, flue_flow=360000.0, data_flag="N"), ts
        )
    values += engine.tick(NOV + 3 * HOUR_NS)  # the logger falls silent: its last minutes are let through
    latest = [v for v in values if v.rule == "steel-dust-per-tonne" and v.kind == "to-date"][-1]
    # by hand: the first stamp credits nothing, each of the 9 steps a minute of
    # 20 mg/m³ x 360,000 m³/h / 60 = 0.12 kg
    assert latest.numerator == pytest.approx(9 * 0.12)
    assert latest.value == pytest.approx(9 * 0.12 / 100.0)


def test_a_member_meter_in_the_wrong_unit_is_named_and_the_group_target_not_computed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plant(tmp_path)
    (tmp_path / "water_meter.yaml").write_text(WATER_MAP.replace("unit: m3", "unit: t"), encoding="utf-8")
    configured = load_plant_config(tmp_path / "plant.yaml")  # the water meter now counts tonnes
    with caplog.at_level("WARNING"):
        engine = KpiEngine(configured, resolve_targets(configured.config.alerts, "plant.yaml"))
    said = [r.getMessage() for r in caplog.records]
    assert "KPI steel-fresh-water for group works not computed: water_used: t is not in m3" in said
    assert not any(g.rule == "steel-fresh-water" for g in engine.together.values())
