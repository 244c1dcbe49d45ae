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
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, point_at
from fo_assets_tests.support.truth import truth

BY_DAY = [spec for spec in STANDARD if STANDARD.mode_of(spec) != "snapshot"]
WHOLE = [spec for spec in STANDARD if STANDARD.mode_of(spec) == "snapshot"]


def _live(table) -> list[dict]:
    return [row for row in table.to_pylist() if not row["_fo_deleted"]]


def _key(spec, row) -> tuple:
    return tuple(row[k].lower() if k == spec.company_field else row[k] for k in spec.key_columns)


def test_backfill_chunk_days_zero_makes_a_range_one_run_the_cli_accepts(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_BACKFILL_CHUNK_DAYS", "0")
    by_day = build_definitions().get_assets_def(dg.AssetKey(["fo", "general_journal_entry_bi_entities"]))
    # `dagster asset materialize --partition-range` refuses any other policy.
    assert by_day.backfill_policy == dg.BackfillPolicy.single_run()


def test_asset_factory_matches_the_catalog(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    defs = build_definitions()
    by_day = defs.get_assets_def(dg.AssetKey(["fo", "general_journal_entry_bi_entities"]))
    whole = defs.get_assets_def(dg.AssetKey(["fo", "vendors_v2"]))
    assert by_day.keys == {dg.AssetKey(spec.asset_key_path) for spec in BY_DAY}
    assert whole.keys == {dg.AssetKey(spec.asset_key_path) for spec in WHOLE}
    assert by_day.can_subset and whole.can_subset
    # A backfill is a run per month: one scan per company and month, a failure costs a month.
    assert by_day.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=31)
    assert isinstance(by_day.partitions_def, dg.DailyPartitionsDefinition)
    assert by_day.partitions_def.start.date() == dt.date(2026, 1, 1)
    assert whole.partitions_def is None  # read whole every day: not a day's data
    assert by_day.op.pool == whole.op.pool == "fo_unconfigured"
    for assets, specs in ((by_day, BY_DAY), (whole, WHOLE)):
        for spec in specs:
            key = dg.AssetKey(spec.asset_key_path)
            assert assets.group_names_by_key[key] == spec.group
            assert assets.specs_by_key[key].kinds == {"dynamics365", "databricks", "delta"}
            assert assets.specs_by_key[key].freshness_policy is not None
            metadata = assets.metadata_by_key[key]
            assert metadata["fo/entity_set"] == spec.entity_set
            assert metadata["fo/key_columns"] == ", ".join(spec.key_columns)
            checks = {c.name: c for c in assets.check_specs if c.asset_key == key}
            assert {"keys_unique", "rows_match_source", "schema_drift", "window_closed"} <= set(checks)
            assert ("dimensions_parse" in checks) == bool(spec.dimensions)
            assert checks["keys_unique"].blocking and checks["keys_unique"].partitions_def is None
            assert checks["rows_match_source"].partitions_def == assets.partitions_def
    assert by_day.asset_deps[dg.AssetKey(["fo", "purchase_order_lines_v2"])] == {
        dg.AssetKey(["fo", "purchase_order_headers_v2"])}
    assert whole.asset_deps[dg.AssetKey(["fo", "vendor_invoice_lines"])] == {
        dg.AssetKey(["fo", "vendor_invoice_headers"])}


def test_multi_day_run_lands_exactly_the_source(small_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, small_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    first, last = ANCHOR - dt.timedelta(days=2), ANCHOR
    result = defs.resolve_job_def(ENTITY_JOB).execute_in_process(instance=instance, tags=range_tags(first, last))
    assert result.success
    assert len(instance.get_runs()) == 1

    sink = LocalDeltaSink(tmp_path / "delta")
    window = (first, last + dt.timedelta(days=1))
    with_lines = {
        # The lines of the headers read: their keys, by join fields.
        "GeneralJournalAccountEntryBiEntities": "GeneralJournalEntryBiEntities",
        "PurchaseOrderLinesV2": "PurchaseOrderHeadersV2",
    }
    landed_keys: dict[str, set] = {}
    for spec in STANDARD:
        rows = _live(sink.read(spec))
        got = Counter(_key(spec, r) for r in rows)
        assert set(got.values()) == {1}, f"{spec.entity_set} has duplicate keys"
        landed_keys[spec.entity_set] = set(got)
        source = [r for c in ((None,) if spec.company_field is None else COMPANIES) for r in truth(small_sandbox, spec.entity_set, c)]
        if spec.entity_set in with_lines:
            header = STANDARD.spec_for(with_lines[spec.entity_set])
            headers = landed_keys[header.entity_set]
            join = dict(spec.parent.join)
            header_rows = {_key(header, r): r for c in COMPANIES for r in truth(small_sandbox, header.entity_set, c)}
            wanted = {tuple(r[join.get(k, k)] for k in (line for line, _ in spec.parent.join))
                      for key, r in header_rows.items() if key in headers}
            source = [r for r in source if tuple(r[k] for k, _ in spec.parent.join) in wanted]
        elif spec.window_field:
            source = [r for r in source if window[0] <= r[spec.window_field] < window[1]
                      or (spec.changed_field and window[0] <= r[spec.changed_field].date() < window[1])
                      or (spec.open_states and r[spec.open_states.field] not in spec.open_states.finished)]
        # Equal Decimals hash alike (1 == 1.000000), so the counters compare values, not spellings.
        assert got == Counter(_key(spec, r) for r in source), spec.entity_set

    # Exact values: amounts as decimals, dates as dates, the voucher's company and date on every line.
    lines = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
    landed = {r["SourceKey"]: r for r in _live(sink.read(lines))}
    for source_row in truth(small_sandbox, lines.entity_set, "usmf"):
        row = landed.get(source_row["SourceKey"])
        if row is not None:
            assert row["AccountingCurrencyAmount"] == Decimal(str(source_row["AccountingCurrencyAmount"]))
            assert (row["dataAreaId"], row["AccountingDate"]) == ("usmf", source_row["AccountingDate"])

    # Every day of the range is materialized for every entity read by day; each entity read whole once.
    days = {(first + dt.timedelta(days=i)).isoformat() for i in range(3)}
    for spec in BY_DAY:
        assert instance.get_materialized_partitions(dg.AssetKey(spec.asset_key_path)) == days
    for spec in WHOLE:
        assert instance.get_latest_materialization_event(dg.AssetKey(spec.asset_key_path)) is not None
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert not failed

    # The run's log says what each entity landed, not a line per request: each would be an event-log write.
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(": landed, " in m for m in messages)
    assert not [m for m in messages if m.startswith("GET ")]

    batches = Ledger(tmp_path).batches()
    assert sorted(b.manifest.table for b in batches) == sorted(s.table for s in STANDARD)
    assert {b.manifest.status for b in batches} == {"loaded"}


def test_rerunning_upserts_and_flags_deletes(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    vendors = STANDARD.spec_for("VendorsV2")
    materialize = lambda: dg.materialize(  # noqa: E731
        [defs.get_assets_def(dg.AssetKey(vendors.asset_key_path))], instance=instance, resources=defs.resources,
        selection=[dg.AssetKey(vendors.asset_key_path)])
    assert materialize().success
    doomed, changed = fresh_sandbox.tenant.rows("VendorsV2", "demf")[:2]
    fresh_sandbox.changes.delete("VendorsV2", {"dataAreaId": "demf", "VendorAccountNumber": doomed["VendorAccountNumber"]})
    fresh_sandbox.changes.update("VendorsV2", {"dataAreaId": "demf", "VendorAccountNumber": changed["VendorAccountNumber"]},
                                 {"VendorGroupId": "CHANGED"})
    result = materialize()
    assert result.success
    metadata = result.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    assert metadata["fo/deleted"].value == 1 and metadata["fo/updated"].value == 1
    assert metadata["fo/inserted"].value == 0
    rows = {(r["dataAreaId"], r["VendorAccountNumber"]): r for r in LocalDeltaSink(tmp_path / "delta").read(vendors).to_pylist()}
    assert rows[("demf", doomed["VendorAccountNumber"])]["_fo_deleted"] is True
    assert rows[("demf", changed["VendorAccountNumber"])]["VendorGroupId"] == "CHANGED"
    assert len(rows) == len(fresh_sandbox.tenant.rows("VendorsV2")) + 1
    assert metadata["dagster/row_count"].value == len(rows)


def test_a_status_change_of_an_old_open_order_lands_the_next_day(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path)
    job = build_definitions().resolve_job_def(ENTITY_JOB)
    instance = dg.DagsterInstance.ephemeral()
    orders = STANDARD.spec_for("PurchaseOrderHeadersV2")
    day = [dg.AssetKey(orders.asset_key_path)]
    old = next(r for r in truth(fresh_sandbox, orders.entity_set, "usmf")
               if r["PurchaseOrderStatus"] == "Backorder" and r["AccountingDate"] < ANCHOR - dt.timedelta(days=8))
    assert job.execute_in_process(instance=instance, partition_key=ANCHOR.isoformat(), asset_selection=day).success
    key = {"dataAreaId": "usmf", "PurchaseOrderNumber": old["PurchaseOrderNumber"]}
    fresh_sandbox.changes.update(orders.entity_set, key, {"PurchaseOrderStatus": "Received",
                                                           "DocumentApprovalStatus": "Confirmed"})
    next_day = (ANCHOR + dt.timedelta(days=1)).isoformat()
    assert job.execute_in_process(instance=instance, partition_key=next_day, asset_selection=day).success
    (row,) = [r for r in _live(LocalDeltaSink(tmp_path / "delta").read(orders))
              if r["PurchaseOrderNumber"] == old["PurchaseOrderNumber"]]
    assert (row["PurchaseOrderStatus"], row["DocumentApprovalStatus"]) == ("Received", "Confirmed")


def test_one_entity_the_tenant_lacks_fails_alone_and_the_others_land(small_sandbox, monkeypatch, tmp_path):
    catalog = tmp_path / "entities.toml"
    catalog.write_text('[[entities]]\nentity_set = "ContosoProjectBudgets"\n'
                       'keys = ["dataAreaId", "ProjectId", "BudgetLineId"]\ndescription = "not in this tenant"\n')
    point_at(monkeypatch, small_sandbox, tmp_path / "home", FO_CATALOG_FILE=str(catalog))
    defs = build_definitions()
    result = dg.materialize(
        [defs.get_assets_def(dg.AssetKey(["fo", "vendors_v2"]))], instance=dg.DagsterInstance.ephemeral(),
        resources=defs.resources, raise_on_error=False)
    assert not result.success  # the run fails, so it is retried
    landed = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert landed == {spec.table for spec in WHOLE}  # every other entity of the run landed
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "'ContosoProjectBudgets' is not in the tenant's metadata" in str(failure.event_specific_data.error)


def test_a_failed_read_fails_the_run_and_loads_nothing(fresh_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, fresh_sandbox, tmp_path, FO_DEADLINE="3")
    defs = build_definitions()
    fresh_sandbox.faults.unavailable(10_000)  # every request fails until the deadline
    main_accounts = defs.get_assets_def(dg.AssetKey(["fo", "main_accounts"]))
    with pytest.raises(Exception):
        dg.materialize([main_accounts], instance=dg.DagsterInstance.ephemeral(), resources=defs.resources,
                       selection=[dg.AssetKey(["fo", "main_accounts"])])
    batches = Ledger(tmp_path).batches()
    assert [b.manifest.status for b in batches] in ([], ["incomplete"])
    assert not (tmp_path / "delta" / "main_accounts").exists()


def test_a_key_prefix_keeps_a_locations_assets_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("FO_ASSET_KEY_PREFIX", "contoso")
    defs = build_definitions()
    entities = defs.get_assets_def(dg.AssetKey(["contoso", "fo", "general_journal_entry_bi_entities"]))
    assert entities.keys == {dg.AssetKey(["contoso", *spec.asset_key_path]) for spec in BY_DAY}
    assert {c.asset_key for c in entities.check_specs} == entities.keys
    lines = dg.AssetKey(["contoso", "fo", "purchase_order_lines_v2"])
    assert entities.asset_deps[lines] == {dg.AssetKey(["contoso", "fo", "purchase_order_headers_v2"])}
    model = defs.get_assets_def(dg.AssetKey(["contoso", "fo_model", "trial_balance"]))
    assert model.asset_deps[dg.AssetKey(["contoso", "fo_model", "trial_balance"])] == {
        dg.AssetKey(["contoso", "fo", name]) for name in (
            "general_journal_account_entry_bi_entities", "general_journal_entry_bi_entities", "main_accounts")}
