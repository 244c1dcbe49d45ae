"""The Databricks sink's failure handling and connection, through the real SDK against the double."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient

from fo_assets.catalog import STANDARD
from fo_assets.landing import DeleteScope, LandedBatch
from fo_assets.sinks import sql
from fo_assets.sinks.base import SinkError
from fo_assets.sinks.databricks import DatabricksSink, StatementFailed, WorkspaceConnectionError, connect_workspace
from fo_assets.sinks.warehouse import Warehouse
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.sinks.batches import at, current, land, vendors
from fo_assets_tests.sinks.conftest import CATALOG, SCHEMA, VOLUME

VENDORS = STANDARD.spec_for("VendorsV2")


def _rows(dbx: DatabricksDouble) -> list[tuple]:
    table = dbx.table_ref(CATALOG, SCHEMA, "vendors_v2")
    return dbx.query(f"SELECT VendorAccountNumber, CreditLimit, _fo_deleted FROM {table} ORDER BY 1")


def _batch(tmp_path: Path, *accounts: str, day: int = 1) -> LandedBatch:
    return land(tmp_path, VENDORS, [(vendors([("usmf", account, "1") for account in accounts]), at(day))])


def _connected_sink(dbx: DatabricksDouble) -> DatabricksSink:
    workspace = connect_workspace(dbx.host, dbx.client_id, dbx.client_secret)
    return DatabricksSink(workspace, dbx.warehouse_id, CATALOG, SCHEMA, VOLUME)


def test_a_failed_merge_names_table_batch_and_server_message_and_loses_nothing(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    before = _rows(dbx)
    page = vendors([("usmf", "V1", "2"), ("usmf", "V2", "3")])
    batch = land(tmp_path, VENDORS, [(page, at(2))], scopes=[DeleteScope("company", "usmf")])
    dbx.faults.fail_statements(r"^MERGE WITH SCHEMA EVOLUTION",
                               message="[INSUFFICIENT_PERMISSIONS] User lacks MODIFY on main.fo.vendors_v2.")

    with pytest.raises(StatementFailed) as failed:
        databricks_sink.upsert(batch, VENDORS)

    message = str(failed.value)
    assert "INSUFFICIENT_PERMISSIONS" in message and "main.fo.vendors_v2" in message and batch.batch_id in message
    assert failed.value.error_code == "BAD_REQUEST"
    assert _rows(dbx) == before
    staged = dbx.engine.volume_dir(CATALOG, SCHEMA, VOLUME) / "vendors_v2" / batch.batch_id / "parts"
    assert [p.name for p in staged.iterdir()] == ["part-00000.parquet"]  # kept for diagnosis

    retry = databricks_sink.upsert(batch, VENDORS)

    assert (retry.inserted, retry.updated) == (1, 1)
    assert [r[0] for r in _rows(dbx)] == ["V1", "V2"]
    assert not staged.parent.exists()  # removed after success


def test_an_upload_answered_503_is_retried(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    dbx.faults.fail_uploads(times=1, status=503)

    result = databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)

    assert result.inserted == 1
    puts = [status for method, path, status in dbx.requests if method == "PUT" and path.endswith("part-00000.parquet")]
    assert puts == [503, 204]


def test_a_429_is_waited_out_for_retry_after(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    dbx.faults.throttle(times=1, retry_after=1, path_pattern=r"^/api/2\.0/sql/statements")
    started = time.monotonic()

    result = databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)

    assert result.inserted == 1
    assert time.monotonic() - started >= 1
    assert [s for _, p, s in dbx.requests if p.startswith("/api/2.0/sql")][:2] == [429, 200]


def test_tokens_are_refreshed_as_they_expire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 41 s tokens: the SDK treats a token as expired 40 s early, so it must fetch new ones between loads.
    with DatabricksDouble(tmp_path / "dbx", token_lifetime_s=41) as dbx:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dbx.ca_bundle_path))
        sink = _connected_sink(dbx)
        sink.upsert(_batch(tmp_path, "V1"), VENDORS)
        issued = dbx.tokens_issued
        time.sleep(1.5)

        result = sink.upsert(_batch(tmp_path, "V2", day=2), VENDORS)

        assert result.inserted == 1
        assert dbx.tokens_issued > issued
        assert all(status != 401 for _, _, status in dbx.requests)


def test_a_token_the_workspace_expired_early_is_replaced(
    dbx: DatabricksDouble, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)
    issued = dbx.tokens_issued
    dbx.faults.expire_tokens()

    result = databricks_sink.upsert(_batch(tmp_path, "V2", day=2), VENDORS)

    assert result.inserted == 1
    assert dbx.tokens_issued == issued + 1
    assert 401 in [status for _, _, status in dbx.requests]


def test_a_statement_over_its_deadline_is_cancelled(
    dbx: DatabricksDouble, workspace: WorkspaceClient, tmp_path: Path
) -> None:
    sink = DatabricksSink(workspace, dbx.warehouse_id, CATALOG, SCHEMA, VOLUME, statement_timeout_s=1)
    dbx.faults.delay_statements(r"^MERGE WITH", seconds=30)

    started = time.monotonic()
    with pytest.raises(SinkError, match="did not finish within 1 s"):
        sink.upsert(_batch(tmp_path, "V1"), VENDORS)

    assert time.monotonic() - started < 10
    merge = next(r for r in dbx.statements.records.values() if r.text.startswith("MERGE WITH"))
    assert merge.state == "CANCELED"
    assert _rows(dbx) == []


def test_quoting_keeps_hostile_names_inert(dbx: DatabricksDouble, workspace: WorkspaceClient) -> None:
    warehouse = Warehouse(workspace, dbx.warehouse_id, timeout_s=10)
    warehouse.run(sql.create_schema(CATALOG, SCHEMA), "setup")
    # Unity Catalog refuses spaces in table names; backticks and semicolons it stores (lower-case).
    hostile = sql.TableRef(CATALOG, SCHEMA, "t`(x_INT);DROP_SCHEMA_`main`;--")

    warehouse.run(sql.create_table(hostile, pa.schema([("a`b", pa.string())])), "hostile")

    tables = dbx.query("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'fo'")
    assert tables == [("t`(x_int);drop_schema_`main`;--",)]
    assert dbx.query("SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [tables[0][0]]) == [("a`b",)]
    with pytest.raises(ValueError, match="control character"):
        sql.create_table(sql.TableRef(CATALOG, SCHEMA, "t\n; DROP"), pa.schema([("a", pa.string())]))
    with pytest.raises(ValueError, match="staged volume path"):
        DatabricksSink(workspace, dbx.warehouse_id, CATALOG, "fo'; --", VOLUME)


def test_the_double_refuses_what_databricks_would_refuse(
    dbx: DatabricksDouble, workspace: WorkspaceClient, tmp_path: Path
) -> None:
    """The double fails an undeduplicated MERGE like Delta does, and any statement it cannot translate."""
    sink = DatabricksSink(workspace, dbx.warehouse_id, CATALOG, SCHEMA, VOLUME, keep_staged=True)
    batch = land(tmp_path, VENDORS, [(vendors([("usmf", "V1", "1"), ("usmf", "V1", "2")]), at(1))])
    sink.upsert(batch, VENDORS)
    table = sql.TableRef(CATALOG, SCHEMA, "vendors_v2")
    parts = f"/Volumes/{CATALOG}/{SCHEMA}/{VOLUME}/vendors_v2/{batch.batch_id}/parts"
    raw_merge = sql.Statement("raw MERGE", (
        f"MERGE INTO {table.sql} AS t USING (SELECT * FROM {sql.read_files(parts)}) AS s "
        "ON t.`VendorAccountNumber` <=> s.`VendorAccountNumber` WHEN MATCHED THEN UPDATE SET *"))

    with pytest.raises(StatementFailed, match="DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE"):
        sink.warehouse.run(raw_merge, "test")
    with pytest.raises(StatementFailed, match="DOUBLE_UNSUPPORTED"):
        sink.warehouse.run(sql.Statement("update", f"UPDATE {table.sql} SET `CreditLimit` = 0"), "test")


def test_a_stray_databricks_token_does_not_break_the_connection(
    dbx: DatabricksDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-stray-personal-token")
    with pytest.raises(ValueError, match="more than one authorization method"):
        WorkspaceClient(host=dbx.host, client_id=dbx.client_id, client_secret=dbx.client_secret)  # unpinned SDK

    workspace = connect_workspace(dbx.host, dbx.client_id, dbx.client_secret)

    probe = Warehouse(workspace, dbx.warehouse_id, 10).run(sql.Statement("probe", "SELECT 1 AS one"), "probe")
    assert probe.rows == [["1"]]
    assert "DATABRICKS_AUTH_TYPE" not in os.environ  # the pin was only for the build


def test_bad_credentials_fail_at_connect_without_the_secret(dbx: DatabricksDouble) -> None:
    wrong = "not-the-secret-" + dbx.client_secret[:6]
    with pytest.raises(WorkspaceConnectionError, match="refused the service principal") as refused:
        connect_workspace(dbx.host, dbx.client_id, wrong)
    assert "invalid_client" in str(refused.value)
    assert wrong not in str(refused.value) and dbx.client_secret not in str(refused.value)


def test_an_unreachable_workspace_fails_fast_and_clearly(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        host = f"https://127.0.0.1:{closed.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(WorkspaceConnectionError, match=f"cannot reach the Databricks workspace {host}"):
        connect_workspace(host, "sp", "secret-value", timeout_s=2)
    assert time.monotonic() - started < 5


def test_a_silent_workspace_fails_within_the_timeout(tmp_path: Path) -> None:
    # Accepts connections and never answers (a black-holing proxy): the bound must still hold.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        held: list[socket.socket] = []
        threading.Thread(target=lambda: held.append(silent.accept()[0]), daemon=True).start()
        started = time.monotonic()
        with pytest.raises(WorkspaceConnectionError, match="waited at most 1 s") as failed:
            connect_workspace(f"https://127.0.0.1:{silent.getsockname()[1]}", "sp", "secret-value", timeout_s=1)
        assert time.monotonic() - started < 5
        assert "secret-value" not in str(failed.value)
        for conn in held:
            conn.close()


def test_read_returns_typed_rows_across_result_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with DatabricksDouble(tmp_path / "dbx", result_chunk_rows=2) as dbx:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dbx.ca_bundle_path))
        sink = _connected_sink(dbx)
        rows = [("usmf", f"V{i}", f"{i}.25") for i in range(5)]
        sink.upsert(land(tmp_path, VENDORS, [(vendors(rows), at(1))]), VENDORS)

        table = sink.read(VENDORS)

        assert set(current(table, "VendorAccountNumber")) == {(f"V{i}",) for i in range(5)}
        assert any("/result/chunks/2" in path for _, path, _ in dbx.requests)


def test_maintenance_optimizes_and_vacuums_within_the_audit_retention(
    dbx: DatabricksDouble, workspace: WorkspaceClient, databricks_sink: DatabricksSink, tmp_path: Path
) -> None:
    databricks_sink.upsert(_batch(tmp_path, "V1"), VENDORS)

    report = databricks_sink.maintain(VENDORS)

    assert report["vacuum_retain_hours"] == 720
    assert dbx.engine.maintenance == [("OPTIMIZE", "main.fo.vendors_v2"), ("VACUUM", "main.fo.vendors_v2")]
    assert "VACUUM `main`.`fo`.`vendors_v2` RETAIN 720 HOURS" in dbx.statement_texts()
    # Delta's own floor is 7 days; a sink keeping less would lower the tables' retention property.
    with pytest.raises(ValueError, match="at least 168 hours"):
        DatabricksSink(workspace, dbx.warehouse_id, CATALOG, SCHEMA, VOLUME, retain_hours=24)


def test_an_unknown_warehouse_is_named_in_the_error(
    dbx: DatabricksDouble, workspace: WorkspaceClient, tmp_path: Path
) -> None:
    sink = DatabricksSink(workspace, "no-such-warehouse", CATALOG, SCHEMA, VOLUME)
    batch = _batch(tmp_path, "V1")

    with pytest.raises(SinkError, match=f"main.fo.vendors_v2 \\(batch {batch.batch_id}\\).*no-such-warehouse"):
        sink.upsert(batch, VENDORS)
