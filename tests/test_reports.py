"""The monthly compliance report and the daily digest, read from a real InfluxDB holding the KPI
points the alert service writes (docs/data-model.md): the numbers, the words in both languages, the
HTML, the PDF (its text, and a page rendered to PNG), the CSV, the projection of an open month,
and the errors of a bad month, a dead InfluxDB and a missing font."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

import pytest

from plantwatch.app.reports import due, make_report
from plantwatch.cli import main
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.reports.period import month
from plantwatch.reports.render_text import render_text
from plantwatch.reports.sections import sections
from tests.report_data import (
    CJK,
    DECEMBER_TAPS,
    DUST,
    FESI,
    HOUR_NS,
    NOVEMBER_TAPS,
    ZONE,
    fill,
    local_ns,
    november_dust,
)
from tests.services.influxdb import InfluxDBServer


@pytest.fixture(scope="module")
def plant(influxdb: InfluxDBServer, tmp_path_factory: pytest.TempPathFactory) -> Plant:
    """A plant whose InfluxDB holds November (closed) and ten days of December (open)."""
    fill(influxdb, "reports")
    folder = tmp_path_factory.mktemp("reports")
    config = folder / "plant.yaml"
    config.write_text(
        f"""
plant: {{id: works, name: 西宁铁合金厂, name_en: Xining Ferroalloy Works}}
devices:
  - {{id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}}
  - {{id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:1", unit: 4, interval: 1m}}
influx: {{url: "{influxdb.url}", api: v1, database: reports}}
alerts:
  recipients:
    - {{name: 省生态环境厅, email: regulator@eco.example, lang: zh}}
""",
        encoding="utf-8",
    )
    return load_plant_config(config)


def test_month_numbers_are_the_plans_arithmetic(plant: Plant) -> None:
    report = make_report(plant, month("2026-11", ZONE), now_ns=local_ns(2026, 12, 2))
    (row,) = report.targets
    energy = sum(t.energy for t in NOVEMBER_TAPS)
    product = sum(t.weight for t in NOVEMBER_TAPS)
    assert (row.device, row.target.id) == ("saf-1", FESI)
    assert row.energy == pytest.approx(energy) and row.product == pytest.approx(product)
    assert row.value == pytest.approx(energy / product)  # 7,760 kWh/t: Σ energy ÷ Σ product
    assert row.value == pytest.approx(7760)
    assert (row.windows, row.windows_over, row.days_over) == (60, 4, 2)
    assert row.worst == pytest.approx(8600)
    assert row.compliant is True
    assert row.projection is None  # a closed month is not projected
    assert len(row.daily) == 30 and row.daily[9].value == pytest.approx(8600)
    assert row.daily[0].start_ns == local_ns(2026, 11, 1) and row.daily[-1].end_ns == local_ns(2026, 12, 1)

    (dust,) = report.dust
    _, valid = november_dust()
    assert (dust.hours, dust.valid_hours, dust.breach_hours) == (720, 710, 3)
    assert dust.highest == pytest.approx(60.5)
    assert dust.mean == pytest.approx(sum(valid) / len(valid))
    assert report.availability == {"saf-1": pytest.approx(600 / 720), "stack-1": pytest.approx(1.0)}
    fired = {(f.device, f.rule): f.count for f in report.fired}
    assert fired == {("saf-1", FESI): 2, ("stack-1", DUST): 2}  # one at 1 Dec 00:00: November's last hour


def test_an_open_month_is_projected_at_the_last_weeks_rate(plant: Plant) -> None:
    now = local_ns(2026, 12, 11)
    report = make_report(plant, month("2026-12", ZONE), now_ns=now)
    (row,) = report.targets
    energy, product = sum(t.energy for t in DECEMBER_TAPS), sum(t.weight for t in DECEMBER_TAPS)
    recent = [t for t in DECEMBER_TAPS if t.end_ns >= now - 7 * 24 * HOUR_NS]
    week_ns, remaining = 7 * 24 * HOUR_NS, local_ns(2027, 1, 1) - now
    projected = (energy + sum(t.energy for t in recent) / week_ns * remaining) / (
        product + sum(t.weight for t in recent) / week_ns * remaining
    )
    assert report.is_open
    assert row.value == pytest.approx(energy / product)  # 7,940: over the target so far
    assert row.breaches(row.value)
    assert row.projection == pytest.approx(projected)  # ~7,777: the month would close within it
    assert not row.breaches(row.projection)
    text = render_text(sections(report, "en", ZONE), "en")
    assert (
        "saf-1 ferrosilicon unit power consumption: at the last 7 days' rate the month closes at "
        f"{projected:,.0f} kWh/t (target ≤ 7,800 kWh/t)"
    ) in text
    assert "Data up to: 2026-12-11 00:00:00 (UTC+08:00); the period is still open" in text


def test_report_html_in_both_languages(plant: Plant, tmp_path: Path) -> None:
    out = tmp_path / "report-zh.html"
    assert main(["report", "--config", str(plant.path), "--month", "2026-11", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "西宁铁合金厂能耗与排放合规月报（2026年11月）" in html
    assert "2026-11-01 00:00:00 至 2026-12-01 00:00:00（北京时间，UTC+08:00）" in html
    assert "7,760 kWh/t" in html and "776,000 kWh ÷ 100.00 t" not in html
    assert "465,600 kWh ÷ 60.00 t" not in html
    assert f"{sum(t.energy for t in NOVEMBER_TAPS):,.0f} kWh ÷ 600.00 t" in html
    assert "4 / 60" in html and "达标" in html and "超标" in html
    assert "青海省《关于加快我省铁合金行业兼并重组和结构调整实施方案》（2013年）" in html
    assert html.count('src="data:image/png;base64,') == 2  # daily per-tonne bars, hourly dust
    assert not re.search(
        r"[A-Za-z]{4,}",
        re.sub(
            r"<[^>]+>|data:image[^\"]+|https?://\S+|kWh|works|stack|saf|sans-serif|Noto|Sans|CJK|Microsoft|YaHei|HJ",
            "",
            html.split("<body>")[1],
        ),
    )

    out_en = tmp_path / "report-en.html"
    argv = ["report", "--config", str(plant.path), "--month", "2026-11", "--lang", "en", "--out", str(out_en)]
    assert main(argv) == 0
    english = out_en.read_text(encoding="utf-8")
    assert "Xining Ferroalloy Works: energy and emissions compliance report, November 2026" in english
    assert "2026-11-01 00:00:00 to 2026-12-01 00:00:00 (UTC+08:00)" in english
    assert "ferrosilicon unit power consumption (per tap)" in english
    assert "(《关于加快我省铁合金行业兼并重组和结构调整实施方案》)" in english  # the original beside it
    chinese = CJK.findall(re.sub(r"《[^》]*》", "", english))
    assert chinese == []  # no other Chinese in an English report


def test_report_pdf_text_and_a_rendered_page(plant: Plant, tmp_path: Path) -> None:
    import numpy
    import pypdfium2
    from pypdf import PdfReader

    out = tmp_path / "report.pdf"
    argv = ["report", "--config", str(plant.path), "--month", "2026-11", "--format", "pdf", "--out", str(out)]
    assert main(argv) == 0
    text = "\n".join(page.extract_text() for page in PdfReader(out).pages)
    flat = re.sub(r"\s+", "", text)
    assert "西宁铁合金厂能耗与排放合规月报（2026年11月）" in flat
    assert "2026-11-0100:00:00至2026-12-0100:00:00（北京时间，UTC+08:00）" in flat
    assert "7,760kWh/t" in flat and "4/60" in flat
    assert "60.5mg/m³" in flat  # the highest hourly dust average
    assert "关于加快我省铁合金行业兼并重组和结构调整实施方案" in flat

    pdf = pypdfium2.PdfDocument(str(out))
    try:
        image = pdf[0].render(scale=2).to_pil().convert("RGB")
    finally:
        pdf.close()
    assert image.size[0] == 1684 and 1188 <= image.size[1] <= 1192  # A4 landscape, 297 x 210 mm
    r, g, b = (numpy.asarray(image).astype(int)[:, :, i] for i in range(3))
    dark = int(((r + g + b) < 200).sum())
    red = int(((r > 120) & (r - g > 60) & (r - b > 60)).sum())
    assert dark > 2000  # text was drawn, not a blank page
    assert red > 20  # the dust verdict 超标 is set in red


def test_report_csv_is_for_machines(plant: Plant, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    argv = ["report", "--config", str(plant.path), "--month", "2026-11", "--format", "csv", "--out", str(out)]
    assert main(argv) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    by_target = {r["target"]: r for r in rows}
    assert float(by_target[FESI]["value"]) == pytest.approx(7760)
    assert by_target[FESI]["windows_over"] == "4" and by_target[FESI]["days_over"] == "2"
    assert by_target[FESI]["indicator"] == "硅铁单位电耗"
    assert by_target[DUST]["breach_hours"] == "3" and by_target[DUST]["valid_hours"] == "710"
    assert float(by_target[FESI]["availability"]) == pytest.approx(600 / 720, abs=1e-5)


def test_bad_month_dead_influxdb_and_missing_font_say_so(
    plant: Plant, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["report", "--config", str(plant.path), "--month", "2026-13"]) == 1
    assert "'2026-13' is not a month such as 2026-11" in capsys.readouterr().err
    assert main(["report", "--config", str(plant.path), "--month", "2026-11", "--again"]) == 1
    assert "--again goes with --send" in capsys.readouterr().err

    dead = tmp_path / "dead.yaml"
    dead.write_text(
        re.sub(
            r'url: "http://127.0.0.1:\d+"',
            'url: "http://127.0.0.1:9"',
            plant.path.read_text(encoding="utf-8"),
        ),
        encoding="utf-8",
    )
    assert (
        main(["report", "--config", str(dead), "--month", "2026-11", "--out", str(tmp_path / "x.html")]) == 1
    )
    err = capsys.readouterr().err
    assert "cannot reach InfluxDB at http://127.0.0.1:9" in err and str(dead) in err

    monkeypatch.setenv("PLANTWATCH_CJK_FONT", str(tmp_path / "no-such-font.ttf"))
    argv = [
        "report",
        "--config",
        str(plant.path),
        "--month",
        "2026-11",
        "--format",
        "pdf",
        "--out",
        str(tmp_path / "x.pdf"),
    ]
    assert main(argv) == 1
    assert "PLANTWATCH_CJK_FONT" in capsys.readouterr().err and not (tmp_path / "x.pdf").exists()


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 12, 5, 7, 59), []),
        (datetime(2026, 12, 5, 8, 0), [("digest", "2026-12-04")]),
        (datetime(2026, 12, 1, 7, 0), []),
        (datetime(2026, 12, 1, 9, 0), [("digest", "2026-11-30"), ("report", "2026-11")]),
        (datetime(2026, 12, 3, 7, 0), [("report", "2026-11")]),  # catch-up after a stop on the 1st
        (datetime(2026, 12, 3, 9, 0), [("digest", "2026-12-02"), ("report", "2026-11")]),
        (datetime(2026, 12, 4, 9, 0), [("digest", "2026-12-03")]),  # too late for last month's
        (datetime(2027, 1, 1, 8, 30), [("digest", "2026-12-31"), ("report", "2026-12")]),
    ],
)
def test_documents_fall_due_on_the_plant_calendar(local: datetime, expected: list[tuple[str, str]]) -> None:
    assert due(local.replace(tzinfo=ZONE), "08:00", monthly=True) == expected
