"""Triggering the Databricks Job that models the landed tables, exactly once per set of batches.

``run-now`` carries an idempotency token derived from the batches being modelled and the Dagster run
lineage: a Dagster retry (or the SDK re-sending the POST after a read timeout) gets the run that is
already going instead of a second one. The SDK's waiter returns normally for FAILED, TIMEDOUT and CANCELED runs, so the outcome is
checked here.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.jobs import Run, RunLifeCycleState, RunResultState

from fo_assets.sinks.workspace import call_with_reauth

_FINAL = (RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED, RunLifeCycleState.INTERNAL_ERROR)
MAX_TOKEN = 64  # the Jobs API's limit


@dataclass(frozen=True)
class JobRunResult:
    run_id: int
    run_page_url: str | None
    result_state: str | None
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
    digest = hashlib.sha256("\n".join(unique).encode()).hexdigest()
    return f"fo-assets-{digest}"[:MAX_TOKEN]


def run_job(
    workspace: WorkspaceClient,
    job_id: int,
    job_parameters: Mapping[str, str],
    idempotency_token: str,
    timeout_s: float,
    poll_s: float = 5.0,
) -> JobRunResult:
    """Start (or rejoin) the run for ``idempotency_token`` and wait until it ends; raise unless SUCCESS.

    On timeout the run is left alone: a retry with the same token rejoins it rather than starting over.
    """
    if not 0 < len(idempotency_token) <= MAX_TOKEN:
        raise ValueError(f"an idempotency token has 1 to {MAX_TOKEN} characters, got {len(idempotency_token)}")
    try:
        started = call_with_reauth(workspace, lambda: workspace.jobs.run_now(
            job_id=job_id, idempotency_token=idempotency_token, job_parameters=dict(job_parameters)))
        run_id = int(started.run_id)
    except DatabricksError as exc:
        raise JobRunError(f"could not start Databricks job {job_id}: {type(exc).__name__}: {exc}") from exc
    deadline = time.monotonic() + timeout_s
    while True:
        run = call_with_reauth(workspace, lambda: workspace.jobs.get_run(run_id))
        life_cycle = run.state.life_cycle_state if run.state else None
        if life_cycle in _FINAL:
            break
        if time.monotonic() >= deadline:
            raise JobWaitTimeout(
                f"Databricks job {job_id} run {run_id} is still {_name(life_cycle)} after {timeout_s:g} s "
                f"({run.run_page_url}); it keeps running, and a retry with the same token waits for it"
            )
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    return _outcome(job_id, run_id, run, life_cycle)


def _outcome(job_id: int, run_id: int, run: Run, life_cycle: RunLifeCycleState | None) -> JobRunResult:
    state = run.state
    result = JobRunResult(
        run_id=run_id,
        run_page_url=run.run_page_url,
        result_state=_name(state.result_state) if state else None,
        state_message=state.state_message if state else None,
    )
    if life_cycle != RunLifeCycleState.TERMINATED or (state and state.result_state) != RunResultState.SUCCESS:
        raise JobRunError(
            f"Databricks job {job_id} run {run_id} ended {_name(life_cycle)}/{result.result_state}: "
            f"{result.state_message or 'no message'}. See {result.run_page_url}"
        )
    return result


def _name(value: object) -> str:
    return getattr(value, "value", None) or str(value)
