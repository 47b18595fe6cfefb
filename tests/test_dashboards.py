"""Dashboards as code: the committed JSON is what the code builds, the provisioning matches it, and
every query runs against a real InfluxDB holding simulator data and returns rows."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from plantwatch.alerts.kpi.calendar import calendar_window
from plantwatch.alerts.setup import build_alert_service
from plantwatch.collector.sink import plant_series
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.contract.influx import poll_lines
from plantwatch.dashboards.build import build_all
from plantwatch.dashboards.files import (
    dashboards_dir,
    load_dashboards,
    provisioning_dir,
    stale_dashboards,
    write_dashboards,
)
from plantwatch.dashboards.influxql import DATASOURCE_UID
from plantwatch.dashboards.push import PushError, push_dashboards
from plantwatch.simulator.history import history
from tests.services.grafana_api import GrafanaApi
from tests.services.influxdb import InfluxDBServer
from tests.services.processes import free_port, start_plantwatch, stop, wait_for_port
from tests.test_cli import plantwatch
from tests.waiting import wait_until

REPO = Path(__file__).parent.parent
SAMPLE = REPO / "plantwatch" / "collector" / "modbus" / "sample.plant.yaml"
HOUR_NS, DAY_NS = 3600 * 10**9, 86400 * 10**9
UIDS = {
    "plant-overview",
    "device-detail",
    "sector-compliance",
    "emissions",
    "alerts",
    "collector-health",
    "province",
}


def targets(model: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def test_committed_json_is_what_the_code_builds(tmp_path: Path) -> None:
    assert stale_dashboards() == []
    assert set(load_dashboards()) == UIDS
    copy = tmp_path / "json"
    shutil.copytree(dashboards_dir(), copy)
    model = json.loads((copy / "alerts.json").read_text())
    model["title"] = "edited by hand"
    (copy / "alerts.json").write_text(json.dumps(model))
    (copy / "old.json").write_text("{}")
    assert stale_dashboards(copy) == [
        f"{copy / 'alerts.json'}: differs from what plantwatch/dashboards/build.py makes",
        f"{copy / 'old.json'}: no dashboard in build.py has uid 'old'",
    ]
    write_dashboards(copy)
    (copy / "old.json").unlink()
    assert stale_dashboards(copy) == []


def test_every_panel_queries_the_provisioned_datasource_with_influxql() -> None:
    datasources = yaml.safe_load(
        (provisioning_dir() / "datasources" / "plantwatch-influxdb.yaml").read_text()
    )
    [source] = datasources["datasources"]
    assert (source["uid"], source["type"], source["jsonData"]["httpHeaderName1"]) == (
        DATASOURCE_UID,
        "influxdb",
        "Authorization",
    )
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"
    providers = yaml.safe_load((provisioning_dir() / "dashboards" / "plantwatch.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/plantwatch"
    for uid, model in load_dashboards().items():
        assert model["uid"] == uid and model["panels"], uid
        for title, target in targets(model):
            assert target["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}, (uid, title)
            assert target["rawQuery"] is True and target["query"].startswith(("SELECT", "SHOW")), title
            assert "from(bucket" not in target["query"]  # InfluxQL only, never Flux


@pytest.fixture(scope="module")
def plant_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InfluxDBServer, str]]:
    """A real InfluxDB with simulated history of the sample plant (every sector) passed through the
    alert service, plus a few seconds of `plantwatch run` for the collector's own health points.

    The history runs from the month before the one 4 days ago (so that month is watched whole and
    has run 4 days: projections and the annualised capacity exist) every 10 minutes, and its last
    30 hours every minute (valid dust hours)."""
    folder = tmp_path_factory.mktemp("dashboards")
    server = InfluxDBServer(folder / "influxdb")
    server.start()
    server.create_database("plant")
    try:
        plant = history_plant(folder)
        write_history(server, plant, hours=30, since=month_start(time.time_ns() - 4 * DAY_NS) - HOUR_NS)
        run_collector_briefly(server, folder)
        yield server, "plant"
    finally:
        server.stop()


def history_plant(folder: Path) -> Plant:
    config = folder / "plant.yaml"
    shutil.copy(SAMPLE, config)
    return load_plant_config(config)


def month_start(ts: int) -> int:
    """The start of the month `ts` falls in, in the sample plant's zone."""
    return calendar_window(ts, "month", ZoneInfo("Asia/Shanghai"))[0]


