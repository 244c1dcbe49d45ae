"""``python -m bench.dagster_path``: the GL backfill as users run it, beside the engine alone and dlt.

Four ways to land the same ledger days into local Delta, on one sandbox, with its latency model off and on
(issue 18):

* **dagster**: ``dagster job execute -m bench.gl_location -j fo_gl_backfill`` over a partition range
  (the tags a backfill chunk run carries), a fresh SQLite instance: the project's code location with one
  job that selects the GL vouchers and lines (bench/gl_location.py says why not ``asset materialize``);
* **dagster-pg**: the same on the production instance (deploy/dagster.yaml: runs, events and check results
  in PostgreSQL) with the Dagster settings the image sets (deploy/Dockerfile's ENV), against a throwaway
  local PostgreSQL server started for the benchmark. The default
  instance writes each Dagster event to SQLite with a commit of its own, and a backfill of 60 days writes
  about 500 of them (a planned and a done materialization and two day checks per entity and day); PostgreSQL is what a
  production deployment runs. The server's own CPU and memory are not in the measured process tree;
* **engine**: ``python -m bench.runner`` with the extraction engine and the Delta sink called directly
  (GL lines and their vouchers only);
* **dlt**: ``python -m bench.runner`` with dlt's ``rest_api`` source into a Delta merge (bench/dlt_side.py).

Each is a subprocess measured from outside, the same way: wall time from start to exit (imports
included), CPU of the whole process tree (``RUSAGE_CHILDREN`` around the wait), peak PSS of the whole
tree (the sum of ``/proc/<pid>/smaps_rollup`` over the process and its descendants, sampled every 0.2 s),
and the sandbox's requests in flight, sampled at the same time. The order alternates between modes.
The floor is the server time the latency model charged for the run divided by the allowed concurrency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.compare import ANCHOR, COMPANIES, GL, GL_VALUES, ROOT, _check
from bench.gl_location import GL_JOB
from bench.server import SandboxProcess, Scale
from bench.verify import decimal_fields, truth
from bench.work import Job
from fo_assets.sandbox.config import LatencyModel
from fo_assets.sandbox.tenant import Tenant
from fo_assets.settings import FoSettings
from fo_assets_tests.deploy.customers import image_dagster_env
from fo_assets_tests.deploy.postgres import Postgres, find_bindir, running_postgres

SAMPLE_S = 0.2
DEFAULT_CONCURRENCY = FoSettings.__dataclass_fields__["max_concurrency"].default
WAYS = ("dagster", "dagster-pg", "engine", "dlt")


@dataclass
class Sample:
    pss_mb: list[float] = field(default_factory=list)
    in_flight: list[tuple[float, int]] = field(default_factory=list)
    processes: int = 0


def tree(root: int) -> list[int]:
    """``root`` and its living descendants, from /proc's parent ids."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += parents.get(pid, [])
    return found


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def measure(command: list[str], env: dict[str, str], sandbox: SandboxProcess, timeout_s: float) -> dict:
    sample, done = Sample(), threading.Event()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def watch() -> None:
        while not done.is_set():
            pids = tree(process.pid)
            sample.processes = max(sample.processes, len(pids))
            sample.pss_mb.append(pss_mb(pids))
            sample.in_flight.append((time.monotonic() - started, sandbox.admin.in_flight()))
            done.wait(SAMPLE_S)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, err = process.communicate(timeout=timeout_s)
    finally:
        done.set()
        watcher.join()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed ({process.returncode}):\n{err[-4000:]}{out[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    flights = [n for _, n in sample.in_flight]
    return {"wall_s": wall, "cpu_s": cpu, "peak_pss_mb": max(sample.pss_mb, default=0.0),
            "processes": sample.processes, "peak_in_flight": max(flights, default=0),
            "mean_in_flight": sum(flights) / len(flights) if flights else 0.0, "in_flight": sample.in_flight}


def command(way: str, folder: Path, window: tuple[dt.date, dt.date], decimals: tuple,
            extract_only: bool = False) -> tuple[list[str], dict]:
    iso = (window[0].isoformat(), window[1].isoformat())
    if way in ("dagster", "dagster-pg"):
        home = folder / "dagster-home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / ("deploy/dagster.yaml" if way == "dagster-pg" else "dagster.yaml"), home / "dagster.yaml")
        last = (window[1] - dt.timedelta(days=1)).isoformat()
        tags = {"dagster/asset_partition_range_start": iso[0], "dagster/asset_partition_range_end": last}
        return ([str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "bench.gl_location",
                 "-j", GL_JOB, "--tags", json.dumps(tags)],
                {"DAGSTER_HOME": str(home), "FO_ASSETS_HOME": str(folder / "dagster"),
                 "FO_PARTITIONS_START": iso[0]})
    folder.mkdir(parents=True, exist_ok=True)
    side = "fo-assets" if way == "engine" else "dlt"
    job = Job(side, way, GL.entity_set, str(folder / way), COMPANIES, window=iso, decimals=decimals,
              extract_only=extract_only)
    path = job.save(folder / f"{way}.json")
    extra = {"RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"}
    return [sys.executable, "-m", "bench.runner", str(path)], extra if side == "dlt" else {}


def landed_root(way: str, folder: Path) -> tuple[str, str]:
    """(side, root) of a way's Delta tables, for the ground-truth check."""
    if way == "dlt":
        return "dlt", str(folder / "dlt")
    return "fo-assets", str(folder / ("dagster" if way.startswith("dagster") else way))


# Issue 18's sizes: (GL scale, days) with the latency model off and on (336 GL rows a day per unit of scale).
SIZES = {False: (100.0, 30), True: (15.0, 60)}  # 1,008,000 and 302,400 GL rows


def run_mode(latency: bool, order: tuple[str, ...], args: argparse.Namespace, folder: Path,
             postgres: Postgres | None) -> list[dict]:
    gl_scale, days = SIZES[latency]
    gl_scale, days = (args.gl_scale or gl_scale / (10 if args.quick else 1)), (args.days or days)
    scale = Scale(gl_scale, days, ANCHOR, latency=latency)
    tenant = Tenant(scale.config())
    window = (ANCHOR - dt.timedelta(days=days - 1), ANCHOR + dt.timedelta(days=1))
    expected = truth(tenant, GL.entity_set, GL_VALUES)
    decimals = decimal_fields(tenant, GL.entity_set)
    results = []
    with SandboxProcess(scale, folder / f"sandbox-{latency}") as sandbox:
        print(f"latency model {'on' if latency else 'off'}: {expected.num_rows:,} GL rows, {window}", flush=True)
        # The sandbox renders a page's JSON the first time it is asked for it and caches it: one unmeasured
        # read per side (the Dagster path and the engine send the same requests) renders every page it
        # will read, so no way pays the sandbox's rendering on the machine's two cores for the others.
        for side in dict.fromkeys("dlt" if way == "dlt" else "engine" for way in order):
            cmd, extra = command(side, folder / f"warm-{side}-{latency}", window, decimals, extract_only=True)
            env = {**os.environ, **sandbox.env, **extra, **_dlt_env(side, sandbox)}
            subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, timeout=args.timeout)
        for way in order:
            where = folder / f"{way}-{latency}"
            cmd, extra = command(way, where, window, decimals)
            env = {**os.environ, **sandbox.env, "PYTHONUNBUFFERED": "1", **extra, **_dlt_env(way, sandbox),
                   **(postgres.env() | image_dagster_env() if way == "dagster-pg" and postgres else {})}
            served = _served(sandbox)
            result = measure(cmd, env, sandbox, args.timeout)
            result["server_s"] = _served(sandbox)["execution_s"] - served["execution_s"]
            side, root = landed_root(way, where)
            result |= {"way": way, "latency": latency, "gl_rows": expected.num_rows,
                       "check": _check(side, root, GL, expected, GL_VALUES),
                       "requests": _served(sandbox)["requests"] - served["requests"]}
            print(f"  {way:<8} {result['wall_s']:6.1f} s wall, {result['cpu_s']:6.1f} CPU s, "
                  f"{result['peak_pss_mb']:6.0f} MB PSS ({result['processes']} processes), "
                  f"{result['peak_in_flight']} in flight at most, {result['requests']} requests, "
                  f"GL: {result['check']}", flush=True)
            results.append(result)
    return results


def _dlt_env(way: str, sandbox: SandboxProcess) -> dict[str, str]:
    # dlt's HTTP client is requests: it trusts the sandbox CA through this.
    return {"REQUESTS_CA_BUNDLE": sandbox.env["FO_CA_BUNDLE"]} if way == "dlt" else {}


@contextmanager
def production_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL server holding the production instance's schema (deploy/dagster.yaml):
    Dagster creates it on first use, and a production instance has it already, so it is made beforehand."""
    bindir = find_bindir()
    assert bindir is not None, "callers leave PostgreSQL out when it is not installed"
    for server in running_postgres(bindir):
        with tempfile.TemporaryDirectory(prefix="fo-bench-pg-home-") as home:
            shutil.copy(ROOT / "deploy" / "dagster.yaml", Path(home) / "dagster.yaml")
            subprocess.run([str(Path(sys.executable).parent / "dagster"), "instance", "migrate"], check=True,
                           env={**os.environ, **server.env(), "DAGSTER_HOME": home}, capture_output=True)
        yield server


def _served(sandbox: SandboxProcess) -> dict:
    stats = sandbox.admin.stats()
    requests = sum(n for name, n in stats["requests"].items() if not name.startswith("/_sandbox/"))
    return {"requests": requests, "execution_s": stats.get("execution_s", 0.0)}


def floors(result: dict) -> str:
    """Server time over the default concurrency and over F&O's 52: the fastest the run could be."""
    if not result["latency"]:
        return "-"
    return f"{result['server_s'] / DEFAULT_CONCURRENCY:.1f} / {result['server_s'] / LatencyModel().max_concurrent:.1f}"


def table(results: list[dict]) -> str:
    lines = ["| latency model | way | GL rows | wall s | GL rows/s | CPU s | CPU us/GL row | peak PSS MB (processes) "
             "| in flight peak / mean | requests | server s | floor s at 8 / 52 | GL vs truth |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(
            f"| {'on' if r['latency'] else 'off'} | {r['way']} | {r['gl_rows']:,} | {r['wall_s']:.1f} | "
            f"{r['gl_rows'] / r['wall_s']:,.0f} | {r['cpu_s']:.1f} | {r['cpu_s'] / r['gl_rows'] * 1e6:.1f} | "
            f"{r['peak_pss_mb']:,.0f} ({r['processes']}) | {r['peak_in_flight']} / {r['mean_in_flight']:.1f} | "
            f"{r['requests']} | {r['server_s']:.0f} | {floors(r)} | {r['check']} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
    for axis, latency in zip(axes, (False, True)):
        for r in (r for r in results if r["latency"] == latency):
            xs, ys = zip(*r["in_flight"]) if r["in_flight"] else ((), ())
            axis.step(xs, ys, where="post", label=r["way"])
        axis.set_title(f"latency model {'on' if latency else 'off'}", fontsize=10)
        axis.set_xlabel("seconds since the process started")
    axes[0].set_ylabel("requests in flight at the sandbox")
    for axis in axes:
        if axis.lines:
            axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gl-scale", type=float, help="GL rows = 336 a day times this (default: SIZES)")
    parser.add_argument("--days", type=int, help="days of history, all read (default: SIZES)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--ways", default=",".join(WAYS), help="which of dagster,dagster-pg,engine,dlt to run")
    parser.add_argument("--latency", choices=("off", "on", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.latency]
    results = []
    ways = tuple(w for w in WAYS if w in args.ways.split(","))
    if "dagster-pg" in ways and find_bindir() is None:
        print("dagster-pg left out: PostgreSQL's server is not installed (Debian package postgresql)", flush=True)
        ways = tuple(w for w in ways if w != "dagster-pg")
    with tempfile.TemporaryDirectory(prefix="fo-bench-dagster-") as tmp, ExitStack() as stack:
        postgres = stack.enter_context(production_postgres()) if "dagster-pg" in ways else None
        for index, latency in enumerate(modes):
            order = ways if index % 2 == 0 else ways[::-1]
            results += run_mode(latency, order, args, Path(tmp), postgres)
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"dagster-path-{args.latency}{'-quick' if args.quick else ''}"
    (args.out / f"{name}.md").write_text(table(results) + "\n")
    (args.out / f"{name}.json").write_text("\n".join(json.dumps(r) for r in results) + "\n")  # a line per run
    plot(results, args.out / f"{name}-in-flight.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
