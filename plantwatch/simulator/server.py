"""Modbus TCP servers on loopback for simulated devices (`plantwatch simulate`)."""

from __future__ import annotations

import logging
from types import TracebackType

from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

from plantwatch.config.device_map import DeviceMap
from plantwatch.config.plant import Plant
from plantwatch.simulator.device import SimClock, SimulatedDevice

log = logging.getLogger(__name__)


class SimulatorServer:
    """One listening socket serving one or more simulated units (`async with` starts and stops it).

    `port=0` picks a free port; read it from `port` once started.
    """

    def __init__(
        self,
        devices: list[SimulatedDevice],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rtu_framing: bool = False,
    ) -> None:
        self.devices = devices
        self.host = host
        self.port = port
        self._server = ModbusTcpServer(
            [d.sim_device() for d in devices],
            address=(host, port),
            framer=FramerType.RTU if rtu_framing else FramerType.SOCKET,
        )

    async def __aenter__(self) -> SimulatorServer:
        await self._server.serve_forever(background=True)
        sockets = getattr(self._server.transport, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._server.shutdown()


def servers_for_plant(plant: Plant, *, seed: int = 0, speed: float = 1.0) -> list[SimulatorServer]:
    """A server per TCP endpoint of the plant, serving every device configured behind it."""
    clock = SimClock(speed=speed)
    grouped: dict[tuple[str, str, int], list[SimulatedDevice]] = {}
    for index, device in enumerate(plant.devices_of(DeviceMap)):
        endpoint = device.endpoint
        if endpoint.kind == "serial":
            log.warning("simulate: %s is on a serial port; only TCP endpoints are simulated", device.id)
            continue
        device_map = plant.maps[device.id]
        assert isinstance(device_map, DeviceMap)
        sim = SimulatedDevice(device_map, device.unit, seed=seed + index, clock=clock)
        grouped.setdefault((endpoint.kind, endpoint.host, endpoint.port), []).append(sim)
    return [
        SimulatorServer(devices, host=host, port=port, rtu_framing=kind == "rtu+tcp")
        for (kind, host, port), devices in grouped.items()
    ]
