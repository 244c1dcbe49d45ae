"""``python -m bench.event_log_growth``: how many bytes of Dagster event log a week adds at a year of history.

A real Dagster instance (SQLite storage in a temporary ``DAGSTER_HOME``, the project's dagster.yaml) and
the project's definitions against a small sandbox tenant with a year of history: the year is backfilled
in chunks of ``FO_BACKFILL_CHUNK_DAYS`` days (as the backfill policy runs it), one weekly reconciliation
follows, and then ``--weeks`` weeks are run as production runs them: a daily run per day (the entity
job, one partition) and a weekly reconciliation. The size of the instance's storage (the run and event-log
databases under ``DAGSTER_HOME``) is printed after each week: its growth is what a week costs (issue 16,
point 4: it used to be about 60 MB a week after a year, growing with the history).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

import dagster as dg

from bench.compare import ROOT
from bench.server import SandboxProcess, Scale

ANCHOR = dt.date(2026, 6, 15)
CHUNK_DAYS = 31


def storage_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file() and p.suffix in (".db", ".db-wal"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05, help="sandbox scale (rows do not matter here)")
    parser.add_argument("--weeks", type=int, default=2)
    args = parser.parse_args(argv)
    history = 365
    first = ANCHOR - dt.timedelta(days=history + 7 * args.weeks)
    with tempfile.TemporaryDirectory(prefix="fo-bench-eventlog-") as tmp:
        folder = Path(tmp)
        home = folder / "dagster-home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        scale = Scale(args.scale, history + 7 * args.weeks + 1, ANCHOR)
        with SandboxProcess(scale, folder / "sandbox") as sandbox:
            os.environ.update(sandbox.env, DAGSTER_HOME=str(home), FO_ASSETS_HOME=str(folder / "fo"),
                              FO_PARTITIONS_START=first.isoformat())
            from fo_assets.definitions import ENTITY_JOB, build_definitions
            from fo_assets.reconciliation import RECONCILIATION_JOB

            defs = build_definitions()
            entity_job, reconciliation = defs.resolve_job_def(ENTITY_JOB), defs.resolve_job_def(RECONCILIATION_JOB)
            with dg.DagsterInstance.get() as instance:
                def run_days(start: dt.date, end: dt.date) -> None:  # [start, end]
                    tags = {"dagster/asset_partition_range_start": start.isoformat(),
                            "dagster/asset_partition_range_end": end.isoformat()}
                    result = entity_job.execute_in_process(instance=instance, tags=tags)
                    assert result.success, f"entity run {start}..{end} failed"

                def reconcile() -> None:
                    assert reconciliation.execute_in_process(instance=instance).success, "reconciliation failed"

                day = first
                year_end = first + dt.timedelta(days=history)
                while day < year_end:
                    last = min(day + dt.timedelta(days=CHUNK_DAYS - 1), year_end - dt.timedelta(days=1))
                    run_days(day, last)
                    day = last + dt.timedelta(days=1)
                reconcile()
                size = storage_bytes(home)
                print(f"after a year of history ({history} days in {-(-history // CHUNK_DAYS)} backfill runs "
                      f"and one reconciliation): {size / 1e6:.1f} MB of run and event-log storage", flush=True)
                for week in range(1, args.weeks + 1):
                    for _ in range(7):
                        run_days(day, day)
                        day += dt.timedelta(days=1)
                    reconcile()
                    grown = storage_bytes(home)
                    print(f"week {week}: 7 daily runs + 1 reconciliation added {(grown - size) / 1e6:.2f} MB "
                          f"(storage now {grown / 1e6:.1f} MB)", flush=True)
                    size = grown
    return 0


if __name__ == "__main__":
    sys.exit(main())
