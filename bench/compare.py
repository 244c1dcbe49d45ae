"""``python -m bench [--quick]``: fo-assets against dlt on the same F&O work, side by side in one run.

Scenarios, each run by both sides in alternating order, each side in a process of its own:

* (a) backfill: every GeneralJournalAccountEntryBiEntities row (GL lines) of 3 companies over 30 days
  (1,008,000 rows; 100,800 with ``--quick``) into an empty local Delta table, upserted by key;
* (b) snapshot: wide VendorsV2 (the sandbox's ~290 fields; 50,001 rows, 5,001 with ``--quick``);
* (c) the backfill again into the same table (an idempotent re-load: same rows, nothing duplicated);
* (d) one purchase order changed in F&O, pulled by key and upserted: change to updated row.

The sandbox runs in separate processes (one for the ledger and purchase orders, one wide tenant for
vendors); its page cache is warmed by one unmeasured read of each side before anything is measured.
Results (Markdown table, chart, raw JSON) go to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench import report
from bench.runner import side_module
from bench.server import SandboxProcess, Scale
from bench.verify import compare, decimal_fields, landed, truth
from bench.work import SIDES, Change, Job, Side, table_path
from fo_assets.catalog import STANDARD, EntitySpec
from fo_assets.sandbox.tenant import Tenant

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = dt.date(2026, 6, 15)
COMPANIES = ("usmf", "demf", "gbsi")
GL, VENDORS, PO = (STANDARD.spec_for(n) for n in
                   ("GeneralJournalAccountEntryBiEntities", "VendorsV2", "PurchaseOrderHeadersV2"))
GL_VALUES = ("TransactionCurrencyAmount", "AccountingCurrencyAmount", "ReportingCurrencyAmount", "LedgerAccount")
VENDOR_VALUES = ("CreditLimit", "VendorOrganizationName")


@dataclass(frozen=True)
class Size:
    gl_scale: float  # GL rows = 112 a day per company times this
    vendor_scale: float  # vendors = 50 per company times this (+2 special keys each)
    days: int = 30


FULL = Size(gl_scale=100, vendor_scale=333.3)  # 1,008,000 GL rows, 50,001 vendors
QUICK = Size(gl_scale=10, vendor_scale=33.3)  # 100,800 GL rows, 5,001 vendors


class Bench:
    def __init__(self, folder: Path, timeout_s: float):
        self.folder, self.timeout_s = folder, timeout_s
        self.results: list[dict] = []
        self._jobs = 0
        self._flip = False

    def order(self) -> tuple[Side, ...]:
        """Sides in alternating order from one scenario to the next (neither always runs first)."""
        self._flip = not self._flip
        return SIDES if self._flip else SIDES[::-1]

    def root(self, side: Side, label: str = "") -> str:
        return str(self.folder / (side + label))

    def run(self, sandbox: SandboxProcess, job: Job) -> dict:
        self._jobs += 1
        path = job.save(self.folder / f"job-{self._jobs}.json")
        env = {**os.environ, **sandbox.env, "PYTHONUNBUFFERED": "1"}
        if job.side == "dlt":
            # dlt's HTTP client is requests: it trusts the sandbox CA through REQUESTS_CA_BUNDLE.
            env |= {"REQUESTS_CA_BUNDLE": sandbox.env["FO_CA_BUNDLE"], "RUNTIME__DLTHUB_TELEMETRY": "false",
                    "RUNTIME__LOG_LEVEL": "WARNING"}
        before, load = sandbox.admin.requests_served(), os.getloadavg()[0]
        print(f"  {job.label:>5} {job.side:<9} {job.entity_set} ...", end=" ", flush=True)
        try:
            done = subprocess.run([sys.executable, "-m", "bench.runner", str(path)], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"{job.side} {job.label} ran longer than {self.timeout_s:.0f} s: stopped") from None
        if done.returncode != 0:
            raise SystemExit(f"{job.side} {job.label} failed (exit code {done.returncode}):\n{done.stderr[-5000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result |= {"scenario": job.label, "side": job.side, "requests": sandbox.admin.requests_served() - before,
                   "load_1m": load}
        print(f"{result['rows']:,} rows in {result['seconds']:.2f} s, {result['requests']} requests", flush=True)
        return result

    def measure(self, sandbox: SandboxProcess, job: Job) -> dict:
        # A keyed job reads its changed row back itself and fails if the change is not there.
        check = "ok (the job read the changed row back)" if job.change else "not checked"
        result = self.run(sandbox, job) | {"check": check}
        self.results.append(result)
        return result

    def check(self, scenario: str, side: Side, outcome: str) -> None:
        for result in self.results:
            if result["scenario"] == scenario and result["side"] == side:
                result["check"] = outcome
        print(f"  check {scenario} {side}: {outcome}", flush=True)


def ledger(bench: Bench, size: Size) -> None:
    """(a), (c) and (d) on one sandbox: the ledger backfill, its re-load, one changed purchase order."""
    scale = Scale(size.gl_scale, size.days, ANCHOR)
    tenant = Tenant(scale.config())
    window = (ANCHOR - dt.timedelta(days=size.days), ANCHOR + dt.timedelta(days=1))
    iso = (window[0].isoformat(), window[1].isoformat())
    # GL lines have no date of their own: the tenant's whole history is the window.
    expected = truth(tenant, GL.entity_set, GL_VALUES)
    with SandboxProcess(scale, bench.folder / "sandbox-gl") as sandbox:
        print(f"ledger sandbox: scale {scale.scale}, {expected.num_rows:,} GL rows in {iso}", flush=True)
        backfill = {side: Job(side, "a", GL.entity_set, bench.root(side), COMPANIES, window=iso,
                              decimals=decimal_fields(tenant, GL.entity_set)) for side in SIDES}
        for side in SIDES:
            bench.run(sandbox, replace(backfill[side], label="warm", root=bench.root(side, "-warm"), extract_only=True))
        for label in ("a", "c"):
            for side in bench.order():
                bench.measure(sandbox, replace(backfill[side], label=label))
                bench.check(label, side, _check(side, bench.root(side), GL, expected, GL_VALUES))
        changed_po(bench, sandbox, tenant, iso)


def changed_po(bench: Bench, sandbox: SandboxProcess, tenant: Tenant, iso: tuple[str, str]) -> None:
    """(d): each side first loads usmf's purchase orders (not measured), then one is changed and re-pulled."""
    numbers = tenant.table(PO.entity_set).columns["PurchaseOrderNumber"]
    target = str(numbers[np.flatnonzero(np.char.startswith(numbers.astype(str), "USMF-"))[0]])
    decimals = decimal_fields(tenant, PO.entity_set)
    for side in SIDES:
        bench.run(sandbox, Job(side, "setup", PO.entity_set, bench.root(side), ("usmf",), window=iso, decimals=decimals))
    for side in bench.order():
        change = Change("usmf", "PurchaseOrderNumber", target, "PurchaseOrderName", f"changed for {side} {time.time():.0f}")
        bench.measure(sandbox, Job(side, "d", PO.entity_set, bench.root(side), ("usmf",), change=change,
                                   decimals=decimals))


