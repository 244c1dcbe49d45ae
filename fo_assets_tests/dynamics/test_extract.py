"""The extraction engine against the sandbox over real HTTPS: exact rows, types, modes, manifests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fo_assets.catalog import CATALOG, spec_for
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.landing import DeleteScope
from fo_assets_tests.conftest import ANCHOR, COMPANIES
from fo_assets_tests.dynamics.conftest import by_key, entity_rows, read_batch, settings_for, truth

EVERYTHING = (ANCHOR - dt.timedelta(days=60), ANCHOR + dt.timedelta(days=1))


@pytest.fixture(scope="module")
def full_extract(small_sandbox, tmp_path_factory):
    """Every catalog entity, every company, whole history: one extract() call."""
    home = tmp_path_factory.mktemp("home")
    requests = [ExtractRequest(spec, window=None if spec.mode == "snapshot" else EVERYTHING) for spec in CATALOG]
    before = small_sandbox.stats.count("/data/VendorInvoiceHeaders")
    with Extractor(settings_for(small_sandbox, home), "run-full") as extractor:
        batches = extractor.extract(requests)
        stats = extractor.stats
    header_requests = small_sandbox.stats.count("/data/VendorInvoiceHeaders") - before
    return {spec.entity_set: b for spec, b in zip(CATALOG, batches)}, stats, header_requests, home


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.entity_set)
def test_every_entity_lands_exactly_the_tenants_rows(full_extract, small_sandbox, spec):
    batch = full_extract[0][spec.entity_set]
    assert batch.manifest.status == "landed"
    got = by_key(entity_rows(batch), spec.key_columns)
    companies = (None,) if spec.company_field is None else COMPANIES
    want = {}
    for company in companies:
        want.update(by_key(truth(small_sandbox, spec.entity_set, company, spec.excluded_fields), spec.key_columns))
    assert got.keys() == want.keys()
    assert got == want
    for company in companies:
        expected = len([k for k in want if company is None or k[0] == company])
        assert batch.manifest.rows_by_company.get(company or "", 0) == expected


def test_values_land_typed_and_exact(full_extract):
    batch = full_extract[0]["GeneralJournalAccountEntries"]
    table = read_batch(batch)
    assert table.schema.field("AccountingDate").type == pa.date32()
    assert table.schema.field("DocumentDate").type == pa.date32()
    assert table.schema.field("GeneralJournalAccountEntryRecId").type == pa.int64()
    assert pa.types.is_decimal(table.schema.field("AccountingCurrencyAmount").type)
    assert table.schema.field("_fo_extracted_at").type == pa.timestamp("us", tz="UTC")
    # The sandbox writes empty document dates as the 1900-01-01 sentinel: they must land as nulls.
    assert table.column("DocumentDate").null_count > 0
    assert all(isinstance(v, Decimal) for v in table.column("AccountingCurrencyAmount").to_pylist()[:50])
    invoices = read_batch(full_extract[0]["VendorInvoiceHeaders"])
    assert invoices.schema.field("PostedDateTime").type == pa.timestamp("us", tz="UTC")


def test_excluded_fields_never_land(full_extract):
    batch = full_extract[0]["CustomersV3"]
    columns = set(read_batch(batch).column_names)
    assert columns.isdisjoint(spec_for("CustomersV3").excluded_fields)
    assert all("$select=" in url and "PrimaryContact" not in url for url in batch.manifest.queries)
    # Without excluded fields or a field list, every public field is read and no $select is needed.
    assert all("$select=" not in url for url in full_extract[0]["VendorsV2"].manifest.queries)


def test_ledger_dimensions_are_split_per_configured_format(full_extract, small_sandbox):
    table = read_batch(full_extract[0]["GeneralJournalAccountEntries"])
    names = ["MainAccount", "BusinessUnit", "Department", "CostCenter"]
    rows = table.select(["LedgerAccount", *[f"LedgerAccount_{n}" for n in names]]).to_pylist()
    seen = {r["LedgerAccount"]: r for r in rows}
    blank = seen["605140--022-"]  # blank business unit and trailing blank cost center
    assert [blank[f"LedgerAccount_{n}"] for n in names] == ["605140", None, "022", None]
    escaped = seen["605140-DAT\\-0000000002--"]  # a delimiter inside a value is escaped
    assert [escaped[f"LedgerAccount_{n}"] for n in names] == ["605140", "DAT-0000000002", None, None]
    for value, row in seen.items():
        if "\\" not in value:
            segments = [s or None for s in value.split("-")] if value else [None] * 4
            assert [row[f"LedgerAccount_{n}"] for n in names] == segments


def test_manifests_describe_the_reads(full_extract):
    batches = full_extract[0]
    gl = batches["GeneralJournalAccountEntries"].manifest
    assert gl.mode == "window" and gl.window == [d.isoformat() for d in EVERYTHING]
    assert gl.companies == list(COMPANIES)
    assert gl.delete_scopes == [
        DeleteScope("window", c, "AccountingDate", *gl.window) for c in COMPANIES
    ]
    # 61 days hold two 4-week sub-windows: read as 2 concurrent queries per company (8 workers allow 3).
    assert len(gl.queries) == 6 and all("cross-company=true" in q for q in gl.queries)
    assert sorted(q.split("DataArea%20eq%20'")[1][:4] for q in gl.queries) == sorted(COMPANIES * 2)
    assert gl.stats["pages"] >= 3 and gl.stats["requests"] >= gl.stats["pages"] and gl.stats["bytes"] > 0
    assert {"name": "LedgerAccount_MainAccount", "type": "string"} in gl.schema
    products = batches["ProductsV2"].manifest
    assert products.mode == "snapshot" and products.delete_scopes == [DeleteScope("company", None)]
    vendors = batches["VendorsV2"].manifest
    assert vendors.delete_scopes == [DeleteScope("company", c) for c in COMPANIES]
    assert all("$top=2000" in q and "$orderby=dataAreaId,VendorAccountNumber" in q for q in vendors.queries)


def test_lines_reuse_the_header_read_and_record_their_parents(full_extract, small_sandbox):
    batches, _, header_requests, _ = full_extract
    # Every header request was the header batch's own: the lines took their parent keys from it.
    assert header_requests == batches["VendorInvoiceHeaders"].manifest.stats["requests"]
    lines = batches["VendorInvoiceLines"]
    assert lines.manifest.mode == "lines" and lines.manifest.delete_scopes == [DeleteScope("parents")]
    assert lines.manifest.stats["queries"] > len(COMPANIES)  # several key chunks per company (rows: exact above)
    parents = pq.read_table(lines.parents_path).to_pylist()
    headers = [{"dataAreaId": r["dataAreaId"], "HeaderReference": r["HeaderReference"]}
               for r in entity_rows(batches["VendorInvoiceHeaders"])]
    assert sorted(parents, key=str) == sorted(headers, key=str)


def test_a_window_reads_half_open_days_and_lines_read_their_own_parents(small_sandbox, tmp_path):
    window = (ANCHOR - dt.timedelta(days=3), ANCHOR - dt.timedelta(days=1))
    requests = [
        ExtractRequest(spec_for("PurchaseOrderHeadersV2"), window=window, companies=("DEMF",)),
        ExtractRequest(spec_for("VendorInvoiceLines"), window=window, companies=("usmf",)),
    ]
    with Extractor(settings_for(small_sandbox, tmp_path), "run-window") as extractor:
        headers, lines = extractor.extract(requests)
    want = [r for r in truth(small_sandbox, "PurchaseOrderHeadersV2", "demf")
            if window[0] <= r["AccountingDate"] < window[1]]
    assert want and sorted(entity_rows(headers), key=str) == sorted(want, key=str)
    in_window = {r["HeaderReference"] for r in truth(small_sandbox, "VendorInvoiceHeaders", "usmf")
                 if window[0] <= r["InvoiceDate"] < window[1]}
    want_lines = [r for r in truth(small_sandbox, "VendorInvoiceLines", "usmf") if r["HeaderReference"] in in_window]
    assert want_lines and sorted(entity_rows(lines), key=str) == sorted(want_lines, key=str)
    assert {r["HeaderReference"] for r in pq.read_table(lines.parents_path).to_pylist()} == in_window
    # Without a header batch in the call, the lines read just the header keys.
    first = lines.manifest.queries[0]
    assert "/VendorInvoiceHeaders?" in first and "$select=dataAreaId,HeaderReference&" in first


def test_keyed_pull_reads_exactly_the_named_records_and_deletes_nothing(small_sandbox, tmp_path):
    # Real keys carry spaces and quotes.
    lookups = (("USMF", (("VendorAccountNumber", " RFI-TEST-001"),)),
               ("usmf", (("VendorAccountNumber", "O'Brien Supplies"),)),
               ("demf", (("VendorAccountNumber", "DEMF-V00002"),)))
    with Extractor(settings_for(small_sandbox, tmp_path), "run-keys") as extractor:
        (batch,) = extractor.extract([ExtractRequest(spec_for("VendorsV2"), lookups=lookups)])
    got = {(r["dataAreaId"], r["VendorAccountNumber"]) for r in entity_rows(batch)}
    assert got == {("usmf", " RFI-TEST-001"), ("usmf", "O'Brien Supplies"), ("demf", "DEMF-V00002")}
    assert batch.manifest.mode == "keys" and batch.manifest.delete_scopes == []
    assert batch.manifest.companies == ["usmf", "demf"]


def test_metadata_is_cached_and_not_fetched_again_while_fresh(small_sandbox, tmp_path):
    spec = spec_for("MainAccounts")
    settings = settings_for(small_sandbox, tmp_path)
    before = small_sandbox.stats.count("/data/$metadata")
    for run in ("a", "b"):
        with Extractor(settings, run) as extractor:
            extractor.extract([ExtractRequest(spec)])
    assert small_sandbox.stats.count("/data/$metadata") - before == 1
    assert (tmp_path / "metadata").is_dir()


def test_source_counts_match_what_was_read(full_extract, small_sandbox):
    batches = full_extract[0]
    with Extractor(settings_for(small_sandbox, full_extract[3]), "run-count") as extractor:
        gl = spec_for("GeneralJournalAccountEntries")
        assert extractor.count(gl, "demf", EVERYTHING) == len(truth(small_sandbox, gl.entity_set, "demf"))
        window = (ANCHOR - dt.timedelta(days=2), ANCHOR)
        in_window = [r for r in truth(small_sandbox, gl.entity_set, "usmf")
                     if window[0] <= r["AccountingDate"] < window[1]]
        assert extractor.count(gl, "usmf", window) == len(in_window) > 0
        assert extractor.count(spec_for("MainAccounts"), None) == len(truth(small_sandbox, "MainAccounts"))
        lines = spec_for("VendorInvoiceLines")
        counted = extractor.count(lines, "gbsi", None, batches["VendorInvoiceLines"])
        assert counted == len(truth(small_sandbox, lines.entity_set, "gbsi")) > 0


def test_without_a_window_the_full_history_is_read_per_company(small_sandbox, tmp_path):
    requests = [ExtractRequest(spec_for("PurchaseOrderHeadersV2"), companies=("gbsi",)),
                ExtractRequest(spec_for("PurchaseOrderLinesV2"), companies=("gbsi",))]
    with Extractor(settings_for(small_sandbox, tmp_path), "run-history") as extractor:
        headers, lines = extractor.extract(requests)
    for batch, entity_set in ((headers, "PurchaseOrderHeadersV2"), (lines, "PurchaseOrderLinesV2")):
        assert batch.manifest.mode == "snapshot" and batch.manifest.window is None
        assert batch.manifest.delete_scopes == [DeleteScope("company", "gbsi")]
        assert sorted(entity_rows(batch), key=str) == sorted(truth(small_sandbox, entity_set, "gbsi"), key=str)
