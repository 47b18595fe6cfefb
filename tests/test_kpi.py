"""KPIs with hand-computed numbers: per-tap, rolling and calendar per-tonne, pot line, dust."""

from __future__ import annotations

from dataclasses import replace

import pytest

from plantwatch.alerts.kpi.counters import CounterTracker
from plantwatch.alerts.kpi.dust import DustHourly, o2_corrected
from plantwatch.alerts.kpi.per_tonne import CounterField, PerTonne
from plantwatch.alerts.kpi.potline import dc_kwh_per_tonne
from plantwatch.alerts.kpi.standard_coal import UnitError, in_kgce
from tests.alert_helpers import HOUR_NS, MINUTE_NS, T0, result, target


def test_counter_rollover_reset_and_first_reading() -> None:
    counter = CounterTracker(wrap=65536.0)
    assert counter.step(65530) is None  # no increment from a first reading
    assert counter.step(4) == 10  # 65530 -> 65535 -> 0 -> 4: a rollover
    assert counter.step(5000) == 4996
    assert counter.step(20) == 20  # a drop far from a wrap: a reset, the new meter counted 20
    assert (counter.rollovers, counter.resets) == (1, 1)
    unknown_width = CounterTracker()
    unknown_width.step(100.0)
    assert unknown_width.step(3.0) == 3.0  # never negative energy


def saf(tap_target: str = "ferroalloy-fesi-unit-power") -> PerTonne:
    return PerTonne(
        "saf-1",
        target(tap_target),
        [CounterField("energy", "kWh", "energy_counter", 2.0**32)],
        None,
        "taps",
        CounterField("weight", "t", "tap_weight", None),
    )


def test_per_tap_energy_over_the_tap_weight() -> None:
    kpi = saf()
    assert kpi.update(result("saf-1", T0, energy=1000, taps=1, weight=7)) == []
    assert kpi.update(result("saf-1", T0 + HOUR_NS, energy=5000, taps=2, weight=7)) == []  # first boundary
    assert kpi.update(result("saf-1", T0 + 2 * HOUR_NS, energy=40000, taps=2, weight=7)) == []
    [tap] = kpi.update(result("saf-1", T0 + 3 * HOUR_NS, energy=63400, taps=3, weight=7.5))
    assert tap.value == pytest.approx(58400 / 7.5)  # 7786.67 kWh/t: inside 7800
    assert (tap.start_ns, tap.ts_ns, tap.kind) == (T0 + HOUR_NS, T0 + 3 * HOUR_NS, "closed")
    assert (tap.numerator, tap.denominator) == (58400, 7.5)
    # the meter is replaced mid-tap: 63400 -> 100 counts 100, not -63300
    assert kpi.update(result("saf-1", T0 + 4 * HOUR_NS, energy=100, taps=3, weight=7.5)) == []
    [tap] = kpi.update(result("saf-1", T0 + 5 * HOUR_NS, energy=60100, taps=4, weight=7.5))
    assert tap.value == pytest.approx(60100 / 7.5)  # 8013.33 kWh/t: a breach of 7800


def test_a_gap_is_no_data_and_a_bad_tap_weight_gives_no_value() -> None:
    kpi = saf()
    kpi.update(result("saf-1", T0, energy=0, taps=1, weight=7))
    kpi.update(result("saf-1", T0 + HOUR_NS, energy=1000, taps=2, weight=7))
    # energy unreadable for two hours (timeouts), then read again: the counter covers the gap
    kpi.update(result("saf-1", T0 + 2 * HOUR_NS, {"energy": "timeout"}, energy=0, taps=2, weight=7))
    [tap] = kpi.update(result("saf-1", T0 + 3 * HOUR_NS, energy=57000, taps=3, weight=0))
    assert tap.value is None  # zero production: no value, not infinity
    assert tap.numerator == 56000


