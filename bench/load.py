"""Upsert throughput of the two sinks: local Delta (delta-rs) and Databricks (the test double, via the SDK).

Not run in CI. Seeds a table of ``--table-rows`` general-ledger rows in batches of ``--rows``, then
times three loads into it: a ``--rows`` batch of half updates and half inserts, a re-load of that same
batch (no change), and a windowed re-read of one company that misses a tenth of its rows (flagged).

    .venv/bin/python -m bench.load                      # 1,000,000-row batches into 5,000,000 rows
    .venv/bin/python -m bench.load --rows 200000 --table-rows 1000000 --sinks local

The Databricks figures measure the SDK, the Files API upload and our SQL on DuckDB, not a warehouse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc

from fo_assets.catalog import STANDARD
from fo_assets.landing import DeleteScope, LandedBatch, Ledger, Manifest, new_batch_id
from fo_assets.sinks.base import LoadResult, Sink
from fo_assets.sinks.databricks import DatabricksSink, connect_workspace
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.databricks_double import DatabricksDouble

SPEC = STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")
PAGE = 100_000
COMPANIES = ("usmf", "demf")
PER_DAY, DAY_ZERO = 20_000, 19_000  # rows per accounting date, first date in days since 1970


def ledger_rows(first_id: int, count: int, version: int) -> pa.Table:
    ids = pa.array(range(first_id, first_id + count), pa.int64())
    text = pc.cast(ids, pa.string())
    return pa.table({
        "dataAreaId": pc.if_else(pc.equal(pc.bit_wise_and(ids, 1), 0), COMPANIES[0], COMPANIES[1]),
        "SourceKey": ids,
        "GeneralJournalEntry": pc.add(pc.divide(ids, 4), version),
        "AccountingDate": pc.cast(pc.add(pc.divide(ids, PER_DAY), DAY_ZERO), pa.int32()).cast(pa.date32()),
        "LedgerAccount": pc.binary_join_element_wise("6051", pc.cast(pc.bit_wise_and(ids, 255), pa.string()), ""),
        "AccountingCurrencyAmount": pc.cast(pc.add(pc.multiply(ids, 37), version), pa.decimal128(32, 6)),
        "TransactionCurrencyCode": pa.repeat(pa.scalar("USD"), count),
        "IsCredit": pc.if_else(pc.equal(pc.bit_wise_and(ids, 2), 0), "Yes", "No"),
        "Text": pc.binary_join_element_wise("Posting ", text, ""),
    })


def land(home: Path, first_id: int, count: int, version: int, scopes: list[DeleteScope] | None = None) -> LandedBatch:
    started = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=version)
    manifest = Manifest(
        batch_id=new_batch_id(started), entity_set=SPEC.entity_set, table=SPEC.table, run_id=f"bench-{version}",
        mode="window" if scopes else "keys", key_columns=list(SPEC.key_columns), company_field=SPEC.company_field,
        companies=list(COMPANIES), delete_scopes=scopes or [], created_at=started.isoformat(),
    )
    writer = Ledger(home).new_writer(manifest)
    for offset in range(0, count, PAGE):
        page = ledger_rows(first_id + offset, min(PAGE, count - offset), version)
        writer.write(page, f"https://bench.test/data/GeneralJournalAccountEntryBiEntities?page={offset // PAGE}",
                     started + dt.timedelta(seconds=offset // PAGE), None)
    return writer.seal()


def timed(load: Callable[[], LoadResult]) -> tuple[float, LoadResult]:
    started = time.perf_counter()
    result = load()
    return time.perf_counter() - started, result


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s ({seconds:.1f} s)"


def bench(sink: Sink, home: Path, rows: int, table_rows: int) -> dict[str, str]:
    seed_s = 0.0
    for index, first in enumerate(range(0, table_rows, rows)):
        seed = land(home, first, min(rows, table_rows - first), index)
        seconds, _ = timed(lambda: sink.upsert(seed, SPEC))
        seed_s += seconds
    # Half of the batch updates the newest seeded rows, half inserts new ones.
    upsert = land(home, table_rows - rows // 2, rows, 100)
    upsert_s, upserted = timed(lambda: sink.upsert(upsert, SPEC))
    reload_s, reloaded = timed(lambda: sink.upsert(upsert, SPEC))
    # A windowed re-read of usmf over the days of the first batch, missing its first tenth of rows.
    start = dt.date(1970, 1, 1) + dt.timedelta(days=DAY_ZERO)
    end = start + dt.timedelta(days=rows // PER_DAY)
    window = DeleteScope("window", "usmf", "AccountingDate", start.isoformat(), end.isoformat())
    reread = land(home, rows // 10, rows - rows // 10, 200, [window])
    delete_s, deleted = timed(lambda: sink.upsert(reread, SPEC))
    return {
        "seed (inserts)": rate(table_rows, seed_s),
        "upsert 50% upd": f"{rate(rows, upsert_s)}; {upserted.inserted:,} ins / {upserted.updated:,} upd",
        "re-load (no-op)": f"{rate(rows, reload_s)}; {reloaded.updated:,} upd",
        "window + deletes": f"{rate(reread.manifest.row_count, delete_s)}; {deleted.deleted:,} flagged",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per batch")
    parser.add_argument("--table-rows", type=int, default=5_000_000, help="rows in the table before the timed loads")
    parser.add_argument("--sinks", default="local,databricks")
    args = parser.parse_args()
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="fo-bench-") as tmp:
        root = Path(tmp)
        if "local" in args.sinks:
            local = LocalDeltaSink(root / "delta")
            results["local delta"] = bench(local, root / "home-local", args.rows, args.table_rows)
        if "databricks" in args.sinks:
            with DatabricksDouble(root / "dbx") as dbx:
                os.environ["REQUESTS_CA_BUNDLE"] = str(dbx.ca_bundle_path)
                workspace = connect_workspace(dbx.host, dbx.client_id, dbx.client_secret)
                sink = DatabricksSink(workspace, dbx.warehouse_id, "main", "fo", "staging", statement_timeout_s=3600)
                results["databricks double"] = bench(sink, root / "home-dbx", args.rows, args.table_rows)
    names = list(results)
    print(f"\n{args.rows:,}-row batches into a {args.table_rows:,}-row table")
    print(f"{'load':<20}" + "".join(f"{n:<52}" for n in names))
    for row in next(iter(results.values())):
        print(f"{row:<20}" + "".join(f"{results[n][row]:<52}" for n in names))


if __name__ == "__main__":
    main()
