"""``Extractor.landing``: each batch is handed over when its own reads are done, while the others go on;
the assets load it then."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.dynamics.extraction import ParentsFirst
from fo_assets.landing import Ledger
from fo_assets.partitions import range_tags
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, point_at, settings_for

VOUCHERS = STANDARD.spec_for("GeneralJournalEntryBiEntities")
LINES = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
WINDOW = (ANCHOR - dt.timedelta(days=9), ANCHOR + dt.timedelta(days=1))
LINE_PATH = f"/data/{LINES.entity_set}"


@pytest.fixture
def slow_sandbox() -> Iterator[Sandbox]:
    """Small pages, each answered after 0.3 s: the lines take several rounds of two requests in flight."""
    with Sandbox(SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES, page_size=50)) as sandbox:
        sandbox.faults.latency(0.3)
        yield sandbox


def _gl(extractor: Extractor) -> Iterator:
    return extractor.landing([ExtractRequest(LINES, window=WINDOW), ExtractRequest(VOUCHERS, window=WINDOW)])


def _read_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("fo-extract", "fo-headers"))]


def test_the_vouchers_are_handed_over_while_their_lines_are_still_read(slow_sandbox, tmp_path):
    with Extractor(settings_for(slow_sandbox, tmp_path, FO_MAX_CONCURRENCY="2"), "run-stream") as extractor:
        started, cpu = time.monotonic(), time.thread_time()
        landings = _gl(extractor)
        first = next(landings)
        waited, cpu = time.monotonic() - started, time.thread_time() - cpu
        # The caller's thread sleeps while the reads run; it does not poll for them.
        assert cpu < waited / 4, (cpu, waited)
        assert (first.request.spec.entity_set, first.batch.manifest.status) == (VOUCHERS.entity_set, "landed")
        # While the caller holds the vouchers (the assets load them now), the lines' requests go on.
        asked = slow_sandbox.stats.count(LINE_PATH)
        deadline = time.monotonic() + 30
        while slow_sandbox.stats.count(LINE_PATH) == asked and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow_sandbox.stats.count(LINE_PATH) > asked
        # Hold on until the lines are read (no new request for 1.5 s), then take them.
        last, quiet_since = slow_sandbox.stats.count(LINE_PATH), time.monotonic()
        while time.monotonic() - quiet_since < 1.5:
            time.sleep(0.05)
            if (now := slow_sandbox.stats.count(LINE_PATH)) != last:
                last, quiet_since = now, time.monotonic()
        (second,) = list(landings)
        wall = time.monotonic() - started
    assert (second.request.spec.entity_set, second.batch.manifest.status) == (LINES.entity_set, "landed")
    assert second.error is None and second.batch.manifest.row_count > 0
    # A batch's seconds end with its reads, not when the caller got round to taking it.
    assert second.batch.manifest.stats["seconds"] < wall - 0.8


def test_a_caller_that_stops_early_still_leaves_every_batch_sealed_for_replay(slow_sandbox, tmp_path):
    with Extractor(settings_for(slow_sandbox, tmp_path, FO_MAX_CONCURRENCY="2"), "run-stopped") as extractor:
        landings = _gl(extractor)
        next(landings)
        landings.close()  # what a failed load of the vouchers does to the asset's loop
    assert not _read_threads()
    # The lines were read to the end and sealed by their own read threads: `fo-assets replay --failed`
    # loads them without asking F&O again.
    (lines,) = [b for b in Ledger(tmp_path).batches() if b.manifest.entity_set == LINES.entity_set]
    assert lines.manifest.status == "landed" and lines.manifest.row_count > 0


def test_the_gl_assets_land_the_vouchers_while_their_lines_are_still_read(monkeypatch, tmp_path):
    config = SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES, page_size=25)
    with Sandbox(config) as sandbox:
        sandbox.faults.latency(0.5)
        point_at(monkeypatch, sandbox, tmp_path, FO_MAX_CONCURRENCY="2")
        instance = dg.DagsterInstance.ephemeral()
        result = build_definitions().resolve_job_def(ENTITY_JOB).execute_in_process(
            instance=instance, tags=range_tags(WINDOW[0], WINDOW[1] - dt.timedelta(days=1)),
            asset_selection=[dg.AssetKey(spec.asset_key_path) for spec in (VOUCHERS, LINES)])
    assert result.success
    vouchers_landed = min(
        entry.timestamp for entry in instance.all_logs(result.run_id)
        if entry.dagster_event and entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        and entry.dagster_event.asset_key == dg.AssetKey(VOUCHERS.asset_key_path))
    (lines,) = [b.manifest for b in Ledger(tmp_path).batches() if b.manifest.entity_set == LINES.entity_set]
    lines_read = dt.datetime.fromisoformat(lines.created_at).timestamp() + lines.stats["seconds"]
    # Loaded, materialized and checked while their lines were still being read, not after.
    assert vouchers_landed < lines_read - 0.5, (vouchers_landed, lines_read)


def test_an_entity_is_handed_over_after_its_parent_entity_of_the_same_call():
    # Dagster refuses a multi-asset's output yielded before the output of an asset it depends on.
    order: ParentsFirst[str] = ParentsFirst([LINES, VOUCHERS, STANDARD.spec_for("VendorsV2")])
    assert order.add(0, "lines") == []  # read first, held for their vouchers
    assert order.add(2, "vendors") == ["vendors"]
    assert order.add(1, "vouchers") == ["vouchers", "lines"]
    # Lines whose header is not read in the same call go at once.
    assert ParentsFirst([LINES]).add(0, "lines") == ["lines"]
