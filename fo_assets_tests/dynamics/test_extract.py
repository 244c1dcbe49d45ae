"""The extraction engine against the sandbox over real HTTPS: exact rows, types, modes, manifests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fo_assets.catalog import STANDARD, Catalog, EntitySpec
from fo_assets.dynamics import lines as lines_module
from fo_assets.dynamics.extract import ExtractError, ExtractRequest, Extractor
from fo_assets.landing import DeleteScope
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, settings_for
from fo_assets_tests.support.truth import by_key, entity_rows, read_batch, truth

EVERYTHING = (ANCHOR - dt.timedelta(days=90), ANCHOR + dt.timedelta(days=1))


def want(sandbox: Sandbox, entity_set: str, company: str | None) -> list[dict]:
    """The tenant's rows as the catalog lands them: without its excluded and personal fields."""
    spec = STANDARD.spec_for(entity_set)
    return truth(sandbox, entity_set, company, spec.excluded_fields + spec.personal_fields)


def _request(spec: EntitySpec, window=EVERYTHING) -> ExtractRequest:
    return ExtractRequest(spec, window=None if STANDARD.mode_of(spec) == "snapshot" else window)


@pytest.fixture(scope="module")
def full_extract(small_sandbox, tmp_path_factory):
    """Every catalog entity, every company, whole history: one extract() call."""
    home = tmp_path_factory.mktemp("home")
    before = {name: small_sandbox.stats.count(f"/data/{name}") for name in ("GeneralJournalEntryBiEntities",
                                                                               "PurchaseOrderHeadersV2")}
    with Extractor(settings_for(small_sandbox, home), "run-full") as extractor:
        batches = extractor.extract([_request(spec) for spec in STANDARD])
        stats = extractor.stats
    header_requests = {name: small_sandbox.stats.count(f"/data/{name}") - n for name, n in before.items()}
    return {spec.entity_set: b for spec, b in zip(STANDARD, batches)}, stats, header_requests, home


@pytest.mark.parametrize("spec", STANDARD.specs, ids=lambda s: s.entity_set)
def test_every_entity_lands_exactly_the_tenants_rows(full_extract, small_sandbox, spec):
    batch = full_extract[0][spec.entity_set]
    assert batch.manifest.status == "landed"
    left_out = spec.excluded_fields + spec.personal_fields
    got = by_key(entity_rows(batch), spec.key_columns)
    companies = (None,) if spec.company_field is None else COMPANIES
    want = {}
    for company in companies:
        want.update(by_key(truth(small_sandbox, spec.entity_set, company, left_out), spec.key_columns))
    assert got.keys() == want.keys()
    assert got == want
    for company in companies:
        expected = len([r for r in want.values() if company is None or r[spec.company_field] == company])
        assert batch.manifest.rows_by_company.get(company or "", 0) == expected


def test_values_land_typed_and_exact(full_extract):
    lines = read_batch(full_extract[0]["GeneralJournalAccountEntryBiEntities"])
    assert lines.schema.field("SourceKey").type == pa.int64()
    assert pa.types.is_decimal(lines.schema.field("AccountingCurrencyAmount").type)
    assert all(isinstance(v, Decimal) for v in lines.column("AccountingCurrencyAmount").to_pylist()[:50])
    # Derived from the voucher: a date and a lower-case company, on every line.
    assert lines.schema.field("AccountingDate").type == pa.date32()
    assert lines.column("AccountingDate").null_count == 0 and lines.column("dataAreaId").null_count == 0
    assert set(lines.column("dataAreaId").to_pylist()) == set(COMPANIES)
    assert lines.schema.field("_fo_extracted_at").type == pa.timestamp("us", tz="UTC")
    vouchers = read_batch(full_extract[0]["GeneralJournalEntryBiEntities"])
    assert vouchers.schema.field("AccountingDate").type == pa.date32()  # X++ Date, by the EDMX's AXType
    assert vouchers.schema.field("CreatedOn").type == pa.timestamp("us", tz="UTC")  # UtcDateTime
    pending = read_batch(full_extract[0]["VendorInvoiceHeaders"])
    assert pending.column("InvoiceDate").null_count > 0, "pending invoices without a date land with a null date"


