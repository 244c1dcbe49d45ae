"""The Databricks double holds clients to what the documentation says a workspace does (docs/databricks.md).

These tests speak to the double through the real SDK (or plain HTTPS where a client must not use the
SDK's credentials) and check the double itself: a double that is laxer than the service lets bugs pass.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service.jobs import QueueSettings
from databricks.sdk.service.sql import Disposition, Format

from fo_assets.sinks import sql
from fo_assets.sinks.warehouse import StatementFailed, Warehouse
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.databricks_double.jobs import JobSettings
from fo_assets_tests.sinks.conftest import CATALOG, SCHEMA, VOLUME

ROOT = f"/Volumes/{CATALOG}/{SCHEMA}/{VOLUME}"


@pytest.fixture
def warehouse(dbx: DatabricksDouble, workspace: WorkspaceClient) -> Warehouse:
    warehouse = Warehouse(workspace, dbx.warehouse_id, timeout_s=20)
    warehouse.run(sql.create_schema(CATALOG, SCHEMA), "setup")
    warehouse.run(sql.create_volume(CATALOG, SCHEMA, VOLUME), "setup")
    return warehouse


def _run(warehouse: Warehouse, text: str) -> list[list[str | None]]:
    return warehouse.run(sql.Statement("test", text), "test").rows


def _parquet(**columns: list) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def test_an_upload_replaces_a_file_unless_told_not_to(workspace: WorkspaceClient, warehouse: Warehouse) -> None:
    workspace.files.upload(f"{ROOT}/a.txt", io.BytesIO(b"first"))
    workspace.files.upload(f"{ROOT}/a.txt", io.BytesIO(b"second"))  # overwrite unspecified: replaced

    with pytest.raises(DatabricksError, match="already exists"):
        workspace.files.upload(f"{ROOT}/a.txt", io.BytesIO(b"third"), overwrite=False)

    assert workspace.files.download(f"{ROOT}/a.txt").contents.read() == b"second"


def test_a_listing_comes_in_small_pages(
    dbx: DatabricksDouble, workspace: WorkspaceClient, warehouse: Warehouse
) -> None:
    names = [f"f{i}.txt" for i in range(7)]
    for name in names:
        workspace.files.upload(f"{ROOT}/many/{name}", io.BytesIO(b"x"))
    token = workspace.config.authenticate()
    first_page = requests.get(f"{dbx.host}/api/2.0/fs/directories{ROOT}/many", headers=token, timeout=10).json()

    assert len(first_page["contents"]) < len(names) and first_page["next_page_token"]
    assert sorted(e.name for e in workspace.files.list_directory_contents(f"{ROOT}/many")) == names


def test_read_files_reads_subfolders_too(dbx: DatabricksDouble, workspace: WorkspaceClient,
                                         warehouse: Warehouse) -> None:
    workspace.files.upload(f"{ROOT}/batch/parts/a.parquet", io.BytesIO(_parquet(n=[1, 2])))
    workspace.files.upload(f"{ROOT}/batch/parts/more/b.parquet", io.BytesIO(_parquet(n=[3])))

    rows = _run(warehouse, f"SELECT n FROM {sql.read_files(f'{ROOT}/batch/parts')} ORDER BY n")

    assert rows == [["1"], ["2"], ["3"]]
    workspace.files.upload(f"{ROOT}/batch/manifest.json", io.BytesIO(b"{}"))
    with pytest.raises(StatementFailed, match="FAILED_READ_FILE.*manifest.json"):
        _run(warehouse, f"SELECT n FROM {sql.read_files(f'{ROOT}/batch')}")


def test_table_properties_are_checked_as_delta_checks_them(dbx: DatabricksDouble, warehouse: Warehouse) -> None:
    create = "CREATE TABLE `main`.`fo`.`t` (`a` STRING) USING DELTA TBLPROPERTIES ({})"
    for refused, error in [("'delta.enableChangeDataFeeds' = 'true'", "DELTA_UNKNOWN_CONFIGURATION"),
                           ("'delta.deletedFileRetentionDuration' = '30 days please'", "VALIDATION_FAILED"),
                           ("'delta.logRetentionDuration' = 'interval 1 month'", "VALIDATION_FAILED"),
                           ("'delta.enableDeletionVectors' = 'yes'", "VALIDATION_FAILED")]:
        with pytest.raises(StatementFailed, match=error):
            _run(warehouse, create.format(refused))

    _run(warehouse, create.format("'delta.deletedFileRetentionDuration' = 'interval 10 days', 'owner' = 'finance'"))
    with pytest.raises(StatementFailed, match="DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT"):
        _run(warehouse, "VACUUM `main`.`fo`.`t` RETAIN 200 HOURS")  # the table keeps 240
    _run(warehouse, "ALTER TABLE `main`.`fo`.`t` SET TBLPROPERTIES ('delta.deletedFileRetentionDuration' = '8 days')")
    _run(warehouse, "VACUUM `main`.`fo`.`t` RETAIN 200 HOURS")
    assert _run(warehouse, "SHOW TBLPROPERTIES `main`.`fo`.`t`") == [
        ["delta.deletedFileRetentionDuration", "8 days"], ["owner", "finance"]]


def test_names_are_stored_lower_case_and_matched_without_case(dbx: DatabricksDouble, workspace: WorkspaceClient,
                                                              warehouse: Warehouse) -> None:
    _run(warehouse, "CREATE SCHEMA IF NOT EXISTS `Main`.`FO_Raw`")
    _run(warehouse, "CREATE TABLE `MAIN`.`FO_RAW`.`Vendors` (`VendorAccount` STRING) USING DELTA")
    _run(warehouse, "CREATE VOLUME IF NOT EXISTS `main`.`fo_raw`.`Landing`")

    assert dbx.query("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name = 'fo_raw'") == [
        ("fo_raw", "vendors")]
    assert _run(warehouse, "SELECT `vendoraccount` FROM `main`.`fo_raw`.`VENDORS` LIMIT 0") == []
    workspace.files.upload("/Volumes/main/fo_raw/landing/x.txt", io.BytesIO(b"x"))
    with pytest.raises(NotFound):
        workspace.files.upload("/Volumes/main/FO_Raw/Landing/x.txt", io.BytesIO(b"x"))
    with pytest.raises(StatementFailed, match="INVALID_SCHEMA_OR_RELATION_NAME"):
        _run(warehouse, "CREATE TABLE `main`.`fo_raw`.`two words` (`a` STRING) USING DELTA")
    with pytest.raises(StatementFailed, match="DELTA_INVALID_CHARACTERS_IN_COLUMN_NAMES.*Credit Limit"):
        _run(warehouse, "CREATE TABLE `main`.`fo_raw`.`t` (`Credit Limit` STRING) USING DELTA")


def _final(workspace: WorkspaceClient, dbx: DatabricksDouble, text: str) -> tuple[str, str]:
    """(state, error message) of a statement submitted once and polled: no client-side retry."""
    api = workspace.statement_execution
    response = api.execute_statement(text, dbx.warehouse_id, wait_timeout="0s")
    while response.status.state.value in ("PENDING", "RUNNING"):
        time.sleep(0.05)
        response = api.get_statement(response.statement_id)
    error = response.status.error
    return response.status.state.value, (error.message or "") if error else ""


def test_statements_run_at_once_and_overlapping_writes_conflict(
    dbx: DatabricksDouble, workspace: WorkspaceClient, warehouse: Warehouse
) -> None:
    _run(warehouse, "CREATE TABLE `main`.`fo`.`t` (`k` STRING) USING DELTA")
    merge = ("MERGE INTO `main`.`fo`.`t` AS t USING (SELECT 'a' AS `k`) AS s ON t.`k` <=> s.`k` "
             "WHEN NOT MATCHED THEN INSERT *")
    dbx.faults.delay_statements(r"^MERGE", seconds=1.5, times=2)
    outcomes: list[tuple[str, str]] = []

    started = time.monotonic()
    threads = [threading.Thread(target=lambda: outcomes.append(_final(workspace, dbx, merge))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert time.monotonic() - started < 2.8  # side by side, not one after the other
    assert sorted(state for state, _ in outcomes) == ["FAILED", "SUCCEEDED"]
    assert any("[DELTA_CONCURRENT_APPEND" in message and "ConcurrentAppendException" in message
               for _, message in outcomes)
    assert dbx.query(f"SELECT count(*) FROM {dbx.table_ref('main', 'fo', 't')}") == [(1,)]


def test_large_inline_results_fail_and_external_links_refuse_the_workspace_token(
    dbx: DatabricksDouble, workspace: WorkspaceClient, warehouse: Warehouse
) -> None:
    big = "SELECT repeat('x', 1000) AS s FROM range(30000)"  # about 30 MB
    with pytest.raises(StatementFailed, match="Inline byte limit exceeded"):
        _run(warehouse, big)
    response = workspace.statement_execution.execute_statement(
        big, dbx.warehouse_id, wait_timeout="30s", disposition=Disposition.EXTERNAL_LINKS,
        format=Format.ARROW_STREAM)
    link = response.result.external_links[0].external_link

    assert requests.get(link, headers=workspace.config.authenticate(), timeout=10).status_code == 400
    body = requests.get(link, timeout=10)
    assert body.status_code == 200 and pa.ipc.open_stream(body.content).read_all().num_rows > 0


def test_jobs_refuse_undefined_parameters_and_skip_what_they_cannot_queue(
    dbx: DatabricksDouble, workspace: WorkspaceClient
) -> None:
    dbx.jobs.define(5, run_seconds=30, settings=JobSettings(parameters={"batch_ids": ""}, max_concurrent_runs=1))
    with pytest.raises(DatabricksError, match=r"\['batches'\] are not defined"):
        workspace.jobs.run_now(5, job_parameters={"batches": "b-1"})

    running = workspace.jobs.run_now(5, idempotency_token="one", job_parameters={"batch_ids": "b-1"})
    skipped = workspace.jobs.run_now(5, idempotency_token="two")
    queued = workspace.jobs.run_now(5, idempotency_token="three", queue=QueueSettings(enabled=True))

    states = {r: workspace.jobs.get_run(r) for r in (running.run_id, skipped.run_id, queued.run_id)}
    assert states[running.run_id].status.state.value == "RUNNING"
    assert states[skipped.run_id].state.life_cycle_state.value == "SKIPPED"
    assert states[skipped.run_id].status.termination_details.code.value == "MAX_CONCURRENT_RUNS_EXCEEDED"
    assert states[queued.run_id].status.state.value == "QUEUED"
    assert states[queued.run_id].status.queue_details.code.value == "MAX_CONCURRENT_RUNS_REACHED"
