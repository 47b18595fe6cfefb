"""A device's own clock, read from its `clock_*` registers: the time every reading of a poll carries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from plantwatch.config.device_map import DeviceMap
from plantwatch.config.roles import Role
from plantwatch.core.reading import GOOD, Reading

_PARTS = ("year", "month", "day", "hour", "minute", "second")


class ClockError(ValueError):
    """The clock registers of a poll give no usable time: `unread` (the request failed, which the
    poller logs already), or read but no such date."""

    def __init__(self, message: str, *, unread: bool = False) -> None:
        super().__init__(message)
        self.unread = unread


class DeviceClock:
    """Reads one device's clock from the readings of a poll."""

    def __init__(self, device_map: DeviceMap) -> None:
        registers = device_map.clock_registers()
        self.epoch = registers[Role.CLOCK_EPOCH].name if Role.CLOCK_EPOCH in registers else None
        self.parts = {
            part: registers[Role(f"clock_{part}")].name
            for part in _PARTS
            if Role(f"clock_{part}") in registers
        }
        self.zone = ZoneInfo(device_map.clock.timezone if device_map.clock else "Asia/Shanghai")
        self._names = [self.epoch] if self.epoch else list(self.parts.values())

    @staticmethod
    def of(device_map: DeviceMap) -> DeviceClock | None:
        """The device's clock, or None when its map names no clock registers."""
        return DeviceClock(device_map) if device_map.clock_registers() else None

    def read(self, readings: Mapping[str, Reading]) -> int:
        """Nanoseconds since the epoch that the clock registers of this poll say."""
        values = {}
        for name in self._names:
            reading = readings.get(name)
            if reading is None or reading.quality != GOOD:
                raise ClockError(f"{name}: {reading.quality if reading else 'not read'}", unread=True)
            if not isinstance(reading.value, (int, float)):  # a tuple: faster than int | float
                raise ClockError(f"{name}: {reading.value!r} is not a number")
            values[name] = int(reading.value)
        if self.epoch:
            seconds = values[self.epoch]
            if not 0 <= seconds < 2**63 // 10**9:
                raise ClockError(f"{self.epoch}: {seconds} is not a time")
            return seconds * 10**9
        fields = {part: values[name] for part, name in self.parts.items()}
        try:
            moment = datetime(**fields, tzinfo=self.zone)
        except (ValueError, OverflowError) as exc:
            raise ClockError(f"{fields}: {exc}") from exc
        return int(moment.timestamp()) * 10**9
