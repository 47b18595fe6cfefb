"""Long-running tasks kept running: a task that crashes is logged with its traceback, counted, and
started again after a pause, until the service stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

RESTART_DELAY = (1.0, 30.0)  # seconds: first pause, longest (doubling in between)


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    restarts: Counter[str],
    *,
    delay: tuple[float, float] = RESTART_DELAY,
) -> None:
    """Run `run()` until it returns or `stop` is set; after a crash log it, count it in
    `restarts[name]` (the health report shows it) and run it again."""
    pause = delay[0]
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            restarts[name] += 1
            log.exception(
                "task %s crashed (restart %d); starting it again in %.0f s", name, restarts[name], pause
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        if stop.is_set():
            return
        pause = min(pause * 2, delay[1])
