"""The Databricks double: a local HTTPS workspace that the real databricks-sdk talks to.

OAuth M2M (discovery document and token endpoint), the Statement Execution API executed in DuckDB
(results inline or behind pre-signed links), the Files API over volumes on local disk, SQL warehouses'
metadata, and Jobs run-now/runs/get/jobs/get. Every ``/api/`` call needs a live token from the token
endpoint, so token refresh is exercised for real.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qs

import certifi

from fo_assets.sandbox.httpserver import HttpsServer, Request, Response
from fo_assets.sandbox.tls import ensure_tls

from .engine import Engine
from .faults import Faults
from .jobs import Jobs
from .statements import EXTERNAL_LINK_PATH, TERMINAL, Statements
from .volumes import DIRECTORIES, FILES, Volumes
from .web import ApiError, empty, json_response

_STATEMENT = re.compile(r"^/api/2\.0/sql/statements/([0-9a-f]+)(/cancel|/result/chunks/(\d+))?$")
_WAREHOUSE = re.compile(r"^/api/2\.0/sql/warehouses/([^/]+)$")
WAREHOUSE_KINDS = ("PRO", "SERVERLESS", "CLASSIC")


class DatabricksDouble:
    """``with DatabricksDouble(tmp_path) as dbx:`` serves a workspace on ``dbx.host`` until the block ends."""

    def __init__(
        self,
        root: Path,
        *,
        catalogs: Sequence[str] = ("main",),
        token_lifetime_s: int = 3600,
        result_chunk_rows: int = 5000,
        warehouse_id: str = "double-warehouse",
        warehouse_kind: str = "PRO",
        listing_page_size: int = 3,
    ):
        """``warehouse_kind``: PRO, SERVERLESS or CLASSIC (what ``/api/2.0/sql/warehouses`` reports)."""
        if warehouse_kind not in WAREHOUSE_KINDS:
            raise ValueError(f"warehouse_kind is one of {WAREHOUSE_KINDS}")
        self.root = Path(root)
        self.client_id = "fo-assets-double-sp"
        self.client_secret = secrets.token_urlsafe(24)
        self.warehouse_id = warehouse_id
        self.warehouse_kind = warehouse_kind
        self.token_lifetime_s = token_lifetime_s
        self.tokens_issued = 0
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._lock = threading.Lock()

        tls = ensure_tls(self.root / "tls")
        # The SDK has no CA option: it trusts REQUESTS_CA_BUNDLE, which must still trust public hosts.
        self.ca_bundle_path = self.root / "tls" / "bundle.pem"
        self.ca_bundle_path.write_bytes(tls.ca_path.read_bytes() + Path(certifi.where()).read_bytes())
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.host = f"https://127.0.0.1:{self._sock.getsockname()[1]}"

        self.engine = Engine(self.root / "warehouse")
        for catalog in catalogs:
            self.engine.create_catalog(catalog)
        self.faults = Faults(self._expire_tokens)
        self.statements = Statements(self.engine, self.faults, warehouse_id, result_chunk_rows, self.host)
        self.volumes = Volumes(self.engine, self.faults, listing_page_size)
        self.jobs = Jobs(self.host, lambda w: self.warehouse_kind if w == self.warehouse_id else None)
        self._server = HttpsServer(self._handle, tls.server_context(), self._sock)

    def __enter__(self) -> DatabricksDouble:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._sock.close()
        self.statements.shutdown()

    # -- for tests --------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run DuckDB SQL against the warehouse (name tables with ``table_ref``)."""
        with self.engine.lock:
            return self.engine.con.execute(sql, params or []).fetchall()

    def table_ref(self, catalog: str, schema: str, table: str) -> str:
        return self.engine.table_ref(catalog, schema, table)

    def statement_texts(self) -> list[str]:
        return [r.text for r in self.statements.records.values()]

    # -- HTTP ---------------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        try:
            response = await self._route(request)
        except ApiError as exc:
            response = exc.response()
        except Exception as exc:  # answer a bug in the double: a dropped connection makes the SDK retry for minutes
            response = ApiError(500, "INTERNAL_ERROR", f"double bug: {type(exc).__name__}: {exc}").response()
        self.requests.append((request.method, request.path, response.status))
        return response

    async def _route(self, request: Request) -> Response:
        method, path = request.method, request.path
        if method == "GET" and path == "/oidc/.well-known/oauth-authorization-server":
            return json_response(200, {
                "issuer": f"{self.host}/oidc",
                "authorization_endpoint": f"{self.host}/oidc/v1/authorize",
                "token_endpoint": f"{self.host}/oidc/v1/token",
            })
        if method == "GET" and path == "/.well-known/databricks-config":
            return json_response(200, {"workspace_id": "1234567890", "oidc_endpoint": f"{self.host}/oidc"})
        if method == "POST" and path == "/oidc/v1/token":
            return self._token(request)
        if method == "GET" and path.startswith(EXTERNAL_LINK_PATH):  # cloud storage, not the workspace API
            body = self.statements.download(path, parse_qs(request.query), request.headers)
            return Response(200, body, "application/vnd.apache.arrow.stream")
        if not path.startswith("/api/"):
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
        retry_after = self.faults.throttled(path)
        if retry_after is not None:
            raise ApiError(429, "REQUEST_LIMIT_EXCEEDED", "injected throttle", {"Retry-After": str(retry_after)})
        self._authorize(request)
        if path.startswith((FILES + "/", DIRECTORIES + "/")):
            return self.volumes.handle(request)
        if method == "POST" and path in ("/api/2.0/sql/statements", "/api/2.0/sql/statements/"):
            return await self._submit(request)
        match = _STATEMENT.match(path)
        if match:
            return self._statement(method, match)
        warehouse = _WAREHOUSE.match(path)
        if method == "GET" and warehouse:
            return json_response(200, self._warehouse(warehouse.group(1)))
        if method == "POST" and path == "/api/2.2/jobs/run-now":
            return json_response(200, self.jobs.run_now(_body(request)))
        if method == "GET" and path == "/api/2.2/jobs/runs/get":
            run_id = parse_qs(request.query).get("run_id", ["0"])[0]
            return json_response(200, self.jobs.get(int(run_id)))
        if method == "GET" and path == "/api/2.2/jobs/get":
            job_id = parse_qs(request.query).get("job_id", ["0"])[0]
            return json_response(200, self.jobs.settings(int(job_id)))
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    def _warehouse(self, warehouse_id: str) -> dict[str, Any]:
        if warehouse_id != self.warehouse_id:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"SQL warehouse {warehouse_id} does not exist.")
        return {"id": warehouse_id, "name": "double warehouse", "state": "RUNNING",
                "warehouse_type": "CLASSIC" if self.warehouse_kind == "CLASSIC" else "PRO",
                "enable_serverless_compute": self.warehouse_kind == "SERVERLESS"}

    def _token(self, request: Request) -> Response:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded or "").decode(errors="replace").partition(":")
        except ValueError:
            client_id = secret = ""
        form = parse_qs(request.body.decode())
        known = client_id == self.client_id and hmac.compare_digest(secret, self.client_secret)
        if scheme.lower() != "basic" or not known:
            return json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if form.get("grant_type") != ["client_credentials"] or form.get("scope") != ["all-apis"]:
            return json_response(400, {"error": "invalid_request", "error_description": "client_credentials, all-apis"})
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime_s
            self.tokens_issued += 1
        return json_response(200, {
            "access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime_s, "scope": "all-apis",
        })

    def _authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= time.monotonic():
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")

    def _expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: 0.0 for token in self._tokens}

    async def _submit(self, request: Request) -> Response:
        record, wait_s, cancel_on_timeout = self.statements.submit(_body(request))
        if wait_s:
            await asyncio.to_thread(record.done.wait, wait_s)
        if cancel_on_timeout and record.state not in TERMINAL:
            self.statements.cancel(record.id)
        return json_response(200, self.statements.to_json(record))

    def _statement(self, method: str, match: re.Match[str]) -> Response:
        record = self.statements.get(match.group(1))
        if method == "POST" and match.group(2) == "/cancel":
            self.statements.cancel(record.id)
            return empty(200)
        if method == "GET" and match.group(3) is not None:
            return json_response(200, self.statements.chunk(record, int(match.group(3))))
        if method == "GET" and match.group(2) is None:
            return json_response(200, self.statements.to_json(record))
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method}'")


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, "MALFORMED_REQUEST", "request body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "request body must be a JSON object")
    return body
