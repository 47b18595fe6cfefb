"""The seven plantwatch dashboards, built with grafana-foundation-sdk from the data contract.

Every query is raw InfluxQL, so the same JSON works on InfluxDB 1.x, 2.x (DBRP mapping) and 3.
Measurement, tag and field names come from the code that writes them. Device data is selected by
role, never by field name: the field names and measurements of each role (power, energy counter,
tap weight, dust...) come from the maps the dashboards are built for (the shipped maps, plus a
plant's own with `plantwatch dashboards build --config`). Target ids come from the catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
)

from plantwatch.config.device_map import (
    AnyDeviceMap,
    load_device_map,
    map_values,
    shipped_maps_dir,
    shipped_models,
)
from plantwatch.config.roles import Role
from plantwatch.config.targets import load_catalogue
from plantwatch.contract.grafana import plant_tag
from plantwatch.contract.influx import (
    ALERT_MEASUREMENT,
    CAPACITY_DEVICE_PREFIX,
    COLLECTOR_MEASUREMENT,
    DEVICE_HEALTH_MEASUREMENT,
    KPI_MEASUREMENT,
    POLL_MEASUREMENT,
    PROJECTION_KIND,
    QUALITY_MEASUREMENT,
    TOTAL_DEVICE_PREFIX,
)
from plantwatch.dashboards.influxql import DATASOURCE_UID, InfluxQL

REFRESH = "30s"
PLANT = '"plant" =~ /^$plant$/'
DEVICE = '"device" =~ /^$device$/'
DS = DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)
# Column templates for RoleFields.select: `{}` is the field name.
MEAN, LAST, STEP = 'mean("{}")', 'last("{}")', 'non_negative_difference(last("{}"))'


def _regex(names: list[str]) -> str:
    return "/^(" + "|".join(sorted(names)) + ")$/"


def shipped_maps() -> list[AnyDeviceMap]:
    """Every map in device_maps/, in model order."""
    return [load_device_map(shipped_maps_dir() / f"{model}.yaml") for model in shipped_models()]


@dataclass(frozen=True)
class RoleFields:
    """Where one role's values are: their field names and the measurements holding them."""

    names: tuple[str, ...]
    measurements: str  # an InfluxQL regex

    def select(self, template: str = '"{}"') -> str:
        """One column per field name, named after it: `mean("{}")` gives `mean("a") AS "a", ...`."""
        return ", ".join(f'{template.format(name)} AS "{name}"' for name in self.names)

    def alias(self, base: str) -> str:
        """A legend: `base`, with the column name when there is more than one field."""
        return base if len(self.names) == 1 else f"{base} $col"


def role_fields(
    maps: Sequence[AnyDeviceMap], role: Role, where: Callable[[AnyDeviceMap], bool] = lambda m: True
) -> RoleFields:
    """The fields that carry `role` in the maps `where` accepts (the map's measurement, else its
    sector, is where they are written)."""
    names: set[str] = set()
    measurements: set[str] = set()
    for device_map in maps:
        if not where(device_map):
            continue
        for value in map_values(device_map):
            if value.role == role:
                names.add(value.name)
                measurements.add(device_map.measurement or device_map.sector)
    if not names:
        raise ValueError(f"no map has a value with role {role.value!r}: a dashboard panel would be empty")
    return RoleFields(tuple(sorted(names)), _regex(sorted(measurements)))


def _target_ids(kpi: str, scope: str | None = None) -> list[str]:
    """The catalogue's target ids that compute `kpi` (over one device or a group, if `scope`)."""
    ids = [
        tid
        for tid, t in load_catalogue().items()
        if t.kpi == kpi and (scope is None or (t.scope or "device") == scope)
    ]
    if not ids:
        raise ValueError(f"no target in the catalogue computes kpi {kpi!r}")
    return ids


def _targets(kpi: str, scope: str | None = None) -> str:
    """A regex of `_target_ids`."""
    return _regex(_target_ids(kpi, scope))