def vendors(bench: Bench, size: Size) -> None:
    """(b) on a wide tenant of its own (vendors scale apart from the ledger)."""
    scale = Scale(size.vendor_scale, 1, ANCHOR)
    tenant = Tenant(scale.config())
    expected = truth(tenant, VENDORS.entity_set, VENDOR_VALUES)
    with SandboxProcess(scale, bench.folder / "sandbox-vendors") as sandbox:
        fields = len(tenant.fields(VENDORS.entity_set))
        print(f"vendor sandbox: scale {scale.scale}, {expected.num_rows:,} vendors of {fields} fields", flush=True)
        snapshot = {side: Job(side, "b", VENDORS.entity_set, bench.root(side), COMPANIES,
                              decimals=decimal_fields(tenant, VENDORS.entity_set)) for side in SIDES}
        for side in SIDES:
            bench.run(sandbox, replace(snapshot[side], label="warm", root=bench.root(side, "-warm"), extract_only=True))
        for side in bench.order():
            bench.measure(sandbox, snapshot[side])
            bench.check("b", side, _check(side, bench.root(side), VENDORS, expected, VENDOR_VALUES))


def _check(side: Side, root: str, spec: EntitySpec, expected: pa.Table, values: tuple[str, ...]) -> str:
    column = side_module(side).column
    names = list(spec.key_columns) + list(values)
    live = "_fo_deleted" if side == "fo-assets" else None
    return compare(expected, landed(table_path(side, Path(root), spec), names, column, live), spec.key_columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,800 GL rows and 5,001 vendors (a few minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the report goes")
    parser.add_argument("--gl-scale", type=float, help="sandbox scale of the ledger (default 100; 10 with --quick)")
    parser.add_argument("--vendor-scale", type=float, help="sandbox scale of the vendors (default 333.3; 33.3 quick)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one job may run before it is stopped")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    size = replace(size, gl_scale=args.gl_scale or size.gl_scale, vendor_scale=args.vendor_scale or size.vendor_scale)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fo-bench-") as folder:
        bench = Bench(Path(folder), args.timeout)
        ledger(bench, size)
        vendors(bench, size)
    mode = "quick" if args.quick else "full"
    written = report.write(bench.results, args.out, mode, time.monotonic() - started)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
