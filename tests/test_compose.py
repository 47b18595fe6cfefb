"""docker-compose.yml and the Dockerfile against the code: Docker cannot run here, so every file,
port, environment variable and command the stack refers to is checked to exist and to match."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
import yaml

from plantwatch.cli import build_parser
from plantwatch.config.plant import Plant, load_plant_config
from plantwatch.config.roles import Sector
from plantwatch.dashboards.files import dashboards_dir, provisioning_dir

REPO = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PLANTWATCH = {"simulator": "simulate", "collector": "collect", "alerts": "alerts"}  # service: command


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repo file a bind mount puts at `container_path` in the service."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./") and (container_path == target or container_path.startswith(target + "/")):
            return REPO / source[2:] / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"nothing is mounted at {container_path}")


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}


def default(value: str) -> str:
    """`${VAR:-default}` as compose resolves it when VAR is unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def plant_of(name: str) -> Plant:
    command = SERVICES[name]["command"]
    return load_plant_config(host_path(SERVICES[name], command[command.index("--config") + 1]))


def test_every_bind_mount_and_build_context_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source}"
            else:
                assert source in COMPOSE["volumes"], f"{name}: named volume {source} not declared"
        if "build" in service:
            assert (REPO / service["build"] / "Dockerfile").is_file()
        assert "image" in service, name


def test_plantwatch_commands_parse_and_their_configs_are_valid() -> None:
    for name, command in PLANTWATCH.items():
        args = build_parser().parse_args(SERVICES[name]["command"])
        assert args.command == command, name
        plant = plant_of(name)
        assert plant.config.plant.id == "demo-works"
    assert {m.sector for m in plant_of("simulator").maps.values()} == set(get_args(Sector))


def test_every_address_in_the_plant_config_is_a_service_and_port_of_the_stack() -> None:
    plant = plant_of("collector").config
    mosquitto_conf = host_path(SERVICES["mosquitto"], "/mosquitto/config/mosquitto.conf").read_text()
    listeners = {int(m) for m in re.findall(r"^listener (\d+)", mosquitto_conf, re.MULTILINE)}
    assert plant.influx is not None and plant.mqtt is not None and plant.alerts.grafana is not None
    addresses = [
        (urlsplit(plant.influx.url).hostname, urlsplit(plant.influx.url).port, "influxdb", {8086}),
        (urlsplit(plant.mqtt.url).hostname, urlsplit(plant.mqtt.url).port, "mosquitto", listeners),
        (
            urlsplit(plant.alerts.grafana.url).hostname,
            urlsplit(plant.alerts.grafana.url).port,
            "grafana",
            container_ports(SERVICES["grafana"]),
        ),
    ]
    assert plant.alerts.smtp is not None
    addresses.append(
        (plant.alerts.smtp.host, plant.alerts.smtp.port, "mailpit", container_ports(SERVICES["mailpit"]))
    )
    for host, port, service, open_ports in addresses:
        assert host == service and port in open_ports, (host, port, service, open_ports)
    for device in plant.devices:
        assert urlsplit(device.url).hostname == "simulator", device.id
    # the simulator serves exactly the devices the collector polls
    assert host_path(SERVICES["simulator"], "/config/plant.yaml") == host_path(
        SERVICES["collector"], "/config/plant.yaml"
    )


def test_every_secret_the_config_names_is_in_the_environment_of_the_service_that_needs_it() -> None:
    plant = plant_of("alerts").config
    assert plant.influx is not None and plant.alerts.grafana is not None
    needs = {
        "collector": [plant.influx.token_env],
        "alerts": [
            plant.influx.token_env,
            plant.alerts.grafana.username_env,
            plant.alerts.grafana.password_env,
        ],
    }
    for name, variables in needs.items():
        environment = SERVICES[name]["environment"]
        for variable in variables:
            assert variable in environment, f"{name} lacks {variable}"
    influx_env, grafana_env = SERVICES["influxdb"]["environment"], SERVICES["grafana"]["environment"]
    token = influx_env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    for name in ("collector", "alerts", "grafana"):
        assert SERVICES[name]["environment"]["INFLUX_TOKEN"] == token, name
    assert (plant.influx.org, plant.influx.bucket) == (
        influx_env["DOCKER_INFLUXDB_INIT_ORG"],
        influx_env["DOCKER_INFLUXDB_INIT_BUCKET"],
    )
    assert default(SERVICES["alerts"]["environment"]["GRAFANA_PASSWORD"]) == default(
        grafana_env["GF_SECURITY_ADMIN_PASSWORD"]
    )
    assert SERVICES["alerts"]["environment"]["GRAFANA_USER"] == grafana_env["GF_SECURITY_ADMIN_USER"]


