"""Alert workers partitioned by device: the devices worker i of n watches, so that a device's
stream is never split between workers (docs/deployment.md#alert-workers).

Devices whose KPIs are computed together form one unit that stays on one worker: a group of
plant.yaml `groups`, the devices of a plant total (a per-tonne target judged over a calendar
window) and of a capacity target. Each unit goes to the worker with the highest rendezvous hash
of (unit, worker): the same on every process and after every restart, and when the number of
workers changes only the units of the added or removed worker move.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from plantwatch.config.plant import Plant
from plantwatch.config.targets import Target

_WORKER = re.compile(r"^([1-9]\d*)/([1-9]\d*)$")


@dataclass(frozen=True)
class Worker:
    """Worker `index` (from 1) of `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Worker:
        """`2/3` -> Worker(2, 3); ValueError naming the problem otherwise."""
        found = _WORKER.match(text.strip())
        if not found:
            raise ValueError(f"{text!r} is not a worker as I/N, e.g. 1/2")
        index, count = int(found.group(1)), int(found.group(2))
        if index > count:
            raise ValueError(f"worker {index} of {count}: the index runs from 1 to {count}")
        return cls(index, count)

    @property
    def name(self) -> str:
        """`worker-2`: in its MQTT client id and the names of its files. Without the count, so a
        worker keeps its session and files when the number of workers changes."""
        return f"worker-{self.index}"

    @property
    def tag(self) -> str:
        """`2/3`: the `worker` tag of its health points."""
        return f"{self.index}/{self.count}"


def units(plant: Plant, targets: list[Target]) -> list[frozenset[str]]:
    """The plant's devices in units computed together (see the module's docstring), sorted."""
    parent = {d.id: d.id for d in plant.config.devices}

    def root(device: str) -> str:
        while parent[device] != device:
            parent[device] = parent[parent[device]]
            device = parent[device]
        return device

    def join(devices: list[str]) -> None:
        known = [d for d in devices if d in parent]
        for other in known[1:]:
            parent[root(other)] = root(known[0])

    for group in plant.config.groups.values():
        join(group.devices)
    watched = plant.targets_by_device(targets)
    for target in targets:
        together = target.value is not None and (
            target.kpi == "capacity" or (target.kpi == "per_tonne" and bool(target.judged_over))
        )
        if together:
            join([device for device, device_targets in watched.items() if target in device_targets])
    found: dict[str, set[str]] = {}
    for device in parent:
        found.setdefault(root(device), set()).add(device)
    return sorted((frozenset(u) for u in found.values()), key=min)


def _score(unit: frozenset[str], index: int) -> int:
    key = f"{min(unit)}|{index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def worker_devices(plant: Plant, targets: list[Target], worker: Worker) -> set[str]:
    """The devices `worker` watches: every unit whose highest score is its own."""
    mine: set[str] = set()
    for unit in units(plant, targets):
        best = max(range(1, worker.count + 1), key=lambda index: _score(unit, index))
        if best == worker.index:
            mine |= unit
    return mine


def worker_plant(plant: Plant, devices: set[str], worker: Worker) -> Plant:
    """The plant as `worker` sees it: its devices and their groups. Worker 1 keeps the plant's
    state file and outbox (those of one unpartitioned process, of `plantwatch silence` and of
    `report --send`); the others get files of their own, `plantwatch-alerts.worker-2.sqlite`."""
    config = plant.config
    alerts = config.alerts.model_copy(
        update={
            "state": worker_file(config.alerts.state, worker),
            "outbox": worker_file(config.alerts.outbox, worker),
        }
    )
    partial = config.model_copy(
        update={
            "devices": [d for d in config.devices if d.id in devices],
            "groups": {g: c for g, c in config.groups.items() if set(c.devices) <= devices},
            "alerts": alerts,
        }
    )
    maps = {device: m for device, m in plant.maps.items() if device in devices}
    return Plant(partial, maps, plant.path)


def worker_file(path: str, worker: Worker) -> str:
    """`plantwatch-alerts.sqlite` for worker 1, `plantwatch-alerts.worker-2.sqlite` for worker 2."""
    if worker.index == 1:
        return path
    stem, dot, suffix = path.rpartition(".")
    if not dot or "/" in suffix:
        return f"{path}.{worker.name}"
    return f"{stem}.{worker.name}.{suffix}"
