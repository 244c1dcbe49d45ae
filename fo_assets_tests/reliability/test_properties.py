"""Adversarial values through the query builder, the dimension parser, identifier quoting and decoding.

What dynamics/ and sinks/ already prove with hypothesis (literal escaping read back by a regex, key
chunk bounds, the vectorised dimension split on a small alphabet, fast == reference decoding) is not
repeated. Here the other side of each boundary is the judge: the sandbox's own ``$filter`` evaluator
(with F&O's case-insensitive collation and ``*`` wildcard), DuckDB and an independent Spark SQL parser
(sqlglot), and the sandbox's ground truth after a real HTTPS round trip and a Delta load.
"""

from __future__ import annotations

import re
import string
from contextlib import nullcontext
from decimal import Decimal
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fo_assets.catalog import STANDARD
from fo_assets.dynamics import query
from fo_assets.dynamics.dimensions import parse_display_value, split_column
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.dynamics.schema import FieldInfo
from fo_assets.io_manager import upsert_batch
from fo_assets.landing import Ledger
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.sandbox.changes import Changes
from fo_assets.sandbox.query import matching_rows, parse_query
from fo_assets.sandbox.tenant import Tenant
from fo_assets.settings import load_settings
from fo_assets.sinks import sql
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.support.tenant import ANCHOR
from fo_assets_tests.support.truth import entity_rows, truth
from fo_assets_tests.reliability.stack import base_env, local_rows

VENDORS = STANDARD.spec_for("VendorsV2")
ACCOUNT = FieldInfo("VendorAccountNumber", "Edm.String", "string")
CREDIT = FieldInfo("CreditLimit", "Edm.Decimal", "decimal", 32, 6)
# Any code point but surrogates (not representable in UTF-8), with the characters that matter to OData,
# URLs, JSON and SQL drawn often.
SYNTAX = "'\"\\&#+%?=/*()[]{}<>,;: -_.`$^|~\t\n\r\x00"
text = st.text(st.one_of(st.sampled_from(SYNTAX), st.characters(blacklist_categories=("Cs",))), min_size=1,
               max_size=40)
long_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=300, max_size=3000)
# 19 significant digits (beyond what a float keeps); the sandbox stores amounts as int64 micro-units.
amounts = st.decimals(min_value=Decimal("-9e12"), max_value=Decimal("9e12"), places=6, allow_nan=False)
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    """A tenant without a server: the evaluator is judged directly (vendors are added by the tests)."""
    return Tenant(SandboxConfig(scale=0.05, days=1, anchor_date=ANCHOR, companies=("usmf", "demf")))


def _selected(tenant: Tenant, filter: str) -> list[dict]:
    """Rows the sandbox answers for ``filter`` after a trip through a real URL (encoding included), held
    to its filter node limit."""
    url = query.entity_url("https://fo.example/data", VENDORS.entity_set, filter=filter)
    table = tenant.table(VENDORS.entity_set)
    parsed = parse_query(table.schema, urlsplit(url).query, tenant.cfg.max_filter_nodes)
    positions = matching_rows(table, parsed, tenant.cfg).rows
    rows = tenant.rows(VENDORS.entity_set)
    chosen = set(positions.tolist())
    return [row for i, row in enumerate(rows) if i in chosen]


def _add_vendor(tenant: Tenant, values: dict[str, object]) -> None:
    existing = {r["VendorAccountNumber"].lower() for r in tenant.rows(VENDORS.entity_set, "usmf")}
    assume(str(values["VendorAccountNumber"]).lower() not in existing)  # F&O's collation: unique ignoring case
    Changes(tenant).insert(VENDORS.entity_set, {"dataAreaId": "usmf", **values})


def _matches(pattern: str, value: str) -> bool:
    """F&O's eq on strings: case-insensitive, ``*`` matching any run of characters."""
    return re.fullmatch(".*".join(map(re.escape, pattern.lower().split("*"))), value.lower(), re.DOTALL) is not None


@QUICK
@given(account=st.one_of(text, long_text))
def test_a_key_literal_selects_exactly_its_row_in_the_sandbox(tenant: Tenant, account: str) -> None:
    _add_vendor(tenant, {"VendorAccountNumber": account})
    filter = query.and_all(query.company_filter("dataAreaId", "USMF"), query.eq(ACCOUNT, account))

    selected = [r["VendorAccountNumber"] for r in _selected(tenant, filter)]

    assert account in selected
    # Without a '*' exactly the one row; with one, F&O widens eq to a pattern (there is no escape for
    # it), so a keyed pull reads more real rows than named: the connector keeps only exact matches
    # (test_adversarial_records_land_exactly_through_a_keyed_pull).
    expected = [a for a in (r["VendorAccountNumber"] for r in tenant.rows(VENDORS.entity_set, "usmf"))
                if _matches(account, a)]
    assert sorted(selected) == sorted(expected)
    if "*" not in account:
        assert selected == [account]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(accounts=st.lists(text.filter(lambda a: "*" not in a), min_size=1, max_size=30,
                         unique_by=lambda a: a.lower()),
       bound=st.integers(60, 1_500))
