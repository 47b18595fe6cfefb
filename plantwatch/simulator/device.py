"""One simulated Modbus device: a pymodbus SimDevice whose registers are computed at read time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from pymodbus.simulator import DataType, SimData, SimDevice

from plantwatch.config.device_map import BIT_TABLES, DeviceMap, Register
from plantwatch.config.roles import CLOCK_ROLES, Role
from plantwatch.core.codecs import INTEGER_TYPES, STRUCT_FORMATS, encode
from plantwatch.simulator.profiles import signals_for
from plantwatch.simulator.signals import Signal, evaluate

# Table answering each function code (reads 1-4; writes 5, 6, 15, 16 land in the same blocks).
TABLE_BY_FUNCTION = {
    1: "coil",
    5: "coil",
    15: "coil",
    2: "discrete",
    3: "holding",
    6: "holding",
    16: "holding",
    4: "input",
}


class SimClock:
    """Simulated seconds: real time since start × `speed`, plus `offset`."""

    def __init__(self, speed: float = 1.0, offset: float = 0.0) -> None:
        self.speed = speed
        self.offset = offset
        self._start = time.monotonic()

    def __call__(self) -> float:
        """Current simulated time in seconds."""
        return self.offset + (time.monotonic() - self._start) * self.speed


def to_raw(reg: Register, value: float | bool | str) -> float | int | bool | str:
    """Invert the map's scaling: the raw number a real meter would hold for `value`."""
    if reg.type in ("bool", "string"):
        return value
    raw = (float(value) - reg.offset) / reg.scale
    if reg.type not in INTEGER_TYPES:
        return raw
    whole = round(raw)
    if reg.counter is not None:
        return whole % (1 << reg.counter.bits)
    bits = 16 * STRUCT_FORMATS[reg.type][1]
    low, high = (
        (0, (1 << bits) - 1) if reg.type.startswith("u") else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    )
    return min(high, max(low, whole))


class SimulatedDevice:
    """Serves a device map at Modbus unit `unit`, its values following `signals` over `clock`."""

    def __init__(
        self,
        device_map: DeviceMap,
        unit: int,
        *,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        signals: dict[str, Signal] | None = None,
        epoch: float | None = None,
    ) -> None:
        self.device_map = device_map
        self.unit = unit
        self.seed = seed
        self.clock = clock or SimClock()
        # The device's own clock (maps with clock_* registers): `epoch` (default: now) plus
        # simulated seconds, so it runs at the simulation's speed.
        self.epoch = time.time() if epoch is None else epoch
        zone = device_map.clock.timezone if device_map.clock else "Asia/Shanghai"
        self.zone = ZoneInfo(zone)
        self.signals = signals_for(device_map) | (signals or {})
        self.reads = 0
        self._by_table: dict[str, list[Register]] = {}
        for reg in device_map.registers:
            self._by_table.setdefault(reg.table, []).append(reg)

    def values(self, t: float | None = None) -> dict[str, float | bool | str]:
        """Engineering values of every field at simulated time t (now by default)."""
        t = self.clock() if t is None else t
        return {reg.name: self._value(reg, t) for reg in self.device_map.registers}

    def _value(self, reg: Register, t: float) -> float | bool | str:
        if reg.role in CLOCK_ROLES:
            return self.device_time(reg.role, t)
        return evaluate(self.signals, reg.name, t, self.seed, self.epoch + t)

    def device_time(self, role: Role, t: float) -> int:
        """One part of the device clock at simulated time t."""
        seconds = self.epoch + t
        if role == Role.CLOCK_EPOCH:
            return int(seconds)
        moment = datetime.fromtimestamp(int(seconds), self.zone)
        return int(getattr(moment, role.value.removeprefix("clock_")))

    def _fill(self, table: str, registers: list[int]) -> None:
        t = self.clock()
        regs = self._by_table.get(table, [])
        if table in BIT_TABLES:
            for reg in regs:
                index, bit = divmod(reg.address, 16)
                on = bool(evaluate(self.signals, reg.name, t, self.seed))
                registers[index] = (registers[index] | (1 << bit)) if on else (registers[index] & ~(1 << bit))
            return
        for reg in regs:
            raw = to_raw(reg, self._value(reg, t))
            words = encode(
                raw,
                reg.type,
                reg.byte_order,
                length=reg.length,
                bit=reg.bit,
                current=registers[reg.address],
            )
            registers[reg.address : reg.address + len(words)] = words

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        """pymodbus read hook: recompute the table being read just before it is answered."""
        if set_values is None and function_code in TABLE_BY_FUNCTION:
            self.reads += 1
            self._fill(TABLE_BY_FUNCTION[function_code], registers)

    def sim_device(self) -> SimDevice:
        """The pymodbus SimDevice: four separate tables, each valid from 0 to its last register."""
        blocks: list[list[SimData]] = []
        for table in ("coil", "discrete", "holding", "input"):
            end = max((r.end for r in self._by_table.get(table, [])), default=1)
            if table in BIT_TABLES:
                blocks.append(
                    [SimData(address=0, values=[False] * (16 * ((end + 15) // 16)), datatype=DataType.BITS)]
                )
            else:
                blocks.append([SimData(address=0, count=end, values=0, datatype=DataType.REGISTERS)])
        return SimDevice(
            id=self.unit, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]), action=self.action
        )
