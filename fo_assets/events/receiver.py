"""The Business Events receiver: an HTTPS endpoint F&O (or Event Grid) posts events to.

Every accepted event is in the durable inbox before we answer 2xx, so an acknowledged event is never
lost; anything we cannot store is answered 503 and F&O or Event Grid retries. The shared secret comes as
``?code=`` (F&O's HTTPS endpoint is only a URL) or the ``x-fo-events-key`` header. Because it may sit
in a query string, the access log is redacted: query values never reach a log line.

Served by uvicorn's h11 protocol (with TLS itself, or as plain HTTP behind a TLS-terminating proxy), with
every bound the network side needs (``ReceiverSettings``): header size (h11's incomplete-event limit),
time to send the request head, keep-alive idle time and body time, open connections, events per post,
events per second per client, failed secrets per client. A post is parsed in a process of its own (two
of them serve all posts), so neither the event loop nor its interpreter's lock waits for a large body:
``/healthz`` and other posts are never stuck behind one.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from fo_assets.events.inbox import STORAGE_ERRORS, Inbox
from fo_assets.events.parsers import EventParsers
from fo_assets.events.payload import EventFormatError, LoggableArgs, MalformedBodyError, TooManyEventsError
from fo_assets.settings import MIN_SECRET_LENGTH, ReceiverSettings

log = logging.getLogger(__name__)
# Event fields and client addresses come from the network: escaped and cut before they reach a log line.
log.addFilter(LoggableArgs())

SECRET_HEADER = "x-fo-events-key"
_QUERY_VALUE = re.compile(r"([?&][^=&\s\"]*=)[^&\s\"]*")
# h11 refuses a request head past this (a 400, the connection closed): room for any real one (F&O's and Event
# Grid's are under 2 KiB), and a memory bound per connection.
MAX_HEADER_BYTES = 16 * 1024
# Posts stored at once; more wait their turn (their bodies are bounded by the connection cap).
_STORE_SLOTS = 4
# Wrong secrets a client may send in a burst, then one a second: a guess costs a second, not 300 µs.
_AUTH_FAILURE_BURST, _AUTH_FAILURES_PER_S = 10, 1.0
# Statuses after which the connection is closed: the client may still be trickling a body we will not read.
_CLOSE_AFTER = {401, 408, 413, 429}
# Connection-level refusals are logged at most this often (with a count): a flood must not flood the log.
_LOG_EVERY_S = 1.0


class RedactQueryFilter(logging.Filter):
    """Blanks every query-string value in a record (uvicorn's access line carries the raw URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Blank the query-string values in the record's arguments; always lets it through."""
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY_VALUE.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


class _TooLarge(Exception):
    pass


class TokenBuckets:
    """A token bucket per client: ``capacity`` at once, refilled at ``per_second``.

    Bounded: past ``max_clients`` the client seen least recently is forgotten (it starts full again).
    """

    def __init__(self, capacity: float, per_second: float, max_clients: int = 10_000) -> None:
        self.capacity, self.per_second, self.max_clients = capacity, per_second, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def wait_s(self, client: str, cost: float = 1.0, *, take: bool = True) -> float:
        """0 if ``client`` has ``cost`` tokens (taken unless ``take`` is false), else the seconds until it will."""
        now = time.monotonic()
        tokens, at = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.per_second)
        wait = 0.0 if tokens >= cost else (cost - tokens) / self.per_second
        self._buckets[client] = (tokens - cost if take and wait == 0 else tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


class _EveryFewSeconds:
    """A warning logged at most once per ``_LOG_EVERY_S``, saying how many it stood for."""

    def __init__(self) -> None:
        self._last = -math.inf
        self._count = 0

    def warn(self, message: str, *args: object) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= _LOG_EVERY_S:
            log.warning(message + " (%d such in the last %g s)", *args, self._count, _LOG_EVERY_S)
            self._last, self._count = now, 0


def create_app(inbox: Inbox, secret: str, limits: ReceiverSettings | None = None) -> Starlette:
    """The receiver: ``/events`` for F&O's posts, ``/healthz`` for probes."""
    limits = limits or ReceiverSettings()
    shortest = MIN_SECRET_LENGTH["FO_EVENTS_SECRET"]
    if len(secret) < shortest:
        raise ValueError(f"the events receiver needs a shared secret (FO_EVENTS_SECRET) of at least {shortest} "
                         f"characters; refusing to run with {len(secret)}")
    expected = secret.encode()
    failures = TokenBuckets(_AUTH_FAILURE_BURST, _AUTH_FAILURES_PER_S)
    # A full post always fits in a full bucket; past that a client gets its rate, so a flood from one
    # client can never outrun the sensor (which reads more per tick than one client may send per tick).
    rates = TokenBuckets(max(limits.max_events_per_post, limits.events_per_second), limits.events_per_second)
    store_slots = asyncio.Semaphore(_STORE_SLOTS)
    parsers = EventParsers()
    refused_guesses, refused_floods = _EveryFewSeconds(), _EveryFewSeconds()

    def authorised(request: Request) -> bool:
        offered = request.query_params.get("code") or request.headers.get(SECRET_HEADER) or ""
        return hmac.compare_digest(offered.encode(), expected)

    async def events(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        wait = failures.wait_s(client, take=False)
        if wait:
            refused_guesses.warn("refused a post from %s: too many wrong events secrets", client)
            return _error(429, "too many wrong events secrets from this client; retry later", retry_after=wait)
        if not authorised(request):
            failures.wait_s(client)
            log.warning("refused %s %s from %s: missing or wrong events secret", request.method,
                        request.url.path, client)
            return _error(401, f"missing or wrong events secret (query ?code= or header {SECRET_HEADER})")
        if request.method == "OPTIONS":
            return _cloudevents_handshake(request)
        wait = rates.wait_s(client, take=False)
        if wait:
            refused_floods.warn("refused a post from %s: over %g events a second", client, limits.events_per_second)
            return _error(429, f"over {limits.events_per_second:g} events a second; retry later", retry_after=wait)
        try:
            body = await asyncio.wait_for(_read_bounded(request, limits.max_body_bytes), limits.body_timeout_s)
        except _TooLarge:
            return _error(413, f"body larger than {limits.max_body_bytes} bytes")
        except TimeoutError:
            log.warning("refused an events post from %s: its body took longer than %g s", client,
                        limits.body_timeout_s)
            return _error(408, f"body not received within {limits.body_timeout_s:g} s")
        return await _take(client, body)

    async def _take(client: str, body: bytes) -> Response:
        try:
            parsed = await parsers.parse(body, limits.max_events_per_post)
        except MalformedBodyError as exc:
            return _error(400, str(exc))
        except TooManyEventsError as exc:
            log.warning("refused an events post from %s: %s", client, str(exc))
            return _error(413, str(exc))
        except EventFormatError as exc:
            log.warning("refused an events post from %s: %s", client, str(exc))
            return _error(422, str(exc))
        except BrokenProcessPool:
            log.error("an event parser process died; answering 503 so the sender retries")
            return _error(503, "event parser unavailable, retry later")
        if parsed.validation_code is not None:
            log.info("answered the Event Grid subscription validation handshake")
            return JSONResponse({"validationResponse": parsed.validation_code})
        received = len(parsed.rows)
        wait = rates.wait_s(client, max(1, received))
        if wait:
            refused_floods.warn("refused a post of %d events from %s: over %g events a second", received, client,
                                limits.events_per_second)
            return _error(429, f"over {limits.events_per_second:g} events a second; retry later", retry_after=wait)
        try:
            async with store_slots:
                new = await run_in_threadpool(inbox.append_rows, parsed.rows)
        except STORAGE_ERRORS:
            log.exception("event inbox %s could not store a post; answering 503 so the sender retries",
                          inbox.location)
            return _error(503, "event inbox unavailable, retry later")
        more = f" and {received - 10} more" if received > 10 else ""
        log.info("stored %d new of %d events (%d test messages ignored): %s%s", new, received, parsed.ignored,
                 ", ".join(parsed.names[:10]), more)
        return JSONResponse({"received": received, "new": new, "ignored": parsed.ignored}, status_code=202)

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(inbox.ping)
        except STORAGE_ERRORS as exc:
            # The detail (a database host, a user name) goes to the log: this endpoint answers anyone.
            log.warning("health check: event inbox %s unavailable: %s", inbox.location, str(exc))
            return _error(503, "event inbox unavailable")
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            parsers.stop()

    app = Starlette(routes=[
        Route("/events", events, methods=["POST", "OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"]),
    ], lifespan=lifespan)
    # No redirect from /events/ to /events: Starlette builds it from the request's Host header and keeps the
    # query, so it would send the secret in ?code= to wherever Host names.
    app.router.redirect_slashes = False
    return app


def _error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Connection": "close"} if status in _CLOSE_AFTER else {}
    if retry_after is not None:
        headers["Retry-After"] = str(math.ceil(retry_after))
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _read_bounded(request: Request, limit: int) -> bytes:
    """The body, refusing as soon as it passes ``limit`` (a chunked body has no length to check first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _cloudevents_handshake(request: Request) -> Response:
    """CloudEvents webhook abuse protection: consent to deliveries from the requesting origin."""
    headers = {"Allow": "POST, OPTIONS"}
    origin = request.headers.get("webhook-request-origin")
    if origin:
        headers["WebHook-Allowed-Origin"] = origin
    if request.headers.get("webhook-request-rate"):
        headers["WebHook-Allowed-Rate"] = "*"
    return Response(status_code=200, headers=headers)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the two bounds uvicorn lacks: a deadline for the request head (uvicorn's
    keep-alive timeout only runs between requests, so a client that stalls inside its headers, or sends
    nothing at all, holds a socket forever) and a cap on open connections enforced when a connection is
    made (uvicorn's ``limit_concurrency`` answers 503 only once a whole request head arrived, which a
    stalled client never sends). Both close the socket at once and log it."""

    header_timeout_s: float = 10.0
    max_connections: int = 100
    _refused = _EveryFewSeconds()
    _timed_out = _EveryFewSeconds()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse a connection past the limit; otherwise start waiting for its request head."""
        if len(self.connections) >= self.max_connections:
            peer = transport.get_extra_info("peername")
            self._refused.warn("refused a connection from %s: %d connections open, the most allowed "
                               "(FO_EVENTS_MAX_CONNECTIONS)", peer[0] if peer else "?", len(self.connections))
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            transport.close()
            self.transport = transport
            return
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        """Pass the bytes on, and stop the header timeout once the request head is complete."""
        if self.conn.their_state is h11.IDLE:
            self._await_head()  # the start of a request (the first, or the next on a kept-alive connection)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel the connection's timers."""
        self._head_arrived()
        if self in self.connections:
            super().connection_lost(exc)

    def _await_head(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _head_arrived(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self._timed_out.warn("closed a connection from %s: no complete request head within %g s "
                             "(FO_EVENTS_HEADER_TIMEOUT)", self.client[0] if self.client else "?",
                             self.header_timeout_s)
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        self.transport.close()


def _log_config() -> dict[str, Any]:
    """uvicorn's own logging plus our receiver's INFO lines on the same stream."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["fo_assets"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def build_server(
    app: Starlette,
    host: str,
    port: int,
    *,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    configure_logging: bool = True,
    limits: ReceiverSettings | None = None,
) -> uvicorn.Server:
    """A uvicorn server for ``app``; ``configure_logging=False`` leaves the process's logging alone."""
    limits = limits or ReceiverSettings()
    if (certfile is None) != (keyfile is None):
        raise ValueError("TLS needs both a certificate file and a key file (or neither, behind a proxy)")
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQueryFilter) for f in access.filters):
        # On the logger, not a handler: every handler (and caplog) sees only the redacted record.
        access.addFilter(RedactQueryFilter())
    protocol = type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "header_timeout_s": limits.header_timeout_s, "max_connections": limits.max_connections})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        log_config=_log_config() if configure_logging else None,
        server_header=False,
        # h11, not httptools (uvicorn's pick when installed): httptools has no bound on header size.
        http=protocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]  # uvicorn takes any number here
        # uvicorn's own bound on requests in flight (503 and its warning "Exceeded concurrency limit.").
        limit_concurrency=limits.max_connections,
        # The client a rate limit counts is the proxy's X-Forwarded-For only when the proxy is trusted.
        proxy_headers=bool(limits.trusted_proxies),
        forwarded_allow_ips=list(limits.trusted_proxies) or None,
    )
    return uvicorn.Server(config)


def serve(
    inbox: Inbox,
    secret: str,
    host: str,
    port: int,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    limits: ReceiverSettings | None = None,
) -> None:
    """Run the receiver until interrupted (the ``fo-assets events serve`` command)."""
    app = create_app(inbox, secret, limits)
    build_server(app, host, port, certfile=certfile, keyfile=keyfile, limits=limits).run()
