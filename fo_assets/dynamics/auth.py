"""Entra ID client-credentials tokens for F&O, through msal.

One msal ``ConfidentialClientApplication`` per (authority, client, secret) lives for the whole process:
msal caches the token and refreshes it before expiry (it treats under 5 minutes left as expired), so
every request asks msal and msal only goes to the network when it must.

msal builds each app by reading the authority's OpenID discovery document (``<authority>/v2.0/.well-known/
openid-configuration``), only to learn the token endpoint: one request per process, so per run. Entra's
v2 endpoints are fixed by the authority (``<authority>/oauth2/v2.0/token``, the URL an integration such as
dlt is configured with directly), so the session hands msal that document itself. Nothing is trusted that
was not configured: the endpoints are the configured authority's, reached over the same verified TLS. A
wrong tenant then surfaces at the token request (AADSTS90002) instead of at discovery.

msal uses ``requests``, whose ``trust_env`` lets the machine-wide ``REQUESTS_CA_BUNDLE`` override any
``verify`` we give it; the session handed to msal therefore has ``trust_env = False`` and ``verify``
set to ``FO_CA_BUNDLE`` (or certifi's bundle), so the authority is verified against what was configured.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from fo_assets.dynamics.errors import AuthError
from fo_assets.secrets import Secret
from fo_assets.settings import FoSettings

# Authority hosts msal knows (public and sovereign clouds): discovery and validation stay on for them.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
    }
)

_APPS: dict[tuple[str, str, str, str], msal.ConfidentialClientApplication] = {}
_APPS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Token:
    """An OAuth access token and when it expires."""
    value: str
    expires_at: float  # epoch seconds

    def expired(self, now: float | None = None) -> bool:
        """True once ``now`` (default: the current time) is at or past the expiry."""
        return (time.time() if now is None else now) >= self.expires_at


class TokenProvider:
    """Client-credentials tokens for one F&O environment (msal), renewed before they expire."""
    def __init__(self, fo: FoSettings, secret: Secret, timeout_s: float = 30.0):
        self._fo = fo
        self.authority = f"{fo.authority_host.rstrip('/')}/{fo.tenant_id}"
        self._scopes = [fo.scope]
        self._secret = secret
        self._timeout_s = timeout_s
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self._current: str | None = None

    def token(self) -> Token:
        """A token valid now (msal's cached one unless it expires within 5 minutes)."""
        with self._lock:
            try:
                # Building the app reads the authority's discovery document (answered by _EntraSession,
                # but a failure there must still be handled like one of the token request).
                if self._app is None:
                    self._app = _app_for(self.authority, self._fo, self._secret, self._timeout_s)
                result = self._app.acquire_token_for_client(scopes=self._scopes)
            except requests.exceptions.SSLError as error:
                raise self._error(f"TLS verification of the authority failed ({_short(error)}): "
                                  "if it uses a private CA, point FO_CA_BUNDLE at its PEM bundle") from None
            except requests.exceptions.RequestException as error:
                raise self._error(f"cannot reach the authority: {_short(error)}") from None
            except ValueError as error:  # msal's discovery and configuration errors
                raise self._error(f"msal refused the authority: {error}") from None
            if "access_token" not in result:
                code = result.get("error", "unknown_error")
                description = (result.get("error_description") or "").strip().splitlines()
                first = description[0] if description else "no description"
                raise self._error(f"token request failed: {code}: {first}")
            self._current = result["access_token"]
            return Token(self._current, time.time() + float(result.get("expires_in") or 0))

    def invalidate(self, stale: str) -> None:
        """Drop the cached token after F&O refused it, unless another thread already replaced it."""
        with self._lock:
            if self._current == stale and self._app is not None:
                self._app.remove_tokens_for_client()
                self._current = None

    def _error(self, message: str) -> AuthError:
        # Authorities echo request parameters in some errors: never let the secret through.
        message = message.replace(self._secret.reveal(), "********")
        return AuthError(
            f"{message} (authority {self.authority}, tenant {self._fo.tenant_id}, client {self._fo.client_id}, "
            f"scope {self._fo.scope})"
        )


def _app_for(authority: str, fo: FoSettings, secret: Secret, timeout_s: float) -> msal.ConfidentialClientApplication:
    # The secret's digest, not the secret, tells a rotated secret from the cached app's; the CA bundle
    # is part of the app's HTTP session.
    key = (authority, fo.client_id, hashlib.sha256(secret.reveal().encode()).hexdigest(), str(fo.ca_bundle))
    with _APPS_LOCK:
        app = _APPS.get(key)
        if app is None:
            session = _EntraSession(authority)
            session.trust_env = False
            session.verify = str(fo.ca_bundle) if fo.ca_bundle else requests.certs.where()
            microsoft = (urlsplit(authority).hostname or "").lower() in MICROSOFT_AUTHORITY_HOSTS
            app = msal.ConfidentialClientApplication(
                fo.client_id,
                client_credential=secret.reveal(),
                authority=authority,
                http_client=session,
                timeout=timeout_s,
                # msal would ask login.microsoftonline.com to vouch for any other host (a sovereign
                # cloud it does not list, a local authority): unreachable or wrong there.
                instance_discovery=microsoft,
                validate_authority=microsoft,
            )
            _APPS[key] = app
        return app


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) < 300 else text[:300] + "..."


class _EntraSession(requests.Session):
    """msal's HTTP session, which answers msal's discovery request for the authority with Entra's v2
    endpoints instead of going to the network; every other request goes out as usual."""

    def __init__(self, authority: str):
        super().__init__()
        self._discovery_url = f"{authority}/v2.0/.well-known/openid-configuration"
        self._document = json.dumps({
            "token_endpoint": f"{authority}/oauth2/v2.0/token",
            "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
            "issuer": f"{authority}/v2.0",
        })

    def get(self, url: str | bytes, **kwargs: Any) -> Any:  # type: ignore[override]
        if url == self._discovery_url:
            return _Answer(self._document)
        return super().get(url, **kwargs)


@dataclass(frozen=True)
class _Answer:
    """All msal reads of a discovery answer (``msal.authority.tenant_discovery``): status and text."""

    text: str
    status_code: int = 200
