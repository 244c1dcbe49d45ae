"""OData query text for F&O: filters, literals, key chunks and URLs. Pure functions, no I/O.

F&O quirks this encodes (docs/fo-odata.md): without ``cross-company=true`` only the service user's
default company comes back, so it is always sent and the company is filtered explicitly; date-time
literals are unquoted; an X++ date compared with a date-time literal is converted in a way Microsoft does
not document, so date bounds sit at noon UTC, the time F&O stores dates at, where any time-zone shift
still lands on the same day; strings are single-quoted with ``'`` doubled; enum literals carry their
qualified type name; there is no ``in`` operator, so key lookups are ``or`` chains of ``and`` groups,
chunked so no request exceeds the URL length or the filter node count an OData server accepts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from fo_assets.dynamics.schema import FieldInfo

# Characters OData uses as syntax inside a query option; everything else is percent-encoded so a key
# holding '&', '#', '+' or '%' cannot end the option or change its meaning.
_SAFE = "'(),:*/"
MAX_FILTER_CHARS = 2_000
# ASP.NET OData refuses a $filter of more than MaxNodeCount nodes (100 by default): its validator counts
# four per comparison (operator, property, the range variable ``$it`` the property is read from, literal)
# and one per and/or/not (docs/fo-odata.md, "Filter size"). Kept under the limit by the conversion nodes
# the binder may add.
MAX_FILTER_NODES = 90
COMPARISON_NODES = 4


def encoded(text: str) -> str:
    """``text`` percent-encoded as a query option value."""
    return quote(text, safe=_SAFE)


def quote_string(value: str) -> str:
    """An OData string literal (single quotes doubled)."""
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
        return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return quote_string(text)


def eq(field: FieldInfo, value: object) -> str:
    """The OData clause ``field eq value``."""
    return f"{field.name} eq {literal(value, field)}"


def company_filter(field: str, company: str) -> str:
    """The OData clause selecting one company (lower case, as dataAreaId comes back)."""
    # F&O compares strings case-insensitively; companies are written lower case, as dataAreaId comes back.
    return f"{field} eq {quote_string(company.lower())}"


def day_bound(day: dt.date, field: FieldInfo) -> str:
    """The literal that starts ``day`` for a date field (noon, see above) or an instant (midnight UTC)."""
    return f"{day.isoformat()}T{'12' if field.kind == 'date' else '00'}:00:00Z"


def window_filter(field: FieldInfo, start: dt.date, end: dt.date) -> str:
    """Half-open days ``[start, end)``: consecutive windows never overlap or leave a gap."""
    if end <= start:
        raise ValueError(f"empty window for {field.name}: {start} to {end}")
    return f"{field.name} ge {day_bound(start, field)} and {field.name} lt {day_bound(end, field)}"


def not_in(field: FieldInfo, values: Sequence[str]) -> str:
    """``field`` is none of ``values`` (enum fields take only eq/ne, so a chain of ne)."""
    return " and ".join(f"{field.name} ne {literal(v, field)}" for v in values)


def any_of(*clauses: str | None) -> str | None:
    """The present clauses joined by ``or`` (None when there is none)."""
    present = [c for c in clauses if c]
    if len(present) < 2:
        return present[0] if present else None
    return " or ".join(f"({c})" for c in present)


def nodes(clause: str | None) -> int:
    """The filter nodes of a clause this module wrote without string literals (company, window, state
    filters): its comparisons and the and/or between them. Key groups are counted by ``key_chunks``."""
    if not clause:
        return 0
    words = clause.replace("(", " ").replace(")", " ").split()
    comparisons = sum(word in ("eq", "ne", "gt", "ge", "lt", "le") for word in words)
    return comparisons * COMPARISON_NODES + sum(word in ("and", "or", "not") for word in words)


def split_window(start: dt.date, end: dt.date, parts: int) -> list[tuple[dt.date, dt.date]]:
    """``[start, end)`` cut into at most ``parts`` consecutive whole-day windows of near-equal length."""
    days = (end - start).days
    parts = max(1, min(parts, days))
    bounds = [start + dt.timedelta(days=days * i // parts) for i in range(parts + 1)]
    return list(zip(bounds, bounds[1:]))


def and_all(*clauses: str | None) -> str | None:
    """The present clauses joined by ``and`` (None when there is none)."""
    present = [c for c in clauses if c]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return " and ".join(c if _is_atomic(c) else f"({c})" for c in present)


def _is_atomic(clause: str) -> bool:
    return " or " not in clause


def key_chunks(
    groups: Iterable[Sequence[tuple[FieldInfo, object]]],
    *,
    max_chars: int = MAX_FILTER_CHARS,
    max_nodes: int = MAX_FILTER_NODES,
) -> list[str]:
    """``(a eq 'x' and b eq 'y') or (...)`` chains, each within ``max_chars`` once URL-encoded and within
    ``max_nodes`` filter nodes (the caller passes what its other clauses leave of the node budget).

    Identical groups are sent once. A single group over the bounds still goes alone: it cannot be split.
    """
    # clause -> its nodes: each comparison, and the ands between them
    clauses = {
        "(" + " and ".join(eq(f, v) for f, v in group) + ")": len(group) * (COMPARISON_NODES + 1) - 1
        for group in map(tuple, groups)
    }
    chunks: list[str] = []
    current: list[str] = []
    size = count = 0
    for clause, weight in clauses.items():
        cost = len(encoded(clause))
        if current:
            cost, weight = cost + len(encoded(" or ")), weight + 1
        if current and (size + cost > max_chars or count + weight > max_nodes):
            chunks.append(" or ".join(current))
            current, size, count = [], 0, 0
            cost, weight = len(encoded(clause)), clauses[clause]
        current.append(clause)
        size += cost
        count += weight
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
    with_count: bool = False,
) -> str:
    """The URL of a query; with ``count`` the ``/$count`` of its rows (a bare number) instead; with
    ``with_count`` its first page also carries ``@odata.count``, counted by the same request."""
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
    if with_count:
        options.append(("$count", "true"))
    options.append(("cross-company", "true"))
    query = "&".join(f"{name}={encoded(value)}" for name, value in options)
    path = f"{odata_root}/{quote(entity_set, safe='')}" + ("/$count" if count else "")
    return f"{path}?{query}"
