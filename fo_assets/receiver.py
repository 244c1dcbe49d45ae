"""The Business Events receiver: an HTTPS endpoint F&O (or Event Grid) posts events to.

Every accepted event is in the durable inbox before we answer 2xx, so an acknowledged event is never
lost; anything we cannot store is answered 503 and F&O or Event Grid retries. The shared secret comes as
``?code=`` (F&O's HTTPS endpoint is only a URL) or the ``x-fo-events-key`` header. Because it may sit
in a query string, the access log is redacted: query values never reach a log line.

Served by uvicorn, with TLS itself (cert + key) or as plain HTTP behind a TLS-terminating proxy.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import logging
import re
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fo_assets.dynamics.events import EventFormatError, MalformedBodyError, intake
from fo_assets.inbox import STORAGE_ERRORS, Inbox

log = logging.getLogger(__name__)

SECRET_HEADER = "x-fo-events-key"
_QUERY_VALUE = re.compile(r"([?&][^=&\s\"]*=)[^&\s\"]*")


class RedactQueryFilter(logging.Filter):
    """Blanks every query-string value in a record (uvicorn's access line carries the raw URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY_VALUE.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


class _TooLarge(Exception):
    pass


def create_app(inbox: Inbox, secret: str, max_body_bytes: int = 1_048_576, body_timeout_s: float = 30.0) -> Starlette:
    """The receiver: ``/events`` for F&O's posts, ``/healthz`` for probes.

    A body must arrive within ``body_timeout_s`` (F&O sends a few KiB at once): a client trickling bytes
    would otherwise hold a connection and a worker for as long as it likes. uvicorn has no such limit.
    """
    if not secret:
        raise ValueError("the events receiver needs a shared secret (FO_EVENTS_SECRET); refusing to run open")
    expected = secret.encode()

    def authorised(request: Request) -> bool:
        offered = request.query_params.get("code") or request.headers.get(SECRET_HEADER) or ""
        return hmac.compare_digest(offered.encode(), expected)

    async def events(request: Request) -> Response:
        if not authorised(request):
            log.warning("refused %s %s from %s: missing or wrong events secret", request.method,
                        request.url.path, request.client.host if request.client else "?")
            return _error(401, f"missing or wrong events secret (query ?code= or header {SECRET_HEADER})")
        if request.method == "OPTIONS":
            return _cloudevents_handshake(request)
        try:
            body = await asyncio.wait_for(_read_bounded(request, max_body_bytes), body_timeout_s)
        except _TooLarge:
            return _error(413, f"body larger than {max_body_bytes} bytes")
        except TimeoutError:
            log.warning("refused an events post from %s: its body took longer than %g s",
                        request.client.host if request.client else "?", body_timeout_s)
            return _error(408, f"body not received within {body_timeout_s:g} s")
        try:
            delivery = intake(body)
        except MalformedBodyError as exc:
            return _error(400, str(exc))
        except EventFormatError as exc:
            log.warning("refused an events post: %s", exc)
            return _error(422, str(exc))
        if delivery.validation_code is not None:
            log.info("answered the Event Grid subscription validation handshake")
            return JSONResponse({"validationResponse": delivery.validation_code})
        try:
            new = await run_in_threadpool(inbox.append, delivery.events)
        except STORAGE_ERRORS:
            log.exception("event inbox %s could not store a post; answering 503 so the sender retries",
                          inbox.location)
            return _error(503, "event inbox unavailable, retry later")
        log.info("stored %d new of %d events (%d test messages ignored): %s", new, len(delivery.events),
                 delivery.ignored, ", ".join(f"{e.business_event_id}/{e.event_id}" for e in delivery.events))
        return JSONResponse({"received": len(delivery.events), "new": new, "ignored": delivery.ignored},
                            status_code=202)

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(inbox.count)
        except STORAGE_ERRORS as exc:
            # The detail (a database host, a user name) goes to the log: this endpoint answers anyone.
            log.warning("health check: event inbox %s unavailable: %s", inbox.location, exc)
            return _error(503, "event inbox unavailable")
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/events", events, methods=["POST", "OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
) -> uvicorn.Server:
    """A uvicorn server for ``app``; ``configure_logging=False`` leaves the process's logging alone."""
    if (certfile is None) != (keyfile is None):
        raise ValueError("TLS needs both a certificate file and a key file (or neither, behind a proxy)")
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQueryFilter) for f in access.filters):
        # On the logger, not a handler: every handler (and caplog) sees only the redacted record.
        access.addFilter(RedactQueryFilter())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        log_config=_log_config() if configure_logging else None,
        server_header=False,
    )
    return uvicorn.Server(config)


def serve(
    inbox: Inbox,
    secret: str,
    host: str,
    port: int,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
) -> None:
    """Run the receiver until interrupted (the ``fo-assets events serve`` command)."""
    app = create_app(inbox, secret)
    build_server(app, host, port, certfile=certfile, keyfile=keyfile).run()
