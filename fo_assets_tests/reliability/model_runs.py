"""The model as a job of its own, for runs Dagster re-executes: a re-execution needs a reconstructable
job and a persistent instance. Run as a module, it materializes the model in a process of its own on the
instance at ``--instance`` (tests kill it there), configured by the environment::

    python -m fo_assets_tests.reliability.model_runs --instance /tmp/dagster-home
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dagster as dg

from fo_assets.definitions import build_definitions

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def model_job() -> dg.JobDefinition:
    defs = build_definitions()
    job = dg.define_asset_job("fo_model_job", selection=dg.AssetSelection.groups("model"))
    return dg.Definitions(assets=list(defs.assets or []), jobs=[job],
                          resources=defs.resources).resolve_job_def("fo_model_job")


def open_instance(folder: Path) -> dg.DagsterInstance:
    """A persistent SQLite instance in ``folder``, shared by the processes that open it."""
    folder.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.local_temp(str(folder))


def execute(instance: dg.DagsterInstance, reexecute_from: str | None = None) -> dg.JobExecutionResult:
    """A run of the model job in this process; ``reexecute_from`` a failed run re-executes it (what the UI's
    Re-execute and Dagster's run retries do)."""
    options = dg.ReexecutionOptions.from_failure(reexecute_from, instance) if reexecute_from else None
    with dg.execute_job(dg.reconstructable(model_job), instance, run_config=IN_PROCESS,
                        reexecution_options=options) as result:
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instance", required=True, help="the folder of a persistent (SQLite) instance")
    args = parser.parse_args(argv)
    with open_instance(Path(args.instance)) as instance:
        result = execute(instance)
    print(f"RUN {result.run_id} {'SUCCESS' if result.success else 'FAILURE'}", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
