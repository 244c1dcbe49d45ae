"""Fixtures: small sandboxes over real HTTPS, msal tokens, TLS-verifying httpx clients, and the real
tenant's metadata file the sandbox is built from (read here independently of the sandbox's code)."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest
import requests

import fo_assets.sandbox
from fo_assets.sandbox import Sandbox, SandboxConfig

ANCHOR = dt.date(2026, 6, 15)
REAL_TENANT = Path(fo_assets.sandbox.__file__).parent / "real_tenant" / "entities.json"
NS = "Microsoft.Dynamics.DataEntities"


def real_tenant() -> dict[str, Any]:
    """The real tenant's entities and enums, as the file states them."""
    return json.loads(REAL_TENANT.read_text("utf-8"))


def keys_of(rows: list[dict], key: Sequence[str]) -> list[tuple]:
    return [tuple(r[k] for k in key) for r in rows]


def without_etag(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "@odata.etag"} for r in rows]


def small_config(**overrides: Any) -> SandboxConfig:
    """A tenant small enough for tests; page size small so every entity spans several pages."""
    base: dict[str, Any] = dict(seed=11, scale=0.1, days=5, anchor_date=ANCHOR, page_size=40)
    return SandboxConfig(**{**base, **overrides})


def msal_app(sb: Sandbox, **overrides: str) -> msal.ConfidentialClientApplication:
    """The connector's way to reach the authority: real msal, CA-verified session, no environment."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sb.ca_path)
    return msal.ConfidentialClientApplication(
        overrides.get("client_id", sb.cfg.client_id),
        client_credential=overrides.get("secret", sb.cfg.client_secret),
        authority=f"{sb.base_url}/{overrides.get('tenant', sb.cfg.tenant_id)}",
        instance_discovery=False,
        http_client=session,
    )


def token_from_exports(env: dict[str, str]) -> str:
    """A token for a sandbox known only by the variables ``serve`` exported (another process)."""
    session = requests.Session()
    session.trust_env, session.verify = False, env["FO_CA_BUNDLE"]
    app = msal.ConfidentialClientApplication(
        env["FO_CLIENT_ID"],
        client_credential=env["FO_CLIENT_SECRET"],
        authority=f"{env['FO_AUTHORITY_HOST']}/{env['FO_TENANT_ID']}",
        instance_discovery=False,
        http_client=session,
    )
    return app.acquire_token_for_client([f"{env['FO_BASE_URL']}/.default"])["access_token"]


def token_for(sb: Sandbox) -> str:
    result = msal_app(sb).acquire_token_for_client([f"{sb.base_url}/.default"])
    assert "access_token" in result, result
    return result["access_token"]


def client_for(sb: Sandbox, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=sb.base_url,
        headers=headers,
        trust_env=False,
        timeout=30,
        verify=ssl.create_default_context(cafile=str(sb.ca_path)),
    )


def read_all(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> tuple[list[dict], list[str]]:
    """Follow nextLinks to the end; the rows and the URLs of the pages after the first."""
    rows: list[dict] = []
    links: list[str] = []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json(parse_float=Decimal)
        rows += body["value"]
        link = body.get("@odata.nextLink")
        if not link:
            return rows, links
        links.append(link)
        response = client.get(link)


@pytest.fixture(scope="package")
def shared_sandbox() -> Iterator[Sandbox]:
    """One read-only sandbox for the tests that never change data or faults."""
    with Sandbox(small_config()) as sb:
        yield sb


@pytest.fixture(scope="package")
def shared_client(shared_sandbox: Sandbox) -> Iterator[httpx.Client]:
    with client_for(shared_sandbox, token_for(shared_sandbox)) as client:
        yield client


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox for tests that inject faults or change records."""
    with Sandbox(small_config()) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with client_for(sandbox, token_for(sandbox)) as c:
        yield c
