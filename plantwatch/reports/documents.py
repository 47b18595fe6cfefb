"""The daily digest and the monthly report as documents to mail: each language's subject, text,
HTML with its charts inline, and (monthly) the PDF and CSV attached."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from plantwatch.core.document import Attachment, Document, Edition
from plantwatch.reports.charts import draw
from plantwatch.reports.model import Report
from plantwatch.reports.render_csv import render_csv
from plantwatch.reports.render_html import render_html
from plantwatch.reports.render_pdf import render_pdf
from plantwatch.reports.render_text import render_text
from plantwatch.reports.sections import sections

LANGS = ("zh", "en")


def document(report: Report, zone: ZoneInfo) -> Document:
    """The digest (a day's report) or the monthly report (with its PDF and CSV), in both languages.
    Blocking (charts, PDF): run it in a worker thread."""
    kind = "report" if report.period.kind == "month" else "digest"
    charts = draw(report, zone)
    editions = {}
    for lang in LANGS:
        words = sections(report, lang, zone, kind)
        html = render_html(words, lambda name: f"cid:{name}" if name in charts else None)
        attachments = []
        if kind == "report":
            stem = f"plantwatch-{report.plant}-{report.period.label}-{lang}"
            attachments = [
                Attachment(f"{stem}.pdf", "application/pdf", render_pdf(words, charts, report.generated_ns)),
                Attachment(f"{stem}.csv", "text/csv", ("\ufeff" + render_csv(report, lang)).encode()),
            ]
        editions[lang] = Edition(words.title, render_text(words, lang), html, dict(charts), attachments)
    return Document(kind, report.period.label, editions)
