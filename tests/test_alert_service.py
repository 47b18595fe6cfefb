"""The alert service with real parts: aiosmtpd (STARTTLS + AUTH), the Grafana API stand-in, SQLite state."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantwatch.alerts.service import AlertService
from plantwatch.alerts.setup import build_alert_service
from plantwatch.config.plant import Plant, load_plant_config
from tests.alert_helpers import HOUR_NS, T0, plain_text, result
from tests.conftest import GRAFANA_TOKEN as TOKEN
from tests.services.grafana_api import GrafanaApi
from tests.services.influxdb import InfluxDBServer
from tests.services.smtp import SmtpServer
from tests.waiting import wait_until_async


@pytest.fixture(autouse=True)
def secrets() -> Iterator[None]:
    os.environ.update(PW_SMTP_USER="plantwatch", PW_SMTP_PASSWORD="mail-s3cret", PW_GRAFANA_TOKEN=TOKEN)
    yield
    for key in ("PW_SMTP_USER", "PW_SMTP_PASSWORD", "PW_GRAFANA_TOKEN"):
        os.environ.pop(key, None)


def plant_file(folder: Path, smtp: SmtpServer, grafana: GrafanaApi, extra: str = "") -> Plant:
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁铁合金厂}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: {smtp.certs["ca"]},
         username_env: PW_SMTP_USER, password_env: PW_SMTP_PASSWORD, from: alerts@works.example}}
  recipients:
    - {{name: 能源管理部 值班, email: duty@eco.example, lang: zh, role: plant}}
    - {{name: Plant Manager, email: manager@works.example, lang: en, role: plant, severities: [critical]}}
  grafana: {{url: "{grafana.url}", token_env: PW_GRAFANA_TOKEN, dashboard_uid: plant-overview}}
  dashboard_url: http://grafana.works.example/d/plant-overview
{extra}""",
        encoding="utf-8",
    )
    return load_plant_config(config)


def tap(service: AlertService, hour: int, energy: float, taps: int, weight: float) -> None:
    service.handle(
        result("saf-1", T0 + hour * HOUR_NS, active_energy=energy, tap_counter=taps, tap_weight=weight)
    )


