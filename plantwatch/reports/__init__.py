"""Reports for regulators and plant managers, read back from InfluxDB: the monthly compliance report
and the daily digest (docs/reports.md)."""
