"""End to end: `plantwatch simulate` serves a stack CEMS (its clock runs at the simulation speed),
`plantwatch collect` polls it into a real InfluxDB and reports it over HJ 212 to the platform
stand-in. The hour packets are checked against the HJ 75 hour recomputed here from the raw
readings InfluxDB holds, not taken from plantwatch."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.services.hj212_platform import Platform
from tests.services.influxdb import InfluxDBServer
from tests.services.processes import free_port, start_plantwatch, stop, wait_for_port
from tests.waiting import wait_until

ZONE = ZoneInfo("Asia/Shanghai")
MN = "88888880000001A0B1C2D3E4"


def hour_from_raw(influxdb: InfluxDBServer, db: str, data_time: str) -> tuple[float, float, str]:
    """HJ 75 by hand: per minute the mean of the samples flagged N, the hour's mean of those
    minutes (valid with >= 45), as measured and O2-corrected to 11 %."""
    start = datetime.strptime(data_time, "%Y%m%d%H%M%S").replace(tzinfo=ZONE)
    start_ns = int(start.timestamp()) * 10**9
    (series,) = influxdb.query(
        f"SELECT dust, o2, data_flag FROM cems WHERE device = 'stack-1' "
        f"AND time >= {start_ns} AND time < {start_ns + 3600 * 10**9}",
        db,
    )
    minutes: dict[int, list[tuple[float, float]]] = defaultdict(list)
    flags: dict[int, Counter[str]] = defaultdict(Counter)
    for ts, dust, o2, flag in series["values"]:
        minute = int(ts) // (60 * 10**9)
        flags[minute][flag] += 1
        if flag == "N" and dust is not None and o2 is not None:
            minutes[minute].append((dust, dust * (21 - 11) / (21 - o2)))
    raw = [sum(d for d, _ in samples) / len(samples) for samples in minutes.values()]
    corrected = [sum(c for _, c in samples) / len(samples) for samples in minutes.values()]
    # fewer than 45 valid minutes: the most frequent flag of the excluded minutes, else B (no data)
    excluded = Counter(
        next(f for f, _ in counts.most_common() if f != "N")
        for m, counts in flags.items()
        if m not in minutes
    )
    flag = "N" if len(raw) >= 45 else excluded.most_common(1)[0][0] if excluded else "B"
    return sum(raw) / len(raw), sum(corrected) / len(corrected), flag


@pytest.mark.slow
def test_a_simulated_stack_reaches_the_platform_with_its_hj75_hours(
    tmp_path: Path, influxdb: InfluxDBServer, influx_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW_HJ212", "hj212-s3cret")
    platform = Platform()
    platform.start()
    port = free_port()
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁铁合金厂}}
devices:
  - {{id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:{port}", interval: 100ms, timeout: 90ms}}
influx: {{url: "{influxdb.url}", api: v1, database: {influx_db}, flush_interval: 200ms}}
buffer: {{path: buffer.sqlite}}
event_time: {{max_skew: 3650d}}
alerts:
  o2_reference: {{stack-1: 11}}
hj212:
  lateness: 1s
  platforms:
    - {{name: province, host: 127.0.0.1, port: {platform.port}, mn: {MN}, pw_env: PW_HJ212,
       timeout: 2s, reconnect: 1s, devices: [stack-1],
       data: {{realtime: 1s, minute: 10m, hour: true, day: false}}}}
""",
        encoding="utf-8",
    )
    simulator = start_plantwatch("simulate", "--config", str(config), "--speed", "600")
    wait_for_port(port)
    collect = start_plantwatch("collect", "--config", str(config), log=tmp_path / "collect.log")
    try:
        wait_until(lambda: len(platform.data("2061")) >= 2, 120, "two hour packets")
    finally:
        assert stop(collect) == 0, (tmp_path / "collect.log").read_text()
        stop(simulator)
        platform.stop()

    assert platform.bad == []
    assert platform.data("2011"), "real-time data"
    hours = platform.data("2061")[:2]
    assert hours[1].cp()["a34013-Flag"] == "N"  # the first whole hour is valid (the first began mid-hour)
    for packet in hours:
        cp = packet.cp()
        avg, zs_avg, flag = hour_from_raw(influxdb, influx_db, cp["DataTime"])
        assert float(cp["a34013-Avg"]) == pytest.approx(avg, abs=0.001)
        assert float(cp["a34013-ZsAvg"]) == pytest.approx(zs_avg, abs=0.001)
        assert cp["a34013-Flag"] == flag
        assert packet.fields["MN"] == MN and packet.fields["Flag"] == "5"
