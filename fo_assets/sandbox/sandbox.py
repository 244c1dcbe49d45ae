"""The Sandbox: a generated F&O tenant served over HTTPS with its own Entra-style authority."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

from .app import SandboxApp
from .auth import Authority
from .changes import Changes
from .config import SandboxConfig
from .events import Events
from .faults import Faults
from .httpserver import HttpsServer
from .latency import ServiceProtection
from .odata_service import ODataService
from .stats import Stats
from .tenant import Tenant
from .tls import ensure_tls


class Sandbox:
    """``with Sandbox(cfg) as sb:`` serves the tenant on ``sb.base_url`` until the block ends."""

    def __init__(self, cfg: SandboxConfig | None = None, admin_token: str | None = None) -> None:
        self.cfg = cfg or SandboxConfig()
        self.tls = ensure_tls(self.cfg.state_dir)
        self.tenant = Tenant(self.cfg)
        self.stats = Stats()
        self.changes = Changes(self.tenant)
        # Hex, not urlsafe: a token starting with '-' would read as an option after `--admin-token`.
        self.admin_token = admin_token or secrets.token_hex(24)
        self._sock = socket.create_server((self.cfg.host, self.cfg.port), reuse_port=False)
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"https://{self.cfg.host}:{self.port}"
        self.authority = Authority(self.cfg, self.base_url)
        self.faults = Faults(self.cfg.seed, self.authority.revoke_all)
        # The latency model and service protection limits (off unless cfg.latency is set).
        self.latency = ServiceProtection(self.cfg.latency)
        self.events = Events(self.cfg, self.tenant, self.changes)
        self.odata = ODataService(self.tenant, self.base_url, self.cfg.page_size)
        self.app = SandboxApp(
            self.authority,
            self.odata,
            self.faults,
            self.latency,
            self.stats,
            self.admin_token,
            {
                "faults": self._admin_faults,
                "latency": self.latency.apply,
                "changes": self.changes.apply,
                "post_invoice": lambda p: self.changes.post_invoice(p["company"], p["header_reference"]),
                "events": self.events.apply,
            },
        )
        self._server = HttpsServer(self.app.handle, self.tls.server_context(), self._sock)
        self._started = False

    @property
    def ca_path(self) -> Path:
        return self.tls.ca_path

    def _admin_faults(self, payload: dict[str, Any]) -> None:
        self.faults.apply(payload)

    def env(self) -> dict[str, str]:
        """The connector's configuration for this sandbox, exactly as for a real tenant."""
        return {
            "FO_BASE_URL": self.base_url,
            "FO_TENANT_ID": self.cfg.tenant_id,
            "FO_CLIENT_ID": self.cfg.client_id,
            "FO_CLIENT_SECRET": self.cfg.client_secret,
            "FO_AUTHORITY_HOST": self.base_url,
            "FO_CA_BUNDLE": str(self.ca_path),
            "FO_LEGAL_ENTITIES": ",".join(self.cfg.companies),
        }

    def start(self) -> Sandbox:
        if not self._started:
            self._server.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False
        self._sock.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