def test_energy_counter_rollover_inside_a_tap() -> None:
    kpi = saf()
    top = 2.0**32
    kpi.update(result("saf-1", T0, energy=top - 30000, taps=1, weight=7))
    kpi.update(result("saf-1", T0 + HOUR_NS, energy=top - 20000, taps=2, weight=7))
    [tap] = kpi.update(result("saf-1", T0 + 2 * HOUR_NS, energy=40000, taps=3, weight=8))
    assert tap.value == pytest.approx(60000 / 8)  # 20000 to the top, 40000 after it


def test_aluminium_rolling_24h_dc_energy_per_tonne() -> None:
    kpi = PerTonne(
        "pot-1",
        target("aluminium-dc-power"),
        [CounterField("dc", "MWh", "dc_energy_counter", None)],
        CounterField("metal", "t", "production_counter", 2.0**32),
    )
    values = []
    for hour in range(26):  # 67 MWh and 5 t an hour
        values += kpi.update(result("pot-1", T0 + hour * HOUR_NS, dc=1000 + 67 * hour, metal=100 + 5 * hour))
    assert [v.value for v in values] == [pytest.approx(13400.0)] * 2  # only once 24 h are covered
    assert values[0].kind == "rolling" and values[0].ts_ns - values[0].start_ns == 24 * HOUR_NS


def test_pot_line_live_formula() -> None:
    assert dc_kwh_per_tonne(3.95, 93) == pytest.approx(2980 * 3.95 / 0.93)  # 12656.99 kWh/t
    assert dc_kwh_per_tonne(3.95, 0.93) == pytest.approx(12656.99, abs=0.01)
    assert dc_kwh_per_tonne(4.0, 0) is None


def test_cement_clinker_kgce_per_tonne_by_shanghai_day() -> None:
    kpi = PerTonne(
        "kiln-1",
        target("cement-clinker-energy"),
        [
            CounterField("coal", "t", "coal_counter", None, "raw_coal"),
            CounterField("kwh", "kWh", "energy_counter", None, "electricity"),
        ],
        CounterField("clinker", "t", "clinker_counter", None),
    )
    closed = []
    for hour in range(49):  # two local days, hourly: 41.6667 t coal, 10 MWh, 276.667 t clinker an hour
        out = kpi.update(
            result(
                "kiln-1",
                T0 + hour * HOUR_NS,
                coal=1000 * hour / 24,
                kwh=10000 * hour,
                clinker=6640 * hour / 24,
            )
        )
        closed += [v for v in out if v.kind == "closed"]
    # day 1 began before the first reading (not closed); day 2 is whole:
    # (1000 t x 714.3 + 240000 kWh x 0.1229) / 6640 t = (714300 + 29496) / 6640 = 112.02 kgce/t
    [day] = closed
    assert day.value == pytest.approx((714300 + 29496) / 6640)
    assert day.start_ns == T0 + 24 * HOUR_NS and day.ts_ns == T0 + 48 * HOUR_NS


def test_standard_coal_units() -> None:
    assert in_kgce(1000, "MWh", "electricity") == pytest.approx(122.9 * 1000)
    assert in_kgce(2000, "kg", "coke") == pytest.approx(2 * 971.4)
    with pytest.raises(UnitError, match="natural_gas is counted in m3, the meter says kWh"):
        in_kgce(1, "kWh", "natural_gas")
    with pytest.raises(UnitError, match="carrier 'peat'"):
        in_kgce(1, "t", "peat")


def cems(o2_reference: float | None = None) -> DustHourly:
    return DustHourly("stack-1", target("ferroalloy-dust"), "dust", "o2", "flag", o2_reference)


def feed(kpi: DustHourly, minute: int, dust: float, flag: str = "N", o2: float = 11.0) -> list:
    out = []
    for second in range(0, 60, 10):
        out += kpi.update(
            result("stack-1", T0 + minute * MINUTE_NS + second * 10**9, dust=dust, flag=flag, o2=o2)
        )
    return out


