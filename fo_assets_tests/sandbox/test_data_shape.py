"""Rows look like F&O's: etag first, fixed field order, formats, awkward keys and values, consistent relations."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal

import httpx
import pytest

from fo_assets.catalog import CATALOG
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.sandbox.tenant import Tenant

from .conftest import ANCHOR

ETAG = re.compile(r'^W/"[A-Za-z0-9+/=]+"$')
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T12:00:00Z$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.mark.parametrize("entity_set", [s.entity_set for s in CATALOG])
def test_row_shape_matches_the_field_definitions(
    shared_sandbox: Sandbox, shared_client: httpx.Client, entity_set: str
) -> None:
    response = shared_client.get(f"/data/{entity_set}", params={"cross-company": "true", "$top": "40"})
    raw = response.text
    assert raw.startswith('{"@odata.context":') and ", " not in raw[:200]  # compact JSON
    rows = response.json(parse_float=Decimal)["value"]
    fields = shared_sandbox.tenant.fields(entity_set)
    for row in rows:
        assert list(row) == ["@odata.etag"] + [f.name for f in fields]
        assert ETAG.match(row["@odata.etag"])
        for f in fields:  # value types against $metadata: test_metadata; here the F&O date formats
            if f.xpp == "Date":
                assert DATE.match(row[f.name]), (f.name, row[f.name])
            elif f.xpp == "UtcDateTime":
                assert INSTANT.match(row[f.name]), (f.name, row[f.name])
        company = next((f.name for f in fields if f.name in ("dataAreaId", "DataArea")), None)
        if company:
            assert row[company] == row[company].lower()


def test_awkward_values_are_present(shared_sandbox: Sandbox) -> None:
    tenant = shared_sandbox.tenant
    vendors = {r["VendorAccountNumber"] for r in tenant.rows("VendorsV2", "usmf")}
    assert {" RFI-TEST-001", "O'Brien Supplies"} <= vendors
    assert "General Chart" in {r["ChartOfAccounts"] for r in tenant.rows("MainAccounts")}
    ledger = {r["LedgerAccount"] for r in tenant.rows("GeneralJournalAccountEntries")}
    assert "605140--022-" in ledger and "605140-DAT\\-0000000002--" in ledger
    defaults = [r["DefaultLedgerDimensionDisplayValue"] for r in tenant.rows("VendorsV2")]
    assert "" in defaults and any(d.endswith("-") for d in defaults)
    emails = [r["TaxExemptNumber"] for r in tenant.rows("VendorsV2")]
    assert None in emails and "" in emails  # unset strings: usually "", sometimes null
    amounts = [r["AccountingCurrencyAmount"] for r in tenant.rows("GeneralJournalAccountEntries")]
    amounts += [r["CreditLimit"] for r in tenant.rows("VendorsV2")]
    lossy = [a for a in amounts if Decimal(repr(float(a))) != a]
    assert lossy, "some amounts must not survive a float round trip"
    assert {r["DocumentDate"] for r in tenant.rows("GeneralJournalAccountEntries")} >= {"1900-01-01T12:00:00Z"}
    assert "1900-01-01T00:00:00Z" in {r["LastConfirmationDateTime"] for r in tenant.rows("PurchaseOrderHeadersV2")}


def test_relations_are_consistent(shared_sandbox: Sandbox) -> None:
    t = shared_sandbox.tenant
    vendors = {(r["dataAreaId"], r["VendorAccountNumber"]) for r in t.rows("VendorsV2")}
    headers = t.rows("VendorInvoiceHeaders")
    assert {(h["dataAreaId"], h["VendorAccount"]) for h in headers} <= vendors
    line_sum: dict[tuple, Decimal] = defaultdict(Decimal)
    for line in t.rows("VendorInvoiceLines"):
        line_sum[(line["dataAreaId"], line["HeaderReference"])] += line["LineAmount"]
    assert {(h["dataAreaId"], h["HeaderReference"]): h["InvoiceAmount"] for h in headers} == dict(line_sum)
    po_headers = {(h["dataAreaId"], h["PurchaseOrderNumber"]) for h in t.rows("PurchaseOrderHeadersV2")}
    po_lines = t.rows("PurchaseOrderLinesV2")
    assert {(r["dataAreaId"], r["PurchaseOrderNumber"]) for r in po_lines} == po_headers
    released = {(r["dataAreaId"], r["ItemNumber"]) for r in t.rows("ReleasedProductsV2")}
    assert {(r["dataAreaId"], r["ItemNumber"]) for r in po_lines} <= released
    assert {r["ProductNumber"] for r in t.rows("ReleasedProductsV2")} <= {
        r["ProductNumber"] for r in t.rows("ProductsV2")
    }
    main_accounts = {r["MainAccountId"] for r in t.rows("MainAccounts")}
    gl = t.rows("GeneralJournalAccountEntries")
    assert {r["LedgerAccount"].split("-")[0] for r in gl} <= main_accounts
    balance: dict[str, Decimal] = defaultdict(Decimal)
    for r in gl:
        balance[r["DataArea"] + r["Voucher"]] += r["AccountingCurrencyAmount"]
    assert set(balance.values()) == {Decimal(0)}


def test_dated_records_spread_over_the_window(shared_sandbox: Sandbox) -> None:
    first = ANCHOR - dt.timedelta(days=shared_sandbox.cfg.days - 1)
    for entity_set, field in (
        ("GeneralJournalAccountEntries", "AccountingDate"),
        ("PurchaseOrderHeadersV2", "AccountingDate"),
        ("VendorInvoiceHeaders", "InvoiceDate"),
    ):
        days = {dt.date.fromisoformat(r[field][:10]) for r in shared_sandbox.tenant.rows(entity_set)}
        assert min(days) >= first and max(days) == ANCHOR, entity_set
        assert len(days) == shared_sandbox.cfg.days or entity_set != "GeneralJournalAccountEntries"


def test_generation_is_deterministic_and_follows_the_delimiter() -> None:
    cfg = SandboxConfig(seed=3, scale=0.05, days=2, anchor_date=ANCHOR, dimension_delimiter="|")
    a, b = Tenant(cfg).rows("GeneralJournalAccountEntries"), Tenant(cfg).rows("GeneralJournalAccountEntries")
    assert a == b
    assert all("-" not in r["LedgerAccount"].replace("DAT-0000000002", "") for r in a)
    # the value holding "-" is no longer escaped: only the delimiter is
    assert any("DAT-0000000002" in r["LedgerAccount"] for r in a) and all("\\" not in r["LedgerAccount"] for r in a)
    assert any("||" in r["LedgerAccount"] or r["LedgerAccount"].endswith("|") for r in a)
    other = Tenant(SandboxConfig(seed=4, scale=0.05, days=2, anchor_date=ANCHOR)).rows("GeneralJournalAccountEntries")
    assert [r["AccountingCurrencyAmount"] for r in other] != [r["AccountingCurrencyAmount"] for r in a]


def test_wide_entities_have_hundreds_of_fields() -> None:
    with Sandbox(SandboxConfig(scale=0.05, days=1, anchor_date=ANCHOR, wide=True)) as sb:
        assert len(sb.tenant.fields("VendorsV2")) == 290 and len(sb.tenant.fields("CustomersV3")) == 310
        types = {f.xpp for f in sb.tenant.fields("VendorsV2")}
        assert types >= {"String", "Enum", "Real", "Date", "UtcDateTime", "Int", "Int64"}
        assert len(sb.tenant.rows("CustomersV3")[0]) == 310
