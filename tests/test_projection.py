"""The month-end projection: while a month is open, where it closes if the last 7 days' energy and
production rates hold (hand-computed from the taps here), and a warning to plant staff when the
projection crosses the target while the month to date is still within it."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from plantwatch.alerts.kpi.projection import MonthRate
from plantwatch.alerts.service import AlertService
from plantwatch.alerts.setup import build_alert_service
from plantwatch.config.plant import load_plant_config
from tests.alert_helpers import HOUR_NS, plain_text, result
from tests.report_data import local_ns
from tests.test_group_kpi import WATER_MAP
from tests.test_waste_heat import kiln_engine

RULE = "ferroalloy-fesi-unit-power:month"
DAY_NS = 24 * HOUR_NS
NOV = local_ns(2026, 11, 1)
DEC = local_ns(2026, 12, 1)


def taps_of_november(per_tonne: dict[int, float]) -> list[tuple[int, float, float]]:
    """Three 8 t taps a day (02:00, 10:00, 18:00) from 1 to 12 November at each day's kWh/t, after
    two on 31 October (so November is watched from its start)."""
    october = [(NOV - 6 * HOUR_NS, 7600.0 * 8, 8.0), (NOV - 2 * HOUR_NS, 7600.0 * 8, 8.0)]
    return october + [
        (NOV + (day - 1) * DAY_NS + hour * HOUR_NS, per_tonne.get(day, 7600.0) * 8, 8.0)
        for day in range(1, 13)
        for hour in (2, 10, 18)
    ]


def projected(taps: list[tuple[int, float, float]]) -> float:
    """By hand: November to date, plus the last 7 days' energy and weight per ns, times what is
    left of the month."""
    valued = [t for t in taps if t[0] >= NOV]
    last = valued[-1][0]
    energy, weight = sum(e for _, e, _ in valued), sum(w for _, _, w in valued)
    recent = [(e, w) for ts, e, w in valued if ts >= last - 7 * DAY_NS]
    week = 7 * DAY_NS
    left = DEC - last
    rate_e, rate_w = sum(e for e, _ in recent) / week, sum(w for _, w in recent) / week
    return (energy + rate_e * left) / (weight + rate_w * left)


def test_the_projection_warns_before_the_month_is_lost(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 西宁铁合金厂}
devices:
  - {id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}
event_time: {max_skew: 3650d}
alerts:
  recipients: [{name: 能源管理部, email: energy@works.example, lang: zh, role: plant}]
  digest_at: null
""",
        encoding="utf-8",
    )
    now = [NOV]
    service = build_alert_service(load_plant_config(config), clock=lambda: now[0])
    taps = taps_of_november({11: 8600.0, 12: 8600.0})  # ten good days, then two heavy ones
    energy = 0.0
    for count, (ts, tap_energy, weight) in enumerate(taps, start=1):
        energy += tap_energy
        now[0] = ts
        service.handle(result("saf-1", ts, active_energy=energy, tap_counter=count, tap_weight=weight))
    to_date = service.latest[("saf-1", RULE)]
    projection = service.latest[("saf-1", f"{RULE}:projection")]
    november = [t for t in taps if t[0] >= NOV]
    assert to_date.value == pytest.approx(sum(e for _, e, _ in november) / sum(w for _, _, w in november))
    assert to_date.value < 7800  # the month to date is still within the target ...
    assert projection.value == pytest.approx(projected(taps))  # ... but at this rate it closes over it
    assert projection.value > 7800
    fired = [t for t in service.transitions if t.alert.rule == f"{RULE}:projection" and t.event == "firing"]
    assert len(fired) == 1 and fired[0].rule.audience == "plant"
    mails = service.store.notifications(notifier="email")
    [mail] = [m for m in mails if m.rule == f"{RULE}:projection"]
    text = plain_text(BytesParser(policy=policy.default).parsebytes(mail.payload))
    assert "统计窗口：月末预测（按近7天速率）" in text
    service.close()


def tapped(folder: Path, taps: list[tuple[int, float, float]]) -> AlertService:
    """A plant's alert service after a furnace gave `taps`."""
    config = folder / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: Works}
devices:
  - {id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}
event_time: {max_skew: 3650d}
alerts: {digest_at: null}
""",
        encoding="utf-8",
    )
    now = [NOV]
    service = build_alert_service(load_plant_config(config), clock=lambda: now[0])
    energy = 0.0
    for count, (ts, tap_energy, weight) in enumerate(taps, start=1):
        energy += tap_energy
        now[0] = ts
        service.handle(result("saf-1", ts, active_energy=energy, tap_counter=count, tap_weight=weight))
    return service


@pytest.mark.parametrize(
    "taps",
    [
        pytest.param(taps_of_november({})[:10], id="the first three days"),  # to 3 Nov 10:00
        pytest.param(taps_of_november({})[2:], id="a month joined midway"),  # from 1 Nov only
    ],
)
def test_no_projection(tmp_path: Path, taps: list[tuple[int, float, float]]) -> None:
    service = tapped(tmp_path, taps)
    assert ("saf-1", RULE) in service.latest and ("saf-1", f"{RULE}:projection") not in service.latest
    service.close()


def month_end(
    recent_from: int, last: int, totals: tuple[float, float], steps: list[tuple[int, float, float]]
) -> float:
    """By hand: the month so far plus the last 7 days' increments per ns (`steps` from
    `recent_from` on) times what is left of the month, as numerator ÷ denominator."""
    recent = [(n, d) for ts, n, d in steps if ts >= recent_from]
    week, left = 7 * DAY_NS, DEC - last
    rate_n, rate_d = sum(n for n, _ in recent) / week, sum(d for _, d in recent) / week
    return (totals[0] + rate_n * left) / (totals[1] + rate_d * left)


def test_a_groups_month_is_projected_too(tmp_path: Path) -> None:
    """A steel works' water per tonne (the water meter's m³ over the furnace's steel): within 4 m³/t
    to date, over it at the rate of its last days."""
    (tmp_path / "water_meter.yaml").write_text(WATER_MAP, encoding="utf-8")
    config = tmp_path / "plant.yaml"
    config.write_text(
        """
