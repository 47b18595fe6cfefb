"""Simulated history: every device's poll results over a past span, stamped with simulated time.

The collector stamps live readings with the wall clock, so hour and day KPIs need hours and
days to pass. History computed from the same signals fills those windows at once: for
dashboard tests, the KPI benchmark, and a demo that has something to show from the start.
"""

from __future__ import annotations

from collections.abc import Iterator

from plantwatch.config.device_map import DeviceMap
from plantwatch.config.plant import Plant
from plantwatch.core.reading import PollResult, Reading
from plantwatch.simulator.device import SimulatedDevice


def history(
    plant: Plant, *, start_ns: int, polls: int, step_s: float = 60.0, seed: int = 0, offset_s: float = 0.0
) -> Iterator[PollResult]:
    """`polls` results per Modbus device, `step_s` simulated seconds apart from `start_ns`, in
    time order. Device n uses seed `seed + n`, as `plantwatch simulate` does. The first poll is at
    simulated second `offset_s`: a second call continues the first's signals (counters run on).
    Each device's own clock reads the results' timestamps, so the events of its day (a dust
    excursion starting on the hour) fall where its timestamps say."""
    sims = []
    epoch = start_ns / 1e9 - offset_s  # the device clock at simulated second 0
    for index, device in enumerate(plant.devices_of(DeviceMap)):
        device_map = plant.maps[device.id]
        assert isinstance(device_map, DeviceMap)
        sims.append((device.id, SimulatedDevice(device_map, device.unit, seed=seed + index, epoch=epoch)))
    for n in range(polls):
        t = offset_s + n * step_s
        ts = start_ns + int(n * step_s * 1e9)
        for device_id, sim in sims:
            readings = [Reading(device_id, name, value, ts, "good") for name, value in sim.values(t).items()]
            yield PollResult(device_id, readings, started_ns=ts, finished_ns=ts)
