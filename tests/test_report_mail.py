"""The monthly report and the daily digest as recipients get them (a real SMTP server, a real
InfluxDB): each recipient's language, the numbers, the charts inline, the PDF and CSV attached;
sent once per recipient across restarts, again only when asked; scheduled on the plant's calendar,
and retried when InfluxDB cannot be read."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from plantwatch.alerts.setup import build_alert_service
from plantwatch.app.reports import RETRY_NS, build_document, send_documents
from plantwatch.cli import main
from plantwatch.config.plant import Plant, load_plant_config
from tests.alert_helpers import plain_text
from tests.report_data import CJK, ZONE, fill, local_ns
from tests.services.influxdb import InfluxDBServer
from tests.services.smtp import SmtpServer
from tests.waiting import wait_until_async

DB = "report_mail"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path / "smtp")
    server.start()
    yield server
    server.stop()


def write_plant(folder: Path, influx_url: str, smtp: SmtpServer) -> Plant:
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁铁合金厂, name_en: Xining Ferroalloy Works}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}}
  - {{id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:1", unit: 4, interval: 1m}}
influx: {{url: "{influx_url}", api: v1, database: {DB}}}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: none, from: reports@works.example}}
  recipients:
    - {{name: 省生态环境厅 值班, email: regulator@eco.example, lang: zh, role: regulator}}
    - {{name: Plant manager, email: manager@works.example, lang: en, role: plant}}
""",
        encoding="utf-8",
    )
    return load_plant_config(config)


@pytest.fixture
def plant(influxdb: InfluxDBServer, tmp_path: Path, smtp: SmtpServer) -> Plant:
    fill(influxdb, DB)
    return write_plant(tmp_path, influxdb.url, smtp)


def mails(smtp: SmtpServer) -> dict[str, list[EmailMessage]]:
    out: dict[str, list[EmailMessage]] = {}
    for (_, [to]), mail in zip(smtp.inbox.envelopes, smtp.inbox.messages, strict=True):
        assert isinstance(mail, EmailMessage)
        out.setdefault(to, []).append(mail)
    return out


def test_monthly_report_mail_in_each_recipients_language_with_pdf_and_csv(
    plant: Plant, smtp: SmtpServer
) -> None:
    from pypdf import PdfReader

    service = build_alert_service(plant)
    try:
        document = build_document(plant, "report", "2026-11", local_ns(2026, 12, 1, 8))
        assert service.publish(document) == 2
        assert asyncio.run(service.deliver())
    finally:
        service.close()
    received = mails(smtp)
    [zh] = received["regulator@eco.example"]
    [en] = received["manager@works.example"]
    assert str(zh["Subject"]) == "西宁铁合金厂能耗与排放合规月报（2026年11月）"
    assert (
        str(en["Subject"]) == "Xining Ferroalloy Works: energy and emissions compliance report, November 2026"
    )
    assert zh["X-Plantwatch-Document"] == "report:2026-11"
    assert str(zh["Date"]).endswith("+0800")  # in the plant's zone
    text = plain_text(zh)
    assert "本期值：7,760 kWh/t" in text and "超标窗口/窗口数：4 / 60" in text
    assert "计算：4,656,000 kWh ÷ 600.00 t" in text
    assert "超标小时：3" in text and "有效小时：710" in text and "最高小时均值：60.5 mg/m³" in text
    assert "2026-11-01 00:00:00 至 2026-12-01 00:00:00（北京时间，UTC+08:00）" in text
    english = plain_text(en)
    assert "Value: 7,760 kWh/t" in english and "Breach hours: 3" in english
    assert CJK.findall(re.sub(r"《[^》]*》", "", english)) == []

    html = zh.get_body(("html",))
    assert html is not None
    images = {part["Content-ID"].strip("<>") for part in zh.walk() if part.get_content_type() == "image/png"}
    assert images == {"saf-1-ferroalloy-fesi-unit-power", "stack-1-ferroalloy-dust"}
    for cid in images:
        assert f"cid:{cid}" in html.get_content()
    attachments = {part.get_filename(): part for part in zh.iter_attachments()}
    assert set(attachments) == {"plantwatch-works-2026-11-zh.pdf", "plantwatch-works-2026-11-zh.csv"}
    pdf = PdfReader(io.BytesIO(attachments["plantwatch-works-2026-11-zh.pdf"].get_content()))
    assert "7,760kWh/t" in re.sub(r"\s+", "", pdf.pages[0].extract_text())
    csv_text = attachments["plantwatch-works-2026-11-zh.csv"].get_content()
    assert "ferroalloy-fesi-unit-power" in csv_text and "硅铁单位电耗" in csv_text


