"""End to end: a simulated furnace drifts above 7800 kWh/t and back, `plantwatch run` tells the regulator.

Separate processes as in a plant: `plantwatch simulate` serves the ferrosilicon SAF over Modbus
TCP, `plantwatch run` polls it into a real InfluxDB and runs the alert service, which mails a
real SMTP server (STARTTLS + AUTH) and annotates the Grafana API stand-in. The expected numbers
are recomputed here from the raw readings InfluxDB holds, not taken from plantwatch.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from plantwatch.config.targets import load_catalogue
from tests.alert_helpers import closed_taps, number, plain_text
from tests.conftest import GRAFANA_TOKEN as TOKEN
from tests.services.grafana_api import GrafanaApi
from tests.services.influxdb import InfluxDBServer
from tests.services.processes import free_port, start_plantwatch, stop, wait_for_port
from tests.services.smtp import SmtpServer
from tests.waiting import wait_until

SPEED = 1200  # a 2-hour tap every 6 s
# Seed 1 makes tap 2 light (7.43 t, ~8,075 kWh/t: a breach) and tap 4 heavy (8.29 t, ~7,240 kWh/t).
SEED = 1


def taps_from_influx(influxdb: InfluxDBServer, db: str) -> list[tuple[int, float, float]]:
    """Per tap boundary after the first: (time ms, energy since the previous boundary, tap weight)."""
    (series,) = influxdb.query(
        "SELECT active_energy, tap_counter, tap_weight FROM saf WHERE device = 'saf-1'", db
    )
    rows = [(int(t), e, c, w) for t, e, c, w in series["values"] if None not in (e, c, w)]
    return [(ts // 10**6, energy, weight) for ts, energy, weight in closed_taps(rows)]


def subjects(inbox: list[EmailMessage]) -> list[str]:
    return [str(m["Subject"]).strip() for m in inbox]


@pytest.mark.slow
def test_furnace_above_target_mails_plant_staff_and_closes_the_annotation(
    tmp_path: Path,
    smtp: SmtpServer,
    grafana: GrafanaApi,
    influxdb: InfluxDBServer,
    influx_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PW_SMTP_USER", "plantwatch")
    monkeypatch.setenv("PW_SMTP_PASSWORD", "mail-s3cret")
    monkeypatch.setenv("PW_GRAFANA_TOKEN", TOKEN)
    port = free_port()
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: Works}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:{port}", interval: 100ms, timeout: 90ms}}
influx: {{url: "{influxdb.url}", api: v1, database: {influx_db}, flush_interval: 200ms}}
buffer: {{path: buffer.sqlite}}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: {smtp.certs["ca"]},
         username_env: PW_SMTP_USER, password_env: PW_SMTP_PASSWORD, from: alerts@works.example}}
  recipients: [{{name: Energy manager, email: duty@eco.example, lang: en, role: plant}}]
  digest_at: null  # this test counts alert mails; the digest is tested in test_report_mail.py
  grafana: {{url: "{grafana.url}", token_env: PW_GRAFANA_TOKEN, dashboard_uid: plant-overview}}
""",
        encoding="utf-8",
    )
    simulator = start_plantwatch(
        "simulate", "--config", str(config), "--seed", str(SEED), "--speed", str(SPEED)
    )
    wait_for_port(port)
    run = start_plantwatch("run", "--config", str(config), log=tmp_path / "run.log")
    try:
        # Breach at tap 2, recovery by tap 4 (or 3): about 25 s of wall time.
        wait_until(
            lambda: any(s.startswith("[RESOLVED]") for s in subjects(smtp.inbox.messages)),
            90,
            "the RESOLVED mail",
        )
        wait_until(
            lambda: any("timeEnd" in body for _, _, body in grafana.requests[1:]), 30, "the annotation closed"
        )
    finally:
        assert stop(run) == 0, (tmp_path / "run.log").read_text()
        stop(simulator)

    limit = load_catalogue()["ferroalloy-fesi-unit-power"].value
    taps = taps_from_influx(influxdb, influx_db)
    breach = next(i for i, (_, energy, weight) in enumerate(taps) if energy / weight > limit)
    _, energy, weight = taps[breach]
    firing = next(m for m in smtp.inbox.messages if str(m["Subject"]).strip().startswith("[FIRING]"))
    assert str(firing["Subject"]).strip() == (
        f"[FIRING] works saf-1: ferrosilicon unit power consumption {number(energy / weight, 0)} kWh/t"
        " (target ≤ 7,800 kWh/t)"
    )
    text = plain_text(firing)
    assert f"Calculation: energy {number(energy, 0)} kWh ÷ production {number(weight, 2)} t" in text
    assert (
        "Source: Qinghai Province (2013), Implementation Plan on Accelerating Mergers, Acquisitions and"
        " Structural Adjustment of the Ferroalloy Industry in Our Province"
        " (《关于加快我省铁合金行业兼并重组和结构调整实施方案》), Part II (1) item 3"
    ) in text
    assert smtp.inbox.envelopes[0] == ("alerts@works.example", ["duty@eco.example"])

    recovery = next(
        i for i, (_, e, w) in enumerate(taps) if i > breach and e / w <= limit * 0.98
    )  # the clear margin: 2 % below the target
    resolved = next(m for m in smtp.inbox.messages if str(m["Subject"]).strip().startswith("[RESOLVED]"))
    assert number(taps[recovery][1] / taps[recovery][2], 0) in str(resolved["Subject"])
    assert subjects(smtp.inbox.messages)[:2] == [
        str(firing["Subject"]).strip(),
        str(resolved["Subject"]).strip(),
    ]

    [annotation] = grafana.annotations.values()
    assert set(annotation["tags"]) >= {"plant:works", "device:saf-1", "severity:warning"}
    # the region spans the breaching tap; it closes at the end of the tap that recovered
    assert annotation["time"] < taps[breach][0] < annotation["timeEnd"]
    assert annotation["timeEnd"] == taps[recovery][0]
