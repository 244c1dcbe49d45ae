"""The modeled tables: spend by vendor and month, purchase order to invoice match, trial balance.

With a Databricks workspace the Databricks Job (``DATABRICKS_JOB_ID``, deployed from the bundle in
``model_sql/``) runs the model SQL; without one the same SQL runs here in DuckDB over the local Delta
tables and writes local Delta model tables.
"""


import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import dagster as dg
import duckdb
from deltalake import DeltaTable, write_deltalake

from fo_assets.alerts import MODEL_FRESHNESS
from fo_assets.catalog import Catalog
from fo_assets.keys import entity_key, model_key
from fo_assets.landing import Ledger
from fo_assets.resources import FoRuntime
from fo_assets.schedules import DAILY_CRON

MODEL_TABLES = ("spend_by_vendor_month", "po_invoice_match", "trial_balance")
# Built from posted invoices (pending ones are not spend yet) and the ledger's BI entities.
MODEL_DEPS = {
    "spend_by_vendor_month": ("vend_invoice_jour_bi_entities", "vend_invoice_trans_bi_entities", "vendors_v2"),
    "po_invoice_match": ("purchase_order_headers_v2", "purchase_order_lines_v2", "vend_invoice_trans_bi_entities"),
    "trial_balance": ("general_journal_account_entry_bi_entities", "general_journal_entry_bi_entities",
                      "main_accounts"),
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
# The model runs once a day, after the daily load (schedules.DAILY_CRON) has updated every entity table
# and only if their blocking checks (keys_unique, a table check) passed; event refreshes and backfills
# during the day do not start it again (materialize it from the UI for an update on demand).
MODEL_AUTOMATION = (
    dg.AutomationCondition.on_cron(DAILY_CRON, "UTC")
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)
_JOUR, _TRANS, _VENDORS = "vend_invoice_jour_bi_entities", "vend_invoice_trans_bi_entities", "vendors_v2"
_PO_H, _PO_L = "purchase_order_headers_v2", "purchase_order_lines_v2"
_GL_L, _GL_H, _ACCOUNTS = "general_journal_account_entry_bi_entities", "general_journal_entry_bi_entities", "main_accounts"
# Which entity columns each model column is computed from (dagster/column_lineage).
LINEAGE: dict[str, dict[str, list[tuple[str, str]]]] = {
    "spend_by_vendor_month": {
        "company": [(_JOUR, "dataAreaId")], "vendor_account": [(_JOUR, "InvoiceAccount")],
        "vendor_name": [(_VENDORS, "VendorOrganizationName")], "month": [(_JOUR, "InvoiceDate")],
        "currency": [(_JOUR, "CurrencyCode")], "invoices": [(_JOUR, "SourceKey")],
        "invoice_lines": [(_TRANS, "SourceKey")], "spend": [(_TRANS, "LineAmount")],
    },
    "po_invoice_match": {
        "company": [(_PO_H, "dataAreaId")], "purchase_order": [(_PO_H, "PurchaseOrderNumber")],
        "vendor_account": [(_PO_H, "OrderVendorAccountNumber")], "currency": [(_PO_H, "CurrencyCode")],
        "status": [(_PO_H, "PurchaseOrderStatus")], "accounting_date": [(_PO_H, "AccountingDate")],
        "ordered_amount": [(_PO_L, "LineAmount")], "invoiced_amount": [(_TRANS, "LineAmount")],
        "open_amount": [(_PO_L, "LineAmount"), (_TRANS, "LineAmount")], "invoices": [(_TRANS, "InvoiceId")],
        "match_status": [(_PO_L, "LineAmount"), (_TRANS, "LineAmount")],
    },
    "trial_balance": {
        "company": [(_GL_L, "dataAreaId")],
        "main_account": [(_ACCOUNTS, "MainAccountId"), (_GL_L, "LedgerAccount_MainAccount")],
        "main_account_name": [(_ACCOUNTS, "Name")], "main_account_type": [(_ACCOUNTS, "MainAccountType")],
        "business_unit": [(_GL_L, "LedgerAccount_BusinessUnit")], "department": [(_GL_L, "LedgerAccount_Department")],
        "cost_center": [(_GL_L, "LedgerAccount_CostCenter")], "posting_layer": [(_GL_H, "PostingLayer")],
        "debit": [(_GL_L, "AccountingCurrencyAmount"), (_GL_L, "IsCredit")],
        "credit": [(_GL_L, "AccountingCurrencyAmount"), (_GL_L, "IsCredit")],
        "balance": [(_GL_L, "AccountingCurrencyAmount")], "entries": [(_GL_L, "SourceKey")],
    },
}


def column_lineage(catalog: Catalog, table: str, prefix: Sequence[str]) -> dg.TableColumnLineage:
    """Which entity columns each column of a model table comes from."""
    return dg.TableColumnLineage({
        column: [dg.TableColumnDep(entity_key(catalog.by_table(dep), prefix), dep_column) for dep, dep_column in deps]
        for column, deps in LINEAGE[table].items()
    })


def model_sql(table: str) -> str:
    """The SQL of a model table, as shipped in the package."""
    return resources.files("fo_assets.model_sql").joinpath(f"{table}.sql").read_text()


def local_statements(sql: str) -> list[str]:
    """The statements of a model file DuckDB should run: USE selects a Unity Catalog schema, which the
    local run replaces with views over the local Delta tables."""
    statements = [s.strip() for s in re.sub(r"--[^\n]*", "", sql).split(";")]
    return [s for s in statements if s and not s.upper().startswith("USE ")]


def run_local_model(delta_root: Path, tables: tuple[str, ...] = MODEL_TABLES) -> dict[str, int]:
    """Run the model SQL in DuckDB over the local Delta tables; write each model table as local Delta."""
    con = duckdb.connect()
    for name in sorted({dep for table in tables for dep in MODEL_DEPS[table]}):
        path = delta_root / name
        if not (path / "_delta_log").exists():
            raise FileNotFoundError(f"the model needs {name}, which has not been loaded yet ({path})")
        # The table's current files, read by DuckDB itself: deltalake's pyarrow dataset aborts the process
        # at exit, and union_by_name gives older files the columns added since (as nulls).
        con.read_parquet(DeltaTable(str(path)).file_uris(), union_by_name=True).create_view(name)
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


def build_model_assets(catalog: Catalog, prefix: Sequence[str] = ()) -> dg.AssetsDefinition:
    """The model tables as one multi-asset, local (DuckDB) or as a Databricks Job run."""
    specs = [
        dg.AssetSpec(
            key=model_key(table, prefix),
            deps=[entity_key(catalog.by_table(dep), prefix) for dep in MODEL_DEPS[table]],
            description=DESCRIPTIONS[table],
            group_name="model",
            kinds={"databricks", "sql"},
            owners=["team:finance-data"],
            automation_condition=MODEL_AUTOMATION,
            freshness_policy=MODEL_FRESHNESS,
            metadata={"dagster/column_lineage": column_lineage(catalog, table, prefix)},
        )
        for table in MODEL_TABLES
    ]

    # Subsettable: each model table is gated on its own dependencies' blocking checks, so a failed check on
    # the ledger holds back the trial balance, not the spend model.
    @dg.multi_asset(name="fo_model", specs=specs, can_subset=True)
    def fo_model(context: dg.AssetExecutionContext, fo: FoRuntime):
        """Runs the model over the landed entity tables: the Databricks Job, or DuckDB locally."""
        settings = fo.settings
        tables = tuple(t for t in MODEL_TABLES if model_key(t, prefix) in context.selected_asset_keys)
        if settings.databricks is None:
            counts = run_local_model(settings.delta_root, tables)
            for table in tables:
                yield dg.MaterializeResult(
                    asset_key=model_key(table, prefix),
                    metadata={"dagster/row_count": counts[table],
                              "dagster/uri": str(settings.delta_root / "model" / table),
                              "fo/engine": "duckdb (local)"},
                )
            return
        if settings.databricks.job_id is None:
            raise dg.Failure("DATABRICKS_JOB_ID is not set: deploy the bundle in fo_assets/model_sql and set it")
        from fo_assets.sinks.databricks_job import JobWaitTimeout, idempotency_token, model_job_parameters, run_job

        batch_ids = modeled_batches(fo.ledger)
        # The same batches and the same Dagster run lineage give the same token: a retried trigger or a
        # crash-retried run rejoins the job run it started, while a new materialization starts a fresh
        # one. The Dagster run id goes along as a job parameter, so a re-execution of this lineage after
        # its job run failed is not handed that failed run back (fo_assets/sinks/databricks_job.py).
        lineage = context.run.root_run_id or context.run.run_id
        token = idempotency_token([*batch_ids, f"dagster-run:{lineage}", *(f"table:{t}" for t in tables)])
        try:
            result = run_job(
                fo.sink.workspace,  # type: ignore[attr-defined]
                settings.databricks.job_id,
                model_job_parameters(batch_ids, settings.databricks.catalog, settings.databricks.schema),
                token,
                JOB_TIMEOUT_S,
                attempt=context.run.run_id,
                only=tables,  # the job's tasks are named after the model tables
            )
        except JobWaitTimeout as exc:
            raise dg.RetryRequested(max_retries=WAIT_RETRIES, seconds_to_wait=WAIT_RETRY_DELAY_S) from exc
        for table in tables:
            yield dg.MaterializeResult(
                asset_key=model_key(table, prefix),
                metadata={"dagster/table_name": f"{settings.databricks.catalog}.{settings.databricks.schema}.{table}",
                          "fo/job_run_id": result.run_id,
                          # the Jobs API may leave the page URL out: no link rather than an empty one
                          **({"fo/run_page_url": dg.MetadataValue.url(result.run_page_url)}
                             if result.run_page_url else {}),
                          "fo/idempotency_token": token,
                          "fo/engine": "databricks job"},
            )

    return fo_model
