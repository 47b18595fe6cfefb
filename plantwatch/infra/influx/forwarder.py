"""Drain the durable buffer into InfluxDB in order, one batch in flight, losing nothing.

- A batch leaves the buffer only after InfluxDB acknowledged it.
- Timeouts, 5xx and 429 are retried with exponential backoff (1 s to 15 s), honouring Retry-After
  within the same bounds (a `0` would spin, a day would stall forwarding after a recovery).
- A rejected batch (400/413/422) is split in halves until the bad lines are isolated: the good
  ones are written, each bad one goes to the dead-letter file with the server's reason.
- Wrong credentials or a missing database (401/403/404) keep everything buffered and are retried.
- Posts run one at a time, in order, on a thread of their own. While a backlog drains, the batch
  behind the one being posted is read and encoded meanwhile, and its post queued: it starts the
  moment the one before it ends, with no work and no wait for the event loop in between. It goes
  out only if that one was written; otherwise it waits for its turn again, after the retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from plantwatch.core.outage_log import OutageLog
from plantwatch.infra.influx.buffer import Batch, DurableBuffer
from plantwatch.infra.influx.writers import Encoded, WriteError, Writer

log = logging.getLogger(__name__)

Queued = tuple[Encoded, "Future[None]"]  # a batch's body, and its post queued on the post thread


class Stopped(Exception):
    """The forwarder was asked to stop while a batch was still unwritten."""


class NotSent(Exception):
    """A queued post was not made, because the post it followed failed: it is made again in turn."""


@dataclass
class ForwarderStats:
    """Counters the health report publishes."""

    written: int = 0
    write_errors: int = 0
    dead_letters: int = 0
    recent: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, lines written)

    def rate(self, window: float = 10.0) -> float:
        """Lines written per second over the last `window` seconds."""
        now = time.monotonic()
        self.recent = [(t, n) for t, n in self.recent if now - t <= window]
        if not self.recent:
            return 0.0
        span = max(now - self.recent[0][0], 1.0)
        return sum(n for _, n in self.recent) / span


class Forwarder:
    """Sends batches of up to `batch_size` lines, or fewer once the oldest waited `flush_interval`.

    A batch is full when it holds `batch_size` lines, or as many whole commits as fit with more
    lines waiting behind it (a commit is never split). A backlog is drained to its end: after a
    full batch, what is left goes at once, however young, so the end of a burst or of an outage
    waits for no timer. A partial batch that follows a partial batch or an empty buffer (a
    steady trickle) waits for `flush_interval`.
    """

    def __init__(
        self,
        buffer: DurableBuffer,
        writer: Writer,
        *,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        dead_letter: Path,
        backoff_min: float = 1.0,
        backoff_max: float = 15.0,
        progress_every: float = 10.0,
    ) -> None:
        self.buffer = buffer
        self.writer = writer
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.dead_letter = dead_letter
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.stats = ForwarderStats()
        self.wakeup = asyncio.Event()
        self._outage = OutageLog(log)
        self._last_rejection = ""
        self._progress = DrainProgress(buffer, self.stats, every=progress_every)
        self._draining = False  # the last batch sent was full: a backlog is being drained
        self._poster = ThreadPoolExecutor(max_workers=1, thread_name_prefix="influx-post")
        # The batch behind the one being posted, by its first and last group id: being encoded,
        # then its post queued behind `_posting`, the post being awaited.
        self._ahead: tuple[tuple[int, int], asyncio.Task[Queued]] | None = None
        self._posting: Future[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until `stop` is set; an unfinished batch stays in the buffer."""
        try:
            while not stop.is_set():
                try:
                    sent = await self.send_batch(stop)
                except Stopped:
                    raise
                except Exception:  # a bug or a disk error must not end forwarding for good
                    log.exception("forwarder: unexpected error; retrying in %.0fs", self.backoff_max)
                    await _wait_any(stop, None, self.backoff_max)
                    continue
                if not sent:
                    self.wakeup.clear()
                    # Sleep until the oldest line is due, a full batch is waiting, or stop.
                    depth = self.buffer.depth
                    due = self.flush_interval - self.buffer.oldest_age() if depth else self.flush_interval
                    await _wait_any(stop, self.wakeup, max(0.01, due))
        except Stopped:
            pass
        finally:  # a look-ahead is kept for `flush`, which takes it up (or `close` drops it)
            self._progress.finish()

    async def flush(self, deadline: float) -> bool:
        """Send what is buffered within `deadline` seconds; True when the buffer is empty."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        timer = loop.call_later(deadline, stop.set)
        try:
            while self.buffer.depth and not stop.is_set():
                if not await self.send_batch(stop, linger=False):
                    break  # nothing readable: never spin on a count that disagrees with the rows
        except Stopped:
            pass
        finally:
            timer.cancel()
            self._drop_ahead()
        return self.buffer.depth == 0

    async def send_batch(self, stop: asyncio.Event, *, linger: bool = True) -> bool:
        """Send the oldest batch; False when there was nothing (yet) worth sending."""
        batch = self.buffer.read(self.batch_size)
        if batch is None:
            self._draining = False  # the backlog is gone: the next lines are a new trickle
            return False
        young = (time.time_ns() - batch.oldest_ns) / 1e9 < self.flush_interval
        # full: batch_size lines, or as many whole commits as fit with more waiting behind them
        full = len(batch.lines) >= self.batch_size or self.buffer.depth > len(batch.lines)
        if linger and not full and young and not self._draining:
            return False
        self._draining = full
        dead_before = self.stats.dead_letters
        ahead = self._take_ahead(batch)
        await self._deliver(batch.lines, stop, ahead, meanwhile=lambda: self._encode_ahead(batch))
        self.buffer.ack(batch)
        if self.stats.dead_letters > dead_before:  # one line for the batch, not one per bad line
            log.error(
                "InfluxDB %s rejected %d line(s) of a batch (%s): kept in %s",
                self.writer.target,
                self.stats.dead_letters - dead_before,
                self._last_rejection,
                self.dead_letter,
            )
        self.stats.recent.append((time.monotonic(), len(batch.lines)))
        self._progress.update()
        self._outage.recovered(
            "InfluxDB %s: writing again; %d line(s) still buffered", self.writer.target, self.buffer.depth
        )
        return True

    def close(self) -> None:
        """Stop the post thread and close the writer (a post already under way ends on its own)."""
        self._drop_ahead()
        self._poster.shutdown(wait=False, cancel_futures=True)
        self.writer.close()

    def _take_ahead(self, batch: Batch) -> asyncio.Task[Queued] | None:
        """The look-ahead started for `batch` while the batch before it was posted, if it is that
        batch still (the same groups: rows are never changed, ids never reused)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == (batch.groups[0][0], batch.last_id):
            return ahead[1]
        if ahead is not None:
            _give_up(ahead[1])
        return None

    def _encode_ahead(self, batch: Batch) -> None:
        """Start encoding the next batch and queue its post, when a full one waits behind `batch`
        (a trickle's next batch would still grow, and be encoded for nothing). A buffer that
        cannot be read here is left to the next `read`, which reports it."""
        if self.buffer.depth - len(batch.lines) < self.batch_size:
            return
        try:
            following = self.buffer.read(self.batch_size, after=batch.last_id)
        except (sqlite3.Error, OSError):  # a look-ahead that fails costs only what it would save
            return
        if following is not None:
            ahead = asyncio.ensure_future(self._encode_and_queue(following.lines, after=self._posting))
            self._ahead = ((following.groups[0][0], following.last_id), ahead)

    async def _encode_and_queue(self, lines: list[str], after: Future[None] | None) -> Queued:
        body = await asyncio.to_thread(self.writer.encode, lines)
        return body, self._poster.submit(self._send_after, after, body)

    def _send_after(self, previous: Future[None] | None, body: Encoded) -> None:
        """On the post thread, where the post queued before this one has ended: send, unless it
        failed (a retry waits its backoff; a split's halves go first)."""
        if previous is not None and (previous.cancelled() or previous.exception() is not None):
            raise NotSent
        self.writer.send(body)

    def _drop_ahead(self) -> None:
        if self._ahead is not None:
            _give_up(self._ahead[1])
            self._ahead = None

    async def _deliver(
        self,
        lines: list[str],
        stop: asyncio.Event,
        ahead: asyncio.Task[Queued] | None = None,
        *,
        meanwhile: Callable[[], None] | None = None,  # run once the first post is queued
    ) -> None:
        if ahead is not None:
            body, self._posting = await ahead
        else:
            body = await asyncio.to_thread(self.writer.encode, lines)
            self._posting = self._poster.submit(self.writer.send, body)
        attempt = 0
        while True:
            if meanwhile is not None:
                meanwhile()
                meanwhile = None
            try:
                await asyncio.wrap_future(self._posting)
                self.stats.written += len(lines)
                return
            except NotSent:
                pass  # its turn has come: post it now
            except WriteError as exc:
                if exc.kind == "reject":
                    await self._split(lines, exc, stop)
                    return
                self._record_failure(exc)
                if exc.retry_after is not None:  # the server's wish, within our bounds
                    delay = min(self.backoff_max, max(self.backoff_min, exc.retry_after))
                else:
                    delay = min(self.backoff_max, self.backoff_min * 2**attempt)
                attempt += 1
                if await _wait_any(stop, None, delay):
                    raise Stopped from exc
            self._posting = self._poster.submit(self.writer.send, body)

    async def _split(self, lines: list[str], exc: WriteError, stop: asyncio.Event) -> None:
        if len(lines) == 1:
            self._write_dead_letter(lines[0], exc)
            return
        middle = len(lines) // 2
        await self._deliver(lines[:middle], stop)
        await self._deliver(lines[middle:], stop)

    def _record_failure(self, exc: WriteError) -> None:
        self.stats.write_errors += 1
        self._outage.failure(
            "InfluxDB %s: %s; %d line(s) kept in the buffer", self.writer.target, exc, self.buffer.depth
        )

    def _write_dead_letter(self, line: str, exc: WriteError) -> None:
        self.stats.dead_letters += 1
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "target": self.writer.target,
            "status": exc.status,
            "reason": str(exc),
            "line": line,
        }
        with self.dead_letter.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._last_rejection = f"{exc.status}: {exc}"
        log.debug("dead letter (%s): %s -> %s", exc.status, line[:200], self.dead_letter)


