"""What the report tests read: a month of KPI points as the alert service writes them (November
2026 closed, ten days of December open), the devices' raw data and alert transitions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from plantwatch.contract.influx import ALERT_MEASUREMENT, KPI_MEASUREMENT, fields_line
from tests.services.influxdb import InfluxDBServer

ZONE = ZoneInfo("Asia/Shanghai")
HOUR_NS = 3600 * 10**9
FESI = "ferroalloy-fesi-unit-power"
DUST = "ferroalloy-dust"
CJK = re.compile(r"[\u4e00-\u9fff]")


def local_ns(year: int, month_: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month_, day, hour, tzinfo=ZONE).timestamp()) * 10**9


@dataclass(frozen=True)
class Tap:
    end_ns: int
    energy: float  # kWh
    weight: float  # t


def taps(year: int, month_: int, days: range, per_tonne: dict[int, float], default: float) -> list[Tap]:
    """Two 10 t taps a day, at 06:00 and 18:00 local, at the day's kWh/t."""
    return [
        Tap(local_ns(year, month_, d, h), per_tonne.get(d, default) * 10, 10.0) for d in days for h in (6, 18)
    ]


def kpi_line(device: str, target: str, kind: str, end_ns: int, start_ns: int, **fields: float) -> str:
    tags = {"plant": "works", "device": device, "target": target, "kind": kind}
    values: list[tuple[str, object]] = [("valid", "value" in fields), ("window_start", start_ns)]
    values += [(k, float(v)) for k, v in fields.items()]
    return fields_line(KPI_MEASUREMENT, tags, values, end_ns)


def tap_lines(all_taps: list[Tap]) -> list[str]:
    return [
        kpi_line("saf-1", FESI, "closed", t.end_ns, t.end_ns - 2 * HOUR_NS, value=t.energy / t.weight,
                 numerator=t.energy, denominator=t.weight, limit=7800)
        for t in all_taps
    ]  # fmt: skip


NOVEMBER_DUST = {200: 55.0, 201: 60.5, 500: 51.0}  # breach hours (index from 1 Nov 00:00)
NOVEMBER_INVALID = range(100, 110)  # hours with fewer than 45 valid minutes


def november_dust() -> tuple[list[str], list[float]]:
    lines, valid = [], []
    start = local_ns(2026, 11, 1)
    for i in range(720):
        begin, end = start + i * HOUR_NS, start + (i + 1) * HOUR_NS
        if i in NOVEMBER_INVALID:
            lines.append(kpi_line("stack-1", DUST, "closed", end, begin, numerator=30, limit=50))
            continue
        value = NOVEMBER_DUST.get(i, 20.0 + i % 5)
        valid.append(value)
        lines.append(kpi_line("stack-1", DUST, "closed", end, begin, value=value, numerator=60, limit=50))
    return lines, valid


def device_lines() -> list[str]:
    """Raw data: saf-1 in the first 600 hours of November only; stack-1 every hour."""
    start = local_ns(2026, 11, 1)
    lines = [
        f"saf,plant=works,device=saf-1 active_energy={i}.0 {start + i * HOUR_NS + 60 * 10**9}"
        for i in range(600)
    ]
    lines += [
        f"cems,plant=works,device=stack-1 dust=20.0 {start + i * HOUR_NS + 60 * 10**9}" for i in range(720)
    ]
    return lines


def alert_lines() -> list[str]:
    def line(device: str, rule: str, severity: str, event: str, ts: int) -> str:
        tags = {"plant": "works", "device": device, "rule": rule, "severity": severity}
        return fields_line(
            ALERT_MEASUREMENT, tags, [("event", event), ("firing", int(event != "resolved"))], ts
        )

    return [
        line("saf-1", FESI, "warning", "firing", local_ns(2026, 11, 10, 6)),
        line("saf-1", FESI, "warning", "resolved", local_ns(2026, 11, 10, 8)),
        line("saf-1", FESI, "warning", "firing", local_ns(2026, 11, 11, 18)),
        line("stack-1", DUST, "critical", "firing", local_ns(2026, 11, 9, 9)),
        line("stack-1", DUST, "critical", "firing", local_ns(2026, 12, 1)),  # the hour ending at midnight
        line("stack-1", DUST, "critical", "firing", local_ns(2026, 12, 1, 9)),  # December: not counted
    ]


NOVEMBER_TAPS = taps(2026, 11, range(1, 31), {10: 8600, 11: 8600}, 7700)
DECEMBER_TAPS = taps(2026, 12, range(1, 11), {1: 8500, 2: 8500, 3: 8500}, 7700)


def fill(influxdb: InfluxDBServer, database: str) -> None:
    """A fresh `database` holding November and December's points."""
    influxdb.query(f'DROP DATABASE "{database}"')
    influxdb.create_database(database)
    dust, _ = november_dust()
    lines = tap_lines(NOVEMBER_TAPS + DECEMBER_TAPS) + dust + device_lines() + alert_lines()
    assert influxdb.write("\n".join(lines), database) == 204
