"""The collector's scheduling: devices on their intervals, failures isolated, slow devices skip."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from itertools import pairwise

import pytest

from plantwatch.collector.scheduler import Collector, build_pollers
from plantwatch.config.plant import Plant, parse_plant_config
from plantwatch.core.logs import QUIETED, configure_logging
from plantwatch.core.reading import PollResult
from tests.conftest import BankServer
from tests.modbus_bank import LoopThread
from tests.services.processes import free_port
from tests.waiting import wait_until_async


def plant_from(devices: list[dict[str, object]]) -> Plant:
    return parse_plant_config({"plant": {"id": "p", "name": "P"}, "devices": devices}, "plant.yaml", None)  # type: ignore[arg-type]


Results = dict[str, list[PollResult]]


def run_collector(
    loop_thread: LoopThread,
    plant: Plant,
    *,
    seconds: float | None = None,
    until: Callable[[Results], bool] | None = None,
    timeout: float = 30,
) -> tuple[Results, Collector]:
    """Run a Collector for `seconds` (a test about timing), or `until` its results satisfy a
    condition (any other test)."""
    results: Results = defaultdict(list)

    async def run() -> Collector:
        async with Collector(plant, lambda r: results[r.device].append(r)) as collector:
            if until is not None:
                await wait_until_async(lambda: until(results), timeout, "the collector's results")
            else:
                assert seconds is not None
                await asyncio.sleep(seconds)
        return collector

    collector = loop_thread.run(run())
    return results, collector


def test_a_dead_device_never_stops_the_live_ones(bank: BankServer) -> None:
    bank.banks[1].set_registers("holding", 0, [42])
    bank.banks[2].delay = 5.0
    refused = f"tcp://127.0.0.1:{free_port()}"
    plant = plant_from(
        [
            {
                "id": "live",
                "map": "saf_ferrosilicon",
                "url": bank.url,
                "unit": 1,
                "interval": "500ms",  # room for a loaded CI machine: it waits behind silent's timeouts
                "timeout": "400ms",
            },
            {
                "id": "silent",
                "map": "dust_cems",
                "url": bank.url,
                "unit": 2,
                "interval": "200ms",
                "timeout": "150ms",
            },
            {"id": "refused", "map": "dust_cems", "url": refused, "interval": "200ms", "timeout": "150ms"},
        ]
    )
    results, collector = run_collector(
        bank.loop_thread,
        plant,
        until=lambda r: len(r["live"]) >= 8 and len(r["silent"]) >= 2 and len(r["refused"]) >= 2,
    )

    live = results["live"]
    assert len(live) >= 8, len(live)
    assert all(r.ok for r in live)
    assert live[-1].readings[0].field == "active_power"
    assert {r.quality for res in results["silent"] for r in res.readings} == {"timeout"}
    refused_qualities = {r.quality for res in results["refused"] for r in res.readings}
    assert refused_qualities and all(refused in q for q in refused_qualities)
    assert collector.skipped["live"] == 0


def test_shared_bus_devices_wait_for_each_other_not_for_the_dead(bank: BankServer) -> None:
    """The silent unit shares the live unit's connection; timeouts cost it polls, not correctness."""
    bank.banks[2].delay = 5.0
    plant = plant_from(
        [
            {
                "id": "live",
                "map": "dust_cems",
                "url": bank.url,
                "unit": 1,
                "interval": "300ms",
                "timeout": "100ms",
            },
            {
                "id": "silent",
                "map": "dust_cems",
                "url": bank.url,
                "unit": 2,
                "interval": "300ms",
                "timeout": "100ms",
            },
        ]
    )
    results, _ = run_collector(bank.loop_thread, plant, until=lambda r: len(r["live"]) >= 4)
    assert len(results["live"]) >= 4
    assert all(r.ok for r in results["live"])


