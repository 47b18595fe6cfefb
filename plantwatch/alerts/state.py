"""Named stores in one SQLite file: alert states, silences, Grafana calls waiting for a retry, and
the KPI windows and device liveness a restart continues from."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from plantwatch.alerts.lifecycle import Alert

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    device TEXT NOT NULL, rule TEXT NOT NULL, state TEXT NOT NULL, since_ns INTEGER, fired_ns INTEGER,
    value REAL, limit_value REAL, severity TEXT, window_start_ns INTEGER, window_end_ns INTEGER,
    last_sent_ns INTEGER, annotation_id INTEGER, PRIMARY KEY (device, rule));
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, plant TEXT, device TEXT, rule TEXT,
    ends_ns INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kpi_windows (device TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS liveness (device TEXT PRIMARY KEY, last_good_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS grafana_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, rule TEXT NOT NULL,
    call TEXT NOT NULL, body TEXT NOT NULL);
"""
_COLUMNS = [f.name if f.name != "limit" else "limit_value" for f in fields(Alert)]


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


@dataclass(frozen=True)
class GrafanaCall:
    """An annotation call that failed and waits for a retry."""

    id: int
    device: str
    rule: str
    call: str  # "open" or "close"
    body: dict[str, Any]


class AlertStates(Mapping[tuple[str, str], Alert]):
    """The alert store: every (device, rule)'s state, read once, kept in memory, and written through
    to SQLite whenever something a restart needs changes (not on every new value: that would be a
    disk sync per reading)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM alerts").fetchall()
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

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.alerts = AlertStates(self.db)

    def close(self) -> None:
        self.db.close()

    # --- progress: open KPI windows, device liveness ---

    def kpi_windows(self) -> dict[str, dict[str, Any]]:
        """Device id -> the state of its open KPI windows, as last saved."""
        rows = self.db.execute("SELECT device, state FROM kpi_windows").fetchall()
        return {device: json.loads(state) for device, state in rows}

    def last_good(self) -> dict[str, int]:
        """Device id -> wall time of its last good data, as last saved."""
        return dict(self.db.execute("SELECT device, last_good_ns FROM liveness").fetchall())

    def save_progress(self, windows: dict[str, dict[str, Any]], last_good: dict[str, int]) -> None:
        """The changed KPI windows and every device's liveness, in one transaction."""
        with self.db:
            self.db.execute("BEGIN")
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
        cursor = self.db.execute(
            "INSERT INTO silences (plant, device, rule, ends_ns, comment, created_ns)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (plant, device, rule, ends_ns, comment, now_ns),
        )
        return int(cursor.lastrowid or 0)

    def silences(self, now_ns: int) -> list[Silence]:
        rows = self.db.execute(
            "SELECT id, plant, device, rule, ends_ns, comment FROM silences WHERE ends_ns > ? ORDER BY id",
            (now_ns,),
        ).fetchall()
        return [Silence(*row) for row in rows]

    def expire_silence(self, silence_id: int, now_ns: int) -> bool:
        cursor = self.db.execute(
            "UPDATE silences SET ends_ns = ? WHERE id = ? AND ends_ns > ?", (now_ns, silence_id, now_ns)
        )
        return cursor.rowcount > 0

    # --- Grafana calls to retry ---

    def queue_grafana(self, device: str, rule: str, call: str, body: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO grafana_calls (device, rule, call, body) VALUES (?, ?, ?, ?)",
            (device, rule, call, json.dumps(body)),
        )

    def grafana_calls(self) -> list[GrafanaCall]:
        rows = self.db.execute(
            "SELECT id, device, rule, call, body FROM grafana_calls ORDER BY id"
        ).fetchall()
        return [GrafanaCall(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def done_grafana(self, call_id: int) -> None:
        self.db.execute("DELETE FROM grafana_calls WHERE id = ?", (call_id,))
