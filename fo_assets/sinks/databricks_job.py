"""Triggering the Databricks Job that models the landed tables, exactly once per set of batches.

``run-now`` carries an idempotency token derived from the batches being modelled and the Dagster run
lineage: a Dagster retry (or the SDK re-sending the POST after a read timeout) gets the run that is
already going instead of a second one. Facts this relies on (docs/databricks.md, "The model job"):

- A token hands back the run it started, whatever became of it. So when the run it hands back ended
  without success and was started by an earlier Dagster run (the Dagster run id is a job parameter),
  the trigger moves on to the lineage's next token: a re-execution after a failed job run starts a new
  one, while a retry of a crashed Dagster run rejoins a job run that is still going or succeeded.
- A run triggered while the job's ``max_concurrent_runs`` runs are active is SKIPPED unless queueing is
  on: the bundle enables it and every run-now asks for it too, and a QUEUED run is waited for.
- ``Run.state`` is deprecated for ``Run.status``: the wait follows ``status.state``, and the outcome is
  ``status.termination_details`` (its code, type and message).
- SQL tasks run only on Pro or Serverless SQL warehouses: the job's warehouses are checked before a run
  starts, so a Classic one is named instead of failing the run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.jobs import QueueSettings, Run, RunLifecycleStateV2State, TerminationCodeCode
from databricks.sdk.service.sql import GetWarehouseResponseWarehouseType

from fo_assets.sinks.workspace import call_with_reauth

MAX_TOKEN = 64  # the Jobs API's limit
ATTEMPT_PARAMETER = "dagster_run_id"
# Re-executions of one lineage whose job runs all failed before the trigger gives up on the lineage.
MAX_GENERATIONS = 32


@dataclass(frozen=True)
class JobRunResult:
    """How a run of the model's Databricks Job ended."""
    run_id: int
    run_page_url: str | None
    result_state: str | None  # the termination code: SUCCESS, RUN_EXECUTION_ERROR, ...
    state_message: str | None


class JobRunError(RuntimeError):
    """The run could not be started, did not end in SUCCESS, or outlived the wait."""


class JobWaitTimeout(JobRunError):
    """The run is still going when the wait ended; it keeps running and a retry rejoins it."""


def idempotency_token(batch_ids: Sequence[str]) -> str:
    """The same batches, in any order, give the same token (64 characters at most)."""
    unique = sorted(set(batch_ids))
    if not unique:
        raise ValueError("an idempotency token needs at least one batch id (else every run would share one)")
    return _token("\n".join(unique))


def model_job_parameters(batch_ids: Sequence[str], catalog: str, schema: str) -> dict[str, str]:
    """The model job's parameters but the Dagster run id, which ``run_job`` adds. The bundle defines
    each one (the Jobs API refuses a parameter the job does not define)."""
    return {"batch_ids": ",".join(batch_ids), "catalog": catalog, "schema": schema}


def run_job(
    workspace: WorkspaceClient,
    job_id: int,
    job_parameters: Mapping[str, str],
    idempotency_token: str,
    timeout_s: float,
    poll_s: float = 5.0,
    *,
    attempt: str | None = None,
    only: Sequence[str] | None = None,
) -> JobRunResult:
    """Start (or rejoin) the run for ``idempotency_token`` and wait until it ends; raise unless SUCCESS.

    ``attempt`` (the Dagster run id) is passed as the job parameter ``dagster_run_id``; with it, a run
    that an earlier attempt started and that ended without success is not rejoined (see the module).
    On timeout the run is left alone: a retry with the same token rejoins it rather than starting over.
    ``only`` runs just those tasks of the job (the model tables whose inputs passed their checks).
    """
    if not 0 < len(idempotency_token) <= MAX_TOKEN:
        raise ValueError(f"an idempotency token has 1 to {MAX_TOKEN} characters, got {len(idempotency_token)}")
    check_sql_warehouses(workspace, job_id)
    parameters = {**job_parameters, **({ATTEMPT_PARAMETER: attempt} if attempt else {})}
    for generation in range(MAX_GENERATIONS):
        token = idempotency_token if generation == 0 else _token(f"{idempotency_token}\n{generation}")
        run_id = _start(workspace, job_id, parameters, token, only)
        run = _get(workspace, run_id)
        if attempt is None or not _failed_earlier(run, attempt):
            return _wait(workspace, job_id, run, timeout_s, poll_s)
    raise JobRunError(
        f"Databricks job {job_id}: the job runs of the last {MAX_GENERATIONS} attempts of this Dagster run lineage "
        "all failed; materialize the model anew (a new lineage) once the cause is fixed"
    )


