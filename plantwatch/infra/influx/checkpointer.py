"""Checkpoints the durable buffer's write-ahead log on a thread of its own, off the event loop.

SQLite copies its WAL into the database file at a checkpoint, and a checkpoint ends with an fsync.
By default the commit that takes the WAL past 1,000 pages runs it, on the committing thread: the
collector's event loop waited 20-35 ms for it every few commits in benchmarks/influx_ingest.py
(docs/performance.md). The buffer turns that off (`PRAGMA wal_autocheckpoint=0`) and asks this
thread instead, which checkpoints in two steps:

1. PASSIVE: the bulk, concurrently with commits (a PASSIVE checkpoint never blocks a writer);
2. RESTART: the few frames committed meanwhile, holding commits back for that short while, so
   that the next commit starts the WAL over. Without it, commits arriving during every PASSIVE
   checkpoint would keep the WAL from ever starting over: a 60 s outage at 1,000 commits a
   second grew it to 450 MB.

With `synchronous=NORMAL` a commit itself never waits for the disk. Durability is unchanged: a
committed transaction survives a crash whether or not it was checkpointed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

from plantwatch.core.outage_log import OutageLog

log = logging.getLogger(__name__)

CHECKPOINT_BYTES = 4 * 2**20  # written to the WAL since the last request: SQLite's own 1,000 pages
COMMIT_PAGES_BYTES = 2 * 4096  # what a commit writes besides its data: a leaf and the table's root
BUSY_TIMEOUT_S = 5.0  # the RESTART step waits this long for a commit in progress to end


class WalCheckpointer:
    """Checkpoints the buffer file whenever `due()` is called, on a daemon thread with a connection
    of its own (opened per checkpoint, so a file the buffer recreated is the one checkpointed;
    never created by it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints = 0  # completed, for tests and the curious
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
        """Stop the thread after the checkpoint it is running, if any."""
        self._stop = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            self.checkpoint()

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file; a failure is logged and retried at the
        next request (the WAL keeps every committed line meanwhile)."""
        try:
            conn = sqlite3.connect(
                self._uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            self._outage.failure("buffer %s: checkpoint failed (%s); the WAL keeps growing", self.path, exc)
            return
        self.checkpoints += 1
        self._outage.recovered("buffer %s: checkpoints work again", self.path)