def test_personal_data_never_reaches_a_landed_part(tmp_path):
    parties = [STANDARD.spec_for(name) for name in ("VendorsV2", "CustomersV3")]
    with Sandbox(SandboxConfig(scale=1, days=2, anchor_date=ANCHOR, companies=COMPANIES)) as sandbox:
        with Extractor(settings_for(sandbox, tmp_path), "run-persons") as extractor:
            batches = extractor.extract([ExtractRequest(spec) for spec in parties])
        for spec, batch in zip(parties, batches):
            for path in batch.part_paths:
                assert not set(pq.read_schema(path).names) & set(spec.personal_fields)
            # The sandbox has sole traders and person customers with these fields filled: there to be left out.
            persons = [r for r in sandbox.tenant.rows(spec.entity_set) if r.get("PersonLastName")]
            assert persons, spec.entity_set
            names = {r["PersonLastName"] for r in persons} | {r["PersonFirstName"] for r in persons}
            for path in batch.part_paths:
                strings = {v for c in pq.read_table(path).columns if pa.types.is_string(c.type) for v in c.to_pylist()}
                assert not names & strings, f"a person's name landed in some other column of {spec.table}"
        # Naming the 230-odd remaining customer fields would make a URL of several KB: the whole row is read
        # and the personal fields are dropped while decoding, never written.
        assert all("$select=" not in url for url in batches[1].manifest.queries)


def test_ledger_dimensions_are_split_per_configured_format(full_extract):
    table = read_batch(full_extract[0]["GeneralJournalAccountEntryBiEntities"])
    names = ["MainAccount", "BusinessUnit", "Department", "CostCenter"]
    rows = table.select(["LedgerAccount", *[f"LedgerAccount_{n}" for n in names]]).to_pylist()
    seen = {r["LedgerAccount"]: r for r in rows}
    blank = seen["605140--022-"]  # blank business unit and trailing blank cost center
    assert [blank[f"LedgerAccount_{n}"] for n in names] == ["605140", None, "022", None]
    escaped = seen["605140-DAT\\-0000000002--"]  # a delimiter inside a value is escaped
    assert [escaped[f"LedgerAccount_{n}"] for n in names] == ["605140", "DAT-0000000002", None, None]


def test_manifests_describe_the_reads(full_extract):
    batches = full_extract[0]
    vouchers = batches["GeneralJournalEntryBiEntities"].manifest
    assert vouchers.mode == "window" and vouchers.window == [d.isoformat() for d in EVERYTHING]
    assert vouchers.companies == list(COMPANIES)
    assert vouchers.delete_scopes == [DeleteScope("window", c, "AccountingDate", *vouchers.window) for c in COMPANIES]
    # No company field: each company's vouchers are those of its ledger (its LedgerRecId).
    assert all("Ledger%20eq%20" in q and "dataAreaId" not in q.split("$orderby")[0] for q in vouchers.queries)
    # Every query orders by the key: F&O pages by offset, and only that order is stable.
    assert all("$orderby=JournalNumber,FiscalCalendarYear,Ledger" in q for q in vouchers.queries)
    assert sum(vouchers.rows_by_day.values()) == vouchers.row_count and len(vouchers.rows_by_day) >= 5
    products = batches["ProductsV2"].manifest
    assert products.mode == "snapshot" and products.delete_scopes == [DeleteScope("company", None)]
    vendors = batches["VendorsV2"].manifest
    assert vendors.delete_scopes == [DeleteScope("company", c) for c in COMPANIES]
    assert all("$top=2000" in q and "$orderby=dataAreaId,VendorAccountNumber" in q for q in vendors.queries)
    for batch in batches.values():
        assert all(r["complete"] for r in batch.manifest.reads.values()), batch.manifest.entity_set
        # What a header/line read costs, in the manifest of every line batch (and only there).
        stats = batch.manifest.stats
        if STANDARD.mode_of(STANDARD.spec_for(batch.manifest.entity_set)) == "lines":
            assert stats["requests_per_1000_lines"] == round(1000 * stats["requests"] / batch.manifest.row_count, 2)
        else:
            assert "requests_per_1000_lines" not in stats


