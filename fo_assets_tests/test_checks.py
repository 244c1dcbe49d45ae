"""The data checks fail when they should: a lost row, unparseable dimensions, a day read while open."""

import datetime as dt

import dagster as dg
import pyarrow.parquet as pq

from fo_assets import checks
from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.dynamics.extract import Extractor
from fo_assets.landing import Ledger
from fo_assets.settings import load_settings
from fo_assets_tests.conftest import ANCHOR, point_at

GL = STANDARD.spec_for("GeneralJournalAccountEntries")
KEY = dg.AssetKey(GL.asset_key_path)


def _landed_gl(sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, sandbox, tmp_path)
    result = build_definitions().resolve_job_def(ENTITY_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=ANCHOR.isoformat(), asset_selection=[KEY])
    assert result.success
    (batch,) = Ledger(tmp_path).batches()
    return batch


def test_rows_match_source_fails_when_a_row_is_missing(small_sandbox, monkeypatch, tmp_path):
    batch = _landed_gl(small_sandbox, monkeypatch, tmp_path)
    with Extractor(load_settings(), run_id="check") as extractor:
        assert checks._rows_match_source(KEY, extractor, GL, batch).passed
        part = batch.part_paths[0]
        table = pq.read_table(part)
        dropped = table.slice(0, 1).column("DataArea")[0].as_py()
        pq.write_table(table.slice(1), part)  # one row lost between F&O and the landing zone
        result = checks._rows_match_source(KEY, extractor, GL, batch)
    assert not result.passed
    counts = result.metadata["counts"].value
    assert counts[dropped]["source"] == counts[dropped]["read"] + 1
    assert dropped in result.description


def test_dimension_and_window_checks(small_sandbox, monkeypatch, tmp_path):
    batch = _landed_gl(small_sandbox, monkeypatch, tmp_path)
    assert checks._dimensions_parse(KEY, GL, batch).passed
    batch.manifest.stats["unparseable_dimensions"] = batch.manifest.row_count // 10
    assert not checks._dimensions_parse(KEY, GL, batch).passed
    # ANCHOR is long past: the day was read after it closed. A window ending tomorrow is still open.
    assert checks._window_closed(KEY, batch).passed
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    batch.manifest.window = [dt.date.today().isoformat(), tomorrow.isoformat()]
    assert not checks._window_closed(KEY, batch).passed
