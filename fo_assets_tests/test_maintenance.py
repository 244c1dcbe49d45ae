"""Table maintenance: compaction keeps the rows, and the landing zone keeps only what retention allows."""

import datetime as dt
import json

import dagster as dg
from deltalake import DeltaTable

from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.landing import Ledger
from fo_assets.settings import load_settings
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.support.tenant import ANCHOR, point_at


def test_maintenance_compacts_tables_and_prunes_old_loaded_batches(small_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, small_sandbox, tmp_path, FO_LANDING_RETENTION_DAYS="1")
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def(ENTITY_JOB)
    selection = [dg.AssetKey(STANDARD.spec_for("GeneralJournalEntryBiEntities").asset_key_path)]
    for day in (ANCHOR - dt.timedelta(days=1), ANCHOR):  # two loads: two files to compact
        assert job.execute_in_process(instance=instance, partition_key=day.isoformat(), asset_selection=selection).success
    ledger = Ledger(tmp_path)
    old, new = ledger.batches()
    manifest = json.loads((old.folder / "manifest.json").read_text())
    manifest["created_at"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)).isoformat()
    (old.folder / "manifest.json").write_text(json.dumps(manifest))
    sink = LocalDeltaSink(tmp_path / "delta")
    gl = STANDARD.spec_for("GeneralJournalEntryBiEntities")
    before = sorted((r["JournalNumber"], r["Ledger"]) for r in sink.read(gl).to_pylist())
    files = lambda: len(DeltaTable(str(tmp_path / "delta" / gl.table)).file_uris())  # noqa: E731
    assert files() >= 2

    assert defs.resolve_job_def("fo_table_maintenance").execute_in_process(instance=instance).success

    assert [b.batch_id for b in ledger.batches()] == [new.batch_id]
    assert sorted((r["JournalNumber"], r["Ledger"]) for r in sink.read(gl).to_pylist()) == before
    assert files() == 1


def test_maintenance_runs_in_the_pool_of_the_entity_loads(small_sandbox, monkeypatch, tmp_path):
    """OPTIMIZE and VACUUM wait for the environment's loads (and loads for them): one pool, as a Delta
    write conflict is not worth having (docs/databricks.md, "Concurrent writes")."""
    point_at(monkeypatch, small_sandbox, tmp_path)
    defs = build_definitions()
    entity_pools = {op.pool for op in defs.resolve_job_def(ENTITY_JOB).graph.node_defs}
    maintenance_pools = {op.pool for op in defs.resolve_job_def("fo_table_maintenance").graph.node_defs}

    assert entity_pools == maintenance_pools == {load_settings().pool}