def test_gl_lines_are_read_by_voucher_ranges_with_their_vouchers(full_extract, small_sandbox):
    batches, _, header_requests, _ = full_extract
    lines = batches["GeneralJournalAccountEntryBiEntities"]
    vouchers = batches["GeneralJournalEntryBiEntities"]
    # The voucher keys came from the voucher batch of the same call: no read of vouchers of its own.
    assert header_requests["GeneralJournalEntryBiEntities"] == vouchers.manifest.stats["requests"]
    assert lines.manifest.mode == "lines" and lines.manifest.delete_scopes == [DeleteScope("parents")]
    # By ranges of GeneralJournalEntry, not one key chunk per couple of dozen vouchers.
    assert all("GeneralJournalEntry%20ge%20" in q for q in lines.manifest.queries)
    assert lines.manifest.stats["requests"] <= 2 * 8, "a few ranges, read concurrently"
    assert lines.manifest.stats["lines_without_header"] == 0
    parents = pq.read_table(lines.parents_path)
    assert parents.column_names == ["dataAreaId", "GeneralJournalEntry"]
    assert parents.num_rows == vouchers.manifest.row_count
    assert lines.manifest.companies == list(COMPANIES)
    assert sum(lines.manifest.rows_by_day.values()) == lines.manifest.row_count