def write_history(server: InfluxDBServer, plant: Plant, hours: int, since: int) -> None:
    """Every 10 minutes from `since`, then every minute for the last `hours`."""
    lines: list[str] = []
    series = plant_series(plant)
    service = build_alert_service(plant, write_lines=lines.extend)
    end_ns = time.time_ns() - 60 * 10**9
    fine_from = end_ns - hours * HOUR_NS
    coarse = max(0, (fine_from - since) // (600 * 10**9))
    fine_from = since + coarse * 600 * 10**9
    phases = (
        history(plant, start_ns=since, polls=coarse, step_s=600),
        history(plant, start_ns=fine_from, polls=(end_ns - fine_from) // (60 * 10**9), offset_s=coarse * 600),
    )
    for result in itertools.chain(*phases):
        lines += poll_lines(series[result.device], result)
        service.handle(result)
        if len(lines) > 20_000:
            assert server.write("\n".join(lines), "plant") == 204
            lines.clear()
    assert server.write("\n".join(lines), "plant") == 204
    service.close()


def run_collector_briefly(server: InfluxDBServer, folder: Path) -> None:
    """`plantwatch run` with a simulated furnace and a meter that never answers (errors to show)."""
    live, dead = free_port(), free_port()
    url = f"tcp://127.0.0.1:{live}"
    furnace = f'{{id: saf-9, map: saf_ferrosilicon, url: "{url}", interval: 200ms, timeout: 150ms}}'
    simulated, config = folder / "simulated.yaml", folder / "live.yaml"
    simulated.write_text(f"plant: {{id: live-works, name: Live}}\ndevices: [{furnace}]\n", encoding="utf-8")
    config.write_text(
        f"""plant: {{id: live-works, name: Live}}
devices:
  - {furnace}
  - {{id: saf-dead, map: saf_ferrosilicon, url: "tcp://127.0.0.1:{dead}", interval: 1s, timeout: 200ms}}
influx: {{url: "{server.url}", api: v1, database: plant, flush_interval: 200ms}}
buffer: {{path: buffer.sqlite}}
""",
        encoding="utf-8",
    )
    simulator = start_plantwatch("simulate", "--config", str(simulated), "--speed", "60")
    wait_for_port(live)
    run = start_plantwatch("run", "--config", str(config), "--health-interval", "1s")
    try:
        wait_until(
            lambda: all(
                len(server.query(q, "plant")) > 0
                for q in (
                    'SELECT count("buffer_depth") FROM "plantwatch_collector"',
                    "SELECT count(last_success_age_s) FROM plantwatch_device WHERE device = 'saf-9'",
                    "SELECT count(reason) FROM plantwatch_quality WHERE device = 'saf-dead'",
                    "SELECT count(good) FROM plantwatch_poll WHERE device = 'saf-9'",
                    'SELECT count("firing") FROM "plantwatch_alerts"',
                )
            ),
            30,
            "health, device health, quality, poll and alerts health points from plantwatch run",
        )
    finally:
        assert stop(run) == 0
        stop(simulator)


def interpolate(query: str) -> str:
    """What Grafana sends for the default variable values (All plants; the furnace saf-1)."""
    return (
        query.replace("$timeFilter", "time > now() - 5d")
        .replace("$__interval", "10m")
        .replace("$plant", ".*")
        .replace("$device", "saf-1")
    )


@pytest.mark.slow
@pytest.mark.xdist_group("dashboards-plant-data")  # one worker builds the 30 simulated hours once
@pytest.mark.parametrize("uid", sorted(UIDS))
def test_every_query_returns_rows_from_simulator_data(
    uid: str, plant_data: tuple[InfluxDBServer, str]
) -> None:
    server, db = plant_data
    model = load_dashboards()[uid]
    variables = [v["query"] for v in model["templating"]["list"]]
    for title, query in [("variable", q) for q in variables] + [
        (title, t["query"]) for title, t in targets(model)
    ]:
        sent = interpolate(query)
        assert not re.search(r"\$\w", sent), sent  # every variable replaced
        series = server.query(sent, db)
        assert series and any(s["values"] for s in series), f"{uid}: {title}: no rows for {sent}"


@pytest.mark.slow
@pytest.mark.xdist_group("dashboards-plant-data")
def test_sector_compliance_is_energy_over_production_of_the_month(
    plant_data: tuple[InfluxDBServer, str],
) -> None:
    """The month-to-date figure is Σ energy / Σ production, not a mean of per-tap values."""
    server, db = plant_data
    (query,) = [
        t["query"] for _, t in targets(load_dashboards()["sector-compliance"]) if "windows" in t["query"]
    ]
    rows = {
        (s["tags"]["device"], s["tags"]["target"]): s["values"][0]
        for s in server.query(interpolate(query), db)
    }
    _, month_to_date, limit, windows = rows[("saf-1", "ferroalloy-fesi-unit-power")]
    [kpis] = server.query(
        'SELECT "numerator", "denominator" FROM "plantwatch_kpi" WHERE "device" = \'saf-1\' AND '
        "\"kind\" = 'closed' AND \"target\" = 'ferroalloy-fesi-unit-power' AND time > now() - 5d",
        db,
    )
    energy = sum(v[1] for v in kpis["values"])
    produced = sum(v[2] for v in kpis["values"])
    assert windows == len(kpis["values"]) >= 10  # a tap every 2 simulated hours over 30 hours
    assert month_to_date == pytest.approx(energy / produced)
    assert limit == 7800
    assert 7000 < month_to_date < 8200


@pytest.mark.slow
@pytest.mark.xdist_group("dashboards-plant-data")
def test_plant_total_is_both_furnaces_energy_over_their_tonnes_and_projections_are_shown(
    plant_data: tuple[InfluxDBServer, str],
) -> None:
    server, db = plant_data
    panels = {title: t["query"] for title, t in targets(load_dashboards()["sector-compliance"])}

    def rows(title_start: str) -> dict[tuple[str, str], list[Any]]:
        (query,) = [q for title, q in panels.items() if title.startswith(title_start)]
        return {
            (s["tags"]["device"], s["tags"]["target"]): s["values"][0]
            for s in server.query(interpolate(query), db)
        }

    rule = "ferroalloy-fesi-unit-power:month"
    _, value, energy, tonnes, limit = rows("Plant totals")[("total-ferrosilicon", rule)]
    own = {}
    for device in ("saf-1", "saf-4"):  # the two ferrosilicon furnaces' own month to date
        [series] = server.query(
            f'SELECT last("numerator"), last("denominator") FROM "plantwatch_kpi" WHERE "device" = '
            f"'{device}' AND \"target\" = '{rule}' AND \"kind\" = 'to-date' AND time > now() - 5d",
            db,
        )
        own[device] = series["values"][0][1:]
    assert energy == pytest.approx(own["saf-1"][0] + own["saf-4"][0])
    assert tonnes == pytest.approx(own["saf-1"][1] + own["saf-4"][1])
    assert value == pytest.approx(energy / tonnes) and limit == 7800
    projected = rows("Month-end projection")
    assert {device for device, _ in projected} >= {"saf-1", "saf-4", "kiln-1", "potline-1", "eaf-1"}
    _, saf1, saf1_limit = projected[("saf-1", f"{rule}:projection")]
    assert 7000 < saf1 < 8200 and saf1_limit == 7800
    _, annual, month_t, permitted = rows("Capacity")[("capacity-ferroalloy", "ferroalloy-capacity")]
    assert permitted == 150000 and month_t > 0 and annual > month_t  # a month's tonnes, annualised


@pytest.mark.slow
@pytest.mark.xdist_group("dashboards-plant-data")
def test_province_month_to_date_sums_each_devices_month_per_plant(
    plant_data: tuple[InfluxDBServer, str],
) -> None:
    server, db = plant_data
    (query,) = [
        t["query"] for title, t in targets(load_dashboards()["province"]) if title.startswith("Month")
    ]
    rows = {
        (s["tags"]["plant"], s["tags"]["target"]): s["values"][0]
        for s in server.query(interpolate(query), db)
    }
    # the pot line's rolling target has its month too; the two ferrosilicon furnaces make one figure
    assert ("demo-works", "aluminium-dc-power:month") in rows
    _, fesi, limit = rows[("demo-works", "ferroalloy-fesi-unit-power:month")]
    [[total]] = [
        [row[1:] for row in series["values"]]
        for series in server.query(
            'SELECT last("numerator") / last("denominator") FROM "plantwatch_kpi" WHERE "device" = '
            "'total-ferrosilicon' AND \"kind\" = 'to-date' AND time > now() - 5d",
            db,
        )
    ]
    assert fesi == pytest.approx(total[0]) and limit == 7800  # the plant total, from its devices


@pytest.mark.slow
@pytest.mark.xdist_group("dashboards-plant-data")
def test_the_simulated_stacks_breach_every_excursion_hour(plant_data: tuple[InfluxDBServer, str]) -> None:
    """The simulated CEMS's excursions start on its clock's hours, and history() sets that clock to
    the results' timestamps: each 4-hourly excursion's first hour averages ~55 mg/m³, a breach
    (a clock of its own, as before, split them over two hours of ~47, and the dashboards' breach
    panels had rows only by chance)."""
    server, db = plant_data
    series = server.query(
        'SELECT count("value") FROM "plantwatch_kpi" WHERE "target" = \'ferroalloy-dust\' AND '
        '"kind" = \'closed\' AND "value" > 50 AND time > now() - 28h GROUP BY "device"',
        db,
    )
    breaches = {s["tags"]["device"]: s["values"][0][1] for s in series}
    assert set(breaches) == {"stack-1", "stack-2"}
    assert all(count >= 6 for count in breaches.values()), breaches  # 7 excursions in 28 h


def test_push_uploads_every_dashboard_and_names_what_grafana_refused(tmp_path: Path) -> None:
    api = GrafanaApi("glsa_push")
    api.start()
    try:
        lines: list[str] = []
        urls = push_dashboards(
            load_dashboards(), api.url, "glsa_push", folder_uid="plants", progress=lines.append
        )
        assert set(api.dashboards) == UIDS and len(urls) == len(UIDS)
        assert api.dashboards["alerts"]["title"] == build_all()["alerts"]["title"]
        assert set(api.dashboard_folders.values()) == {"plants"}
        assert lines[0] == f"[1/{len(UIDS)}] alerts: version 1 /d/alerts/alerts"  # in file name order
        push_dashboards(load_dashboards(), api.url, "glsa_push")  # again: overwritten, version 2
        assert {d["version"] for d in api.dashboards.values()} == {2}

        with pytest.raises(PushError, match=r"dashboard 'alerts': 401 .*Unauthorized"):
            push_dashboards(load_dashboards(), api.url, "wrong-token")
        with pytest.raises(PushError, match=r"dashboard 'plant-overview': 400 .*title cannot be empty"):
            push_dashboards({"plant-overview": {"uid": "plant-overview"}}, api.url, "glsa_push")
    finally:
        api.stop()
    nobody = free_port()
    with pytest.raises(PushError, match=rf"^http://127.0.0.1:{nobody}: dashboard 'alerts': "):
        push_dashboards(load_dashboards(), f"http://127.0.0.1:{nobody}", "t", timeout=2)


def test_cli_build_check_and_push_without_a_token(tmp_path: Path) -> None:
    ok = plantwatch("dashboards", "build", "--check")
    assert ok.returncode == 0, ok.stderr
    env_before = os.environ.pop("GRAFANA_TOKEN", None)
    try:
        missing = plantwatch("dashboards", "push", "--url", "http://127.0.0.1:1")
    finally:
        if env_before is not None:
            os.environ["GRAFANA_TOKEN"] = env_before
    assert missing.returncode == 1
    assert re.search(r"GRAFANA_TOKEN \(the Grafana token\) is not set", missing.stderr)


def test_device_panels_select_by_role_so_a_plants_own_map_gets_them(tmp_path: Path) -> None:
    """tests/cases/valid_plant has a custom SAF map whose power field is `power`, written to the
    measurement `ferroalloy`: built with that plant, the power panel reads it beside active_power."""
    plant = REPO / "tests" / "cases" / "valid_plant" / "plant.yaml"
    built = plantwatch("dashboards", "build", "--config", str(plant), "--out", str(tmp_path))
    assert built.returncode == 0, built.stderr
    detail = json.loads((tmp_path / "device-detail.json").read_text())
    [power] = [t["query"] for title, t in targets(detail) if title == "Active power"]
    assert power.startswith('SELECT mean("active_power") AS "active_power", mean("power") AS "power" FROM ')
    assert "ferroalloy" in power.split(" FROM ")[1].split(" WHERE ")[0]
    # the shipped build is untouched, and --config alone says where to write instead of overwriting it
    assert stale_dashboards() == []
    refused = plantwatch("dashboards", "build", "--config", str(plant))
    assert refused.returncode == 1 and "--out" in refused.stderr


def test_a_role_no_map_has_is_an_error_not_an_empty_panel() -> None:
    from plantwatch.config.roles import Role
    from plantwatch.dashboards.build import role_fields, shipped_maps

    cems_only = [m for m in shipped_maps() if m.sector == "emissions"]
    assert role_fields(cems_only, Role.DUST_CONCENTRATION).names == ("dust",)
    with pytest.raises(ValueError, match="no map has a value with role 'power'"):
        role_fields(cems_only, Role.POWER)
