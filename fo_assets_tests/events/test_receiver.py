"""The receiver over real HTTP (uvicorn on 127.0.0.1, httpx): auth, limits, handshakes, storage."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from fo_assets.events.inbox import SqliteInbox
from fo_assets.events.receiver import SECRET_HEADER, create_app
from fo_assets.sandbox.tls import TlsFiles
from fo_assets.settings import ReceiverSettings
from fo_assets_tests.support.events import (
    REAL_PO_CONFIRMED,
    SECRET,
    TEST_MESSAGE,
    VALIDATION_EVENT,
    event_grid,
    invoice_posted,
    po_confirmed,
    running,
)

LIMIT = 4096


@pytest.fixture
def inbox(tmp_path: Path) -> SqliteInbox:
    return SqliteInbox(tmp_path / "inbox.sqlite3")


@pytest.fixture
def client(inbox: SqliteInbox) -> Iterator[httpx.Client]:
    app = create_app(inbox, SECRET, ReceiverSettings(max_body_bytes=LIMIT))
    with running(app) as url, httpx.Client(base_url=url) as http:
        yield http


def post(client: httpx.Client, body: object, **kwargs) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/events", params={"code": SECRET}, content=content, **kwargs)


def test_secret_in_query_or_header_stores_the_event(client: httpx.Client, inbox: SqliteInbox) -> None:
    by_query = post(client, REAL_PO_CONFIRMED)
    assert by_query.status_code == 202, by_query.text
    assert by_query.json() == {"received": 1, "new": 1, "ignored": 0}
    by_header = client.post("/events", content=json.dumps(po_confirmed()), headers={SECRET_HEADER: SECRET})
    assert by_header.status_code == 202, by_header.text
    assert inbox.count() == 2


@pytest.mark.parametrize(
    "params, headers",
    [
        ({}, {}),
        ({"code": SECRET + "x"}, {}),
        ({"code": SECRET[:-1]}, {}),
        ({}, {SECRET_HEADER: "wrong"}),
        ({"code": ""}, {}),
    ],
)
def test_missing_or_wrong_secret_is_401(client: httpx.Client, inbox: SqliteInbox, params: dict, headers: dict) -> None:
    response = client.post("/events", params=params, headers=headers, content=REAL_PO_CONFIRMED)
    assert response.status_code == 401
    assert SECRET not in response.text
    assert inbox.count() == 0


def test_oversized_body_is_413(client: httpx.Client, inbox: SqliteInbox) -> None:
    big = json.dumps([po_confirmed(f"PO-{n}") for n in range(40)])
    assert len(big) > LIMIT
    response = post(client, big)
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["error"]
    assert inbox.count() == 0


def test_oversized_chunked_body_without_length_is_413(client: httpx.Client, inbox: SqliteInbox) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 1024  # JSON whitespace: only the size can make this fail

    response = client.post("/events", params={"code": SECRET}, content=chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert inbox.count() == 0


def test_chunked_body_is_not_read_past_the_bound(inbox: SqliteInbox) -> None:
    """At the ASGI level, with an endless body: the app must stop pulling once past the limit."""
    app = create_app(inbox, SECRET, ReceiverSettings(max_body_bytes=LIMIT))
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        if pulled > 100:
            raise AssertionError("the app kept reading far past the bound")
        return {"type": "http.request", "body": b" " * 1000, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/events", "raw_path": b"/events", "root_path": "", "query_string": f"code={SECRET}".encode(),
        "headers": [(b"transfer-encoding", b"chunked")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    assert sent[0]["status"] == 413
    assert pulled == LIMIT // 1000 + 1


def test_a_body_trickled_slower_than_the_deadline_is_408_and_frees_the_connection(inbox: SqliteInbox) -> None:
    app = create_app(inbox, SECRET, ReceiverSettings(max_body_bytes=LIMIT, body_timeout_s=0.5))
    with running(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            body = json.dumps(po_confirmed()).encode()
            slow.sendall(f"POST /events?code={SECRET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
            started = time.monotonic()
            answer = slow.recv(4096).decode()
            waited = time.monotonic() - started
            assert answer.startswith("HTTP/1.1 408") and "body not received within 0.5 s" in answer
            assert 0.4 < waited < 5
        # The receiver still serves everyone else.
        assert httpx.post(f"{url}/events", params={"code": SECRET}, json=po_confirmed()).status_code == 202
    assert inbox.count() == 1


def test_small_chunked_body_is_accepted(client: httpx.Client, inbox: SqliteInbox) -> None:
    body = json.dumps(po_confirmed()).encode()
    response = client.post("/events", params={"code": SECRET}, content=iter([body[:10], body[10:]]))
    assert response.status_code == 202, response.text
    assert inbox.count() == 1


def test_malformed_json_is_400(client: httpx.Client, inbox: SqliteInbox) -> None:
    response = post(client, b'{"BusinessEventId": "PurchaseOrderConfirmedBusinessEvent", ')
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    assert inbox.count() == 0


def test_invalid_payload_is_422_naming_the_problem_and_stores_nothing(client: httpx.Client, inbox: SqliteInbox) -> None:
    broken = invoice_posted()
    del broken["VendorAccount"]
    response = post(client, [po_confirmed(), broken])
    assert response.status_code == 422
    error = response.json()["error"]
    assert "VendorAccount" in error and broken["EventId"].upper() in error
    assert inbox.count() == 0  # all or nothing: the sender retries the whole post


def test_batch_with_duplicates_stores_each_event_once(client: httpx.Client, inbox: SqliteInbox) -> None:
    first, second = po_confirmed("PO-1"), invoice_posted()
    response = post(client, [first, second, first])
    assert response.json() == {"received": 3, "new": 2, "ignored": 0}
    # F&O retries the same post: accepted again, nothing new.
    assert post(client, [first, second, first]).json() == {"received": 3, "new": 0, "ignored": 0}
    assert inbox.count() == 2


def test_event_grid_notification_with_data_as_string(client: httpx.Client, inbox: SqliteInbox) -> None:
    payload = po_confirmed("PO-EG")
    response = post(client, [event_grid(payload, data_as_string=True)], headers={"aeg-event-type": "Notification"})
    assert response.status_code == 202
    (stored,), _ = inbox.read_after(0, 10)
    assert stored.event.event_id == payload["EventId"]
    assert stored.event.payload["PurchaseOrderNumber"] == "PO-EG"


def test_event_grid_validation_handshake(client: httpx.Client, inbox: SqliteInbox) -> None:
    response = post(client, [VALIDATION_EVENT], headers={"aeg-event-type": "SubscriptionValidation"})
    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert inbox.count() == 0


def test_cloudevents_options_handshake(client: httpx.Client) -> None:
    headers = {"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"}
    response = client.options("/events", params={"code": SECRET}, headers=headers)
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert response.headers["WebHook-Allowed-Rate"] == "*"
    assert client.options("/events", headers=headers).status_code == 401


def test_test_message_is_acknowledged_and_ignored(client: httpx.Client, inbox: SqliteInbox) -> None:
    response = post(client, TEST_MESSAGE)
    assert response.status_code == 202
    assert response.json() == {"received": 0, "new": 0, "ignored": 1}
    assert inbox.count() == 0


def test_storage_failure_is_503_not_an_acknowledgement(client: httpx.Client, inbox: SqliteInbox) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{inbox.path}{suffix}").unlink(missing_ok=True)
    inbox.path.mkdir()  # the database file is now a folder: SQLite cannot open it
    response = post(client, REAL_PO_CONFIRMED)
    assert response.status_code == 503
    assert "retry" in response.json()["error"]
    assert client.get("/healthz").status_code == 503


def test_healthz_needs_no_secret(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_secret_never_reaches_the_access_log(
    client: httpx.Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn's own log set-up stops propagation; here the records must reach caplog on the root.
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "propagate", True)
    caplog.set_level(logging.INFO)
    post(client, REAL_PO_CONFIRMED)
    client.post("/events", params={"code": SECRET + "-wrong"}, content=b"{}")
    client.post("/events", params={"x": "1", "code": SECRET}, content=b"[")
    server_side = [r for r in caplog.records if r.name.startswith(("uvicorn", "fo_assets"))]
    lines = [record.getMessage() for record in server_side if record.name == "uvicorn.access"]
    assert len(lines) == 3, lines
    assert all("/events?" in line for line in lines)
    assert "code=***" in lines[0] and "x=***&code=***" in lines[2]
    assert not [r.getMessage() for r in server_side if SECRET in r.getMessage()]


def test_receiver_over_tls_verified_against_its_ca(inbox: SqliteInbox, tls_files: TlsFiles) -> None:
    app = create_app(inbox, SECRET)
    with running(app, certfile=tls_files.cert_path, keyfile=tls_files.key_path) as url:
        assert url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(tls_files.ca_path))
        with httpx.Client(base_url=url, verify=trusted) as https:
            response = https.post("/events", headers={SECRET_HEADER: SECRET}, content=REAL_PO_CONFIRMED)
        assert response.status_code == 202
        # A client that does not trust the test CA refuses the server: the certificate is really checked.
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=None)) as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                untrusting.get("/healthz")
    assert inbox.count() == 1
