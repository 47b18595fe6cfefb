"""`plantwatch collect` end to end: simulator, collector and a real InfluxDB as separate processes.

The counts are exact: every poll the collector accepted is one plantwatch_poll point, and each
poll of a device writes one point per request, so per device the two counts must match.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.influx_proxy import InfluxProxy
from tests.services.influxdb import InfluxDBServer
from tests.services.processes import free_port, start_plantwatch, stop, wait_for_port

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


def run_collect(config: Path, log: Path, *extra: str) -> object:
    return start_plantwatch("collect", "--config", str(config), "--health-interval", "1s", *extra, log=log)


def test_collect_writes_every_poll_with_tags_and_health(
    simulator: int, influx: InfluxDBServer, tmp_path: Path
) -> None:
    config = plant_yaml(tmp_path, simulator, influx.url)
    proc = run_collect(config, tmp_path / "collect.log")
    time.sleep(4)
    assert stop(proc) == 0  # type: ignore[arg-type]
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


def test_influxdb_down_for_60_seconds_loses_nothing_and_keeps_order(
    simulator: int, influx: InfluxDBServer, tmp_path: Path
) -> None:
    with InfluxProxy(influx.url) as proxy:
        config = plant_yaml(tmp_path, simulator, proxy.url)
        proc = run_collect(config, tmp_path / "collect.log")
        time.sleep(3)
        influx.stop()
        time.sleep(60)
        influx.start()
        time.sleep(5)
        assert stop(proc) == 0  # type: ignore[arg-type]
    log = (tmp_path / "collect.log").read_text()
    assert "InfluxDB is unavailable (503)" in log or "cannot reach InfluxDB" in log
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


def test_kill_9_then_restart_loses_nothing_accepted(
    simulator: int, influx: InfluxDBServer, tmp_path: Path
) -> None:
    config = plant_yaml(tmp_path, simulator, influx.url)
    proc = run_collect(config, tmp_path / "collect.log")
    time.sleep(2)
    influx.stop()  # let a backlog build up in the buffer
    time.sleep(3)
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    proc.wait(10)  # type: ignore[attr-defined]
    snapshot = tmp_path / "snapshot.sqlite"
    shutil.copy(tmp_path / "buffer.sqlite", snapshot)
    for suffix in ("-wal", "-shm"):
        if (tmp_path / f"buffer.sqlite{suffix}").exists():
            shutil.copy(tmp_path / f"buffer.sqlite{suffix}", f"{snapshot}{suffix}")
    rows = sqlite3.connect(snapshot).execute("SELECT data FROM chunks ORDER BY id")
    pending = [line for (data,) in rows for line in data.split("\n")]
    poll_lines = [line for line in pending if line.startswith("plantwatch_poll,")]
    pending_polls = {
        (line.split(",device=")[1].split(",")[0], int(line.rsplit(" ", 1)[1])) for line in poll_lines
    }
    assert len(pending_polls) >= 20  # a real backlog was accepted but not yet sent

    influx.start()
    proc = run_collect(config, tmp_path / "collect2.log")
    time.sleep(4)
    assert stop(proc) == 0  # type: ignore[arg-type]
    log = (tmp_path / "collect2.log").read_text()
    assert "recovered" in log and "unsent line(s) from a previous run" in log
    stored = set()
    for device, _, _ in DEVICES:
        (series,) = influx.query(f"SELECT good FROM plantwatch_poll WHERE device = '{device}'", "plant")
        stored |= {(device, row[0]) for row in series["values"]}
    assert pending_polls <= stored
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
