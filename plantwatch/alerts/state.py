"""Named stores in one SQLite file: alert states, silences, the notification log, and the KPI
windows and device liveness a restart continues from."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from plantwatch.alerts.lifecycle import Alert, Transition
from plantwatch.alerts.notification import Message, Notification

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    device TEXT NOT NULL, rule TEXT NOT NULL, state TEXT NOT NULL, since_ns INTEGER, fired_ns INTEGER,
    value REAL, limit_value REAL, severity TEXT, window_start_ns INTEGER, window_end_ns INTEGER,
    last_sent_ns INTEGER, annotation_id INTEGER, episode_start_ns INTEGER, peak REAL,
    PRIMARY KEY (device, rule));
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, plant TEXT, device TEXT, rule TEXT,
    ends_ns INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kpi_windows (device TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS liveness (device TEXT PRIMARY KEY, last_good_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, notifier TEXT NOT NULL, destination TEXT NOT NULL,
    device TEXT NOT NULL, rule TEXT NOT NULL, event TEXT NOT NULL, payload BLOB NOT NULL,
    created_ns INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ns INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (state, next_attempt_ns);
CREATE TABLE IF NOT EXISTS kpi_history (
    device TEXT NOT NULL, rule TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    value REAL, PRIMARY KEY (device, rule, end_ns));
"""
HISTORY = 48  # closed windows kept per (device, rule): two days of hours, four days of taps
_NOTIFICATION = "id, notifier, destination, device, rule, event, payload, created_ns, state, attempts, error"
_COLUMNS = [f.name if f.name != "limit" else "limit_value" for f in fields(Alert)]


@dataclass(frozen=True)
class QueueCounts:
    """One notifier's part of the notification log."""

    pending: int = 0
    sent: int = 0
    dead: int = 0
    oldest_pending_ns: int | None = None  # when the oldest pending message was logged


@dataclass(frozen=True)
class Silence:
    """Mute notifications for matching alerts until `ends_ns`; None matches anything."""

    id: int
    plant: str | None
    device: str | None
    rule: str | None
    ends_ns: int
    comment: str

    def matches(self, plant: str, device: str, rule: str, now_ns: int) -> bool:
        return (
            now_ns < self.ends_ns
            and self.plant in (None, plant)
            and self.device in (None, device)
            and (self.rule is None or rule == self.rule or rule.startswith(self.rule + ":"))
        )


class AlertStates(Mapping[tuple[str, str], Alert]):
    """The alert store: every (device, rule)'s state, read once, kept in memory, and written through
    to SQLite whenever something a restart needs changes (not on every new value: that would be a
    disk sync per reading)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._alerts: dict[tuple[str, str], Alert] = {}
        self.reload()

    def reload(self) -> None:
        """Read every state from the file again (after a rolled-back transaction)."""
        rows = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM alerts").fetchall()
        self._alerts = {(row[0], row[1]): Alert(*row) for row in rows}

    def __getitem__(self, key: tuple[str, str]) -> Alert:
        return self._alerts[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._alerts)

    def __len__(self) -> int:
        return len(self._alerts)

    def put(self, alert: Alert) -> None:
        """The alert's new state; saved unless only its latest value and limit changed."""
        key = (alert.device, alert.rule)
        before = self._alerts.get(key)
        self._alerts[key] = alert
        if before is None or replace(before, value=alert.value, limit=alert.limit) != alert:
            self._save(alert)

    def set_annotation(self, device: str, rule: str, annotation_id: int) -> None:
        """The Grafana annotation that marks the alert's current episode."""
        alert = self._alerts.get((device, rule))
        if alert is not None:
            self.put(replace(alert, annotation_id=annotation_id))

    def _save(self, alert: Alert) -> None:
        values = list(asdict(alert).values())
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self.db.execute(
            f"INSERT OR REPLACE INTO alerts ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values
        )


