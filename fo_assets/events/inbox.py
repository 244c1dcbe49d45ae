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

A stored row that cannot be read back (written by an older version, or by hand) is quarantined: the page
skips it, names it in ``Page.quarantined`` and in a warning, and it stays in the table for inspection, so it
never blocks the events after it. Events the sensor has passed are pruned after a retention (``prune``).

The inbox holds what F&O says about the business: the SQLite file is the owner's alone (0600, in folders
made 0700), like the secret store.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as PgConnection
from psycopg2.extensions import cursor as PgCursor
from psycopg2.extensions import parse_dsn
from psycopg2.extras import execute_values
from psycopg2.pool import ThreadedConnectionPool

from fo_assets.events.payload import BusinessEvent, loads, shown, stored_form
from fo_assets.folders import private_folders
from fo_assets.secrets import Secret
from fo_assets.settings import Settings

log = logging.getLogger(__name__)

# Written by append, in this order, by both backends (an event's ``stored_form``, then when it arrived); read
# back with seq first.
_INSERT_COLUMNS = "event_id, business_event_id, legal_entity, control_number, event_time, payload, received_at"
_COLUMNS = f"seq, {_INSERT_COLUMNS}"
# PostgreSQL hands instants back as text (ISO, the session in UTC): a value Python cannot hold (infinity,
# year 10000) then fails on its own row, where it is quarantined, not in the driver for the whole page.
_PG_COLUMNS = ("seq, event_id, business_event_id, legal_entity, control_number, event_time::text, payload, "
               "received_at::text")
# A writer holding the inbox (a big batch, another appender) is waited for this long, not an error.
_BUSY_TIMEOUT_S = 30.0


class InboxError(RuntimeError):
    """The PostgreSQL inbox cannot be reached or refused a statement; names the server, never the password."""


# A failure to store or read, whichever the backend: the receiver answers 503 so the sender retries.
STORAGE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError, InboxError)


@dataclass(frozen=True)
class StoredEvent:
    """A Business Event in the inbox, with its cursor value and when it arrived."""
    seq: int  # the cursor value of this event
    event: BusinessEvent
    received_at: dt.datetime


@dataclass(frozen=True)
class Quarantined:
    """A stored row that cannot be read back as an event: passed over, left in the table."""

    seq: int
    event_id: str
    reason: str


@dataclass(frozen=True)
class Page:
    """One read of the inbox: events to act on, quarantined ones, and the cursor past them."""
    events: list[StoredEvent]
    quarantined: list[Quarantined]
    cursor: int  # past every row of the page, quarantined ones included


class Inbox(ABC):
    """What the receiver, the Service Bus drain and the sensor use, whatever holds the events."""

    location: str  # where the events are, for log lines and errors

    def append(self, events: Iterable[BusinessEvent]) -> int:
        """Store the events in one transaction; return how many were new (unseen EventIds)."""
        return self.append_rows([stored_form(e) for e in events])

    def append_rows(self, rows: list[tuple]) -> int:
        """``append`` for events already in their ``stored_form`` (made by the receiver's parser processes)."""
        received_at = dt.datetime.now(dt.UTC).isoformat()
        return self._insert([(*row, received_at) for row in rows]) if rows else 0

    def read_page(self, cursor: int, limit: int) -> Page:
        """Up to ``limit`` rows stored after ``cursor``, oldest first, as events or quarantined rows."""
        rows = self._rows_after(cursor, limit)
        events: list[StoredEvent] = []
        quarantined: list[Quarantined] = []
        for row in rows:
            try:
                events.append(_stored(row))
            except (ValueError, TypeError, OverflowError) as exc:
                quarantined.append(Quarantined(row[0], str(row[1]), str(exc)))
                log.warning("event inbox %s: the row with seq %d (EventId %s) cannot be read back: %s; passed over "
                            "and left in the inbox", self.location, row[0], shown(row[1]), shown(str(exc), 300))
        return Page(events, quarantined, rows[-1][0] if rows else cursor)

    def read_after(self, cursor: int, limit: int) -> tuple[list[StoredEvent], int]:
        """Up to ``limit`` events stored after ``cursor``, oldest first, and the cursor after them."""
        page = self.read_page(cursor, limit)
        return page.events, page.cursor

    def backlog_since(self, cursor: int) -> dt.datetime | None:
        """When the oldest event after ``cursor`` arrived; None when nothing is waiting."""
        received = self._first_received_after(cursor)
        try:
            return None if received is None else _instant(received)
        except (ValueError, TypeError):
            return dt.datetime.min.replace(tzinfo=dt.UTC)  # unreadable: as overdue as it gets

    def prune(self, up_to: int, received_before: dt.datetime) -> int:
        """Delete the events at or below the cursor ``up_to`` received before ``received_before``; how many."""
        return self._delete(up_to, received_before.astimezone(dt.UTC).isoformat())

    def close(self) -> None:
        """Release what the inbox holds open (PostgreSQL's pooled connections)."""

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def count(self) -> int:
        """Events in the inbox."""

    @abstractmethod
    def ping(self) -> None:
        """Raise one of ``STORAGE_ERRORS`` unless the table can be reached; reads no rows (health checks)."""

    @abstractmethod
    def _first_received_after(self, cursor: int) -> str | None: ...

    @abstractmethod
    def _delete(self, up_to: int, received_before: str) -> int: ...

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
        private_folders(self.path.parent)
        # Created 0600 before SQLite opens it (its -wal and -shm files take the database file's mode).
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_uid == os.geteuid():
                os.fchmod(fd, 0o600)  # also a file an older version made 0644
        finally:
            os.close(fd)
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
        """Events in the inbox."""
        with self._connect() as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]

    def ping(self) -> None:
        """Fail now if the inbox cannot be reached."""
        with self._connect() as conn:
            conn.execute("SELECT 1 FROM events LIMIT 0").fetchall()

    def _first_received_after(self, cursor: int) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT received_at FROM events WHERE seq > ? ORDER BY seq LIMIT 1", (cursor,)).fetchone()
        return row[0] if row else None

    def _delete(self, up_to: int, received_before: str) -> int:
        with self._connect() as conn:
            return conn.execute("DELETE FROM events WHERE seq <= ? AND received_at < ?", (up_to, received_before)).rowcount


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


