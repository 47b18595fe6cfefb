"""The province topology (docs/deployment.md): two plants, each with its simulated furnaces, its
edge collector (own buffer) and its edge Mosquitto bridged to a central Mosquitto; one central
InfluxDB; an alert pool on the central broker (plant A one worker, plant B two partitioned
workers); one SMTP server for the regulators. Every number is checked where it lands centrally."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from plantwatch.alerts.partition import Worker, worker_devices
from plantwatch.config.plant import load_plant_config
from plantwatch.config.targets import resolve_targets
from plantwatch.dashboards.files import load_dashboards
from tests.alert_helpers import plain_text
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer
from tests.services.processes import free_port, start_plantwatch, stop, wait_for_port
from tests.services.smtp import SmtpServer
from tests.test_dashboards import interpolate, targets
from tests.waiting import wait_until

SPEED = 1200  # a 2-hour tap every 6 s; seed 1 makes the ferrosilicon furnace's tap 2 a breach


def bridge_to(central: MosquittoServer, name: str) -> list[str]:
    """An edge broker's bridge: the readings bus out to the central broker (QoS 1, persistent)."""
    return [
        f"connection {name}-to-central",
        f"address 127.0.0.1:{central.port}",
        "topic plantwatch/v2/# out 1",
        "bridge_protocol_version mqttv50",
        "cleansession false",
        f"remote_clientid {name}-bridge",
        "restart_timeout 1 5",
    ]


def plant_config(
    folder: Path,
    plant: str,
    furnaces: str,
    edge: MosquittoServer,
    influxdb: InfluxDBServer,
    db: str,
    smtp: SmtpServer,
) -> Path:
    folder.mkdir()
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: {plant}, name: {plant}}}
devices:
{furnaces}
influx: {{url: "{influxdb.url}", api: v1, database: {db}, flush_interval: 200ms}}
buffer: {{path: buffer.sqlite}}
mqtt: {{url: "{edge.url}", client_id: {plant}}}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: {smtp.certs["ca"]},
         username_env: PW_SMTP_USER, password_env: PW_SMTP_PASSWORD, from: alerts@province.example}}
  recipients: [{{name: Duty, email: duty@eco.example, lang: en, role: plant}}]
  digest_at: null
""",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_two_plants_bridged_into_one_influxdb_and_one_alert_pool(
    tmp_path: Path,
    smtp: SmtpServer,
    influxdb: InfluxDBServer,
    influx_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PW_SMTP_USER", "plantwatch")
    monkeypatch.setenv("PW_SMTP_PASSWORD", "mail-s3cret")
    central = MosquittoServer(tmp_path / "central")
    central.start()
    edges = {
        p: MosquittoServer(tmp_path / f"edge-{p}", extra=bridge_to(central, p))
        for p in ("works-a", "works-b")
    }
    ports = {p: free_port() for p in edges}
    saf = '  - {{id: {}, map: {}, url: "tcp://127.0.0.1:{}", unit: {}, interval: 100ms, timeout: 90ms}}'
    furnaces = {
        "works-a": saf.format("saf-1", "saf_ferrosilicon", ports["works-a"], 1),
        "works-b": saf.format("saf-1", "saf_ferrosilicon", ports["works-b"], 1)
        + "\n"
        + saf.format("saf-3", "saf_ferrochrome", ports["works-b"], 2),  # on worker 1, saf-1 on 2
    }
    configs = {
        p: plant_config(tmp_path / p, p, furnaces[p], edge, influxdb, influx_db, smtp)
        for p, edge in edges.items()
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, *args: str) -> None:
        processes[name] = start_plantwatch(*args, log=tmp_path / f"{name}.log")

    try:
        for edge in edges.values():
            edge.start()
        for plant, config in configs.items():
            start(
                f"simulate-{plant}", "simulate", "--config", str(config), "--seed", "1", "--speed", str(SPEED)
            )
            wait_for_port(ports[plant])
        # the alert pool, on the central broker only: plant A one worker, plant B two
        pool = ["alerts", "--mqtt-url", central.url]
        start("alerts-a", *pool, "--config", str(configs["works-a"]))
        start("alerts-b1", *pool, "--config", str(configs["works-b"]), "--worker", "1/2")
        start("alerts-b2", *pool, "--config", str(configs["works-b"]), "--worker", "2/2")
        for plant, config in configs.items():  # the edge collectors: their edge broker, central InfluxDB
            start(f"collect-{plant}", "collect", "--config", str(config))

        def firing() -> Counter[str]:
            return Counter(
                " ".join(str(m["Subject"]).split()[1:3])
                for m in smtp.inbox.messages
                if str(m["Subject"]).startswith("[FIRING]")
            )

        wait_until(
            lambda: {"works-a saf-1:", "works-b saf-1:"} <= set(firing()),
            90,
            "a breach mailed from each plant",
        )
    finally:
        for name, process in processes.items():
            assert stop(process) == 0 or name.startswith("simulate"), (tmp_path / f"{name}.log").read_text()
        for edge in edges.values():
            edge.stop()
        central.stop()

    mails = Counter(  # each mail but the line with the wall time it was detected at
        (
            str(m["Subject"]).strip(),
            "\n".join(ln for ln in plain_text(m).splitlines() if not ln.startswith("Detected:")),
        )
        for m in smtp.inbox.messages
    )
    assert set(mails.values()) == {1}, mails  # no mail twice, although plant B has two workers
    # the readings of both plants, and the KPI values of both alert pools' plants, in one InfluxDB
    readings = influxdb.query(
        'SELECT count("active_energy") FROM "saf" GROUP BY "plant", "device"', influx_db
    )
    assert {(s["tags"]["plant"], s["tags"]["device"]) for s in readings} == {
        ("works-a", "saf-1"),
        ("works-b", "saf-1"),
        ("works-b", "saf-3"),
    }
    kpis = influxdb.query(
        'SELECT count("value") FROM "plantwatch_kpi" WHERE "kind" = \'closed\' GROUP BY "plant", "device"',
        influx_db,
    )
    assert {(s["tags"]["plant"], s["tags"]["device"]) for s in kpis} == {
        ("works-a", "saf-1"),
        ("works-b", "saf-1"),
        ("works-b", "saf-3"),
    }  # every furnace's taps: both of plant B's workers computed theirs
    plant_b = load_plant_config(configs["works-b"])
    plan = resolve_targets(plant_b.config.alerts, "plant.yaml")
    assert [worker_devices(plant_b, plan, Worker(i, 2)) for i in (1, 2)] == [{"saf-3"}, {"saf-1"}]
    # the regulators' dashboard shows both plants
    (query,) = [
        t["query"] for title, t in targets(load_dashboards()["province"]) if title.startswith("Month to date")
    ]
    rows = influxdb.query(interpolate(query), influx_db)
    assert {s["tags"]["plant"] for s in rows} == {"works-a", "works-b"}