plant: {id: works, name: 西宁特钢}
devices:
  - {id: eaf-1, map: steel_eaf, url: "tcp://127.0.0.1:1"}
  - {id: water-1, map: water_meter.yaml, url: "tcp://127.0.0.1:1", unit: 2}
event_time: {max_skew: 3650d}
groups: {works: {devices: [eaf-1, water-1]}}
alerts: {digest_at: null}
""",
        encoding="utf-8",
    )
    now = [NOV]
    service = build_alert_service(load_plant_config(config), clock=lambda: now[0])
    steel = water = 0.0
    steps = []  # (ts, m³, t) of November's readings
    last = local_ns(2026, 11, 12, 18)
    for ts in range(NOV - DAY_NS, last + 1, 6 * HOUR_NS):  # every 6 h from 31 October
        more = 600.0 if ts >= local_ns(2026, 11, 10, 18) else 350.0  # 3.5 m³/t, then 6 m³/t
        steel, water, now[0] = steel + 100.0, water + more, ts
        service.handle(result("eaf-1", ts, steel_produced=steel, active_energy=ts / 1e12))
        service.handle(result("water-1", ts, water_used=water))
        if ts >= NOV:
            steps.append((ts, more, 100.0))
    rule = "steel-fresh-water"
    to_date = service.latest[("works", rule)]
    totals = (sum(s[1] for s in steps), sum(s[2] for s in steps))
    assert to_date.value == pytest.approx(totals[0] / totals[1]) and to_date.value < 4
    projection = service.latest[("works", f"{rule}:projection")]
    assert projection.value == pytest.approx(month_end(last - 7 * DAY_NS, last, totals, steps))
    assert projection.value > 4
    fired = [t for t in service.transitions if t.alert.rule == f"{rule}:projection" and t.event == "firing"]
    assert fired and all(t.rule.audience == "plant" for t in fired)
    assert service.alerts[("works", f"{rule}:projection")].state == "firing"
    service.close()


def test_waste_heat_coverage_is_projected_and_closes_at_its_value(tmp_path: Path) -> None:
    engine = kiln_engine(tmp_path)
    values = []
    steps = []  # (ts, covered h, running h) of November's readings
    last = local_ns(2026, 11, 10, 23)
    for ts in range(NOV - DAY_NS, last + 1, HOUR_NS):
        power = 0.0 if ts >= local_ns(2026, 11, 8) else 6500.0  # the generator stops on the 8th
        values += engine.update(result("kiln-1", ts, kiln_running=True, waste_heat_power=power), ts)
        if ts >= NOV:
            steps.append((ts, 1.0 if power > 0 else 0.0, 1.0))
    rule = "cement-waste-heat-coverage:projection"
    projection = [v for v in values if v.rule == rule][-1]
    totals = (sum(s[1] for s in steps), sum(s[2] for s in steps))
    # by hand: 168 of 240 running hours covered so far (70 %); in the last 7 days (from 3 November
    # 23:00) 97 of 169, the rate that runs on to the month's end
    assert projection.value == pytest.approx(month_end(last - 7 * DAY_NS, last, totals, steps) * 100)
    assert totals == (168.0, 240.0) and projection.value < 70
    values = engine.update(
        result("kiln-1", DEC + HOUR_NS, kiln_running=True, waste_heat_power=0.0), DEC + HOUR_NS
    )
    [closed] = [v for v in values if v.kind == "closed" and v.rule == "cement-waste-heat-coverage"]
    [final] = [v for v in values if v.rule == rule]
    assert final.value == closed.value and final.kind == "projection"


def test_no_projection_rule_for_a_target_without_a_month(tmp_path: Path) -> None:
    service = tapped(tmp_path, taps_of_november({})[:4])
    assert ("saf-1", f"{RULE}:projection") in service.rules  # the month it is judged over
    assert ("saf-1", "ferroalloy-fesi-unit-power:projection") not in service.rules  # per tap: none
    service.close()


def test_members_taking_turns_across_an_hour_keep_one_bucket_an_hour() -> None:
    """A group's members report in turns, one held back by its lateness: their increments come out
    of time order near each hour's end. The rate still keeps one bucket per hour, and projects
    what the same increments in time order do."""
    interleaved, ordered = MonthRate(), MonthRate()
    start, now = NOV, NOV + 3 * DAY_NS
    late = 120 * 10**9
    increments = []
    for ts in range(start + late, now, 60 * 10**9):  # a member every minute, the other 2 min behind
        increments += [(ts, 1.0, 0.0), (ts - late, 0.0, 0.25)]
    for ts, n, d in increments:
        interleaved.add(ts, n, d, start)
    for ts, n, d in sorted(increments):
        ordered.add(ts, n, d, start)
    assert len(interleaved.state()) == len(ordered.state()) == 72  # 3 days of hours
    totals = (sum(i[1] for i in increments), sum(i[2] for i in increments))
    assert interleaved.project(now, start, DEC, *totals) == pytest.approx(
        ordered.project(now, start, DEC, *totals)
    )
