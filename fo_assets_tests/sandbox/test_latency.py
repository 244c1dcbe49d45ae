"""The latency model: F&O's server time per request, row and byte, and its service protection limits
(concurrent requests, requests and seconds of execution per sliding window) answered 429 + Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fo_assets.sandbox import Sandbox
from fo_assets.sandbox.config import LatencyModel

from .conftest import client_for, small_config, token_for

NO_COST = {"base_s": 0.0, "per_row_s": 0.0, "per_mb_s": 0.0}


def _timed(client: httpx.Client, path: str, **params: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, params=params)
    return response, time.monotonic() - started


@pytest.fixture
def slow() -> Iterator[tuple[Sandbox, httpx.Client]]:
    """A sandbox whose requests cost what the test sets through the admin endpoint."""
    with Sandbox(small_config()) as sb, client_for(sb, token_for(sb)) as client:
        yield sb, client


def _set(sb: Sandbox, client: httpx.Client, **settings: object) -> httpx.Response:
    return client.post("/_sandbox/latency", json=settings, headers={"X-Sandbox-Admin-Token": sb.admin_token})


def test_off_by_default(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    assert shared_sandbox.cfg.latency is None and shared_sandbox.latency.model is None
    assert shared_sandbox.latency.cost(rows=10_000, body_bytes=10_000_000) == 0


def test_server_time_follows_requests_rows_and_bytes(slow: tuple[Sandbox, httpx.Client]) -> None:
    sb, client = slow
    assert _set(sb, client, base_s=0.3, per_row_s=0.01, per_mb_s=0.0).status_code == 200
    lines = "/data/GeneralJournalAccountEntryBiEntities"
    page, page_time = _timed(client, lines, **{"$orderby": "SourceKey"})  # a page of 40 rows: 0.3 + 0.4 s
    assert len(page.json()["value"]) == 40 and 0.7 <= page_time < 2.5
    count, count_time = _timed(client, f"{lines}/$count")  # no rows: the base only
    assert count.status_code == 200 and 0.3 <= count_time < 1.7
    assert _set(sb, client, base_s=0.0, per_row_s=0.0, per_mb_s=4.0).status_code == 200
    wide, wide_time = _timed(client, "/data/VendorsV2", **{"cross-company": "true"})
    expected = len(wide.content) / 1e6 * 4.0  # about 0.5 s for a page of 290-field rows
    assert expected > 0.3 and expected <= wide_time < expected + 1.5


def test_stats_report_the_server_time_charged_and_the_requests_in_flight(slow: tuple[Sandbox, httpx.Client]) -> None:
    sb, client = slow
    assert _set(sb, client, base_s=0.4, per_row_s=0.0, per_mb_s=0.0).status_code == 200
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.get, "/data/GeneralJournalAccountEntryBiEntities/$count")
        time.sleep(0.2)
        during = sb.stats.snapshot()
        assert pending.result().status_code == 200
    after = sb.stats.snapshot()
    assert during["in_flight"] == 1 and after["in_flight"] == 0
    assert during["execution_s"] == 0 and after["execution_s"] == pytest.approx(0.4)


def test_requests_beyond_the_concurrency_limit_get_429(slow: tuple[Sandbox, httpx.Client]) -> None:
    sb, client = slow
    _set(sb, client, base_s=1.0, per_row_s=0.0, per_mb_s=0.0, max_concurrent=2)
    token = client.headers["Authorization"].split()[1]
    clients = [client_for(sb, token) for _ in range(5)]
    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda c: c.get("/data/MainAccounts", params={"$top": "1"}), clients))
    for c in clients:
        c.close()
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429, 429]
    refused = [r for r in responses if r.status_code == 429]
    assert {r.headers["Retry-After"] for r in refused} == {"1"}
    message = refused[0].json()["error"]["innererror"]["internalexception"]["message"]
    assert "throttled" in message and "2 concurrent requests" in message
    assert sb.stats.peak_in_flight == 2


def test_the_execution_time_budget_of_the_window(slow: tuple[Sandbox, httpx.Client]) -> None:
    """1,200 s of execution per 5 minutes on F&O; here 1 s per 4 s, requests of 0.6 s each."""
    sb, client = slow
    _set(sb, client, base_s=0.6, per_row_s=0.0, per_mb_s=0.0, execution_budget_s=1.0, window_s=4.0)
    first, second, third = (_timed(client, "/data/MainAccounts", **{"$top": "1"})[0] for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    retry_after = int(third.headers["Retry-After"])
    assert 1 <= retry_after <= 4
    assert "seconds of execution time" in third.text
    time.sleep(retry_after)
    assert client.get("/data/MainAccounts", params={"$top": "1"}).status_code == 200  # the first has left the window


def test_the_request_count_of_the_window(slow: tuple[Sandbox, httpx.Client]) -> None:
    sb, client = slow
    _set(sb, client, **NO_COST, max_requests=3, window_s=60.0)
    statuses = [client.get("/data/MainAccounts", params={"$top": "1"}) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert 55 <= int(statuses[-1].headers["Retry-After"]) <= 60


def test_set_and_cleared_through_the_admin_endpoint(slow: tuple[Sandbox, httpx.Client]) -> None:
    sb, client = slow
    answer = _set(sb, client, base_s=0.5)
    assert answer.status_code == 200 and answer.json()["result"]["base_s"] == 0.5
    assert answer.json()["result"]["max_concurrent"] == 52  # the documented defaults for the rest
    assert _timed(client, "/data/MainAccounts", **{"$top": "1"})[1] >= 0.5
    assert _set(sb, client, enabled=False).json()["result"] is None
    assert _timed(client, "/data/MainAccounts", **{"$top": "1"})[1] < 0.5
    bad = _set(sb, client, base_s=1, sideways=True)
    assert bad.status_code == 400 and "sideways" in bad.json()["error"]
    assert _set(sb, client, base_s=-1).status_code == 400


def test_from_the_config_and_many_requests_in_flight() -> None:
    model = LatencyModel(base_s=0.5, per_row_s=0.0, per_mb_s=0.0)
    with Sandbox(small_config(latency=model)) as sb:
        token = token_for(sb)
        clients = [client_for(sb, token) for _ in range(10)]
        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda c: c.get("/data/MainAccounts", params={"$top": "1"}).status_code, clients))
        elapsed = time.monotonic() - started
        for c in clients:
            c.close()
    assert statuses == [200] * 10
    assert sb.stats.peak_in_flight >= 5 and elapsed < 4.0  # side by side: one after the other takes 5 s
