"""The durable inbox, on SQLite and on PostgreSQL: once per EventId across processes, cursor reads in
arrival order, exact round trips; SQLite in WAL mode. PostgreSQL's own concerns are in test_inbox_postgres.py."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest

from fo_assets.events.payload import parse_payload
from fo_assets.events.inbox import PostgresInbox, SqliteInbox
from fo_assets_tests.support.events import REAL_PO_CONFIRMED, Backend, po_confirmed

# A child process appending its events; every child posts the same ids in a different order.
_CHILD = """
import sys
from fo_assets.events.payload import parse_payload
from fo_assets.events.inbox import open_inbox
from fo_assets.settings import load_settings
from fo_assets_tests.support.events import po_confirmed
inbox = open_inbox(load_settings())
ids = sys.argv[1].split(",")
events = [parse_payload(po_confirmed(f"PO-{i}", event_id=i)) for i in ids]
new = sum(inbox.append([e]) for e in events[: len(events) // 2]) + inbox.append(events[len(events) // 2 :])
print(new)
"""


def test_the_settings_choose_the_backend(backend: Backend) -> None:
    inbox = backend.open()
    if "FO_INBOX_POSTGRES" in backend.env:
        assert isinstance(inbox, PostgresInbox)
        assert inbox.location.endswith(f"schema {backend.env['FO_INBOX_SCHEMA']}")
    else:  # unset: SQLite under the home, as before PostgreSQL was an option
        assert isinstance(inbox, SqliteInbox)
        assert inbox.path == Path(backend.env["FO_ASSETS_HOME"]) / "events" / "inbox.sqlite3"


def test_same_event_id_is_stored_once(backend: Backend) -> None:
    inbox = backend.open()
    first = parse_payload(po_confirmed("PO-1"))
    second = parse_payload(po_confirmed("PO-2"))
    assert inbox.append([first, second, first]) == 2
    # A resend carries the same EventId in another case and a changed payload: still the same event.
    resend = parse_payload(po_confirmed("PO-1-changed", event_id=first.event_id.lower()))
    assert inbox.append([resend]) == 0
    assert inbox.count() == 2
    stored, _ = inbox.read_after(0, 10)
    assert [s.event.payload["PurchaseOrderNumber"] for s in stored] == ["PO-1", "PO-2"]


def test_dedupe_across_processes(backend: Backend) -> None:
    backend.open()
    ids = [str(uuid.uuid4()).upper() for _ in range(40)]
    orders = [ids, ids[::-1], ids[20:] + ids[:20]]
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, ",".join(order)], stdout=subprocess.PIPE, text=True,
                         env=backend.process_env())
        for order in orders
    ]
    reported = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        reported.append(int(out))
    assert sum(reported) == len(ids)  # each event counted new by exactly one writer
    assert backend.open().count() == len(ids)
    stored, _ = backend.open().read_after(0, 100)
    assert sorted(s.event.event_id for s in stored) == sorted(ids)


def test_cursor_reads_forward_in_arrival_order(backend: Backend) -> None:
    inbox = backend.open()
    events = [parse_payload(po_confirmed(f"PO-{n}")) for n in range(5)]
    inbox.append(events[:3])
    inbox.append(events[3:])

    page, cursor = inbox.read_after(0, 2)
    assert [s.event.event_id for s in page] == [e.event_id for e in events[:2]]
    rest, cursor = inbox.read_after(cursor, 10)
    assert [s.event.event_id for s in rest] == [e.event_id for e in events[2:]]
    assert inbox.read_after(cursor, 10) == ([], cursor)

    late = parse_payload(po_confirmed("PO-late"))
    inbox.append([late])
    (only,), after = inbox.read_after(cursor, 10)
    assert only.event.event_id == late.event_id and after > cursor
    assert page[0].seq < page[1].seq < rest[0].seq


def test_stored_event_round_trips_exactly(backend: Backend) -> None:
    inbox = backend.open()
    event = parse_payload(json.loads(REAL_PO_CONFIRMED, parse_float=Decimal))
    inbox.append([event])
    (stored,), _ = backend.open().read_after(0, 1)
    assert stored.event == event
    assert stored.event.payload == event.payload
    assert stored.event.payload["TransactionCurrencyAmount"] == Decimal("90055.6")
    assert stored.event.event_time.utcoffset() is not None
    assert stored.received_at.utcoffset() is not None


def test_wal_mode_and_unique_event_id(tmp_path: Path) -> None:
    path = tmp_path / "home" / "events" / "inbox.sqlite3"
    SqliteInbox(path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute(
            "INSERT INTO events (event_id, business_event_id, event_time, payload, received_at) "
            "VALUES ('X', 'T', 't', '{}', 'r')"
        )
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(
                "INSERT INTO events (event_id, business_event_id, event_time, payload, received_at) "
                "VALUES ('X', 'T', 't', '{}', 'r')"
            )
    finally:
        conn.close()


def _insert_raw(backend: Backend, event_id: str, event_time: str, payload: str) -> None:
    """A row as something other than ``append`` might have written it (an older version, a hand-made fix)."""
    columns = "event_id, business_event_id, event_time, payload, received_at"
    env = backend.env
    if "FO_INBOX_POSTGRES" in env:
        with closing(psycopg2.connect(env["FO_INBOX_POSTGRES"], password=env["FO_INBOX_PASSWORD"])) as db, db, \
                db.cursor() as cur:
            cur.execute(f"INSERT INTO {env['FO_INBOX_SCHEMA']}.events ({columns}) "
                        "VALUES (%s, 'PurchaseOrderConfirmedBusinessEvent', %s, %s, now())",
                        (event_id, event_time, payload))
    else:
        with sqlite3.connect(Path(env["FO_ASSETS_HOME"]) / "events" / "inbox.sqlite3") as db:
            db.execute(f"INSERT INTO events ({columns}) VALUES (?, 'PurchaseOrderConfirmedBusinessEvent', ?, ?, ?)",
                       (event_id, event_time, payload, dt.datetime.now(dt.UTC).isoformat()))


def test_a_row_that_cannot_be_read_back_is_quarantined_and_passed_over(backend: Backend) -> None:
    inbox = backend.open()
    before, after = parse_payload(po_confirmed("PO-1")), parse_payload(po_confirmed("PO-2"))
    inbox.append([before])
    _insert_raw(backend, "BAD-PAYLOAD", "2026-01-01T00:00:00+00:00", "{not json")
    _insert_raw(backend, "BAD-KIND", "2026-01-01T00:00:00+00:00", "[1, 2]")
    inbox.append([after])

    page = inbox.read_page(0, 10)
    assert [s.event.event_id for s in page.events] == [before.event_id, after.event_id]
    assert [(q.event_id, q.reason.split(":")[0]) for q in page.quarantined] == [
        ("BAD-PAYLOAD", "body is not valid JSON"), ("BAD-KIND", "its payload is list, not an object")]
    assert page.cursor == page.events[-1].seq and inbox.read_page(page.cursor, 10).events == []
    assert inbox.count() == 4  # left in the inbox for inspection


def test_prune_deletes_only_what_the_cursor_passed_and_the_retention_let_go(backend: Backend) -> None:
    inbox = backend.open()
    events = [parse_payload(po_confirmed(f"PO-{n}")) for n in range(4)]
    inbox.append(events)
    stored, _ = inbox.read_after(0, 10)
    cursor = stored[1].seq  # the sensor has read the first two
    assert inbox.backlog_since(cursor) == stored[2].received_at
    assert inbox.prune(cursor, stored[0].received_at) == 0  # none received before that instant
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert inbox.prune(cursor, soon) == 2  # received before it, and passed: the two unread ones stay
    assert [s.event.event_id for s in inbox.read_after(0, 10)[0]] == [e.event_id for e in events[2:]]
    assert inbox.backlog_since(stored[-1].seq) is None
