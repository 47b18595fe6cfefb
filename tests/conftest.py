"""Shared fixtures: free ports, live register-bank servers, shipped maps, InfluxDB, Mosquitto, amqtt, an SMTP
server with STARTTLS and AUTH, and the Grafana API stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plantwatch.config.device_map import DeviceMap, load_device_map, shipped_maps_dir
from plantwatch.simulator.server import SimulatorServer
from tests.modbus_bank import LoopThread, RegisterBank
from tests.services import processes
from tests.services.amqtt_broker import AmqttServer
from tests.services.grafana_api import GrafanaApi
from tests.services.influxdb import InfluxDBServer
from tests.services.mosquitto import MosquittoServer
from tests.services.smtp import SmtpServer

GRAFANA_TOKEN = "glsa_test_token"  # what the `grafana` stand-in accepts


@pytest.fixture(autouse=True)
def no_stray_plantwatch() -> Iterator[None]:
    """A plantwatch process a test started and left running (it failed before stopping it) is
    killed when the test ends, instead of polling and writing beside the tests after it."""
    before = len(processes.STARTED)
    yield
    for proc in processes.STARTED[before:]:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    del processes.STARTED[before:]


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


class BankServer:
    """A live server on loopback with register banks at units 1 and 2.

    A unit that never answers is a bank with a long `delay`: pymodbus 3.16's SimCore raises
    KeyError for unknown unit ids instead of honouring `ignore_missing_devices`.
    """

    def __init__(self, loop_thread: LoopThread) -> None:
        self.loop_thread = loop_thread
        self.banks = {1: RegisterBank(1), 2: RegisterBank(2)}

    async def start(self) -> None:
        # SimulatorServer only needs objects with sim_device(); the banks provide it.
        self.server = SimulatorServer(list(self.banks.values()))  # type: ignore[arg-type]
        await self.server.__aenter__()
        self.port = self.server.port

    async def stop(self) -> None:
        await self.server.__aexit__(None, None, None)

    def reset(self) -> None:
        for bank in self.banks.values():
            bank.__init__(bank.unit)  # type: ignore[misc]

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def bank_server(loop_thread: LoopThread) -> Iterator[BankServer]:
    server = BankServer(loop_thread)
    loop_thread.run(server.start())
    yield server
    loop_thread.run(server.stop())


@pytest.fixture
def bank(bank_server: BankServer) -> BankServer:
    """The session's bank server with both banks emptied."""
    bank_server.reset()
    return bank_server


@pytest.fixture(scope="session")
def shipped_maps() -> dict[str, DeviceMap]:
    return {p.stem: load_device_map(p) for p in sorted(shipped_maps_dir().glob("*.yaml"))}


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDBServer]:
    """One real InfluxDB for the session, on free ports with its own directories."""
    server = InfluxDBServer(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx_db(influxdb: InfluxDBServer, request: pytest.FixtureRequest) -> str:
    """A fresh database for one test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:60]
    influxdb.query(f'DROP DATABASE "{name}"')
    influxdb.create_database(name)
    return name


@pytest.fixture
def plant_influx(influxdb: InfluxDBServer) -> InfluxDBServer:
    """The session's InfluxDB with database `plant` emptied, for tests that never stop InfluxDB."""
    influxdb.query('DROP DATABASE "plant"')
    influxdb.create_database("plant")
    return influxdb


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxDBServer]:
    """An InfluxDB of the test's own (with database `plant`), for tests that stop and start it."""
    server = InfluxDBServer(tmp_path / "influxdb")
    server.start()
    server.create_database("plant")
    yield server
    server.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A Mosquitto of the test's own, on a free port with its own persistence directory."""
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def amqtt_broker() -> Iterator[AmqttServer]:
    """plantwatch's embedded amqtt broker (MQTT 3.1.1) on a free port."""
    server = AmqttServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) requiring STARTTLS, then AUTH as plantwatch / mail-s3cret."""
    server = SmtpServer(tmp_path / "smtp", users={"plantwatch": "mail-s3cret"}, starttls=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def grafana() -> Iterator[GrafanaApi]:
    """The Grafana API stand-in, accepting GRAFANA_TOKEN."""
    api = GrafanaApi(GRAFANA_TOKEN)
    api.start()
    yield api
    api.stop()
