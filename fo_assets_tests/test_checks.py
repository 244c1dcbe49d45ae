"""The data checks tell each day's truth: a read that lost a row, a day read while open, bad dimensions;
and a range run records each day's own count and checks, the table's check once."""

import datetime as dt
import threading
import time

import dagster as dg

from fo_assets import checks
from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.landing import Ledger
from fo_assets.partitions import range_tags
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, point_at, settings_for
from fo_assets_tests.support.truth import truth

VOUCHERS = STANDARD.spec_for("GeneralJournalEntryBiEntities")
KEY = dg.AssetKey(VOUCHERS.asset_key_path)
WINDOW = (ANCHOR - dt.timedelta(days=9), ANCHOR + dt.timedelta(days=1))


def test_a_row_deleted_behind_the_offset_makes_the_read_incomplete_and_flags_nothing(tmp_path):
    config = SandboxConfig(scale=0.2, days=10, anchor_date=ANCHOR, companies=COMPANIES, page_size=10)
    with Sandbox(config) as sandbox:
        sandbox.faults.latency(0.2)  # room to change a row between the pages
        first = min(truth(sandbox, VOUCHERS.entity_set, "usmf"),
                    key=lambda r: (r["JournalNumber"], r["FiscalCalendarYear"], r["Ledger"]))

        def delete_after_the_first_page() -> None:
            # The first page carries F&O's count of the read ($count=true): the row goes after it.
            deadline = time.monotonic() + 30
            while sandbox.stats.count(f"/data/{VOUCHERS.entity_set}", 200) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            sandbox.changes.delete(VOUCHERS.entity_set, {k: first[k] for k in VOUCHERS.keys})

        deleter = threading.Thread(target=delete_after_the_first_page)
        deleter.start()
        # One request at a time: the window is one query paged by offset (not sub-windows read at once, one
        # of which could have finished before the deletion).
        settings = settings_for(sandbox, tmp_path, FO_LEGAL_ENTITIES="usmf", FO_MAX_CONCURRENCY="1")
        with Extractor(settings, "run-lost") as extractor:
            (batch,) = extractor.extract([ExtractRequest(VOUCHERS, window=WINDOW)])
        deleter.join()
    # The deletion shifted the offsets: a row of a later page was skipped, and F&O counted one more than came.
    reads = batch.manifest.reads["usmf"]
    assert not reads["complete"] and reads["incomplete"][0]["source"] == reads["incomplete"][0]["read"] + 1
    assert batch.manifest.delete_scopes == [], "an incomplete read must not flag the skipped row deleted"
    passed, metadata, description = checks._rows_match_source(batch, ANCHOR.isoformat())
    assert not passed and "usmf" in description and metadata["incomplete"].value["usmf"]


def test_each_day_says_whether_it_was_read_after_it_closed(small_sandbox, tmp_path):
    today = dt.datetime.now(dt.timezone.utc).date()
    with Extractor(settings_for(small_sandbox, tmp_path), "run-open") as extractor:
        (batch,) = extractor.extract([ExtractRequest(VOUCHERS, window=(today - dt.timedelta(days=1),
                                                                       today + dt.timedelta(days=1)))])
    assert checks._window_closed(batch, (today - dt.timedelta(days=1)).isoformat())[0]
    closed, metadata, description = checks._window_closed(batch, today.isoformat())
    assert not closed and "before the day ended" in description
    assert checks._rows_match_source(batch, today.isoformat())[0]


def test_dimension_check_fails_past_its_share(small_sandbox, tmp_path):
    lines = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
    with Extractor(settings_for(small_sandbox, tmp_path), "run-dims") as extractor:
        (batch,) = extractor.extract([ExtractRequest(lines, window=WINDOW)])
    key = dg.AssetKey(lines.asset_key_path)
    assert checks._dimensions_parse(key, lines, batch).passed
    batch.manifest.stats["unparseable_dimensions"] = batch.manifest.row_count // 10
    assert not checks._dimensions_parse(key, lines, batch).passed


def test_a_range_run_records_each_days_count_and_checks_and_the_table_check_once(small_sandbox, monkeypatch,
                                                                                    tmp_path):
    point_at(monkeypatch, small_sandbox, tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    first, last = ANCHOR - dt.timedelta(days=2), ANCHOR
    result = build_definitions().resolve_job_def(ENTITY_JOB).execute_in_process(
        instance=instance, tags=range_tags(first, last), asset_selection=[KEY])
    assert result.success
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range(3)]
    want = {day: 0 for day in days}
    for company in COMPANIES:
        for row in truth(small_sandbox, VOUCHERS.entity_set, company):
            if row["AccountingDate"].isoformat() in want:
                want[row["AccountingDate"].isoformat()] += 1
    assert len(set(want.values())) > 1, "the days must differ in size for the test to mean something"
    materialized = {m.partition: m.metadata for m in
                    (e.step_materialization_data.materialization for e in result.get_asset_materialization_events())}
    assert {day: md["dagster/partition_row_count"].value for day, md in materialized.items()} == want
    # The columns once per run, on the last day; the table's row count after the load on every day.
    assert [day for day, md in materialized.items() if "dagster/column_schema" in md] == [days[-1]]
    assert {md["dagster/row_count"].value for md in materialized.values()} == {sum(want.values())}
    (batch,) = Ledger(tmp_path).batches()
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    by_check: dict[str, list] = {}
    for evaluation in evaluations:
        by_check.setdefault(evaluation.check_name, []).append(evaluation.partition)
    assert sorted(by_check[checks.ROWS_MATCH_SOURCE]) == days and sorted(by_check[checks.WINDOW_CLOSED]) == days
    assert by_check[checks.KEYS_UNIQUE] == [None] and by_check[checks.SCHEMA_DRIFT] == [None]
    assert batch.manifest.rows_by_day == {day: n for day, n in want.items() if n}
