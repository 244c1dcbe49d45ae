"""run_job against the double's Jobs API 2.2 through the real SDK (lives here for the double fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient

from fo_assets.sinks.databricks_job import JobRunError, idempotency_token, run_job
from fo_assets.sinks.workspace import connect_workspace
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.databricks_double.jobs import JobSettings
from fo_assets_tests.model_job import deploy_model_job

BATCHES = JobSettings(parameters={"batches": ""})


def test_a_retry_with_the_same_token_rejoins_the_same_run(dbx: DatabricksDouble, workspace: WorkspaceClient) -> None:
    dbx.jobs.define(41, "SUCCESS", polls_until_done=2, settings=BATCHES)
    token = idempotency_token(["b-2", "b-1"])

    first = run_job(workspace, 41, {"batches": "b-1,b-2"}, token, timeout_s=10, poll_s=0.01)
    second = run_job(workspace, 41, {"batches": "b-1,b-2"}, token, timeout_s=10, poll_s=0.01)

    assert first.run_id == second.run_id
    assert first.result_state == "SUCCESS"
    assert first.run_page_url and f"run/{first.run_id}" in first.run_page_url
    assert len(dbx.jobs.runs) == 1
    assert dbx.jobs.runs[0].parameters == {"batches": "b-1,b-2"}
    assert dbx.jobs.runs[0].idempotency_token == token


@pytest.mark.parametrize("outcome, code", [("FAILED", "RUN_EXECUTION_ERROR"), ("TIMEDOUT", "CANCELED"),
                                           ("CANCELED", "USER_CANCELED")])
def test_a_run_that_does_not_succeed_raises(dbx: DatabricksDouble, workspace: WorkspaceClient, outcome: str,
                                            code: str) -> None:
    dbx.jobs.define(7, outcome, state_message="Task model_trial_balance failed: division by zero")

    expected = rf"job 7 run .* ended {code} \(\w+\): Task model_trial_balance failed"
    with pytest.raises(JobRunError, match=expected) as failed:
        run_job(workspace, 7, {}, idempotency_token(["b-9"]), timeout_s=10, poll_s=0.01)

    assert "#job/7/run/" in str(failed.value)


def test_a_run_outliving_the_wait_raises_and_is_left_running(dbx: DatabricksDouble, workspace: WorkspaceClient) -> None:
    dbx.jobs.define(8, polls_until_done=10_000)

    with pytest.raises(JobRunError, match="still RUNNING after 0.3 s"):
        run_job(workspace, 8, {}, idempotency_token(["b-1"]), timeout_s=0.3, poll_s=0.05)


def test_an_unknown_job_is_reported_with_the_server_message(dbx: DatabricksDouble, workspace: WorkspaceClient) -> None:
    with pytest.raises(JobRunError, match="Databricks job 404.*Job 404 does not exist"):
        run_job(workspace, 404, {}, idempotency_token(["b-1"]), timeout_s=5)
    assert dbx.jobs.runs == []


def test_idempotency_tokens_depend_on_the_set_of_batches_only() -> None:
    token = idempotency_token(["20260601T000000Z-aa", "20260602T000000Z-bb"])

    assert token == idempotency_token(["20260602T000000Z-bb", "20260601T000000Z-aa", "20260601T000000Z-aa"])
    assert token != idempotency_token(["20260601T000000Z-aa"])
    assert len(token) <= 64
    with pytest.raises(ValueError):
        idempotency_token([])


# -- the job as the bundle deploys it ---------------------------------------------------------------


MODEL_PARAMETERS = {"batch_ids": "b-1", "catalog": "main", "schema": "fo"}


def test_a_failed_run_is_reported_with_the_termination_code_of_its_status(
    dbx: DatabricksDouble, workspace: WorkspaceClient
) -> None:
    """Jobs API 2.2 deprecates ``state`` for ``status``: its termination details say why a run ended."""
    deploy_model_job(dbx, 9, "FAILED", "Task trial_balance failed: division by zero")

    with pytest.raises(JobRunError, match="RUN_EXECUTION_ERROR") as failed:
        run_job(workspace, 9, MODEL_PARAMETERS, idempotency_token(["b-1"]), timeout_s=10, poll_s=0.01)

    assert "Task trial_balance failed: division by zero" in str(failed.value)


def test_a_trigger_while_the_job_runs_waits_in_the_queue_instead_of_being_skipped(
    dbx: DatabricksDouble, workspace: WorkspaceClient
) -> None:
    deploy_model_job(dbx, 10, run_seconds=1.0)
    first = workspace.jobs.run_now(job_id=10, idempotency_token="another-trigger", job_parameters=MODEL_PARAMETERS)

    result = run_job(workspace, 10, MODEL_PARAMETERS, idempotency_token(["b-1"]), timeout_s=20, poll_s=0.1)

    assert result.result_state == "SUCCESS" and result.run_id != first.run_id
    queued = [r for r in dbx.jobs.runs if r.run_id == result.run_id]
    assert queued and dbx.jobs.get(first.run_id)["status"]["state"] == "TERMINATED"


def test_a_job_whose_sql_tasks_run_on_a_classic_warehouse_is_refused_before_a_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DatabricksDouble(tmp_path / "dbx", warehouse_kind="CLASSIC") as dbx:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dbx.ca_bundle_path))
        workspace = connect_workspace(dbx.host, dbx.client_id, dbx.client_secret, timeout_s=10)
        deploy_model_job(dbx, 11)

        with pytest.raises(JobRunError, match=f"{dbx.warehouse_id}.*Classic.*Pro or Serverless"):
            run_job(workspace, 11, MODEL_PARAMETERS, idempotency_token(["b-1"]), timeout_s=10, poll_s=0.01)

        assert dbx.jobs.runs == []


def test_a_run_an_earlier_attempt_started_and_that_failed_is_not_handed_back(
    dbx: DatabricksDouble, workspace: WorkspaceClient
) -> None:
    """The idempotency token returns the run it started, whatever became of it: a re-execution of a
    Dagster run whose job run failed must start another one, while the attempt that started a run
    (retrying its wait) and a later attempt finding it still going or done rejoin it."""
    deploy_model_job(dbx, 12, "FAILED", "division by zero")
    base = idempotency_token(["b-1"])
    with pytest.raises(JobRunError, match="RUN_EXECUTION_ERROR"):
        run_job(workspace, 12, MODEL_PARAMETERS, base, timeout_s=10, poll_s=0.01, attempt="dagster-run-1")
    with pytest.raises(JobRunError, match="RUN_EXECUTION_ERROR"):  # the same attempt again: its own run, not a new one
        run_job(workspace, 12, MODEL_PARAMETERS, base, timeout_s=10, poll_s=0.01, attempt="dagster-run-1")
    assert len(dbx.jobs.runs) == 1
    deploy_model_job(dbx, 12, "SUCCESS", polls_until_done=1)

    retried = run_job(workspace, 12, MODEL_PARAMETERS, base, timeout_s=10, poll_s=0.01, attempt="dagster-run-2")
    rejoined = run_job(workspace, 12, MODEL_PARAMETERS, base, timeout_s=10, poll_s=0.01, attempt="dagster-run-3")

    assert retried.result_state == "SUCCESS" and len(dbx.jobs.runs) == 2
    assert rejoined.run_id == retried.run_id and len(dbx.jobs.runs) == 2
    assert dbx.jobs.runs[1].parameters["dagster_run_id"] == "dagster-run-2"
