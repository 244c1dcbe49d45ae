"""A tiny F&O over real HTTPS whose data pages each test scripts: what the sandbox will not do on purpose.

It speaks just enough of the protocol for the real msal and the real connector: the Entra discovery
document and token endpoint, ``$metadata`` and ``/Metadata/PublicEntities`` for one entity set
``Things`` (key ``Id``), and ``/data/Things`` answered from ``pages``: the test maps the request's query
string (or ``*``) to a status and body (and sets ``count`` for ``/data/Things/$count``), so it can send foreign or looping nextLinks, drifted fields,
broken JSON or a Retry-After date.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import unquote

from fo_assets.catalog import EntitySpec
from fo_assets.sandbox.tls import ensure_tls

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"
SECRET = "tiny-secret-value-never-logged"
TOKEN = "tiny-access-token-never-logged"
THINGS = EntitySpec(entity_set="Things", keys=("Id",), company_field=None, group="test", description="test")
EDMX = b"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>
<Schema Namespace="Microsoft.Dynamics.DataEntities" xmlns="http://docs.oasis-open.org/odata/ns/edm">
<EntityType Name="Thing"><Key><PropertyRef Name="Id" /></Key>
<Property Name="Id" Type="Edm.String" Nullable="false" />
<Property Name="Amount" Type="Edm.Decimal" Precision="32" Scale="6" />
<Property Name="Day" Type="Edm.DateTimeOffset" /></EntityType>
<EntityContainer Name="Resources"><EntitySet Name="Things" EntityType="Microsoft.Dynamics.DataEntities.Thing" />
</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"""
PUBLIC = {"Name": "Thing", "EntitySetName": "Things", "Properties": [
    {"Name": "Id", "DataType": "String", "IsKey": True},
    {"Name": "Amount", "DataType": "Real", "IsKey": False},
    {"Name": "Day", "DataType": "Date", "IsKey": False},
]}
Page = tuple[int, bytes, dict[str, str]]


def page(rows: list[dict[str, Any]], next_link: str | None = None) -> bytes:
    body: dict[str, Any] = {"@odata.context": "x", "value": [{"@odata.etag": 'W/"1"', **r} for r in rows]}
    if next_link:
        body["@odata.nextLink"] = next_link
    return json.dumps(body).encode()


class TinyFo:
    def __init__(self) -> None:
        self.tls = ensure_tls(None)
        self.pages: dict[str, Page | Callable[[], Page]] = {}
        self.count = 0  # what /data/Things/$count answers (a read of several pages asks it)
        self.requests: list[str] = []
        handler = type("Handler", (_Handler,), {"fo": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert_path, self.tls.key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def env(self) -> dict[str, str]:
        return {"FO_BASE_URL": self.base_url, "FO_TENANT_ID": TENANT, "FO_CLIENT_ID": CLIENT,
                "FO_CLIENT_SECRET": SECRET, "FO_AUTHORITY_HOST": self.base_url, "FO_CA_BUNDLE": str(self.tls.ca_path),
                "FO_LEGAL_ENTITIES": "usmf"}

    def __enter__(self) -> TinyFo:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    fo: TinyFo

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # the token endpoint
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(200, json.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}).encode())

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        path = unquote(path)
        self.fo.requests.append(self.path)
        root = f"{self.fo.base_url}/{TENANT}"
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            document = {"token_endpoint": f"{root}/oauth2/v2.0/token", "issuer": f"{root}/v2.0",
                        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize"}
            return self._send(200, json.dumps(document).encode())
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, b'{"error":{"code":"","message":"no token"}}')
        if path == "/data/$metadata":
            return self._send(200, EDMX, "application/xml")
        if path == "/Metadata/PublicEntities('Thing')":
            return self._send(200, json.dumps(PUBLIC).encode())
        if path == "/data/Things/$count":
            return self._send(200, str(self.fo.count).encode(), "text/plain")
        scripted = self.fo.pages.get(query, self.fo.pages.get("*"))
        if path != "/data/Things" or scripted is None:
            return self._send(404, b'{"error":{"code":"","message":"Resource not found for the segment.",'
                                   b'"innererror":{"message":"No entity set named that","type":""}}}')
        status, body, headers = scripted() if callable(scripted) else scripted
        self._send(status, body, headers=headers)

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
