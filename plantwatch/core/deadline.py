"""A timeout that a held-up event loop cannot turn into a false one."""

from __future__ import annotations

import asyncio
from types import TracebackType

# Loop iterations an expired deadline waits before it cancels: an answer read from a socket in the
# iteration the timer fired reaches the waiting task through a callback or two queued behind it.
GRACE_ITERATIONS = 3


class Deadline:
    """`async with Deadline(seconds):` is `asyncio.timeout(seconds)` (the block is cancelled and
    TimeoutError raised when it expires), except that an expired deadline first lets the loop run
    GRACE_ITERATIONS more times.

    When the loop is held up past a deadline (a long callback, a garbage collection, a CPU taken by
    another process), it comes back to an expired timer and, in the same iteration, to the answer
    that arrived meanwhile. asyncio.timeout cancels the waiting task before the answer reaches it,
    and an answer that came in time is thrown away: every read in flight fails at once. Here the
    answer is taken; a deadline that really passed costs a few iterations more, no wall time.
    """

    __slots__ = ("_handle", "_loop", "_seconds", "_window")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._window = asyncio.timeout(None)  # cancels and converts to TimeoutError, as it does
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.Handle | None = None

    async def __aenter__(self) -> None:
        await self._window.__aenter__()
        self._loop = loop = asyncio.get_running_loop()
        self._handle = loop.call_at(loop.time() + self._seconds, self._expire, GRACE_ITERATIONS)

    def _expire(self, iterations_left: int) -> None:
        assert self._loop is not None
        if iterations_left:
            self._handle = self._loop.call_soon(self._expire, iterations_left - 1)
        else:
            self._window.reschedule(self._loop.time())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        await self._window.__aexit__(exc_type, exc, tb)
