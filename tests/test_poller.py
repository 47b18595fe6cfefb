"""Polling against live servers: exceptions, timeouts, dead devices, counters, request counts."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from pymodbus.constants import ExcCodes

from plantwatch.collector.modbus.poller import ModbusDevicePoller
from plantwatch.collector.modbus.transport import ModbusBus
from plantwatch.config.device_map import DeviceMap, parse_device_map
from plantwatch.config.plant import DeviceConfig
from plantwatch.core.reading import PollResult
from plantwatch.simulator.device import SimulatedDevice
from plantwatch.simulator.server import SimulatorServer
from plantwatch.simulator.signals import Integral, Level
from tests.conftest import BankServer
from tests.modbus_bank import assert_values_match
from tests.services.processes import free_port
from tests.test_modbus_types import one_register_map, poll
from tests.waiting import wait_until_async


def two_table_map() -> DeviceMap:
    return parse_device_map(
        {
            "model": "t",
            "description": "two tables",
            "sector": "cement",
            "protocol": "modbus",
            "registers": [
                {"name": "power", "table": "holding", "address": 0, "type": "uint16", "unit": "kW"},
                {"name": "temperature", "table": "input", "address": 0, "type": "int16", "scale": 0.1},
            ],
        },
        "two.yaml",
    )


def test_exception_response_keeps_the_good_part_of_the_poll(bank: BankServer) -> None:
    bank.banks[1].set_registers("holding", 0, [1234])
    bank.banks[1].fail["input"] = ExcCodes.DEVICE_FAILURE
    result = poll(bank, two_table_map())
    by_field = {r.field: r for r in result.readings}
    assert (by_field["power"].value, by_field["power"].quality) == (1234, "good")
    assert by_field["power"].unit == "kW"
    assert by_field["temperature"].value is None
    assert by_field["temperature"].quality == "exception 4 DEVICE_FAILURE"
    assert result.requests == 2


def test_reading_past_the_device_end_is_illegal_address(bank: BankServer) -> None:
    result = poll(bank, one_register_map(address=2047, type="uint32"))
    assert [r.quality for r in result.readings] == ["exception 2 ILLEGAL_ADDRESS"]


def test_timeout_marks_values_skips_the_rest_and_the_bus_recovers(bank: BankServer) -> None:
    device_map = two_table_map()
    bank.banks[1].set_registers("holding", 0, [77])
    bank.banks[2].delay = 5.0  # unit 2 never answers in time

    async def run() -> tuple[PollResult, float, PollResult, int]:
        # The bus's timeout bounds connecting, which can take a while on a loaded machine; each
        # read waits its own device's 200 ms.
        bus = ModbusBus(DeviceConfig(id="x", map="t", url=bank.url).endpoint, timeout=1.0)
        silent = DeviceConfig(id="silent", map="t", url=bank.url, unit=2, timeout="200ms")
        live = DeviceConfig(id="live", map="t", url=bank.url, unit=1, timeout="200ms")
        assert (await ModbusDevicePoller(live, device_map, bus).poll()).ok  # connected: not timed
        started = time.monotonic()
        dead_result = await ModbusDevicePoller(silent, device_map, bus).poll()
        elapsed = time.monotonic() - started
        live_result = await ModbusDevicePoller(live, device_map, bus).poll()
        bus.close()
        return dead_result, elapsed, live_result, bus.connects

    dead_result, elapsed, live_result, connects = bank.loop_thread.run(run())
    assert [r.quality for r in dead_result.readings] == ["timeout", "timeout"]
    assert dead_result.requests == 1  # the second request was not sent after the timeout
    assert elapsed < 0.6
    assert live_result.ok and live_result.readings[0].value == 77
    assert connects == 2  # the timeout rebuilt the connection


def test_each_device_on_a_shared_bus_waits_its_own_timeout(bank: BankServer) -> None:
    """A gateway's bus is built with its first device's timeout; a slower device behind it still
    gets its own longer one (pymodbus' wait, set from the bus, used to cut it short)."""
    device_map = one_register_map(address=3, type="uint16")
    bank.banks[2].set_registers("holding", 3, [333])
    bank.banks[2].delay = 0.5  # slower than the bus's 0.2 s, within its own 2 s

    async def run() -> PollResult:
        fast = DeviceConfig(id="fast", map="t", url=bank.url, unit=1, timeout="200ms")
        slow = DeviceConfig(id="slow", map="t", url=bank.url, unit=2, timeout="2s", interval="5s")
        bus = ModbusBus(fast.endpoint, timeout=fast.timeout)  # as the scheduler builds it
        await ModbusDevicePoller(fast, device_map, bus).poll()
        result = await ModbusDevicePoller(slow, device_map, bus).poll()
        bus.close()
        return result

    result = bank.loop_thread.run(run())
    assert [r.quality for r in result.readings] == ["good"]
    assert result.readings[0].value == 333


def test_an_answer_in_time_counts_though_the_loop_was_held_up_past_the_timeout(bank: BankServer) -> None:
    """A collector's loop held up past a read's timeout (a long callback, a garbage collection, a
    CPU taken by InfluxDB's compactions) finds the device's answer waiting in the socket and the
    timer expired at once: the answer, which came in time, counts. asyncio.timeout alone cancelled
    the read first, and every read in flight became a timeout."""
    device = bank.banks[1]
    device.set_registers("holding", 3, [333])
    endpoint = DeviceConfig(id="d", map="t", url=bank.url, unit=1).endpoint

    async def run() -> list[int] | list[bool]:  # on this thread's loop; the device is on its own
        bus = ModbusBus(endpoint, timeout=0.5)
        await bus.read(1, 3, 3, 1, 0.5)  # connected
        asked = device.reads["holding"]
        device.delay = 0.3  # the answer leaves the device 0.3 s after the request reached it
        read = asyncio.create_task(bus.read(1, 3, 3, 1, 0.5))
        await wait_until_async(lambda: device.reads["holding"] > asked, 5, "the request reached the device")
        time.sleep(1.5)  # the loop is held up: the answer arrives, the 0.5 s deadline passes
        try:
            return await read
        finally:
            bus.close()

    assert asyncio.run(run()) == [333]


def test_a_late_answer_never_poisons_the_next_read(bank: BankServer) -> None:
    device_map = one_register_map(address=3, type="uint16")
    device = DeviceConfig(id="slow", map="t", url=bank.url, unit=1, timeout="100ms")

    async def run() -> tuple[PollResult, PollResult]:
        bus = ModbusBus(device.endpoint, timeout=1.0)  # connecting; each read waits 100 ms
        poller = ModbusDevicePoller(device, device_map, bus)
        bank.banks[1].set_registers("holding", 3, [111])
        bank.banks[1].delay = 0.3
        slow = await poller.poll()
        bank.banks[1].delay = 0.0
        bank.banks[1].set_registers("holding", 3, [222])
        await asyncio.sleep(0.3)  # the late answer to the first request arrives now
        fresh = await poller.poll()
        bus.close()
        return slow, fresh

    slow, fresh = bank.loop_thread.run(run())
    assert [r.quality for r in slow.readings] == ["timeout"]
    assert [(r.value, r.quality) for r in fresh.readings] == [(222, "good")]


def test_connection_refused_is_reported_and_retried_with_backoff(loop_thread: object) -> None:
    port = free_port()
    device = DeviceConfig(id="gone", map="t", url=f"tcp://127.0.0.1:{port}", timeout="200ms")
    device_map = one_register_map(address=0)

    async def run() -> list[str]:
        bus = ModbusBus(device.endpoint, timeout=0.2, backoff_min=5)
        poller = ModbusDevicePoller(device, device_map, bus)
        qualities = [(await poller.poll()).readings[0].quality for _ in range(2)]
        bus.close()
        return qualities

    first, second = loop_thread.run(run())  # type: ignore[attr-defined]
    assert first == f"cannot connect to tcp://127.0.0.1:{port}"
    assert second.startswith(f"not connected to tcp://127.0.0.1:{port} (next attempt in")


def test_first_failure_logs_error_repeats_log_debug(
    bank: BankServer, caplog: pytest.LogCaptureFixture
) -> None:
    bank.banks[1].fail["holding"] = ExcCodes.ILLEGAL_FUNCTION
    device_map = one_register_map(address=0)
    device = DeviceConfig(id="noisy", map="t", url=bank.url)

    async def run() -> None:
        bus = ModbusBus(device.endpoint)
        poller = ModbusDevicePoller(device, device_map, bus)
        for _ in range(3):
            await poller.poll()
        bank.banks[1].fail.clear()
        await poller.poll()
        bus.close()

    with caplog.at_level(logging.DEBUG, logger="plantwatch"):
        bank.loop_thread.run(run())
    failures = [r for r in caplog.records if "exception 1 ILLEGAL_FUNCTION" in r.getMessage()]
    assert [r.levelname for r in failures] == ["ERROR", "DEBUG", "DEBUG"]
    assert "device noisy (unit 1 at tcp://127.0.0.1:" in failures[0].getMessage()
    assert "read_holding_registers address 0 count 1" in failures[0].getMessage()
    assert any(r.levelname == "INFO" and "polling again" in r.getMessage() for r in caplog.records)


def test_exact_request_counts_after_coalescing(bank: BankServer, shipped_maps: dict[str, DeviceMap]) -> None:
    device_map = shipped_maps["saf_ferrosilicon"]
    poll(bank, device_map)
    assert dict(bank.banks[1].reads) == {"holding": 1, "input": 1, "coil": 1}
    assert sorted(bank.banks[1].spans) == [("coil", 0, 1), ("holding", 0, 21), ("input", 0, 4)]

    bank.reset()
    device = DeviceConfig(id="d", map="t", url=bank.url, max_insert=0)

    async def run() -> PollResult:
        bus = ModbusBus(device.endpoint)
        result = await ModbusDevicePoller(device, device_map, bus).poll()
        bus.close()
        return result

    result = bank.loop_thread.run(run())
    assert result.requests == 5
    assert sorted(bank.banks[1].spans) == [
        ("coil", 0, 1),
        ("holding", 0, 4),
        ("holding", 10, 4),
        ("holding", 20, 1),
        ("input", 0, 4),
    ]


def test_counter_rollover_wraps_at_the_declared_width(loop_thread: object) -> None:
    device_map = parse_device_map(
        {
            "model": "t",
            "description": "counters",
            "sector": "ferroalloy",
            "protocol": "modbus",
            "registers": [
                {"name": "power", "address": 0, "type": "float32", "unit": "kW", "role": "power"},
                {
                    "name": "energy",
                    "address": 2,
                    "type": "uint32",
                    "unit": "kWh",
                    "role": "energy_counter",
                    "counter": {"bits": 32},
                },
                {"name": "energy_16", "address": 4, "type": "uint32", "counter": {"bits": 16}},
            ],
        },
        "counters.yaml",
    )
    now = [0.0]
    power = Level(360_000)  # kW: 100 kWh per second
    sim = SimulatedDevice(
        device_map,
        1,
        clock=lambda: now[0],
        signals={
            "power": power,
            "energy": Integral("power", 1 / 3600, 2**32 - 150),
            "energy_16": Integral("power", 1 / 3600, 2**16 - 150),
        },
    )

    async def run() -> list[dict[str, object]]:
        async with SimulatorServer([sim]) as server:
            device = DeviceConfig(id="meter", map="t", url=f"tcp://127.0.0.1:{server.port}")
            bus = ModbusBus(device.endpoint)
            poller = ModbusDevicePoller(device, device_map, bus)
            seen = []
            for t in (0.0, 1.0, 2.0):
                now[0] = t
                seen.append({r.field: r.value for r in (await poller.poll()).readings})
            bus.close()
            return seen

    seen = loop_thread.run(run())  # type: ignore[attr-defined]
    assert [s["energy"] for s in seen] == [2**32 - 150, 2**32 - 50, 50]
    assert [s["energy_16"] for s in seen] == [2**16 - 150, 2**16 - 50, 50]


async def poll_once(device_map: DeviceMap, sim: SimulatedDevice, *, rtu_framing: bool = False) -> PollResult:
    """One poll of `sim` (unit 7) by a fresh poller on its own bus."""
    async with SimulatorServer([sim], rtu_framing=rtu_framing) as server:
        scheme = "rtu+tcp" if rtu_framing else "tcp"
        device = DeviceConfig(id="cems", map="t", url=f"{scheme}://127.0.0.1:{server.port}", unit=7)
        bus = ModbusBus(device.endpoint)
        result = await ModbusDevicePoller(device, device_map, bus).poll()
        bus.close()
        return result


def test_rtu_framing_over_tcp(loop_thread: object, shipped_maps: dict[str, DeviceMap]) -> None:
    device_map = shipped_maps["dust_cems"]
    # its clock at simulated second 1234 reads now: within event_time.max_skew
    sim = SimulatedDevice(device_map, 7, clock=lambda: 1234.0, epoch=time.time() - 1234.0)
    result = loop_thread.run(poll_once(device_map, sim, rtu_framing=True))  # type: ignore[attr-defined]
    expected = sim.values(1234.0)
    assert result.ok
    assert_values_match(result.readings, expected)


def test_a_clocked_device_stamps_every_reading_with_its_own_clock(
    loop_thread: object, shipped_maps: dict[str, DeviceMap]
) -> None:
    device_map = shipped_maps["dust_cems"]  # a logger clock in year..second registers
    behind = 100.0  # the device's clock runs 100 s behind this machine's
    sim = SimulatedDevice(device_map, 7, clock=lambda: 1234.0, epoch=time.time() - 1234.0 - behind)
    result = loop_thread.run(poll_once(device_map, sim))  # type: ignore[attr-defined]
    assert result.ok
    stamps = {r.timestamp_ns for r in result.readings}
    assert len(stamps) == 1  # every value of the poll, clock registers included
    device_s = stamps.pop() / 1e9
    assert abs(device_s - (time.time() - behind)) < 3  # the device's time, not the poll's
    assert device_s == int(device_s)  # the registers count whole seconds
    assert_values_match(result.readings, sim.values(1234.0))
