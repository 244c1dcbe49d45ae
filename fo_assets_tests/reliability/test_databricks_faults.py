"""Databricks faults end to end: throttling, expired tokens, FAILED statements, failed uploads, job runs.

A fault the SDK or the sink can absorb ends with an exact target in the same run. A load that fails
fails the run with a message naming the table, the batch and the warehouse's own words, keeps the
batch replayable, and ``fo-assets replay --failed`` then converges without touching F&O.
"""

from __future__ import annotations

import pytest

from fo_assets import model
from fo_assets.cli import main as cli
from fo_assets_tests.model_job import deploy_model_job
from fo_assets_tests.reliability.child_run import failure_message
from fo_assets_tests.reliability.stack import GL, GL_HEADERS, JOB_ID, TABLES, Stack, when

HEADERS_MERGE = r"^MERGE WITH SCHEMA EVOLUTION INTO `main`.`fo`.`purchase_order_headers_v2`"


def test_throttled_statements_and_uploads_are_waited_out(stack: Stack) -> None:
    stack.dbx.faults.throttle(times=1, retry_after=1, path_pattern=r"^/api/2\.0/sql/statements")
    stack.dbx.faults.throttle(times=1, retry_after=1, path_pattern=r"^/api/2\.0/fs/files/")

    result = stack.run()

    assert result.success
    assert sum(status == 429 for _, _, status in stack.dbx.requests) == 2
    stack.assert_exact()


def test_workspace_tokens_expired_mid_run_are_replaced(stack: Stack) -> None:
    dbx = stack.dbx
    def merged() -> bool:
        return any(r.text.startswith("MERGE") and r.state == "SUCCEEDED" for r in list(dbx.statements.records.values()))

    expire = when(merged, dbx.faults.expire_tokens)

    result = stack.run()

    expire.join(1)
    assert result.success
    assert any(status == 401 for _, _, status in dbx.requests) and dbx.tokens_issued >= 3
    stack.assert_exact()
    stack.assert_no_secret_leaked()


def test_a_failed_merge_fails_the_run_clearly_and_replay_converges(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    stack.dbx.faults.fail_statements(HEADERS_MERGE, message="[INSUFFICIENT_PERMISSIONS] User lacks MODIFY on the table.")

    result = stack.run()

    assert not result.success
    message = failure_message(result)
    assert "main.fo.purchase_order_headers_v2" in message and "INSUFFICIENT_PERMISSIONS" in message
    statuses = stack.statuses()
    assert statuses["purchase_order_headers_v2"] == ["failed"]
    # The snapshot loads in a step of its own. The step's other entities are loaded as they are read, so
    # the GL pair loaded if it was read before the headers, else it landed and waits for the replay.
    assert statuses["vendors_v2"] == ["loaded"]
    assert statuses[GL_HEADERS] in (["loaded"], ["landed"]) and statuses[GL] in (["loaded"], ["landed"])
    # The lines of the failed headers were read to the end but never loaded: replay must take them too.
    assert statuses["purchase_order_lines_v2"] == ["landed"]
    assert stack.rows("purchase_order_headers_v2") == []

    assert cli(["replay", "--failed"]) == 0

    replayed = capsys.readouterr().out
    assert "purchase_order_headers_v2: inserted" in replayed and "purchase_order_lines_v2: inserted" in replayed
    assert all(s == ["loaded"] for s in stack.statuses().values())
    stack.assert_exact()
    assert cli(["replay", "--failed"]) == 0 and "no failed batches" in capsys.readouterr().out
    stack.assert_no_secret_leaked((("stdout", replayed.encode())))


def test_a_failed_upload_fails_the_run_and_replay_converges(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    # Not retryable: the SDK gives up at once. A batch's part: a failed metadata-cache upload only warns.
    stack.dbx.faults.fail_uploads(times=1, status=500, path_pattern=r"/parts/")

    result = stack.run()

    assert not result.success
    message = failure_message(result)
    # The first part uploaded is the first entity's of the run (the GL vouchers).
    assert f"uploading part-00000.parquet to /Volumes/main/fo/staging/{GL_HEADERS}/" in message
    assert "injected upload failure" in message
    assert stack.statuses()[GL_HEADERS] == ["failed"]

    assert cli(["replay", "--failed"]) == 0

    assert all(s == ["loaded"] for s in stack.statuses().values())
    stack.assert_exact()


def test_a_failed_job_run_fails_the_model_and_a_new_materialization_runs_the_job_afresh(stack: Stack) -> None:
    deploy_model_job(stack.dbx, JOB_ID, "FAILED", "Task trial_balance failed: division by zero")
    assert stack.run(tables=TABLES[:1]).success

    first = stack.materialize_model()
    again = stack.materialize_model()  # a person re-materializes: a new lineage, a new job run

    assert len(stack.dbx.jobs.runs) == 2
    for result, run in zip((first, again), stack.dbx.jobs.runs):
        assert not result.success
        message = failure_message(result)
        ended = f"job {JOB_ID} run {run.run_id} ended RUN_EXECUTION_ERROR (CLIENT_ERROR): Task trial_balance failed"
        assert ended in message
    stack.assert_exact(TABLES[:1])


def test_a_job_trigger_retried_after_a_timeout_rejoins_the_first_run(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "JOB_TIMEOUT_S", 0.5)
    monkeypatch.setattr(model, "WAIT_RETRY_DELAY_S", 0.0)
    # The run answers RUNNING to 2 polls, and a wait of 0.5 s makes two (at its start and at its end):
    # the first attempt times out, the op retries within the same Dagster run, the second finds it done.
    deploy_model_job(stack.dbx, JOB_ID, polls_until_done=2)
    assert stack.run(tables=TABLES[:1]).success

    retried = stack.materialize_model()

    assert retried.success
    retries = [e for e in retried.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 1
    metadata = retried.get_asset_materialization_events()[0].step_materialization_data.materialization.metadata
    (run,) = stack.dbx.jobs.runs
    assert metadata["fo/job_run_id"].value == run.run_id
    run_nows = [path for method, path, _ in stack.dbx.requests if path == "/api/2.2/jobs/run-now"]
    assert len(run_nows) == 2  # triggered twice, one run
