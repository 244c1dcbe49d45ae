"""``$filter`` results equal an independent reference evaluation over the ground-truth rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fo_assets.sandbox import Sandbox
from fo_assets.sandbox.filters import count_nodes, parse_filter
from fo_assets.sandbox.query import matching_rows, parse_query
from fo_assets.sandbox.schema import FieldDef

from .conftest import NS, client_for, read_all, small_config, token_for, without_etag

Predicate = Callable[[dict[str, Any]], bool]
ENTITIES = (
    "VendInvoiceJourBiEntities",
    "GeneralJournalEntryBiEntities",
    "PurchaseOrderHeadersV2",
    "VendorsV2",
    "VendorInvoiceHeaders",
)
_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _instant(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def _leaf(field: FieldDef, op: str, literal: Any, date_offset: dt.timedelta) -> tuple[str, Predicate]:
    """A comparison as filter text and as a Python predicate with F&O semantics."""
    name, cmp = field.name, _PY_OPS[op]
    if field.enum:
        return f"{name} {op} {NS}.{field.enum}'{literal}'", lambda r: cmp(r[name], literal)
    if field.edm_type == "Edm.Boolean":
        return f"{name} {op} {str(literal).lower()}", lambda r: cmp(r[name], literal)
    if field.xpp == "Guid":
        return f"{name} {op} {literal}", lambda r: cmp(r[name].lower(), literal.lower())
    if field.xpp == "String":
        if literal is None:  # only eq/ne test for null; an ordering against null is never true
            expect = {"eq": lambda v: v is None, "ne": lambda v: v is not None}.get(op, lambda v: False)
            return f"{name} {op} null", lambda r: expect(r[name])
        text = "'" + literal.replace("'", "''") + "'"
        if literal.endswith("*") and op in ("eq", "ne"):  # F&O's wildcard: a prefix match
            prefix = literal[:-1].lower()
            return (
                f"{name} {op} {text}",
                lambda r: (r[name] is not None and r[name].lower().startswith(prefix)) == (op == "eq"),
            )
        if op == "ne":
            return f"{name} {op} {text}", lambda r: r[name] is None or r[name].lower() != literal.lower()
        return f"{name} {op} {text}", lambda r: r[name] is not None and cmp(r[name].lower(), literal.lower())
    if field.xpp == "Date":  # a date field: the literal becomes a date in the server's zone first
        day = (literal + date_offset).date()
        return f"{name} {op} {literal:%Y-%m-%dT%H:%M:%SZ}", lambda r: cmp(_instant(r[name]).date(), day)
    if field.xpp == "UtcDateTime":
        return f"{name} {op} {literal:%Y-%m-%dT%H:%M:%SZ}", lambda r: cmp(_instant(r[name]), literal)
    return f"{name} {op} {literal}", lambda r: cmp(Decimal(r[name]), Decimal(literal))


@st.composite
def comparisons(draw: st.DrawFn, sb: Sandbox, entity_set: str) -> tuple[str, Predicate]:
    rows = sb.tenant.rows(entity_set)
    field = draw(st.sampled_from([f for f in sb.tenant.fields(entity_set) if f.xpp != "Container"]))
    value = rows[draw(st.integers(0, len(rows) - 1))][field.name]
    ops = ("eq", "ne") if field.enum or field.edm_type == "Edm.Boolean" else ("eq", "ne", "gt", "ge", "lt", "le")
    op = draw(st.sampled_from(ops))
    if field.xpp == "String":
        literal = draw(st.sampled_from([value, None if op in ("eq", "ne") else value]))
        if literal:
            literal = draw(
                st.sampled_from([literal, literal.upper(), literal[: max(1, len(literal) // 2)] + "*", literal + "'x"])
            )
    elif field.xpp in ("Date", "UtcDateTime"):
        literal = _instant(value) + dt.timedelta(hours=draw(st.integers(-72, 72)))
    elif field.xpp == "Real":
        steps = [Decimal(0), Decimal("0.000001"), Decimal("-0.01"), Decimal(1)]
        literal = Decimal(value) + draw(st.sampled_from(steps))
    elif field.xpp in ("Int32", "Int64"):
        literal = value + draw(st.integers(-2, 2))
    else:
        literal = value
    return _leaf(field, op, literal, sb.cfg.date_filter_offset)


def filters(sb: Sandbox, entity_set: str) -> st.SearchStrategy[tuple[str, Predicate]]:
    def combine(children: st.SearchStrategy) -> st.SearchStrategy:
        def both(op: str) -> st.SearchStrategy:
            return st.tuples(children, children).map(
                lambda ab: (
                    f"({ab[0][0]}) {op} ({ab[1][0]})",
                    (lambda r: ab[0][1](r) and ab[1][1](r)) if op == "and" else (lambda r: ab[0][1](r) or ab[1][1](r)),
                )
            )

        return st.one_of(both("and"), both("or"), children.map(lambda a: (f"not ({a[0]})", lambda r: not a[1](r))))

    return st.recursive(comparisons(sb, entity_set), combine, max_leaves=5)


@st.composite
def entity_filters(draw: st.DrawFn, sb: Sandbox) -> tuple[str, str, Predicate]:
    entity_set = draw(st.sampled_from(ENTITIES))
    text, predicate = draw(filters(sb, entity_set))
    return entity_set, text, predicate


def _reference(sb: Sandbox, entity_set: str, predicate: Predicate) -> list[int]:
    return [i for i, row in enumerate(sb.tenant.rows(entity_set)) if predicate(row)]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_pure_evaluator_matches_reference(shared_sandbox: Sandbox, data: st.DataObject) -> None:
    entity_set, text, predicate = data.draw(entity_filters(shared_sandbox))
    table = shared_sandbox.tenant.table(entity_set)
    query = parse_query(table.schema, urlencode({"cross-company": "true", "$filter": text}))
    got = matching_rows(table, query, shared_sandbox.cfg).rows.tolist()
    assert got == _reference(shared_sandbox, entity_set, predicate), text


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_server_filters_match_reference_over_https(
    shared_sandbox: Sandbox, shared_client: httpx.Client, data: st.DataObject
) -> None:
    entity_set, text, predicate = data.draw(entity_filters(shared_sandbox))
    key = ",".join(f.name for f in shared_sandbox.tenant.fields(entity_set) if f.is_key)
    params = {"cross-company": "true", "$filter": text, "$orderby": key}
    rows, _ = read_all(shared_client, f"/data/{entity_set}", params)
    truth = shared_sandbox.tenant.rows(entity_set)
    assert without_etag(rows) == [truth[i] for i in _reference(shared_sandbox, entity_set, predicate)]


@pytest.mark.parametrize(
    ("entity_set", "text", "expected"),
    [
        (
            "VendorsV2",
            "VendorAccountNumber eq 'O''Brien Supplies'",
            lambda r: r["VendorAccountNumber"] == "O'Brien Supplies",
        ),
        ("VendorsV2", "VendorAccountNumber eq ' RFI-TEST-001'", lambda r: r["VendorAccountNumber"] == " RFI-TEST-001"),
        (
            "VendorsV2",
            "dataAreaId eq 'USMF' or dataAreaId eq 'gbsi' and OnHoldStatus eq "
            f"{NS}.CustVendorBlocked'No'",  # and binds tighter than or
            lambda r: r["dataAreaId"] == "usmf" or (r["dataAreaId"] == "gbsi" and r["OnHoldStatus"] == "No"),
        ),
        (
            "VendorsV2",
            "CreditLimit eq 1234567890123.456789",
            lambda r: r["CreditLimit"] == Decimal("1234567890123.456789"),
        ),
        ("VendorsV2", "not (TaxExemptNumber eq null)", lambda r: r["TaxExemptNumber"] is not None),
        (
            "GeneralJournalAccountEntryBiEntities",
            "GeneralJournalEntry eq 5637144580 or GeneralJournalEntry eq 5637144581",
            lambda r: r["GeneralJournalEntry"] in (5637144580, 5637144581),
        ),
        (
            "GeneralJournalAccountEntryBiEntities",
            "SourceKey gt 5637144660 and IsCredit eq Microsoft.Dynamics.DataEntities.NoYes'Yes'",
            lambda r: r["SourceKey"] > 5637144660 and r["IsCredit"] == "Yes",
        ),
        (
            "PurchaseOrderHeadersV2",
            f"PurchaseOrderStatus eq {NS}.PurchStatus'Received'",
            lambda r: r["PurchaseOrderStatus"] == "Received",
        ),
        (
            "VendInvoiceJourBiEntities",
            "SysModifiedDateTime gt 2026-06-14T06:30:00+02:00",
            lambda r: _instant(r["SysModifiedDateTime"]) > dt.datetime(2026, 6, 14, 4, 30),
        ),
        (
            "VendorInvoiceHeaders",
            "Recalculation eq false and BusinessDocumentSubmissionId_W eq 00000000-0000-0000-0000-000000000000",
            lambda r: True,
        ),
    ],
)
def test_documented_filter_forms(
    shared_sandbox: Sandbox, shared_client: httpx.Client, entity_set: str, text: str, expected: Predicate
) -> None:
    key = ",".join(f.name for f in shared_sandbox.tenant.fields(entity_set) if f.is_key)
    params = {"cross-company": "true", "$filter": text, "$orderby": key}
    rows, _ = read_all(shared_client, f"/data/{entity_set}", params)
    truth = [r for r in shared_sandbox.tenant.rows(entity_set) if expected(r)]
    assert truth, "the case must select something"
    assert without_etag(rows) == truth


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("usmf-v0000*", lambda v: v.lower().startswith("usmf-v0000")),  # a prefix, any case
        ("*supplies*", lambda v: "supplies" in v.lower()),  # anywhere
        ("O''Brien*", lambda v: v.startswith("O'Brien")),
        ("ACME*1", lambda v: v in ("ACME*1", "ACME-TOOLS-1")),  # a key holding a *: no way to match it alone
        ("*-V0000?", lambda v: False),  # only * is a wildcard: ? is itself
    ],
)
def test_a_star_inside_eq_is_a_wildcard(
    shared_sandbox: Sandbox, shared_client: httpx.Client, literal: str, expected: Predicate
) -> None:
    key = "dataAreaId,VendorAccountNumber"
    for op, want in (("eq", True), ("ne", False)):
        params = {"cross-company": "true", "$filter": f"VendorAccountNumber {op} '{literal}'", "$orderby": key}
        rows, _ = read_all(shared_client, "/data/VendorsV2", params)
        truth = [r for r in shared_sandbox.tenant.rows("VendorsV2") if expected(r["VendorAccountNumber"]) == want]
        assert [r["VendorAccountNumber"] for r in rows] == [r["VendorAccountNumber"] for r in truth]


def _key_chain(terms: int) -> str:
    return " or ".join(f"VendorAccountNumber eq 'USMF-V{i:05d}'" for i in range(1, terms + 1))


NODE_LIMIT = (
    "The node count limit of '100' has been exceeded. To increase the limit, set the 'MaxNodeCount' property "
    "on EnableQueryAttribute or ODataValidationSettings."
)


def test_a_filter_over_the_node_limit_is_refused_as_fo_refuses_it(shared_client: httpx.Client) -> None:
    """ASP.NET OData counts four nodes per comparison and one per and/or: 20 key terms are 99 nodes,
    21 are 104 (over MaxNodeCount, 100 by default)."""
    assert shared_client.get("/data/VendorsV2", params={"$filter": _key_chain(20)}).status_code == 200
    for text in (_key_chain(21), f"dataAreaId eq 'usmf' and ({_key_chain(20)})"):
        response = shared_client.get("/data/VendorsV2", params={"$filter": text})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["message"] == "An error has occurred."
        assert error["innererror"]["internalexception"]["message"] == NODE_LIMIT
        counted = shared_client.get("/data/VendorsV2/$count", params={"$filter": text})
        assert counted.status_code == 400  # the count is validated the same way
    # unknown properties are found before the nodes are counted, as in binding
    response = shared_client.get("/data/VendorsV2", params={"$filter": _key_chain(30) + " or Nope eq 1"})
    innermost = response.json()["error"]["innererror"]["internalexception"]["message"]
    assert "Could not find a property named 'Nope'" in innermost


@pytest.mark.parametrize(("limit", "terms", "status"), [(None, 400, 200), (10, 2, 200), (10, 3, 400)])
def test_the_node_limit_is_configurable(limit: int | None, terms: int, status: int) -> None:
    with Sandbox(small_config(max_filter_nodes=limit)) as sb, client_for(sb, token_for(sb)) as client:
        response = client.get("/data/VendorsV2", params={"$filter": _key_chain(terms)})
        assert response.status_code == status
        if status == 400:
            assert "node count limit of '10'" in response.text


def test_count_nodes_follows_the_validator() -> None:
    fields = {
        "A": FieldDef("A", "Edm.String", True, "String", True),
        "N": FieldDef("N", "Edm.Int64", False, "Int64", True),
    }
    assert count_nodes(parse_filter("A eq 'x'"), fields, "T") == 4
    assert count_nodes(parse_filter("A eq 'x' and not (N gt 3)"), fields, "T") == 4 + 1 + 1 + 4
    assert count_nodes(parse_filter(" or ".join(["A eq 'x'"] * 500)), fields, "T") == 5 * 500 - 1  # no recursion limit


HEADERS = "GeneralJournalEntryBiEntities"


def _days(client: httpx.Client, text: str, field: str = "AccountingDate") -> set[str]:
    rows, _ = read_all(client, f"/data/{HEADERS}", {"$filter": text, "$orderby": "SourceKey"})
    return {r[field][:10] for r in rows}


def test_date_fields_compare_by_date_in_the_servers_zone(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    """X++ Date fields against a date-time literal: the literal becomes a date in a zone that is not UTC
    (UTC-08:00 by default), so midnight-UTC bounds select the day before and noon-UTC bounds the right day."""
    at_midnight = "AccountingDate ge 2026-06-13T00:00:00Z and AccountingDate lt 2026-06-14T00:00:00Z"
    at_noon = "AccountingDate ge 2026-06-13T12:00:00Z and AccountingDate lt 2026-06-14T12:00:00Z"
    assert _days(shared_client, at_midnight) == {"2026-06-12"}
    assert _days(shared_client, at_noon) == {"2026-06-13"}
    assert _days(shared_client, "AccountingDate eq 2026-06-13T12:00:00Z") == {"2026-06-13"}
    assert _days(shared_client, "AccountingDate eq 2026-06-13T00:00:00Z") == {"2026-06-12"}
    truth = {r["AccountingDate"][:10] for r in shared_sandbox.tenant.rows(HEADERS)}
    assert {"2026-06-12", "2026-06-13"} <= truth


def test_instant_fields_compare_as_instants(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    text = "CreatedOn ge 2026-06-13T00:00:00Z and CreatedOn lt 2026-06-14T00:00:00Z"
    rows, _ = read_all(shared_client, f"/data/{HEADERS}", {"$filter": text, "$orderby": "SourceKey"})
    truth = [r for r in shared_sandbox.tenant.rows(HEADERS) if r["CreatedOn"].startswith("2026-06-13")]
    assert truth and without_etag(rows) == sorted(truth, key=lambda r: r["SourceKey"])


@pytest.mark.parametrize(("offset", "midnight_day"), [("+00:00", "2026-06-13"), ("+09:00", "2026-06-13")])
def test_the_date_zone_is_configurable(offset: str, midnight_day: str) -> None:
    config = small_config(date_filter_utc_offset=offset)
    with Sandbox(config) as sb, client_for(sb, token_for(sb)) as client:
        text = "AccountingDate ge 2026-06-13T00:00:00Z and AccountingDate lt 2026-06-14T00:00:00Z"
        assert _days(client, text) == {midnight_day}
        assert _days(client, "AccountingDate eq 2026-06-13T12:00:00Z") == {"2026-06-13"}


def _companies(client: httpx.Client, entity_set: str, field: str, params: dict[str, str]) -> set[str]:
    rows, _ = read_all(client, f"/data/{entity_set}", {"$select": field, **params})
    return {r[field] for r in rows}


def test_bi_entities_and_ledgers_answer_companies_upper_case(shared_client: httpx.Client) -> None:
    """Their company values come back upper case, while filters match them ignoring case (SQL collation)."""
    cross = {"cross-company": "true"}
    assert _companies(shared_client, "VendInvoiceJourBiEntities", "dataAreaId", cross) == {"USMF", "DEMF", "GBSI"}
    assert _companies(shared_client, "VendInvoiceTransBiEntities", "SysDataAreaId", cross) == {"USMF", "DEMF", "GBSI"}
    assert _companies(shared_client, "GeneralJournalEntryBiEntities", "SubledgerVoucherDataAreaId", {}) == {
        "USMF", "DEMF", "GBSI"
    }  # fmt: skip
    assert _companies(shared_client, "Ledgers", "LegalEntityId", {}) == {"USMF", "DEMF", "GBSI"}
    assert _companies(shared_client, "VendorsV2", "dataAreaId", cross) == {"usmf", "demf", "gbsi"}  # not BI
    # the default company without cross-company, and filters in either case
    assert _companies(shared_client, "VendInvoiceJourBiEntities", "dataAreaId", {}) == {"USMF"}
    for literal in ("demf", "DEMF", "Demf"):
        params = {**cross, "$filter": f"dataAreaId eq '{literal}'"}
        assert _companies(shared_client, "VendInvoiceJourBiEntities", "dataAreaId", params) == {"DEMF"}
        params = {"$filter": f"LegalEntityId eq '{literal}'"}
        assert _companies(shared_client, "Ledgers", "LegalEntityId", params) == {"DEMF"}


def test_the_company_case_is_configurable() -> None:
    with Sandbox(small_config(upper_case_bi_companies=False)) as sb, client_for(sb, token_for(sb)) as client:
        cross = {"cross-company": "true"}
        assert _companies(client, "VendInvoiceJourBiEntities", "dataAreaId", cross) == {"usmf", "demf", "gbsi"}
        assert _companies(client, "Ledgers", "LegalEntityId", {}) == {"usmf", "demf", "gbsi"}
