"""OData query text for F&O: filters, literals, key chunks and URLs. Pure functions, no I/O.

F&O quirks this encodes (REFERENCE.md section 1): without ``cross-company=true`` only the service
user's default company comes back, so it is always sent and the company is filtered explicitly;
date-time literals are unquoted; strings are single-quoted with ``'`` doubled; enum literals carry their
qualified type name; there is no ``in`` operator, so key lookups are ``or`` chains of ``and`` groups,
chunked so no URL grows past what the front end accepts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Iterable, Sequence
from urllib.parse import quote

from fo_assets.dynamics.schema import FieldInfo

# Characters OData uses as syntax inside a query option; everything else is percent-encoded so a key
# holding '&', '#', '+' or '%' cannot end the option or change its meaning.
_SAFE = "'(),:*/"
MAX_FILTER_CHARS = 2_000


def encoded(text: str) -> str:
    """``text`` percent-encoded as a query option value."""
    return quote(text, safe=_SAFE)


def quote_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def literal(value: object, field: FieldInfo) -> str:
    """The OData literal of ``value`` for ``field``; ValueError names the field when it does not fit."""
    text = str(value)
    try:
        return _literal(text, field)
    except (ValueError, InvalidOperation):
        raise ValueError(f"{text!r} is not a valid {field.kind} value for field {field.name}") from None


def _literal(text: str, field: FieldInfo) -> str:
    kind = field.kind
    if kind == "enum":
        return f"{field.edm_type}{quote_string(text)}"
    if kind in ("int32", "int64"):
        return str(int(text.strip()))
    if kind in ("decimal", "double"):
        number = Decimal(text.strip())
        if not number.is_finite():
            raise ValueError(text)
        return format(number, "f")
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(text)
        return lowered
    if kind == "guid":
        return str(uuid.UUID(text.strip()))
    if kind == "date":
        # F&O sends and stores X++ dates as noon UTC on the day.
        return f"{dt.date.fromisoformat(text.strip()[:10]).isoformat()}T12:00:00Z"
    if kind == "instant":
        instant = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if instant.tzinfo is None:
            raise ValueError(text)
        return instant.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return quote_string(text)


def eq(field: FieldInfo, value: object) -> str:
    return f"{field.name} eq {literal(value, field)}"


def company_filter(field: str, company: str) -> str:
    # dataAreaId values come back lowercase; events may carry them in either case.
    return f"{field} eq {quote_string(company.lower())}"


def window_filter(field: str, start: dt.date, end: dt.date) -> str:
    """Half-open days ``[start, end)``: consecutive windows never overlap or leave a gap."""
    if end <= start:
        raise ValueError(f"empty window for {field}: {start} to {end}")
    return f"{field} ge {start.isoformat()}T00:00:00Z and {field} lt {end.isoformat()}T00:00:00Z"


def split_window(start: dt.date, end: dt.date, parts: int) -> list[tuple[dt.date, dt.date]]:
    """``[start, end)`` cut into at most ``parts`` consecutive whole-day windows of near-equal length."""
    days = (end - start).days
    parts = max(1, min(parts, days))
    bounds = [start + dt.timedelta(days=days * i // parts) for i in range(parts + 1)]
    return list(zip(bounds, bounds[1:]))


def and_all(*clauses: str | None) -> str | None:
    present = [c for c in clauses if c]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return " and ".join(c if _is_atomic(c) else f"({c})" for c in present)


def _is_atomic(clause: str) -> bool:
    return " or " not in clause


def key_chunks(
    groups: Iterable[Sequence[tuple[FieldInfo, object]]], max_chars: int = MAX_FILTER_CHARS
) -> list[str]:
    """``(a eq 'x' and b eq 'y') or (...)`` chains, each at most ``max_chars`` once URL-encoded.

    Identical groups are sent once. A single group longer than the bound still goes alone: it cannot
    be split, and F&O's own limit is well above our bound.
    """
    clauses = dict.fromkeys("(" + " and ".join(eq(f, v) for f, v in group) + ")" for group in groups)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for clause in clauses:
        cost = len(encoded(clause)) + (len(encoded(" or ")) if current else 0)
        if current and size + cost > max_chars:
            chunks.append(" or ".join(current))
            current, size = [], 0
            cost = len(encoded(clause))
        current.append(clause)
        size += cost
    if current:
        chunks.append(" or ".join(current))
    return chunks


def entity_url(
    odata_root: str,
    entity_set: str,
    *,
    filter: str | None = None,
    select: Sequence[str] | None = None,
    orderby: Sequence[str] | None = None,
    top: int | None = None,
    skip: int | None = None,
    count: bool = False,
) -> str:
    """The URL of a query; with ``count`` the ``/$count`` of its rows (a bare number) instead."""
    options: list[tuple[str, str]] = []
    if filter:
        options.append(("$filter", filter))
    if select:
        options.append(("$select", ",".join(select)))
    if orderby:
        options.append(("$orderby", ",".join(orderby)))
    if top is not None:
        options.append(("$top", str(top)))
    if skip:
        options.append(("$skip", str(skip)))
    options.append(("cross-company", "true"))
    query = "&".join(f"{name}={encoded(value)}" for name, value in options)
    path = f"{odata_root}/{quote(entity_set, safe='')}" + ("/$count" if count else "")
    return f"{path}?{query}"
