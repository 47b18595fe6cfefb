"""A report as one HTML page: the header, the tables, the charts, the notes and the plans cited.
Images are referenced through `image_src` (a data: URI for a file, cid: for a mail)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from plantwatch.reports.sections import Sections, Table

STYLE = (
    "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;font-size:14px;color:#222;"
    "max-width:1100px}table{border-collapse:collapse;margin:6px 0 18px}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f2f2f2}"
    "td.bad{color:#c0392b;font-weight:bold}dl{display:grid;grid-template-columns:max-content auto;"
    "gap:2px 14px}dt{font-weight:bold}figure{margin:8px 0 16px}figcaption{font-size:13px;color:#555}"
)


def render_html(sections: Sections, image_src: Callable[[str], str | None]) -> str:
    """The page; verdicts of a breach are marked in red."""
    header = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in sections.header)
    tables = "".join(_table(t, sections.exceeded) for t in sections.tables)
    figures = ""
    for chart in sections.charts:
        src = image_src(chart.name)
        if src:
            figures += (
                f'<figure><img src="{escape(src)}" alt="{escape(chart.caption)}" width="640">'
                f"<figcaption>{escape(chart.caption)}</figcaption></figure>"
            )
    notes = "".join(f"<li>{escape(n)}</li>" for n in sections.notes)
    plans = "".join(f"<li>{escape(p)}</li>" for p in sections.plans)
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(sections.title)}</title>'
        f"<style>{STYLE}</style></head><body><h2>{escape(sections.title)}</h2><dl>{header}</dl>"
        f"{tables}{figures}<ul>{notes}</ul><h3>{escape(sections.plans_title)}</h3><ul>{plans}</ul>"
        "</body></html>"
    )


def _table(table: Table, exceeded: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=bad' if c == exceeded else ''}>{escape(c)}</td>" for c in row)
        + "</tr>"
        for row in table.rows
    )
    if not table.rows:
        body = f'<tr><td colspan="{len(table.headers)}">{escape(table.empty)}</td></tr>'
    return f"<h3>{escape(table.title)}</h3><table><tr>{head}</tr>{body}</table>"
