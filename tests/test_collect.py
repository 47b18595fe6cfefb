"""`plantwatch collect` end to end: simulator, collector and a real InfluxDB as separate processes.

The counts are exact: every poll the collector accepted is one plantwatch_poll point, and each
poll of a device writes one point per request, so per device the two counts must match.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.influx_proxy import InfluxProxy
from tests.services.influxdb import InfluxDBServer
from tests.services.processes import free_port, log_count, start_plantwatch, stop, wait_for_port
from tests.waiting import wait_until

DEVICES = [("saf-1", "saf_ferrosilicon", "active_power"), ("stack-1", "dust_cems", "dust")]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    config = tmp_path / "sim.yaml"
    devices = "".join(
        f'  - {{id: {d}, map: {m}, url: "tcp://127.0.0.1:{port}", unit: {i + 1}}}\n'
        for i, (d, m, _) in enumerate(DEVICES)
    )
    config.write_text(f"plant: {{id: sim, name: Sim}}\ndevices:\n{devices}", encoding="utf-8")
    proc = start_plantwatch("simulate", "--config", str(config), "--speed", "60")
    wait_for_port(port)
    yield port
    stop(proc)


def plant_yaml(tmp_path: Path, sim_port: int, influx_url: str, interval: str = "200ms") -> Path:
    devices = "".join(
        f'  - {{id: {d}, map: {m}, url: "tcp://127.0.0.1:{sim_port}", unit: {i + 1}, interval: {interval}, '
        f'timeout: 150ms, tags: {{line: "north 1"}}}}\n'
        for i, (d, m, _) in enumerate(DEVICES)
    )
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"""plant: {{id: works, name: Works}}
devices:
{devices}influx: {{url: "{influx_url}", api: v1, database: plant, batch_size: 500, flush_interval: 200ms,
         timeout: 2s, shutdown_timeout: 30s}}
