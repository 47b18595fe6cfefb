"""Mails as regulators and plant staff receive them (a real SMTP server, parsed back): one language
per mail, plans cited as documents, times with their offset, the arithmetic labelled, the dust
hour's valid minutes, flags and O2 correction, the early warning named for what it is, an HTML
alternative with a chart, and routing by role."""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from plantwatch.alerts.service import AlertService
from plantwatch.alerts.setup import build_alert_service
from plantwatch.config.plant import load_plant_config
from tests.alert_helpers import HOUR_NS, MINUTE_NS, T0, plain_text, result
from tests.services.smtp import SmtpServer

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
# What a zh mail may hold besides Chinese: ids, numbers, unit symbols, URLs, the UTC offset, and
# the symbols of the O2 correction formula.
ALLOWED_IN_ZH = re.compile(
    r"https?://\S+|works|saf-1|stack-1|kWh/t|kWh|mg/m³|UTC\+08:00|O₂实|O₂|C折|C实|（[CMFD]）|\b[t]\b"
)


class Clock:
    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def plant_service(folder: Path, smtp: SmtpServer, clock: Clock) -> AlertService:
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁铁合金厂, name_en: Xining Ferroalloy Works}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}}
  - {{id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:1", unit: 4, interval: 1m}}
event_time: {{max_skew: 30d}}
alerts:
  o2_reference: {{stack-1: 11}}
  smtp: {{host: 127.0.0.1, port: {smtp.port}, security: starttls, ca_file: {smtp.certs["ca"]},
         username_env: PW_SMTP_USER, password_env: PW_SMTP_PASSWORD, from: alerts@works.example}}
  recipients:
    - {{name: 省生态环境厅 值班, email: regulator@eco.example, lang: zh, role: regulator}}
    - {{name: 能源管理部, email: energy@works.example, lang: zh, role: plant}}
    - {{name: Plant manager, email: manager@works.example, lang: en, role: plant}}
  dashboard_url: http://grafana.works.example/d/plant-overview
""",
        encoding="utf-8",
    )
    return build_alert_service(load_plant_config(config), clock=clock)


def tap(service: AlertService, clock: Clock, hour: float, energy: float, count: int, weight: float) -> None:
    ts = T0 + int(hour * HOUR_NS)
    clock.now_ns = ts + 5 * 10**9
    service.handle(result("saf-1", ts, active_energy=energy, tap_counter=count, tap_weight=weight))


def cems_hour(service: AlertService, clock: Clock, start_ns: int, dust: float) -> None:
    """An hour of minute samples at O2 13 %: 50 normal minutes, 5 in calibration, 5 in maintenance."""
    for minute in range(60):
        flag = "C" if minute < 5 else "M" if minute < 10 else "N"
        ts = start_ns + minute * MINUTE_NS
        clock.now_ns = ts + 5 * 10**9
        service.handle(result("stack-1", ts, dust=dust, o2=13.0, data_flag=flag))


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[EmailMessage]]]:
    """Every mail each recipient got: a ferrosilicon tap breach and its recovery, a dust hour over
    the limit (O2-corrected) with its early warning, and the hour after it (built once: the tests
    read the same mails)."""
    folder = tmp_path_factory.mktemp("mail-words")
    smtp = SmtpServer(folder / "smtp", users={"plantwatch": "mail-s3cret"}, starttls=True)
    smtp.start()
    os.environ.update(PW_SMTP_USER="plantwatch", PW_SMTP_PASSWORD="mail-s3cret")
    try:
        yield received(folder, smtp)
    finally:
        for key in ("PW_SMTP_USER", "PW_SMTP_PASSWORD"):
            os.environ.pop(key, None)
        smtp.stop()


def received(folder: Path, smtp: SmtpServer) -> dict[str, list[EmailMessage]]:
    clock = Clock(T0)
    service = plant_service(folder, smtp, clock)
    tap(service, clock, 0, 0, 1, 8)
    tap(service, clock, 2, 1000, 2, 8)
    tap(service, clock, 4, 70000, 3, 8)  # 69,000 kWh / 8 t = 8,625 kWh/t: fires
    tap(service, clock, 6, 141000, 4, 8)  # 8,875: still firing, the peak
    tap(service, clock, 8, 201000, 5, 8)  # 7,500: inside the 2 % margin, resolves
    hour = T0 + 10 * HOUR_NS
    cems_hour(service, clock, hour, 44.0)  # 44 x (21 - 11) / (21 - 13) = 55.0 mg/m³: over 50
    cems_hour(service, clock, hour + HOUR_NS, 20.0)  # 25.0: resolves
    cems_hour(service, clock, hour + 2 * HOUR_NS, 20.0)  # its watermark closes the hour before
    assert asyncio.run(service.deliver())
    service.close()
    mails: dict[str, list[EmailMessage]] = {}
    for (_, [to]), mail in zip(smtp.inbox.envelopes, smtp.inbox.messages, strict=True):
        assert isinstance(mail, EmailMessage)
        mails.setdefault(to, []).append(mail)
    return mails


def by_subject(mails: list[EmailMessage], *words: str) -> EmailMessage:
    [mail] = [m for m in mails if all(w in str(m["Subject"]) for w in words)]
    return mail


def latin_words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]+", ALLOWED_IN_ZH.sub(" ", text))


def test_zh_mails_are_entirely_chinese_and_en_mails_entirely_english(
    inbox: dict[str, list[EmailMessage]],
) -> None:
    zh, en = inbox["energy@works.example"], inbox["manager@works.example"]
    assert len(zh) == len(en) == 6  # tap fired and resolved, dust hour fired and resolved, early twice
    for mail in zh:
        for text in (str(mail["Subject"]), plain_text(mail)):
            assert latin_words(text) == [], text
            assert "CST" not in text and "tap" not in text
    for mail in en:
        for text in (str(mail["Subject"]), plain_text(mail)):
            # the plan's Chinese title stands beside its translation; nothing else is Chinese
            outside_titles = re.sub(r"《[^》]*》", "", text)
            assert not CJK.search(outside_titles), text


def test_plans_are_cited_as_documents(inbox: dict[str, list[EmailMessage]]) -> None:
    zh = plain_text(by_subject(inbox["energy@works.example"], "【告警】", "硅铁"))
    assert (
        "依据：青海省《关于加快我省铁合金行业兼并重组和结构调整实施方案》（2013年）二（一）3："
        "“硅铁单位电耗降至7800度以下”"
    ) in zh
    en = plain_text(by_subject(inbox["manager@works.example"], "[FIRING]", "ferrosilicon"))
    assert (
        "Source: Qinghai Province (2013), Implementation Plan on Accelerating Mergers, Acquisitions and"
        " Structural Adjustment of the Ferroalloy Industry in Our Province"
        " (《关于加快我省铁合金行业兼并重组和结构调整实施方案》), Part II (1) item 3:"
        ' "unit power consumption of ferrosilicon reduced to below 7,800 kWh"'
    ) in en
    for mail in [*inbox["energy@works.example"], *inbox["manager@works.example"]]:
        assert "seed" not in plain_text(mail) and "missing" not in plain_text(mail)


def local(hour: float) -> str:
    return (datetime.fromtimestamp(T0 / 1e9, timezone(timedelta(hours=8))) + timedelta(hours=hour)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def test_times_carry_their_offset_and_the_date_header_agrees(inbox: dict[str, list[EmailMessage]]) -> None:
    firing = by_subject(inbox["energy@works.example"], "【告警】", "硅铁")
    text = plain_text(firing)
    # the breaching tap's window: from the previous tap to this one, and when it was seen
    assert f"统计窗口：每次出铁，{local(2)} 至 {local(4)}（北京时间，UTC+08:00）" in text
    assert f"发现时间：{(local(4))[:-2]}05（北京时间，UTC+08:00）" in text
    date = parsedate_to_datetime(str(firing["Date"]))
    assert date.utcoffset() == timedelta(hours=8)
    assert date.strftime("%Y-%m-%d %H:%M:%S") == local(4)[:-2] + "05"  # the body's day and time
    en = plain_text(by_subject(inbox["manager@works.example"], "[FIRING]", "ferrosilicon"))
    assert f"Window: per tap, {local(2)} to {local(4)} (UTC+08:00)" in en
    for mail in [*inbox["energy@works.example"], *inbox["manager@works.example"]]:
        body = plain_text(mail)
        for found in re.finditer(rf"{TIME}(?! (至|to) )", body):  # every time (or span) says its zone
            assert body[found.end() :].startswith(("（北京时间，UTC+08:00）", " (UTC+08:00)")), body


def test_resolved_mails_say_when_how_long_and_the_peak(inbox: dict[str, list[EmailMessage]]) -> None:
    zh = plain_text(by_subject(inbox["energy@works.example"], "【恢复】", "硅铁"))
    for expected in (
        f"超标开始：{local(2)}（北京时间，UTC+08:00）",
        f"恢复时间：{local(8)}（北京时间，UTC+08:00）",
        "持续时长：6小时0分钟",
        "峰值：8,875 kWh/t",
        "当前值：7,500 kWh/t",
    ):
        assert expected in zh, (expected, zh)
    en = plain_text(by_subject(inbox["manager@works.example"], "[RESOLVED]", "ferrosilicon"))
    assert "Duration: 6 h 0 min" in en and "Peak: 8,875 kWh/t" in en


def test_the_arithmetic_is_labelled(inbox: dict[str, list[EmailMessage]]) -> None:
    zh = plain_text(by_subject(inbox["energy@works.example"], "【告警】", "硅铁"))
    assert "计算：能耗 69,000 kWh ÷ 产量 8.00 t = 8,625 kWh/t" in zh
    en = plain_text(by_subject(inbox["manager@works.example"], "[FIRING]", "ferrosilicon"))
    assert "Calculation: energy 69,000 kWh ÷ production 8.00 t = 8,625 kWh/t" in en
    assert "\n= " not in en  # nothing unlabelled


def test_the_dust_hour_shows_its_valid_minutes_flags_and_o2_correction(
    inbox: dict[str, list[EmailMessage]],
) -> None:
    mail = by_subject(inbox["regulator@eco.example"], "【告警】", "粉尘排放浓度小时均值")
    assert str(mail["Subject"]).strip() == (
        "【告警】 works stack-1：粉尘排放浓度小时均值 55.0 mg/m³（目标 ≤ 50.0 mg/m³）"
    )
    zh = plain_text(mail)
    for expected in (
        "小时均值：55.0 mg/m³（已按基准氧含量折算）",
        "目标：≤ 50.0 mg/m³",
        "有效分钟：50/60（按数据标记剔除：校准（C）5、维护（M）5）",
        "氧含量折算：实测浓度均值 44.0 mg/m³，实测氧含量均值 13.0%，基准氧含量 11.0%，"
        "每分钟 C折 = C实 × (21 − 11.0) ÷ (21 − O₂实)",
        "级别：严重",
    ):
        assert expected in zh, (expected, zh)
    en = plain_text(by_subject(inbox["manager@works.example"], "[FIRING]", "hourly average"))
    assert "Hourly average: 55.0 mg/m³ (corrected to the reference O₂)" in en
    assert "Valid minutes: 50/60 (excluded by data flag: calibration (C) 5, maintenance (M) 5)" in en
    assert "mg/m3" not in en and "mg/m3" not in zh


def test_the_early_warning_is_named_for_what_it_is(inbox: dict[str, list[EmailMessage]]) -> None:
    zh = by_subject(inbox["energy@works.example"], "【预警】")
    assert "粉尘排放浓度滚动15分钟均值" in str(zh["Subject"]) and "预警线 ≤ 40.0 mg/m³" in str(zh["Subject"])
    assert "预警线：40.0 mg/m³（限值 50.0 mg/m³ 的 80%）" in plain_text(zh)
    en = by_subject(inbox["manager@works.example"], "[EARLY WARNING]")
    text = plain_text(en)
    assert "Early-warning line: 40.0 mg/m³ (80% of the 50.0 mg/m³ limit)" in text
    assert "Window: rolling 15-minute average, " in text and "hourly" not in text and "1h" not in text


def test_regulators_get_what_the_plans_judge_plant_staff_everything(
    inbox: dict[str, list[EmailMessage]],
) -> None:
    subjects = sorted(str(m["Subject"]).split(" ")[0] for m in inbox["regulator@eco.example"])
    assert subjects == ["【告警】", "【恢复】"]  # the dust hour: no tap, no early warning
    assert all("粉尘排放浓度小时均值" in str(m["Subject"]) for m in inbox["regulator@eco.example"])
    assert len(inbox["energy@works.example"]) == 6


def test_the_html_alternative_shows_the_same_words_and_a_chart(
    inbox: dict[str, list[EmailMessage]],
) -> None:
    from PIL import Image

    mail = by_subject(inbox["energy@works.example"], "【告警】", "硅铁")
    html = mail.get_body(preferencelist=("html",))
    assert html is not None
    content = html.get_content()  # type: ignore[attr-defined]
    assert "计算" in content and "8,625 kWh/t" in content and "北京时间" in content
    [cid] = re.findall(r'src="cid:([^"]+)"', content)
    [image] = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == f"<{cid}>"
    picture = Image.open(io.BytesIO(image.get_content()))  # type: ignore[attr-defined]
    assert picture.size == (640, 260)
    pixels: list[tuple[int, int, int]] = list(picture.convert("RGB").get_flattened_data())  # type: ignore[arg-type]
    red = sum(1 for r, g, b in pixels if r > 150 and g < 90 and b < 90)
    assert red > 20  # the breaching taps are drawn in red
    assert plain_text(mail).count("\n") >= 10  # the plain part stays complete on its own
