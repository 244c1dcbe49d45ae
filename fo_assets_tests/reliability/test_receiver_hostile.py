"""The Business Events receiver under hostile input, over real HTTP (uvicorn on 127.0.0.1).

Fuzzed bodies and secrets get a 4xx and store nothing, never a 5xx or a crash; clients that trickle
their request in byte by byte do not hold up anyone else; a burst of 10,000 events with duplicates,
posted concurrently as batches and single posts, stores every event exactly once. Oversized bodies
(declared and chunked) are covered by events/test_receiver.py; the network attacks of issue 19 (header
floods, stalled sockets, event floods, wrong-secret floods) by events/test_receiver_attacks.py.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fo_assets.events.inbox import Inbox, SqliteInbox
from fo_assets.events.receiver import SECRET_HEADER, create_app
from fo_assets.settings import ReceiverSettings
from fo_assets_tests.support.events import SECRET, invoice_posted, po_confirmed, running

ACCEPTED = 202
REFUSED = {400, 413, 422}


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Inbox]]:
    inbox = SqliteInbox(tmp_path_factory.mktemp("hostile") / "inbox.sqlite3")
    # The fuzzer posts as fast as it can from one address: no rate limit here (events/test_receiver_attacks.py
    # proves the limit).
    limits = ReceiverSettings(max_body_bytes=64 * 1024, events_per_second=1e6)
    with running(create_app(inbox, SECRET, limits)) as url:
        yield url, inbox


@pytest.fixture(scope="module")
def client(receiver: tuple[str, Inbox]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=receiver[0], timeout=10) as http:
        yield http


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    """A real event shape with fields dropped, retyped or added: the near misses a sender produces."""
    event_id = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    event = draw(st.sampled_from([po_confirmed, invoice_posted]))(event_id=event_id)
    for name in draw(st.lists(st.sampled_from(sorted(event)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del event[name]
        else:
            event[name] = draw(json_values)
    event.update(draw(st.dictionaries(st.text(max_size=12), json_values, max_size=2)))
    return draw(st.sampled_from([event, [event], {"data": event, "eventType": "x", "id": "1"}]))


bodies = st.one_of(
    st.binary(max_size=2_000),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_events().map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzzed_bodies_are_refused_or_stored_never_a_server_error(
    receiver: tuple[str, Inbox], client: httpx.Client, body: bytes
) -> None:
    inbox = receiver[1]
    before = inbox.count()

    response = client.post("/events", params={"code": SECRET}, content=body)

    assert response.status_code in REFUSED | {ACCEPTED}, response.text
    if response.status_code == ACCEPTED:
        assert inbox.count() == before + response.json()["new"]
    else:
        assert response.json()["error"] and inbox.count() == before


secrets = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60).filter(lambda s: s != SECRET)
# What an HTTP client can put in a header at all: printable ASCII, no surrounding blanks.
ascii_secrets = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip).filter(
    lambda s: s != SECRET)


near_misses = st.sampled_from([SECRET.upper(), SECRET[:-1], f"{SECRET} ", f" {SECRET}"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(by_query=st.one_of(st.none(), secrets, near_misses), by_header=st.one_of(st.none(), ascii_secrets),
       client_address=st.integers(2, 2**24 - 2))
def test_any_other_secret_is_401_and_stores_nothing(
    receiver: tuple[str, Inbox], by_query: str | None, by_header: str | None, client_address: int
) -> None:
    inbox = receiver[1]
    before = inbox.count()
    params = {} if by_query is None else {"code": by_query}
    headers = {} if by_header is None else {SECRET_HEADER: by_header}
    # Each guess from its own loopback address: repeated wrong secrets from one client are throttled (429),
    # which events/test_receiver_attacks.py proves.
    source = f"127.{client_address >> 16}.{(client_address >> 8) & 255}.{client_address & 255}"
    transport = httpx.HTTPTransport(local_address=source)

    with httpx.Client(base_url=receiver[0], transport=transport, timeout=10) as client:
        response = client.post("/events", params=params, headers=headers, content=json.dumps(po_confirmed()))

    assert response.status_code == 401
    assert SECRET not in response.text and inbox.count() == before


def _trickle(url: str, path: str, n: int) -> list[socket.socket]:
    """``n`` connections that each sent the start of a request and then go silent."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    slow = []
    for i in range(n):
        sock = socket.create_connection((host, port))
        head = f"POST {path}?code={SECRET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        if i % 2:  # half stop inside the headers, half declare a body and send one byte of it
            sock.sendall(head.encode()[: len(head) // 2])
        else:
            sock.sendall((head + "Content-Length: 5000\r\n\r\n{").encode())  # within the body limit
        slow.append(sock)
    return slow


def test_clients_sending_very_slowly_do_not_hold_up_others(receiver: tuple[str, Inbox], client: httpx.Client) -> None:
    url, inbox = receiver
    slow = _trickle(url, "/events", 60)
    try:
        timings = []
        for _ in range(20):
            for sock in slow[::2]:
                sock.sendall(b" ")  # still alive, still nowhere near done
            started = time.monotonic()
            response = client.post("/events", params={"code": SECRET}, content=json.dumps(po_confirmed()))
            timings.append(time.monotonic() - started)
            assert response.status_code == ACCEPTED
        assert max(timings) < 1.0, timings
        assert client.get("/healthz").status_code == 200
        for sock in slow:  # each slow client is still being waited for: held open, not answered
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in slow:
            sock.close()


def test_a_burst_of_10000_events_with_duplicates_stores_each_once(tmp_path: Path) -> None:
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3")
    unique = [po_confirmed(f"USMF-PO{n:07d}", event_id=str(uuid.uuid4()).upper()) for n in range(8_000)]
    rng = random.Random(8)
    events = unique + [dict(rng.choice(unique)) for _ in range(2_000)]  # F&O's retries and resends
    rng.shuffle(events)
    # Event Grid delivers arrays, F&O's HTTPS endpoint one event per post: both, interleaved.
    posts = [events[i:i + 100] for i in range(0, 9_800, 100)] + [event for event in events[9_800:]]
    rng.shuffle(posts)

    # One sender address at full speed: the per-client rate is lifted for this burst.
    with running(create_app(inbox, SECRET, ReceiverSettings(events_per_second=1e6))) as url:
        local, clients = threading.local(), []

        def post(body: list[dict] | dict) -> httpx.Response:
            if not hasattr(local, "http"):  # one keep-alive connection per sender thread
                local.http = httpx.Client(base_url=url, timeout=60)
                clients.append(local.http)
            return local.http.post("/events", params={"code": SECRET}, content=json.dumps(body))

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(post, posts))
        for http in clients:
            http.close()

    assert [r.status_code for r in responses] == [ACCEPTED] * len(responses)
    assert sum(r.json()["received"] for r in responses) == 10_000
    assert sum(r.json()["new"] for r in responses) == 8_000
    stored, _ = inbox.read_after(0, 20_000)
    assert sorted(s.event.event_id for s in stored) == sorted(e["EventId"] for e in unique)
    assert [s.seq for s in stored] == sorted(s.seq for s in stored)
