"""Run every device's poller on its own interval with APScheduler; hand each result to a sink."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from types import TracebackType

from apscheduler.events import EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from plantwatch.collector.modbus.poller import ModbusDevicePoller
from plantwatch.collector.modbus.transport import ModbusBus
from plantwatch.config.device_map import DeviceMap
from plantwatch.config.plant import Plant
from plantwatch.core.reading import PollResult

log = logging.getLogger(__name__)

Sink = Callable[[PollResult], Awaitable[None] | None]


def build_pollers(plant: Plant) -> tuple[list[ModbusDevicePoller], dict[str, ModbusBus]]:
    """One poller per device; devices on the same TCP endpoint or serial port share one bus."""
    buses: dict[str, ModbusBus] = {}
    pollers = []
    for device in plant.devices_of(DeviceMap):
        key = device.endpoint.bus_key
        bus = buses.get(key)
        if bus is None:
            bus = buses[key] = ModbusBus(device.endpoint, timeout=device.timeout)
        bus.timeout = max(bus.timeout, device.timeout)
        device_map = plant.maps[device.id]
        assert isinstance(device_map, DeviceMap)
        pollers.append(ModbusDevicePoller(device, device_map, bus, max_skew=plant.config.event_time.max_skew))
    return pollers, buses


SLOTS = 50  # APScheduler jobs per interval: devices of one interval share them, staggered


class Collector:
    """Polls every device of a plant until closed (`async with Collector(plant, sink): ...`).

    Devices of one interval (and jitter) share up to SLOTS APScheduler interval jobs, staggered
    across the interval so devices do not all fire at once: one timer wakeup starts the polls
    of a slot's devices (a job per device cost 1,000 wakeups a second for 1,000 meters: 60 % of
    the collector's CPU per poll, docs/performance.md). A device whose previous poll is still
    running skips the tick (counted in `skipped`) instead of piling up; so does every device of a
    slot whose tick the loop was too busy to run in time (APScheduler coalesces it).
    """

    def __init__(self, plant: Plant, sink: Sink) -> None:
        self.plant = plant
        self.sink = sink
        self.pollers, self.buses = build_pollers(plant)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.skipped: Counter[str] = Counter()  # ticks skipped per device: in the health report
        self.polls: dict[str, int] = {p.device.id: 0 for p in self.pollers}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}  # device -> its poll, while it runs
        self._slots: dict[str, list[ModbusDevicePoller]] = {}  # job id -> its devices
        self._stopping = False

    async def _tick(self, pollers: list[ModbusDevicePoller]) -> None:
        """A slot's tick (on the event loop: a coroutine job): start each device's poll, unless
        its previous one is still running."""
        for poller in pollers:
            device = poller.device.id
            if device in self._running:
                self._skip(device)
                continue
            task = asyncio.create_task(self._run(poller))
            self._running[device] = task
            task.add_done_callback(partial(self._finished, device))

    def _finished(self, device: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(device, None)

    async def _run(self, poller: ModbusDevicePoller) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            result = await poller.poll()
            self.polls[poller.device.id] += 1
            outcome = self.sink(result)
            if asyncio.iscoroutine(outcome):
                await outcome
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # cut short at shutdown (past its timeouts): nothing was accepted, nothing is lost
            log.debug("device %s: poll abandoned at shutdown", poller.device.id)
        finally:
            self._in_flight.discard(task)

    def _on_missed(self, event: JobEvent) -> None:
        """A slot's tick came too late (the loop was busy): each of its devices skipped it."""
        for poller in self._slots.get(event.job_id, []):
            self._skip(poller.device.id)

    def _skip(self, device: str) -> None:
        self.skipped[device] += 1
        level = logging.WARNING if self.skipped[device] == 1 else logging.DEBUG
        log.log(
            level,
            "device %s: poll skipped, the previous one is still running (skips are counted in health)",
            device,
        )

    async def __aenter__(self) -> Collector:
        start = datetime.now(UTC) + timedelta(seconds=0.2)
        together: dict[tuple[float, float], list[ModbusDevicePoller]] = {}
        for poller in self.pollers:
            together.setdefault((poller.device.interval, poller.device.jitter), []).append(poller)
        for (interval, jitter), pollers in together.items():
            slots = min(len(pollers), SLOTS)
            for slot in range(slots):
                job = f"every {interval:g}s, jitter {jitter:g}s, slot {slot + 1}/{slots}"
                self._slots[job] = pollers[slot::slots]
                self.scheduler.add_job(
                    self._tick,
                    "interval",
                    args=[self._slots[job]],
                    id=job,
                    seconds=interval,
                    jitter=jitter or None,
                    start_date=start + timedelta(seconds=interval * slot / slots),
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=max(1, int(interval)),
                )
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.scheduler.start()
        log.info("collector: polling %d device(s) on %d bus(es)", len(self.pollers), len(self.buses))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop scheduling, let polls in flight finish (bounded by the longest timeout), close buses.

        The scheduler is paused, not shut down, while polls drain: APScheduler's asyncio
        executor cancels running jobs on shutdown, which would throw a poll's result away.
        """
        self._stopping = True
        self.scheduler.pause()
        await asyncio.sleep(0)  # a job the executor started just before the pause registers itself
        if self._in_flight:
            deadline = max(len(p.requests) * p.device.timeout for p in self.pollers) + 1
            _, pending = await asyncio.wait(self._in_flight, timeout=deadline)
            for task in pending:
                task.cancel()
        self.scheduler.shutdown(wait=False)
        for bus in self.buses.values():
            bus.close()
