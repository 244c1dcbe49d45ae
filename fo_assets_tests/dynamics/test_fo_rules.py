"""What a real F&O does that a naive OData client gets wrong, each shown twice: the sandbox bites a naive
read, and the connector's read of the same tenant lands exactly (docs/fo-odata.md; RELIABILITY.md).

Offset paging without a stable order, the filter node limit, X++ Date bounds, a row deleted while a read
pages, tokens that expire during throttle pauses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Iterator

import pytest

from fo_assets.catalog import STANDARD
from fo_assets.dynamics import query
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.dynamics.odata import RetryPolicy
from fo_assets.dynamics.schema import FieldInfo
from fo_assets.landing import Ledger
from fo_assets.loading import upsert_batch
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, settings_for
from fo_assets_tests.support.truth import by_key, entity_rows, truth
from fo_assets_tests.reliability.stack import local_rows, when
from fo_assets_tests.sandbox.conftest import client_for, read_all, token_for

VOUCHERS = STANDARD.spec_for("GeneralJournalEntryBiEntities")
GL_LINES = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
VENDORS = STANDARD.spec_for("VendorsV2")
EVERYTHING = (ANCHOR - dt.timedelta(days=90), ANCHOR + dt.timedelta(days=1))


@pytest.fixture
def paged() -> Iterator[Sandbox]:
    """Ten-row server pages: every read pages by offset many times."""
    with Sandbox(SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES, page_size=10)) as sandbox:
        yield sandbox


def _want(sandbox: Sandbox, spec, companies=COMPANIES) -> dict[tuple, dict]:
    left_out = spec.excluded_fields + spec.personal_fields
    want: dict[tuple, dict] = {}
    for company in companies:
        want.update(by_key(truth(sandbox, spec.entity_set, company, left_out), spec.key_columns))
    return want


def test_paged_reads_land_every_row_once_where_an_unordered_read_loses_rows(paged, tmp_path):
    assert paged.cfg.unstable_order
    with client_for(paged, token_for(paged)) as client:
        naive, links = read_all(client, f"/data/{GL_LINES.entity_set}", {"cross-company": "true"})
    every = {r["SourceKey"] for r in paged.tenant.rows(GL_LINES.entity_set)}
    naive_keys = [r["SourceKey"] for r in naive]
    # The sandbox pages by $skip in an order that changes per request, as SQL Server may without ORDER BY.
    assert links and len(naive_keys) == len(every) and set(naive_keys) < every

    client_paged = dataclasses.replace(VENDORS, page_size=3)  # $top/$skip paging by the client
    with Extractor(settings_for(paged, tmp_path), "run-paging") as extractor:
        batches = extractor.extract([ExtractRequest(VOUCHERS, window=EVERYTHING),
                                     ExtractRequest(GL_LINES, window=EVERYTHING), ExtractRequest(client_paged)])
    for spec, batch in zip((VOUCHERS, GL_LINES, VENDORS), batches):
        assert batch.manifest.stats["pages"] > 2 * len(COMPANIES), spec.entity_set  # really paged
        assert by_key(entity_rows(batch), spec.key_columns) == _want(paged, spec), spec.entity_set
        # Complete by F&O's own count: the proof deletes depend on.
        assert all(r["complete"] and r["counted_queries"] for r in batch.manifest.reads.values())


def test_key_reads_stay_within_the_filter_node_limit_the_sandbox_enforces(fresh_sandbox, tmp_path):
    accounts = [f"NODE-{i:03d}" for i in range(35)]
    for account in accounts:
        fresh_sandbox.changes.insert(VENDORS.entity_set, {"dataAreaId": "usmf", "VendorAccountNumber": account})
    field = FieldInfo("VendorAccountNumber", "Edm.String", "string")
    groups = [[(field, account)] for account in accounts]
    # Bounded by characters only (as the connector once was), 35 key terms fit one URL: F&O refuses it.
    (by_length,) = query.key_chunks(groups, max_nodes=10**6)
    with client_for(fresh_sandbox, token_for(fresh_sandbox)) as client:
        refused = client.get(f"/data/{VENDORS.entity_set}", params={
            "$filter": query.and_all(query.company_filter("dataAreaId", "usmf"), by_length), "cross-company": "true"})
    assert refused.status_code == 400 and "node count limit of '100' has been exceeded" in refused.text

    lookups = tuple(("usmf", (("VendorAccountNumber", account),)) for account in accounts)
    with Extractor(settings_for(fresh_sandbox, tmp_path), "run-nodes") as extractor:
        (batch,) = extractor.extract([ExtractRequest(VENDORS, lookups=lookups)])
    assert sorted(r["VendorAccountNumber"] for r in entity_rows(batch)) == accounts
    assert batch.manifest.stats["queries"] >= 3  # split by the node budget, not by length
    assert fresh_sandbox.stats.count("/data/", 400) == 1  # only the naive request above was refused


def test_one_day_windows_read_exactly_their_day_whatever_zone_f_and_o_converts_in(small_sandbox, tmp_path):
    # A DateTimeOffset literal is compared with an X++ Date in UTC-08:00 here: midnight-UTC bounds would
    # select the day before. Noon bounds select the day in any zone within 12 hours of UTC.
    assert small_sandbox.cfg.date_filter_utc_offset == "-08:00"
    days = [ANCHOR - dt.timedelta(days=n) for n in (3, 2, 1)]
    with Extractor(settings_for(small_sandbox, tmp_path), "run-days") as extractor:
        batches = extractor.extract([ExtractRequest(VOUCHERS, window=(day, day + dt.timedelta(days=1)))
                                     for day in days])
    everything = _want(small_sandbox, VOUCHERS)
    for day, batch in zip(days, batches):
        on_day = {key: row for key, row in everything.items() if row["AccountingDate"] == day}
        assert on_day and by_key(entity_rows(batch), VOUCHERS.key_columns) == on_day, day
        assert batch.manifest.rows_by_day == {day.isoformat(): len(on_day)}


def test_a_row_deleted_while_a_read_pages_flags_no_delete_until_a_read_is_complete(fresh_sandbox, tmp_path):
    sb = fresh_sandbox
    for i in range(20):
        sb.changes.insert(VENDORS.entity_set, {"dataAreaId": "usmf", "VendorAccountNumber": f"PAGE-{i:03d}"})
    spec = dataclasses.replace(VENDORS, page_size=5)
    home, sink = tmp_path / "home", LocalDeltaSink(tmp_path / "home" / "delta")
    settings = settings_for(sb, home)

    def read_and_load(run: str):
        with Extractor(settings, run) as extractor:
            (batch,) = extractor.extract([ExtractRequest(spec, companies=("usmf",))])
        upsert_batch(sink, Ledger(home), batch, spec)
        return batch, {r["VendorAccountNumber"]: r["_fo_deleted"] for r in local_rows(home / "delta", spec)}

    _, landed = read_and_load("run-1")
    first = min(landed)  # the first row of the first page, in key order
    assert len(landed) > 3 * spec.page_size and not any(landed.values())

    # Deleted once the first page is served: every later offset shifts by one and a row is skipped.
    sb.faults.latency(0.3)
    served = sb.stats.count("/data/VendorsV2", 200)
    delete = when(lambda: sb.stats.count("/data/VendorsV2", 200) > served,
                  lambda: sb.changes.delete(VENDORS.entity_set, {"dataAreaId": "usmf", "VendorAccountNumber": first}))
    batch, after = read_and_load("run-2")
    delete.join(5)
    sb.faults.latency(0)

    read = batch.manifest.reads["usmf"]
    assert not read["complete"] and read["distinct"] < read["incomplete"][0]["source"]
    assert batch.manifest.delete_scopes == []
    assert not any(after.values()), "nothing is flagged deleted from a read that skipped a row"

    _, last = read_and_load("run-3")
    assert [account for account, deleted in last.items() if deleted] == [first]


def test_tokens_that_expire_during_long_throttle_pauses_land_every_entity_exactly(tmp_path):
    # Tokens live 2 s; every 429 without Retry-After pauses all requests 2.5 s: a token taken before the
    # pause is dead when the request goes out, and a 401 for it is expiry, not a refusal.
    config = SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES, page_size=10,
                           token_lifetime_s=2)
    windowed = (VOUCHERS, GL_LINES, STANDARD.spec_for("PurchaseOrderHeadersV2"),
                STANDARD.spec_for("PurchaseOrderLinesV2"))
    snapshot = dataclasses.replace(VENDORS, page_size=4)
    requests = [ExtractRequest(spec, window=EVERYTHING) for spec in windowed] + [ExtractRequest(snapshot)]
    policy = RetryPolicy(backoff_base_s=0.05, default_retry_after_s=2.5)
    with Sandbox(config) as sb:
        with Extractor(settings_for(sb, tmp_path), "run-warm", policy=policy) as extractor:
            extractor.extract([ExtractRequest(VENDORS)])  # the metadata cached: the faults hit data pages
        issued = sb.stats.tokens_issued
        sb.faults.throttle(n=6, retry_after=None)
        started = time.monotonic()
        with Extractor(settings_for(sb, tmp_path), "run-tokens", policy=policy) as extractor:
            batches = extractor.extract(requests)
        assert time.monotonic() - started >= 2 * 2.5  # the pauses outlived several tokens
        assert sb.stats.throttled == 6 and sb.stats.tokens_issued >= issued + 2
        for spec, batch in zip((*windowed, snapshot), batches):
            assert batch.manifest.status == "landed", spec.entity_set
            assert by_key(entity_rows(batch), spec.key_columns) == _want(sb, spec), spec.entity_set
        assert sum(b.manifest.stats["pages"] for b in batches) > 40
