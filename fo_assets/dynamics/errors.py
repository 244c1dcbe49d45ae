"""The errors of the F&O side: each names the entity, the company, the URL (never a secret) and the cause.

``FoError`` is the base the Dagster layer catches. The OData error envelope nests the useful cause
several levels deep (``error.innererror.internalexception...``); ``innermost_message`` digs it out.
"""

from __future__ import annotations

from typing import Any

import orjson


class FoError(RuntimeError):
    """Something went wrong talking to F&O; ``str()`` is a complete, secret-free explanation."""

    def __init__(
        self,
        message: str,
        *,
        entity_set: str | None = None,
        company: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ):
        self.entity_set = entity_set
        self.company = company
        self.url = url
        self.status = status
        self.reason = message
        super().__init__(_compose(message, entity_set, company, url, status))


class AuthError(FoError):
    """The token could not be obtained, or F&O refused it twice."""


class TransportError(FoError):
    """TLS, DNS, connection or timeout failures that outlived the retries."""


class HttpError(FoError):
    """F&O answered with an error status; ``reason`` carries the innermost OData message."""


class ThrottledError(HttpError):
    """Still throttled (429) when the deadline ran out."""


class PagingError(FoError):
    """A nextLink that must not be followed: another host, or a URL already followed (a loop)."""


class PageError(FoError):
    """A page that cannot be decoded: bad JSON, no ``value`` array, a row without its key."""


class SchemaError(FoError):
    """The tenant's metadata does not match the catalog (unknown entity set, missing or non-key field)."""


def _compose(message: str, entity_set: str | None, company: str | None, url: str | None, status: int | None) -> str:
    where = []
    if entity_set:
        where.append(f"entity {entity_set}")
    if company:
        where.append(f"company {company}")
    if status is not None:
        where.append(f"HTTP {status}")
    if url:
        where.append(f"URL {url}")
    return f"{message} ({', '.join(where)})" if where else message


def innermost_message(body: bytes | bytearray) -> str | None:
    """The deepest ``message`` of an OData error envelope, or None when the body is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    node: Any = data.get("error") if isinstance(data, dict) else None
    found = None
    # F&O nests the cause under innererror, then internalexception, each possibly carrying a message.
    while isinstance(node, dict):
        message = node.get("message")
        if isinstance(message, str) and message.strip():
            found = message.strip()
        node = node.get("innererror") or node.get("internalexception")
    return found
