"""The Entra-style authority answers real msal, and OData refuses requests without a valid token."""

from __future__ import annotations

import time

import pytest

from fo_assets.sandbox import Sandbox

from .conftest import client_for, msal_app, small_config, token_for


def test_msal_gets_a_token_that_opens_odata(shared_sandbox: Sandbox) -> None:
    result = msal_app(shared_sandbox).acquire_token_for_client([f"{shared_sandbox.base_url}/.default"])
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3000
    with client_for(shared_sandbox, result["access_token"]) as client:
        assert client.get("/data/VendorsV2", params={"$top": "1"}).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "scope_suffix", "code", "error"),
    [
        ({"secret": "wrong"}, "/.default", "AADSTS7000215", "invalid_client"),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, "/.default", "AADSTS700016", "unauthorized_client"),
        ({}, "/", "AADSTS500011", "invalid_resource"),  # scope must be exactly <base_url>/.default
    ],
)
def test_token_errors_are_entra_shaped(
    shared_sandbox: Sandbox, overrides: dict, scope_suffix: str, code: str, error: str
) -> None:
    result = msal_app(shared_sandbox, **overrides).acquire_token_for_client([shared_sandbox.base_url + scope_suffix])
    assert "access_token" not in result
    assert result["error"] == error
    assert result["error_description"].startswith(code + ":")
    assert int(code[6:]) in result["error_codes"]


def test_unknown_tenant_gets_aadsts90002(shared_sandbox: Sandbox) -> None:
    unknown = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ValueError, match="tenant name or GUID") as raised:
        msal_app(shared_sandbox, tenant=unknown)
    # msal rewords the discovery failure; the authority's own answer is chained beneath it.
    assert "AADSTS90002" in str(raised.value.__context__)
    with client_for(shared_sandbox) as anonymous:
        response = anonymous.post(f"/{unknown}/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.json()["error_description"].startswith(f"AADSTS90002: Tenant '{unknown}' not found")


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_missing_or_unknown_token_gets_401(shared_sandbox: Sandbox, token: str | None) -> None:
    with client_for(shared_sandbox, token) as client:
        response = client.get("/data/VendorsV2")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.json()["error"]["innererror"]["internalexception"]["message"]


def test_short_lived_tokens_expire_with_fos_401() -> None:
    """Tokens of a few seconds work until they expire; then 401 with F&O's WWW-Authenticate, and msal (which
    treats a token with under 5 minutes left as expired) fetches a new one."""
    with Sandbox(small_config(token_lifetime_s=2)) as sb:
        app = msal_app(sb)
        scope = [f"{sb.base_url}/.default"]
        first = app.acquire_token_for_client(scope)
        assert first["expires_in"] == 2
        with client_for(sb, first["access_token"]) as client:
            assert client.get("/data/MainAccounts").status_code == 200
            time.sleep(2.1)
            response = client.get("/data/MainAccounts")
        assert response.status_code == 401
        assert "expired" in response.json()["error"]["innererror"]["internalexception"]["message"]
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith(f'Bearer authorization_uri="{sb.base_url}/{sb.cfg.tenant_id}/oauth2/authorize"')
        assert 'error="invalid_token"' in challenge
        second = app.acquire_token_for_client(scope)
        assert second["access_token"] != first["access_token"] and second["token_source"] == "identity_provider"
        with client_for(sb, second["access_token"]) as client:
            assert client.get("/data/MainAccounts").status_code == 200


def test_revocation_makes_msals_cached_token_fail(sandbox: Sandbox) -> None:
    app = msal_app(sandbox)
    scope = [f"{sandbox.base_url}/.default"]
    first = app.acquire_token_for_client(scope)["access_token"]
    assert sandbox.faults.revoke_tokens() >= 1
    cached = app.acquire_token_for_client(scope)
    # msal keeps serving its cached token (over 5 minutes left), so the next OData call is a 401.
    assert cached["access_token"] == first and cached["token_source"] == "cache"
    with client_for(sandbox, first) as client:
        assert client.get("/data/VendorsV2").status_code == 401
    with client_for(sandbox, token_for(sandbox)) as client:
        assert client.get("/data/VendorsV2").status_code == 200