def test_key_chunks_select_exactly_the_named_rows(tenant: Tenant, accounts: list[str], bound: int) -> None:
    for account in accounts:
        _add_vendor(tenant, {"VendorAccountNumber": account})
    company = query.company_filter("dataAreaId", "usmf")

    chunks = query.key_chunks([[(ACCOUNT, a)] for a in accounts], max_chars=bound)
    selected = [r["VendorAccountNumber"] for chunk in chunks for r in _selected(tenant, query.and_all(company, chunk))]

    assert sorted(selected) == sorted(accounts)


@QUICK
@given(amount=amounts)
def test_a_decimal_literal_selects_exactly_the_rows_with_that_amount(tenant: Tenant, amount: Decimal) -> None:
    _add_vendor(tenant, {"VendorAccountNumber": f"AMOUNT-{amount}", "CreditLimit": str(amount)})

    selected = _selected(tenant, query.eq(CREDIT, amount))

    assert selected and all(r["CreditLimit"] == amount for r in selected)
    assert len(selected) == sum(r["CreditLimit"] == amount for r in tenant.rows(VENDORS.entity_set))


delimiters = st.sampled_from(list("-|.*+?$^()[]{}/ :;,_~€") + ["\t"])


@QUICK
@given(segments=st.lists(st.one_of(text, st.just("")), min_size=1, max_size=6), delimiter=delimiters)
def test_escaped_display_values_round_trip_through_both_parsers(segments: list[str], delimiter: str) -> None:
    names = tuple(f"D{i}" for i in range(len(segments)))
    value = delimiter.join(s.replace("\\", "\\\\").replace(delimiter, "\\" + delimiter) for s in segments)
    expected = {name: segment or None for name, segment in zip(names, segments)}

    assert parse_display_value(value, names, delimiter) == expected
    split = split_column(pa.array([value, None, ""], pa.string()), "F", names, delimiter)
    assert {name: split.columns[f"F_{name}"][0].as_py() for name in names} == expected
    assert split.unparseable == 0


identifiers = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=sql.MAX_IDENTIFIER)


@QUICK
@given(name=identifiers)
def test_quoted_identifiers_name_exactly_the_column(name: str) -> None:
    # DuckDB (the local sink's engine) creates and reports the column under exactly this name.
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE t ({sql.DUCKDB.quote(name)} INTEGER)")
        assert [column[0] for column in con.execute("SELECT * FROM t").description] == [name]
    # Databricks SQL, read by an independent Spark SQL parser.
    statement = f"SELECT {sql.quote(name)} FROM {sql.TableRef('main', 'fo', 't').sql}"
    parsed = sqlglot.parse_one(statement, read="databricks")
    assert parsed.selects[0].name == name


@QUICK
@given(name=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
@example(name="batch-1\n")  # a regex "$" also matches before a final newline
def test_identifier_checks_refuse_what_cannot_be_quoted_or_staged(name: str) -> None:
    unquotable = not name or len(name) > sql.MAX_IDENTIFIER or any(ord(c) < 32 or ord(c) == 127 for c in name)
    with pytest.raises(ValueError) if unquotable else nullcontext():
        sql.quote(name)
    path_safe = 0 < len(name) <= 255 and set(name) <= set(string.ascii_letters + string.digits + "_-")
    with pytest.raises(ValueError) if not path_safe else nullcontext():
        assert sql.volume_path_part(name) == name


# -- a real round trip: sandbox JSON over HTTPS -> decode -> landing -> Delta -------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    config = SandboxConfig(scale=0.05, days=1, anchor_date=ANCHOR, companies=("usmf", "demf"))
    with Sandbox(config) as sandbox:
        yield sandbox, tmp_path_factory.mktemp("adversarial")


vendors = st.lists(
    st.fixed_dictionaries({
        "VendorAccountNumber": text,
        "VendorOrganizationName": st.one_of(text, long_text),
        "AddressCity": st.one_of(text, st.just("")),
        "CreditLimit": amounts.map(str),
    }),
    min_size=1, max_size=4, unique_by=lambda v: v["VendorAccountNumber"].lower(),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(new=vendors)
def test_adversarial_records_land_exactly_through_a_keyed_pull(served: tuple[Sandbox, Path], new: list[dict]) -> None:
    sandbox, home = served
    for values in new:
        _add_vendor(sandbox.tenant, values)
    lookups = tuple(("usmf", (("VendorAccountNumber", v["VendorAccountNumber"]),)) for v in new)
    settings_ = load_settings(base_env(sandbox, home))

    with Extractor(settings_, "run-adversarial") as extractor:
        (batch,) = extractor.extract([ExtractRequest(VENDORS, lookups=lookups)])
    upsert_batch(LocalDeltaSink(home / "delta"), Ledger(home), batch, VENDORS)

    left_out = VENDORS.excluded_fields + VENDORS.personal_fields
    source = {r["VendorAccountNumber"]: r for r in truth(sandbox, VENDORS.entity_set, "usmf", left_out)}
    # Exactly the named records: a '*' in a name matched other vendors on F&O, and none of them lands.
    assert sorted(r["VendorAccountNumber"] for r in entity_rows(batch)) == sorted(v["VendorAccountNumber"] for v in new)
    for landed in (entity_rows(batch), local_rows(home / "delta", VENDORS)):
        by_key = {r["VendorAccountNumber"]: r for r in landed if r["dataAreaId"] == "usmf"}
        assert {v["VendorAccountNumber"] for v in new} <= set(by_key)
        for account, row in by_key.items():
            assert {k: row.get(k) for k in source[account]} == source[account]