def _latest(where: str, *columns: str) -> InfluxQL:
    """A table query: each plant's, device's and target's latest KPI point matching `where`."""
    selected = ", ".join(['last("value") AS "value"', *columns, 'last("limit") AS "target"'])
    return InfluxQL(
        f'SELECT {selected} FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND {where} AND $timeFilter '
        'GROUP BY "plant", "device", "target"',
        result_format="table",
    )


def _plant_variable() -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("plant")
        .label("Plant")
        .datasource(DS)
        .query(f'SHOW TAG VALUES FROM "{POLL_MEASUREMENT}" WITH KEY = "plant"')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _device_variable(*, multi: bool = True) -> dashboard.QueryVariable:
    variable = (
        dashboard.QueryVariable("device")
        .label("Device")
        .datasource(DS)
        .query(f'SHOW TAG VALUES FROM "{POLL_MEASUREMENT}" WITH KEY = "device" WHERE {PLANT}')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(multi)
        .include_all(multi)
    )
    return variable.all_value(".*") if multi else variable


def _thresholds(limit: float | None, color: str = "red") -> dashboard.ThresholdsConfig:
    steps = [Threshold(value=None, color="green")]
    if limit is not None:
        steps.append(Threshold(value=limit, color=color))
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def _series(
    title: str, *queries: InfluxQL, unit: str = "", height: int = 8, width: int = 12
) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(DS).height(height).span(width).unit(unit)
    return panel.targets(list(queries)).span_nulls(True)


def _table(title: str, query: InfluxQL, *, height: int = 8, width: int = 24) -> table.Panel:
    return table.Panel().title(title).datasource(DS).height(height).span(width).with_target(query)


def _timeline(title: str, query: InfluxQL, *, height: int = 8, width: int = 24) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .datasource(DS)
        .height(height)
        .span(width)
        .with_target(query)
        .thresholds(_thresholds(1))
    )


def _board(uid: str, title: str, description: str, tags: list[str]) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["plantwatch", *tags])
        .refresh(REFRESH)
        .time("now-24h", "now")
        .timezone("browser")
        .editable()
        .with_variable(_plant_variable())
    )


def plant_overview() -> dashboard.Dashboard:
    """Every device's latest KPI against its target, and which alerts are firing."""
    return (
        _board(
            "plant-overview",
            "Plant overview",
            "Every device's KPIs against the plan targets, and the alert state. Breach regions are "
            "annotations written by the alert service.",
            ["overview"],
        )
        .with_panel(
            _table(
                "Latest KPI vs target",
                InfluxQL(
                    f'SELECT last("value") AS "value", last("limit") AS "target" FROM "{KPI_MEASUREMENT}" '
                    f"WHERE {PLANT} AND \"kind\" = 'closed' AND $timeFilter "
                    'GROUP BY "plant", "device", "target"',
                    result_format="table",
                ),
                width=14,
            )
        )
        .with_panel(
            stat.Panel()
            .title("Alerts firing")
            .datasource(DS)
            .height(8)
            .span(10)
            .with_target(
                InfluxQL(
                    f'SELECT last("firing") FROM "{ALERT_MEASUREMENT}" WHERE {PLANT} AND $timeFilter '
                    'GROUP BY "device", "rule"',
                    alias="$tag_device $tag_rule",
                )
            )
            .thresholds(_thresholds(1))
        )
        .with_panel(
            _series(
                "KPI per closed window (tap, hour, day) against the target",
                InfluxQL(
                    f'SELECT mean("value") FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND "kind" = \'closed\' '
                    'AND $timeFilter GROUP BY time($__interval), "device", "target" fill(none)',
                    alias="$tag_device $tag_target",
                ),
                InfluxQL(
                    f'SELECT last("limit") FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND "kind" = \'closed\' '
                    'AND $timeFilter GROUP BY time($__interval), "target" fill(previous)',
                    ref_id="B",
                    alias="target $tag_target",
                ),
                width=24,
            )
        )
    )


