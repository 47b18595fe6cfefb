"""Checkpoints the durable buffer's write-ahead log on a thread of its own, off the event loop.

SQLite copies its WAL into the database file at a checkpoint, and a checkpoint ends with an fsync.
By default the commit that takes the WAL past 1,000 pages runs it, on the committing thread: the
collector's event loop waited 20-35 ms for it every few commits in benchmarks/influx_ingest.py
(docs/performance.md). This thread checkpoints instead, PASSIVE, which never blocks a commit; it
goes over the WAL again while commits landed during the previous pass, up to PASSES times, so that
the WAL is usually wholly copied when the next commit comes, and that commit starts it over.

A stream of commits too dense for that (each pass overtaken by new commits) would let the WAL
grow: the buffer keeps SQLite's own checkpoint as a backstop at WAL_CAP_PAGES, run by the commit
that crosses it (the pages left to copy by then are few). With `synchronous=NORMAL` a commit
itself never waits for the disk. Durability is unchanged: a committed transaction survives a
crash whether or not it was checkpointed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

from plantwatch.core.outage_log import OutageLog

log = logging.getLogger(__name__)

CHECKPOINT_BYTES = 4 * 2**20  # written to the WAL since the last request: SQLite's own 1,000 pages
COMMIT_PAGES_BYTES = 2 * 4096  # what a commit writes besides its data: a leaf and the table's root
WAL_CAP_PAGES = 16_384  # 64 MiB of 4 KiB pages: SQLite's own checkpoint, on the commit, beyond
PASSES = 3  # PASSIVE passes per request while commits keep landing during them
CLOSE_WAIT_S = 10.0  # how long closing waits for a checkpoint in progress (a hung disk)


class WalCheckpointer:
    """Checkpoints the buffer file whenever `due()` is called, on a daemon thread with a connection
    of its own, opened per checkpoint and only onto the buffer's own file: `inode` is the file the
    buffer has open (it sets a new one when it recreates the file), and a file that replaced it
    under the same name is never touched (nor created)."""

    def __init__(self, path: Path, inode: int) -> None:
        self.path = path
        self.inode = inode
        self.checkpoints = 0  # requests that left the WAL wholly copied
        self._uri = f"file:{quote(str(path))}?mode=rw"
        self._wake = threading.Event()
        self._stop = False
        self._outage = OutageLog(log, logging.WARNING)
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {path.name}", daemon=True)
        self._thread.start()

    def due(self) -> None:
        """Ask for a checkpoint soon; returns at once."""
        self._wake.set()

    def close(self) -> None:
        """Stop the thread after the checkpoint it is running, if any (waiting CLOSE_WAIT_S at most)."""
        self._stop = True
        self._wake.set()
        self._thread.join(CLOSE_WAIT_S)
        if self._thread.is_alive():
            log.warning(
                "buffer %s: a checkpoint still runs after %.0f s; closing anyway", self.path, CLOSE_WAIT_S
            )

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            try:
                self.checkpoint()
            except Exception:  # a bug here must not end checkpointing for good
                log.exception("buffer %s: checkpoint failed unexpectedly", self.path)

    def _ours(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file; a failure is logged and retried at the
        next request (the WAL keeps every committed line meanwhile)."""
        if not self._ours():
            return  # deleted or replaced: the buffer notices at its next read or append
        try:
            conn = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False)
            try:
                if not self._ours():  # replaced between the check and the open
                    return
                for _ in range(PASSES):
                    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if not busy and copied == frames:
                        self.checkpoints += 1
                        break
            finally:
                conn.close()
        except sqlite3.Error as exc:
            self._outage.failure("buffer %s: checkpoint failed (%s); the WAL keeps growing", self.path, exc)
            return
        self._outage.recovered("buffer %s: checkpoints work again", self.path)
