"""The one exception base of `reports/`: a report that cannot be made, and why."""

from __future__ import annotations


class ReportError(Exception):
    """A report cannot be made (no CJK font for the PDF, InfluxDB unreachable, a bad period)."""
