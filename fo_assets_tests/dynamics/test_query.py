"""Query text: literals, filters, key chunks and URLs, including adversarial keys."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fo_assets.dynamics import query
from fo_assets.dynamics.schema import FieldInfo

TEXT = FieldInfo("VendorAccountNumber", "Edm.String", "string")
LINE = FieldInfo("InvoiceLineNumber", "Edm.Decimal", "decimal", 32, 6)
STATUS = FieldInfo("PurchaseOrderStatus", "Microsoft.Dynamics.DataEntities.PurchStatus", "enum")
keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


def unquote_literal(literal: str) -> str:
    """Read an OData string literal back the way the server does."""
    assert literal.startswith("'") and literal.endswith("'")
    inner = literal[1:-1]
    assert re.fullmatch(r"(?:[^']|'')*", inner), "an undoubled quote would end the literal early"
    return inner.replace("''", "'")


@given(keys)
def test_string_literals_round_trip_whatever_the_key(value):
    assert unquote_literal(query.literal(value, TEXT)) == value


@given(keys)
def test_enum_literals_are_qualified_and_escaped(value):
    literal = query.literal(value, STATUS)
    assert literal.startswith("Microsoft.Dynamics.DataEntities.PurchStatus'")
    assert unquote_literal(literal[len(STATUS.edm_type):]) == value


def test_typed_literals():
    assert query.literal("1.50", LINE) == "1.50"
    assert query.literal("5637144576", FieldInfo("RecId", "Edm.Int64", "int64")) == "5637144576"
    assert query.literal("TRUE", FieldInfo("Flag", "Edm.Boolean", "bool")) == "true"
    assert query.literal("2026-06-01", FieldInfo("InvoiceDate", "Edm.DateTimeOffset", "date")) == "2026-06-01T12:00:00Z"
    instant = FieldInfo("At", "Edm.DateTimeOffset", "instant")
    assert query.literal("2026-06-01T10:00:00+02:00", instant) == "2026-06-01T08:00:00Z"
    with pytest.raises(ValueError, match="not a valid decimal value for field InvoiceLineNumber"):
        query.literal("1 or 1 eq 1", LINE)
    with pytest.raises(ValueError, match="int64"):
        query.literal("12; drop", FieldInfo("RecId", "Edm.Int64", "int64"))


def test_windows_are_half_open_days_with_unquoted_literals():
    # X++ dates are stored at noon UTC: bounds there select the same days whatever time zone F&O converts
    # the literal to. Instants are bounded at midnight UTC.
    day = FieldInfo("AccountingDate", "Edm.DateTimeOffset", "date")
    assert query.window_filter(day, dt.date(2026, 6, 1), dt.date(2026, 6, 2)) == (
        "AccountingDate ge 2026-06-01T12:00:00Z and AccountingDate lt 2026-06-02T12:00:00Z"
    )
    instant = FieldInfo("SysModifiedDateTime", "Edm.DateTimeOffset", "instant")
    assert query.window_filter(instant, dt.date(2026, 6, 1), dt.date(2026, 6, 2)) == (
        "SysModifiedDateTime ge 2026-06-01T00:00:00Z and SysModifiedDateTime lt 2026-06-02T00:00:00Z"
    )
    with pytest.raises(ValueError):
        query.window_filter(day, dt.date(2026, 6, 2), dt.date(2026, 6, 2))


def test_states_and_alternatives():
    assert query.not_in(STATUS, ["Invoiced", "Canceled"]) == (
        "PurchaseOrderStatus ne Microsoft.Dynamics.DataEntities.PurchStatus'Invoiced' and "
        "PurchaseOrderStatus ne Microsoft.Dynamics.DataEntities.PurchStatus'Canceled'"
    )
    assert query.any_of("a eq 1", None, "b eq 2 and c eq 3") == "(a eq 1) or (b eq 2 and c eq 3)"
    assert query.any_of(None, "a eq 1") == "a eq 1"
    assert query.nodes("dataAreaId eq 'usmf' and (a eq 1 or b eq 2)") == 3 * 4 + 2


@given(st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)), st.integers(1, 800), st.integers(1, 60))
def test_split_windows_tile_the_window(start, days, parts):
    end = start + dt.timedelta(days=days)
    pieces = query.split_window(start, end, parts)
    assert pieces[0][0] == start and pieces[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert all(s < e for s, e in pieces) and len(pieces) == min(parts, days)


@given(st.lists(st.tuples(keys, st.decimals(0, 10**6, places=2)), max_size=120), st.integers(200, 2_000),
       st.integers(7, 100))
def test_key_chunks_cover_every_key_once_within_the_bounds(pairs, bound, max_nodes):
    groups = [((TEXT, k), (LINE, n)) for k, n in pairs]
    chunks = query.key_chunks(groups, max_chars=bound, max_nodes=max_nodes)
    clauses = [c for chunk in chunks for c in _clauses(chunk)]
    expected = list(dict.fromkeys(
        f"(VendorAccountNumber eq {query.quote_string(k)} and InvoiceLineNumber eq {format(n, 'f')})" for k, n in pairs
    ))
    assert clauses == expected
    for chunk in chunks:
        encoded = len(query.encoded(chunk))
        assert encoded <= bound or len(_clauses(chunk)) == 1
        # Two comparisons and their "and" per group (7 nodes), one "or" between groups.
        assert len(_clauses(chunk)) * 8 - 1 <= max_nodes or len(_clauses(chunk)) == 1


def _clauses(chunk: str) -> list[str]:
    """Split an or-chain at top-level ' or ' (outside string literals and parentheses)."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(chunk):
        char = chunk[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and chunk.startswith(" or ", i):
            parts.append(chunk[start:i])
            start = i = i + 4
            continue
        i += 1
    parts.append(chunk[start:])
    return parts


@given(keys)
def test_urls_carry_the_filter_intact_and_always_cross_company(value):
    filter = query.and_all(query.company_filter("dataAreaId", "USMF"), query.eq(TEXT, value))
    url = query.entity_url("https://fo.example/data", "VendorsV2", filter=filter,
                           select=["dataAreaId", "VendorAccountNumber"])
    parts = urlsplit(url)
    assert parts.path == "/data/VendorsV2" and "#" not in url and " " not in url
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert options["$filter"] == f"dataAreaId eq 'usmf' and VendorAccountNumber eq {query.quote_string(value)}"
    assert options["cross-company"] == "true" and options["$select"] == "dataAreaId,VendorAccountNumber"


def test_client_paging_orders_by_the_full_key():
    url = query.entity_url("https://fo.example/data", "VendorsV2", orderby=["dataAreaId", "VendorAccountNumber"],
                           top=2000, skip=4000)
    assert "$orderby=dataAreaId,VendorAccountNumber&$top=2000&$skip=4000&cross-company=true" in url
