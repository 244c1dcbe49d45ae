"""Jobs API 2.2: run-now, runs/get and jobs/get, with a job's settings as a deployment gives them.

A job has parameters, ``max_concurrent_runs`` (default 1) and queueing (off unless its settings or the
run-now request turn it on). A run-now with a parameter the job does not define is refused. A run
triggered while ``max_concurrent_runs`` runs are active waits QUEUED when queueing is on, and is
SKIPPED otherwise. An idempotency token hands back the run it started, whatever became of it. runs/get
answers the ``status`` object beside the deprecated ``state``, and only ``status`` carries the
termination code. A job whose SQL tasks name a warehouse that is neither Pro nor Serverless fails.

``settings_from_bundle`` reads a job's settings from a Databricks Asset Bundle, so a test runs the job
the bundle deploys.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .web import ApiError

OUTCOMES = ("SUCCESS", "FAILED", "TIMEDOUT", "CANCELED")
# result_state -> (status.termination_details code, type)
_TERMINATIONS = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("CANCELED", "CLIENT_ERROR"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
}
_VARIABLE = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")


@dataclass
class JobSettings:
    name: str = "job"
    max_concurrent_runs: int = 1
    queue: bool = False
    parameters: dict[str, str] = field(default_factory=dict)  # name -> default
    sql_warehouses: dict[str, str] = field(default_factory=dict)  # task key -> warehouse id of its SQL task

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_concurrent_runs": self.max_concurrent_runs,
            "queue": {"enabled": self.queue},
            "parameters": [{"name": k, "default": v} for k, v in self.parameters.items()],
            "tasks": [{"task_key": k, "sql_task": {"warehouse_id": w}} for k, w in self.sql_warehouses.items()],
        }


@dataclass
class JobDefinition:
    settings: JobSettings
    outcome: str = "SUCCESS"
    state_message: str = ""
    polls_until_done: int = 0  # runs/get answers RUNNING this many times first
    run_seconds: float = 0.0  # and the run lasts at least this long


@dataclass
class JobRun:
    run_id: int
    job_id: int
    parameters: dict[str, str]
    idempotency_token: str | None
    started_ms: int
    state: str = "QUEUED"  # QUEUED, RUNNING, TERMINATED, SKIPPED
    result: str | None = None
    message: str = ""
    running_since: float = 0.0
    polls: int = 0


def settings_from_bundle(path: Path, job_key: str, target: str, variables: Mapping[str, str]) -> JobSettings:
    """The settings ``databricks bundle deploy -t <target>`` would give the job ``job_key``: the job's
    mapping with the target's overrides, ``${var.*}`` resolved from ``variables`` and the defaults."""
    bundle = yaml.safe_load(Path(path).read_text())
    declared = {name: spec.get("default") for name, spec in (bundle.get("variables") or {}).items()}
    values = {**declared, **variables}

    def resolve(text: Any) -> str:
        def value(match: re.Match[str]) -> str:
            if values.get(match.group(1)) is None:
                raise ValueError(f"bundle variable {match.group(1)} has no value")
            return str(values[match.group(1)])
        return _VARIABLE.sub(value, str(text))

    job = dict(bundle["resources"]["jobs"][job_key])
    overrides = (bundle.get("targets", {}).get(target) or {}).get("resources", {}).get("jobs", {}).get(job_key, {})
    job.update(overrides)
    return JobSettings(
        name=resolve(job.get("name", job_key)),
        max_concurrent_runs=int(job.get("max_concurrent_runs", 1)),
        queue=bool((job.get("queue") or {}).get("enabled", False)),
        parameters={p["name"]: resolve(p.get("default", "")) for p in job.get("parameters") or []},
        sql_warehouses={t["task_key"]: resolve(t["sql_task"]["warehouse_id"])
                        for t in job.get("tasks") or [] if "sql_task" in t},
    )


