"""The durable Business Events inbox: every event received, once, in arrival order.

The receiver (or the Service Bus drain) appends; the sensor reads forward from a cursor. They are
separate processes (and on Kubernetes separate pods), so the inbox is a database both reach:

- locally, a SQLite file under ``FO_ASSETS_HOME`` (``SqliteInbox``);
- in production, a table in PostgreSQL (``PostgresInbox``, when ``FO_INBOX_POSTGRES`` is set), so a lost
  pod or volume loses nothing.

Both behave the same: ``append`` commits durably before it returns (the receiver answers 2xx only
after that), ``EventId`` is unique, so F&O's retries and an admin's resend are stored once no matter
which process sees them, and ``read_after`` returns events in the order of their ``seq``.

The cursor is the ``seq`` of the last event read. It only ever grows and is never reused, and an event
becomes visible only after every event with a smaller ``seq`` (how each backend ensures that is at its
``_insert``), so a cursor saved by the sensor never skips an event.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from abc import ABC, abstractmethod
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor as PgCursor
from psycopg2.extensions import parse_dsn
from psycopg2.extras import execute_values

from fo_assets.dynamics.events import BusinessEvent, dumps, loads
from fo_assets.secrets import Secret
from fo_assets.settings import Settings

# Written by append, in this order, by both backends; read back with seq first.
_INSERT_COLUMNS = "event_id, business_event_id, legal_entity, control_number, event_time, payload, received_at"
_COLUMNS = f"seq, {_INSERT_COLUMNS}"
# A writer holding the inbox (a big batch, another appender) is waited for this long, not an error.
_BUSY_TIMEOUT_S = 30.0


class InboxError(RuntimeError):
    """The PostgreSQL inbox cannot be reached or refused a statement; names the server, never the password."""


# A failure to store or read, whichever the backend: the receiver answers 503 so the sender retries.
STORAGE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError, InboxError)


@dataclass(frozen=True)
class StoredEvent:
    seq: int  # the cursor value of this event
    event: BusinessEvent
    received_at: dt.datetime


class Inbox(ABC):
    """What the receiver, the Service Bus drain and the sensor use, whatever holds the events."""

    location: str  # where the events are, for log lines and errors

    def append(self, events: Iterable[BusinessEvent]) -> int:
        """Store the events in one transaction; return how many were new (unseen EventIds)."""
        received_at = dt.datetime.now(dt.UTC).isoformat()
        rows = [_row(e, received_at) for e in events]
        return self._insert(rows) if rows else 0

    def read_after(self, cursor: int, limit: int) -> tuple[list[StoredEvent], int]:
        """Up to ``limit`` events stored after ``cursor``, oldest first, and the cursor after them."""
        stored = [_stored(row) for row in self._rows_after(cursor, limit)]
        return stored, (stored[-1].seq if stored else cursor)

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def _insert(self, rows: list[tuple]) -> int:
        """Insert rows of ``_INSERT_COLUMNS``, skipping known event ids, and commit; how many were new."""

    @abstractmethod
    def _rows_after(self, cursor: int, limit: int) -> list[tuple]:
        """Rows of ``_COLUMNS`` with seq above ``cursor``, by seq."""


def open_inbox(settings: Settings) -> Inbox:
    """The inbox the settings name: PostgreSQL with ``FO_INBOX_POSTGRES``, else SQLite under the home."""
    if settings.inbox_postgres is None:
        return SqliteInbox(settings.inbox_path)
    return PostgresInbox(settings.inbox_postgres, settings.secret("FO_INBOX_PASSWORD"), settings.inbox_schema)


_SQLITE_TABLE = """
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


class SqliteInbox(Inbox):
    """A SQLite file in WAL mode (readers never block the writer) with ``synchronous=FULL`` (an
    acknowledged event survives a power cut). ``AUTOINCREMENT`` keeps seqs strictly increasing and never
    reused."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            # journal_mode=WAL is stored in the file: set once here, it holds for every connection.
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"event inbox {self.path}: SQLite refused WAL mode (got {mode})")
            conn.execute(_SQLITE_TABLE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per call: safe from any thread and any process.
        with closing(sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)) as conn:
            conn.execute("PRAGMA synchronous=FULL")
            yield conn

    def _insert(self, rows: list[tuple]) -> int:
        with self._connect() as conn:
            # BEGIN IMMEDIATE takes the file's write lock first: one appender at a time, so seqs commit in order.
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                conn.executemany(
                    f"INSERT OR IGNORE INTO events ({_INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )
                new = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return new

    def _rows_after(self, cursor: int, limit: int) -> list[tuple]:
        with self._connect() as conn:
            return conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
            ).fetchall()

    def count(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]


# The payload is text, not jsonb: its decimals and key order stay exactly as dumps() wrote them.
# GENERATED ALWAYS: nothing can insert a seq of its own below a cursor already handed out.
_POSTGRES_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    business_event_id text NOT NULL,
    legal_entity text,
    control_number bigint,
    event_time timestamptz NOT NULL,
    payload text NOT NULL,
    received_at timestamptz NOT NULL
)
"""


