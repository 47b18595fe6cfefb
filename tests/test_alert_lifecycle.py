"""Alert lifecycle: pending, firing, hysteresis, reminders; properties over random value streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwatch.alerts.kpi.value import KpiValue
from plantwatch.alerts.lifecycle import STALE, Alert, Rule, evaluate, evaluate_stale
from tests.alert_helpers import HOUR_NS, T0, target

MARGIN = 0.02


FESI = target("ferroalloy-fesi-unit-power")  # read once: the property tests build rules by the hundred


def rule(for_s: float = 0, repeat_s: float = 4 * 3600) -> Rule:
    return Rule(FESI.id, FESI, 7800.0, "warning", int(for_s * 1e9), int(repeat_s * 1e9), MARGIN)


def kpi(value: float | None, hour: int, kind: str = "closed") -> KpiValue:
    ts = T0 + hour * HOUR_NS
    return KpiValue(
        "saf-1", "ferroalloy-fesi-unit-power", "ferroalloy-fesi-unit-power", value, ts, ts - HOUR_NS, kind
    )


def run(values: list[float | None], r: Rule) -> tuple[Alert, list[str]]:
    alert, events = Alert("saf-1", r.id), []
    for hour, value in enumerate(values):
        alert, transition = evaluate(alert, r, kpi(value, hour))
        if transition:
            events.append(transition.event)
    return alert, events


def test_breach_fires_at_once_with_for_zero_and_resolves_inside_the_margin() -> None:
    alert, events = run([7700, 8013.3, 7790, 7650, 7900], rule())
    # 7790 is inside the target but not by 2 % (7644): still firing; 7650 is not below 7644 either
    assert events == ["firing"] and alert.state == "firing"
    alert, events = run([7700, 8013.3, 7600, 7900], rule())
    assert events == ["firing", "resolved", "firing"]
    assert alert.value == 7900 and alert.limit == 7800


def test_for_waits_before_firing_and_a_recovery_cancels_pending() -> None:
    alert, events = run([8000, 8000], rule(for_s=2 * 3600))
    assert (alert.state, events) == ("pending", [])
    alert, events = run([8000, 8000, 8000], rule(for_s=2 * 3600))
    assert (alert.state, events, alert.since_ns) == ("firing", ["firing"], T0)
    alert, events = run([8000, 7000, 8000, 8000], rule(for_s=2 * 3600))
    assert (alert.state, events) == ("pending", [])


def test_no_data_and_to_date_values_change_nothing() -> None:
    alert, events = run([8000, None, None], rule())
    assert alert.state == "firing" and events == ["firing"]
    firing = alert
    alert, transition = evaluate(firing, rule(), kpi(100, 5, kind="to-date"))
    assert alert == firing and transition is None


def test_reminders_while_firing_at_the_repeat_interval() -> None:
    _, events = run([8000] * 10, rule(repeat_s=4 * 3600))
    assert events == ["firing", "repeat", "repeat"]  # hours 0, 4, 8


def test_stale_meter_is_its_own_alert() -> None:
    r = Rule(STALE, None, None, "warning", 0, 4 * 3600 * 10**9, 0.0)
    alert = Alert("saf-1", STALE)
    alert, t = evaluate_stale(alert, r, last_good_ns=T0, now_ns=T0 + 4 * 10**9, stale_ns=5 * 10**9)
    assert t is None
    alert, t = evaluate_stale(alert, r, last_good_ns=T0, now_ns=T0 + 5 * 10**9, stale_ns=5 * 10**9)
    assert t is not None and t.event == "firing" and alert.since_ns == T0
    alert, t = evaluate_stale(
        alert, r, last_good_ns=T0 + 9 * 10**9, now_ns=T0 + 9 * 10**9, stale_ns=5 * 10**9
    )
    assert t is not None and t.event == "resolved" and alert.state == "normal"


values = st.lists(st.one_of(st.none(), st.floats(7500, 8100)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(values)
def test_property_no_flapping(stream: list[float | None]) -> None:
    """Events alternate firing/resolved (reminders only in between); a resolve needs a value inside
    the margin; a fire needs a value over the target; the final state matches the last event."""
    r = rule()
    alert, state = Alert("saf-1", r.id), "normal"
    last_fire_or_resolve = None
    for hour, value in enumerate(stream):
        alert, transition = evaluate(alert, r, kpi(value, hour))
        if transition is None:
            continue
        assert value is not None
        if transition.event == "firing":
            assert last_fire_or_resolve in (None, "resolved") and value > 7800
            last_fire_or_resolve, state = "firing", "firing"
        elif transition.event == "resolved":
            assert last_fire_or_resolve == "firing" and value <= 7800 * (1 - MARGIN)
            last_fire_or_resolve, state = "resolved", "normal"
        else:
            assert state == "firing"
    assert alert.state in ("normal", "pending", state) and (alert.state == "firing") == (state == "firing")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(7800 * (1 - MARGIN) + 0.01, 7800 + 20), min_size=2, max_size=50))
def test_property_hovering_at_the_target_fires_once_at_most(stream: list[float]) -> None:
    _, events = run(stream, rule(repeat_s=10**6))
    assert events.count("firing") <= 1 and "resolved" not in events


def test_early_warning_wording_in_both_languages() -> None:
    from zoneinfo import ZoneInfo

    from plantwatch.alerts.notifiers.message import body, subject

    dust = target("ferroalloy-dust")
    early = Rule("ferroalloy-dust:early", dust, 40.0, "warning", 0, 10**12, MARGIN)
    value = KpiValue("stack-1", dust.id, early.id, 41.2, T0, T0 - 15 * 60 * 10**9, "early")
    alert, transition = evaluate(Alert("stack-1", early.id), early, value)
    assert transition is not None and alert.state == "firing"
    assert subject(transition, "works", "en") == (
        "[EARLY WARNING] works stack-1: flue dust concentration, rolling 15-minute average"
        " 41.2 mg/m³ (early-warning line ≤ 40.0 mg/m³)"
    )
    assert subject(transition, "works", "zh") == (
        "【预警】 works stack-1：粉尘排放浓度滚动15分钟均值 41.2 mg/m³（预警线 ≤ 40.0 mg/m³）"
    )
    en = body(transition, "works", "Works", "en", ZoneInfo("UTC"), None)
    assert "Early-warning line: 40.0 mg/m³ (80% of the 50.0 mg/m³ limit)" in en
    assert "hourly" not in en and "1h" not in en  # it is not an hourly average
    zh = body(transition, "works", "某厂", "zh", ZoneInfo("Asia/Shanghai"), None)
    assert "预警线：40.0 mg/m³（限值 50.0 mg/m³ 的 80%）" in zh
    assert "统计窗口：滚动15分钟均值，" in zh and "小时" not in zh
