"""Each fault behaves as specified, from the Python controls and from the admin endpoint."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fo_assets.sandbox import Sandbox

from .conftest import client_for


def _status(client: httpx.Client, path: str = "/data/MainAccounts") -> httpx.Response:
    return client.get(path, params={"$top": "5"})


@pytest.mark.parametrize("retry_after", [2, None])
def test_throttle_answers_429_for_the_next_n_requests(
    sandbox: Sandbox, client: httpx.Client, retry_after: int | None
) -> None:
    sandbox.faults.throttle(2, retry_after=retry_after)
    first, second, third = (_status(client) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers.get("Retry-After") == (None if retry_after is None else str(retry_after))
    assert "throttled" in first.json()["error"]["innererror"]["internalexception"]["message"]
    assert sandbox.stats.throttled == 2 == sandbox.stats.count("/data/MainAccounts", 429)


def test_concurrency_limit_refuses_requests_beyond_n_in_flight(sandbox: Sandbox, client: httpx.Client) -> None:
    token = client.headers["Authorization"].split()[1]
    sandbox.faults.concurrency_limit(2)
    sandbox.faults.latency(1.0)  # keeps the first requests in flight while the others arrive
    clients = [client_for(sandbox, token) for _ in range(5)]
    with ThreadPoolExecutor(5) as pool:
        statuses = sorted(pool.map(lambda c: _status(c).status_code, clients))
    for c in clients:
        c.close()
    assert statuses == [200, 200, 429, 429, 429]
    sandbox.faults.latency(0)
    assert _status(client).status_code == 200  # in flight again below the limit


def test_unavailable_answers_503(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.unavailable(1)
    assert _status(client).status_code == 503
    assert _status(client).status_code == 200


def test_dropped_connection_cuts_the_body(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.drop_connection(1)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/data/VendorsV2", params={"cross-company": "true"})
    assert client.get("/data/VendorsV2", params={"cross-company": "true"}).status_code == 200


def test_warmup_delays_only_the_next_request(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.warmup(1.0)
    started = time.monotonic()
    assert _status(client).status_code == 200
    slow = time.monotonic() - started
    started = time.monotonic()
    assert _status(client).status_code == 200
    assert slow >= 1.0 > time.monotonic() - started + 0.5


def test_admin_endpoint_controls_faults_and_requires_its_token(sandbox: Sandbox, client: httpx.Client) -> None:
    with client_for(sandbox) as admin:
        assert admin.post("/_sandbox/faults", json={"unavailable": 1}).status_code == 401
        ok = admin.post(
            "/_sandbox/faults",
            json={"unavailable": 1, "throttle": {"n": 1, "retry_after": 3}},
            headers={"X-Sandbox-Admin-Token": sandbox.admin_token},
        )
        assert ok.status_code == 200
        bad = admin.post(
            "/_sandbox/faults", json={"explode": 1}, headers={"X-Sandbox-Admin-Token": sandbox.admin_token}
        )
        assert bad.status_code == 400 and "unknown fault" in bad.json()["error"]
    # throttling is checked before availability, as the service protection layer sits in front
    assert [_status(client).status_code for _ in range(3)] == [429, 503, 200]
    with client_for(sandbox) as admin:
        assert (
            admin.post(
                "/_sandbox/faults", json={"revoke_tokens": True}, headers={"X-Sandbox-Admin-Token": sandbox.admin_token}
            ).status_code
            == 200
        )
    assert _status(client).status_code == 401