def check_sql_warehouses(workspace: WorkspaceClient, job_id: int) -> None:
    """Refuse a job whose SQL tasks name a Classic SQL warehouse: SQL tasks need Pro or Serverless."""
    try:
        job = call_with_reauth(workspace, lambda: workspace.jobs.get(job_id))
        tasks = (job.settings.tasks if job.settings else None) or []
        by_warehouse: dict[str, list[str]] = {}
        for task in tasks:
            if task.sql_task and task.sql_task.warehouse_id:
                by_warehouse.setdefault(task.sql_task.warehouse_id, []).append(task.task_key or "?")
        for warehouse_id, task_keys in by_warehouse.items():
            warehouse = call_with_reauth(workspace, lambda: workspace.warehouses.get(warehouse_id))
            classic = warehouse.warehouse_type == GetWarehouseResponseWarehouseType.CLASSIC
            if classic and not warehouse.enable_serverless_compute:
                raise JobRunError(
                    f"Databricks job {job_id}: SQL task(s) {', '.join(task_keys)} run on SQL warehouse {warehouse_id}, "
                    "a Classic warehouse; SQL tasks need a Pro or Serverless SQL warehouse: deploy the bundle with "
                    "--var warehouse_id=<a Pro or Serverless warehouse>"
                )
    except DatabricksError as exc:
        raise JobRunError(f"could not read Databricks job {job_id} or its SQL warehouses: "
                          f"{type(exc).__name__}: {exc}") from exc


def _start(workspace: WorkspaceClient, job_id: int, parameters: Mapping[str, str], token: str,
           only: Sequence[str] | None) -> int:
    try:
        started = call_with_reauth(workspace, lambda: workspace.jobs.run_now(
            job_id=job_id, idempotency_token=token, job_parameters=dict(parameters),
            queue=QueueSettings(enabled=True), only=list(only) if only else None))
        return int(started.run_id)
    except DatabricksError as exc:
        raise JobRunError(f"could not start Databricks job {job_id}: {type(exc).__name__}: {exc}") from exc


def _get(workspace: WorkspaceClient, run_id: int) -> Run:
    return call_with_reauth(workspace, lambda: workspace.jobs.get_run(run_id))


def _failed_earlier(run: Run, attempt: str) -> bool:
    """The run ended without success, and a Dagster run other than ``attempt`` started it."""
    started_by = next((p.value for p in run.job_parameters or [] if p.name == ATTEMPT_PARAMETER), None)
    return _life_cycle(run) == RunLifecycleStateV2State.TERMINATED and _code(run) != TerminationCodeCode.SUCCESS \
        and started_by != attempt


def _wait(workspace: WorkspaceClient, job_id: int, run: Run, timeout_s: float, poll_s: float) -> JobRunResult:
    run_id = int(run.run_id or 0)
    deadline = time.monotonic() + timeout_s
    while _life_cycle(run) != RunLifecycleStateV2State.TERMINATED:
        if time.monotonic() >= deadline:
            queued = run.status.queue_details if run.status else None
            why = f", queued: {queued.message or _name(queued.code)}" if queued else ""
            raise JobWaitTimeout(
                f"Databricks job {job_id} run {run_id} is still {_name(_life_cycle(run))}{why} after {timeout_s:g} s "
                f"({run.run_page_url}); it keeps running, and a retry with the same token waits for it"
            )
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        run = _get(workspace, run_id)
    details = run.status.termination_details if run.status else None
    result = JobRunResult(run_id, run.run_page_url, _name(_code(run)), details.message if details else None)
    if _code(run) != TerminationCodeCode.SUCCESS:
        kind = _name(details.type) if details and details.type else "no type"
        raise JobRunError(
            f"Databricks job {job_id} run {run_id} ended {result.result_state} ({kind}): "
            f"{result.state_message or 'no message'}. See {result.run_page_url}"
        )
    return result


def _life_cycle(run: Run) -> RunLifecycleStateV2State | None:
    return run.status.state if run.status else None


def _code(run: Run) -> TerminationCodeCode | None:
    details = run.status.termination_details if run.status else None
    return details.code if details else None


def _token(text: str) -> str:
    return f"fo-assets-{hashlib.sha256(text.encode()).hexdigest()}"[:MAX_TOKEN]


def _name(value: object) -> str:
    return getattr(value, "value", None) or str(value)
