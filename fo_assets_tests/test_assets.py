"""The entity assets end to end: Dagster runs against the sandbox into local Delta tables."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import dagster as dg
import pytest

from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.landing import Ledger
from fo_assets.partitions import range_tags
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.conftest import ANCHOR, point_at


def _live(table) -> list[dict]:
    return [row for row in table.to_pylist() if not row["_fo_deleted"]]


def _in_window(value: str, first: dt.date, last: dt.date) -> bool:
    return first <= dt.date.fromisoformat(value[:10]) <= last


def test_asset_factory_matches_the_catalog(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    defs = build_definitions()
    entities = defs.get_assets_def(dg.AssetKey(["fo", "vendors_v2"]))
    assert entities.keys == {dg.AssetKey(spec.asset_key_path) for spec in STANDARD}
    assert entities.can_subset
    assert entities.backfill_policy == dg.BackfillPolicy.single_run()
    assert isinstance(entities.partitions_def, dg.DailyPartitionsDefinition)
    assert entities.partitions_def.start.date() == dt.date(2026, 1, 1)
    assert entities.op.pool == "fo_unconfigured"
    for spec in STANDARD:
        key = dg.AssetKey(spec.asset_key_path)
        assert entities.group_names_by_key[key] == spec.group
        assert entities.specs_by_key[key].kinds == {"dynamics365", "databricks", "delta"}
        assert entities.specs_by_key[key].freshness_policy is not None
        metadata = entities.metadata_by_key[key]
        assert metadata["fo/entity_set"] == spec.entity_set
        assert metadata["fo/key_columns"] == ", ".join(spec.key_columns)
        checks = {c.name for c in entities.check_specs if c.asset_key == key}
        assert {"keys_unique", "rows_match_source", "schema_drift", "window_closed"} <= checks
        assert ("dimensions_parse" in checks) == bool(spec.dimensions)
    lines = dg.AssetKey(["fo", "purchase_order_lines_v2"])
    assert entities.asset_deps[lines] == {dg.AssetKey(["fo", "purchase_order_headers_v2"])}


def test_multi_day_backfill_is_one_run_that_lands_exactly_the_source(small_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, small_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    first, last = ANCHOR - dt.timedelta(days=2), ANCHOR
    result = defs.resolve_job_def(ENTITY_JOB).execute_in_process(instance=instance, tags=range_tags(first, last))
    assert result.success

    assert len(instance.get_runs()) == 1
    sink = LocalDeltaSink(tmp_path / "delta")
    tenant = small_sandbox.tenant
    for spec in STANDARD:
        rows = _live(sink.read(spec))
        got = Counter(tuple(r[k] for k in spec.key_columns) for r in rows)
        if spec.window_field:
            source = [r for r in tenant.rows(spec.entity_set) if _in_window(r[spec.window_field], first, last)]
        elif spec.parent:
            parent = STANDARD.spec_for(spec.parent)
            headers = {tuple(r[k] for k in (parent.company_field, *spec.parent_keys))
                       for r in tenant.rows(parent.entity_set) if _in_window(r[parent.window_field], first, last)}
            source = [r for r in tenant.rows(spec.entity_set)
                      if tuple(r[k] for k in (spec.company_field, *spec.parent_keys)) in headers]
        else:
            source = tenant.rows(spec.entity_set)
        # Equal Decimals hash alike (1 == 1.000000), so the counters compare values, not spellings.
        expected = Counter(tuple(r[k] for k in spec.key_columns) for r in source)
        assert got == expected, spec.entity_set
        assert set(got.values()) == {1}, f"{spec.entity_set} has duplicate keys"

    # Exact values: amounts as decimals, dates as dates.
    gl = STANDARD.spec_for("GeneralJournalAccountEntries")
    landed = {r["GeneralJournalAccountEntryRecId"]: r for r in _live(sink.read(gl))}
    for source_row in tenant.rows(gl.entity_set)[:50]:
        row = landed.get(source_row["GeneralJournalAccountEntryRecId"])
        if row is None:
            continue
        assert row["AccountingCurrencyAmount"] == Decimal(str(source_row["AccountingCurrencyAmount"]))
        assert row["AccountingDate"] == dt.date.fromisoformat(source_row["AccountingDate"][:10])

    # Every day of the range is materialized for every entity, and every check ran and passed.
    days = {(first + dt.timedelta(days=i)).isoformat() for i in range(3)}
    for spec in STANDARD:
        assert instance.get_materialized_partitions(dg.AssetKey(spec.asset_key_path)) == days
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert not failed
    assert {e.check_name for e in evaluations} >= {"keys_unique", "rows_match_source", "schema_drift"}

    # One batch per entity, loaded; each windowed read is one scan of the range per company.
    batches = Ledger(tmp_path).batches()
    assert sorted(b.manifest.table for b in batches) == sorted(s.table for s in STANDARD)
    assert {b.manifest.status for b in batches} == {"loaded"}
    gl_batch = next(b for b in batches if b.manifest.table == gl.table)
    assert gl_batch.manifest.window == [first.isoformat(), (last + dt.timedelta(days=1)).isoformat()]
    assert set(gl_batch.manifest.rows_by_company) == {"usmf", "demf", "gbsi"}


def test_rerunning_a_partition_upserts_and_flags_deletes(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def(ENTITY_JOB)
    vendors = STANDARD.spec_for("VendorsV2")
    selection = [dg.AssetKey(vendors.asset_key_path)]
    assert job.execute_in_process(instance=instance, partition_key=ANCHOR.isoformat(),
                                  asset_selection=selection).success
    doomed, changed = fresh_sandbox.tenant.rows("VendorsV2", "demf")[:2]
    fresh_sandbox.changes.delete("VendorsV2", {"dataAreaId": "demf", "VendorAccountNumber": doomed["VendorAccountNumber"]})
    fresh_sandbox.changes.update("VendorsV2", {"dataAreaId": "demf", "VendorAccountNumber": changed["VendorAccountNumber"]},
                                 {"VendorGroupId": "CHANGED"})
    result = job.execute_in_process(instance=instance, partition_key=ANCHOR.isoformat(), asset_selection=selection)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert metadata["fo/deleted"].value == 1 and metadata["fo/updated"].value == 1
    assert metadata["fo/inserted"].value == 0
    rows = {(r["dataAreaId"], r["VendorAccountNumber"]): r for r in LocalDeltaSink(tmp_path / "delta").read(vendors).to_pylist()}
    assert rows[("demf", doomed["VendorAccountNumber"])]["_fo_deleted"] is True
    assert rows[("demf", changed["VendorAccountNumber"])]["VendorGroupId"] == "CHANGED"
    assert len(rows) == len(fresh_sandbox.tenant.rows("VendorsV2")) + 1


def test_a_failed_read_fails_the_run_and_loads_nothing(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path, FO_DEADLINE="3")
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    fresh_sandbox.faults.unavailable(10_000)  # every request fails until the deadline
    with pytest.raises(Exception):
        defs.resolve_job_def(ENTITY_JOB).execute_in_process(
            instance=instance, partition_key=ANCHOR.isoformat(),
            asset_selection=[dg.AssetKey(["fo", "main_accounts"])],
        )
    batches = Ledger(tmp_path).batches()
    assert [b.manifest.status for b in batches] in ([], ["incomplete"])
    assert not (tmp_path / "delta" / "main_accounts").exists()


def test_a_key_prefix_keeps_a_locations_assets_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_ASSET_KEY_PREFIX", "contoso")
    defs = build_definitions()
    entities = defs.get_assets_def(dg.AssetKey(["contoso", "fo", "vendors_v2"]))
    assert entities.keys == {dg.AssetKey(["contoso", *spec.asset_key_path]) for spec in STANDARD}
    assert {c.asset_key for c in entities.check_specs} == entities.keys
    lines = dg.AssetKey(["contoso", "fo", "purchase_order_lines_v2"])
    assert entities.asset_deps[lines] == {dg.AssetKey(["contoso", "fo", "purchase_order_headers_v2"])}
    model = defs.get_assets_def(dg.AssetKey(["contoso", "fo_model", "trial_balance"]))
    assert model.asset_deps[dg.AssetKey(["contoso", "fo_model", "trial_balance"])] == {
        dg.AssetKey(["contoso", "fo", "general_journal_account_entries"]), dg.AssetKey(["contoso", "fo", "main_accounts"])}
