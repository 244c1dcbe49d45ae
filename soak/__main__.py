"""``python -m soak [--minutes 30]``: run fo-assets under random faults for a while, then check everything.

Each tick changes records and posts their events, arms a random F&O fault, and lets the sensor's
targeted refreshes run; every few ticks the daily schedule's run goes too (under a fault of its own).
At the end, with faults off: the last events are processed and every event-named record is compared
with the tenant, the weekly reconciliation runs, and every table must equal the tenant exactly, each
key once. Memory is sampled throughout. Exit status 0 only if all of that holds and no run failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from fo_assets.catalog import STANDARD
from fo_assets_tests.support.truth import truth
from fo_assets_tests.reliability.stack import assert_exact, local_rows
from soak.faults import arm_random
from soak.memory import MemoryLog
from soak.world import World


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to keep changing and running")
    parser.add_argument("--tick-seconds", type=float, default=15.0, help="time between rounds of changes")
    parser.add_argument("--daily-every", type=int, default=3, help="run the daily schedule every N ticks")
    parser.add_argument("--scale", type=float, default=0.2, help="sandbox tenant size (1.0: ~10,000 GL rows/month)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path, help="also write the report as JSON here")
    return parser.parse_args(argv)


def sample_memory(log: MemoryLog, stop: threading.Event, every_s: float = 5.0) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(every_s):
            log.sample()

    thread = threading.Thread(target=loop, daemon=True, name="soak-memory")
    thread.start()
    return thread


def event_records_current(world: World) -> list[str]:
    """Purchase orders named by events that do not equal the tenant once their events were processed."""
    spec = STANDARD.spec_for("PurchaseOrderHeadersV2")
    landed = {(r["dataAreaId"], r["PurchaseOrderNumber"]): r for r in local_rows(world.root / "home" / "delta", spec)}
    wrong = []
    for company, number in sorted(world.changed_orders):
        source = next(r for r in truth(world.sandbox, spec.entity_set, company, spec.personal_fields)
                      if r["PurchaseOrderNumber"] == number)
        row = landed.get((company, number))
        if row is None or {k: row.get(k) for k in source} != source:
            wrong.append(f"{company}/{number}")
    return wrong


def exactness(world: World) -> dict[str, str]:
    """Every table against the whole tenant (after a reconciliation): 'exact' or what differs."""
    outcome = {}
    for spec in STANDARD:
        rows = local_rows(world.root / "home" / "delta", spec)
        try:
            assert_exact(world.sandbox, spec, rows, dt.date.min, dt.date.max)
            outcome[spec.table] = f"exact ({sum(not r['_fo_deleted'] for r in rows)} live rows)"
        except AssertionError as exc:
            outcome[spec.table] = f"DIFFERS: {str(exc)[:300]}"
    return outcome


def run(args: argparse.Namespace) -> dict[str, object]:
    memory, stop = MemoryLog(), threading.Event()
    world = World(args.scale, args.seed)
    sample_memory(memory, stop)
    faults: Counter[str] = Counter()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    tick = 0
    try:
        while time.monotonic() < deadline:
            tick += 1
            tick_started = time.monotonic()
            world.change_records(tick)
            world.post_events()
            faults[arm_random(world.sandbox, world.rng)] += 1
            world.refresh_from_events()
            world.sandbox.faults.reset()
            if tick % args.daily_every == 0:
                faults[arm_random(world.sandbox, world.rng)] += 1
                world.scheduled_run("fo_daily_trailing_window")
                world.sandbox.faults.reset()
            memory.sample()
            print(f"[{(time.monotonic() - started) / 60:5.1f} min] tick {tick}: runs {world.counts.runs}, "
                  f"rows read {world.counts.rows_read}, events {world.counts.events_posted}, "
                  f"rss {memory.samples[-1][1]:.0f} MB", flush=True)
            pause = min(args.tick_seconds - (time.monotonic() - tick_started), deadline - time.monotonic())
            time.sleep(max(0.0, pause))

        world.post_events()
        for _ in range(5):  # until the inbox is drained (500 events per sensor tick)
            before = world.counts.runs["succeeded"] + world.counts.runs["failed"]
            world.refresh_from_events()
            if world.counts.runs["succeeded"] + world.counts.runs["failed"] == before:
                break
        stale_events = event_records_current(world)
        reconciled = world.scheduled_run("fo_weekly_reconciliation")
        tables = exactness(world)
        memory.sample()
    finally:
        stop.set()
        world.close()
    verdict = memory.verdict()
    ok = (reconciled and not stale_events and all(v.startswith("exact") for v in tables.values())
          and not verdict.get("grows", False) and world.counts.runs["failed"] == 0)
    return {
        "ok": ok,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "ticks": tick,
        "runs": world.counts.runs,
        "rows_read": world.counts.rows_read,
        "rows_written": world.counts.rows_written,
        "changes": world.counts.changes,
        "events_posted": world.counts.events_posted,
        "event_named_records_changed": len(world.changed_orders),
        "event_named_records_not_current": stale_events,
        "faults_armed": dict(faults),
        "run_failures": world.counts.failures,
        "reconciliation_succeeded": reconciled,
        "tables": tables,
        "memory": verdict,
        "memory_samples_mb": [(round(minute, 2), round(mb, 1)) for minute, mb in memory.samples],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    report = run(args)
    samples = report.pop("memory_samples_mb")
    print(json.dumps(report, indent=2, default=str))
    every = max(1, len(samples) // 12)
    print("memory (minute, MB):", ", ".join(f"{m:.1f}:{mb:.0f}" for m, mb in samples[::every]))
    if args.report:
        args.report.write_text(json.dumps({**report, "memory_samples_mb": samples}, indent=2, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
