"""The durable Business Events inbox: every event received, once, in arrival order.

The receiver (or the Service Bus drain) appends; the sensor reads forward from a cursor. They are
separate processes, so this is a SQLite file under ``FO_ASSETS_HOME`` in WAL mode (readers never block
the writer) with ``synchronous=FULL`` (an acknowledged event survives a power cut: the receiver answers
2xx only after ``append`` returns). ``EventId`` is UNIQUE, so F&O's retries and an admin's resend are
stored once no matter which process sees them.

The cursor is the rowid of the last event read. ``AUTOINCREMENT`` keeps rowids strictly increasing and
never reused, so a cursor saved by the sensor stays valid forever.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from fo_assets.dynamics.events import BusinessEvent, dumps, loads

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    business_event_id TEXT NOT NULL,
    legal_entity TEXT,
    control_number INTEGER,
    event_time TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL
)
"""
_COLUMNS = "seq, event_id, business_event_id, legal_entity, control_number, event_time, payload, received_at"
# Another process holding the write lock (a big batch, the sensor's read) is waited for, not an error.
_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StoredEvent:
    seq: int  # the cursor value of this event
    event: BusinessEvent
    received_at: dt.datetime


class Inbox:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            # journal_mode=WAL is stored in the file: set once here, it holds for every connection.
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"event inbox {self.path}: SQLite refused WAL mode (got {mode})")
            conn.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per call: safe from any thread and any process.
        with closing(sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)) as conn:
            conn.execute("PRAGMA synchronous=FULL")
            yield conn

    def append(self, events: Iterable[BusinessEvent]) -> int:
        """Store the events in one transaction; return how many were new (unseen EventIds)."""
        received_at = dt.datetime.now(dt.UTC).isoformat()
        rows = [
            (
                e.event_id,
                e.business_event_id,
                e.legal_entity,
                e.control_number,
                e.event_time.isoformat(),
                dumps(e.payload),
                received_at,
            )
            for e in events
        ]
        if not rows:
            return 0
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO events (event_id, business_event_id, legal_entity, "
                    "control_number, event_time, payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                new = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return new

    def read_after(self, cursor: int, limit: int) -> tuple[list[StoredEvent], int]:
        """Up to ``limit`` events stored after ``cursor``, oldest first, and the cursor after them."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
            ).fetchall()
        stored = [_stored(row) for row in rows]
        return stored, (stored[-1].seq if stored else cursor)

    def count(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def _stored(row: tuple) -> StoredEvent:
    seq, event_id, business_event_id, legal_entity, control_number, event_time, payload, received_at = row
    event = BusinessEvent(
        event_id=event_id,
        business_event_id=business_event_id,
        legal_entity=legal_entity,
        control_number=control_number,
        event_time=dt.datetime.fromisoformat(event_time),
        payload=loads(payload),
    )
    return StoredEvent(seq=seq, event=event, received_at=dt.datetime.fromisoformat(received_at))
