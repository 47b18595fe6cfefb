"""The collector's exception base; third-party errors are converted to it at the boundary."""

from __future__ import annotations

from plantwatch.core.errors import PlantwatchError


class CollectorError(PlantwatchError):
    """Base class of every error raised by the collector."""
