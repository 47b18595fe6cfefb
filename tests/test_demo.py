"""`plantwatch demo` headless, as a newcomer runs it: every sector, a breach mailed, a clean exit."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import get_args

import pytest

from plantwatch.collector.influx.buffer import DurableBuffer
from plantwatch.config.roles import Sector
from plantwatch.demo import sectors_in_buffer
from tests.alert_helpers import closed_taps, number
from tests.test_cli import plantwatch


def taps_in_buffer(data_dir: Path, device: str) -> list[tuple[str, str]]:
    """(energy, weight) of every closed tap of `device`, from the raw readings in the buffer, as
    the mail prints them."""
    buffer = DurableBuffer(data_dir / "plantwatch-buffer.sqlite")
    batch = buffer.read(10**9)
    buffer.close()
    assert batch is not None
    rows = []
    for line in batch.lines:
        series, _, rest = line.partition(" ")
        if not series.startswith("saf,") or f",device={device}," not in series + ",":
            continue
        field_set, _, ts = rest.rpartition(" ")
        fields = dict(f.split("=", 1) for f in field_set.split(","))
        if {"active_energy", "tap_counter", "tap_weight"} <= fields.keys():
            energy, count, weight = (
                float(fields[k].rstrip("i")) for k in ("active_energy", "tap_counter", "tap_weight")
            )
            rows.append((int(ts), energy, count, weight))
    return [(number(energy), number(weight)) for _, energy, weight in closed_taps(rows)]


def test_demo_headless_reads_every_sector_and_mails_a_breach_with_the_right_numbers(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = plantwatch(
        "demo",
        "--duration",
        "40s",
        "--speed",
        "1200",
        "--refresh",
        "5s",
        "--data-dir",
        str(data),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("simulator: 10 device(s), speed x1200")
    assert "latest transitions:" in result.stdout and "FIRING" in result.stdout  # the live view
    assert set(sectors_in_buffer(data / "plantwatch-buffer.sqlite")) == set(get_args(Sector))

    firing = []
    for path in sorted((data / "plantwatch-outbox" / "pending").glob("*.eml")):
        mail = BytesParser(policy=policy.SMTP).parsebytes(path.read_bytes())
        if str(mail["Subject"]).strip().startswith("[FIRING]"):
            firing.append(mail)
    assert firing, "no breach was mailed within 40 s"
    for mail in firing:
        subject = str(mail["Subject"]).strip()
        value, _unit, limit = re.search(r" ([\d,.]+) (\S+) \(target <= ([\d,.]+)\)", subject).groups()  # type: ignore[union-attr]
        assert float(value.replace(",", "")) > float(limit.replace(",", "")), subject
        text = mail.get_content()  # type: ignore[attr-defined]
        energy, weight = re.search(r"^= ([\d,.]+) kWh / ([\d,.]+) t", text, re.MULTILINE).groups()  # type: ignore[union-attr]
        device = re.search(r"^Device: (\S+)", text, re.MULTILINE).group(1)  # type: ignore[union-attr]
        assert (energy, weight) in taps_in_buffer(data, device), (subject, energy, weight)
        ratio = float(energy.replace(",", "")) / float(weight.replace(",", ""))
        assert ratio == pytest.approx(float(value.replace(",", "")), rel=1e-3)  # both sides rounded
    assert "mail: " in result.stdout and " in the outbox" in result.stdout
