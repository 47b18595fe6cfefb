"""The exception base of the shared I/O (InfluxDB output, MQTT connection)."""

from __future__ import annotations

from plantwatch.core.errors import PlantwatchError


class InfraError(PlantwatchError):
    """Base class of every error raised by the shared I/O."""
