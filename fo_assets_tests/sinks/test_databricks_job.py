"""run_job against the double's Jobs API 2.2 through the real SDK (lives here for the double fixtures)."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient

from fo_assets.databricks_job import JobRunError, idempotency_token, run_job
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.databricks_double.jobs import JobSettings

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


@pytest.mark.parametrize("outcome", ["FAILED", "TIMEDOUT", "CANCELED"])
def test_a_run_that_does_not_succeed_raises(dbx: DatabricksDouble, workspace: WorkspaceClient, outcome: str) -> None:
    dbx.jobs.define(7, outcome, state_message="Task model_trial_balance failed: division by zero")

    expected = f"job 7 run .* ended TERMINATED/{outcome}: Task model_trial_balance failed"
    with pytest.raises(JobRunError, match=expected) as failed:
        run_job(workspace, 7, {}, idempotency_token(["b-9"]), timeout_s=10, poll_s=0.01)

    assert "#job/7/run/" in str(failed.value)


def test_a_run_outliving_the_wait_raises_and_is_left_running(dbx: DatabricksDouble, workspace: WorkspaceClient) -> None:
    dbx.jobs.define(8, polls_until_done=10_000)

    with pytest.raises(JobRunError, match="still RUNNING after 0.3 s"):
        run_job(workspace, 8, {}, idempotency_token(["b-1"]), timeout_s=0.3, poll_s=0.05)


def test_an_unknown_job_is_reported_with_the_server_message(dbx: DatabricksDouble, workspace: WorkspaceClient) -> None:
    with pytest.raises(JobRunError, match="could not start Databricks job 404: .*Job 404 does not exist"):
        run_job(workspace, 404, {}, idempotency_token(["b-1"]), timeout_s=5)
    assert dbx.jobs.runs == []


def test_idempotency_tokens_depend_on_the_set_of_batches_only() -> None:
    token = idempotency_token(["20260601T000000Z-aa", "20260602T000000Z-bb"])

    assert token == idempotency_token(["20260602T000000Z-bb", "20260601T000000Z-aa", "20260601T000000Z-aa"])
    assert token != idempotency_token(["20260601T000000Z-aa"])
    assert len(token) <= 64
    with pytest.raises(ValueError):
        idempotency_token([])