class Jobs:
    def __init__(self, host: str, warehouse_kind: Callable[[str], str | None]):
        """``warehouse_kind(id)`` is PRO, SERVERLESS or CLASSIC for a warehouse of the workspace, else None."""
        self.host = host
        self._warehouse_kind = warehouse_kind
        self.definitions: dict[int, JobDefinition] = {}
        self.runs: list[JobRun] = []
        self._by_token: dict[str, JobRun] = {}
        self._lock = threading.Lock()

    def define(self, job_id: int, outcome: str = "SUCCESS", state_message: str = "", polls_until_done: int = 0,
               *, run_seconds: float = 0.0, settings: JobSettings | None = None) -> None:
        """Declare (or redeclare) a job: its settings, and how its runs end."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self.definitions[job_id] = JobDefinition(settings or JobSettings(), outcome, state_message,
                                                 polls_until_done, run_seconds)

    def settings(self, job_id: int) -> dict[str, Any]:
        job = self._job(job_id)
        return {"job_id": job_id, "settings": job.settings.to_json()}

    def run_now(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id = int(body.get("job_id", 0))
        job = self._job(job_id)
        token = body.get("idempotency_token")
        if token is not None and len(token) > 64:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "idempotency_token must be at most 64 characters")
        parameters = dict(body.get("job_parameters") or {})
        undefined = sorted(set(parameters) - set(job.settings.parameters))
        if undefined:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"Job parameters {undefined} are not defined in job {job_id}.")
        queue = (body.get("queue") or {}).get("enabled", job.settings.queue)
        with self._lock:
            self._advance()
            run = self._by_token.get(token) if token else None
            if run is None:
                run = JobRun(len(self.runs) + 1000, job_id, {**job.settings.parameters, **parameters}, token,
                             int(time.time() * 1000))
                self.runs.append(run)
                if token:
                    self._by_token[token] = run
                self._admit(run, job, queue)
        return {"run_id": run.run_id, "number_in_job": run.run_id}

    def get(self, run_id: int) -> dict[str, Any]:
        with self._lock:
            run = next((r for r in self.runs if r.run_id == run_id), None)
            if run is None:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
            self._advance()
            answer = self._to_json(run)
            if run.state == "RUNNING":
                run.polls += 1
            return answer

    # -- run life cycle --------------------------------------------------------------------------

    def _job(self, job_id: int) -> JobDefinition:
        if job_id not in self.definitions:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
        return self.definitions[job_id]

    def _active(self, job_id: int) -> int:
        return sum(r.job_id == job_id and r.state == "RUNNING" for r in self.runs)

    def _admit(self, run: JobRun, job: JobDefinition, queue: bool) -> None:
        if self._active(run.job_id) < job.settings.max_concurrent_runs and not self._queued(run.job_id, run):
            self._start(run)
        elif not queue:
            limit = job.settings.max_concurrent_runs
            run.state, run.message = "SKIPPED", (
                f"Skipping this run because the limit of {limit} maximum concurrent runs has been reached.")

    def _queued(self, job_id: int, before: JobRun) -> bool:
        return any(r.job_id == job_id and r.state == "QUEUED" and r is not before for r in self.runs)

    def _start(self, run: JobRun) -> None:
        run.state, run.running_since, run.polls = "RUNNING", time.monotonic(), 0
        job = self.definitions[run.job_id]
        classic = sorted({w for w in job.settings.sql_warehouses.values()
                          if self._warehouse_kind(w) not in ("PRO", "SERVERLESS")})
        if classic:
            run.state, run.result, run.message = "TERMINATED", "FAILED", (
                f"SQL tasks need a Pro or Serverless SQL warehouse; {', '.join(classic)} is not one")

    def _advance(self) -> None:
        """Finish the runs that are done, then start queued runs while the job has room (oldest first)."""
        for run in self.runs:
            job = self.definitions[run.job_id]
            if (run.state == "RUNNING" and run.polls >= job.polls_until_done
                    and time.monotonic() - run.running_since >= job.run_seconds):
                run.state, run.result, run.message = "TERMINATED", job.outcome, job.state_message
        for run in self.runs:
            limit = self.definitions[run.job_id].settings.max_concurrent_runs
            if run.state == "QUEUED" and self._active(run.job_id) < limit:
                self._start(run)

    def _to_json(self, run: JobRun) -> dict[str, Any]:
        if run.state == "QUEUED":
            state = {"life_cycle_state": "QUEUED", "state_message": "Waiting for a concurrent run to finish"}
            status = {"state": "QUEUED", "queue_details": {
                "code": "MAX_CONCURRENT_RUNS_REACHED", "message": "The job's maximum concurrent runs are active"}}
        elif run.state == "SKIPPED":
            state = {"life_cycle_state": "SKIPPED", "state_message": run.message}
            status = {"state": "TERMINATED", "termination_details": {
                "code": "MAX_CONCURRENT_RUNS_EXCEEDED", "type": "CLIENT_ERROR", "message": run.message}}
        elif run.state == "RUNNING":
            state = {"life_cycle_state": "RUNNING", "state_message": ""}
            status = {"state": "RUNNING"}
        else:
            code, kind = _TERMINATIONS[run.result or "FAILED"]
            if run.message.startswith("SQL tasks need"):
                code, kind = "INVALID_RUN_CONFIGURATION", "CLIENT_ERROR"
            state = {"life_cycle_state": "TERMINATED", "result_state": run.result, "state_message": run.message}
            status = {"state": "TERMINATED",
                      "termination_details": {"code": code, "type": kind, "message": run.message}}
        return {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "number_in_job": run.run_id,
            "run_page_url": f"{self.host}/?o=0#job/{run.job_id}/run/{run.run_id}",
            "state": state,
            "status": status,
            "start_time": run.started_ms,
            "job_parameters": [{"name": k, "value": v} for k, v in run.parameters.items()],
        }
