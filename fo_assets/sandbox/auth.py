"""An Entra ID authority for one tenant and one app: discovery document, client-credentials tokens."""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qsl

import orjson

from .config import SandboxConfig
from .errors import entra_error


class Authority:
    def __init__(self, cfg: SandboxConfig, base_url: str) -> None:
        self.cfg, self.base_url = cfg, base_url
        self.scope = f"{base_url}/.default"
        self._tokens: dict[str, float] = {}  # opaque token -> expiry (epoch seconds)
        self._lock = threading.Lock()
        self.issued = 0

    def openid_configuration(self, tenant: str) -> tuple[int, bytes]:
        if tenant != self.cfg.tenant_id:
            status, body = entra_error(90002, tenant=tenant)
            return status, body
        root = f"{self.base_url}/{tenant}"
        return 200, orjson.dumps(
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{root}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "ver"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    def token(self, tenant: str, form_body: bytes, basic_client: tuple[str, str] | None) -> tuple[int, bytes]:
        form = dict(parse_qsl(form_body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, secret = basic_client or (form.get("client_id", ""), form.get("client_secret", ""))
        if tenant != self.cfg.tenant_id:
            return entra_error(90002, tenant=tenant)
        if form.get("grant_type") != "client_credentials":
            return entra_error(70003, grant=form.get("grant_type", ""))
        if client_id != self.cfg.client_id:
            return entra_error(700016, client=client_id, tenant=tenant)
        if not secrets.compare_digest(secret, self.cfg.client_secret):
            return entra_error(7000215, client=client_id)
        if form.get("scope", "").split() != [self.scope]:
            return entra_error(500011, scope=form.get("scope", ""), tenant=tenant)
        token = secrets.token_urlsafe(48)
        lifetime = self.cfg.token_lifetime_s
        with self._lock:
            self._tokens[token] = time.time() + lifetime
            self.issued += 1
        return 200, orjson.dumps(
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
        )

    def check(self, authorization: str | None) -> str | None:
        """None when the bearer token is valid, else the reason (for the 401 body)."""
        if not authorization or not authorization.startswith("Bearer "):
            return "No bearer token was presented."
        with self._lock:
            expiry = self._tokens.get(authorization[7:].strip())
        if expiry is None:
            return "The token is not valid for this environment (unknown or revoked)."
        if expiry <= time.time():
            return "The token has expired."
        return None

    def revoke_all(self) -> int:
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count
