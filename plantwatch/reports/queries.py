"""Reading a report's numbers from InfluxDB with InfluxQL: the alert service's KPI points
(`plantwatch_kpi`), its transitions (`plantwatch_alert`) and the devices' own measurements.

All times are event times: a KPI point is stamped with the end of its window, so a window belongs
to the period its end falls in, (start, end]: the day window that ends at midnight is that day's,
and a tap that started at 23:50 on the last day of a month and ended after midnight counts in the
next month. Days are grouped the same way (`GROUP BY time(1d, 1ns)` in the plant's zone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plantwatch.config.plant import Plant
from plantwatch.config.targets import Target
from plantwatch.contract.influx import (
    ALERT_MEASUREMENT,
    KPI_MEASUREMENT,
    TAG_DEVICE,
    TAG_PLANT,
)
from plantwatch.infra.influx.reader import InfluxReader, identifier, quoted
from plantwatch.reports.model import MEAN, MONTH_WINDOW, SUMMED, DayValue, DustRow, Fired, Report, TargetRow
from plantwatch.reports.period import Period

HOUR_NS, DAY_NS = 3600 * 10**9, 86400 * 10**9
RATE_DAYS = 7  # a projection extends the rate of the last this many days to the period's end
SUMMABLE = ("tap", "shift", "day", "month")  # windows whose energy and product add up
# The InfluxQL condition on `value` that a breach of each comparator meets.
BREACH = {"<=": ">", "<": ">=", ">=": "<", ">": "<="}


class ReportReader:
    """Runs a report's queries for one plant; `progress` hears what is being read."""

    def __init__(
        self, reader: InfluxReader, plant: Plant, progress: Callable[[str], None] | None = None
    ) -> None:
        self.reader = reader
        self.plant = plant
        self.plant_id = plant.config.plant.id
        self.zone = plant.config.alerts.timezone
        self.progress = progress or (lambda _: None)

    def report(self, targets: list[Target], period: Period, now_ns: int) -> Report:
        """The report of `period`, up to `now_ns` if the period is still open."""
        info = self.plant.config.plant
        report = Report(self.plant_id, {"zh": info.name_in("zh"), "en": info.name_in("en")}, period, now_ns)
        end_ns = report.covered_end_ns
        for device, watched in self.plant.targets_by_device(targets).items():
            self.progress(f"reading {device}")
            for target in watched:
                if target.value is None or target.kpi == "capacity":  # capacity: over devices, not one
                    continue
                if target.kpi == "dust_hourly":
                    report.dust.append(self.dust(device, target, period.start_ns, end_ns))
                else:
                    report.targets.append(self.per_tonne(device, target, period, end_ns))
            report.availability[device] = self.availability(device, period.start_ns, end_ns)
        for group_id in self.plant.config.groups:  # group targets: the group's own values
            for target in targets:
                if (
                    target.scope == "group"
                    and target.kpi in ("per_tonne", "share")
                    and target.value is not None
                ):
                    row = self.per_tonne(group_id, target, period, end_ns)
                    if row.windows or row.value is not None:
                        report.targets.append(row)
        report.fired = self.fired(period.start_ns, end_ns)
        return report

    # --- per-tonne and live targets ---

    def per_tonne(self, device: str, target: Target, period: Period, end_ns: int) -> TargetRow:
        """The period's value of a per-tonne (or live) target on `device`."""
        if target.kpi == "per_tonne" and target.window in SUMMABLE:
            return self._summed(device, target, period, end_ns)
        kind = "live" if target.kpi == "potline_live" else "rolling"
        row = TargetRow(device, target, MEAN)
        where = self._where(device, target.id, kind, period.start_ns, end_ns)
        daily = self._rows(
            f'SELECT mean("value") AS "value" {where} GROUP BY time(1d, 1ns) fill(none) {self._tz()}'
        )
        row.daily = [DayValue(r["time"] - 1, r["time"] - 1 + DAY_NS, r["value"]) for r in daily]
        row.windows, row.windows_over = len(row.daily), row.days_over
        values = [d.value for d in row.daily if d.value is not None]
        row.worst = self._worst(target, values)
        whole = self._one(f'SELECT mean("value") AS "value" {where}')
        row.value = whole.get("value")
        if "month" in target.judged_over and period.kind == "month":
            # the calendar-month window of the alert service: closed, or the latest to-date value
            month = f"{target.id}:month"
            for kind in ("closed", "to-date"):
                in_month = self._where(device, month, kind, period.start_ns, period.end_ns)
                last = self._one(
                    'SELECT last("value") AS "value", last("numerator") AS "energy", '
                    f'last("denominator") AS "product" {in_month}'
                )
                if last.get("value") is not None:
                    row.basis, row.value = MONTH_WINDOW, last["value"]
                    row.energy, row.product = last.get("energy"), last.get("product")
                    break
        return row

    def _summed(self, device: str, target: Target, period: Period, end_ns: int) -> TargetRow:
        row = TargetRow(device, target, SUMMED)
        where = self._where(device, target.id, "closed", period.start_ns, end_ns)
        totals = self._one(
            'SELECT sum("numerator") AS "energy", sum("denominator") AS "product", '
            f'count("value") AS "windows" {where}'
        )
        row.energy, row.product = totals.get("energy"), totals.get("product")
        row.windows = int(totals.get("windows") or 0)
        row.value = _ratio(row.energy, row.product)
        over = self._one(
            f'SELECT count("value") AS "n" {where} AND "value" {BREACH[target.comparator]} {row.limit!r}'
        )
        row.windows_over = int(over.get("n") or 0)
        worst = self._one(
            f'SELECT {"max" if target.comparator in ("<=", "<") else "min"}("value") AS "v" {where}'
        )
        row.worst = worst.get("v")
        daily = self._rows(
            f'SELECT sum("numerator") AS "energy", sum("denominator") AS "product" {where} '
            f"GROUP BY time(1d, 1ns) fill(none) {self._tz()}"
        )
        row.daily = [
            DayValue(r["time"] - 1, r["time"] - 1 + DAY_NS, _ratio(r["energy"], r["product"])) for r in daily
        ]
        if end_ns < period.end_ns and row.energy is not None:
            row.projection = self._projection(device, target, period, end_ns, row.energy, row.product or 0.0)
        return row

    def _projection(
        self, device: str, target: Target, period: Period, end_ns: int, energy: float, product: float
    ) -> float | None:
        """The period's value if the last days' energy and product rates hold to its end."""
        span = min(RATE_DAYS * DAY_NS, end_ns - period.start_ns)
        if span <= 0:
            return None
        recent = self._one(
            'SELECT sum("numerator") AS "energy", sum("denominator") AS "product" '
            f"{self._where(device, target.id, 'closed', end_ns - span, end_ns)}"
        )
        remaining = period.end_ns - end_ns
        energy_rate, product_rate = (
            (recent.get("energy") or 0.0) / span,
            (recent.get("product") or 0.0) / span,
        )
        return _ratio(energy + energy_rate * remaining, product + product_rate * remaining)

    # --- dust ---

    def dust(self, device: str, target: Target, start_ns: int, end_ns: int) -> DustRow:
        """A stack's hourly averages over the period."""
        row = DustRow(device, target)
        where = self._where(device, target.id, "closed", start_ns, end_ns)
        totals = self._one(
            'SELECT count("valid") AS "hours", count("value") AS "valid_hours", max("value") AS "highest", '
            f'mean("value") AS "mean" {where}'
        )
        row.hours, row.valid_hours = int(totals.get("hours") or 0), int(totals.get("valid_hours") or 0)
        row.highest, row.mean = totals.get("highest"), totals.get("mean")
        over = self._one(
            f'SELECT count("value") AS "n" {where} AND "value" {BREACH[target.comparator]} {row.limit!r}'
        )
        row.breach_hours = int(over.get("n") or 0)
        hourly = self._rows(f'SELECT "value", "window_start" {where}')
        row.hourly = [
            DayValue(int(r.get("window_start") or r["time"] - HOUR_NS), r["time"], r.get("value"))
            for r in hourly
        ]
        return row

    # --- availability and alerts ---

    def availability(self, device: str, start_ns: int, end_ns: int) -> float | None:
        """The share of the period's hours in which the device's measurement holds data."""
        hours = -(-(end_ns - start_ns) // HOUR_NS)
        if hours <= 0:
            return None
        device_map = self.plant.maps[device]
        measurement = device_map.measurement or device_map.sector
        rows = self._rows(
            f"SELECT count(*) FROM {identifier(measurement)} "
            f"WHERE {identifier(TAG_PLANT)} = {quoted(self.plant_id)} "
            f"AND {identifier(TAG_DEVICE)} = {quoted(device)} AND time >= {start_ns} AND time < {end_ns} "
            "GROUP BY time(1h) fill(none)"
        )
        with_data = sum(1 for r in rows if any(v for k, v in r.items() if k != "time"))
        return min(1.0, with_data / hours)

    def fired(self, start_ns: int, end_ns: int) -> list[Fired]:
        """Alerts that fired in the period, by device, rule and severity; (start, end] as KPI points,
        since a transition is stamped with the end of the window that caused it."""
        series = self.reader.query(
            f'SELECT count("firing") AS "n" FROM {identifier(ALERT_MEASUREMENT)} '
            f"WHERE {identifier(TAG_PLANT)} = {quoted(self.plant_id)} AND \"event\" = 'firing' "
            f'AND time > {start_ns} AND time <= {end_ns} GROUP BY "device", "rule", "severity"'
        )
        out = [
            Fired(s.tags.get("device", ""), s.tags.get("rule", ""), s.tags.get("severity", ""), int(row["n"]))
            for s in series
            for row in s.rows
            if row.get("n")
        ]
        return sorted(out, key=lambda f: (f.device, f.rule))

    # --- helpers ---

    def _where(self, device: str, rule: str, kind: str, start_ns: int, end_ns: int) -> str:
        return (
            f"FROM {identifier(KPI_MEASUREMENT)} WHERE {identifier(TAG_PLANT)} = {quoted(self.plant_id)} "
            f'AND {identifier(TAG_DEVICE)} = {quoted(device)} AND "target" = {quoted(rule)} '
            f'AND "kind" = {quoted(kind)} AND time > {start_ns} AND time <= {end_ns}'
        )

    def _tz(self) -> str:
        return f"tz({quoted(self.zone)})"

    def _rows(self, statement: str) -> list[dict[str, Any]]:
        return [row for series in self.reader.query(statement) for row in series.rows]

    def _one(self, statement: str) -> dict[str, Any]:
        rows = self._rows(statement)
        return rows[0] if rows else {}

    @staticmethod
    def _worst(target: Target, values: list[float]) -> float | None:
        if not values:
            return None
        return max(values) if target.comparator in ("<=", "<") else min(values)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator or denominator <= 0:
        return None
    return numerator / denominator