buffer: {{path: buffer.sqlite, dead_letter: dead.jsonl}}
event_time: {{max_skew: 30d}}  # the simulated CEMS clock runs at 60x
""",
        encoding="utf-8",
    )
    return config


def counts(influx: InfluxDBServer) -> dict[str, tuple[int, int]]:
    """Per device: (plantwatch_poll points, points of its first field)."""
    result = {}
    for device, _, field in DEVICES:
        polls = influx.query(f"SELECT count(good) FROM plantwatch_poll WHERE device = '{device}'", "plant")
        data = influx.query(
            f"SELECT count(\"{field}\") FROM /^(saf|cems)$/ WHERE device = '{device}'", "plant"
        )
        result[device] = (polls[0]["values"][0][1] if polls else 0, sum(s["values"][0][1] for s in data))
    return result


def last_health_polls(influx: InfluxDBServer) -> int:
    (series,) = influx.query("SELECT last(polls) FROM plantwatch_collector", "plant")
    return series["values"][0][1]


def run_collect(config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return start_plantwatch("collect", "--config", str(config), "--health-interval", "1s", *extra, log=log)


def wait_for_polls(influx: InfluxDBServer, at_least: int, timeout: float = 30) -> None:
    """Until InfluxDB holds `at_least` polls of every device."""
    wait_until(
        lambda: all(polls >= at_least for polls, _ in counts(influx).values()),
        timeout,
        f"{at_least} polls of every device in InfluxDB",
    )


def buffered_polls(buffer: Path) -> set[tuple[str, int]]:
    """(device, time) of every plantwatch_poll line waiting in a buffer file (read-only; the
    collector may be writing it)."""
    with contextlib.closing(sqlite3.connect(f"file:{buffer}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT data FROM chunks ORDER BY id").fetchall()
    lines = [line for (data,) in rows for line in data.split("\n") if line.startswith("plantwatch_poll,")]
    return {(line.split(",device=")[1].split(",")[0], int(line.rsplit(" ", 1)[1])) for line in lines}


def stored_polls(influx: InfluxDBServer) -> set[tuple[str, int]]:
    """(device, time) of every plantwatch_poll point in InfluxDB."""
    stored = set()
    for device, _, _ in DEVICES:
        for series in influx.query(f"SELECT good FROM plantwatch_poll WHERE device = '{device}'", "plant"):
            stored |= {(device, row[0]) for row in series["values"]}
    return stored


def test_collect_writes_every_poll_with_tags_and_health(
    simulator: int, plant_influx: InfluxDBServer, tmp_path: Path
) -> None:
    influx = plant_influx
    config = plant_yaml(tmp_path, simulator, influx.url)
    proc = run_collect(config, tmp_path / "collect.log")
    wait_for_polls(influx, 10)
    assert stop(proc) == 0
    log = (tmp_path / "collect.log").read_text()
    assert "collect: stopped; 0 line(s) left in the buffer" in log
    per_device = counts(influx)
    for polls, data in per_device.values():
        assert polls >= 10 and polls == data
    assert sum(p for p, _ in per_device.values()) == last_health_polls(influx)
    (series,) = influx.query("SELECT last(dust), device, line, model, plant, sector FROM cems", "plant")
    _, dust, device, line, model, plant, sector = series["values"][0]
    assert (device, line, model, plant, sector) == ("stack-1", "north 1", "dust_cems", "works", "emissions")
    assert 10 < dust < 90
    (saf,) = influx.query("SELECT last(tap_counter), product FROM saf", "plant")
    assert isinstance(saf["values"][0][1], int) and saf["values"][0][2] == "ferrosilicon"
    (coil,) = influx.query("SELECT last(furnace_running) FROM saf", "plant")
    assert coil["values"][0][1] is True


@pytest.mark.slow
def test_influxdb_down_for_60_seconds_loses_nothing_and_keeps_order(
    simulator: int, influx: InfluxDBServer, tmp_path: Path
) -> None:
    with InfluxProxy(influx.url) as proxy:
        config = plant_yaml(tmp_path, simulator, proxy.url)
        proc = run_collect(config, tmp_path / "collect.log")
        wait_for_polls(influx, 1)
        influx.stop()
        down_since = time.monotonic()
        wait_until(  # the proxy's 503, or a 500 for a write influxd was in the middle of when stopped
            lambda: (
                log_count(tmp_path / "collect.log", "InfluxDB is unavailable (")
                or log_count(tmp_path / "collect.log", "cannot reach InfluxDB")
            ),
            30,
            "the collector noticing the outage",
        )
        time.sleep(max(0.0, 60 - (time.monotonic() - down_since)))  # the test is about a 60 s outage
        influx.start()
        wait_for_polls(influx, 300, timeout=60)  # 65 s at 200 ms per device, drained
        assert stop(proc) == 0
    log = (tmp_path / "collect.log").read_text()
    assert "collect: stopped; 0 line(s) left in the buffer" in log
    per_device = counts(influx)
    for polls, data in per_device.values():
        assert polls >= 300 and polls == data  # 65 s at 200 ms per device
    assert sum(p for p, _ in per_device.values()) == last_health_polls(influx)
    # Health lines are appended once a second; across every batch sent (retries included) their
    # timestamps never go backwards, so batches left the buffer in order.
    health_lines = [
        line for _, batch in proxy.requests for line in batch if line.startswith("plantwatch_collector,")
    ]
    seen = [int(line.rsplit(" ", 1)[1]) for line in health_lines]
    firsts = list(dict.fromkeys(seen))
    assert firsts == sorted(firsts) and len(firsts) >= 60


@pytest.mark.slow
def test_kill_9_then_restart_loses_nothing_accepted(
    simulator: int, influx: InfluxDBServer, tmp_path: Path
) -> None:
    config = plant_yaml(tmp_path, simulator, influx.url)
    proc = run_collect(config, tmp_path / "collect.log")
    wait_for_polls(influx, 1)
    influx.stop()  # let a backlog build up in the buffer
    buffer = tmp_path / "buffer.sqlite"
    wait_until(lambda: len(buffered_polls(buffer)) >= 20, 30, "a backlog of 20 polls in the buffer")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    pending_polls = buffered_polls(buffer)  # accepted but not yet sent when the collector died
    assert len(pending_polls) >= 20

    influx.start()
    proc = run_collect(config, tmp_path / "collect2.log")
    wait_until(lambda: pending_polls <= stored_polls(influx), 30, "the backlog in InfluxDB")
    assert stop(proc) == 0
    log = (tmp_path / "collect2.log").read_text()
    assert "recovered" in log and "unsent line(s) from a previous run" in log
    for polls, data in counts(influx).values():
        assert polls == data


def test_collect_without_influx_section_or_secret_fails_clearly(tmp_path: Path, simulator: int) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text(
        f'plant: {{id: w, name: W}}\ndevices:\n  - {{id: d, map: dust_cems, url: "tcp://127.0.0.1:{simulator}"}}\n',
        encoding="utf-8",
    )
    proc = start_plantwatch("collect", "--config", str(config), log=tmp_path / "out.log")
    assert proc.wait(30) == 1
    assert f"{config}: influx: required by `plantwatch collect`" in (tmp_path / "out.log").read_text()

    config.write_text(
        config.read_text()
        + 'influx: {url: "http://127.0.0.1:1", bucket: b, token_env: PW_NOT_SET_ANYWHERE}\n',
        encoding="utf-8",
    )
    proc = start_plantwatch("collect", "--config", str(config), log=tmp_path / "out2.log")
    assert proc.wait(30) == 1
    out = (tmp_path / "out2.log").read_text()
    assert "environment variable PW_NOT_SET_ANYWHERE (named by the config) is not set" in out
    assert "Traceback" not in out
    json.dumps(out)  # the log is plain text
