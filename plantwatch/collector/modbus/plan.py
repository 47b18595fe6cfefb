"""Coalesce a map's registers into the fewest read requests the protocol allows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from plantwatch.config.device_map import (
    BIT_TABLES,
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    Register,
)

# Modbus function code used to read each table.
READ_FUNCTION = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


@dataclass(frozen=True)
class ReadRequest:
    """One read request: a contiguous span of one table and the registers decoded from it."""

    table: str
    address: int
    count: int
    registers: tuple[Register, ...]

    @property
    def function(self) -> int:
        """Modbus function code of this read."""
        return READ_FUNCTION[self.table]


def plan_requests(registers: Iterable[Register], max_insert: int = 10) -> list[ReadRequest]:
    """Group registers into read requests.

    Within each table, registers sorted by address are merged into one request while the
    span stays within the per-request limit (125 registers, 2000 bits) and the hole between
    neighbours is at most `max_insert` unused addresses (read and discarded, as Telegraf's
    `max_insert` optimisation does). Greedy merging of sorted spans is optimal here: it
    yields the minimum number of requests for these two constraints.
    """
    by_table: dict[str, list[Register]] = {}
    for reg in registers:
        by_table.setdefault(reg.table, []).append(reg)
    requests: list[ReadRequest] = []
    for table in ("holding", "input", "coil", "discrete"):
        regs = sorted(by_table.get(table, []), key=lambda r: (r.address, r.end))
        limit = MAX_BITS_PER_READ if table in BIT_TABLES else MAX_REGISTERS_PER_READ
        start = end = -1
        members: list[Register] = []
        for reg in regs:
            fits = members and reg.address - end <= max_insert and max(end, reg.end) - start <= limit
            if fits:
                end = max(end, reg.end)
                members.append(reg)
                continue
            if members:
                requests.append(ReadRequest(table, start, end - start, tuple(members)))
            start, end, members = reg.address, reg.end, [reg]
        if members:
            requests.append(ReadRequest(table, start, end - start, tuple(members)))
    return requests
