"""Rows look like F&O's: etag first, F&O's values for unset fields, awkward keys and values, and the
relations between entities that F&O's tables have (GL, posted and pending invoices, purchase orders)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal

import httpx
import pytest

from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.sandbox.tenant import Tenant

from .conftest import ANCHOR, real_tenant

ETAG = re.compile(r'^W/"[A-Za-z0-9+/=]+"$')
EMPTY_DATE, EMPTY_UTC = "1900-01-01T12:00:00Z", "1900-01-01T00:00:00Z"
ENUMS = real_tenant()["enums"]
PERSONAL = (
    "PersonFirstName",
    "PersonLastName",
    "PersonBirthDay",
    "PersonBirthMonth",
    "PersonBirthYear",
    "PersonGender",
    "PrimaryEmailAddress",
    "PrimaryPhoneNumber",
    "AddressStreet",
)


def _unset(edm_type: str, nullable: bool) -> set:
    """What F&O returns for a field nobody set, by type."""
    if edm_type.startswith("Microsoft.Dynamics.DataEntities."):
        members = ENUMS[edm_type.rsplit(".", 1)[1]]
        return {min(members, key=lambda m: (members[m] != 0, members[m]))}
    return {
        "Edm.String": {"", None} if nullable else {""},
        "Edm.Int32": {0},
        "Edm.Int64": {0},
        "Edm.Decimal": {0},
        "Edm.Boolean": {False},
        "Edm.Guid": {"00000000-0000-0000-0000-000000000000"},
        "Edm.Binary": {None},
        "Edm.DateTimeOffset": {EMPTY_DATE, EMPTY_UTC},
    }[edm_type]


def test_rows_are_compact_with_the_etag_first(shared_client: httpx.Client) -> None:
    response = shared_client.get("/data/VendorsV2", params={"cross-company": "true", "$top": "40"})
    raw = response.text
    assert raw.startswith('{"@odata.context":') and ", " not in raw[:200]  # compact JSON
    for row in response.json()["value"]:
        assert list(row)[0] == "@odata.etag" and ETAG.match(row["@odata.etag"])


def test_fields_nobody_set_show_what_fo_shows(shared_sandbox: Sandbox) -> None:
    """A generic entity fills only its key: every other field is F&O's unset value for its type, dates
    at the noon sentinel and instants at the midnight one, strings "" and now and then null."""
    spec = real_tenant()["entities"]["VendInvoiceJournalLines"]
    rows = shared_sandbox.tenant.rows("VendInvoiceJournalLines")
    xpp = {f.name: f.xpp for f in shared_sandbox.tenant.fields("VendInvoiceJournalLines")}
    for name, edm_type, nullable, *_ in spec["properties"]:
        if name in spec["keys"]:
            continue
        seen = {r[name] for r in rows}
        assert seen <= _unset(edm_type, nullable), name
        if edm_type == "Edm.DateTimeOffset":
            assert seen == {EMPTY_DATE if xpp[name] == "Date" else EMPTY_UTC}, name
    strings = [r[n] for r in shared_sandbox.tenant.rows("VendorsV2") for n, t, nullable, *_ in
               real_tenant()["entities"]["VendorsV2"]["properties"] if t == "Edm.String" and nullable]
    assert None in strings and "" in strings  # unset strings: usually "", sometimes null


def test_awkward_values_are_present(shared_sandbox: Sandbox) -> None:
    tenant = shared_sandbox.tenant
    vendors = {r["VendorAccountNumber"] for r in tenant.rows("VendorsV2", "usmf")}
    assert {" RFI-TEST-001", "O'Brien Supplies", "ACME*1", "ACME-TOOLS-1"} <= vendors
    assert "General Chart" in {r["ChartOfAccounts"] for r in tenant.rows("MainAccounts")}
    ledger = {r["LedgerAccount"] for r in tenant.rows("GeneralJournalAccountEntryBiEntities")}
    assert "605140--022-" in ledger and "605140-DAT\\-0000000002--" in ledger
    defaults = [r["DefaultLedgerDimensionDisplayValue"] for r in tenant.rows("VendorsV2")]
    assert "" in defaults and any(d.endswith("-") for d in defaults)
    assert {None, ""} <= {r["TaxExemptNumber"] for r in tenant.rows("VendorsV2")}
    amounts = [r["AccountingCurrencyAmount"] for r in tenant.rows("GeneralJournalAccountEntryBiEntities")]
    amounts += [r["CreditLimit"] for r in tenant.rows("VendorsV2")]
    assert [a for a in amounts if Decimal(repr(float(a))) != a], "some amounts must not survive a float round trip"
    assert EMPTY_DATE in {r["DocumentDate"] for r in tenant.rows("GeneralJournalEntryBiEntities")}
    assert EMPTY_DATE in {r["InvoiceDate"] for r in tenant.rows("VendorInvoiceHeaders")}  # pending, not yet dated
    pending = {(r["VendorAccount"], r["InvoiceNumber"]) for r in tenant.rows("VendorInvoiceHeaders", "usmf")}
    assert {("O'Brien Supplies", "OB'22-001"), (" RFI-TEST-001", "RFI INV 1")} <= pending
    posted = {(r["InvoiceAccount"], r["InvoiceId"]) for r in tenant.rows("VendInvoiceJourBiEntities", "usmf")}
    assert {("O'Brien Supplies", "OB'22-000"), (" RFI-TEST-001", "RFI INV 0")} <= posted
    # Journal numbers repeat across companies: only (JournalNumber, FiscalCalendarYear, Ledger) is unique.
    journals = Counter(r["JournalNumber"] for r in tenant.rows("GeneralJournalEntryBiEntities"))
    assert journals.most_common(1)[0][1] == len(shared_sandbox.cfg.companies)


def test_persons_carry_personal_data_and_organisations_do_not(shared_sandbox: Sandbox) -> None:
    vendors = shared_sandbox.tenant.rows("VendorsV2")
    persons = [r for r in vendors if r["VendorPartyType"] == "Person"]
    organisations = [r for r in vendors if r["VendorPartyType"] == "Organization"]
    assert persons and organisations and len(persons) + len(organisations) == len(vendors)
    for row in persons:
        assert row["PersonFirstName"] and row["PersonLastName"] and row["VendorOrganizationName"] == ""
        assert 1 <= row["PersonBirthDay"] <= 28 and row["PersonBirthMonth"] != "None" and row["PersonBirthYear"] > 1900
        assert row["PersonGender"] != "Unknown" and row["AddressStreet"]
    assert any(r["PrimaryEmailAddress"] and r["PrimaryEmailAddress"].endswith("@mail.example") for r in persons)
    for row in organisations:
        assert row["PersonFirstName"] == row["PersonLastName"] == "" and row["PersonBirthYear"] == 0
    customers = shared_sandbox.tenant.rows("CustomersV3")
    people = [r for r in customers if r["PartyType"] == "Person"]
    assert people and all(r["PersonFirstName"] and r["OrganizationName"] == "" for r in people)
    assert any(r["ReceiptEmail"] for r in people) and all(r["ReceiptEmail"] == "" for r in customers if r not in people)


def _by(rows: list[dict], *fields: str) -> dict:
    """Rows by their value of ``fields`` (a tuple for several), which must be unique."""
    out = {tuple(r[f] for f in fields) if len(fields) > 1 else r[fields[0]]: r for r in rows}
    assert len(out) == len(rows), f"{fields} is not unique"
    return out


def test_general_ledger_relations(shared_sandbox: Sandbox) -> None:
    t = shared_sandbox.tenant
    ledgers = {r["LedgerRecId"]: r for r in t.rows("Ledgers")}
    assert sorted(r["LegalEntityId"].lower() for r in ledgers.values()) == sorted(shared_sandbox.cfg.companies)
    headers = _by(t.rows("GeneralJournalEntryBiEntities"), "SourceKey")
    assert len(_by(list(headers.values()), "JournalNumber", "FiscalCalendarYear", "Ledger")) == len(headers)
    years = {r["SourceKey"]: r["Name"] for r in t.rows("FiscalCalendarYearBiEntities")}
    periods = {r["SourceKey"]: r for r in t.rows("FiscalCalendarPeriodBiEntities")}
    for h in headers.values():
        assert h["Ledger"] in ledgers
        assert h["SubledgerVoucherDataAreaId"].lower() == ledgers[h["Ledger"]]["LegalEntityId"].lower()
        assert years[h["FiscalCalendarYear"]] == h["AccountingDate"][:4]
        assert periods[h["FiscalCalendarPeriod"]]["StartDate"][:7] == h["AccountingDate"][:7]
    accounts = {r["MainAccountRecId"]: r for r in t.rows("MainAccounts")}
    lines = t.rows("GeneralJournalAccountEntryBiEntities")
    assert len(_by(lines, "SourceKey")) == len(lines)
    totals: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for line in lines:
        assert line["GeneralJournalEntry"] in headers  # every line has its header
        account = accounts[line["MainAccount"]]
        assert account["ChartOfAccounts"] == "Shared"
        assert line["LedgerAccount"].startswith(account["MainAccountId"] + "-")
        assert json.loads(line["LedgerDimensionValuesJson"])[0] == {"MAINACCOUNT": account["MainAccountId"]}
        assert (line["IsCredit"] == "Yes") == (line["AccountingCurrencyAmount"] < 0)
        for i, name in enumerate(("AccountingCurrencyAmount", "ReportingCurrencyAmount", "TransactionCurrencyAmount")):
            totals[line["GeneralJournalEntry"]][i] += line[name]
    assert set(totals) == set(headers)
    assert {tuple(v) for v in totals.values()} == {(0, 0, 0)}  # every voucher balances, in all three currencies
    # RecIds grow with the accounting date, across companies.
    by_key = sorted(lines, key=lambda r: r["SourceKey"])
    dates = [headers[line["GeneralJournalEntry"]]["AccountingDate"] for line in by_key]
    assert dates == sorted(dates)
    header_dates = [h["AccountingDate"] for _, h in sorted(headers.items())]
    assert header_dates == sorted(header_dates)


def test_gl_company_is_derived_through_ledger_and_header(shared_sandbox: Sandbox) -> None:
    t, companies = shared_sandbox.tenant, shared_sandbox.cfg.companies
    ledger_of = {r["LegalEntityId"].lower(): r["LedgerRecId"] for r in t.rows("Ledgers")}
    headers, lines = {}, {}
    for company in companies:
        headers[company] = t.rows("GeneralJournalEntryBiEntities", company)
        assert headers[company] and {h["Ledger"] for h in headers[company]} == {ledger_of[company]}
        own = {h["SourceKey"] for h in headers[company]}
        lines[company] = t.rows("GeneralJournalAccountEntryBiEntities", company.upper())  # any case
        assert lines[company] and {line["GeneralJournalEntry"] for line in lines[company]} == own
    assert sum(map(len, headers.values())) == len(t.rows("GeneralJournalEntryBiEntities"))
    assert sum(map(len, lines.values())) == len(t.rows("GeneralJournalAccountEntryBiEntities"))


def test_posted_invoice_relations(shared_sandbox: Sandbox) -> None:
    t = shared_sandbox.tenant
    join = ("dataAreaId", "PurchId", "InvoiceId", "InvoiceDate", "numberSequenceGroup", "InternalInvoiceId")
    headers = _by(t.rows("VendInvoiceJourBiEntities"), *join)
    lines = t.rows("VendInvoiceTransBiEntities")
    assert len(_by(lines, "dataAreaId", "SourceKey")) == len(lines)
    sums: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line in lines:
        key = (line["dataAreaId"], line["PurchID"], line["InvoiceId"], line["InvoiceDate"],
               line["numberSequenceGroup"], line["InternalInvoiceId"])  # fmt: skip
        assert key in headers  # every line joins to exactly one header
        sums[key][0] += line["LineAmount"]
        sums[key][1] += line["TaxAmount"]
    assert set(sums) == set(headers)
    for key, header in headers.items():
        assert header["InvoiceAmount"] == sums[key][0] + sums[key][1] == header["InvoiceAmountMST"]
        assert header["SumTax"] == sums[key][1]
    pos = _by(t.rows("PurchaseOrderHeadersV2"), "dataAreaId", "PurchaseOrderNumber")
    with_po = [h for h in headers.values() if h["PurchId"]]
    assert with_po and len(with_po) < len(headers)
    for h in with_po:
        po = pos[(h["dataAreaId"].lower(), h["PurchId"])]
        assert po["OrderVendorAccountNumber"] == h["OrderAccount"] and po["AccountingDate"] <= h["InvoiceDate"]
    # Two vendors' invoices share an InvoiceId and date: only InternalInvoiceId tells their lines apart.
    shared = Counter((h["dataAreaId"], h["InvoiceId"], h["InvoiceDate"]) for h in headers.values())
    assert max(shared.values()) == 2
    modified = [h for h in headers.values() if h["SysModifiedDateTime"] != h["CreatedOn"]]
    assert modified and all(h["SysModifiedDateTime"] > h["CreatedOn"] for h in modified)


def test_pending_invoices_and_purchase_orders_relate(shared_sandbox: Sandbox) -> None:
    t = shared_sandbox.tenant
    vendors = {(r["dataAreaId"], r["VendorAccountNumber"]) for r in t.rows("VendorsV2")}
    headers = _by(t.rows("VendorInvoiceHeaders"), "dataAreaId", "HeaderReference")
    assert {(h["dataAreaId"], h["VendorAccount"]) for h in headers.values()} <= vendors
    po_headers = _by(t.rows("PurchaseOrderHeadersV2"), "dataAreaId", "PurchaseOrderNumber")
    po_lines = _by(t.rows("PurchaseOrderLinesV2"), "dataAreaId", "PurchaseOrderNumber", "LineNumber")
    for line in t.rows("VendorInvoiceLines"):
        header = headers[(line["dataAreaId"], line["HeaderReference"])]
        assert line["VendorAccount"] == header["VendorAccount"] and line["Amount"] == line["NetAmount"]
        assert line["PurchaseOrder"] == header["PurchaseOrderNumber"]
        if line["PurchaseOrder"]:
            po_line = po_lines[(line["dataAreaId"], line["PurchaseOrder"], line["PurchLineNumber"])]
            assert (po_line["ItemNumber"], po_line["LineAmount"]) == (line["ItemNumber"], line["Amount"])
    assert {k[:2] for k in po_lines} == set(po_headers)
    released = {(r["dataAreaId"], r["ItemNumber"]) for r in t.rows("ReleasedProductsV2")}
    assert {(r["dataAreaId"], r["ItemNumber"]) for r in po_lines.values()} <= released
    products = {r["ProductNumber"] for r in t.rows("ProductsV2")}
    assert {r["ProductNumber"] for r in t.rows("ReleasedProductsV2")} <= products
    first_day = (ANCHOR - dt.timedelta(days=shared_sandbox.cfg.days - 1)).isoformat()
    old = [h for h in po_headers.values() if h["AccountingDate"] < first_day]
    assert old and {h["PurchaseOrderStatus"] for h in old} <= {"Backorder", "Received"}  # still open


def test_dated_records_spread_over_the_window(shared_sandbox: Sandbox) -> None:
    days = shared_sandbox.cfg.days
    window = {(ANCHOR - dt.timedelta(days=d)).isoformat() for d in range(days)}
    for entity_set, field in (
        ("GeneralJournalEntryBiEntities", "AccountingDate"),
        ("VendInvoiceJourBiEntities", "InvoiceDate"),
        ("PurchaseOrderHeadersV2", "AccountingDate"),
    ):
        seen = {r[field][:10] for r in shared_sandbox.tenant.rows(entity_set)}
        assert window <= seen, entity_set  # every day of the window
    assert {r["InvoiceDate"][:10] for r in shared_sandbox.tenant.rows("VendInvoiceJourBiEntities")} <= window


def test_generated_sizes_follow_the_scale(shared_sandbox: Sandbox) -> None:
    cfg, tenant = shared_sandbox.cfg, shared_sandbox.tenant
    per_company = len(cfg.companies)
    assert len(tenant.rows("GeneralJournalAccountEntryBiEntities")) == per_company * round(112 * cfg.scale) * cfg.days
    recent_pos = round(20 * cfg.scale) * cfg.days
    assert len(tenant.rows("PurchaseOrderHeadersV2", "usmf")) == recent_pos + max(2, recent_pos // 10)
    assert len(tenant.rows("VendInvoiceJourBiEntities", "usmf")) == round(20 * cfg.scale) * cfg.days + 2
    assert len(tenant.rows("VendorInvoiceHeaders", "usmf")) == max(1, round(4 * cfg.scale)) * cfg.days + 2
    assert len(tenant.rows("VendorsV2", "usmf")) == round(50 * cfg.scale) + 4  # + the four awkward keys
    assert len(tenant.rows("ProductsV2")) == round(200 * cfg.scale)
    assert len(tenant.rows("Ledgers")) == per_company
    assert 95 <= len(tenant.rows("MainAccounts")) <= 110


def test_generation_is_deterministic_and_follows_the_delimiter() -> None:
    cfg = SandboxConfig(seed=3, scale=0.05, days=2, anchor_date=ANCHOR, dimension_delimiter="|")
    lines = "GeneralJournalAccountEntryBiEntities"
    a, b = Tenant(cfg).rows(lines), Tenant(cfg).rows(lines)
    assert a == b
    assert Tenant(cfg).rows("VendorsV2") == Tenant(cfg).rows("VendorsV2")
    assert all("-" not in r["LedgerAccount"].replace("DAT-0000000002", "") for r in a)
    # the value holding "-" is no longer escaped: only the delimiter is
    assert any("DAT-0000000002" in r["LedgerAccount"] for r in a) and all("\\" not in r["LedgerAccount"] for r in a)
    assert any("||" in r["LedgerAccount"] or r["LedgerAccount"].endswith("|") for r in a)
    other = Tenant(SandboxConfig(seed=4, scale=0.05, days=2, anchor_date=ANCHOR)).rows(lines)
    assert [r["AccountingCurrencyAmount"] for r in other] != [r["AccountingCurrencyAmount"] for r in a]


@pytest.mark.parametrize("entity_set", ["VendorsV2", "VendInvoiceTransBiEntities", "ExchangeRates"])
def test_every_key_is_unique(shared_sandbox: Sandbox, entity_set: str) -> None:
    keys = [f.name for f in shared_sandbox.tenant.fields(entity_set) if f.is_key]
    rows = shared_sandbox.tenant.rows(entity_set)
    assert rows and len({tuple(r[k] for k in keys) for r in rows}) == len(rows)
