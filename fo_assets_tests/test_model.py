"""The modeled tables: locally in DuckDB over local Delta, and as a Databricks Job through the double."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import dagster as dg
import pyarrow.parquet as pq
from deltalake import DeltaTable

from fo_assets.catalog import STANDARD
from fo_assets.sinks.databricks_job import run_job
from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.landing import Ledger
from fo_assets.model import MODEL_TABLES, local_statements, model_sql
from fo_assets.partitions import range_tags
from fo_assets.sinks.databricks import connect_workspace
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.support.tenant import ANCHOR, point_at
from fo_assets_tests.model_job import deploy_model_job

MODEL_KEYS = [dg.AssetKey(["fo_model", t]) for t in MODEL_TABLES]


def _land(defs: dg.Definitions, instance: dg.DagsterInstance, days: int = 3) -> None:
    first = ANCHOR - dt.timedelta(days=days - 1)
    assert defs.resolve_job_def(ENTITY_JOB).execute_in_process(instance=instance, tags=range_tags(first, ANCHOR)).success


def _model(defs: dg.Definitions, instance: dg.DagsterInstance, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize([defs.get_assets_def(MODEL_KEYS[0])], instance=instance,
                          resources={"fo": defs.resources["fo"]}, raise_on_error=raise_on_error)


def _delta_rows(path) -> list[dict]:
    return [row for uri in DeltaTable(str(path)).file_uris() for row in pq.read_table(uri).to_pylist()]


def test_model_sql_is_the_same_text_for_both_engines():
    for table in MODEL_TABLES:
        sql = model_sql(table)
        assert "USE CATALOG IDENTIFIER(:catalog)" in sql  # what the Databricks SQL task runs
        (statement,) = local_statements(sql)  # what DuckDB runs: the same CREATE, without the USEs
        assert statement.startswith(f"CREATE OR REPLACE TABLE {table} AS")


def test_local_model_matches_an_independent_computation(small_sandbox, monkeypatch, tmp_path):
    point_at(monkeypatch, small_sandbox, tmp_path)
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    _land(defs, instance)
    result = _model(defs, instance)
    counts = {m.asset_key.path[-1]: m.metadata["dagster/row_count"].value
              for m in result.asset_materializations_for_node("fo_model")}
    assert set(counts) == set(MODEL_TABLES) and all(counts.values())

    sink = LocalDeltaSink(tmp_path / "delta")
    live = lambda name: [r for r in sink.read(STANDARD.spec_for(name)).to_pylist() if not r["_fo_deleted"]]  # noqa: E731
    gl = live("GeneralJournalAccountEntryBiEntities")
    accounts = {r["MainAccountRecId"]: r["MainAccountId"] for r in live("MainAccounts")}
    expected: dict[tuple, Decimal] = defaultdict(Decimal)
    for row in gl:  # by the voucher's company (derived on the line) and the account the line points at
        expected[(row["dataAreaId"], accounts[row["MainAccount"]])] += row["AccountingCurrencyAmount"]
    balance: dict[tuple, Decimal] = defaultdict(Decimal)
    trial = _delta_rows(tmp_path / "delta" / "model" / "trial_balance")
    for row in trial:
        balance[(row["company"], row["main_account"])] += row["balance"]
    assert balance == expected
    assert sum(r["entries"] for r in trial) == len(gl)

    # Spend is posted invoice lines, joined to their header as F&O relates them.
    join = ("dataAreaId", "InvoiceId", "InvoiceDate", "numberSequenceGroup", "InternalInvoiceId")
    headers = {(*(h[k] for k in join), h["PurchId"]): h for h in live("VendInvoiceJourBiEntities")}
    spend: dict[tuple, Decimal] = defaultdict(Decimal)
    for line in live("VendInvoiceTransBiEntities"):
        header = headers.get((*(line[k] for k in join), line["PurchID"]))
        if header is not None:
            month = header["InvoiceDate"].replace(day=1)
            spend[(header["dataAreaId"], header["InvoiceAccount"], month, header["CurrencyCode"])] += line["LineAmount"]
    modeled = {(r["company"], r["vendor_account"], r["month"], r["currency"]): r["spend"]
               for r in _delta_rows(tmp_path / "delta" / "model" / "spend_by_vendor_month")}
    assert spend and modeled == spend

    lines = defaultdict(Decimal)
    for row in live("PurchaseOrderLinesV2"):
        lines[(row["dataAreaId"], row["PurchaseOrderNumber"])] += row["LineAmount"]
    invoiced = defaultdict(Decimal)
    for row in live("VendInvoiceTransBiEntities"):
        if row["PurchID"]:
            invoiced[(row["dataAreaId"], row["PurchID"])] += row["LineAmount"]
    matches = _delta_rows(tmp_path / "delta" / "model" / "po_invoice_match")
    assert len(matches) == sink.profile(STANDARD.spec_for("PurchaseOrderHeadersV2")).live_rows
    for row in matches:
        assert row["ordered_amount"] == lines[(row["company"], row["purchase_order"])]
        assert row["invoiced_amount"] == invoiced.get((row["company"], row["purchase_order"]), 0)
        assert row["open_amount"] == row["ordered_amount"] - row["invoiced_amount"]
    assert any(row["invoices"] for row in matches), "some orders are invoiced in the sandbox"


def test_model_needs_every_entity_table(monkeypatch, tmp_path):
    monkeypatch.setenv("FO_ASSETS_HOME", str(tmp_path))
    result = _model(build_definitions(), dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    assert "has not been loaded yet" in str(result.get_step_failure_events()[0].event_specific_data.error)


def _databricks_env(monkeypatch, dbx, job_id: int) -> None:
    for name, value in {
        "DATABRICKS_HOST": dbx.host, "DATABRICKS_CLIENT_ID": dbx.client_id,
        "DATABRICKS_CLIENT_SECRET": dbx.client_secret, "DATABRICKS_WAREHOUSE_ID": dbx.warehouse_id,
        "DATABRICKS_CATALOG": "main", "DATABRICKS_SCHEMA": "fo_raw", "DATABRICKS_VOLUME": "landing",
        "DATABRICKS_JOB_ID": str(job_id),
    }.items():
        monkeypatch.setenv(name, value)


def test_databricks_load_and_model_job_rejoined_on_retry(small_sandbox, dbx, monkeypatch, tmp_path):
    point_at(monkeypatch, small_sandbox, tmp_path)
    _databricks_env(monkeypatch, dbx, job_id=77)
    deploy_model_job(dbx, 77, schema="fo_raw")
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    _land(defs, instance, days=1)

    # The rows landed in the warehouse (executed by DuckDB in the double), one per source key.
    vendors = STANDARD.spec_for("VendorsV2")
    (count,) = dbx.query(f"SELECT count(*) FROM {dbx.table_ref('main', 'fo_raw', vendors.table)}")[0]
    assert count == len(small_sandbox.tenant.rows("VendorsV2"))
    for spec in STANDARD:  # every entity has its table
        dbx.query(f"SELECT 1 FROM {dbx.table_ref('main', 'fo_raw', spec.table)} LIMIT 0")

    first = _model(defs, instance)
    run = dbx.jobs.runs[0]
    assert len(run.idempotency_token) <= 64
    assert set(run.parameters["batch_ids"].split(",")) == {b.batch_id for b in Ledger(tmp_path).batches()}
    assert (run.parameters["catalog"], run.parameters["schema"]) == ("main", "fo_raw")
    (meta,) = {m.metadata["fo/idempotency_token"].value: m.metadata
               for m in first.asset_materializations_for_node("fo_model")}.values()
    assert meta["fo/job_run_id"].value == run.run_id and meta["fo/run_page_url"].value.startswith(dbx.host)

    # A retried trigger (the SDK re-sending run-now, or a crash-retried Dagster run of the same lineage)
    # carries the same token and rejoins the run instead of starting a second one.
    workspace = connect_workspace(dbx.host, dbx.client_id, dbx.client_secret, timeout_s=10)
    again = run_job(workspace, 77, run.parameters, meta["fo/idempotency_token"].value, timeout_s=30, poll_s=0.1)
    assert again.run_id == run.run_id and len(dbx.jobs.runs) == 1

    # A new materialization over the same batches is a new lineage: it starts a fresh job run.
    second = _model(defs, instance)
    assert len(dbx.jobs.runs) == 2
    assert {m.metadata["fo/job_run_id"].value for m in second.asset_materializations_for_node("fo_model")} == {
        dbx.jobs.runs[1].run_id}


def test_a_failed_model_job_fails_the_asset(small_sandbox, dbx, monkeypatch, tmp_path):
    point_at(monkeypatch, small_sandbox, tmp_path)
    _databricks_env(monkeypatch, dbx, job_id=78)
    deploy_model_job(dbx, 78, "FAILED", "trial_balance: division by zero", schema="fo_raw")
    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    _land(defs, instance, days=1)
    result = _model(defs, instance, raise_on_error=False)
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "RUN_EXECUTION_ERROR" in error and "division by zero" in error
    assert not result.asset_materializations_for_node("fo_model")