def device_detail(maps: Sequence[AnyDeviceMap]) -> dashboard.Dashboard:
    """One furnace, kiln or pot line: power, energy, production, per-tap KPI against the target, dust."""
    units = lambda m: m.sector != "emissions"  # noqa: E731
    power = role_fields(maps, Role.POWER, units)
    energy = role_fields(maps, Role.ENERGY_COUNTER, units)
    weights = role_fields(maps, Role.TAP_WEIGHT, units)
    dust = role_fields(maps, Role.DUST_CONCENTRATION)
    return (
        _board(
            "device-detail",
            "Furnace, kiln and pot line detail",
            "Power, energy, production and taps of one device, its per-tap or per-window KPI "
            "against the plan target, and the plant's stack dust.",
            ["detail"],
        )
        .with_variable(_device_variable(multi=False))
        .with_panel(
            _series(
                "Active power",
                InfluxQL(
                    f"SELECT {power.select(MEAN)} FROM {power.measurements} WHERE {DEVICE} "
                    "AND $timeFilter GROUP BY time($__interval) fill(none)",
                    alias=power.alias("$device"),
                ),
                unit="kwatt",
            )
        )
        .with_panel(
            _series(
                "Energy per interval",
                InfluxQL(
                    f"SELECT {energy.select(STEP)} "
                    f"FROM {energy.measurements} WHERE {DEVICE} "
                    "AND $timeFilter GROUP BY time($__interval) fill(none)",
                    alias=energy.alias("$device"),
                ),
                unit="kwatth",
            )
        )
        .with_panel(
            _series(
                "Taps and heats (weight)",
                InfluxQL(
                    f"SELECT {weights.select(LAST)} FROM {weights.measurements} "
                    f"WHERE {DEVICE} AND $timeFilter GROUP BY time($__interval) fill(none)",
                ),
            )
        )
        .with_panel(
            _series(
                "Per-tap / per-window KPI against the target",
                InfluxQL(
                    f'SELECT "value" FROM "{KPI_MEASUREMENT}" WHERE {DEVICE} AND "kind" = \'closed\' '
                    'AND $timeFilter GROUP BY "target"',
                    alias="$tag_target",
                ),
                InfluxQL(
                    f'SELECT "limit" FROM "{KPI_MEASUREMENT}" WHERE {DEVICE} AND "kind" = \'closed\' '
                    'AND $timeFilter GROUP BY "target"',
                    ref_id="B",
                    alias="target $tag_target",
                ),
            )
        )
        .with_panel(
            _series(
                "Stack dust (minute means)",
                InfluxQL(
                    f"SELECT {dust.select(MEAN)} FROM {dust.measurements} "
                    f'WHERE {PLANT} AND $timeFilter GROUP BY time(1m), "device" fill(none)',
                    alias=dust.alias("$tag_device"),
                ),
                unit="conmgm3",
                width=24,
            )
        )
    )


