"""A report's charts: each per-tonne target's daily values as bars against its target, each stack's
hourly dust averages against the limit (PNG, drawn by core/charts.py; blocking, ~0.1 s each)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from plantwatch.core.charts import Point, kpi_chart
from plantwatch.reports.model import Report
from plantwatch.reports.sections import chart_name


def draw(report: Report, zone: ZoneInfo) -> dict[str, bytes]:
    """Chart name -> PNG, for the rows that have values to draw."""
    charts: dict[str, bytes] = {}
    for row in report.targets:
        if any(d.value is not None for d in row.daily):
            charts[chart_name(row.device, row.target.id)] = kpi_chart(
                [Point(d.start_ns, d.end_ns, d.value) for d in row.daily],
                limit=row.limit,
                lower_is_better=row.target.comparator in ("<=", "<"),
                unit=row.target.unit,
                zone=zone,
                bars=True,
                time_format="%m-%d",
            )
    for dust in report.dust:
        if dust.valid_hours:
            charts[chart_name(dust.device, dust.target.id)] = kpi_chart(
                [Point(h.start_ns, h.end_ns, h.value) for h in dust.hourly],
                limit=dust.limit,
                lower_is_better=True,
                unit=dust.target.unit,
                zone=zone,
                time_format="%m-%d" if report.period.kind == "month" else "%H:%M",
            )
    return charts
