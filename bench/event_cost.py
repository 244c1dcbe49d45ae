"""``python -m bench.event_cost``: what one Dagster event-log write costs a run, on each instance.

A backfill run of the GL entities over 60 days writes about 520 events: a planned and a done
materialization per entity and day, two day checks per entity and day, and a few run and step events.
They are written one by one from the run's process, so their cost is part of every backfill's wall time
(``bench.dagster_path``). This writes ``--events`` engine events through a real ``DagsterInstance``:

* **sqlite**: the project's dagster.yaml (Dagster's default storage, SQLite under ``DAGSTER_HOME``);
* **postgres**: deploy/dagster.yaml (the production instance) on a throwaway local PostgreSQL server,
  with its schema made first. dagster-postgres opens a connection per write outside the webserver (its ``NullPool``),
  so each write pays a connection and its password exchange.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from bench.compare import ROOT
from bench.dagster_path import production_postgres
from fo_assets_tests.deploy.postgres import find_bindir


def ms_per_event(instance_yaml: Path, env: Mapping[str, str], events: int) -> float:
    """Milliseconds per event written through an instance made from ``instance_yaml`` in ``env``."""
    with tempfile.TemporaryDirectory(prefix="fo-bench-events-") as home:
        shutil.copy(instance_yaml, Path(home) / "dagster.yaml")
        os.environ.update({**env, "DAGSTER_HOME": home})
        with dg.DagsterInstance.get() as instance:
            started = time.perf_counter()
            for index in range(events):
                instance.report_engine_event(f"event {index}", run_id="bench-event-cost", job_name="bench")
            return (time.perf_counter() - started) / events * 1000


def main(argv: list[str] | None = None) -> int:
    """Print the cost per event of each instance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args(argv)
    print(f"sqlite:   {ms_per_event(ROOT / 'dagster.yaml', {}, args.events):.1f} ms per event", flush=True)
    if find_bindir() is None:
        print("postgres: not measured (PostgreSQL's server is not installed)")
        return 0
    with production_postgres() as server:
        cost = ms_per_event(ROOT / "deploy" / "dagster.yaml", server.env(), args.events)
        print(f"postgres: {cost:.1f} ms per event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
