"""A small HTTP/1.1 server on asyncio streams (TLS, keep-alive) running in a background thread.

Hand-rolled rather than uvicorn so a response can be cut off mid-body on purpose (the dropped-connection
fault) and cached page bytes go straight to the socket.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: str  # raw query string
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; odata.metadata=minimal"
    headers: dict[str, str] = field(default_factory=dict)
    cut_at: float | None = None  # send only this fraction of the body, then drop the connection
    rows: int = 0  # data rows in the body, for the stats


Handler = Callable[[Request], Awaitable[Response]]
_MAX_LINE = 1 << 20


class HttpsServer:
    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None, sock: socket.socket) -> None:
        """``sock`` is bound already, so the caller knows its port (and base URL) before starting."""
        self._handler, self._ssl, self._sock = handler, ssl_context, sock
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fo-sandbox-https", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise RuntimeError(f"sandbox server failed to start on {self._sock.getsockname()}") from self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, sock=self._sock, ssl=self._ssl, limit=_MAX_LINE, backlog=256)
            )
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                response = await self._handler(request)
                keep_alive = request.headers.get("connection", "").lower() != "close"
                if not await _write_response(writer, response, keep_alive):
                    return
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:  # server shutdown: end quietly
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return Request(method.upper(), unquote(path), query, headers, body)


async def _write_response(writer: asyncio.StreamWriter, response: Response, keep_alive: bool) -> bool:
    """Write the response; False when the connection was dropped on purpose."""
    reason = HTTPStatus(response.status).phrase
    head = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Length: {len(response.body)}",
        f"Content-Type: {response.content_type}",
        "OData-Version: 4.0",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    head += [f"{k}: {v}" for k, v in response.headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    if response.cut_at is not None:
        writer.write(response.body[: int(len(response.body) * response.cut_at)])
        await writer.drain()
        writer.transport.abort()
        return False
    writer.write(response.body)
    await writer.drain()
    return True