def test_gl_lines_in_many_small_ranges_land_each_with_its_own_voucher(small_sandbox, tmp_path, monkeypatch):
    # A backfill's ranges are about a page each; here 40 vouchers each, so the small tenant makes dozens, and
    # each range's lines must find their company and date among that range's vouchers only.
    monkeypatch.setattr(lines_module, "MAX_HEADERS_PER_RANGE", 40)
    specs = [STANDARD.spec_for("GeneralJournalEntryBiEntities"), STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")]
    with Extractor(settings_for(small_sandbox, tmp_path), "run-ranges") as extractor:
        vouchers, lines = extractor.extract([_request(spec) for spec in specs])
    assert len(lines.manifest.queries) >= vouchers.manifest.row_count / 40
    assert lines.manifest.stats["lines_without_header"] == 0
    landed = by_key(read_batch(lines).to_pylist(), ("SourceKey",))
    source = [r for c in COMPANIES for r in want(small_sandbox, "GeneralJournalAccountEntryBiEntities", c)]
    assert len(landed) == len(source) == lines.manifest.row_count
    for row in source:
        got = landed[(row["SourceKey"],)]
        assert (got["dataAreaId"], got["AccountingDate"]) == (row["dataAreaId"], row["AccountingDate"])


def test_po_lines_reuse_the_header_read_and_count_rows_by_their_headers_day(full_extract):
    batches, _, header_requests, _ = full_extract
    headers, lines = batches["PurchaseOrderHeadersV2"], batches["PurchaseOrderLinesV2"]
    assert header_requests["PurchaseOrderHeadersV2"] == headers.manifest.stats["requests"]
    assert lines.manifest.mode == "lines" and lines.manifest.delete_scopes == [DeleteScope("parents")]
    header_days = headers.manifest.rows_by_day
    assert set(lines.manifest.rows_by_day) <= set(header_days)
    assert sum(lines.manifest.rows_by_day.values()) == lines.manifest.row_count


def test_a_window_reads_half_open_days_and_lines_read_their_own_headers(small_sandbox, tmp_path):
    window = (ANCHOR - dt.timedelta(days=3), ANCHOR - dt.timedelta(days=1))
    requests = [
        ExtractRequest(STANDARD.spec_for("VendInvoiceJourBiEntities"), window=window, companies=("DEMF",)),
        ExtractRequest(STANDARD.spec_for("GeneralJournalAccountEntryBiEntities"), window=window, companies=("usmf",)),
    ]
    with Extractor(settings_for(small_sandbox, tmp_path), "run-window") as extractor:
        invoices, lines = extractor.extract(requests)
    # Invoices dated in the window, and those changed in it (posted then, say) whatever their date.
    read = [r for r in want(small_sandbox, "VendInvoiceJourBiEntities", "demf")
            if window[0] <= r["InvoiceDate"] < window[1] or window[0] <= r["SysModifiedDateTime"].date() < window[1]]
    assert any(not window[0] <= r["InvoiceDate"] < window[1] for r in read), "the sandbox posts some invoices late"
    assert sorted(entity_rows(invoices), key=str) == sorted(read, key=str)
    in_window = [r for r in truth(small_sandbox, "GeneralJournalAccountEntryBiEntities", "usmf")
                 if window[0] <= r["AccountingDate"] < window[1]]
    assert in_window and sorted(entity_rows(lines), key=str) == sorted(in_window, key=str)
    # Without a voucher batch in the call, the lines read just the voucher keys, by usmf's ledger.
    assert "/GeneralJournalEntryBiEntities?" in lines.manifest.queries[0]
    assert "$select=JournalNumber,FiscalCalendarYear,Ledger,SourceKey,AccountingDate" in lines.manifest.queries[0]


def test_keyed_pull_reads_exactly_the_named_records_and_deletes_nothing(small_sandbox, tmp_path):
    # Real keys carry spaces and quotes.
    lookups = (("USMF", (("VendorAccountNumber", " RFI-TEST-001"),)),
               ("usmf", (("VendorAccountNumber", "O'Brien Supplies"),)),
               ("demf", (("VendorAccountNumber", "DEMF-V00002"),)))
    with Extractor(settings_for(small_sandbox, tmp_path), "run-keys") as extractor:
        (batch,) = extractor.extract([ExtractRequest(STANDARD.spec_for("VendorsV2"), lookups=lookups)])
    got = {(r["dataAreaId"], r["VendorAccountNumber"]) for r in entity_rows(batch)}
    assert got == {("usmf", " RFI-TEST-001"), ("usmf", "O'Brien Supplies"), ("demf", "DEMF-V00002")}
    assert batch.manifest.mode == "keys" and batch.manifest.delete_scopes == []
    assert batch.manifest.companies == ["usmf", "demf"]


def test_a_key_holding_a_wildcard_pulls_only_its_own_record(fresh_sandbox, tmp_path):
    # F&O reads * inside eq '...' as a wildcard and has no escape: AB*1 would also match AB-11 and ab*1x.
    for account in ("AB*1", "AB-11", "AB*12"):
        fresh_sandbox.changes.insert("VendorsV2", {"dataAreaId": "usmf", "VendorAccountNumber": account})
    lookups = (("usmf", (("VendorAccountNumber", "AB*1"),)),)
    with Extractor(settings_for(fresh_sandbox, tmp_path), "run-wild") as extractor:
        (batch,) = extractor.extract([ExtractRequest(STANDARD.spec_for("VendorsV2"), lookups=lookups)])
    assert [r["VendorAccountNumber"] for r in entity_rows(batch)] == ["AB*1"]


def test_metadata_is_one_edmx_request_while_fresh(small_sandbox, tmp_path):
    settings = settings_for(small_sandbox, tmp_path)
    before = small_sandbox.stats.count("/data/$metadata"), small_sandbox.stats.count("/Metadata/")
    for run in ("a", "b"):
        with Extractor(settings, run) as extractor:
            extractor.extract([ExtractRequest(STANDARD.spec_for("MainAccounts")),
                               _request(STANDARD.spec_for("GeneralJournalEntryBiEntities"))])
    assert small_sandbox.stats.count("/data/$metadata") - before[0] == 1
    # The EDMX's AXType annotation tells dates from instants: the metadata service is never asked.
    assert small_sandbox.stats.count("/Metadata/") - before[1] == 0
    assert (tmp_path / "metadata").is_dir()


def test_without_a_window_the_full_history_is_read_per_company(small_sandbox, tmp_path):
    requests = [ExtractRequest(STANDARD.spec_for("PurchaseOrderHeadersV2"), companies=("gbsi",)),
                ExtractRequest(STANDARD.spec_for("PurchaseOrderLinesV2"), companies=("gbsi",)),
                ExtractRequest(STANDARD.spec_for("GeneralJournalAccountEntryBiEntities"), companies=("gbsi",))]
    with Extractor(settings_for(small_sandbox, tmp_path), "run-history") as extractor:
        headers, lines, gl_lines = extractor.extract(requests)
    for batch, entity_set in ((headers, "PurchaseOrderHeadersV2"), (lines, "PurchaseOrderLinesV2")):
        assert batch.manifest.mode == "snapshot" and batch.manifest.window is None
        assert batch.manifest.delete_scopes == [DeleteScope("company", "gbsi")]
        assert sorted(entity_rows(batch), key=str) == sorted(want(small_sandbox, entity_set, "gbsi"), key=str)
    # GL lines have no company of their own: they are always read with their vouchers, here all of gbsi's.
    assert gl_lines.manifest.mode == "lines"
    expected = want(small_sandbox, "GeneralJournalAccountEntryBiEntities", "gbsi")
    assert sorted(entity_rows(gl_lines), key=str) == sorted(expected, key=str)


def _catalog_with(*added: EntitySpec) -> Catalog:
    return Catalog([*STANDARD, *added])


def test_one_entity_that_does_not_match_the_tenant_fails_alone(small_sandbox, tmp_path, monkeypatch):
    unknown = EntitySpec("VendorInvoiceHeader", keys=("dataAreaId", "HeaderReference"), group="extensions",
                         description="a misspelt entity set")
    wrong_key = EntitySpec("ExchangeRates", keys=("FromCurrency",), company_field=None, group="finance",
                           description="not its key")
    settings = dataclasses.replace(settings_for(small_sandbox, tmp_path), catalog=_catalog_with(unknown, wrong_key))
    specs = [*STANDARD, unknown, wrong_key]
    with Extractor(settings, "run-mixed") as extractor, pytest.raises(ExtractError) as failed:
        extractor.extract([_request(spec) for spec in specs])
    statuses = {b.manifest.entity_set: b.manifest.status for b in failed.value.batches}
    assert {name for name, status in statuses.items() if status == "landed"} == {s.entity_set for s in STANDARD}
    assert statuses["VendorInvoiceHeader"] == statuses["ExchangeRates"] == "incomplete"
    messages = {f.entity_set: str(f) for f in failed.value.failures}
    assert "'VendorInvoiceHeader' is not in the tenant's metadata; did you mean VendorInvoiceHeaders" in \
        messages["VendorInvoiceHeader"]
    assert "the key is (RateTypeName, FromCurrency, ToCurrency, StartDate) in the tenant" in messages["ExchangeRates"]


def test_an_extension_entity_of_the_tenant_lands_by_its_window(tmp_path):
    config = SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES, extension_entities=True)
    budgets = EntitySpec("ContosoProjectBudgets", keys=("dataAreaId", "ProjectId", "BudgetLineId"),
                         group="extensions", description="budgets", window_field="ModifiedDateTime1")
    with Sandbox(config) as sandbox:
        settings = dataclasses.replace(settings_for(sandbox, tmp_path), catalog=_catalog_with(budgets))
        with Extractor(settings, "run-extension") as extractor:
            (batch,) = extractor.extract([ExtractRequest(budgets, window=EVERYTHING)])
        want = [r for c in COMPANIES for r in truth(sandbox, "ContosoProjectBudgets", c)]
        assert want and sorted(entity_rows(batch), key=str) == sorted(want, key=str)


def test_an_unknown_legal_entity_is_named(small_sandbox, tmp_path):
    settings = settings_for(small_sandbox, tmp_path, FO_LEGAL_ENTITIES="usmf,zzzz")
    with Extractor(settings, "run-zzzz") as extractor, pytest.raises(ExtractError) as failed:
        extractor.extract([_request(STANDARD.spec_for("GeneralJournalEntryBiEntities"))])
    assert "legal entity 'zzzz' has no row in Ledgers" in str(failed.value)
