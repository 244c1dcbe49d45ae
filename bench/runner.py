"""``python -m bench.runner JOB.json``: run one job in this process and print what it cost, as JSON.

Each job runs in a process of its own, so its CPU time and peak memory are its pipeline's alone. The
clock starts after the imports (both sides pay theirs once per process, not per run) and, for a
keyed job, when the record is changed in F&O: that job's time is change to updated row.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pyarrow.compute as pc

from bench.delta_read import read_delta
from bench.server import Admin
from bench.work import Change, Job, table_path

SIDE_MODULES = {"fo-assets": "bench.fo_side", "dlt": "bench.dlt_side"}


def side_module(side: str) -> ModuleType:
    """The module that runs a side's jobs: ``run(job, env) -> rows`` and ``column(fo_name) -> landed name``."""
    return importlib.import_module(SIDE_MODULES[side])


def cpu_seconds() -> float:
    """CPU of this process and of every child it waited for (a pipeline's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident memory (or a worker process's, if one peaked higher).

    VmHWM, not getrusage's ru_maxrss: Linux carries the high-water mark of the forking parent's
    address space across exec into ru_maxrss, so every job would report at least the orchestrator's.
    """
    status = Path("/proc/self/status").read_text()
    own_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own_kib, children_kib) / 1024


def main(argv: list[str]) -> int:
    job = Job.load(Path(argv[0]))
    side = side_module(job.side)
    env = dict(os.environ)
    cpu = cpu_seconds()
    if job.change is not None:
        _apply(job, job.change, env)
    started = time.perf_counter()
    rows = side.run(job, env)
    if job.change is not None:
        _check(job, job.change, side.column)
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "cpu_s": cpu_seconds() - cpu, "peak_rss_mb": peak_rss_mb()}))
    return 0


def _apply(job: Job, change: Change, env: dict[str, str]) -> None:
    admin = Admin(env)
    try:
        admin.change(job.entity_set, {job.spec.company_field: change.company, change.key_field: change.key},
                     {change.field: change.value})
    finally:
        admin.close()


def _check(job: Job, change: Change, column: Callable[[str], str]) -> None:
    """The keyed job's clock stops only when the changed value can be read back from the Delta table."""
    key, field = column(change.key_field), column(change.field)
    table = read_delta(table_path(job.side, Path(job.root), job.spec), [key, field])
    row = table.filter(pc.equal(table[key], change.key))
    if row.num_rows != 1 or row[field][0].as_py() != change.value:
        raise SystemExit(f"{job.side}: {change.key} does not show the change {change.value!r}: {row.to_pylist()}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
