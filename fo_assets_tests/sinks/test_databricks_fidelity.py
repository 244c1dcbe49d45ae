"""Where a real workspace is stricter than an easy double: the sink against the double's Delta rules.

Each test names the fact of docs/databricks.md it holds the sink to: retention under predictive
optimization, the SDK's HTTP timeout against ``wait_timeout``, Delta's concurrent-write conflicts,
the 25 MiB INLINE cap, Unity Catalog's lower-case names, Delta's column-name rules, type widening.
"""

from __future__ import annotations

import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from databricks.sdk import WorkspaceClient

from fo_assets.catalog import STANDARD
from fo_assets.landing import LandedBatch
from fo_assets.resources import build_sink
from fo_assets.settings import load_settings
from fo_assets.sinks import sql
from fo_assets.sinks.base import Sink, SinkError
from fo_assets.sinks.databricks import DatabricksSink, StatementFailed
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets.sinks.warehouse import Warehouse
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.databricks_double.statements import EXTERNAL_LINK_PATH, INLINE_LIMIT_BYTES
from fo_assets_tests.sinks.batches import at, current, land, vendors
from fo_assets_tests.sinks.conftest import CATALOG, SCHEMA, VOLUME

VENDORS = STANDARD.spec_for("VendorsV2")
MERGE = r"^MERGE WITH SCHEMA EVOLUTION INTO `main`.`fo`.`vendors_v2`"


def _batch(tmp_path: Path, *accounts: str, day: int = 1) -> LandedBatch:
    return land(tmp_path, VENDORS, [(vendors([("usmf", account, "1") for account in accounts]), at(day))])


def _merges(dbx: DatabricksDouble) -> int:
    return sum(text.startswith("MERGE WITH SCHEMA EVOLUTION") for text in dbx.statement_texts())


def _with_http_timeout(workspace: WorkspaceClient, seconds: float) -> WorkspaceClient:
    """The same principal with a shorter HTTP read timeout than the SDK's 60 s (same code path, less waiting)."""
    config = workspace.config.copy()
    config.http_timeout_seconds = seconds
    return WorkspaceClient(config=config)


# -- retention and predictive optimization ----------------------------------------------------------


def test_history_outlives_the_vacuum_predictive_optimization_runs(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)

    kept_hours = dbx.engine.predictive_optimization(CATALOG, SCHEMA, "vendors_v2")

    assert kept_hours >= 30 * 24  # the audit trail's 30 days, not Delta's default 7
    properties = dbx.engine.log(CATALOG, SCHEMA, "vendors_v2").properties
    assert properties["delta.logRetentionDuration"] == properties["delta.deletedFileRetentionDuration"]