class DrainProgress:
    """Shows a backlog draining: a log line every `every` s, and a live bar when stderr is a terminal."""

    def __init__(
        self, buffer: DurableBuffer, stats: ForwarderStats, threshold: int = 20_000, every: float = 10.0
    ) -> None:
        self.buffer = buffer
        self.stats = stats
        self.threshold = threshold
        self.every = every
        self.tty = sys.stderr.isatty()
        self._active = False
        self._start_depth = 0
        self._last_log = 0.0
        self._last_bar = 0.0

    def update(self) -> None:
        """Called after each batch."""
        depth = self.buffer.depth
        if not self._active:
            if depth < self.threshold:
                return
            self._active, self._start_depth = True, depth
            self._last_log = time.monotonic()  # the first rate needs some history to mean anything
            log.info("draining a backlog of %d line(s) to InfluxDB", depth)
        now = time.monotonic()
        rate = self.stats.rate()
        eta = depth / rate if rate else float("inf")
        if now - self._last_log >= self.every:
            self._last_log = now
            log.info("backlog: %d line(s) left, %.0f lines/s, ETA %s", depth, rate, _clock(eta))
        if self.tty and now - self._last_bar >= 0.5:
            self._last_bar = now
            done = 1 - depth / max(self._start_depth, depth, 1)
            bar = "#" * int(done * 30)
            sys.stderr.write(f"\r[{bar:<30}] {done:4.0%} {depth} left, {rate:.0f}/s, ETA {_clock(eta)} ")
            sys.stderr.flush()
        if depth < self.threshold // 10:  # drained, but for what keeps arriving
            self.finish()

    def finish(self) -> None:
        """End the progress display (with the bar drawn full)."""
        if self._active:
            if self.tty:
                sys.stderr.write(f"\r[{'#' * 30}] 100% {self.buffer.depth} left{' ' * 30}\n")
                sys.stderr.flush()
            log.info("backlog drained; %d line(s) buffered", self.buffer.depth)
            self._active = False


def _give_up(ahead: asyncio.Task[Queued]) -> None:
    """Drop a look-ahead: its encoding, or its post unless under way (a post under way ends as it
    will; its batch stays buffered until a post of it is acknowledged, and may be written twice:
    InfluxDB keeps one point per series and timestamp)."""
    if ahead.done() and not ahead.cancelled() and ahead.exception() is None:
        ahead.result()[1].cancel()
    else:
        ahead.cancel()


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


async def _wait_any(stop: asyncio.Event, other: asyncio.Event | None, timeout: float) -> bool:
    """Wait until `stop` (returns True), `other` or the timeout (returns False)."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waiters.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stop.is_set()
