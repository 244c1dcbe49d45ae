"""The modeling job as ``databricks bundle deploy -t prod`` deploys it from fo_assets/model_sql, declared on
the Databricks double: its parameters, concurrency and queueing are the bundle's, not the test's."""

from __future__ import annotations

from pathlib import Path

import fo_assets
from fo_assets_tests.databricks_double import DatabricksDouble
from fo_assets_tests.databricks_double.jobs import JobSettings, settings_from_bundle

BUNDLE = Path(fo_assets.__file__).parent / "model_sql" / "databricks.yml"
JOB_KEY = "fo_assets_model"


def bundle_job(dbx: DatabricksDouble, catalog: str = "main", schema: str = "fo") -> JobSettings:
    variables = {"warehouse_id": dbx.warehouse_id, "catalog": catalog, "schema": schema,
                 "service_principal": dbx.client_id}
    return settings_from_bundle(BUNDLE, JOB_KEY, "prod", variables)


def deploy_model_job(dbx: DatabricksDouble, job_id: int, outcome: str = "SUCCESS", state_message: str = "", *,
                     polls_until_done: int = 0, run_seconds: float = 0.0, catalog: str = "main",
                     schema: str = "fo") -> None:
    """Declare the bundle's job as ``job_id``; ``outcome`` and the timings say how its runs end."""
    dbx.jobs.define(job_id, outcome, state_message, polls_until_done, run_seconds=run_seconds,
                    settings=bundle_job(dbx, catalog, schema))
