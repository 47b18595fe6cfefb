"""Deadline benchmark: µs per `async with` of plantwatch's Deadline vs asyncio.timeout, same run.

    python -m benchmarks.deadline            # a few seconds; also benchmarks/results/deadline.json

Each read of the Modbus poller runs inside a `Deadline` (plantwatch/core/deadline.py). Two cases,
each timed for the baseline (`asyncio.timeout`, one timer each) and for `Deadline` (buckets under
one timer per loop), both entered and left at once, as a read that answers in time:

1. alone: nothing else is pending on the loop;
2. beside 1,000 pending: 1,000 other blocks wait inside their own deadlines (of the same kind),
   as 1,000 meters' reads in flight do in the collector.

The ratio is the baseline's µs over Deadline's (higher is better).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from benchmarks.report import save
from plantwatch.core.deadline import Deadline

ROUNDS = 5
ENTERS = 50_000
PENDING = 1_000

Maker = Callable[[float], AbstractAsyncContextManager[Any, Any]]


async def enters(make: Maker, pending: int) -> float:
    """µs per enter and exit of `make(0.8)`, with `pending` other blocks waiting in their own."""
    release = asyncio.Event()

    async def waiting() -> None:
        async with make(30):
            await release.wait()

    others = [asyncio.create_task(waiting()) for _ in range(pending)]
    await asyncio.sleep(0)  # each has entered its deadline
    started = time.perf_counter()
    for n in range(ENTERS):
        async with make(0.8):
            pass
        if n % 100 == 0:
            await asyncio.sleep(0)  # let the loop turn, as between reads
    took = time.perf_counter() - started
    release.set()
    await asyncio.gather(*others)
    return took / ENTERS * 1e6


def main() -> int:
    makers: dict[str, Maker] = {"asyncio.timeout": asyncio.timeout, "Deadline": Deadline}
    result: dict[str, object] = {"enters": ENTERS, "rounds": ROUNDS}
    for case, pending in (("alone", 0), (f"beside {PENDING:,} pending", PENDING)):
        us = {
            name: [asyncio.run(enters(make, pending)) for _ in range(ROUNDS)] for name, make in makers.items()
        }
        medians = {name: round(statistics.median(values), 2) for name, values in us.items()}
        result[case] = {
            "us_asyncio_timeout": medians["asyncio.timeout"],
            "us_deadline": medians["Deadline"],
            "ratio": round(medians["asyncio.timeout"] / medians["Deadline"], 2),
        }
        print(f"{case}: {result[case]}", flush=True)
    print(json.dumps(result, indent=2))
    save("deadline", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
