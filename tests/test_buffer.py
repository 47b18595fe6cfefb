"""The durable buffer: order, restarts, kill -9, the size cap and its policies, corrupt files."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from plantwatch.infra.influx.buffer import WAL_LIMIT_BYTES, DurableBuffer
from plantwatch.infra.influx.checkpointer import WAL_CAP_PAGES, WalCheckpointer
from tests.waiting import wait_until


def test_fifo_order_ack_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = DurableBuffer(path)
    for i in range(10):
        assert buffer.append([f"m v={i}i {i}", f"m w={i}i {i}"]) == 2
    assert (buffer.depth, buffer.size) == (20, sum(len(f"m v={i}i {i}\nm w={i}i {i}") for i in range(10)))
    first = buffer.read(5)  # whole groups only: two groups of two lines fit in five
    assert first is not None
    assert first.lines == ["m v=0i 0", "m w=0i 0", "m v=1i 1", "m w=1i 1"]
    buffer.ack(first)
    buffer.close()

    reopened = DurableBuffer(path)
    assert reopened.depth == 16
    rest = reopened.read(100)
    assert rest is not None and rest.lines[0] == "m v=2i 2" and rest.lines[-1] == "m w=9i 9"
    assert len(rest.lines) == 16
    reopened.ack(rest)
    assert (reopened.depth, reopened.size, reopened.read(10), reopened.oldest_age()) == (0, 0, None, 0.0)
    assert reopened.append(["m v=10i 10"]) == 1
    after = reopened.read(10)
    assert after is not None and after.last_id == 11  # ids are never reused, so order holds


def test_commits_go_on_while_the_checkpointer_is_stuck_and_the_wal_shrinks_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint ends with an fsync, which a busy disk can hold for long. It runs on its own
    # thread: here that thread is held up until released, and commits carry on meanwhile.
    entered, release = threading.Event(), threading.Event()
    checkpoint = WalCheckpointer.checkpoint

    def stuck(self: WalCheckpointer) -> None:
        entered.set()
        release.wait()
        checkpoint(self)

    monkeypatch.setattr(WalCheckpointer, "checkpoint", stuck)
    path = tmp_path / "b.sqlite"
    buffer = DurableBuffer(path)
    # SQLite's own checkpoint, on the committing thread, only as a backstop far beyond this
    assert buffer._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (WAL_CAP_PAGES,)
    line = "m " + ",".join(f"f{n}=1.5" for n in range(40)) + " 1"
    for _ in range(3 * WAL_LIMIT_BYTES // (100 * len(line))):
        assert buffer.append([line] * 100) == 100
    assert entered.is_set(), "a checkpoint was asked for"
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 2 * WAL_LIMIT_BYTES  # nothing checkpointed on the committing thread
    release.set()
    wait_until(lambda: buffer._checkpointer.checkpoints >= 1, 30, "the checkpoint finished")
    buffer._checkpointer.close()  # no pass in progress from here on (one holds the WAL in use)
    batch = buffer.read(10**6)
    assert batch is not None
    buffer.ack(batch)  # the first commit after a whole checkpoint starts the WAL over, truncated;
    # the delete itself writes a few pages: deleted rows are not zeroed (secure_delete off)
    assert wal.stat().st_size <= WAL_LIMIT_BYTES
    assert buffer.depth == 0
    buffer.close()
    assert not buffer._checkpointer._thread.is_alive()


def test_the_wal_starts_over_under_commits_too_dense_to_checkpoint_between(tmp_path: Path) -> None:
    # Commits back to back, as in an outage's catch-up: every background pass is overtaken by new
    # commits, so the WAL is never wholly copied between two of them. SQLite's own checkpoint at
    # WAL_CAP_PAGES, on the commit that crosses it, starts it over; without it the WAL grew on.
    path = tmp_path / "b.sqlite"
    buffer = DurableBuffer(path)
    wal = Path(f"{path}-wal")
    cap = WAL_CAP_PAGES * 4096
    sizes = []
    chunk = ["m " + ",".join(f"f{n}=1.5" for n in range(20)) + f" {n}" for n in range(20)]
    for n in range(12_000):  # commits of 20 lines, about 10 KB of WAL each: nearly twice the cap
        assert buffer.append(chunk) == 20
        if n % 200 == 0:
            sizes.append(wal.stat().st_size)
    largest = max(sizes)
    # Beyond the cap, every commit tries; one fails only while a background pass holds the
    # checkpoint lock, which a loaded machine can stretch: bounded, not to the page.
    assert largest <= 2 * cap, f"the WAL grew to {largest / 2**20:.0f} MB"
    assert min(sizes[sizes.index(largest) :]) < largest, "the WAL never started over"
    assert buffer.depth == 240_000
    buffer.close()


def test_a_checkpoint_never_touches_a_file_that_replaced_the_buffer(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = DurableBuffer(path)
    assert buffer.append(["m v=1i 1"] * 1000) == 1000
    stranger = tmp_path / "stranger.sqlite"
    with sqlite3.connect(stranger) as conn:
        conn.execute("CREATE TABLE precious (x)")
    os.replace(stranger, path)  # moved over the buffer while it is open
    buffer._checkpointer.checkpoint()
    copy = tmp_path / "what-the-file-holds.sqlite"  # read alone: the buffer's -wal sits beside `path`
    copy.write_bytes(path.read_bytes())
    with sqlite3.connect(copy) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["precious"]
    assert buffer._checkpointer.checkpoints == 0
    buffer.close()


def test_a_failed_checkpoint_is_logged_once_and_the_thread_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 1000)
    checkpointer = WalCheckpointer(garbage, garbage.stat().st_ino)
    with caplog.at_level(logging.WARNING):
        checkpointer.due()
        wait_until(lambda: "checkpoint failed" in caplog.text, 10, "the failure logged")
        checkpointer.checkpoint()  # again: the repeat goes to DEBUG
    assert checkpointer.checkpoints == 0
    assert [r.getMessage() for r in caplog.records if "checkpoint failed" in r.getMessage()] == [
        f"buffer {garbage}: checkpoint failed (file is not a database); the WAL keeps growing"
    ]
    assert checkpointer._thread.is_alive()
    checkpointer.close()
    assert not checkpointer._thread.is_alive()


def test_a_group_larger_than_the_limit_is_read_whole(tmp_path: Path) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite")
    buffer.append([f"m v={i}i {i}" for i in range(7)])
    buffer.append(["m v=7i 7"])
    batch = buffer.read(3)
    assert batch is not None and len(batch.lines) == 7


def test_refuse_new_when_full_keeps_the_oldest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite", max_bytes=100)
    assert buffer.append(["x" * 40, "y" * 40]) == 2
    with caplog.at_level(logging.ERROR):
        assert buffer.append(["z" * 30]) == 0
        assert buffer.append(["z" * 30]) == 0
    assert buffer.refused == 2
    assert [r.getMessage() for r in caplog.records].count(
        f"buffer {tmp_path / 'b.sqlite'} is full (81 bytes, 2 lines): refusing new readings"
    ) == 1
    batch = buffer.read(10)
    assert batch is not None and batch.lines == ["x" * 40, "y" * 40]


def test_drop_oldest_when_full_makes_room(tmp_path: Path) -> None:
    buffer = DurableBuffer(tmp_path / "b.sqlite", max_bytes=100, when_full="drop_oldest")
    for char in "abcde":
        buffer.append([char * 30])
    assert buffer.dropped == 2
    batch = buffer.read(10)
    assert batch is not None and batch.lines == ["c" * 30, "d" * 30, "e" * 30]
    assert buffer.size == 90


def test_rows_dropped_while_their_batch_is_in_flight_are_not_subtracted_twice(tmp_path: Path) -> None:
    """`drop_oldest` can delete rows the forwarder has read and is still sending; acknowledging that
    batch must then subtract only the rows still stored, or depth and size (the cap) drift low."""
    path = tmp_path / "b.sqlite"
    buffer = DurableBuffer(path, max_bytes=100, when_full="drop_oldest")
    for char in "abc":
        buffer.append([char * 30])
    in_flight = buffer.read(2)  # a and b, on their way to InfluxDB
    assert in_flight is not None and len(in_flight.lines) == 2
    buffer.append(["d" * 30])  # full: a is dropped to make room
    assert buffer.dropped == 1
    buffer.ack(in_flight)  # InfluxDB took a and b; only b was still stored
    assert (buffer.depth, buffer.size) == (2, 60)
    rest = buffer.read(10)
    assert rest is not None and rest.lines == ["c" * 30, "d" * 30]
    buffer.close()
    reopened = DurableBuffer(path, max_bytes=100, when_full="drop_oldest")
    assert (reopened.depth, reopened.size) == (2, 60)  # what the file holds: the counters agreed


def test_a_corrupt_file_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "b.sqlite"
    path.write_bytes(b"this is not a database, it was cut short by a bad disk" * 100)
    with caplog.at_level(logging.ERROR):
        buffer = DurableBuffer(path)
    assert buffer.moved_aside is not None and buffer.moved_aside.exists()
    assert buffer.moved_aside.read_bytes().startswith(b"this is not a database")
    assert buffer.append(["m v=1i 1"]) == 1
    assert any(
        "is corrupt" in r.getMessage() and str(buffer.moved_aside) in r.getMessage() for r in caplog.records
    )


WRITER = """
import sys
from pathlib import Path
from plantwatch.infra.influx.buffer import DurableBuffer
buffer = DurableBuffer(Path(sys.argv[1]))
i = 0
while True:
    buffer.append([f"m,device=d v={i}i,w={j}i {i}" for j in range(20)])
    print(i, flush=True)  # printed only after the commit: everything up to i was accepted
    i += 1
"""


def test_kill_9_mid_stream_loses_nothing_accepted(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    last = -1
    while last < 2000 and time.monotonic() < deadline:
        last = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    buffer = DurableBuffer(path)
    assert buffer.moved_aside is None
    batch = buffer.read(10**7)
    assert batch is not None
    accepted = {int(line.split(" ")[2]) for line in batch.lines}
    assert set(range(last + 1)) <= accepted  # every append acknowledged before the kill is there
    assert len(batch.lines) % 20 == 0  # appends are atomic: no half-written poll