def sector_compliance() -> dashboard.Dashboard:
    """All plants' month-to-date per-tonne KPIs against the plan targets, the month-end projections,
    plant totals, the targets over several devices (groups), capacity and waste-heat coverage."""
    per_tonne = _targets("per_tonne", "device")  # energy per tonne (groups: water, dust... per tonne)
    over_groups = _regex(_target_ids("per_tonne", "group") + _target_ids("share"))
    to_date = "\"kind\" = 'to-date'"
    return (
        _board(
            "sector-compliance",
            "Sector compliance: month to date",
            "Month-to-date energy per tonne of every plant and device: the sum of energy over the "
            "sum of production of the closed windows since the start of the month, against the "
            "plan target. Below: where each month closes at its last 7 days' rate, the plant "
            "totals, the works' and lines' targets over several devices, production against the "
            "permitted capacity and the kilns' waste-heat power coverage.",
            ["compliance"],
        )
        .time("now/M", "now")
        .with_panel(
            _table(
                "Month to date vs plan target",
                InfluxQL(
                    f'SELECT sum("numerator") / sum("denominator") AS "month_to_date", last("limit") AS '
                    f'"target", count("value") AS "windows" FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND '
                    f'"kind" = \'closed\' AND "target" =~ {per_tonne} AND $timeFilter '
                    'GROUP BY "plant", "device", "target"',
                    result_format="table",
                ),
            )
        )
        .with_panel(
            _series(
                "Daily energy per tonne",
                InfluxQL(
                    f'SELECT sum("numerator") / sum("denominator") FROM "{KPI_MEASUREMENT}" WHERE {PLANT} '
                    f'AND "kind" = \'closed\' AND "target" =~ {per_tonne} AND $timeFilter '
                    'GROUP BY time(1d), "plant", "target" fill(none)',
                    alias="$tag_plant $tag_target",
                ),
                width=24,
            )
        )
        .with_panel(
            _table(
                "Month-end projection at the last 7 days' rate (from the 4th day of a month watched whole)",
                _latest(f"\"kind\" = '{PROJECTION_KIND}'"),
                width=12,
            )
        )
        .with_panel(
            _table(
                "Plant totals: every device of a product together, month to date",
                _latest(
                    f'"device" =~ /^{TOTAL_DEVICE_PREFIX}/ AND {to_date}',
                    'last("numerator") AS "numerator"',
                    'last("denominator") AS "production_t"',
                ),
                width=12,
            )
        )
        .with_panel(
            _table(
                "Works and lines (groups): water, dust and SO2 per tonne; slag and solid-waste shares",
                _latest(f'"target" =~ {over_groups} AND {to_date}'),
                width=12,
            )
        )
        .with_panel(
            _table(
                "Capacity: production annualised at this month's rate vs permitted (t/a)",
                _latest(f'"device" =~ /^{CAPACITY_DEVICE_PREFIX}/', 'last("numerator") AS "month_t"'),
                width=6,
            )
        )
        .with_panel(
            _table(
                "Waste-heat power coverage of kiln running hours (%)",
                _latest(f'"target" =~ {_targets("coverage")} AND {to_date}'),
                width=6,
            )
        )
    )


def emissions(maps: Sequence[AnyDeviceMap]) -> dashboard.Dashboard:
    """Valid hourly dust averages (HJ 75) against 50 mg/m³, the early warning and the data flags."""
    dust = _targets("dust_hourly")
    flags = role_fields(maps, Role.DATA_FLAG)
    flagged = " OR ".join(f"\"{name}\" != 'N'" for name in flags.names)
    limit = load_catalogue()["ferroalloy-dust"].value
    return (
        _board(
            "emissions",
            "Emissions: stack dust",
            "Valid hourly dust averages (HJ 75: at least 45 valid minutes, flagged minutes excluded, "
            "O2-corrected when configured) against the limit, the 15-minute early warning, and the "
            "CEMS data flags.",
            ["emissions"],
        )
        .with_panel(
            _series(
                "Valid hourly average vs limit",
                InfluxQL(
                    f'SELECT "value" FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND "target" =~ {dust} '
                    'AND "kind" = \'closed\' AND $timeFilter GROUP BY "device"',
                    alias="$tag_device hourly",
                ),
                InfluxQL(
                    f'SELECT "value" FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND "kind" = \'early\' '
                    'AND $timeFilter GROUP BY "device"',
                    ref_id="B",
                    alias="$tag_device 15-min",
                ),
                unit="conmgm3",
                width=24,
            ).thresholds(_thresholds(limit))
        )
        .with_panel(
            _table(
                "Hours without a valid average",
                InfluxQL(
                    f'SELECT "numerator" AS "valid_minutes" FROM "{KPI_MEASUREMENT}" WHERE {PLANT} '
                    f'AND "target" =~ {dust} AND "kind" = \'closed\' AND "valid" = false AND $timeFilter '
                    'GROUP BY "device"',
                    result_format="table",
                ),
                width=12,
            )
        )
        .with_panel(
            _table(
                "Data flags (N normal; M maintenance, C calibration, F stopped, D fault)",
                InfluxQL(
                    f"SELECT {flags.select()} FROM {flags.measurements} WHERE {PLANT} AND ({flagged}) "
                    'AND $timeFilter GROUP BY "device"',
                    result_format="table",
                ),
                width=12,
            )
        )
    )


