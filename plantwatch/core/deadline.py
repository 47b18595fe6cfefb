"""A timeout that a held-up event loop cannot turn into a false one, cheap enough for every read."""

from __future__ import annotations

import asyncio
import math
import weakref
from types import TracebackType

# Loop iterations an expired deadline waits before it cancels: an answer read from a socket in the
# iteration the timer fired reaches the waiting task through a callback or two queued behind it.
# (Four: as many as before the deadlines shared a timer, when the last one rescheduled an
# asyncio.Timeout, which cancelled an iteration later.)
GRACE_ITERATIONS = 4
TICK = 0.01  # seconds: deadlines falling within one tick share one check, run at its end


class Deadline:
    """`async with Deadline(seconds):` is `asyncio.timeout(seconds)` (the block is cancelled and
    TimeoutError raised when it expires), except in two ways.

    An expired deadline first lets the loop run GRACE_ITERATIONS more times. When the loop is held
    up past a deadline (a long callback, a garbage collection, a CPU taken by another process), it
    comes back to an expired timer and, in the same iteration, to the answer that arrived
    meanwhile. asyncio.timeout cancels the waiting task before the answer reaches it, and an
    answer that came in time is thrown away: every read in flight fails at once. Here the answer
    is taken; a deadline that really passed costs a few iterations more, no wall time.

    Deadlines are not timers each: they wait in buckets of TICK seconds, which one timer per event
    loop checks as each bucket comes due (`_Buckets`). A deadline expires up to TICK late, never
    early. With a thousand reads in flight, a timer each put a thousand handles in the loop's heap,
    and every read paid for a push, a cancel and a pop there (docs/performance.md).
    """

    __slots__ = ("_bucket", "_cancelling", "_expired", "_handle", "_loop", "_seconds", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expired = False
        self._handle: asyncio.Handle | None = None  # a grace iteration's callback, once due
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> None:
        if self._task is not None:
            raise RuntimeError("a Deadline is entered once")
        self._loop = loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._bucket = _buckets_of(loop).add(self, loop.time() + self._seconds, loop)

    def _expire(self, iterations_left: int = GRACE_ITERATIONS) -> None:
        """Due: after `iterations_left` more loop iterations, cancel the block."""
        assert self._task is not None
        if iterations_left:
            self._handle = self._loop.call_soon(self._expire, iterations_left - 1)
        else:
            self._handle = None
            self._expired = True
            self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._bucket.discard(self)
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc


class _Buckets:
    """The deadlines of one event loop, by the tick they fall in; one timer, at the earliest.

    Only that timer, pending in its loop while any bucket is filed, keeps this alive (`_BUCKETS`
    holds it weakly): a reference from here to the loop would otherwise keep every loop that ever
    ran a deadline.
    """

    def __init__(self) -> None:
        self.by_tick: dict[int, set[Deadline]] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.timer_tick = 0

    def add(self, deadline: Deadline, when: float, loop: asyncio.AbstractEventLoop) -> set[Deadline]:
        """File `deadline`, due at loop time `when`; the bucket it went to."""
        tick = math.ceil(when / TICK)  # the end of the tick it falls in: never early
        if tick * TICK < when:  # a rounding below `when`
            tick += 1
        bucket = self.by_tick.get(tick)
        if bucket is None:
            bucket = self.by_tick[tick] = set()
            if self.timer is None or tick < self.timer_tick:
                self._check_at(tick, loop)
        bucket.add(deadline)
        return bucket

    def _check_at(self, tick: int, loop: asyncio.AbstractEventLoop) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.timer_tick = loop.call_at(tick * TICK, self._check, loop), tick

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        now = loop.time()
        due = [self.by_tick.pop(tick) for tick in sorted(t for t in self.by_tick if t * TICK <= now)]
        if self.by_tick:  # the next check first: whatever happens below, none is left without one
            self._check_at(min(self.by_tick), loop)
        for bucket in due:
            for deadline in bucket:
                deadline._expire()


_BUCKETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.ref[_Buckets]] = (
    weakref.WeakKeyDictionary()
)


def _buckets_of(loop: asyncio.AbstractEventLoop) -> _Buckets:
    held = _BUCKETS.get(loop)
    buckets = held() if held is not None else None
    if buckets is None:
        buckets = _Buckets()
        _BUCKETS[loop] = weakref.ref(buckets)
    return buckets