class _UtcConnection(PgConnection):
    """A session in UTC with ISO date output, whatever the server's, the database's, the role's or the client's
    (PGTZ) default: instants are written and read back (as text, ``read_page``) the same everywhere."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        with self, self.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO'")


# Connections a PostgreSQL inbox keeps open between calls (psycopg2's pool opens them with the pool and
# closes any beyond them when they are returned), and the most it opens at once (the receiver's post
# slots, health checks and the sensor).
_POOL_IDLE, _POOL_SIZE = 2, 8


class PostgresInbox(Inbox):
    """The ``events`` table of one schema in PostgreSQL (a schema per customer when they share a database).

    Connections are pooled (a health check every few seconds must not cost a login each) and shared
    safely by uvicorn's worker threads; every session runs in UTC. A pooled connection the server dropped
    (a restart) fails on the transaction's first statement, before anything was written: it is replaced
    and the call goes on, so a restarted server costs nothing but the calls made while it was down.
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
        self._pool: ThreadedConnectionPool | None = None
        self._pool_lock = threading.Lock()
        # psycopg2's pool raises when all its connections are out; callers wait for one instead.
        self._slots = threading.BoundedSemaphore(_POOL_SIZE)
        self._create()

    def close(self) -> None:
        """Close the connection pool."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None

    def _pooled(self) -> tuple[ThreadedConnectionPool, PgConnection]:
        try:
            with self._pool_lock:
                if self._pool is None:
                    password = {"password": self._password.reveal()} if self._password is not None else {}
                    self._pool = ThreadedConnectionPool(
                        _POOL_IDLE, _POOL_SIZE, self._dsn,
                        # The timeout bounds connecting: an unreachable server answers 503 instead of hanging a post.
                        connect_timeout=self._connect_timeout_s,
                        connection_factory=_UtcConnection,
                        **password,
                    )
                pool = self._pool
            return pool, pool.getconn()
        except psycopg2.Error as exc:
            raise InboxError(f"event inbox {self.location}: cannot connect: {_one_line(exc)}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[PgCursor]:
        """A cursor in one transaction, committed when the block ends without an error."""
        with self._slots:
            for attempt in (1, 2):
                pool, conn = self._pooled()
                try:
                    cur = conn.cursor()
                    # Opens the transaction. A writer holding the table is waited for as long as SQLite's busy
                    # timeout, not forever.
                    cur.execute(f"SET LOCAL lock_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
                    break
                except psycopg2.Error as exc:
                    # A pooled connection the server dropped fails here, before anything was written: try a new one.
                    pool.putconn(conn, close=True)
                    if attempt == 2 or not isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                        raise InboxError(f"event inbox {self.location}: {_one_line(exc)}") from exc
            broken = False
            try:
                with conn, cur:
                    yield cur
            except psycopg2.Error as exc:
                broken = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
                raise InboxError(f"event inbox {self.location}: {_one_line(exc)}") from exc
            finally:
                pool.putconn(conn, close=broken or bool(conn.closed))

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
                sql.SQL(_PG_COLUMNS), self._table), (cursor, limit))
            return cur.fetchall()

    def count(self) -> int:
        """Events in the inbox."""
        with self._transaction() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(self._table))
            return cur.fetchone()[0]

    def ping(self) -> None:
        """Fail now if the inbox cannot be reached."""
        with self._transaction() as cur:
            cur.execute(sql.SQL("SELECT 1 FROM {} LIMIT 0").format(self._table))

    def _first_received_after(self, cursor: int) -> str | None:
        with self._transaction() as cur:
            cur.execute(sql.SQL("SELECT received_at::text FROM {} WHERE seq > %s ORDER BY seq LIMIT 1").format(
                self._table), (cursor,))
            row = cur.fetchone()
        return row[0] if row else None

    def _delete(self, up_to: int, received_before: str) -> int:
        with self._transaction() as cur:
            cur.execute(sql.SQL("DELETE FROM {} WHERE seq <= %s AND received_at < %s").format(self._table),
                        (up_to, received_before))
            return cur.rowcount


def _one_line(exc: psycopg2.Error) -> str:
    """libpq's and the server's message on one line (it may span several, with tabs)."""
    return " ".join(str(exc).split())


def _stored(row: tuple) -> StoredEvent:
    """A row as an event; ValueError, TypeError or OverflowError for a row that is not one."""
    seq, event_id, business_event_id, legal_entity, control_number, event_time, payload, received_at = row
    document = loads(payload)
    if not isinstance(document, dict):
        raise ValueError(f"its payload is {type(document).__name__}, not an object")
    event = BusinessEvent(
        event_id=event_id,
        business_event_id=business_event_id,
        legal_entity=legal_entity,
        control_number=control_number,
        event_time=_instant(event_time),
        payload=document,
    )
    return StoredEvent(seq=seq, event=event, received_at=_instant(received_at))


def _instant(value: str) -> dt.datetime:
    """An instant both backends hand back as ISO text (PostgreSQL's ``2026-01-01 00:00:00+00``), in UTC."""
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"instant {value!r} has no offset")
    return parsed.astimezone(dt.UTC)
