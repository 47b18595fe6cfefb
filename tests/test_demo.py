"""`plantwatch demo` headless, as a newcomer runs it: every sector, the readings bus on the embedded
broker, a breach mailed, a clean exit."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import get_args
from urllib.parse import urlsplit

import pytest

from plantwatch.app.demo import sectors_in_buffer
from plantwatch.config.roles import Sector
from plantwatch.contract.bus import results_from_bus
from plantwatch.infra.influx.buffer import DurableBuffer
from tests.alert_helpers import closed_taps, number, plain_text
from tests.mqtt_helpers import MqttTestClient
from tests.services.processes import wait_for_log


def device_points(data_dir: Path) -> dict[tuple[str, int], dict[str, str]]:
    """Field values as line protocol wrote them, per (device, timestamp), from the demo's buffer
    (plantwatch's own measurements left out)."""
    buffer = DurableBuffer(data_dir / "plantwatch-buffer.sqlite")
    batch = buffer.read(10**9)
    buffer.close()
    assert batch is not None
    points: dict[tuple[str, int], dict[str, str]] = {}
    for line in batch.lines:
        series, _, rest = line.partition(" ")
        tags = dict(t.split("=", 1) for t in series.split(",")[1:])
        if series.startswith("plantwatch_") or "device" not in tags:
            continue
        field_set, _, ts = rest.rpartition(" ")
        fields = dict(f.split("=", 1) for f in field_set.split(","))
        points.setdefault((tags["device"], int(ts)), {}).update(fields)
    return points


def taps_in_buffer(points: dict[tuple[str, int], dict[str, str]], device: str) -> list[tuple[str, str]]:
    """(energy, weight) of every closed tap of `device`, from the raw readings, as the mail prints them."""
    rows = []
    for (name, ts), fields in sorted(points.items()):
        if name == device and {"active_energy", "tap_counter", "tap_weight"} <= fields.keys():
            energy, count, weight = (
                float(fields[k].rstrip("i")) for k in ("active_energy", "tap_counter", "tap_weight")
            )
            rows.append((ts, energy, count, weight))
    return [(number(energy, 0), number(weight, 2)) for _, energy, weight in closed_taps(rows)]


@dataclass(frozen=True)
class PrintedBroker:
    """The demo's embedded broker, at the address the demo printed (no TLS)."""

    port: int
    certs: Mapping[str, Path] = field(default_factory=dict)


@pytest.mark.slow
def test_demo_headless_reads_every_sector_and_mails_a_breach_with_the_right_numbers(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    stdout, stderr = tmp_path / "demo.out", tmp_path / "demo.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        # the demo's own speed (x600): a tap every 12 s, a dust breach hour within the first 30 s
        command = ["demo", "--duration", "45s", "--refresh", "5s", "--data-dir", str(data)]
        demo = subprocess.Popen(
            [sys.executable, "-m", "plantwatch", *command],
            stdout=out,
            stderr=err,
        )
    try:
        wait_for_log(stdout, "readings bus on")
        broker = re.search(
            r"^mqtt: embedded broker \(amqtt, MQTT 3\.1\.1\) at (\S+);", stdout.read_text(), re.M
        )
        assert broker, stdout.read_text()
        address = urlsplit(broker.group(1))
        assert address.hostname == "127.0.0.1" and address.port is not None
        bus = MqttTestClient(PrintedBroker(address.port), "demo-bus-test")
        bus.subscribe("plantwatch/v2/demo-works/+")
        returncode = demo.wait(120)
        bus.close()
    finally:
        demo.kill()
    out_text, err_text = stdout.read_text(), stderr.read_text()
    assert returncode == 0, err_text
    assert "Traceback" not in err_text
    assert out_text.startswith("simulator: 14 device(s), speed x600")
    assert "latest transitions:" in out_text and "FIRING" in out_text  # the live view
    assert set(sectors_in_buffer(data / "plantwatch-buffer.sqlite")) == set(get_args(Sector))

    # the readings bus went through the embedded broker: every device, values as committed
    points = device_points(data)
    devices = {message.topic.rsplit("/", 1)[1] for message in bus.received}
    assert devices == {device for device, _ in points} and len(devices) == 14
    compared = 0
    for received in bus.received:
        for message in results_from_bus(received.payload):
            for reading in message.readings:
                if reading.quality == "good" and isinstance(reading.value, float):
                    line_value = points[(message.device, reading.timestamp_ns)][reading.field]
                    assert float(line_value) == reading.value, (message.device, reading.field)
                    compared += 1
    assert compared > 1000

    firing = []
    for path in sorted((data / "plantwatch-outbox" / "pending").glob("*.eml")):
        mail = BytesParser(policy=policy.SMTP).parsebytes(path.read_bytes())
        if str(mail["Subject"]).strip().startswith("[FIRING]"):
            firing.append(mail)
    assert firing, "no breach was mailed within 45 s"
    units = set()
    for mail in firing:
        subject = str(mail["Subject"]).strip()
        value, unit, limit = re.search(r" ([\d,.]+) (\S+) \(target ≤ ([\d,.]+) \S+\)", subject).groups()  # type: ignore[union-attr]
        assert float(value.replace(",", "")) > float(limit.replace(",", "")), subject
        units.add(unit)
        text = plain_text(mail)
        if unit == "mg/m³":  # the CEMS: its clock runs at x600, so dust windows close within seconds
            continue
        calculation = r"^Calculation: energy ([\d,.]+) kWh ÷ production ([\d,.]+) t"
        energy, weight = re.search(calculation, text, re.MULTILINE).groups()  # type: ignore[union-attr]
        device = re.search(r"^Device: (\S+)", text, re.MULTILINE).group(1)  # type: ignore[union-attr]
        assert (energy, weight) in taps_in_buffer(points, device), (subject, energy, weight)
        ratio = float(energy.replace(",", "")) / float(weight.replace(",", ""))
        assert ratio == pytest.approx(float(value.replace(",", "")), rel=1e-3)  # both sides rounded
    assert {"kWh/t", "mg/m³"} <= units  # per-tonne and dust breaches
    assert "mail: " in out_text and " in the outbox" in out_text
