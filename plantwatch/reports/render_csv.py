"""A report as CSV: one row per device and target, columns named for machines (stable across
languages; the indicator in the report's language), numbers unformatted."""

from __future__ import annotations

import csv
import io

from plantwatch.reports.model import Report

COLUMNS = (
    "period", "device", "target", "indicator", "unit", "comparator", "limit", "basis", "value",
    "energy", "product", "windows", "windows_over", "days_over", "worst", "projection",
    "hours", "valid_hours", "breach_hours", "highest_hour", "mean_valid_hours", "availability",
)  # fmt: skip


def render_csv(report: Report, lang: str) -> str:
    """The CSV text (UTF-8 with a BOM when written, so spreadsheet programs read Chinese)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in report.targets:
        writer.writerow(
            {
                "period": report.period.label,
                "device": row.device,
                "target": row.target.id,
                "indicator": row.target.indicator(lang),
                "unit": row.target.unit,
                "comparator": row.target.comparator,
                "limit": row.limit,
                "basis": row.basis,
                "value": _number(row.value),
                "energy": _number(row.energy),
                "product": _number(row.product),
                "windows": row.windows,
                "windows_over": row.windows_over,
                "days_over": row.days_over,
                "worst": _number(row.worst),
                "projection": _number(row.projection),
                "availability": _number(report.availability.get(row.device)),
            }
        )
    for dust in report.dust:
        writer.writerow(
            {
                "period": report.period.label,
                "device": dust.device,
                "target": dust.target.id,
                "indicator": dust.target.indicator(lang),
                "unit": dust.target.unit,
                "comparator": dust.target.comparator,
                "limit": dust.limit,
                "basis": "hourly",
                "hours": dust.hours,
                "valid_hours": dust.valid_hours,
                "breach_hours": dust.breach_hours,
                "highest_hour": _number(dust.highest),
                "mean_valid_hours": _number(dust.mean),
                "availability": _number(report.availability.get(dust.device)),
            }
        )
    return out.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