@pytest.mark.fault  # issue #15, item 12: a skipped poll was two WARNINGs each time
def test_a_slow_device_skips_ticks_instead_of_piling_up(
    bank: BankServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Three requests of 200 ms each make a 600 ms poll on a 400 ms interval; the 400 ms
    # timeout leaves each request a 200 ms margin so no request times out under load.
    bank.banks[1].delay = 0.2
    plant = plant_from(
        [
            {
                "id": "slow",
                "map": "saf_ferrosilicon",
                "url": bank.url,
                "unit": 1,
                "interval": "400ms",
                "timeout": "400ms",
            }
        ]
    )
    levels = {name: logging.getLogger(name).level for name in QUIETED}
    try:  # the process's policy: APScheduler's own WARNING per skipped tick quieted
        with caplog.at_level(logging.INFO, logger="plantwatch"):
            configure_logging("INFO")
            results, collector = run_collector(bank.loop_thread, plant, seconds=3.2)  # polls per time
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    polls = len(results["slow"])
    assert 3 <= polls <= 5, polls
    assert collector.skipped["slow"] >= 3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "poll skipped" in warnings[0].getMessage()  # counted, not logged each time
    assert bank.banks[1].max_busy == 1  # never two polls of the device in flight
    assert sum(bank.banks[1].reads.values()) == 3 * polls  # every poll that started was delivered
    assert all(r.ok for r in results["slow"])


def test_devices_on_one_endpoint_share_one_bus() -> None:
    plant = plant_from(
        [
            {"id": "a", "map": "dust_cems", "url": "serial:///dev/ttyUSB0?baudrate=9600&parity=E", "unit": 1},
            {"id": "b", "map": "dust_cems", "url": "serial:///dev/ttyUSB0?baudrate=9600&parity=E", "unit": 2},
            {"id": "c", "map": "dust_cems", "url": "serial:///dev/ttyUSB1", "unit": 1},
            {"id": "d", "map": "dust_cems", "url": "tcp://10.0.0.5:502", "unit": 1},
            {
                "id": "e",
                "map": "dust_cems",
                "url": "tcp://10.0.0.5:502",
                "unit": 2,
                "timeout": "800ms",
                "interval": "1s",
            },
        ]
    )
    pollers, buses = build_pollers(plant)
    assert sorted(buses) == ["serial:///dev/ttyUSB0", "serial:///dev/ttyUSB1", "tcp://10.0.0.5:502"]
    by_id = {p.device.id: p for p in pollers}
    assert by_id["a"].bus is by_id["b"].bus
    assert by_id["a"].bus.lock is by_id["b"].bus.lock
    assert by_id["c"].bus is not by_id["a"].bus
    assert by_id["d"].bus is by_id["e"].bus
    assert by_id["d"].bus.timeout == 1.0  # the longest timeout of the devices sharing it


def test_a_poll_cut_short_at_shutdown_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """A poll still running when shutdown's wait ends is cancelled: a DEBUG line, no traceback."""
    plant = plant_from([{"id": "stuck", "map": "dust_cems", "url": "tcp://127.0.0.1:1", "interval": "200ms"}])

    async def run() -> None:
        collector = Collector(plant, lambda r: None)
        [poller] = collector.pollers
        started = asyncio.Event()

        async def forever() -> PollResult:
            started.set()
            await asyncio.sleep(3600)  # a device that never answers, past every timeout
            raise AssertionError("not reached")

        poller.poll = forever  # type: ignore[method-assign]
        async with collector:
            await asyncio.wait_for(started.wait(), 10)
        # leaving waits (requests x timeout + 1 s), then cuts the poll short

    with caplog.at_level(logging.DEBUG):
        asyncio.run(asyncio.wait_for(run(), 30))
    # plantwatch's own records (pymodbus may still be saying, at ERROR, that an earlier test's
    # client went away: its log de-duplication is process-wide)
    ours = [r for r in caplog.records if r.name.startswith("plantwatch")]
    assert [r for r in ours if r.levelno >= logging.ERROR or r.exc_info] == []
    assert any("poll abandoned at shutdown" in r.getMessage() for r in ours)


def test_devices_of_one_interval_share_staggered_timers_and_each_is_polled_once_a_tick() -> None:
    """120 meters at 1 s and 3 at 5 s: 50 timers for the first (a timer per device cost 60 % of the
    collector's CPU per poll), 3 for the others; every device in exactly one, spread evenly."""
    devices: list[dict[str, object]] = [
        {"id": f"m{i:03d}", "map": "dust_cems", "url": f"tcp://127.0.0.1:{1000 + i}", "interval": "1s"}
        for i in range(120)
    ]
    devices += [
        {"id": f"s{i}", "map": "dust_cems", "url": f"tcp://127.0.0.1:{2000 + i}", "interval": "5s"}
        for i in range(3)
    ]
    collector = Collector(plant_from(devices), lambda r: None)
    polled: list[str] = []

    async def run() -> None:
        for poller in collector.pollers:

            async def poll(device: str = poller.device.id) -> PollResult:
                polled.append(device)
                return PollResult(device, [], 0, 0)

            poller.poll = poll  # type: ignore[method-assign]
        async with collector:
            jobs = collector.scheduler.get_jobs()
            assert len(jobs) == 50 + 3
            starts = sorted(j.next_run_time for j in jobs if "every 1s" in j.id)
            gaps = {round((b - a).total_seconds(), 3) for a, b in pairwise(starts)}
            assert gaps == {0.02}  # 1 s over 50 timers
            await collector._tick(collector._slots[jobs[0].id])  # one tick of the first timer
            await asyncio.sleep(0.01)

    asyncio.run(run())
    slots = [[p.device.id for p in pollers] for pollers in collector._slots.values()]
    assert sorted(d for slot in slots for d in slot) == sorted(str(d["id"]) for d in devices)
    assert {len(slot) for slot in slots if slot[0].startswith("m")} == {2, 3}  # 120 over 50
    assert polled[: len(slots[0])] == slots[0]  # the tick polled its devices, each once