def test_daily_digest_reports_the_day(plant: Plant, smtp: SmtpServer) -> None:
    document = build_document(plant, "digest", "2026-11-10", local_ns(2026, 11, 11, 8))
    zh, en = document.editions["zh"], document.editions["en"]
    assert zh.subject == "西宁铁合金厂能耗与排放日报（2026年11月10日）"
    assert en.subject == "Xining Ferroalloy Works: energy and emissions digest, 10 November 2026"
    assert "本期值：8,600 kWh/t" in zh.text and "结论：超标" in zh.text  # both taps that day at 8,600
    assert "超标窗口/窗口数：2 / 2" in zh.text
    assert "硅铁单位电耗 · 每次出铁；级别：警告；次数：1" in zh.text  # the alert that fired that day
    assert "Value: 8,600 kWh/t" in en.text and "Verdict: exceeded" in en.text
    assert zh.attachments == [] and en.attachments == []


def test_a_document_goes_once_per_recipient_and_again_only_when_asked(
    plant: Plant, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    this_month = datetime.now(ZONE).strftime("%Y-%m")
    assert main(["report", "--config", str(plant.path), "--month", this_month, "--send"]) == 1
    assert f"{this_month} has not ended yet" in capsys.readouterr().err  # the complete one goes later
    argv = ["report", "--config", str(plant.path), "--month", "2026-11", "--send"]
    assert main(argv) == 0
    assert "report:2026-11: 2 mail(s) logged; 0 waiting for delivery" in capsys.readouterr().err
    assert main(argv) == 0  # a second run (or a restart of the service): nobody gets it twice
    assert "report:2026-11: 0 mail(s) logged" in capsys.readouterr().err
    assert len(smtp.inbox.messages) == 2
    assert main([*argv, "--again"]) == 0  # re-sent on purpose
    assert len(smtp.inbox.messages) == 4
    outbox = plant.path.parent / "plantwatch-outbox" / "sent"
    assert len(list(outbox.glob("*-works-report.eml"))) == 4


def test_the_scheduler_sends_due_documents_once_and_retries_when_influxdb_is_down(
    influxdb: InfluxDBServer, tmp_path: Path, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    fill(influxdb, DB)
    dead = write_plant(tmp_path, "http://127.0.0.1:9", smtp)  # nothing listens on port 9
    now = [local_ns(2026, 12, 1, 9)]  # the 1st, after 08:00: yesterday's digest and November's report

    async def run(plant: Plant) -> list[str]:
        service = build_alert_service(plant, clock=lambda: now[0])
        stop = asyncio.Event()
        task = asyncio.create_task(
            send_documents(plant, service, stop, clock=lambda: now[0], check_every=0.05)
        )
        try:
            keys = ("digest:2026-11-30", "report:2026-11")
            await wait_until_async(
                lambda: all(service.published(k) for k in keys) or "cannot be made" in caplog.text, 60
            )
            await asyncio.sleep(0.2)  # more turns of the loop: still nothing sent twice
            return [n.rule for n in service.store.notifications()]
        finally:
            stop.set()
            await task
            service.close()

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(run(dead)) == []
    assert "digest:2026-11-30: cannot be made: cannot reach InfluxDB at http://127.0.0.1:9" in caplog.text
    assert "object at 0x" not in caplog.text

    caplog.clear()
    alive = write_plant(tmp_path, influxdb.url, smtp)  # the same state file: InfluxDB is back
    now[0] += RETRY_NS
    logged = asyncio.run(run(alive))
    assert sorted(logged) == ["digest:2026-11-30"] * 2 + ["report:2026-11"] * 2
    assert asyncio.run(run(alive)) == logged  # a restart: nothing logged again
