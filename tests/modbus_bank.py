"""Test helpers: a Modbus device whose registers are a plain dict, served by pymodbus on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from plantwatch.core.reading import Reading

T = TypeVar("T")
SIZE = 2048  # registers (and bits) per table
FUNCTION_TABLE = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}


class RegisterBank:
    """A device whose tables are dicts the test writes; counts every read request it answers.

    `fail[table] = ExcCodes.X` answers reads of that table with exception X;
    `delay` seconds are slept before answering (a slow device).
    """

    def __init__(self, unit: int) -> None:
        self.unit = unit
        self.tables: dict[str, dict[int, int]] = {t: {} for t in FUNCTION_TABLE.values()}
        self.fail: dict[str, ExcCodes] = {}
        self.delay = 0.0
        self.reads: Counter[str] = Counter()
        self.spans: list[tuple[str, int, int]] = []
        self.busy = 0
        self.max_busy = 0

    def set_registers(self, table: str, address: int, words: list[int]) -> None:
        """Store 16-bit words from `address` on."""
        for i, word in enumerate(words):
            self.tables[table][address + i] = word

    def set_bit(self, table: str, address: int, on: bool) -> None:
        """Store one coil or discrete input."""
        self.tables[table][address] = int(on)

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        table = FUNCTION_TABLE.get(function_code)
        if table is None or set_values is not None:
            return None
        self.reads[table] += 1
        self.spans.append((table, address, count))
        if self.delay:
            self.busy += 1
            self.max_busy = max(self.max_busy, self.busy)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.busy -= 1
        if table in self.fail:
            return self.fail[table]
        data = self.tables[table]
        if table in ("coil", "discrete"):
            for index in range(address // 16, (address + count + 15) // 16):
                word = 0
                for bit in range(16):
                    if data.get(index * 16 + bit):
                        word |= 1 << bit
                registers[index] = word
        else:
            for i in range(address, min(SIZE, address + count)):
                registers[i] = data.get(i, 0)
        return None

    def sim_device(self) -> SimDevice:
        """Four separate tables of SIZE registers or bits each."""

        def bits() -> list[SimData]:
            return [SimData(address=0, values=[False] * SIZE, datatype=DataType.BITS)]

        def regs() -> list[SimData]:
            return [SimData(address=0, count=SIZE, values=0, datatype=DataType.REGISTERS)]

        return SimDevice(id=self.unit, simdata=(bits(), bits(), regs(), regs()), action=self.action)


class LoopThread:
    """An asyncio loop in a daemon thread, so synchronous (hypothesis) tests can drive async code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run `coro` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def assert_values_match(readings: list[Reading], expected: dict[str, object]) -> None:
    """Each reading has the value the simulator computed: numbers within register rounding
    (scale 0.1 → 0.05), everything else (strings such as a CEMS data flag, booleans) exactly."""
    for reading in readings:
        want = expected[reading.field]
        if isinstance(want, int | float) and not isinstance(want, bool):
            assert reading.value == pytest.approx(want, rel=1e-6, abs=0.05), reading.field
        else:
            assert reading.value == want, reading.field