def alerts() -> dashboard.Dashboard:
    """The state of every alert over time, its transitions, and the breach regions."""
    return (
        _board(
            "alerts",
            "Alerts",
            "Which alerts fired when (1 = firing), every transition the alert service announced, and "
            "the breach regions as annotations.",
            ["alerts"],
        )
        .annotation(
            dashboard.AnnotationQuery()
            .name("Breaches")
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .icon_color("red")
            .target(
                dashboard.AnnotationTarget()
                .type("tags")
                .tags([plant_tag("$plant")])
                .match_any(False)
                .limit(500)
            )
        )
        .with_panel(
            _timeline(
                "Alert state",
                InfluxQL(
                    f'SELECT last("firing") FROM "{ALERT_MEASUREMENT}" WHERE {PLANT} AND $timeFilter '
                    'GROUP BY time($__interval), "device", "rule" fill(previous)',
                    alias="$tag_device $tag_rule",
                ),
            )
        )
        .with_panel(
            _table(
                "Transitions",
                InfluxQL(
                    f'SELECT "event", "device", "rule", "severity", "value", "limit", "silenced" FROM '
                    f'"{ALERT_MEASUREMENT}" WHERE {PLANT} AND $timeFilter ORDER BY time DESC LIMIT 500',
                    result_format="table",
                ),
                height=10,
            )
        )
    )


def collector_health() -> dashboard.Dashboard:
    """The collector's buffer, InfluxDB backlog, and errors per device."""
    return (
        _board(
            "collector-health",
            "Collector health",
            "Durable buffer depth and the age of its oldest unsent line (a growing age means "
            "InfluxDB is not taking writes), refused readings, and errors per device.",
            ["health"],
        )
        .with_panel(
            _series(
                "Buffer depth (lines)",
                InfluxQL(
                    f'SELECT last("buffer_depth") FROM "{COLLECTOR_MEASUREMENT}" WHERE {PLANT} AND '
                    '$timeFilter GROUP BY time($__interval), "host" fill(none)',
                    alias="$tag_host",
                ),
            )
        )
        .with_panel(
            _series(
                "Oldest unsent line",
                InfluxQL(
                    f'SELECT last("oldest_unsent_s") FROM "{COLLECTOR_MEASUREMENT}" WHERE {PLANT} AND '
                    '$timeFilter GROUP BY time($__interval), "host" fill(none)',
                    alias="$tag_host",
                ),
                unit="s",
            ).thresholds(_thresholds(60, "orange"))
        )
        .with_panel(
            _series(
                "Readings/s, refused and dropped",
                InfluxQL(
                    f'SELECT last("readings_per_s") AS "readings/s", last("refused") AS "refused", '
                    f'last("dropped") AS "dropped", last("write_errors") AS "write errors" FROM '
                    f'"{COLLECTOR_MEASUREMENT}" WHERE {PLANT} AND $timeFilter GROUP BY time($__interval) '
                    "fill(none)",
                ),
            )
        )
        .with_panel(
            _series(
                "Seconds since the last fully good poll",
                InfluxQL(
                    f'SELECT last("last_success_age_s") FROM "{DEVICE_HEALTH_MEASUREMENT}" WHERE {PLANT} '
                    'AND $timeFilter GROUP BY time($__interval), "device" fill(none)',
                    alias="$tag_device",
                ),
                unit="s",
            )
        )
        .with_panel(
            _table(
                "Bad values per device and field",
                InfluxQL(
                    f'SELECT count("reason") AS "bad values" FROM "{QUALITY_MEASUREMENT}" WHERE {PLANT} '
                    'AND $timeFilter GROUP BY "device", "field"',
                    result_format="table",
                ),
                width=12,
            )
        )
        .with_panel(
            _series(
                "Bad values per poll",
                InfluxQL(
                    f'SELECT sum("bad") FROM "{POLL_MEASUREMENT}" WHERE {PLANT} AND $timeFilter '
                    'GROUP BY time($__interval), "device" fill(none)',
                    alias="$tag_device",
                ),
            )
        )
    )


Maps = Sequence[AnyDeviceMap]


