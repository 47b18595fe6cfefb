"""Run every device's poller on its own interval with APScheduler; hand each result to a sink."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
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


class Collector:
    """Polls every device of a plant until closed (`async with Collector(plant, sink): ...`).

    Each device is one APScheduler interval job with `max_instances=1` and `coalesce=True`:
    a device slower than its interval skips a tick (counted in `skipped`) instead of piling
    up. First polls are staggered across the interval so devices do not all fire at once.
    """

    def __init__(self, plant: Plant, sink: Sink) -> None:
        self.plant = plant
        self.sink = sink
        self.pollers, self.buses = build_pollers(plant)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.skipped: Counter[str] = Counter()  # ticks skipped per device: in the health report
        self.polls: dict[str, int] = {p.device.id: 0 for p in self.pollers}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

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

    def _on_skip(self, event: JobEvent) -> None:
        if event.job_id in self.polls:
            self.skipped[event.job_id] += 1
            level = logging.WARNING if self.skipped[event.job_id] == 1 else logging.DEBUG
            log.log(
                level,
                "device %s: poll skipped, the previous one is still running (skips are counted in health)",
                event.job_id,
            )

    async def __aenter__(self) -> Collector:
        start = datetime.now(UTC) + timedelta(seconds=0.2)
        count = max(1, len(self.pollers))
        for index, poller in enumerate(self.pollers):
            interval = poller.device.interval
            self.scheduler.add_job(
                self._run,
                "interval",
                args=[poller],
                id=poller.device.id,
                seconds=interval,
                jitter=poller.device.jitter or None,
                start_date=start + timedelta(seconds=interval * index / count),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(interval)),
            )
        self.scheduler.add_listener(self._on_skip, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
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