class StateStore:
    """The alert service's durable state; every write is committed before it returns."""

    def __init__(self, path: Path, *, silences: Path | None = None) -> None:
        """`silences`: the state file whose silences apply instead of this one's (a partitioned
        alert worker's other than the first: the plant's, where `plantwatch silence` writes)."""
        self.path = path
        self.db = self._open(path)
        self._add_columns()
        self._adopt_grafana_calls()
        self.alerts = AlertStates(self.db)
        self._silences_db = self.db if silences is None or silences == path else self._open(silences)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        return db

    def close(self) -> None:
        if self._silences_db is not self.db:
            self._silences_db.close()
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all (BEGIN IMMEDIATE ... COMMIT)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            self.alerts.reload()  # memory must not keep what the file did not
            raise
        self.db.execute("COMMIT")

    # --- progress: open KPI windows, device liveness ---

    def kpi_windows(self) -> dict[str, dict[str, Any]]:
        """Device id -> the state of its open KPI windows, as last saved."""
        rows = self.db.execute("SELECT device, state FROM kpi_windows").fetchall()
        return {device: json.loads(state) for device, state in rows}

    def last_good(self) -> dict[str, int]:
        """Device id -> wall time of its last good data, as last saved."""
        return dict(self.db.execute("SELECT device, last_good_ns FROM liveness").fetchall())

    def save_progress(
        self,
        windows: dict[str, dict[str, Any]],
        last_good: dict[str, int],
        closed: Sequence[tuple[str, str, int, int, float | None]] = (),
    ) -> None:
        """The changed KPI windows and liveness, and the windows closed since the last save (for
        the charts: `record_window`), in one transaction: one fsync per checkpoint, not one per
        tap."""
        with self.transaction():
            for row in closed:
                self.record_window(*row)
            self.db.executemany(
                "INSERT OR REPLACE INTO kpi_windows (device, state) VALUES (?, ?)",
                [(device, json.dumps(state)) for device, state in windows.items()],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO liveness (device, last_good_ns) VALUES (?, ?)",
                list(last_good.items()),
            )

    # --- silences ---

    def add_silence(
        self,
        ends_ns: int,
        now_ns: int,
        *,
        plant: str | None,
        device: str | None,
        rule: str | None,
        comment: str,
    ) -> int:
        cursor = self._silences_db.execute(
            "INSERT INTO silences (plant, device, rule, ends_ns, comment, created_ns)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (plant, device, rule, ends_ns, comment, now_ns),
        )
        return int(cursor.lastrowid or 0)

    def silences(self, now_ns: int) -> list[Silence]:
        rows = self._silences_db.execute(
            "SELECT id, plant, device, rule, ends_ns, comment FROM silences WHERE ends_ns > ? ORDER BY id",
            (now_ns,),
        ).fetchall()
        return [Silence(*row) for row in rows]

    def expire_silence(self, silence_id: int, now_ns: int) -> bool:
        cursor = self._silences_db.execute(
            "UPDATE silences SET ends_ns = ? WHERE id = ? AND ends_ns > ?", (now_ns, silence_id, now_ns)
        )
        return cursor.rowcount > 0

    # --- recent closed windows, for the charts in mails ---

    def record_window(self, device: str, rule: str, start_ns: int, end_ns: int, value: float | None) -> None:
        """Keep a closed window's value; only the newest HISTORY per (device, rule) stay."""
        self.db.execute(
            "INSERT OR REPLACE INTO kpi_history VALUES (?, ?, ?, ?, ?)",
            (device, rule, start_ns, end_ns, value),
        )
        self.db.execute(
            "DELETE FROM kpi_history WHERE device = ? AND rule = ? AND end_ns <= (SELECT end_ns FROM"
            " kpi_history WHERE device = ? AND rule = ? ORDER BY end_ns DESC LIMIT 1 OFFSET ?)",
            (device, rule, device, rule, HISTORY),
        )

    def windows(self, device: str, rule: str) -> list[tuple[int, int, float | None]]:
        """The recent closed windows of (device, rule), oldest first: (start_ns, end_ns, value)."""
        rows = self.db.execute(
            "SELECT start_ns, end_ns, value FROM kpi_history WHERE device = ? AND rule = ? ORDER BY end_ns",
            (device, rule),
        ).fetchall()
        return [(int(s), int(e), v) for s, e, v in rows]

    # --- the notification log ---

    def log_notification(self, notifier: str, message: Message, transition: Transition, now_ns: int) -> int:
        """Log what a transition owes one destination (inside the transition's transaction)."""
        alert = transition.alert
        return self.log_message(
            notifier, message.destination, alert.device, alert.rule, transition.event, message.payload, now_ns
        )

    def log_message(
        self, notifier: str, destination: str, device: str, rule: str, event: str, payload: bytes, now_ns: int
    ) -> int:
        """Log one message, pending; its id."""
        cursor = self.db.execute(
            "INSERT INTO notifications (notifier, destination, device, rule, event, payload, created_ns)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (notifier, destination, device, rule, event, payload, now_ns),
        )
        return int(cursor.lastrowid or 0)

    def destinations(self, notifier: str, rule: str) -> set[str]:
        """Where a message of `rule` (e.g. a document's `report:2026-11`) was logged for, whatever
        its state: a document goes to each recipient once unless sent again on purpose."""
        rows = self.db.execute(
            "SELECT DISTINCT destination FROM notifications WHERE notifier = ? AND rule = ?", (notifier, rule)
        ).fetchall()
        return {str(row[0]) for row in rows}

    def notification(self, notification_id: int) -> Notification | None:
        """One logged notification (None: no such id)."""
        row = self.db.execute(
            f"SELECT {_NOTIFICATION} FROM notifications WHERE id = ?", (notification_id,)
        ).fetchone()
        return Notification(*row) if row else None

    def notifications(self, *, state: str | None = None, notifier: str | None = None) -> list[Notification]:
        """Logged notifications, oldest first, optionally of one state and one notifier."""
        rows = self.db.execute(
            f"SELECT {_NOTIFICATION} FROM notifications WHERE coalesce(?, state) = state"
            " AND coalesce(?, notifier) = notifier ORDER BY id",
            (state, notifier),
        ).fetchall()
        return [Notification(*row) for row in rows]

    def due_notifications(self, now_ns: int) -> list[Notification]:
        """Pending notifications whose next attempt is due, oldest first."""
        rows = self.db.execute(
            f"SELECT {_NOTIFICATION} FROM notifications WHERE state = 'pending' AND next_attempt_ns <= ?"
            " ORDER BY id",
            (now_ns,),
        ).fetchall()
        return [Notification(*row) for row in rows]

    def next_attempt_ns(self) -> int | None:
        """When the earliest pending notification is due (None: nothing pending)."""
        (due,) = self.db.execute(
            "SELECT min(next_attempt_ns) FROM notifications WHERE state = 'pending'"
        ).fetchone()
        return None if due is None else int(due)

    def settle(self, notification_id: int, state: str, error: str | None = None) -> None:
        """Delivered (`sent`) or never deliverable (`dead`, with the reason)."""
        self.db.execute(
            "UPDATE notifications SET state = ?, error = ?, attempts = attempts + 1 WHERE id = ?",
            (state, error, notification_id),
        )

    def retry_later(self, notification_id: int, next_attempt_ns: int, error: str) -> None:
        """A failed attempt that a retry may cure."""
        self.db.execute(
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_ns = ?, error = ? WHERE id = ?",
            (next_attempt_ns, error, notification_id),
        )

    def notification_counts(self) -> dict[str, QueueCounts]:
        """Per notifier: how many messages are pending, sent and dead, and the oldest pending."""
        counts: dict[str, QueueCounts] = {}
        for notifier, state, count, oldest in self.db.execute(
            "SELECT notifier, state, count(*), min(created_ns) FROM notifications GROUP BY notifier, state"
        ):
            queue = counts.setdefault(notifier, QueueCounts())
            if state == "pending":
                counts[notifier] = replace(queue, pending=count, oldest_pending_ns=oldest)
            elif state in ("sent", "dead"):
                counts[notifier] = replace(queue, **{state: count})
        return counts

    def _add_columns(self) -> None:
        """Columns a state file of an earlier version lacks (they start empty)."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(alerts)")}
        for column, kind in (("episode_start_ns", "INTEGER"), ("peak", "REAL")):
            if column not in have:
                self.db.execute(f"ALTER TABLE alerts ADD COLUMN {column} {kind}")

    def _adopt_grafana_calls(self) -> None:
        """Annotation calls queued by a version before the notification log join it, in order."""
        exists = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'grafana_calls'"
        ).fetchone()
        if not exists:
            return
        with self.transaction():
            for device, rule, call, body in self.db.execute(
                "SELECT device, rule, call, body FROM grafana_calls ORDER BY id"
            ).fetchall():
                payload = json.dumps({"call": call, "body": json.loads(body)}).encode()
                self.db.execute(
                    "INSERT INTO notifications (notifier, destination, device, rule, event, payload,"
                    " created_ns) VALUES ('grafana', 'grafana', ?, ?, ?, ?, 0)",
                    (device, rule, "firing" if call == "open" else "resolved", payload),
                )
            self.db.execute("DROP TABLE grafana_calls")
