"""The modeled tables: spend by vendor and month, purchase order to invoice match, trial balance.

With a Databricks workspace the Databricks Job (``DATABRICKS_JOB_ID``, deployed from the bundle in
``model_sql/``) runs the model SQL; without one the same SQL runs here in DuckDB over the local Delta
tables and writes local Delta model tables.
"""


import re
from importlib import resources
from pathlib import Path
from typing import Sequence

import dagster as dg
import duckdb
from deltalake import DeltaTable, write_deltalake

from fo_assets.catalog import BY_TABLE, CATALOG
from fo_assets.keys import entity_key, model_key
from fo_assets.landing import Ledger
from fo_assets.resources import FoRuntime

MODEL_TABLES = ("spend_by_vendor_month", "po_invoice_match", "trial_balance")
MODEL_DEPS = {
    "spend_by_vendor_month": ("vendor_invoice_headers", "vendor_invoice_lines", "vendors_v2"),
    "po_invoice_match": ("purchase_order_headers_v2", "purchase_order_lines_v2", "vendor_invoice_headers"),
    "trial_balance": ("general_journal_account_entries", "main_accounts"),
}
DESCRIPTIONS = {
    "spend_by_vendor_month": "Invoiced spend per legal entity, vendor, month and currency.",
    "po_invoice_match": "Each purchase order's ordered amount against what was invoiced on it, with a match status.",
    "trial_balance": "Debits, credits and balance per legal entity, main account, dimension and posting layer.",
}
JOB_TIMEOUT_S = 3600.0
# A job run that outlives the wait is still going: the op retries in the same Dagster run, whose token
# rejoins it, instead of failing the model while Databricks finishes it.
WAIT_RETRIES = 3
WAIT_RETRY_DELAY_S = 60.0
# The model runs after the entity tables change and once every run of theirs has finished, so a
# backfill that lands ten entities triggers one model run, not ten.
MODEL_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)


def model_sql(table: str) -> str:
    return resources.files("fo_assets.model_sql").joinpath(f"{table}.sql").read_text()


def local_statements(sql: str) -> list[str]:
    """The statements of a model file DuckDB should run: USE selects a Unity Catalog schema, which the
    local run replaces with views over the local Delta tables."""
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", sql).split(";")]
    return [s for s in statements if s and not s.upper().startswith("USE ")]


def run_local_model(delta_root: Path, tables: tuple[str, ...] = MODEL_TABLES) -> dict[str, int]:
    """Run the model SQL in DuckDB over the local Delta tables; write each model table as local Delta."""
    con = duckdb.connect()
    for spec in CATALOG:
        path = delta_root / spec.table
        if not (path / "_delta_log").exists():
            raise FileNotFoundError(f"the model needs {spec.table}, which has not been loaded yet ({path})")
        # The table's current files, read by DuckDB itself: deltalake's pyarrow dataset aborts the process
        # at exit, and union_by_name gives older files the columns added since (as nulls).
        con.read_parquet(DeltaTable(str(path)).file_uris(), union_by_name=True).create_view(spec.table)
    counts = {}
    for table in tables:
        for statement in local_statements(model_sql(table)):
            con.execute(statement)
        result = con.sql(f"SELECT * FROM {table}").to_arrow_table()
        write_deltalake(str(delta_root / "model" / table), result, mode="overwrite", schema_mode="overwrite")
        counts[table] = result.num_rows
    return counts


def modeled_batches(ledger: Ledger) -> list[str]:
    """The newest loaded batch of every entity: what this model run is built from."""
    latest = {}
    for batch in ledger.batches(status="loaded"):
        latest[batch.manifest.table] = batch.batch_id
    return sorted(latest.values())


def build_model_assets(prefix: Sequence[str] = ()) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=model_key(table, prefix),
            deps=[entity_key(BY_TABLE[dep], prefix) for dep in MODEL_DEPS[table]],
            description=DESCRIPTIONS[table],
            group_name="model",
            kinds={"databricks", "sql"},
            owners=["team:finance-data"],
            automation_condition=MODEL_AUTOMATION,
        )
        for table in MODEL_TABLES
    ]

    @dg.multi_asset(name="fo_model", specs=specs)
    def fo_model(context: dg.AssetExecutionContext, fo: FoRuntime):
        """Runs the model over the landed entity tables: the Databricks Job, or DuckDB locally."""
        settings = fo.settings
        if settings.databricks is None:
            counts = run_local_model(settings.delta_root)
            for table in MODEL_TABLES:
                yield dg.MaterializeResult(
                    asset_key=model_key(table, prefix),
                    metadata={"dagster/row_count": counts[table],
                              "dagster/uri": str(settings.delta_root / "model" / table),
                              "fo/engine": "duckdb (local)"},
                )
            return
        if settings.databricks.job_id is None:
            raise dg.Failure("DATABRICKS_JOB_ID is not set: deploy the bundle in fo_assets/model_sql and set it")
        from fo_assets.databricks_job import JobWaitTimeout, idempotency_token, model_job_parameters, run_job

        batch_ids = modeled_batches(fo.ledger)
        # The same batches and the same Dagster run lineage give the same token: a retried trigger or a
        # crash-retried run rejoins the job run it started, while a new materialization starts a fresh
        # one. The Dagster run id goes along as a job parameter, so a re-execution of this lineage after
        # its job run failed is not handed that failed run back (fo_assets/databricks_job.py).
        lineage = context.run.root_run_id or context.run.run_id
        token = idempotency_token([*batch_ids, f"dagster-run:{lineage}"])
        try:
            result = run_job(
                fo.sink.workspace,  # type: ignore[attr-defined]
                settings.databricks.job_id,
                model_job_parameters(batch_ids, settings.databricks.catalog, settings.databricks.schema),
                token,
                JOB_TIMEOUT_S,
                attempt=context.run.run_id,
            )
        except JobWaitTimeout as exc:
            raise dg.RetryRequested(max_retries=WAIT_RETRIES, seconds_to_wait=WAIT_RETRY_DELAY_S) from exc
        for table in MODEL_TABLES:
            yield dg.MaterializeResult(
                asset_key=model_key(table, prefix),
                metadata={"dagster/table_name": f"{settings.databricks.catalog}.{settings.databricks.schema}.{table}",
                          "fo/job_run_id": result.run_id,
                          "fo/run_page_url": dg.MetadataValue.url(result.run_page_url),
                          "fo/idempotency_token": token,
                          "fo/engine": "databricks job"},
            )

    return fo_model
