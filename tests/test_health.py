"""The collector's health report: the log line, and the points it puts in the buffer."""

from __future__ import annotations

import time
from pathlib import Path

from plantwatch.collector.health import HealthReporter
from plantwatch.collector.sink import IngestStats
from plantwatch.infra.influx.buffer import DurableBuffer
from plantwatch.infra.influx.forwarder import ForwarderStats


def test_health_names_failing_devices_and_writes_points(tmp_path: Path) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    ingest = IngestStats(readings=0, polls=0)
    forwarder = ForwarderStats(written=120, write_errors=3, dead_letters=1)
    reporter = HealthReporter("works", ["saf-1", "saf-2", "cems"], buffer, ingest, forwarder, interval=1.0)
    now = time.time_ns()
    ingest.last_good_ns = {"saf-1": now, "saf-2": now - 30 * 10**9}
    ingest.readings, ingest.polls = 500, 40
    text = reporter.report()
    assert text.startswith("health: ")
    assert "written 120, write errors 3, dead letters 1, refused 0" in text
    assert text.endswith("; not polling cleanly: saf-2 (last good 30s ago), cems (never good)")
    batch = buffer.read(100)
    assert batch is not None
    collector_line, *device_lines = batch.lines
    assert collector_line.startswith("plantwatch_collector,plant=works,host=")
    assert (
        "polls=40i" in collector_line
        and "write_errors=3i" in collector_line
        and "dead_letters=1i" in collector_line
    )
    assert [line.split(" ")[0] for line in device_lines] == [
        "plantwatch_device,plant=works,device=saf-1",
        "plantwatch_device,plant=works,device=saf-2",
    ]
    assert device_lines[1].split(" ")[1].startswith("last_success_age_s=30.")


def test_mqtt_rejects_become_points_per_device_and_reason(tmp_path: Path) -> None:
    from collections import Counter

    buffer = DurableBuffer(tmp_path / "b.sqlite")
    rejects: Counter[tuple[str, str]] = Counter({("stack-1", "bad json"): 3, ("?", "unknown topic"): 1})
    reporter = HealthReporter("works", [], buffer, IngestStats(), ForwarderStats(), mqtt_rejects=rejects)
    assert reporter.report().endswith("; MQTT messages rejected: 4")
    batch = buffer.read(100)
    assert batch is not None
    assert [line.rsplit(" ", 1)[0] for line in batch.lines[1:]] == [
        "plantwatch_mqtt_rejects,plant=works,device=?,reason=unknown\\ topic count=1i",
        "plantwatch_mqtt_rejects,plant=works,device=stack-1,reason=bad\\ json count=3i",
    ]