def test_grafana_provisioning_is_mounted_and_its_variables_are_set() -> None:
    grafana = SERVICES["grafana"]
    assert host_path(grafana, "/etc/grafana/provisioning") == provisioning_dir()
    provider = yaml.safe_load((provisioning_dir() / "dashboards" / "plantwatch.yaml").read_text())
    assert host_path(grafana, provider["providers"][0]["options"]["path"]) == dashboards_dir()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home).is_file()
    for path in provisioning_dir().rglob("*.yaml"):
        for variable in re.findall(r"\$\{(\w+)\}", path.read_text()):
            assert variable in grafana["environment"], f"{path.name} uses {variable}"
    # the InfluxQL database the datasource asks for is the one create-dbrp.sh maps
    assert grafana["environment"]["INFLUX_DATABASE"] == SERVICES["influxdb"]["environment"]["INFLUX_DATABASE"]
    assert urlsplit(grafana["environment"]["INFLUX_URL"]).hostname == "influxdb"


def test_influxdb_init_script_maps_the_database_and_is_executable() -> None:
    script = host_path(SERVICES["influxdb"], "/docker-entrypoint-initdb.d/create-dbrp.sh")
    assert script.stat().st_mode & 0o111
    text = script.read_text()
    assert "influx v1 dbrp create" in text and "${INFLUX_DATABASE}" in text
    assert "${DOCKER_INFLUXDB_INIT_BUCKET}" in text


def test_dockerfile_copies_what_exists_and_runs_the_console_script() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    copies = [shlex.split(line)[1:-1] for line in lines if line.startswith("COPY ")]
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'plantwatch = "plantwatch.cli:main"' in pyproject
    assert 'ENTRYPOINT ["plantwatch"]' in lines
    assert any(line.startswith("FROM python:3.11") for line in lines)  # requires-python >= 3.11


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name: str) -> None:
    image = SERVICES[name]["image"]
    assert ":" in image and not image.endswith(":latest"), image


def test_province_profile_bridges_plant_b_to_the_central_broker_and_splits_its_alerts() -> None:
    b_services = {n: s for n, s in SERVICES.items() if "province" in s.get("profiles", [])}
    assert set(b_services) == {"edge-mosquitto-b", "simulator-b", "collector-b", "alerts-b-1", "alerts-b-2"}
    plant = plant_of("collector-b")
    assert plant.config.plant.id != plant_of("collector").config.plant.id  # a second plant
    assert {urlsplit(d.url).hostname for d in plant.config.devices} == {"simulator-b"}
    assert plant.config.mqtt is not None and urlsplit(plant.config.mqtt.url).hostname == "edge-mosquitto-b"
    assert plant.config.influx is not None and urlsplit(plant.config.influx.url).hostname == "influxdb"
    edge = host_path(SERVICES["edge-mosquitto-b"], "/mosquitto/config/mosquitto.conf").read_text()
    assert re.search(r"^address mosquitto:1883$", edge, re.MULTILINE)
    assert re.search(r"^topic plantwatch/v2/# out 1$", edge, re.MULTILINE)
    assert re.search(r"^cleansession false$", edge, re.MULTILINE)
    workers = []
    for name in ("alerts-b-1", "alerts-b-2"):
        args = build_parser().parse_args(SERVICES[name]["command"])
        assert args.command == "alerts" and urlsplit(args.mqtt_url).hostname == "mosquitto"
        assert plant.config.influx.token_env in SERVICES[name]["environment"]
        workers.append(args.worker)
    assert workers == ["1/2", "2/2"]
    assert host_path(SERVICES["simulator-b"], "/config/plant-b.yaml") == host_path(
        SERVICES["collector-b"], "/config/plant-b.yaml"
    )
