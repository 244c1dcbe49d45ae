"""Page decoding: exact decimals, dates, instants, sentinels, drift, malformed pages; fast path == reference."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fo_assets.catalog import EntitySpec
from fo_assets.dynamics.decode import PageDecoder, _reference_decode
from fo_assets.dynamics.errors import PageError
from fo_assets.dynamics.schema import EntitySchema, FieldInfo, plan_entity

UTC = dt.timezone.utc
FIELDS = (
    FieldInfo("dataAreaId", "Edm.String", "string"),
    FieldInfo("RecId", "Edm.Int64", "int64"),
    FieldInfo("Amount", "Edm.Decimal", "decimal", 32, 6),
    FieldInfo("Posted", "Edm.DateTimeOffset", "date"),
    FieldInfo("Changed", "Edm.DateTimeOffset", "instant"),
    FieldInfo("Status", "Microsoft.Dynamics.DataEntities.NoYes", "enum"),
    FieldInfo("Note", "Edm.String", "string"),
    FieldInfo("Lines", "Edm.Int32", "int32"),
    FieldInfo("Flag", "Edm.Boolean", "bool"),
    FieldInfo("Secret", "Edm.String", "string"),
)
SPEC = EntitySpec("Entries", keys=("RecId",), group="t", description="t", excluded_fields=("Secret",))
PLAN = plan_entity(SPEC, EntitySchema("Entries", "Entry", ("dataAreaId", "RecId"), FIELDS))


def body(rows: list[dict], next_link: str | None = None) -> bytes:
    # Written by hand like F&O: compact, etag first, numbers as their own text (no float in between).
    texts = []
    for row in rows:
        items = ['"@odata.etag":"W/\\"JzEsNTYzNzE0NDU3Nic=\\""']
        items += [f"{json.dumps(k)}:{v if isinstance(v, Decimal) else json.dumps(v)}" for k, v in row.items()]
        texts.append("{" + ",".join(items) + "}")
    link = f',"@odata.nextLink":{json.dumps(next_link)}' if next_link else ""
    head = '{"@odata.context":"https://fo/data/$metadata#Entries","value":['
    return (head + ",".join(texts) + "]" + link + "}").encode()


def decode(page: bytes):
    return PageDecoder(PLAN).decode(page, url="https://fo/data/Entries", company="usmf")


def test_values_land_exactly_typed():
    amount = Decimal("98765432109876.123457")
    assert Decimal(float(amount)) != amount  # a float round trip would change this amount
    page = decode(body([
        {"dataAreaId": "usmf", "RecId": 5637144576, "Amount": amount, "Posted": "2026-06-01T12:00:00Z",
         "Changed": "2026-06-01T08:30:15Z", "Status": "Yes", "Note": "", "Lines": 3, "Flag": True, "Secret": "x"},
        {"dataAreaId": "usmf", "RecId": 2, "Amount": Decimal("-0.000001"), "Posted": "1900-01-01T12:00:00Z",
         "Changed": "1900-01-01T00:00:00Z", "Status": "No", "Note": None, "Lines": 0, "Flag": False, "Secret": "y"},
    ], next_link="https://fo/data/Entries?$skiptoken=2"))
    table = page.table
    assert table.column_names == [f.name for f in FIELDS if f.name != "Secret"]
    assert table.schema.field("Amount").type == pa.decimal128(32, 6)
    assert table.schema.field("Posted").type == pa.date32()
    assert table.schema.field("Changed").type == pa.timestamp("us", tz="UTC")
    assert table.to_pylist() == [
        {"dataAreaId": "usmf", "RecId": 5637144576, "Amount": amount, "Posted": dt.date(2026, 6, 1),
         "Changed": dt.datetime(2026, 6, 1, 8, 30, 15, tzinfo=UTC), "Status": "Yes", "Note": "", "Lines": 3,
         "Flag": True},
        {"dataAreaId": "usmf", "RecId": 2, "Amount": Decimal("-0.000001"), "Posted": None, "Changed": None,
         "Status": "No", "Note": None, "Lines": 0, "Flag": False},
    ]
    assert page.next_link == "https://fo/data/Entries?$skiptoken=2"
    assert page.unexpected == frozenset()  # the etag and the excluded field are not drift


def test_unknown_fields_are_reported_as_drift():
    page = decode(body([{"dataAreaId": "usmf", "RecId": 1, "NewField1": "x"}]))
    assert page.unexpected == frozenset({"NewField1"}) and "NewField1" not in page.table.column_names


def test_an_empty_page_is_an_empty_table():
    page = decode(body([]))
    assert page.table.num_rows == 0 and page.table.schema == PLAN.arrow_schema and page.next_link is None


def test_what_arrow_cannot_parse_goes_through_the_exact_reference_path():
    # Seven fractional digits (.NET) and an amount sent as a string.
    page = decode(body([{"dataAreaId": "usmf", "RecId": 1, "Changed": "2026-06-01T08:30:15.1234567Z",
                         "Amount": "12.5"}]))
    row = page.table.to_pylist()[0]
    assert row["Changed"] == dt.datetime(2026, 6, 1, 8, 30, 15, 123456, tzinfo=UTC) and row["Amount"] == Decimal("12.5")


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (b'{"value":[{"RecId":1}', "not valid JSON"),
        (b'{"odata.error":{}}', "no 'value' array"),
        (b"[]", "no 'value' array"),
        (body([{"dataAreaId": "usmf"}]), "row 0 of the page has no value for key field 'RecId'"),
        (body([{"dataAreaId": "usmf", "RecId": 1, "Lines": 1.5}]), "row 0, field Lines (int32)"),
        (body([{"dataAreaId": "usmf", "RecId": 1, "Amount": Decimal("1.0000001")}]),
         "more decimals than the metadata's scale 6"),
        (body([{"dataAreaId": "usmf", "RecId": 1, "Flag": "yes"}]), "row 0, field Flag (bool)"),
    ],
)
def test_malformed_pages_fail_with_entity_company_url_and_cause(page, message):
    with pytest.raises(PageError) as raised:
        decode(page)
    text = str(raised.value)
    assert message in text and "entity Entries" in text and "company usmf" in text and "https://fo/data/Entries" in text


instants = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
rows = st.fixed_dictionaries(
    {"dataAreaId": st.sampled_from(["usmf", "demf"]), "RecId": st.integers(1, 2**62)},
    optional={
        "Amount": st.decimals(-(10**20), 10**20, places=6, allow_nan=False),
        "Posted": st.one_of(st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)).map(lambda d: f"{d}T12:00:00Z"),
                            st.none()),
        "Changed": st.one_of(instants.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"), st.none()),
        "Status": st.sampled_from(["No", "Yes"]),
        "Note": st.one_of(st.text(max_size=20), st.none()),
        "Lines": st.integers(-(2**31), 2**31 - 1),
        "Flag": st.booleans(),
    },
)


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, max_size=25))
def test_the_fast_path_equals_the_reference_decoder(page_rows):
    page = body(page_rows)
    fast = PageDecoder(PLAN)._fast(page)  # directly: a fallback to the reference path would prove nothing
    reference = _reference_decode(page, PLAN, frozenset(f.name for f in FIELDS))
    assert fast.table.equals(reference.table)
    assert fast.table.to_pylist() == reference.table.to_pylist()