def test_a_table_created_without_the_retention_gets_it_at_its_next_load(
    dbx: DatabricksDouble, workspace: WorkspaceClient, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    first = _batch(tmp_path, "V1")
    warehouse = Warehouse(workspace, dbx.warehouse_id, timeout_s=10)
    warehouse.run(sql.create_schema(CATALOG, SCHEMA), "setup")
    table = sql.TableRef(CATALOG, SCHEMA, "vendors_v2")
    old_ddl = sql.create_table(table, first.arrow_schema())  # created as an earlier release did
    warehouse.run(sql.Statement("old DDL", old_ddl.text.split(" TBLPROPERTIES")[0]), "setup")
    assert dbx.engine.predictive_optimization(CATALOG, SCHEMA, "vendors_v2") == 7 * 24

    databricks_sink.upsert(first, VENDORS)

    assert dbx.engine.predictive_optimization(CATALOG, SCHEMA, "vendors_v2") >= 30 * 24
    assert dbx.engine.log(CATALOG, SCHEMA, "vendors_v2").flag("delta.enableDeletionVectors")
    databricks_sink.upsert(_batch(tmp_path, "V2", day=2), VENDORS)
    alters = [t for t in dbx.statement_texts() if t.startswith("ALTER TABLE")]
    assert len(alters) == 1  # once: a properties change conflicts with every concurrent write


# -- statements sent once, conflicts retried --------------------------------------------------------


def test_a_statement_slower_than_the_http_timeout_is_sent_once(
    dbx: DatabricksDouble, workspace: WorkspaceClient, tmp_path: Path
) -> None:
    # The SDK re-sends a POST whose answer outlives its HTTP timeout; a wait_timeout near it makes the
    # warehouse run the MERGE twice.
    impatient = _with_http_timeout(workspace, 3)
    sink = DatabricksSink(impatient, dbx.warehouse_id, CATALOG, SCHEMA, VOLUME, statement_timeout_s=60)
    dbx.faults.delay_statements(MERGE, seconds=6)

    result = sink.upsert(_batch(tmp_path, "V1", "V2"), VENDORS)

    assert result.inserted == 2
    assert _merges(dbx) == 1


def test_a_merge_overtaken_by_a_concurrent_write_is_retried(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    dbx.faults.concurrent_writes(MERGE, times=2)

    result = databricks_sink.upsert(_batch(tmp_path, "V1", "V2", day=2), VENDORS)

    assert (result.inserted, result.updated) == (1, 0)
    assert _merges(dbx) == 1 + 3
    failed = [r.error for r in dbx.statements.records.values() if r.state == "FAILED"]
    assert [code for code, message in failed if "ConcurrentAppendException" in message] == ["BAD_REQUEST"] * 2


def test_conflicts_beyond_the_retry_budget_fail_with_delta_s_message(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    dbx.faults.concurrent_writes(MERGE, times=1000)
    batch = _batch(tmp_path, "V2", day=2)

    with pytest.raises(StatementFailed, match="DELTA_CONCURRENT_APPEND") as failed:
        databricks_sink.upsert(batch, VENDORS)

    assert "main.fo.vendors_v2" in str(failed.value) and batch.batch_id in str(failed.value)
    assert "attempts" in str(failed.value)
    assert 2 < _merges(dbx) - 1 <= 10  # bounded


@pytest.mark.parametrize("statement, writer", [("OPTIMIZE", "WRITE"), ("MERGE", "OPTIMIZE")])
def test_maintenance_and_a_load_overlapping_do_not_conflict(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path, statement: str, writer: str
) -> None:
    """OPTIMIZE while a MERGE commits, and a MERGE while OPTIMIZE commits: with deletion vectors
    (row-level concurrency) Delta resolves both; without, each fails."""
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    dbx.faults.concurrent_writes(rf"^{statement}\b", operation=writer)

    databricks_sink.upsert(_batch(tmp_path, "V1", "V2", day=2), VENDORS)
    report = databricks_sink.maintain(VENDORS)

    assert report["optimized"] is True
    assert [r for r in dbx.statements.records.values() if r.state == "FAILED"] == []


# -- reading large tables -----------------------------------------------------------------------------


def test_a_table_larger_than_the_inline_limit_is_read_whole(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    rows = 250_000
    accounts = pc.binary_join_element_wise("V", pc.cast(pa.array(range(rows)), pa.string()), "")
    page = pa.table({"dataAreaId": pa.repeat(pa.scalar("usmf"), rows), "VendorAccountNumber": accounts,
                     "CreditLimit": pa.array([decimal.Decimal(i) / 4 for i in range(rows)], pa.decimal128(32, 6))})
    databricks_sink.upsert(land(tmp_path, VENDORS, [(page, at(1))]), VENDORS)

    table = databricks_sink.read(VENDORS)

    assert table.nbytes > INLINE_LIMIT_BYTES
    assert table.num_rows == rows
    assert table.schema.field("CreditLimit").type == pa.decimal128(32, 6)
    assert table.schema.field("_fo_extracted_at").type == pa.timestamp("us", tz="UTC")
    by_key = current(table.select(["VendorAccountNumber", "CreditLimit"]), "VendorAccountNumber")
    assert by_key[("V12345",)]["CreditLimit"] == decimal.Decimal("3086.25")
    assert any(path.startswith(EXTERNAL_LINK_PATH) and status == 200 for _, path, status in dbx.requests)


# -- names ------------------------------------------------------------------------------------------


def test_mixed_case_unity_catalog_names_are_used_as_unity_catalog_stores_them(
    dbx: DatabricksDouble, tmp_path: Path
) -> None:
    env = {"DATABRICKS_HOST": dbx.host, "DATABRICKS_CLIENT_ID": dbx.client_id,
           "DATABRICKS_CLIENT_SECRET": dbx.client_secret, "DATABRICKS_WAREHOUSE_ID": dbx.warehouse_id,
           "DATABRICKS_CATALOG": "Main", "DATABRICKS_SCHEMA": "FO_Raw", "DATABRICKS_VOLUME": "Staging",
           "FO_ASSETS_HOME": str(tmp_path / "home")}
    sink = build_sink(load_settings(env))

    result = sink.upsert(_batch(tmp_path, "V1"), VENDORS)

    assert result.table_name == "main.fo_raw.vendors_v2"
    assert result.uri.endswith("/explore/data/main/fo_raw/vendors_v2")
    assert dbx.query(f"SELECT VendorAccountNumber FROM {dbx.table_ref('main', 'fo_raw', 'vendors_v2')}") == [("V1",)]


def _renamed(table: pa.Table, old: str, new: str) -> pa.Table:
    return table.rename_columns([new if name == old else name for name in table.column_names])


def test_a_column_name_delta_refuses_is_refused_before_anything_is_staged(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    uploads = dbx.volumes.uploads
    page = vendors([("usmf", "V2", "1")]).append_column("Payment Terms", pa.array(["Net30"]))
    batch = land(tmp_path, VENDORS, [(page, at(2))])

    with pytest.raises(SinkError, match=r"'Payment Terms'") as refused:
        databricks_sink.upsert(batch, VENDORS)

    message = str(refused.value)
    assert "main.fo.vendors_v2" in message and batch.batch_id in message and "column mapping" in message
    assert dbx.volumes.uploads == uploads


def test_the_local_sink_refuses_the_same_column_names(tmp_path: Path) -> None:
    sink: Sink = LocalDeltaSink(tmp_path / "delta")
    page = vendors([("usmf", "V1", "1")]).append_column("Terms;Days", pa.array([30]))

    with pytest.raises(SinkError, match=r"'Terms;Days'.*column mapping"):
        sink.upsert(land(tmp_path, VENDORS, [(page, at(1))]), VENDORS)

    assert not (tmp_path / "delta" / "vendors_v2").exists()


# -- type changes -----------------------------------------------------------------------------------


def _credit_limits(table: pa.Table, kind: pa.DataType, value: str) -> pa.Table:
    return table.set_column(table.schema.get_field_index("CreditLimit"), "CreditLimit",
                            pa.array([decimal.Decimal(value)] * table.num_rows, kind))


def test_a_widened_decimal_widens_the_databricks_column(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    wider = _credit_limits(vendors([("usmf", "V1", "0")]), pa.decimal128(38, 10), "12345.1234567891")

    result = databricks_sink.upsert(land(tmp_path, VENDORS, [(wider, at(2))]), VENDORS)

    assert result.updated == 1
    assert ("CreditLimit", "decimal(38,10)") in result.columns
    table = dbx.table_ref(CATALOG, SCHEMA, "vendors_v2")
    assert dbx.query(f"SELECT CreditLimit FROM {table}") == [(decimal.Decimal("12345.1234567891"),)]


def test_a_widened_decimal_is_refused_by_the_local_sink_naming_the_column(tmp_path: Path) -> None:
    sink = LocalDeltaSink(tmp_path / "delta")
    sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    wider = _credit_limits(vendors([("usmf", "V1", "0")]), pa.decimal128(38, 10), "12345.1234567891")

    with pytest.raises(SinkError, match=r"CreditLimit.*decimal\(32,6\).*decimal\(38,10\)"):
        sink.upsert(land(tmp_path, VENDORS, [(wider, at(2))]), VENDORS)


def test_a_type_change_no_widening_covers_fails_naming_the_column(sink: Sink, tmp_path: Path) -> None:
    sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    page = vendors([("usmf", "V2", "1")])
    as_text = page.set_column(page.schema.get_field_index("CreditLimit"), "CreditLimit", pa.array(["1"]))
    batch = land(tmp_path, VENDORS, [(as_text, at(2))])

    with pytest.raises(SinkError, match=r"CreditLimit.*decimal\(32,6\).*string") as refused:
        sink.upsert(batch, VENDORS)

    assert batch.batch_id in str(refused.value)
    assert sorted(current(sink.read(VENDORS), "VendorAccountNumber")) == [("V1",)]


def test_narrower_values_load_into_a_wider_column(dbx: DatabricksDouble, databricks_sink: DatabricksSink,
                                                   tmp_path: Path) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    narrower = _credit_limits(vendors([("usmf", "V2", "0")]), pa.decimal128(20, 2), "7.25")

    result = databricks_sink.upsert(land(tmp_path, VENDORS, [(narrower, at(2))]), VENDORS)

    assert result.inserted == 1 and ("CreditLimit", "decimal(32,6)") in result.columns
