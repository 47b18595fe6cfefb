"""The durable buffer: every accepted line is on disk before it counts, and leaves only once written.

SQLite in WAL mode, not a home-made log: it is crash-safe by design (a `kill -9` never loses a
committed transaction), it recovers its own journal on open, it is in Python's standard library,
and `PRAGMA quick_check` tells a corrupt file apart. Each `append` is one transaction storing
one row: the group's lines joined by newlines (a line never holds a raw newline, see
line_protocol.py), so the cost per line is a string join, not a B-tree insert and delete.
`synchronous=NORMAL` survives any process crash, `FULL` also survives power loss at the cost of
an fsync per commit. The WAL is checkpointed on a thread of its own (checkpointer.py), so with
NORMAL a commit on the event loop waits for the disk only when commits come too densely for that
thread and the WAL reaches 64 MiB, where SQLite's own checkpoint is kept as a backstop.

Faults it survives:
- **A full disk.** A reserve file (4 MiB) is kept beside the buffer; when deleting sent lines
  finds no space, the reserve is released, so the buffer always drains. New lines are refused,
  counted (`disk_refused`) and logged once; the buffer takes lines again, and rebuilds its
  reserve, by itself once there is room.
- **A second process.** One process per buffer: `<buffer>.lock` is held (flock) while open; a
  second process gets BufferInUseError naming the first one's pid.
- **The file deleted or replaced while open.** Noticed at the next append or read; the lines
  the open connection still holds are written to a new file at the path (a replacing file is
  moved aside first), so nothing held is lost.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from plantwatch.core.outage_log import OutageLog
from plantwatch.infra.errors import InfraError
from plantwatch.infra.influx.checkpointer import (
    CHECKPOINT_BYTES,
    COMMIT_PAGES_BYTES,
    WAL_CAP_PAGES,
    WalCheckpointer,
)

log = logging.getLogger(__name__)

WhenFull = Literal["refuse_new", "drop_oldest"]
RESERVE_BYTES = 4 * 2**20  # kept free for deletes on a full disk
RESERVE_CHECK_S = 10.0  # how often a released reserve is tried again
WAL_LIMIT_BYTES = 8 * 2**20  # the WAL is truncated to this after each checkpoint


class BufferInUseError(InfraError):
    """Another process has the buffer open."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: order survives restarts
    created_ns INTEGER NOT NULL,
    lines INTEGER NOT NULL,                -- how many lines `data` holds
    data TEXT NOT NULL                     -- the lines, joined by newlines
)
"""


@dataclass(frozen=True)
class Batch:
    """Lines read from the buffer, oldest first; `last_id` acknowledges them all."""

    lines: list[str]
    last_id: int
    oldest_ns: int
    groups: tuple[tuple[int, int, int], ...]  # (id, lines, stored characters) of each group


class DurableBuffer:
    """An on-disk FIFO of line-protocol lines in groups, bounded by `max_bytes` of stored text.

    When full, `refuse_new` (default) keeps the oldest and refuses the new group; `drop_oldest`
    deletes the oldest groups to make room. Either way the count is kept in `refused` / `dropped`
    and the first occurrence is logged at ERROR.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 1_000_000_000,
        when_full: WhenFull = "refuse_new",
        synchronous: Literal["normal", "full"] = "normal",
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.synchronous = synchronous
        self.refused = 0
        self.dropped = 0
        self.disk_refused = 0  # lines refused because the disk was full
        self.recreated = 0  # times the file was found deleted or replaced and written anew
        self.moved_aside: Path | None = None
        self._full_logged = False
        self._dropped_through = 0  # groups up to this id were dropped to make room (`drop_oldest`)
        self._lock = self._take_lock()
        self._conn = self._open()
        self._unchecked = 0  # bytes committed since a checkpoint was last asked for
        self._inode = self.path.stat().st_ino
        self.reserve = self.path.with_name(f"{self.path.name}.reserve")
        self._reserve_checked = 0.0
        self._disk_outage = OutageLog(log)
        self._keep_reserve()
        count, size, oldest = self._conn.execute(
            "SELECT coalesce(sum(lines), 0), coalesce(sum(length(data)), 0), min(created_ns) FROM chunks"
        ).fetchone()
        self.depth: int = count
        self.size: int = size
        self._oldest_ns: int | None = oldest
        if count:
            log.info("buffer %s: recovered %d unsent line(s) from a previous run", path, count)
        self._checkpointer = WalCheckpointer(path, self._inode)

    def _take_lock(self) -> int:
        """Hold `<buffer>.lock` while open; refuse when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(f"{self.path.name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise BufferInUseError(
                f"buffer {self.path} is in use by another plantwatch process (pid {holder}): "
                "one process per buffer; give this one its own `buffer.path`"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return fd

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CAP_PAGES}")  # a backstop: see checkpointer.py
        # Debian's SQLite zeroes deleted rows by default: every line would be written twice, once
        # stored and once wiped after it was sent. Lines hold no secrets; flash cards wear less.
        conn.execute("PRAGMA secure_delete=OFF")
        conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        conn.execute(_SCHEMA)
        return conn

    def _open(self) -> sqlite3.Connection:
        """Open the file; if it is corrupt, move it (and its WAL) aside and start a new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._connect()
            (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
            if verdict == "ok":
                return conn
            conn.close()
            reason = verdict
        except sqlite3.DatabaseError as exc:
            reason = str(exc)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.moved_aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(f"{self.moved_aside}{suffix}")
        log.error(
            "buffer %s is corrupt (%s): moved to %s; starting an empty buffer. Lines in the old "
            "file were not sent; inspect it with sqlite3 before deleting it.",
            self.path,
            reason,
            self.moved_aside,
        )
        return self._connect()

    def append(self, lines: list[str]) -> int:
        """Store lines in one transaction; return how many were accepted (all, or 0 when refused:
        the buffer is full, or the disk is)."""
        if not lines:
            return 0
        self._check_file()
        data = "\n".join(lines)
        if self.size + len(data) > self.max_bytes and not self._make_room(len(data), len(lines)):
            return 0
        now = time.time_ns()
        try:
            with self._transaction():
                self._conn.execute(
                    "INSERT INTO chunks (created_ns, lines, data) VALUES (?, ?, ?)", (now, len(lines), data)
                )
        except sqlite3.OperationalError as exc:
            if not _disk_full(exc):
                raise
            self.disk_refused += len(lines)
            self._disk_outage.failure(
                "buffer %s: the disk is full; new readings are refused (%d so far) while what is "
                "buffered is still sent",
                self.path,
                self.disk_refused,
            )
            return 0
        if self._disk_outage.failing:
            self._disk_outage.recovered(
                "buffer %s: room on the disk again; taking readings (%d were refused)",
                self.path,
                self.disk_refused,
            )
        self._keep_reserve()
        self._committed(len(data))
        self.depth += len(lines)
        self.size += len(data)
        if self._oldest_ns is None:
            self._oldest_ns = now
        return len(lines)

    def _make_room(self, incoming: int, count: int) -> bool:
        if not self._full_logged:
            log.error(
                "buffer %s is full (%d bytes, %d lines): %s",
                self.path,
                self.size,
                self.depth,
                "refusing new readings" if self.when_full == "refuse_new" else "dropping the oldest",
            )
            self._full_logged = True
        if self.when_full == "refuse_new" or incoming > self.max_bytes:
            self.refused += count
            return False
        while self.depth and self.size + incoming > self.max_bytes:
            rows = self._conn.execute(
                "SELECT id, lines, length(data) FROM chunks ORDER BY id LIMIT 100"
            ).fetchall()
            freed = removed = 0
            last_id = rows[0][0]
            for row_id, lines, length in rows:
                freed, removed, last_id = freed + length, removed + lines, row_id
                if self.size - freed + incoming <= self.max_bytes:
                    break
            self._delete_through(last_id, removed, freed)
            self._dropped_through = max(self._dropped_through, last_id)
            self.dropped += removed
        return True

    def read(self, limit: int, *, after: int = 0) -> Batch | None:
        """The oldest whole groups holding up to `limit` lines (at least one group), or None; with
        `after`, the oldest after that group id (the batch behind one still being sent)."""
        self._check_file()
        rows: list[tuple[int, int, int, str]] = []
        count = 0
        query = "SELECT id, created_ns, lines, data FROM chunks WHERE id > ? ORDER BY id"
        for row in self._conn.execute(query, (after,)):
            if rows and count + row[2] > limit:
                break
            rows.append(row)
            count += row[2]
            if count >= limit:
                break
        if not rows:
            if self.depth and not after:  # the counts drifted from the rows: believe the rows
                log.warning(
                    "buffer %s: %d line(s) counted but none stored; recounting", self.path, self.depth
                )
                self._recount()
            return None
        lines = "\n".join(row[3] for row in rows).split("\n")
        groups = tuple((row[0], row[2], len(row[3])) for row in rows)
        return Batch(lines=lines, last_id=rows[-1][0], oldest_ns=rows[0][1], groups=groups)

    def ack(self, batch: Batch) -> None:
        """InfluxDB has the batch: delete it. Groups of it that `drop_oldest` deleted while it was
        being sent were counted out then, so only the groups still stored are counted out now."""
        stored = [(lines, size) for row_id, lines, size in batch.groups if row_id > self._dropped_through]
        self._delete_through(batch.last_id, sum(n for n, _ in stored), sum(size for _, size in stored))

    def _delete_through(self, last_id: int, count: int, size: int) -> None:
        try:
            self._delete(last_id)
        except sqlite3.OperationalError as exc:
            if not (_disk_full(exc) and self._release_reserve()):
                raise
            self._delete(last_id)  # deleting needs a little room: the reserve gave it
        self._committed(size)
        self.depth -= count
        self.size -= size
        if self.depth == 0:
            self._oldest_ns = None
            self._full_logged = False
        else:
            (self._oldest_ns,) = self._conn.execute("SELECT min(created_ns) FROM chunks").fetchone()
        if self.size <= self.max_bytes * 0.9:
            self._full_logged = False

    def _delete(self, last_id: int) -> None:
        with self._transaction():
            self._conn.execute("DELETE FROM chunks WHERE id <= ?", (last_id,))

    def _committed(self, size: int) -> None:
        """Ask for a checkpoint once about CHECKPOINT_BYTES went into the WAL (deleted rows count
        as their size: an overestimate, which only checkpoints a little more often)."""
        self._unchecked += size + COMMIT_PAGES_BYTES
        if self._unchecked >= CHECKPOINT_BYTES:
            self._unchecked = 0
            self._checkpointer.due()

    def _recount(self) -> None:
        self.depth, self.size, self._oldest_ns = self._conn.execute(
            "SELECT coalesce(sum(lines), 0), coalesce(sum(length(data)), 0), min(created_ns) FROM chunks"
        ).fetchone()

    def _keep_reserve(self) -> None:
        """Write the reserve file when it is missing and the disk has room (checked every 10 s)."""
        now = time.monotonic()
        if self.reserve.exists() or now - self._reserve_checked < RESERVE_CHECK_S:
            return
        self._reserve_checked = now
        try:
            if shutil.disk_usage(self.path.parent).free < 2 * RESERVE_BYTES:
                return
            with self.reserve.open("wb") as out:
                out.write(bytes(RESERVE_BYTES))
                out.flush()
                os.fsync(out.fileno())
        except OSError:
            self.reserve.unlink(missing_ok=True)

    def _release_reserve(self) -> bool:
        """Free the reserve for a delete on a full disk; False when there is none."""
        if not self.reserve.exists():
            return False
        self.reserve.unlink()
        self._reserve_checked = time.monotonic()
        log.warning(
            "buffer %s: the disk is full; released the reserve so sent lines can be deleted", self.path
        )
        return True

    def _check_file(self) -> None:
        """Notice the file deleted or replaced under us, and write what we hold to a new one."""
        try:
            same = self.path.stat().st_ino == self._inode
        except FileNotFoundError:
            same = False
        if same:
            return
        log.error(
            "buffer %s was deleted or replaced while in use: writing the %d line(s) it held to a new file",
            self.path,
            self.depth,
        )
        self.recreated += 1
        fresh = self.path.with_name(f"{self.path.name}.recovering")
        fresh.unlink(missing_ok=True)
        copy = sqlite3.connect(fresh)
        try:
            self._conn.backup(copy)  # the open connection still reads the unlinked file
        finally:
            copy.close()
        self._conn.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        if self.path.exists():  # replaced: keep the stranger, do not write over it
            self.path.rename(self.path.with_name(f"{self.path.name}.replaced-{stamp}"))
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        fresh.rename(self.path)
        self._conn = self._connect()
        self._inode = self._checkpointer.inode = self.path.stat().st_ino
        self._recount()

    def oldest_age(self) -> float:
        """Seconds since the oldest unsent line was accepted (0 when empty)."""
        return 0.0 if self._oldest_ns is None else (time.time_ns() - self._oldest_ns) / 1e9

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def close(self) -> None:
        """Close the file; unsent lines stay for the next run."""
        self._checkpointer.close()
        self._conn.close()
        os.close(self._lock)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _disk_full(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_FULL: the disk (or the file system's quota) has no room."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)
