#!/usr/bin/env python3
"""Regenerate the sample images under docs/images/ (linked from the README): a dust breach mail as a
regulator (zh) and a plant manager (en) receive it, and the first page of a monthly report.

Everything comes from the real pipeline: the alert service fed an hour of CEMS minutes, its mails
taken from the outbox with their charts drawn; the report read from a throwaway influxd holding the
test data of tests/report_data.py. Needs the test extra (pypdfium2) and influxd on PATH.
Usage (from the repository root): python scripts/sample_images.py
"""

from __future__ import annotations

import io
import sys
import tempfile
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from plantwatch.alerts.notifiers.email import EmailNotifier  # noqa: E402
from plantwatch.alerts.setup import build_alert_service  # noqa: E402
from plantwatch.app.reports import make_report  # noqa: E402
from plantwatch.config.plant import load_plant_config  # noqa: E402
from plantwatch.reports.charts import draw  # noqa: E402
from plantwatch.reports.period import month  # noqa: E402
from plantwatch.reports.render_pdf import cjk_font, render_pdf  # noqa: E402
from plantwatch.reports.sections import sections  # noqa: E402
from tests.alert_helpers import HOUR_NS, MINUTE_NS, result  # noqa: E402
from tests.report_data import ZONE, fill, local_ns  # noqa: E402
from tests.services.influxdb import InfluxDBServer  # noqa: E402

OUT = REPO / "docs" / "images"
PLANT = """
plant: {id: works, name: 西宁铁合金厂, name_en: Xining Ferroalloy Works}
devices:
  - {id: saf-1, map: saf_ferrosilicon, url: "tcp://127.0.0.1:1"}
  - {id: stack-1, map: dust_cems, url: "tcp://127.0.0.1:1", unit: 4, interval: 1m}
event_time: {max_skew: 3650d}
alerts:
  o2_reference: {stack-1: 11}
  recipients:
    - {name: 省生态环境厅 值班, email: regulator@eco.example, lang: zh, role: regulator}
    - {name: Plant manager, email: manager@works.example, lang: en, role: plant}
  dashboard_url: http://grafana.works.example/d/plant-overview
"""


def dust_mails(folder: Path) -> dict[str, EmailMessage]:
    """The dust-hour breach mail each recipient gets, chart drawn."""
    (folder / "plant.yaml").write_text(PLANT, encoding="utf-8")
    first = local_ns(2026, 11, 24, 4)
    now = [first]
    service = build_alert_service(load_plant_config(folder / "plant.yaml"), clock=lambda: now[0])
    raw = (22.0, 25.0, 27.0, 30.0, 33.0, 36.0, 44.0, 20.0)  # mg/m³ at 13 % O2; x 1.25 corrected
    for start, dust in ((first + i * HOUR_NS, value) for i, value in enumerate(raw)):
        for minute in range(60):
            flag = "C" if minute < 5 else "M" if minute < 10 else "N"
            ts = start + minute * MINUTE_NS
            now[0] = ts + 5 * 10**9
            service.handle(result("stack-1", ts, dust=dust, o2=13.0, data_flag=flag))
    notifier = next(n for n in service.notifiers if isinstance(n, EmailNotifier))
    mails = {}
    for notification in service.store.notifications(notifier="email"):
        mail = message_from_bytes(notification.payload, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        if notification.rule == "ferroalloy-dust" and notification.event == "firing":
            mails[notification.destination] = notifier.drawn(mail)
    service.close()
    return mails


def mail_png(mail: EmailMessage) -> Image.Image:
    """The mail as a mail client shows it: headers, the plain text, the chart below."""
    import pypdfium2
    from fpdf import FPDF
    from matplotlib import get_data_path

    latin = Path(get_data_path()) / "fonts" / "ttf"
    pdf = FPDF(unit="mm", format=(170, 300))
    pdf.set_margins(8, 8)
    pdf.add_font("latin", "", str(latin / "DejaVuSans.ttf"))
    pdf.add_font("latin", "B", str(latin / "DejaVuSans-Bold.ttf"))
    pdf.add_font("cjk", "", str(cjk_font()))
    pdf.set_fallback_fonts(["cjk"], exact_match=False)
    pdf.add_page()
    for header in ("From", "To", "Date", "Subject"):
        pdf.set_font("latin", "B", 8.5)
        pdf.cell(16, 4.6, f"{header}:")
        pdf.set_font("latin", "", 8.5)
        pdf.multi_cell(0, 4.6, str(mail[header]), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.line(8, pdf.get_y(), 162, pdf.get_y())
    pdf.ln(2)
    body = mail.get_body(("plain",))
    assert body is not None
    pdf.set_font("latin", "", 8.5)
    pdf.multi_cell(0, 4.6, body.get_content(), align="L", new_x="LMARGIN", new_y="NEXT")
    for part in mail.walk():
        if part.get_content_type() == "image/png":
            pdf.ln(2)
            pdf.image(Image.open(io.BytesIO(part.get_content())).convert("RGB"), w=150)
    height = pdf.get_y() + 8
    document = pypdfium2.PdfDocument(bytes(pdf.output()))
    image = document[0].render(scale=2.2).to_pil()
    document.close()
    return image.crop((0, 0, image.width, int(height / 300 * image.height)))


def report_png(folder: Path) -> Image.Image:
    """Page 1 of November's report (zh), read from a throwaway InfluxDB."""
    import pypdfium2

    server = InfluxDBServer(folder / "influxdb")
    server.start()
    try:
        fill(server, "plant")
        config = folder / "report.yaml"
        influx = f'influx: {{url: "{server.url}", api: v1, database: plant}}\n'
        config.write_text(PLANT + influx, encoding="utf-8")
        plant = load_plant_config(config)
        report = make_report(plant, month("2026-11", ZONE), local_ns(2026, 12, 1, 8))
    finally:
        server.stop()
    pdf = render_pdf(sections(report, "zh", ZONE), draw(report, ZONE), report.generated_ns)
    document = pypdfium2.PdfDocument(pdf)
    image = document[0].render(scale=1.6).to_pil()
    document.close()
    return image


def save(image: Image.Image, name: str) -> None:
    path = OUT / name
    image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    print(f"{path.relative_to(REPO)}: {image.width}x{image.height}, {path.stat().st_size // 1024} KiB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        mails = dust_mails(folder)
        save(mail_png(mails["regulator@eco.example"]), "mail-dust-zh.png")
        save(mail_png(mails["manager@works.example"]), "mail-dust-en.png")
        save(report_png(folder), "report-2026-11-zh.png")


if __name__ == "__main__":
    main()