def test_hourly_average_is_valid_with_45_minutes_and_flags_are_excluded() -> None:
    kpi = cems()
    out = []
    for minute in range(60):  # hour 1: 50 normal minutes at 40 + minute % 3, 10 maintenance minutes at 500
        out += feed(kpi, minute, 500 if minute >= 50 else 40 + minute % 3, "M" if minute >= 50 else "N")
    for minute in range(60, 120):  # hour 2: only 44 normal minutes
        out += feed(kpi, minute, 60, "N" if minute < 104 else "C")
    out += feed(kpi, 120, 30)
    hours = [v for v in out if v.kind == "closed"]
    assert [h.value for h in hours] == [pytest.approx(sum(40 + m % 3 for m in range(50)) / 50), None]
    assert [h.numerator for h in hours] == [50, 44]  # valid minutes
    assert hours[0].start_ns == T0 and hours[0].ts_ns == T0 + HOUR_NS


def test_o2_correction_to_the_reference() -> None:
    assert o2_corrected(30, 13, 11) == pytest.approx(30 * 10 / 8)  # 37.5 mg/m3
    assert o2_corrected(30, 21, 11) is None
    kpi = cems(o2_reference=11)
    out = []
    for minute in range(61):
        out += feed(kpi, minute, 30, o2=13)
    [hour] = [v for v in out if v.kind == "closed"]
    assert hour.value == pytest.approx(37.5)


def test_early_warning_follows_15_valid_minutes_past_80_percent() -> None:
    kpi = cems()
    out = []
    for minute in range(20):
        out += feed(kpi, minute, 30 if minute < 5 else 42)
    early = [v for v in out if v.kind == "early"]
    assert early[0].rule == "ferroalloy-dust:early"
    # first value once ten minutes are closed: minutes 0-4 at 30 and 5-9 at 42
    assert early[0].value == pytest.approx((5 * 30 + 5 * 42) / 10)
    assert (early[0].start_ns, early[0].ts_ns) == (T0 - 5 * MINUTE_NS, T0 + 10 * MINUTE_NS)
    # minute 19 is still open: the last window is minutes 4-18, one at 30 and fourteen at 42
    assert early[-1].value == pytest.approx((30 + 14 * 42) / 15)  # 41.2: past 0.8 x 50
    assert len(early) == 10  # minutes 9..18 closed with at least ten valid minutes behind them


def test_a_unit_the_kpi_cannot_convert_is_named_when_the_calculator_is_built() -> None:
    with pytest.raises(UnitError, match=r"^energy: unit 'kVAh' is not one of"):
        PerTonne(
            "saf-1",
            target("ferroalloy-fesi-unit-power"),
            [CounterField("energy", "kVAh", "e", None)],
            None,
            "taps",
            CounterField("weight", "t", "tap_weight", None),
        )
    with pytest.raises(UnitError, match=r"^weight: m3 is not a mass unit"):
        PerTonne(
            "saf-1",
            target("ferroalloy-fesi-unit-power"),
            [CounterField("energy", "kWh", "e", None)],
            None,
            "taps",
            CounterField("weight", "m3", "tap_weight", None),
        )


def test_a_rolling_value_starts_where_its_minute_buckets_do() -> None:
    """Rolling windows are kept in one-minute buckets: a value covers from its first bucket, a
    little under the window, and says so (never ts - window, which it does not cover)."""
    kpi = PerTonne(
        "pot-1",
        replace(target("aluminium-dc-power"), window="2m"),
        [CounterField("dc", "MWh", "dc_energy_counter", None)],
        CounterField("metal", "t", "production_counter", None),
    )
    values = []
    for n in range(10):  # every 20 s from 10 s past T0's minute: +1 MWh and +0.1 t each
        values += kpi.update(result("pot-1", T0 + 10 * 10**9 + n * 20 * 10**9, dc=100 + n, metal=10 + n / 10))
    last = values[-1]  # at T0 + 190 s: the buckets of minutes 2 and 3 (from T0 + 120 s) are kept
    assert (last.start_ns, last.ts_ns) == (T0 + 2 * MINUTE_NS, T0 + 190 * 10**9)
    assert last.numerator == pytest.approx(4000.0)  # the readings at 130, 150, 170 and 190 s
    assert last.value == pytest.approx(4000.0 / 0.4)
