"""One materialization of the entity job in a process of its own, configured by the environment.

Tests start it to kill it with SIGKILL at a chosen phase, or to run two at once; it is the same code
path as a run worker (``execute_in_process``; an in-memory instance, as the batch ledger is the record
the tests read)::

    python -m fo_assets_tests.reliability.child_run --first 2026-06-13 --last 2026-06-15 --tables vendors_v2,...
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

import dagster as dg

from fo_assets.definitions import ENTITY_JOB, build_definitions
from fo_assets.partitions import range_tags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--last", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--tables", required=True, help="comma-separated entity tables")
    args = parser.parse_args(argv)
    selection = [dg.AssetKey(["fo", table]) for table in args.tables.split(",")]
    job = build_definitions().resolve_job_def(ENTITY_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, tags=range_tags(args.first, args.last),
                                        asset_selection=selection, raise_on_error=False)
    failure = "" if result.success else failure_message(result).replace("\n", " ")
    print(f"RUN {result.run_id} {'SUCCESS' if result.success else 'FAILURE'} {failure}".strip(), flush=True)
    return 0 if result.success else 1


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The failed step's error with its causes (what an operator reads in the UI), one per line."""
    failures = [e for e in result.all_events if e.is_step_failure]
    if not failures:
        raise AssertionError("the run did not fail")
    error = failures[0].step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return "\n".join(messages)


if __name__ == "__main__":
    sys.exit(main())