class PostgresInbox(Inbox):
    """The ``events`` table of one schema in PostgreSQL (a schema per customer when they share a database).

    One short-lived connection per call, like the SQLite inbox: safe from uvicorn's worker threads and any
    process, and a restarted server costs nothing but the calls made while it was down.
    """

    def __init__(self, dsn: str, password: Secret | None, schema: str = "fo_assets",
                 connect_timeout_s: int = 10) -> None:
        self._dsn = dsn
        self._password = password
        self._connect_timeout_s = connect_timeout_s
        self._schema = schema
        self._table = sql.Identifier(schema, "events")
        info = parse_dsn(dsn)
        port = f":{info['port']}" if "port" in info else ""
        self.location = (f"PostgreSQL database {info.get('dbname', '(default)')} on "
                         f"{info.get('host', '(default host)')}{port}, schema {schema}")
        self._create()

    @contextmanager
    def _transaction(self) -> Iterator[PgCursor]:
        """A cursor in one transaction, committed when the block ends without an error."""
        password = {"password": self._password.reveal()} if self._password is not None else {}
        try:
            # The timeout bounds connecting, so an unreachable server answers 503 instead of hanging a post.
            conn = psycopg2.connect(self._dsn, connect_timeout=self._connect_timeout_s, **password)
        except psycopg2.Error as exc:
            raise InboxError(f"event inbox {self.location}: cannot connect: {_one_line(exc)}") from exc
        try:
            with conn, conn.cursor() as cur:
                # A writer holding the table is waited for as long as SQLite's busy timeout, not forever.
                cur.execute(f"SET LOCAL lock_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
                yield cur
        except psycopg2.Error as exc:
            raise InboxError(f"event inbox {self.location}: {_one_line(exc)}") from exc
        finally:
            conn.close()

    def _create(self) -> None:
        with self._transaction() as cur:
            cur.execute("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %(schema)s), "
                        "EXISTS (SELECT FROM pg_tables WHERE schemaname = %(schema)s AND tablename = 'events')",
                        {"schema": self._schema})
            schema_exists, table_exists = cur.fetchone()
            if table_exists:
                # Checked first: a role that may only use a schema and table made for it need not create.
                return
            # Two processes creating the same table at once can fail on the catalog's unique index
            # (IF NOT EXISTS checks before it inserts); the second waits here and then finds it.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"fo_assets inbox {self._schema}",))
            if not schema_exists:
                # Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even then.
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
            cur.execute(sql.SQL(_POSTGRES_TABLE).format(table=self._table))

    def _insert(self, rows: list[tuple]) -> int:
        with self._transaction() as cur:
            # The receiver acknowledges once this returns: the commit must be on disk whatever the server's
            # default (SQLite's synchronous=FULL).
            cur.execute("SET LOCAL synchronous_commit = on")
            # seq is drawn from the identity sequence during the INSERT but becomes visible at COMMIT, so two
            # appenders can commit seq 11 before seq 10; a sensor that read up to 11 in between would skip 10
            # for good. This lock makes appenders take turns from before drawing seqs until after commit,
            # so seqs become visible in order (what BEGIN IMMEDIATE does for SQLite). It conflicts with
            # itself and with any INSERT (ROW EXCLUSIVE), not with the sensor's reads (ACCESS SHARE), and is
            # released at commit or rollback.
            cur.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(self._table))
            inserted = execute_values(
                cur,
                sql.SQL("INSERT INTO {} ({}) VALUES %s ON CONFLICT (event_id) DO NOTHING RETURNING seq").format(
                    self._table, sql.SQL(_INSERT_COLUMNS)),
                rows,
                fetch=True,
            )
        return len(inserted)

    def _rows_after(self, cursor: int, limit: int) -> list[tuple]:
        with self._transaction() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} WHERE seq > %s ORDER BY seq LIMIT %s").format(
                sql.SQL(_COLUMNS), self._table), (cursor, limit))
            return cur.fetchall()

    def count(self) -> int:
        with self._transaction() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(self._table))
            return cur.fetchone()[0]


def _one_line(exc: psycopg2.Error) -> str:
    """libpq's and the server's message on one line (it may span several, with tabs)."""
    return " ".join(str(exc).split())


def _row(event: BusinessEvent, received_at: str) -> tuple:
    """An event as the values of ``_INSERT_COLUMNS`` (instants as ISO text; PostgreSQL parses them)."""
    return (
        event.event_id,
        event.business_event_id,
        event.legal_entity,
        event.control_number,
        event.event_time.isoformat(),
        dumps(event.payload),
        received_at,
    )


def _stored(row: tuple) -> StoredEvent:
    seq, event_id, business_event_id, legal_entity, control_number, event_time, payload, received_at = row
    event = BusinessEvent(
        event_id=event_id,
        business_event_id=business_event_id,
        legal_entity=legal_entity,
        control_number=control_number,
        event_time=_instant(event_time),
        payload=loads(payload),
    )
    return StoredEvent(seq=seq, event=event, received_at=_instant(received_at))


def _instant(value: str | dt.datetime) -> dt.datetime:
    """SQLite gives back the ISO text; PostgreSQL a datetime in the session's time zone, made UTC here."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(value)
