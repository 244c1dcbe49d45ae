"""The Business Events inbox in PostgreSQL, as production runs it: appenders in several processes never let
the sensor's cursor pass an event, events outlive the process that stored them, the receiver over HTTPS
stores into it and the sensor reads from it, customers keep their own schemas, and a failure names the
server without the password.

The parts every backend shares (dedup, cursor order, exact round trips) are in test_inbox.py.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import httpx
import psycopg2
import pytest

from fo_assets.definitions import build_definitions
from fo_assets.events.payload import parse_payload
from fo_assets.events.inbox import InboxError, PostgresInbox, open_inbox
from fo_assets.events.receiver import create_app
from fo_assets.sandbox.tls import TlsFiles
from fo_assets.secrets import Secret, generate_master_key
from fo_assets.settings import load_settings
from fo_assets_tests.deploy.postgres import DATABASE, USER, Postgres
from fo_assets_tests.support.events import (
    SECRET,
    Backend,
    invoice_posted,
    po_confirmed,
    running,
    serving_process,
)

APPENDERS = 4
EVENTS_PER_APPENDER = 1_500

# An appender process: says it is ready, waits for the go, then appends its events in batches of varied
# size (a batch over 100 rows is several INSERT statements in one transaction: its seqs are drawn over
# several round trips, while other appenders draw theirs), and prints how many were new.
_APPENDER = """
import random, sys
from fo_assets.events.payload import parse_payload
from fo_assets.events.inbox import open_inbox
from fo_assets.settings import load_settings
from fo_assets_tests.support.events import po_confirmed
inbox = open_inbox(load_settings())
ids = sys.argv[1].split(",")
events = [parse_payload(po_confirmed(f"PO-{n}", event_id=i)) for n, i in enumerate(ids)]
rng = random.Random(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
new = 0
while events:
    size = rng.choice((1, 3, 40, 250))
    new += inbox.append(events[:size])
    events = events[size:]
print(new, flush=True)
"""

# Open the inbox the environment names; store the events given as JSON, or print what is stored.
_STORE_OR_READ = """
import json, sys
from fo_assets.events.payload import parse_payload
from fo_assets.events.inbox import open_inbox
from fo_assets.settings import load_settings
inbox = open_inbox(load_settings())
if sys.argv[1] == "store":
    print(inbox.append([parse_payload(p) for p in json.loads(sys.argv[2])]))
else:
    stored, cursor = inbox.read_after(int(sys.argv[2]), 100)
    print(json.dumps({"ids": [s.event.event_id for s in stored], "cursor": cursor}))
"""


def _child(script: str, backend: Backend, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", script, *args], env=backend.process_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _new_ids(count: int) -> list[str]:
    return [str(uuid.uuid4()).upper() for _ in range(count)]


def test_concurrent_appenders_in_processes_never_let_the_cursor_skip_an_event(pg_backend: Backend) -> None:
    inbox = pg_backend.open()
    ids = [_new_ids(EVENTS_PER_APPENDER) for _ in range(APPENDERS)]
    children = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, ",".join(chunk), str(n)], env=pg_backend.process_env(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for n, chunk in enumerate(ids)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:  # all at once, so their transactions overlap
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()

    # The sensor's way of reading, as fast as it can while the appenders run.
    read: list[str] = []
    seqs: list[int] = []
    cursor = polls = 0
    while any(child.poll() is None for child in children):
        page, cursor = inbox.read_after(cursor, 500)
        read += [s.event.event_id for s in page]
        seqs += [s.seq for s in page]
        polls += 1
    while page := inbox.read_after(cursor, 500)[0]:
        read += [s.event.event_id for s in page]
        seqs += [s.seq for s in page]
        cursor = page[-1].seq

    reported = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        reported.append(int(out))
    everything = {i for chunk in ids for i in chunk}
    assert sum(reported) == len(everything) == inbox.count()
    assert polls > 20, "the reader hardly overlapped the appenders"
    assert not [i for i, n in Counter(read).items() if n > 1], "an event was read twice"
    missed = everything - set(read)
    assert not missed, f"{len(missed)} events were committed below a cursor the reader had passed"
    assert seqs == sorted(seqs)


def test_an_append_waits_for_an_uncommitted_insert_below_it(pg_backend: Backend, postgres: Postgres) -> None:
    """Deterministic: a writer holds seq n uncommitted; an append must not become visible as n+1 before it."""
    inbox = pg_backend.open()
    schema = pg_backend.env["FO_INBOX_SCHEMA"]
    early, late = (parse_payload(po_confirmed(f"PO-{n}")) for n in (1, 2))
    writer = postgres.connect()
    try:
        with writer.cursor() as cur:
            cur.execute(f"INSERT INTO {schema}.events (event_id, business_event_id, event_time, payload, received_at) "
                        "VALUES (%s, %s, now(), %s, now())",
                        (early.event_id, early.business_event_id, json.dumps(early.payload)))
        appended: list[int] = []
        appender = threading.Thread(target=lambda: appended.append(inbox.append([late])))
        appender.start()
        time.sleep(1.0)
        assert appender.is_alive(), "the append committed while an earlier seq was still in flight"
        assert inbox.read_after(0, 10) == ([], 0)  # the sensor sees neither yet, so its cursor stays put
        writer.commit()
    finally:
        writer.close()
    appender.join(30)
    assert appended == [1]
    stored, _ = inbox.read_after(0, 10)
    assert [s.event.event_id for s in stored] == [early.event_id, late.event_id]


def test_events_outlive_the_process_that_stored_them(pg_backend: Backend) -> None:
    first = [po_confirmed("PO-1"), invoice_posted()]
    assert _child(_STORE_OR_READ, pg_backend, "store", json.dumps(first)).strip() == "2"
    seen = json.loads(_child(_STORE_OR_READ, pg_backend, "read", "0"))
    assert seen["ids"] == [first[0]["EventId"], first[1]["EventId"].upper()]

    # A resend after the restart is still known; the next reader carries on from the saved cursor.
    later = po_confirmed("PO-2")
    assert _child(_STORE_OR_READ, pg_backend, "store", json.dumps([first[0], later])).strip() == "1"
    after = json.loads(_child(_STORE_OR_READ, pg_backend, "read", str(seen["cursor"])))
    assert after["ids"] == [later["EventId"]] and after["cursor"] > seen["cursor"]
    assert not (Path(pg_backend.env["FO_ASSETS_HOME"]) / "events").exists()  # nothing went to SQLite


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("fo_business_events")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        return sensor(context)


def test_receiver_over_https_stores_in_postgres_and_the_sensor_requests_the_refresh(
    pg_backend: Backend, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in pg_backend.env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    empty = _tick(defs, instance, None)  # the PostgreSQL inbox exists before any event: no "no inbox yet"
    assert not empty.run_requests and str(empty.skip_reason.skip_message) == "no new events"

    order, invoice = po_confirmed("USMF-PO0000001", "usmf"), invoice_posted("DEMF-V00001", "INV-7")
    trusted = ssl.create_default_context(cafile=str(tls_files.ca_path))
    inbox = open_inbox(settings)
    assert isinstance(inbox, PostgresInbox)
    app = create_app(inbox, SECRET)
    with running(app, certfile=tls_files.cert_path, keyfile=tls_files.key_path) as url:
        with httpx.Client(base_url=url, verify=trusted) as https:
            response = https.post("/events", params={"code": SECRET}, content=json.dumps([order, invoice, order]))
            assert response.status_code == 202, response.text
            assert response.json() == {"received": 3, "new": 2, "ignored": 0}
            assert https.get("/healthz").status_code == 200

    result = _tick(defs, instance, None)
    (request,) = result.run_requests
    config = request.run_config["ops"]["refresh_records"]["config"]
    assert config["event_ids"] == [order["EventId"], invoice["EventId"].upper()]
    assert {(t["entity_set"], t["company"]) for t in config["targets"]} == {
        ("PurchaseOrderHeadersV2", "usmf"), ("VendInvoiceJourBiEntities", "usmf")}
    assert dg.validate_run_config(defs.resolve_job_def("fo_targeted_refresh"), request.run_config)
    assert not _tick(defs, instance, result.cursor).run_requests
    assert not settings.inbox_path.exists()


def test_the_events_serve_command_stores_in_postgres_with_the_password_from_the_store(pg_backend: Backend) -> None:
    """`fo-assets events serve` as an operator runs it: settings in the environment, secrets in the store."""
    home = Path(pg_backend.env["FO_ASSETS_HOME"])
    env = {**pg_backend.process_env(), "FO_ASSETS_MASTER_KEY": generate_master_key()}
    secrets = {"FO_INBOX_PASSWORD": env.pop("FO_INBOX_PASSWORD"), "FO_EVENTS_SECRET": SECRET}
    for name, value in secrets.items():
        load_settings(env).secret_store.set(name, Secret(value))
    fo_assets = str(Path(sys.executable).with_name("fo-assets"))
    with serving_process([fo_assets, "events", "serve", "--port", "0"], env) as served:
        with httpx.Client(base_url=served.url) as client:
            response = client.post("/events", params={"code": SECRET}, content=json.dumps(po_confirmed("PO-CLI")))
            assert response.status_code == 202, response.text
    log = served.log
    assert "stored 1 new of 1 events" in log, log
    assert secrets["FO_INBOX_PASSWORD"] not in log
    (stored,), _ = pg_backend.open().read_after(0, 10)
    assert stored.event.payload["PurchaseOrderNumber"] == "PO-CLI"
    assert not (home / "events" / "inbox.sqlite3").exists()


def test_receiver_answers_503_when_postgres_cannot_store(pg_backend: Backend, postgres: Postgres) -> None:
    inbox = pg_backend.open()
    admin = postgres.connect()
    try:
        with admin, admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA {pg_backend.env['FO_INBOX_SCHEMA']} CASCADE")
    finally:
        admin.close()
    with running(create_app(inbox, SECRET)) as url, httpx.Client(base_url=url) as http:
        response = http.post("/events", params={"code": SECRET}, content=json.dumps(po_confirmed()))
        assert response.status_code == 503 and "retry" in response.json()["error"]
        health = http.get("/healthz")
        assert health.status_code == 503 and postgres.host not in health.text  # details only in the log


def test_customers_sharing_a_database_keep_their_own_schema(postgres: Postgres) -> None:
    contoso, fabrikam = (PostgresInbox(_dsn(postgres), Secret(postgres.password), f"fo_{name}_{uuid.uuid4().hex[:6]}")
                         for name in ("contoso", "fabrikam"))
    event = parse_payload(po_confirmed())
    assert contoso.append([event]) == 1
    assert fabrikam.append([event]) == 1  # the same event id is another customer's business
    assert contoso.count() == fabrikam.count() == 1
    assert fabrikam.read_after(0, 10)[0][0].seq == 1


def test_the_table_is_made_once_and_event_id_is_unique(pg_backend: Backend, postgres: Postgres) -> None:
    schema = pg_backend.env["FO_INBOX_SCHEMA"]
    pg_backend.open()
    pg_backend.open()  # opening again finds the table
    assert postgres.query("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)) == [(1,)]
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            row = f"INSERT INTO {schema}.events (event_id, business_event_id, event_time, payload, received_at) " \
                  "VALUES ('X', 'T', now(), '{}', now())"
            cur.execute(row)
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute(row)
    finally:
        conn.close()


def test_a_role_that_may_only_use_its_table_needs_no_create_privilege(pg_backend: Backend, postgres: Postgres) -> None:
    """A DBA made the schema and table; the inbox's role has USAGE and SELECT, INSERT, UPDATE (for the lock),
    DELETE (for the sensor's pruning), and no CREATE on the database or the schema."""
    schema = pg_backend.env["FO_INBOX_SCHEMA"]
    pg_backend.open()
    role, password = f"inbox_user_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = postgres.connect()
    try:
        with admin, admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
            cur.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.events TO {role}")
    finally:
        admin.close()
    limited = PostgresInbox(f"host={postgres.host} port={postgres.port} dbname={DATABASE} user={role}",
                            Secret(password), schema)
    assert limited.append([parse_payload(po_confirmed())]) == 1
    assert limited.count() == 1
    (stored,), cursor = limited.read_after(0, 10)
    assert limited.prune(cursor, stored.received_at + dt.timedelta(seconds=1)) == 1


def _dsn(postgres: Postgres, **overrides: object) -> str:
    parts = {"host": postgres.host, "port": postgres.port, "dbname": DATABASE, "user": USER, **overrides}
    return " ".join(f"{k}={v}" for k, v in parts.items())


def test_a_wrong_password_names_the_server_and_its_answer_never_the_password(pg_backend: Backend,
                                                                               postgres: Postgres) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(InboxError) as caught:
        Backend({**pg_backend.env, "FO_INBOX_PASSWORD": wrong}).open()
    message = str(caught.value)
    assert f"{postgres.host}:{postgres.port}" in message and f"database {DATABASE}" in message
    assert "password authentication failed" in message
    assert wrong not in message and postgres.password not in message
    assert wrong not in repr(caught.value.__cause__)


def test_an_unreachable_server_fails_fast_and_one_that_never_answers_within_the_timeout(postgres: Postgres) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # free again once closed: nothing listens there, refused at once
    with pytest.raises(InboxError, match=rf"127\.0\.0\.1:{port}.*cannot connect.*refused"):
        PostgresInbox(_dsn(postgres, port=port), Secret(postgres.password))

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; no server ever answers the startup message
        started = time.monotonic()
        with pytest.raises(InboxError, match="timeout"):
            PostgresInbox(_dsn(postgres, port=silent.getsockname()[1]), Secret(postgres.password),
                          connect_timeout_s=2)
        assert time.monotonic() - started < 10


def test_the_sensor_still_runs_events_when_its_role_may_not_prune(
    pg_backend: Backend, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role granted what an earlier version needed (no DELETE): pruning is logged as failed, events still run."""
    schema = pg_backend.env["FO_INBOX_SCHEMA"]
    pg_backend.open()
    role, password = f"inbox_old_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = postgres.connect()
    try:
        with admin, admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
            cur.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            cur.execute(f"GRANT SELECT, INSERT, UPDATE ON {schema}.events TO {role}")
    finally:
        admin.close()
    env = {**pg_backend.env, "FO_INBOX_POSTGRES": _dsn(postgres, user=role), "FO_INBOX_PASSWORD": password}
    event = po_confirmed("PO-OLD-ROLE")
    Backend(env).open().append([parse_payload(event)])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = _tick(build_definitions(), dg.DagsterInstance.ephemeral(), None)
    (request,) = result.run_requests
    assert request.run_config["ops"]["refresh_records"]["config"]["event_ids"] == [event["EventId"]]
