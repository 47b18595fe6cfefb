"""The uplink's durable store (SQLite): every closed minute-data period, hour and day record, and
per platform the cursor of what it has acknowledged. Records are sent from here in the order they
were made, and history requests are answered from here."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from plantwatch.hj212.stack import Cp, Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, cn TEXT NOT NULL,
    seconds INTEGER NOT NULL, start_ns INTEGER NOT NULL, cp TEXT NOT NULL,
    UNIQUE (device, cn, seconds, start_ns));
CREATE TABLE IF NOT EXISTS windows (device TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (
    platform TEXT PRIMARY KEY, acked_id INTEGER NOT NULL, acked_start_ns INTEGER NOT NULL,
    acked_ns INTEGER NOT NULL);
"""
COLUMNS = "id, device, cn, seconds, start_ns, cp"


@dataclass(frozen=True)
class Stored:
    """A record as stored, with its id (its place in the sending order)."""

    id: int
    device: str
    cn: str
    seconds: int
    start_ns: int
    cp: Cp


@dataclass(frozen=True)
class Selection:
    """What one platform gets: its devices and the (CN, seconds) of its record kinds."""

    devices: tuple[str, ...]
    kinds: tuple[tuple[str, int], ...]

    def where(self) -> tuple[str, list[object]]:
        devices = ",".join("?" for _ in self.devices)
        kinds = " OR ".join("(cn = ? AND seconds = ?)" for _ in self.kinds) or "0"
        params: list[object] = [*self.devices]
        for cn, seconds in self.kinds:
            params += [cn, seconds]
        return f"device IN ({devices}) AND ({kinds})", params


class RecordStore:
    """Records and cursors; every write commits at once."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, records: Iterable[Record]) -> int:
        """Store closed records (a record already stored is kept as it was); how many were new."""
        added = 0
        with self.db:
            for record in records:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO records (device, cn, seconds, start_ns, cp)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (record.device, record.cn, record.seconds, record.start_ns, json.dumps(record.cp)),
                )
                added += cursor.rowcount
        return added

    def next_after(self, platform: str, selection: Selection) -> Stored | None:
        """The oldest record of the selection the platform has not acknowledged."""
        where, params = selection.where()
        row = self.db.execute(
            f"SELECT {COLUMNS} FROM records WHERE id > ? AND {where} ORDER BY id LIMIT 1",
            [self.cursor(platform)[0], *params],
        ).fetchone()
        return _stored(row) if row else None

    def backlog(self, platform: str, selection: Selection) -> int:
        """Records of the selection waiting for the platform."""
        where, params = selection.where()
        row = self.db.execute(
            f"SELECT count(*) FROM records WHERE id > ? AND {where}", [self.cursor(platform)[0], *params]
        ).fetchone()
        return int(row[0])

    def acknowledge(self, platform: str, record: Stored, now_ns: int) -> None:
        """The platform has the record: move its cursor past it."""
        with self.db:
            self.db.execute(
                "INSERT INTO cursors (platform, acked_id, acked_start_ns, acked_ns) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (platform) DO UPDATE SET acked_id = excluded.acked_id, "
                "acked_start_ns = excluded.acked_start_ns, acked_ns = excluded.acked_ns",
                (platform, record.id, record.start_ns, now_ns),
            )

    def cursor(self, platform: str) -> tuple[int, int | None]:
        """(last acknowledged record id, its period start) of a platform; (0, None) before any."""
        row = self.db.execute(
            "SELECT acked_id, acked_start_ns FROM cursors WHERE platform = ?", (platform,)
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, None)

    def history(
        self, devices: Iterable[str], cn: str, seconds: int, begin_ns: int, end_ns: int
    ) -> list[Stored]:
        """Records of `cn` whose period starts in [begin, end], oldest first (a history request)."""
        names = list(devices)
        marks = ",".join("?" for _ in names)
        rows = self.db.execute(
            f"SELECT {COLUMNS} FROM records WHERE device IN ({marks}) AND cn = ? "
            "AND seconds = ? AND start_ns >= ? AND start_ns <= ? ORDER BY start_ns, id",
            [*names, cn, seconds, begin_ns, end_ns],
        ).fetchall()
        return [_stored(row) for row in rows]

    def save_windows(self, states: dict[str, dict[str, object]]) -> None:
        """The stacks' open windows, so a restart continues them."""
        with self.db:
            self.db.executemany(
                "INSERT INTO windows (device, state) VALUES (?, ?) "
                "ON CONFLICT (device) DO UPDATE SET state = excluded.state",
                [(device, json.dumps(state)) for device, state in states.items()],
            )

    def windows(self) -> dict[str, dict[str, object]]:
        """Device -> its saved open windows."""
        rows = self.db.execute("SELECT device, state FROM windows").fetchall()
        return {str(device): json.loads(str(state)) for device, state in rows}

    def prune(self, before_ns: int) -> int:
        """Forget records whose period started before `before_ns`; how many."""
        with self.db:
            return self.db.execute("DELETE FROM records WHERE start_ns < ?", (before_ns,)).rowcount


def _stored(row: tuple[object, ...]) -> Stored:
    cp = [[(str(k), str(v)) for k, v in group] for group in json.loads(str(row[5]))]
    number = [int(str(row[i])) for i in (0, 3, 4)]
    return Stored(number[0], str(row[1]), str(row[2]), number[1], number[2], cp)
