"""plantwatch: telemetry monitoring and alerting for energy-intensive plants."""

__version__ = "0.1.0"
