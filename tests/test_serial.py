"""Serial RTU for real: a pymodbus serial server and the collector on two ends of a socat pty pair."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer

from plantwatch.collector.scheduler import Collector
from plantwatch.config.device_map import DeviceMap
from plantwatch.config.plant import parse_plant_config
from plantwatch.core.reading import PollResult
from plantwatch.simulator.device import SimulatedDevice
from tests.modbus_bank import LoopThread, assert_values_match
from tests.waiting import wait_until, wait_until_async


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked pseudo-terminals, like the two ends of an RS-485 line."""
    socat = shutil.which("socat")
    assert socat, "socat is required (apt-get install socat; .ci/run installs it)"
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"], stderr=subprocess.DEVNULL
    )
    wait_until(lambda: a.exists() and b.exists(), 10, "socat creating the pty pair")
    yield str(a), str(b)
    proc.terminate()
    proc.wait(5)


def test_two_units_share_one_serial_bus(
    pty_pair: tuple[str, str], loop_thread: LoopThread, shipped_maps: dict[str, DeviceMap]
) -> None:
    server_end, collector_end = pty_pair
    # the CEMS clock at simulated second 600 reads now: within event_time.max_skew
    cems = SimulatedDevice(shipped_maps["dust_cems"], 1, clock=lambda: 600.0, epoch=time.time() - 600.0)
    kiln = SimulatedDevice(shipped_maps["cement_kiln_line"], 2, clock=lambda: 600.0)
    # 8N1: a Linux pty rejects parity bits (termios EINVAL); real RS-485 ports take parity=E.
    url = f"serial://{collector_end}?baudrate=38400"
    timing = {"interval": "300ms", "timeout": "250ms"}
    plant = parse_plant_config(
        {
            "plant": {"id": "p", "name": "P"},
            "devices": [
                {"id": "cems", "map": "dust_cems", "url": url, "unit": 1, **timing},
                {"id": "kiln", "map": "cement_kiln_line", "url": url, "unit": 2, **timing},
            ],
        },
        "plant.yaml",
        Path("."),
    )
    results: dict[str, list[PollResult]] = defaultdict(list)

    async def run() -> None:
        server = ModbusSerialServer(
            [cems.sim_device(), kiln.sim_device()],
            framer=FramerType.RTU,
            port=server_end,
            baudrate=38400,
        )
        await server.serve_forever(background=True)
        try:
            async with Collector(plant, lambda r: results[r.device].append(r)) as collector:
                assert len(collector.buses) == 1
                await wait_until_async(
                    lambda: all(len(results[d]) >= 4 for d in ("cems", "kiln")), 10, "4 polls of each unit"
                )
        finally:
            await server.shutdown()

    loop_thread.run(run())
    for device_id, sim in (("cems", cems), ("kiln", kiln)):
        polls = results[device_id]
        assert len(polls) >= 4, (device_id, len(polls))
        assert all(p.ok for p in polls), [r.quality for p in polls for r in p.readings if not r.good]
        expected = sim.values(600.0)
        assert_values_match(polls[-1].readings, expected)
