"""Request routing: the Entra authority, OData behind auth and faults, and the admin endpoints."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import orjson

from .auth import Authority
from .errors import not_found, odata_error
from .faults import Faults
from .httpserver import Request, Response
from .latency import ServiceProtection
from .odata_service import ODataService
from .stats import Stats

ADMIN_HEADER = "x-sandbox-admin-token"
AdminAction = Callable[[dict[str, Any]], Any]


class SandboxApp:
    def __init__(
        self,
        authority: Authority,
        odata: ODataService,
        faults: Faults,
        protection: ServiceProtection,
        stats: Stats,
        admin_token: str,
        admin_actions: dict[str, AdminAction],
    ) -> None:
        self.authority, self.odata, self.faults, self.stats = authority, odata, faults, stats
        self.protection = protection
        self.admin_token, self.admin_actions = admin_token, admin_actions
        self.in_flight = 0

    async def handle(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/")
        if parts[0] in ("data", "Metadata"):
            response = await self._odata(req)
        elif parts[0] == "_sandbox":
            response = await self._admin(req, parts[1:])
        elif len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"] and req.method == "GET":
            response = Response(*self.authority.openid_configuration(parts[0]), content_type="application/json")
        elif len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"] and req.method == "POST":
            response = self._token(parts[0], req)
        else:
            response = Response(404, not_found(self.odata.base_url + req.path))
        self.stats.record(req.path, response.status, len(response.body), response.rows)
        return response

    def _token(self, tenant: str, req: Request) -> Response:
        basic = None
        auth = req.headers.get("authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            basic = (unquote(user), unquote(password))
        status, body = self.authority.token(tenant, req.body, basic)
        if status == 200:
            self.stats.tokens_issued += 1
        return Response(status, body, "application/json; charset=utf-8", {"Cache-Control": "no-store, no-cache"})

    async def _odata(self, req: Request) -> Response:
        # Counted from arrival, so requests beyond the limit are refused at once, like F&O's 52-limit.
        self.in_flight += 1
        try:
            limit = self.faults.concurrency
            if limit is not None and self.in_flight > limit:
                return _throttled(1, "too many concurrent requests")
            delay = self.faults.take_warmup() + self.faults.latency_s
            if delay:
                await asyncio.sleep(delay)
            problem = self.authority.check(req.headers.get("authorization"))
            if problem:
                return Response(
                    401,
                    odata_error(problem, "System.UnauthorizedAccessException", "Unauthorized"),
                    headers={
                        "WWW-Authenticate": f'Bearer authorization_uri="{self.odata.base_url}/'
                        f'{self.authority.cfg.tenant_id}/oauth2/authorize", error="invalid_token"'
                    },
                )
            throttled, retry_after = self.faults.take_throttle()
            if throttled:
                return _throttled(retry_after, "too many requests in the last 5 minutes")
            if self.faults.take_unavailable():
                return Response(503, odata_error("The service is temporarily unavailable.", "", "Service Unavailable"))
            if req.method != "GET":
                return Response(405, odata_error(f"{req.method} is not supported by the sandbox.", "", "Not allowed"))
            return await self._protected(req)
        finally:
            self.in_flight -= 1

    async def _protected(self, req: Request) -> Response:
        """Serve within the service protection limits, taking the server time the latency model says."""
        refusal = self.protection.admit()
        if refusal:
            return _throttled(refusal.retry_after, refusal.reason)
        self.stats.entered(self.protection.in_flight)
        cost = 0.0
        try:
            started = time.monotonic()
            response = await asyncio.get_running_loop().run_in_executor(None, self.odata.serve, req)
            cost = self.protection.cost(response.rows, len(response.body))
            remaining = cost - (time.monotonic() - started)
            if remaining > 0:
                await asyncio.sleep(remaining)
            if response.status == 200:
                response.cut_at = self.faults.take_drop()
            return response
        finally:
            self.stats.left(cost)
            self.protection.release(cost)

    async def _admin(self, req: Request, parts: list[str]) -> Response:
        token = req.headers.get(ADMIN_HEADER, "")
        if not secrets.compare_digest(token, self.admin_token):
            return Response(401, orjson.dumps({"error": f"missing or wrong {ADMIN_HEADER} header"}))
        if parts == ["stats"] and req.method == "GET":
            return Response(200, orjson.dumps(self.stats.snapshot()), "application/json")
        action = self.admin_actions.get(parts[0]) if len(parts) == 1 and req.method == "POST" else None
        if action is None:
            return Response(404, orjson.dumps({"error": f"no admin endpoint {req.method} {req.path}"}))
        try:
            payload = orjson.loads(req.body or b"{}")
            result = await asyncio.get_running_loop().run_in_executor(None, action, payload)
        except (KeyError, ValueError, TypeError) as exc:
            return Response(400, orjson.dumps({"error": str(exc)}), "application/json")
        return Response(200, orjson.dumps({"ok": True, "result": result}, default=str), "application/json")


def _throttled(retry_after: int | None, what: str) -> Response:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    message = f"The request was throttled: {what} for this user on this server."
    return Response(
        429,
        odata_error(message, "Microsoft.Dynamics.Ax.Services.ThrottlingException", "Too Many Requests"),
        headers=headers,
    )