# uid -> builder; the device dashboards select data by role from the maps they are built for.
def province() -> dashboard.Dashboard:
    """The regulators' view across plants: each plant's month to date against the plan targets,
    its dust compliance, the alerts firing and how much of its data arrived."""
    dust = _targets("dust_hourly")
    by_plant = 'GROUP BY "plant"'
    return (
        _board(
            "province",
            "Province: plants against the plans",
            "Every plant reporting to this InfluxDB, this month: energy per tonne (Σ energy ÷ Σ "
            "production of the closed windows) against the plan targets, valid dust hours and "
            "hours over the limit, alerts firing now, and the share of polled values that were good.",
            ["province"],
        )
        .time("now/M", "now")
        .with_panel(
            _table(
                "Month to date per tonne vs plan target, per plant",
                InfluxQL(
                    # each device's month so far (its `<id>:month` rule), summed per plant
                    'SELECT sum("numerator") / sum("denominator") AS "month_to_date", last("limit") AS '
                    '"target" FROM (SELECT last("numerator") AS "numerator", last("denominator") AS '
                    f'"denominator", last("limit") AS "limit" FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND '
                    f'"kind" = \'to-date\' AND "target" =~ /:month$/ AND '
                    f'"device" !~ /^{TOTAL_DEVICE_PREFIX}/ AND $timeFilter GROUP BY "plant", "device", '
                    '"target") GROUP BY "plant", "target"',
                    result_format="table",
                ),
            )
        )
        .with_panel(
            _table(
                "Dust: valid hourly averages and the highest, per plant",
                InfluxQL(
                    f'SELECT count("value") AS "valid_hours", max("value") AS "highest" FROM '
                    f'"{KPI_MEASUREMENT}" WHERE {PLANT} AND "target" =~ {dust} AND "kind" = \'closed\' '
                    f"AND $timeFilter {by_plant}",
                    result_format="table",
                ),
                width=8,
            )
        )
        .with_panel(
            _table(
                "Dust: hours over the limit, per plant",
                InfluxQL(
                    f'SELECT count("value") AS "breach_hours" FROM "{KPI_MEASUREMENT}" WHERE {PLANT} AND '
                    f'"target" =~ {dust} AND "kind" = \'closed\' AND "value" > "limit" AND $timeFilter '
                    f"{by_plant}",
                    result_format="table",
                ),
                width=8,
            )
        )
        .with_panel(
            _table(
                "Alerts firing now, per plant",
                InfluxQL(
                    f'SELECT sum("firing") AS "firing" FROM (SELECT last("firing") AS "firing" FROM '
                    # the last transition of each alert in a week (a firing alert repeats every
                    # few hours), whatever the dashboard's range
                    f'"{ALERT_MEASUREMENT}" WHERE {PLANT} AND time > now() - 7d GROUP BY "plant", "device", '
                    f'"rule") {by_plant}',
                    result_format="table",
                ),
                width=8,
            )
        )
        .with_panel(
            _series(
                "Data availability: good values of all polled, per plant (%)",
                InfluxQL(
                    f'SELECT sum("good") * 100 / (sum("good") + sum("bad")) FROM "{POLL_MEASUREMENT}" '
                    f'WHERE {PLANT} AND $timeFilter GROUP BY time(1h), "plant" fill(none)',
                    alias="$tag_plant",
                ),
                unit="percent",
                width=24,
            )
        )
    )


DASHBOARDS: dict[str, Callable[[Maps], dashboard.Dashboard]] = {
    "plant-overview": lambda maps: plant_overview(),
    "device-detail": device_detail,
    "sector-compliance": lambda maps: sector_compliance(),
    "emissions": emissions,
    "alerts": lambda maps: alerts(),
    "collector-health": lambda maps: collector_health(),
    "province": lambda maps: province(),
}


def build_all(maps: Maps | None = None) -> dict[str, dict[str, Any]]:
    """uid → dashboard JSON (as Grafana stores it), in a fixed order, for `maps` (default: the
    shipped maps; a plant adds its own)."""
    maps = shipped_maps() if maps is None else maps
    out = {}
    for uid, make in DASHBOARDS.items():
        model = json.loads(json.dumps(make(maps).build(), cls=JSONEncoder))
        assert model["uid"] == uid, (uid, model["uid"])
        out[uid] = model
    return out
