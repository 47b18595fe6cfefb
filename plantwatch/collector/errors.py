"""The collector's exception base; third-party errors are converted to it at the boundary."""

from __future__ import annotations

from plantwatch.errors import PlantwatchError


class CollectorError(PlantwatchError):
    """Base class of every error raised by the collector."""


class DecodeError(CollectorError):
    """Registers could not be turned into a value (bad string bytes, NaN where forbidden...)."""
