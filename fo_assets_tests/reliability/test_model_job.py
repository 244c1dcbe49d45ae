"""The model's Databricks Job through Dagster's own ways of running a step again: a re-execution of a
run whose job run failed, a run retried after its process was killed, and a trigger while the job runs.

The job on the double is the one the bundle in fo_assets/model_sql deploys (its parameters, its
concurrency and queueing); its idempotency token hands back the run it started, whatever became of it.
"""

from __future__ import annotations

import signal
from pathlib import Path

from fo_assets_tests.model_job import deploy_model_job
from fo_assets_tests.reliability.child_run import failure_message
from fo_assets_tests.reliability.children import kill_when, start_model_run
from fo_assets_tests.reliability.model_runs import execute, open_instance
from fo_assets_tests.reliability.stack import JOB_ID, TABLES, Stack


def test_a_re_execution_after_the_job_run_failed_starts_a_new_job_run(stack: Stack, tmp_path: Path) -> None:
    assert stack.run(tables=TABLES[:1]).success
    deploy_model_job(stack.dbx, JOB_ID, "FAILED", "Task trial_balance failed: division by zero")
    with open_instance(tmp_path / "dagster") as instance:
        failed = execute(instance)
        assert not failed.success
        deploy_model_job(stack.dbx, JOB_ID, "SUCCESS")  # the cause fixed in the workspace

        again = execute(instance, reexecute_from=failed.run_id)

        assert again.success
        assert instance.get_run_by_id(again.run_id).root_run_id == failed.run_id
    first, second = stack.dbx.jobs.runs
    assert (first.result, second.result) == ("FAILED", "SUCCESS")
    assert second.parameters["dagster_run_id"] == again.run_id


def test_a_run_retried_after_its_process_was_killed_rejoins_the_job_run(stack: Stack, tmp_path: Path) -> None:
    assert stack.run(tables=TABLES[:1]).success
    deploy_model_job(stack.dbx, JOB_ID, run_seconds=4.0)
    child = start_model_run(tmp_path / "child.log", tmp_path / "dagster")

    kill_when(child, lambda: bool(stack.dbx.jobs.runs))

    assert child.process.returncode == -signal.SIGKILL
    with open_instance(tmp_path / "dagster") as instance:
        (dead,) = instance.get_runs()
        instance.report_run_failed(dead)  # what run monitoring does with a run whose process died

        retried = execute(instance, reexecute_from=dead.run_id)  # what Dagster's run retries do

        assert retried.success
    (run,) = stack.dbx.jobs.runs  # rejoined: the token of the dead attempt, its run still going
    assert run.result == "SUCCESS" and run.parameters["dagster_run_id"] == dead.run_id


def test_a_model_trigger_while_the_job_runs_is_queued_and_succeeds(stack: Stack) -> None:
    assert stack.run(tables=TABLES[:1]).success
    deploy_model_job(stack.dbx, JOB_ID, run_seconds=1.5)
    other = stack.dbx.jobs.run_now({"job_id": JOB_ID, "idempotency_token": "started-in-the-workspace"})

    result = stack.materialize_model()

    assert result.success, failure_message(result)
    assert len(stack.dbx.jobs.runs) == 2 and stack.dbx.jobs.get(other["run_id"])["status"]["state"] == "TERMINATED"
