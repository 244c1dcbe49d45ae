"""Jobs API 2.2: run-now (idempotency tokens return the run they started) and runs/get."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from .web import ApiError

OUTCOMES = ("SUCCESS", "FAILED", "TIMEDOUT", "CANCELED")


@dataclass
class JobDefinition:
    outcome: str = "SUCCESS"
    state_message: str = ""
    polls_until_done: int = 0  # runs/get answers RUNNING this many times first


@dataclass
class JobRun:
    run_id: int
    job_id: int
    parameters: dict[str, str]
    idempotency_token: str | None
    started_ms: int
    polls: int = 0


class Jobs:
    def __init__(self, host: str):
        self.host = host
        self.definitions: dict[int, JobDefinition] = {}
        self.runs: list[JobRun] = []
        self._by_token: dict[str, JobRun] = {}
        self._lock = threading.Lock()

    def define(self, job_id: int, outcome: str = "SUCCESS", state_message: str = "", polls_until_done: int = 0) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self.definitions[job_id] = JobDefinition(outcome, state_message, polls_until_done)

    def run_now(self, body: dict[str, Any]) -> dict[str, Any]:
        job_id = int(body.get("job_id", 0))
        if job_id not in self.definitions:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
        token = body.get("idempotency_token")
        if token is not None and len(token) > 64:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "idempotency_token must be at most 64 characters")
        with self._lock:
            run = self._by_token.get(token) if token else None
            if run is None:
                run = JobRun(len(self.runs) + 1000, job_id, dict(body.get("job_parameters") or {}), token,
                             int(time.time() * 1000))
                self.runs.append(run)
                if token:
                    self._by_token[token] = run
        return {"run_id": run.run_id, "number_in_job": run.run_id}

    def get(self, run_id: int) -> dict[str, Any]:
        run = next((r for r in self.runs if r.run_id == run_id), None)
        if run is None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        job = self.definitions[run.job_id]
        run.polls += 1
        done = run.polls > job.polls_until_done
        state: dict[str, Any] = {"life_cycle_state": "TERMINATED" if done else "RUNNING", "state_message": ""}
        if done:
            state.update(result_state=job.outcome, state_message=job.state_message)
        return {
            "job_id": run.job_id,
            "run_id": run.run_id,
            "number_in_job": run.run_id,
            "run_page_url": f"{self.host}/?o=0#job/{run.job_id}/run/{run.run_id}",
            "state": state,
            "start_time": run.started_ms,
            "job_parameters": [{"name": k, "value": v} for k, v in run.parameters.items()],
        }