def test_breach_email_and_region_annotation_then_recovery(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi
) -> None:
    service = build_alert_service(plant_file(tmp_path, smtp, grafana))
    tap(service, 0, 1000, 1, 8)
    tap(service, 1, 5000, 2, 8)  # first tap boundary
    tap(service, 3, 65100, 3, 7.5)  # 60100 kWh / 7.5 t = 8013.33 kWh/t: breach
    assert [t.event for t in service.transitions] == ["firing"]
    assert asyncio.run(service.deliver())
    [mail] = smtp.inbox.messages  # warning severity: only the zh recipient wants it
    assert smtp.inbox.envelopes == [("alerts@works.example", ["duty@eco.example"])]
    assert mail["Subject"] == "【告警】 works saf-1：硅铁单位电耗 8,013 kWh/t（目标 ≤ 7,800 kWh/t）"
    text = plain_text(mail)
    for expected in (
        "企业：西宁铁合金厂（works）",
        "当前值：8,013 kWh/t",
        "目标：≤ 7,800 kWh/t",
        "计算：能耗 60,100 kWh ÷ 产量 7.50 t = 8,013 kWh/t",
        "依据：青海省《关于加快我省铁合金行业兼并重组和结构调整实施方案》（2013年）二（一）3：“硅铁单位电耗降至7800度以下”",
        "统计窗口：每次出铁，",
        "仪表盘：http://grafana.works.example/d/plant-overview",
    ):
        assert expected in text, expected
    [annotation] = grafana.annotations.values()
    assert annotation["time"] == (T0 + HOUR_NS) // 10**6  # the breaching tap's window start
    assert annotation["tags"] == [
        "plant:works",
        "device:saf-1",
        "indicator:ferroalloy-fesi-unit-power",
        "severity:warning",
        "sector:ferroalloy",
    ]
    assert annotation["dashboardUID"] == "plant-overview"

    tap(service, 5, 122500, 4, 7.5)  # 57400 / 7.5 = 7653.3: inside 7800 but not by the 2 % margin
    assert [t.event for t in service.transitions] == ["firing"]
    tap(service, 7, 179500, 5, 7.5)  # 57000 / 7.5 = 7600: resolved
    assert [t.event for t in service.transitions] == ["firing", "resolved"]
    assert asyncio.run(service.deliver())
    assert smtp.inbox.messages[1]["Subject"].startswith("【恢复】 works saf-1：硅铁单位电耗 7,600 kWh/t")
    # the region is closed with timeEnd, and the PATCH did not wipe the tags
    assert annotation["timeEnd"] == (T0 + 7 * HOUR_NS) // 10**6 and len(annotation["tags"]) == 5
    assert [m for m, *_ in grafana.requests] == ["POST", "PATCH"]
    assert grafana.requests[1][2] == {"timeEnd": (T0 + 7 * HOUR_NS) // 10**6}
    service.close()


def test_a_new_value_alone_is_not_written_to_the_state_store(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi
) -> None:
    """A commit per KPI value would be a disk sync per reading; only state changes are saved."""
    service = build_alert_service(plant_file(tmp_path, smtp, grafana))
    tap(service, 0, 0, 1, 8)
    tap(service, 1, 1000, 2, 8)
    tap(service, 3, 60000, 3, 8)  # 7375 kWh/t: first value of the rule, saved once

    def saved() -> tuple[str, float]:
        row = service.store.db.execute(
            "SELECT state, value FROM alerts WHERE rule = 'ferroalloy-fesi-unit-power'"
        ).fetchone()
        return row[0], row[1]

    assert saved() == ("normal", 7375)
    tap(service, 5, 119000, 4, 8)  # 7375 again, then 7250: normal stays normal
    tap(service, 7, 177000, 5, 8)
    assert saved() == ("normal", 7375)  # the file still holds the first value ...
    assert service.alerts[("saf-1", "ferroalloy-fesi-unit-power")].value == 7250  # ... memory the latest
    service.checkpoint()  # closed windows reach the file with the checkpoint, one commit for all
    assert [w[2] for w in service.store.windows("saf-1", "ferroalloy-fesi-unit-power")] == [
        7375,
        7375,
        7250,
    ]  # each closed tap once, for the chart in a mail
    tap(service, 9, 247000, 6, 8)  # 8750: firing is saved
    assert saved() == ("firing", 8750)
    service.close()
    assert (
        build_alert_service(plant_file(tmp_path, smtp, grafana))
        .alerts[("saf-1", "ferroalloy-fesi-unit-power")]
        .state
        == "firing"
    )


def test_a_checkpoint_that_fails_loses_nothing_the_next_one_saves(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint whose commit fails (disk full, database locked) must leave what it was to save
    for the next one: the open windows, the closed taps for the charts, the liveness."""
    service = build_alert_service(plant_file(tmp_path, smtp, grafana))
    tap(service, 0, 0, 1, 8)
    tap(service, 1, 1000, 2, 8)
    tap(service, 3, 60000, 3, 8)  # a closed tap of 7375 kWh/t
    save = service.store.save_progress

    def full_disk(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(service.store, "save_progress", full_disk)
    with pytest.raises(sqlite3.OperationalError):
        service.checkpoint()
    monkeypatch.setattr(service.store, "save_progress", save)
    service.checkpoint()
    assert [w[2] for w in service.store.windows("saf-1", "ferroalloy-fesi-unit-power")] == [7375]
    assert "saf-1" in service.store.kpi_windows() and "saf-1" in service.store.last_good()
    service.close()


def test_restart_neither_loses_nor_resends_a_firing_alert(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi
) -> None:
    plant = plant_file(tmp_path, smtp, grafana)
    first = build_alert_service(plant)
    tap(first, 0, 0, 1, 8)
    tap(first, 1, 1000, 2, 8)
    tap(first, 3, 70000, 3, 8)  # 8625 kWh/t
    asyncio.run(first.deliver())
    first.close()
    second = build_alert_service(plant)  # a restart
    assert second.alerts[("saf-1", "ferroalloy-fesi-unit-power")].state == "firing"
    assert second.alerts[("saf-1", "ferroalloy-fesi-unit-power")].annotation_id == 1
    # the restart continues the open tap (its start and the counter): the first tap after it is
    # valued, 70,000 kWh / 8 t, a breach again: the same alert, no new mail
    tap(second, 6, 140000, 4, 8)
    assert second.transitions == []
    assert second.latest[("saf-1", "ferroalloy-fesi-unit-power")].value == 8750
    tap(second, 10, 200000, 5, 8)  # 7500: resolves the alert fired before the restart
    assert [t.event for t in second.transitions] == ["resolved"]
    asyncio.run(second.deliver())
    assert [m["Subject"][:4] for m in smtp.inbox.messages] == ["【告警】", "【恢复】"]
    assert grafana.annotations[1]["timeEnd"] == (T0 + 10 * HOUR_NS) // 10**6
    second.close()


def test_smtp_down_keeps_mail_in_the_outbox_until_it_is_delivered(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [time.time_ns()]
    service = build_alert_service(plant_file(tmp_path, smtp, grafana), clock=lambda: clock[0])
    smtp.stop()
    grafana.down = True
    tap(service, 0, 0, 1, 8)
    tap(service, 1, 1000, 2, 8)
    tap(service, 3, 70000, 3, 8)
    assert not asyncio.run(service.deliver())
    pending = list((tmp_path / "plantwatch-outbox" / "pending").glob("*.eml"))
    assert len(pending) == 1
    assert len(service.store.notifications(state="pending", notifier="grafana")) == 1
    assert "mail-s3cret" not in caplog.text and TOKEN not in caplog.text
    smtp.start()
    grafana.down = False
    assert not asyncio.run(service.deliver())  # both wait for their retry (5 s, jittered)
    clock[0] += 7 * 10**9
    assert asyncio.run(service.deliver())
    assert len(smtp.inbox.messages) == 1 and not list((tmp_path / "plantwatch-outbox" / "pending").glob("*"))
    assert len(list((tmp_path / "plantwatch-outbox" / "sent").glob("*.eml"))) == 1
    assert (
        len(grafana.annotations) == 1
        and service.store.notifications(state="pending", notifier="grafana") == []
    )
    service.close()


def test_a_wrong_token_is_refused_and_the_call_kept(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi
) -> None:
    os.environ["PW_GRAFANA_TOKEN"] = "glsa_wrong"
    service = build_alert_service(plant_file(tmp_path, smtp, grafana))
    tap(service, 0, 0, 1, 8)
    tap(service, 1, 1000, 2, 8)
    tap(service, 3, 70000, 3, 8)
    assert not asyncio.run(service.deliver())
    assert (
        grafana.annotations == {}
        and len(service.store.notifications(state="pending", notifier="grafana")) == 1
    )
    service.close()


def test_basic_auth_for_a_demo_grafana(
    tmp_path: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`username_env`/`password_env` instead of a token: the compose stack's admin user."""
    api = GrafanaApi("glsa_unused", users={"admin": "grafana-pw"})
    api.start()
    try:
        monkeypatch.setenv("PW_GRAFANA_USER", "admin")
        monkeypatch.setenv("PW_GRAFANA_PASSWORD", "not-it")
        grafana_block = (
            f'grafana: {{url: "{api.url}", username_env: PW_GRAFANA_USER, password_env: PW_GRAFANA_PASSWORD}}'
        )
        config = tmp_path / "plant.yaml"
        config.write_text(
            "plant: {id: works, name: Works}\n"
            'devices: [{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}]\n'
            f"alerts:\n  {grafana_block}\n",
            encoding="utf-8",
        )
        service = build_alert_service(load_plant_config(config))
        tap(service, 0, 0, 1, 8)
        tap(service, 1, 1000, 2, 8)
        tap(service, 3, 70000, 3, 8)
        assert not asyncio.run(service.deliver())  # wrong password: 401, the call is kept
        assert (
            api.annotations == {}
            and len(service.store.notifications(state="pending", notifier="grafana")) == 1
        )
        service.close()
        monkeypatch.setenv("PW_GRAFANA_PASSWORD", "grafana-pw")
        later = time.time_ns() + 10 * 10**9  # past the retry's backoff
        service = build_alert_service(load_plant_config(config), clock=lambda: later)  # restarted, fixed
        assert asyncio.run(service.deliver())
        [annotation] = api.annotations.values()
        assert "device:saf-1" in annotation["tags"]
        service.close()
    finally:
        api.stop()


def test_names_cannot_inject_headers_and_silences_mute_email(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi
) -> None:
    extra = """  targets:
    ferroalloy-fesi-unit-power: {indicator: "power\\r\\nBcc: thief@evil.example"}
"""
    service = build_alert_service(plant_file(tmp_path, smtp, grafana, extra))
    tap(service, 0, 0, 1, 8)
    tap(service, 1, 1000, 2, 8)
    tap(service, 3, 70000, 3, 8)
    asyncio.run(service.deliver())
    [mail] = smtp.inbox.messages
    assert mail["Bcc"] is None and smtp.inbox.envelopes[0][1] == ["duty@eco.example"]
    assert "power Bcc: thief@evil.example" in mail["Subject"]  # shown, flattened onto one line
    now = service.clock()
    service.store.add_silence(
        now + 3600 * 10**9, now, plant="works", device="saf-1", rule=None, comment="reline"
    )
    tap(service, 5, 130000, 4, 8)  # resolved while silenced: recorded, not mailed
    assert [t.event for t in service.transitions] == ["firing", "resolved"] and service.silenced == 1
    asyncio.run(service.deliver())
    assert len(smtp.inbox.messages) == 1
    service.close()


def test_validate_names_the_missing_ferronickel_number(tmp_path: Path) -> None:
    from plantwatch.config.problems import ConfigError

    config = tmp_path / "plant.yaml"
    config.write_text(
        "plant: {id: works, name: W}\ndevices:\n  - {id: saf-3, map: saf_ferronickel, url: 'tcp://127.0.0.1:1'}\n"
        "alerts:\n  targets:\n    mine: {value: 3}\n    steel-eaf-special-energy: {devices: [eaf-9]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_plant_config(config)
    messages = [str(p) for p in caught.value.problems]
    assert f"{config}: alerts.targets.mine.sector: required for a target not in the catalogue" in messages
    config.write_text(config.read_text().replace("    mine: {value: 3}\n", ""))
    with pytest.raises(ConfigError) as caught:
        load_plant_config(config)
    messages = [str(p) for p in caught.value.problems]
    assert messages == [
        f"{config}: alerts.targets.steel-eaf-special-energy.devices: no device 'eaf-9'",
        f"{config}: alerts.targets.ferroalloy-feni-unit-power.value: device saf-3 is a ferronickel device"
        " and the plan gives no number (unit power consumption of ferronickel at the industry's advanced"
        " level): set the plant's value in kWh/t",
    ]


def test_kpi_and_alert_points_reach_influxdb_and_stale_meters_fire_and_resolve(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi, influxdb: InfluxDBServer, influx_db: str
) -> None:
    lines: list[str] = []
    now = [T0 + 20 * HOUR_NS]  # wall clock of the service, moved by the test
    service = build_alert_service(
        plant_file(tmp_path, smtp, grafana), write_lines=lines.extend, clock=lambda: now[0]
    )
    service.handle(result("ghost", T0, active_energy=1.0))  # not a device of this plant: ignored
    assert service.unknown_devices == {"ghost"} and "ghost" not in service.last_good
    tap(service, 0, 0, 1, 8)
    tap(service, 1, 1000, 2, 8)
    tap(service, 3, 70000, 3, 8)  # 8625 kWh/t
    now[0] += 5 * 10**9  # saf-1 polls every 1 s: 5 intervals without a good reading
    service.tick()
    now[0] += 10**9
    tap(service, 4, 71000, 3, 8)  # good data again: one result could be a fluke ...
    assert service.transitions[-1].rule.id == "stale" and service.transitions[-1].event == "firing"
    tap(service, 5, 71500, 3, 8)  # ... two in a row resolve the stale alert
    assert [(t.event, t.rule.id) for t in service.transitions] == [
        ("firing", "ferroalloy-fesi-unit-power"),
        ("firing", "stale"),
        ("resolved", "stale"),
    ]
    assert influxdb.write("\n".join(lines), influx_db) == 204
    [kpi] = influxdb.query(
        'SELECT value, numerator, denominator, "limit", valid, window_start FROM plantwatch_kpi'
        " WHERE kind = 'closed' GROUP BY device, target",
        influx_db,
    )
    assert kpi["tags"] == {"device": "saf-1", "target": "ferroalloy-fesi-unit-power"}
    assert kpi["values"] == [[T0 + 3 * HOUR_NS, 8625.0, 69000.0, 8.0, 7800.0, True, T0 + HOUR_NS]]
    [alerts] = influxdb.query(
        "SELECT rule, event, firing, value FROM (SELECT * FROM plantwatch_alert) ORDER BY time", influx_db
    )
    assert [row[1:] for row in alerts["values"]] == [
        ["ferroalloy-fesi-unit-power", "firing", 1, 8625.0],
        ["stale", "firing", 1, None],
        ["stale", "resolved", 0, None],
    ]
    service.close()


def test_the_running_service_delivers_mail_and_annotations_in_the_background(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi
) -> None:
    plant = plant_file(tmp_path, smtp, grafana)

    async def scenario() -> None:
        service = build_alert_service(plant)
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        tap(service, 0, 0, 1, 8)
        tap(service, 1, 1000, 2, 8)
        tap(service, 3, 70000, 3, 8)  # fires
        tap(service, 5, 130000, 4, 8)  # 7500: resolves
        await wait_until_async(
            lambda: len(smtp.inbox.messages) == 2 and grafana.annotations.get(1, {}).get("timeEnd", 0) > 0,
            10,
            "both mails sent and the annotation closed",
        )
        stop.set()
        await running
        assert service.alerts[("saf-1", "ferroalloy-fesi-unit-power")].annotation_id == 1
        service.close()

    asyncio.run(scenario())
    assert [m["Subject"][:4] for m in smtp.inbox.messages] == ["【告警】", "【恢复】"]
    assert grafana.annotations[1]["timeEnd"] == (T0 + 5 * HOUR_NS) // 10**6
    assert len(grafana.annotations[1]["tags"]) == 5


def test_a_result_that_breaks_the_service_is_still_acknowledged_at_the_next_checkpoint(
    tmp_path: Path, smtp: SmtpServer, grafana: GrafanaApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bus message whose result hits a bug must not stay unacknowledged (the broker would hold
    back everything behind it), and is acknowledged once, by the checkpoint."""
    service = build_alert_service(plant_file(tmp_path, smtp, grafana))
    acked: list[str] = []

    def broken_update(*_args: object) -> object:
        raise RuntimeError("a bug nobody foresaw")

    monkeypatch.setattr(service.engine, "update", broken_update)
    with pytest.raises(RuntimeError):
        service.handle(result("saf-1", T0, active_energy=1.0), ack=lambda: acked.append("broken"))
    assert acked == []  # not before the checkpoint
    service.tick()
    assert acked == ["broken"]
    service.close()
