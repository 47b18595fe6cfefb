"""The HJ 212 uplink as one service: readings in (a collector listener), records into the store,
one link per platform, and its health to InfluxDB every 10 s (`plantwatch_hj212`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from plantwatch.config.device_map import DeviceMap
from plantwatch.config.hj212 import Hj212Config
from plantwatch.config.plant import Plant, hj212_codes
from plantwatch.config.secrets import secret
from plantwatch.contract.influx import HJ212_MEASUREMENT, fields_line
from plantwatch.core.event_time import Marks, window_time
from plantwatch.core.outage_log import OutageLog
from plantwatch.core.reading import PollResult
from plantwatch.core.tasks import supervised
from plantwatch.hj212.errors import Hj212Error
from plantwatch.hj212.link import PlatformLink
from plantwatch.hj212.stack import Cp, Record, StackData
from plantwatch.hj212.store import RecordStore

log = logging.getLogger(__name__)
TICK = 1.0
SAVE_EVERY_NS = 10 * 10**9  # open windows saved this often
REALTIME_FRESH_NS = 300 * 10**9  # real-time data only from a stack heard from this recently


class Hj212Uplink:
    """Readings of the reported stacks in, records stored and sent to every platform."""

    def __init__(
        self,
        plant: Plant,
        *,
        write_lines: Callable[[list[str]], object] | None = None,
        clock: Callable[[], int] = time.time_ns,
        health_interval: float = 10.0,
    ) -> None:
        config = plant.config.hj212
        if config is None:
            raise Hj212Error("the plant has no hj212 section")
        self.config: Hj212Config = config
        self.plant_id = plant.config.plant.id
        self.clock, self.write_lines, self.health_interval = clock, write_lines, health_interval
        base = plant.path.parent if plant.path else Path.cwd()
        self.zone = ZoneInfo(plant.config.alerts.timezone)
        self.store = RecordStore(base / config.store)
        self.stacks: dict[str, StackData] = {}
        self.marks: dict[str, Marks] = {}
        for device in sorted({d for p in config.platforms for d in p.devices}):
            device_map = plant.maps[device]
            codes = hj212_codes(device_map)
            fields = device_map.registers if isinstance(device_map, DeviceMap) else device_map.fields
            role_of = {f.name: str(f.role) for f in fields if f.role}
            flag = next((n for n, r in role_of.items() if r == "data_flag"), None)
            o2 = next((n for n, r in role_of.items() if r == "o2"), None)
            flow_units = {
                (f.unit or "").replace("³", "3").lower() for f in fields if codes.get(f.name) == "a00000"
            }
            mine = [p for p in config.platforms if device in p.devices]
            self.stacks[device] = StackData(
                device,
                codes,
                zone=self.zone,
                flag_field=flag,
                o2_field=o2,
                o2_reference=plant.config.alerts.o2_reference.get(device),
                flow_per_hour=not any(unit.endswith("/s") for unit in flow_units),
                minute_periods=frozenset(int(p.data.minute) for p in mine if p.data.minute is not None),
                hours=any(p.data.hour or p.data.day for p in mine),
                days=any(p.data.day for p in mine),
            )
            self.marks[device] = plant.marks(device)
        self.links = [
            PlatformLink(
                platform,
                self.store,
                secret(platform.pw_env) or "",
                self.zone,
                self._realtime,
                clock=clock,
                backoff=(min(1.0, platform.reconnect), platform.reconnect),
            )
            for platform in config.platforms
        ]
        self._heard: dict[str, tuple[int, int]] = {}  # device -> (wall ns of the last result, its event time)
        for device, state in self.store.windows().items():  # a restart continues the open windows
            if device in self.stacks:
                self.stacks[device].restore(state)
                # as if heard now: a stack that stays silent still has them closed after `lateness`
                self._heard[device] = (clock(), self.stacks[device].last_event_ns())
        self._saved = 0
        self._late = {device: OutageLog(log) for device in self.stacks}
        self.restarts: Counter[str] = Counter()  # crashed links, restarted

    def __call__(self, results: list[PollResult]) -> None:
        """Collector listener: the results it just committed."""
        for result in results:
            self.handle(result)

    def handle(self, result: PollResult) -> None:
        """One result of a reported stack (others are ignored)."""
        stack = self.stacks.get(result.device)
        if stack is None or not result.readings:
            return
        ts = window_time(result.event_ns, self.marks[result.device])
        late = stack.late
        self._keep(stack.update(result, ts))
        if stack.late > late:
            self._late[result.device].failure(
                "hj212 %s: a reading older than its open minute was dropped (%d so far)",
                result.device,
                stack.late,
            )
        self._heard[result.device] = (self.clock(), ts)

    def tick(self) -> None:
        """Close the windows of stacks silent for longer than `lateness`; forget old records."""
        now = self.clock()
        lateness = int(self.config.lateness * 1e9)
        for device, (heard, ts) in self._heard.items():
            silent = now - heard
            if silent >= lateness:
                self._keep(self.stacks[device].advance(ts + silent - lateness))
        if now - self._saved >= SAVE_EVERY_NS:
            self.save()
        self.store.prune(now - int(self.config.keep * 1e9))

    def save(self) -> None:
        """Save the open windows (every 10 s and at the stop: a restart loses at most that)."""
        self.store.save_windows({device: stack.state() for device, stack in self.stacks.items()})
        self._saved = self.clock()

    def _keep(self, records: list[Record]) -> None:
        if records and self.store.add(records):
            for link in self.links:
                link.new_records.set()

    def _realtime(self) -> list[tuple[str, Cp]]:
        now = self.clock()
        out = []
        for device, stack in self.stacks.items():
            heard = self._heard.get(device)
            cp = stack.realtime()
            if cp is not None and heard is not None and now - heard[0] <= REALTIME_FRESH_NS:
                out.append((device, cp))
        return out

    def health_lines(self) -> list[str]:
        """One `plantwatch_hj212` point per platform."""
        now = self.clock()
        lines = []
        for link in self.links:
            _, acked = self.store.cursor(link.name)
            fields: list[tuple[str, object]] = [
                ("connected", link.connected),
                ("backlog", link.backlog()),
                ("last_acked_ns", acked or 0),
                ("sent", link.sent),
                ("resent", link.resent),
                ("bad_packets", link.bad_packets),
            ]
            lines.append(
                fields_line(HJ212_MEASUREMENT, {"plant": self.plant_id, "platform": link.name}, fields, now)
            )
        return lines

    async def run(self, stop: asyncio.Event) -> None:
        """Every platform's link (supervised), the window timer and health, until `stop`. The links
        live exactly as long as this call: never two sets of them on one link."""
        links = [
            asyncio.create_task(supervised(f"hj212 {n.name}", partial(n.run, stop), stop, self.restarts))
            for n in self.links
        ]
        last_health = 0.0
        summary = ""
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    if time.monotonic() - last_health >= self.health_interval:
                        last_health = time.monotonic()
                        summary = self._report_health(summary)
                except Exception:  # the store or the buffer failed: say so, keep the links going
                    log.exception("hj212: the window timer or health failed; trying again in %.0f s", TICK)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK)
        finally:
            for task in links:
                if not stop.is_set():
                    task.cancel()
            await asyncio.gather(*links, return_exceptions=True)

    def _report_health(self, summary: str) -> str:
        if self.write_lines is not None:
            self.write_lines(self.health_lines())
        now = ", ".join(
            f"{n.name} {'up' if n.connected else 'down'} backlog {n.backlog()}" for n in self.links
        )
        if now != summary:
            log.info("hj212 health: %s", now)
        return now

    def close(self) -> None:
        self.save()
        self.store.close()
