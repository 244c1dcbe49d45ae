"""Benchmark of the extraction engine: rows/s, connector CPU per row and peak memory (not run by CI).

The sandbox runs in its own process (``python -m fo_assets.sandbox serve``) so its work does not share
this process's GIL or CPU accounting; this process only runs the connector. Two scenarios:

* a GL backfill: GeneralJournalAccountEntryBiEntities (with their vouchers), every company, the whole history (>= 1,000,000 rows at
  the default scale), landed into Parquet parts with dimension columns;
* a wide snapshot: VendorsV2 with ~290 fields (sandbox ``--wide``), client-driven pages.

Targets: >= 100,000 rows/s for GL, < 10 us of connector CPU per row, GL peak RSS < 400 MB.

    .venv/bin/python bench/extract.py [--scale 100] [--days 30] [--wide-scale 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fo_assets.catalog import STANDARD
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.settings import load_settings

ANCHOR = dt.date(2026, 6, 15)


def serve(state: Path, *args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fo_assets.sandbox", "serve", "--state-dir", str(state),
         "--anchor-date", ANCHOR.isoformat(), *args],
        stdout=subprocess.PIPE, text=True,
    )
    env: dict[str, str] = {}
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line[len("export "):].strip().partition("=")
            env[name] = shlex.split(value)[0]
        elif line.startswith("#"):
            return process, env
    raise SystemExit(f"the sandbox did not start (exit code {process.wait()})")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """CPU of another process (the sandbox), from /proc: fields 14 and 15 are utime and stime in ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(env: dict[str, str], home: Path, request: ExtractRequest, label: str, server_pid: int) -> dict:
    settings = load_settings({**env, "FO_ASSETS_HOME": str(home)})
    with Extractor(settings, f"bench-{label}-warm") as extractor:
        # Warm the sandbox's generated tables and the metadata cache: only the read itself is timed.
        extractor.extract([ExtractRequest(request.spec, window=(ANCHOR, ANCHOR + dt.timedelta(days=1)))
                           if request.window else request])
    cpu, server, wall = cpu_seconds(), process_cpu_seconds(server_pid), time.perf_counter()
    with Extractor(settings, f"bench-{label}") as extractor:
        (batch,) = extractor.extract([request])
        stats = extractor.stats
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    server = process_cpu_seconds(server_pid) - server
    rows = batch.manifest.row_count
    return {
        "scenario": label,
        "rows": rows,
        "columns": len(batch.manifest.schema),
        "seconds": round(wall, 2),
        "rows_per_s": round(rows / wall),
        "cpu_us_per_row": round(cpu / rows * 1e6, 2),
        "sandbox_cpu_s": round(server, 2),
        "pages": stats["pages"],
        "requests": stats["requests"],
        "mb_received": round(stats["bytes"] / 1e6, 1),
        "parquet_mb": round(sum(p.bytes for p in batch.manifest.parts) / 1e6, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=100.0, help="GL scale (100 with 30 days: ~1M rows)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--wide-scale", type=float, default=200.0, help="VendorsV2 scale for the wide snapshot")
    parser.add_argument("--only", choices=("gl", "wide"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenarios = {
            "gl": ((f"--scale={args.scale}", f"--days={args.days}"),
                   ExtractRequest(STANDARD.spec_for("GeneralJournalAccountEntryBiEntities"),
                                  window=(ANCHOR - dt.timedelta(days=args.days), ANCHOR + dt.timedelta(days=1)))),
            "wide": ((f"--scale={args.wide_scale}", "--days=1"), ExtractRequest(STANDARD.spec_for("VendorsV2"))),
        }
        for label, (flags, request) in scenarios.items():
            if args.only and label != args.only:
                continue
            process, env = serve(root / f"sandbox-{label}", *flags)
            try:
                results.append(run(env, root / f"home-{label}", request, label, process.pid))
            finally:
                process.terminate()
                process.wait(30)
    for result in results:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
